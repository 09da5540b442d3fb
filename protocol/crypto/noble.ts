/**
 * The pure-JS crypto suite (@noble/*): runs in browsers, on any Node and on
 * the Raspberry Pis. node:crypto (services/crypto/node.ts) must agree with it
 * byte for byte; test/crypto/suite.test.ts holds both to the same vectors.
 *
 * The argument checks are exported so the node:crypto adapter throws the very
 * same MisuseErrors (same field names, same messages) instead of OpenSSL's.
 *
 * Semantics both suites share (chosen where the libraries differ):
 * - ECDSA P-256 signs with RFC 6979 deterministic k and does *not* normalise
 *   s to the low half (OpenSSL does not either, and the RFC 6979 vectors
 *   then reproduce exactly); verification accepts high-S signatures, as
 *   OpenSSL does. Public keys must be SEC1 compressed (02/03) or
 *   uncompressed (04); hybrid (06/07) encodings are rejected.
 * - Ed25519 verification is RFC 8032 strict (noble `zip215: false`):
 *   non-canonical encodings and small-order public keys are refused
 *   (isRefusedEd25519PublicKey, shared with node). One difference is left,
 *   on crafted input only: noble checks the cofactored equation [8][S]B = [8](R + [k]A),
 *   OpenSSL the cofactorless one, so a signature whose R carries a torsion
 *   component — which only the key's owner can make — verifies here and not
 *   on node:crypto. RFC 8032 §5.1.7 permits both checks.
 * - X25519 with a low-order peer key returns undefined (RFC 7748 §6.1's
 *   all-zero check, done before the ladder by noble).
 */
import { cbc, ctr, ecb } from '@noble/ciphers/aes.js';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { p256 } from '@noble/curves/nist.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { hexToBytes, randomBytes } from '@noble/hashes/utils.js';
import { ensure } from '../errors.ts';
import type { CryptoSuite } from './suite.ts';

// ------------------------------------------------------------ argument checks

/** RFC 5869: L ≤ 255 · HashLen. */
export const HKDF_SHA256_MAX_LENGTH = 255 * 32;

/** Order n of the P-256 group (FIPS 186-4 D.1.2.3); private keys are in [1, n-1]. */
const P256_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

export function checkAesKey(key: Uint8Array): void {
  ensure(key.length === 16 || key.length === 32, 'key', `AES key must be 16 or 32 bytes, got ${key.length}`);
}

export function checkBlockAligned(data: Uint8Array): void {
  ensure(data.length % 16 === 0, 'data', `length must be a multiple of 16 (no padding), got ${data.length}`);
}

/** An IV or CTR counter block: exactly one AES block. */
export function checkBlock(value: Uint8Array, field: 'iv' | 'counter'): void {
  ensure(value.length === 16, field, `must be 16 bytes, got ${value.length}`);
}

export function checkKey32(key: Uint8Array, field: string): void {
  ensure(key.length === 32, field, `must be 32 bytes, got ${key.length}`);
}

export function checkHkdfLength(length: number): void {
  ensure(
    Number.isSafeInteger(length) && length >= 0 && length <= HKDF_SHA256_MAX_LENGTH,
    'length',
    `HKDF-SHA256 output length must be an integer in [0, ${HKDF_SHA256_MAX_LENGTH}], got ${length}`,
  );
}

export function checkByteCount(length: number, field: string): void {
  ensure(Number.isSafeInteger(length) && length >= 0, field, `must be a non-negative integer, got ${length}`);
}

export function checkP256PrivateKey(privateKey: Uint8Array): void {
  checkKey32(privateKey, 'privateKey');
  let d = 0n;
  for (const byte of privateKey) d = (d << 8n) | BigInt(byte);
  ensure(d > 0n && d < P256_ORDER, 'privateKey', 'P-256 private key must be in [1, n-1]');
}

/** SEC1 compressed (33 bytes, 02/03) or uncompressed (65 bytes, 04) point shape; hostile input, so a boolean. */
export function isSec1PointShape(publicKey: Uint8Array): boolean {
  const prefix = publicKey[0];
  return (
    (publicKey.length === 33 && (prefix === 0x02 || prefix === 0x03)) || (publicKey.length === 65 && prefix === 0x04)
  );
}

/**
 * Ed25519 public keys refused by strict (RFC 8032) verification before any
 * curve math: a y coordinate ≥ p (non-canonical encoding) or one of the 8
 * small-order points. noble's `zip215: false` refuses them anyway; OpenSSL
 * accepts small-order keys, with which anyone can forge a signature (the
 * identity key verifies R = identity, S = 0 on every message), so the node
 * adapter calls this too and both suites agree.
 * Small-order points by y (little-endian, sign bit cleared): 0 (order 4),
 * 1 (identity), p − 1 (order 2) and ±y₈ (order 8); with both x signs these
 * are all 8 (test/crypto/suite.test.ts checks them against noble).
 */
const ED25519_SMALL_ORDER_Y = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
].map(hexToBytes);

export function isRefusedEd25519PublicKey(publicKey: Uint8Array): boolean {
  if (publicKey.length !== 32) return true;
  const top = (publicKey[31] ?? 0) & 0x7f; // the sign bit of x is not part of y
  // y ≥ p = 2^255 − 19 ⇔ top byte 0x7f, bytes 1..30 all 0xff, low byte ≥ 0xed.
  let nonCanonical = top === 0x7f && (publicKey[0] ?? 0) >= 0xed;
  for (let i = 1; nonCanonical && i < 31; i++) nonCanonical = publicKey[i] === 0xff;
  return (
    nonCanonical ||
    ED25519_SMALL_ORDER_Y.some((y) => {
      if (y[31] !== top) return false;
      for (let i = 0; i < 31; i++) if (y[i] !== publicKey[i]) return false;
      return true;
    })
  );
}

function isAllZero(bytes: Uint8Array): boolean {
  let acc = 0;
  for (const byte of bytes) acc |= byte;
  return acc === 0;
}

// ------------------------------------------------------------ suite

const NO_PADDING = { disablePadding: true } as const;

export const nobleSuite: CryptoSuite = {
  name: 'noble',

  sha256: (data) => sha256(data),

  hmacSha256: (key, data) => hmac(sha256, key, data),

  hkdfSha256(ikm, salt, info, length) {
    checkHkdfLength(length);
    return hkdf(sha256, ikm, salt, info, length);
  },

  aesEcbEncrypt(key, data) {
    checkAesKey(key);
    checkBlockAligned(data);
    return ecb(key, NO_PADDING).encrypt(data);
  },

  aesEcbDecrypt(key, data) {
    checkAesKey(key);
    checkBlockAligned(data);
    return ecb(key, NO_PADDING).decrypt(data);
  },

  aesCtr(key, counter, data) {
    checkAesKey(key);
    checkBlock(counter, 'counter');
    // noble's ctr increments the whole 16-byte block big-endian (SP 800-38A B.1), like OpenSSL.
    return ctr(key, counter).encrypt(data);
  },

  aesCbcEncrypt(key, iv, data) {
    checkAesKey(key);
    checkBlock(iv, 'iv');
    checkBlockAligned(data);
    return cbc(key, iv, NO_PADDING).encrypt(data);
  },

  aesCbcDecrypt(key, iv, data) {
    checkAesKey(key);
    checkBlock(iv, 'iv');
    checkBlockAligned(data);
    return cbc(key, iv, NO_PADDING).decrypt(data);
  },

  x25519PublicKey(privateKey) {
    checkKey32(privateKey, 'privateKey');
    return x25519.getPublicKey(privateKey);
  },

  x25519(privateKey, peerPublicKey) {
    checkKey32(privateKey, 'privateKey');
    checkKey32(peerPublicKey, 'peerPublicKey');
    try {
      const shared = x25519.getSharedSecret(privateKey, peerPublicKey);
      // Unreachable with clamped scalars once low-order points are refused, kept as the RFC's check.
      return isAllZero(shared) ? undefined : shared;
    } catch {
      // noble throws exactly for the low-order blocklist (lengths were checked above).
      return undefined;
    }
  },

  ed25519PublicKey(seed) {
    checkKey32(seed, 'seed');
    return ed25519.getPublicKey(seed);
  },

  ed25519Sign(seed, message) {
    checkKey32(seed, 'seed');
    return ed25519.sign(message, seed);
  },

  ed25519Verify(publicKey, message, signature) {
    if (signature.length !== 64 || isRefusedEd25519PublicKey(publicKey)) return false;
    try {
      return ed25519.verify(signature, message, publicKey, { zip215: false });
    } catch {
      return false;
    }
  },

  p256PublicKey(privateKey) {
    checkP256PrivateKey(privateKey);
    return p256.getPublicKey(privateKey, false);
  },

  p256Sign(privateKey, message) {
    checkP256PrivateKey(privateKey);
    return p256.sign(message, privateKey, { prehash: true, lowS: false, format: 'der' });
  },

  p256Verify(publicKey, message, derSignature) {
    if (!isSec1PointShape(publicKey)) return false;
    try {
      return p256.verify(derSignature, message, publicKey, { prehash: true, lowS: false, format: 'der' });
    } catch {
      return false;
    }
  },

  randomBytes(length) {
    checkByteCount(length, 'length');
    // crypto.getRandomValues caps one call at 65536 bytes; fill larger requests in chunks.
    const out = new Uint8Array(length);
    for (let offset = 0; offset < length; offset += 65536) {
      out.set(randomBytes(Math.min(65536, length - offset)), offset);
    }
    return out;
  },
};
