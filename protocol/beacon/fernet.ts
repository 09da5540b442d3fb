/**
 * Fernet (SPECS §5), the format of the SmartBeacon quarantine-check token:
 *
 *   Version 0x80 (1) ‖ Timestamp (8, uint64 BE Unix s) ‖ IV (16) ‖ Ciphertext (n·16) ‖ HMAC (32)
 *
 * Ciphertext = AES-128-CBC(encryption key, IV, PKCS#7(message)); HMAC =
 * HMAC-SHA256(signing key, everything before it). Pure: the crypto suite,
 * the clock (`now`) and the IV are arguments.
 *
 * Verification never throws on hostile tokens: it returns a Rejection with
 * codec `fernet` and one of the reasons below, checked in this order (the
 * spec's order, SPECS §5 and §7.24):
 *   bad-length    (text longer than the cap — before decoding, to bound work)
 *   bad-base64    strict base64url with `=` padding (SPECS §7.25)
 *   bad-version   first byte ≠ 0x80
 *   bad-length    decoded length < 73, (length − 57) not a multiple of 16, or > cap
 *   bad-timestamp uint64 timestamp above Number.MAX_SAFE_INTEGER (not representable)
 *   expired       only with a TTL: timestamp + ttl < now
 *   future        only with a TTL: now + 60 < timestamp
 *   bad-hmac      HMAC mismatch (constant-time comparison)
 *   bad-padding   PKCS#7 padding of the decrypted message invalid
 * Caller misuse (wrong key length, `now` not a non-negative safe integer)
 * throws MisuseError.
 */
import { constantTimeEqual } from '../crypto/ct.ts';
import type { CryptoSuite } from '../crypto/suite.ts';
import { accept, ensure, MisuseError, reject, type Verdict } from '../errors.ts';
import { decodeBase64Url, encodeBase64Url } from './base64url.ts';
import { PKCS7_AES_BLOCK_BYTES, pkcs7Pad, pkcs7Unpad } from './pkcs7.ts';

/** The only Fernet version (SPECS §5). */
export const FERNET_VERSION = 0x80;
/** Largest accepted distance of a token's timestamp into the future: pyca `_MAX_CLOCK_SKEW` (SPECS §5, §7.23). */
export const FERNET_MAX_CLOCK_SKEW_S = 60;

/** Key = signing key (16) ‖ encryption key (16) (SPECS §5). */
export const FERNET_KEY_BYTES = 32;
export const FERNET_KEY_HALF_BYTES = 16;
/** Field sizes of the token layout (SPECS §5). */
export const FERNET_VERSION_BYTES = 1;
export const FERNET_TIMESTAMP_BYTES = 8;
export const FERNET_IV_BYTES = 16;
export const FERNET_BLOCK_BYTES = PKCS7_AES_BLOCK_BYTES;
export const FERNET_HMAC_BYTES = 32;
/** Everything but the ciphertext: 1 + 8 + 16 + 32 = 57 bytes (SPECS §5). */
export const FERNET_OVERHEAD_BYTES = FERNET_VERSION_BYTES + FERNET_TIMESTAMP_BYTES + FERNET_IV_BYTES + FERNET_HMAC_BYTES;
/** One ciphertext block at least (PKCS#7 always pads): 57 + 16 = 73 bytes (SPECS §5). */
export const FERNET_MIN_TOKEN_BYTES = FERNET_OVERHEAD_BYTES + FERNET_BLOCK_BYTES;
/**
 * Our cap on a decoded token, 64 KiB (the spec sets none): bounds the work a
 * hostile token can cause. A presence token is 73 bytes.
 */
export const FERNET_MAX_TOKEN_BYTES = 65_536;
/** Padded base64url length of a token at the cap (4 characters per 3 bytes, RFC 4648 §4). */
export const FERNET_MAX_TOKEN_TEXT_LENGTH = Math.ceil(FERNET_MAX_TOKEN_BYTES / 3) * 4;

const TIMESTAMP_OFFSET = FERNET_VERSION_BYTES;
const IV_OFFSET = TIMESTAMP_OFFSET + FERNET_TIMESTAMP_BYTES;
const CIPHERTEXT_OFFSET = IV_OFFSET + FERNET_IV_BYTES;
const UINT32_RANGE = 0x1_0000_0000;
/** High 32 bits of Number.MAX_SAFE_INTEGER (2^53 − 1): larger high words are not representable. */
const MAX_SAFE_HIGH_WORD = 0x1f_ffff;

const CODEC = 'fernet';

export interface FernetKey {
  /** HMAC-SHA256 key: the first 16 bytes of the Fernet key (SPECS §5). */
  readonly signingKey: Uint8Array;
  /** AES-128 key: the last 16 bytes (SPECS §5). */
  readonly encryptionKey: Uint8Array;
}

/**
 * Split a Fernet key (32 raw bytes, or base64url with `=` padding as pyca
 * `Fernet.generate_key()` writes it) into its halves. The halves are views
 * of a private copy: later changes to the caller's array do not alter the
 * key. Keep the returned object and reuse it: the node:crypto suite caches
 * its AES state per key array.
 */
export function parseFernetKey(key: Uint8Array | string): FernetKey {
  let bytes: Uint8Array;
  if (typeof key === 'string') {
    const decoded = decodeBase64Url(key);
    if (!decoded.ok) throw new MisuseError('key', `not base64url with '=' padding (${decoded.reason}: ${decoded.detail})`);
    bytes = decoded.value;
  } else {
    bytes = new Uint8Array(key);
  }
  ensure(bytes.length === FERNET_KEY_BYTES, 'key', `a Fernet key is ${FERNET_KEY_BYTES} bytes, got ${bytes.length}`);
  return { signingKey: bytes.subarray(0, FERNET_KEY_HALF_BYTES), encryptionKey: bytes.subarray(FERNET_KEY_HALF_BYTES) };
}

/** The key in its usual text form (base64url with padding). */
export function encodeFernetKey(key: FernetKey): string {
  checkKey(key);
  const bytes = new Uint8Array(FERNET_KEY_BYTES);
  bytes.set(key.signingKey);
  bytes.set(key.encryptionKey, FERNET_KEY_HALF_BYTES);
  return encodeBase64Url(bytes);
}

function checkKey(key: FernetKey): void {
  ensure(
    key.signingKey.length === FERNET_KEY_HALF_BYTES && key.encryptionKey.length === FERNET_KEY_HALF_BYTES,
    'key',
    `signing and encryption keys must be ${FERNET_KEY_HALF_BYTES} bytes each (use parseFernetKey)`,
  );
}

/** Unix seconds or a TTL: the uint64 field holds any of these, the verifier compares them exactly. */
function checkSeconds(value: number, field: string): void {
  ensure(Number.isSafeInteger(value) && value >= 0, field, `must be an integer number of seconds in [0, 2^53 − 1], got ${value}`);
}

export interface FernetCreateOptions {
  /** Token timestamp, Unix seconds (integer ≥ 0). */
  readonly now: number;
  /** 16 bytes, unique per token (SPECS §5): random, or from the seeded Rng in simulation. */
  readonly iv: Uint8Array;
  readonly message: Uint8Array;
}

/** The raw token bytes (see `encodeFernetToken` for the text form). */
export function createFernetToken(suite: CryptoSuite, key: FernetKey, options: FernetCreateOptions): Uint8Array {
  checkKey(key);
  checkSeconds(options.now, 'options.now');
  ensure(options.iv.length === FERNET_IV_BYTES, 'options.iv', `must be ${FERNET_IV_BYTES} bytes, got ${options.iv.length}`);
  const ciphertextLength = (Math.floor(options.message.length / FERNET_BLOCK_BYTES) + 1) * FERNET_BLOCK_BYTES;
  const tokenLength = FERNET_OVERHEAD_BYTES + ciphertextLength;
  // Refuse to create what verifyFernetToken would reject.
  ensure(
    tokenLength <= FERNET_MAX_TOKEN_BYTES,
    'options.message',
    `${options.message.length} bytes make a ${tokenLength}-byte token, above the ${FERNET_MAX_TOKEN_BYTES}-byte cap`,
  );

  const ciphertext = suite.aesCbcEncrypt(key.encryptionKey, options.iv, pkcs7Pad(options.message, FERNET_BLOCK_BYTES));
  const token = new Uint8Array(tokenLength);
  token[0] = FERNET_VERSION;
  writeUint64(token, TIMESTAMP_OFFSET, options.now);
  token.set(options.iv, IV_OFFSET);
  token.set(ciphertext, CIPHERTEXT_OFFSET);
  const macOffset = tokenLength - FERNET_HMAC_BYTES;
  token.set(suite.hmacSha256(key.signingKey, token.subarray(0, macOffset)), macOffset);
  return token;
}

/** base64url with `=` padding, as the spec's vectors (SPECS §5, §7.25). */
export function encodeFernetToken(token: Uint8Array): string {
  return encodeBase64Url(token);
}

export interface FernetVerifyOptions {
  /** Verifier's clock, Unix seconds (integer ≥ 0). */
  readonly now: number;
  /** Maximum age in seconds; when absent, no time checks at all (pyca, SPECS §5). */
  readonly ttlS?: number | undefined;
}

export interface FernetContents {
  /** The decrypted message (a view into a fresh array the verifier owns). */
  readonly message: Uint8Array;
  /** The token's timestamp, Unix seconds. */
  readonly timestamp: number;
}

/** Verify a token (raw bytes, or base64url text with padding) and return its message and timestamp. */
export function verifyFernetToken(
  suite: CryptoSuite,
  key: FernetKey,
  token: Uint8Array | string,
  options: FernetVerifyOptions,
): Verdict<FernetContents> {
  checkKey(key);
  checkSeconds(options.now, 'options.now');
  const ttl = options.ttlS;
  if (ttl !== undefined) checkSeconds(ttl, 'options.ttlS');

  let data: Uint8Array;
  if (typeof token === 'string') {
    // Checked on the text first so a huge hostile string is not decoded at all.
    if (token.length > FERNET_MAX_TOKEN_TEXT_LENGTH) {
      return reject(CODEC, 'bad-length', `token text of ${token.length} characters exceeds the ${FERNET_MAX_TOKEN_BYTES}-byte cap`);
    }
    const decoded = decodeBase64Url(token);
    if (!decoded.ok) return reject(CODEC, 'bad-base64', `${decoded.reason}: ${decoded.detail}`);
    data = decoded.value;
  } else {
    data = token;
  }

  const length = data.length;
  if (data[0] !== FERNET_VERSION) {
    return reject(CODEC, 'bad-version', length === 0 ? 'empty token' : `version byte 0x${(data[0] ?? 0).toString(16)}, expected 0x80`);
  }
  if (length < FERNET_MIN_TOKEN_BYTES || length > FERNET_MAX_TOKEN_BYTES || (length - FERNET_OVERHEAD_BYTES) % FERNET_BLOCK_BYTES !== 0) {
    return reject(
      CODEC,
      'bad-length',
      `${length} bytes; expected 57 + 16·n bytes with n ≥ 1, at most ${FERNET_MAX_TOKEN_BYTES} (SPECS §5)`,
    );
  }

  const high = readUint32(data, TIMESTAMP_OFFSET);
  const low = readUint32(data, TIMESTAMP_OFFSET + 4);
  if (high > MAX_SAFE_HIGH_WORD) {
    return reject(CODEC, 'bad-timestamp', `timestamp 0x${high.toString(16)}${low.toString(16).padStart(8, '0')} exceeds 2^53 − 1`);
  }
  const timestamp = high * UINT32_RANGE + low;

  // Time before HMAC, as the spec orders it (SPECS §7.24). Written as
  // differences so the comparisons stay exact for any safe-integer inputs.
  if (ttl !== undefined) {
    if (options.now - timestamp > ttl) return reject(CODEC, 'expired', `timestamp ${timestamp} + ttl ${ttl} < now ${options.now}`);
    if (timestamp - options.now > FERNET_MAX_CLOCK_SKEW_S) {
      return reject(CODEC, 'future', `timestamp ${timestamp} is more than ${FERNET_MAX_CLOCK_SKEW_S} s after now ${options.now}`);
    }
  }

  const macOffset = length - FERNET_HMAC_BYTES;
  const expectedMac = suite.hmacSha256(key.signingKey, data.subarray(0, macOffset));
  if (!constantTimeEqual(expectedMac, data.subarray(macOffset))) return reject(CODEC, 'bad-hmac', 'HMAC-SHA256 does not match');

  const plaintext = suite.aesCbcDecrypt(key.encryptionKey, data.subarray(IV_OFFSET, CIPHERTEXT_OFFSET), data.subarray(CIPHERTEXT_OFFSET, macOffset));
  const message = pkcs7Unpad(plaintext, FERNET_BLOCK_BYTES);
  if (message === undefined) return reject(CODEC, 'bad-padding', 'PKCS#7 padding of the decrypted message is invalid');
  return accept({ message, timestamp });
}

function readUint32(bytes: Uint8Array, offset: number): number {
  return (((bytes[offset] ?? 0) << 24) | ((bytes[offset + 1] ?? 0) << 16) | ((bytes[offset + 2] ?? 0) << 8) | (bytes[offset + 3] ?? 0)) >>> 0;
}

/** Big-endian uint64 of a safe integer (checked by the caller). */
function writeUint64(bytes: Uint8Array, offset: number, value: number): void {
  const high = Math.floor(value / UINT32_RANGE);
  const low = value % UINT32_RANGE;
  for (let i = 0; i < 4; i++) {
    bytes[offset + 3 - i] = (high >>> (8 * i)) & 0xff;
    bytes[offset + 7 - i] = (low >>> (8 * i)) & 0xff;
  }
}
