/**
 * PKCS#7 padding (RFC 5652 §6.3), as Fernet applies it before AES-128-CBC
 * (SPECS §5). The block size is a parameter only so the rules are stated
 * once; Fernet always uses the AES block.
 */
import { ensure } from '../errors.ts';

/** AES block size in bytes (FIPS 197); Fernet pads to it (SPECS §5). */
export const PKCS7_AES_BLOCK_BYTES = 16;
/** RFC 5652 §6.3 stores the pad length in one byte, so a block is at most 255 bytes. */
const PKCS7_MAX_BLOCK_BYTES = 255;

function checkBlockSize(blockBytes: number): void {
  ensure(
    Number.isInteger(blockBytes) && blockBytes >= 1 && blockBytes <= PKCS7_MAX_BLOCK_BYTES,
    'blockBytes',
    `must be an integer in [1, ${PKCS7_MAX_BLOCK_BYTES}], got ${blockBytes}`,
  );
}

/** Length of `pkcs7Pad` output for a message of `length` bytes: always 1..blockBytes bytes longer. */
export function pkcs7PaddedLength(length: number, blockBytes = PKCS7_AES_BLOCK_BYTES): number {
  return length + (blockBytes - (length % blockBytes));
}

/**
 * A new array: `data` followed by k bytes of value k, 1 ≤ k ≤ blockBytes
 * (a full block of padding when `data` is already aligned, so unpadding is
 * never ambiguous).
 */
export function pkcs7Pad(data: Uint8Array, blockBytes = PKCS7_AES_BLOCK_BYTES): Uint8Array {
  checkBlockSize(blockBytes);
  const out = new Uint8Array(pkcs7PaddedLength(data.length, blockBytes));
  out.set(data);
  out.fill(out.length - data.length, data.length);
  return out;
}

/**
 * The message inside PKCS#7-padded `data` as a view (no copy), or
 * `undefined` when the padding is invalid: length not a positive multiple
 * of the block, pad byte 0 or above the block size, or any of the last k
 * bytes ≠ k. Returns `undefined` rather than a Rejection so callers attach
 * their own codec and reason (Fernet: `bad-padding`).
 *
 * Not constant time: in Fernet, padding is checked only after the HMAC has
 * authenticated the ciphertext (encrypt-then-MAC), so there is no padding
 * oracle to protect.
 */
export function pkcs7Unpad(data: Uint8Array, blockBytes = PKCS7_AES_BLOCK_BYTES): Uint8Array | undefined {
  checkBlockSize(blockBytes);
  if (data.length === 0 || data.length % blockBytes !== 0) return undefined;
  const pad = data[data.length - 1] ?? 0;
  if (pad < 1 || pad > blockBytes) return undefined;
  for (let i = data.length - pad; i < data.length - 1; i++) if (data[i] !== pad) return undefined;
  return data.subarray(0, data.length - pad);
}
