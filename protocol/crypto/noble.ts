/**
 * The pure-JS crypto suite (@noble/*): runs in browsers, on any Node and on
 * the Raspberry Pis. node:crypto (services/crypto/node.ts) must agree with it
 * byte for byte; test/crypto/suite.test.ts holds both to the same vectors.
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
import { randomBytes } from '@noble/hashes/utils.js';
import { ecbBatch, hkdfSha256Batch } from './batch.ts';
import { checkAesKey, checkBlock, checkBlockAligned, checkByteCount, checkHkdfLength, checkKey32, checkP256PrivateKey, isRefusedEd25519PublicKey, isSec1PointShape } from './args.ts';
import type { CryptoSuite } from './suite.ts';

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

  // Pure TS with per-salt HMAC states (batch.ts): noble's hkdf sets up two HMACs per call.
  hkdfSha256Batch: (ikms, ikmLength, salt, info, length, out) => hkdfSha256Batch(ikms, ikmLength, salt, info, length, out),

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

  aesEcbEncryptBatch: (keys, keyLength, data, blockCounts, out) =>
    ecbBatch(keys, keyLength, data, blockCounts, out, (key, segment) => ecb(key, NO_PADDING).encrypt(segment)),

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
