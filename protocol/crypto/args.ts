/**
 * Argument checks shared by both crypto suites (noble here, node:crypto in
 * services/crypto/node.ts), so misuse throws the very same MisuseErrors —
 * same field names, same messages — whichever implementation runs.
 */
import { hexToBytes } from '@noble/hashes/utils.js';
import { ensure } from '../errors.ts';

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
