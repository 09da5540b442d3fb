/**
 * node:crypto (OpenSSL) implementation of the CryptoSuite — the adapter hot
 * paths use on Node (DESIGN.md "Crypto suite"). It must agree byte for byte
 * with protocol/crypto/noble.ts and throws the same MisuseErrors (it reuses
 * noble.ts's argument checks); test/crypto/suite.test.ts holds both to the
 * same vectors and to random cross-checks.
 *
 * Where the time goes (measured on Node 20 / OpenSSL 3.0, see bench/crypto.ts):
 * - creating a Cipher/Hmac object costs ~2–4 µs, more than the AES work on
 *   a few blocks. ECB blocks are independent, so one ECB cipher per key is
 *   cached and reused (never final()-ed; padding off, so update() returns
 *   every block). Small CTR inputs and CBC decryption — both parallel over
 *   blocks — are computed from that cached ECB cipher plus an XOR; CBC
 *   encryption (sequential) and large inputs get a fresh OpenSSL cipher.
 * - importing asymmetric keys is the expensive part: DER/PKCS#8 import costs
 *   90–400 µs through OpenSSL 3's decoders, JWK import 5–70 µs. Keys are
 *   imported via JWK and the KeyObjects kept in small LRU caches keyed by the
 *   key bytes (a phone signs with one key, verifies one server key, reuses
 *   its EphID private key for every peer).
 * - crypto.hkdfSync (~10 µs) is slower than HKDF built from two HMACs (~4 µs)
 *   and caps `info` at 1024 bytes, so HKDF is done by hand (RFC 5869 §2).
 *
 * Secrets appear as cache keys (latin1 strings of the key bytes): acceptable
 * for a testbed, and no worse than the KeyObjects the caches hold.
 */
import { createCipheriv, createDecipheriv, createECDH, createHmac, createPrivateKey, createPublicKey } from 'node:crypto';
import { diffieHellman, ECDH, hash, randomBytes, sign, verify } from 'node:crypto';
import type { Cipher, Decipher, KeyObject } from 'node:crypto';
import {
  checkAesKey,
  checkBlock,
  checkBlockAligned,
  checkByteCount,
  checkHkdfLength,
  checkKey32,
  checkP256PrivateKey,
  isRefusedEd25519PublicKey,
  isSec1PointShape,
} from '../../protocol/crypto/args.ts';
import { ecbBatch, hkdfSha256Batch } from '../../protocol/crypto/batch.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';

// ------------------------------------------------------------ helpers

/** A least-recently-used map (Map keeps insertion order; a hit re-inserts). */
class LruCache<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly capacity: number) {}

  get(key: string): V | undefined {
    const value = this.map.get(key);
    if (value !== undefined) {
      this.map.delete(key);
      this.map.set(key, value);
    }
    return value;
  }

  set(key: string, value: V): void {
    this.map.set(key, value);
    if (this.map.size > this.capacity) {
      const oldest = this.map.keys().next();
      if (oldest.done !== true) this.map.delete(oldest.value);
    }
  }
}

const CACHE_SIZE = 256;

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Map key for key bytes: latin1 maps each byte to one UTF-16 unit, cheaper than hex. */
function cacheKey(bytes: Uint8Array): string {
  return asBuffer(bytes).toString('latin1');
}

function b64url(bytes: Uint8Array): string {
  return asBuffer(bytes).toString('base64url');
}

/**
 * A plain Uint8Array owning exactly its bytes. Native outputs already do
 * (zero-copy view); anything carved from Node's shared 8 KiB pool is copied,
 * so callers may use `.buffer` and structured clone yields the same thing
 * as from the noble suite.
 */
function toBytes(buffer: Buffer): Uint8Array {
  return buffer.byteOffset === 0 && buffer.buffer.byteLength === buffer.byteLength
    ? new Uint8Array(buffer.buffer, 0, buffer.byteLength)
    : new Uint8Array(buffer);
}

// ------------------------------------------------------------ AES

interface EcbPair {
  encrypt?: Cipher;
  decrypt?: Decipher;
}
const ecbCache = new LruCache<EcbPair>(CACHE_SIZE);

/** Up to this size, CTR runs as ECB over counter blocks + XOR (one cached native call). */
const CTR_VIA_ECB_MAX = 1024;
/** Up to this size, CBC decryption runs as one ECB call + XOR (CBC decryption is parallel). */
const CBC_DECRYPT_VIA_ECB_MAX = 4096;

// One-entry memo in front of the LRU: callers usually pass the same key array
// many times in a row (a TEK's 144 RPIs, one token key), so skip building the
// string key. The copy guards against a caller mutating the array in between.
let lastKey: Uint8Array | undefined;
let lastKeyCopy = new Uint8Array(0);
let lastPair: EcbPair = {};

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function ecbPair(key: Uint8Array): EcbPair {
  if (key === lastKey && sameBytes(key, lastKeyCopy)) return lastPair;
  const id = cacheKey(key);
  let pair = ecbCache.get(id);
  if (pair === undefined) {
    pair = {};
    ecbCache.set(id, pair);
  }
  lastKey = key;
  lastKeyCopy = new Uint8Array(key);
  lastPair = pair;
  return pair;
}

function ecbEncrypt(key: Uint8Array, data: Uint8Array): Buffer {
  const pair = ecbPair(key);
  pair.encrypt ??= createCipheriv(key.length === 16 ? 'aes-128-ecb' : 'aes-256-ecb', key, null).setAutoPadding(false);
  return pair.encrypt.update(data);
}

function ecbDecrypt(key: Uint8Array, data: Uint8Array): Buffer {
  const pair = ecbPair(key);
  pair.decrypt ??= createDecipheriv(key.length === 16 ? 'aes-128-ecb' : 'aes-256-ecb', key, null).setAutoPadding(false);
  return pair.decrypt.update(data);
}

/** ECB under a key used once (GAEN RPIKs: no LRU); final() frees OpenSSL's context now, not in a GC weak callback (~0.5 µs a key). */
function ecbOnce(key: Uint8Array, data: Uint8Array): Buffer {
  const cipher = createCipheriv(key.length === 16 ? 'aes-128-ecb' : 'aes-256-ecb', key, null).setAutoPadding(false);
  const encrypted = cipher.update(data);
  cipher.final(); // whole blocks, no padding: nothing left to return
  return encrypted;
}

/** CTR keystream ⊕ data via ECB of the counter blocks; the counter is one 128-bit big-endian integer. */
function ctrViaEcb(key: Uint8Array, counter: Uint8Array, data: Uint8Array): Uint8Array {
  const blocks = Math.ceil(data.length / 16);
  const counters = new Uint8Array(blocks * 16);
  const ctr = new Uint8Array(counter);
  for (let b = 0; b < blocks; b++) {
    counters.set(ctr, b * 16);
    for (let i = 15; i >= 0; i--) {
      const v = ((ctr[i] ?? 0) + 1) & 0xff;
      ctr[i] = v;
      if (v !== 0) break; // no carry; 2^128 wraps to zero like OpenSSL and noble
    }
  }
  const stream = ecbEncrypt(key, counters);
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = (data[i] ?? 0) ^ (stream[i] ?? 0);
  return out;
}

/** CBC decryption P_i = D(C_i) ⊕ C_{i−1} (C_0 = IV) as one ECB call. */
function cbcDecryptViaEcb(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  const out = toBytes(ecbDecrypt(key, data));
  for (let i = 0; i < 16 && i < out.length; i++) out[i] = (out[i] ?? 0) ^ (iv[i] ?? 0);
  for (let i = 16; i < out.length; i++) out[i] = (out[i] ?? 0) ^ (data[i - 16] ?? 0);
  return out;
}

// ------------------------------------------------------------ asymmetric keys

interface PrivateEntry {
  readonly key: KeyObject;
  /** Raw public key (32 bytes for X25519/Ed25519, SEC1 uncompressed 65 bytes for P-256). */
  readonly publicKey: Uint8Array;
}

const x25519Private = new LruCache<PrivateEntry>(CACHE_SIZE);
const x25519Public = new LruCache<KeyObject>(CACHE_SIZE);
const ed25519Private = new LruCache<PrivateEntry>(CACHE_SIZE);
const ed25519Public = new LruCache<KeyObject>(CACHE_SIZE);
const p256Private = new LruCache<PrivateEntry>(CACHE_SIZE);
const p256Public = new LruCache<KeyObject>(CACHE_SIZE);

type OkpCurve = 'X25519' | 'Ed25519';

function okpPrivate(cache: LruCache<PrivateEntry>, crv: OkpCurve, raw: Uint8Array): PrivateEntry {
  const id = cacheKey(raw);
  const hit = cache.get(id);
  if (hit !== undefined) return hit;
  // Node type-checks `x` but derives the public half from `d` (EVP_PKEY_new_raw_private_key);
  // the derived key is exported below, and the RFC vectors pin it.
  const key = createPrivateKey({ key: { kty: 'OKP', crv, d: b64url(raw), x: '' }, format: 'jwk' });
  const x = createPublicKey(key).export({ format: 'jwk' }).x;
  if (typeof x !== 'string') throw new Error(`node:crypto exported no ${crv} public key`);
  const entry = { key, publicKey: toBytes(Buffer.from(x, 'base64url')) };
  cache.set(id, entry);
  return entry;
}

function okpPublic(cache: LruCache<KeyObject>, crv: OkpCurve, raw: Uint8Array): KeyObject {
  const id = cacheKey(raw);
  let key = cache.get(id);
  if (key === undefined) {
    key = createPublicKey({ key: { kty: 'OKP', crv, x: b64url(raw) }, format: 'jwk' });
    cache.set(id, key);
  }
  return key;
}

function p256PrivateEntry(privateKey: Uint8Array): PrivateEntry {
  const id = cacheKey(privateKey);
  const hit = p256Private.get(id);
  if (hit !== undefined) return hit;
  // JWK needs the public point; ECDH derives it (~20 µs, cheaper than DER import's own derivation).
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(privateKey);
  const point = ecdh.getPublicKey();
  const key = createPrivateKey({
    key: { kty: 'EC', crv: 'P-256', d: b64url(privateKey), x: b64url(point.subarray(1, 33)), y: b64url(point.subarray(33)) },
    format: 'jwk',
  });
  const entry = { key, publicKey: toBytes(point) };
  p256Private.set(id, entry);
  return entry;
}

/** Public KeyObject for a SEC1 point, or undefined when the bytes are not a curve point. */
function p256PublicKeyObject(publicKey: Uint8Array): KeyObject | undefined {
  const id = cacheKey(publicKey);
  const hit = p256Public.get(id);
  if (hit !== undefined) return hit;
  try {
    const point =
      publicKey.length === 65
        ? asBuffer(publicKey)
        : ECDH.convertKey(asBuffer(publicKey), 'prime256v1', undefined, undefined, 'uncompressed');
    if (typeof point === 'string') return undefined;
    // OpenSSL checks the point is on the curve here and throws if not.
    const key = createPublicKey({
      key: { kty: 'EC', crv: 'P-256', x: b64url(point.subarray(1, 33)), y: b64url(point.subarray(33)) },
      format: 'jwk',
    });
    p256Public.set(id, key);
    return key;
  } catch {
    return undefined;
  }
}

// ------------------------------------------------------------ suite

function hmac(key: Uint8Array, ...parts: Uint8Array[]): Buffer {
  const mac = createHmac('sha256', key);
  for (const part of parts) mac.update(part);
  return mac.digest();
}

export const nodeSuite: CryptoSuite = {
  name: 'node',

  sha256: (data) => toBytes(hash('sha256', data, 'buffer')),

  hmacSha256: (key, data) => toBytes(hmac(key, data)),

  hkdfSha256(ikm, salt, info, length) {
    checkHkdfLength(length);
    // RFC 5869 §2.2: an empty salt means HashLen zero bytes, which HMAC's zero-padding makes equivalent.
    const prk = hmac(salt, ikm);
    const okm = new Uint8Array(length);
    let t: Uint8Array = new Uint8Array(0);
    for (let i = 1, offset = 0; offset < length; i++) {
      t = hmac(prk, t, info, Uint8Array.of(i));
      okm.set(t.subarray(0, Math.min(32, length - offset)), offset);
      offset += 32;
    }
    return okm;
  },

  hkdfSha256Batch, // pure TS from the salt's HMAC states: ~2 µs a 16-byte RPIK, ~5 µs above (batch.ts)

  aesEcbEncrypt(key, data) {
    checkAesKey(key);
    checkBlockAligned(data);
    return toBytes(ecbEncrypt(key, data));
  },

  aesEcbDecrypt(key, data) {
    checkAesKey(key);
    checkBlockAligned(data);
    return toBytes(ecbDecrypt(key, data));
  },

  aesEcbEncryptBatch: (keys, keyLength, data, blockCounts, out) => ecbBatch(keys, keyLength, data, blockCounts, out, ecbOnce),

  aesCtr(key, counter, data) {
    checkAesKey(key);
    checkBlock(counter, 'counter');
    if (data.length <= CTR_VIA_ECB_MAX) return ctrViaEcb(key, counter, data);
    // OpenSSL's CTR increments the whole 16-byte block big-endian, as noble does.
    // No final(): a stream mode returns every byte from update().
    const cipher = createCipheriv(key.length === 16 ? 'aes-128-ctr' : 'aes-256-ctr', key, counter);
    return toBytes(cipher.update(data));
  },

  aesCbcEncrypt(key, iv, data) {
    checkAesKey(key);
    checkBlock(iv, 'iv');
    checkBlockAligned(data);
    // Padding off and whole blocks in: update() returns every block, final() would add nothing.
    const cipher = createCipheriv(key.length === 16 ? 'aes-128-cbc' : 'aes-256-cbc', key, iv).setAutoPadding(false);
    return toBytes(cipher.update(data));
  },

  aesCbcDecrypt(key, iv, data) {
    checkAesKey(key);
    checkBlock(iv, 'iv');
    checkBlockAligned(data);
    if (data.length <= CBC_DECRYPT_VIA_ECB_MAX) return cbcDecryptViaEcb(key, iv, data);
    const decipher = createDecipheriv(key.length === 16 ? 'aes-128-cbc' : 'aes-256-cbc', key, iv).setAutoPadding(false);
    return toBytes(decipher.update(data));
  },

  x25519PublicKey(privateKey) {
    checkKey32(privateKey, 'privateKey');
    return okpPrivate(x25519Private, 'X25519', privateKey).publicKey.slice();
  },

  x25519(privateKey, peerPublicKey) {
    checkKey32(privateKey, 'privateKey');
    checkKey32(peerPublicKey, 'peerPublicKey');
    const own = okpPrivate(x25519Private, 'X25519', privateKey).key;
    const peer = okpPublic(x25519Public, 'X25519', peerPublicKey);
    try {
      const shared = diffieHellman({ privateKey: own, publicKey: peer });
      return shared.every((byte) => byte === 0) ? undefined : toBytes(shared);
    } catch {
      // OpenSSL refuses an all-zero shared secret (low-order peer key): RFC 7748 §6.1.
      return undefined;
    }
  },

  ed25519PublicKey(seed) {
    checkKey32(seed, 'seed');
    return okpPrivate(ed25519Private, 'Ed25519', seed).publicKey.slice();
  },

  ed25519Sign(seed, message) {
    checkKey32(seed, 'seed');
    return toBytes(sign(null, message, okpPrivate(ed25519Private, 'Ed25519', seed).key));
  },

  ed25519Verify(publicKey, message, signature) {
    if (signature.length !== 64 || isRefusedEd25519PublicKey(publicKey)) return false;
    try {
      return verify(null, message, okpPublic(ed25519Public, 'Ed25519', publicKey), signature);
    } catch {
      return false;
    }
  },

  p256PublicKey(privateKey) {
    checkP256PrivateKey(privateKey);
    return p256PrivateEntry(privateKey).publicKey.slice();
  },

  p256Sign(privateKey, message) {
    checkP256PrivateKey(privateKey);
    return toBytes(sign('sha256', message, { key: p256PrivateEntry(privateKey).key, dsaEncoding: 'der' }));
  },

  p256Verify(publicKey, message, derSignature) {
    if (!isSec1PointShape(publicKey)) return false;
    const key = p256PublicKeyObject(publicKey);
    if (key === undefined) return false;
    try {
      return verify('sha256', message, { key, dsaEncoding: 'der' }, derSignature);
    } catch {
      return false;
    }
  },

  randomBytes(length) {
    checkByteCount(length, 'length');
    return toBytes(randomBytes(length));
  },
};
