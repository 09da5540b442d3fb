/**
 * Strict base64url (RFC 4648 §5) for Fernet keys and tokens (SPECS §5).
 *
 * Hand-written because protocol/ may not use Buffer, and because Buffer's
 * decoder is lenient in ways a verifier must not be: it silently skips
 * characters outside the alphabet (SPECS §7.25 — the "invalid base64" vector
 * `%%%…` decodes to 63 bytes instead of failing). Here every character, the
 * padding and the unused trailing bits are checked explicitly, and hostile
 * text yields a `Rejection`, never an exception.
 *
 * Canonical form only: the decoder refuses non-zero unused bits in the last
 * character (RFC 4648 §3.5 allows decoders to reject them). Otherwise several
 * strings decode to the same token, and a verifier that counts or caches
 * tokens by their text could be fed "new" copies of an old token.
 */
import { accept, reject, type Verdict } from '../errors.ts';

/** RFC 4648 §5 Table 2: the URL- and filename-safe alphabet. */
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const PAD_CHAR = '=';
const PAD_CODE = 0x3d;
const CODEC = 'base64url';

/** Marks a character outside the alphabet in the decode table (alphabet values are 0..63). */
const INVALID = 0xff;
/** Only ASCII can be in the alphabet; the table covers the 7-bit range. */
const ASCII_LIMIT = 128;

const DECODE_TABLE: Uint8Array = (() => {
  const table = new Uint8Array(ASCII_LIMIT).fill(INVALID);
  for (let i = 0; i < ALPHABET.length; i++) table[ALPHABET.charCodeAt(i)] = i;
  return table;
})();

/**
 * Every 12-bit value as its two output characters: one table lookup per
 * half of a 3-byte group keeps encoding a 73-byte token to ~50 lookups.
 */
const ENCODE_PAIRS: readonly string[] = Array.from({ length: 4096 }, (_, n) => ALPHABET.charAt(n >> 6) + ALPHABET.charAt(n & 63));

export interface Base64UrlEncodeOptions {
  /** Append `=` to a multiple of 4 characters (default true: the Fernet vectors are padded, SPECS §7.25). */
  readonly padding?: boolean;
}

/** Encode `bytes` as base64url (RFC 4648 §5), padded unless `padding: false`. */
export function encodeBase64Url(bytes: Uint8Array, options: Base64UrlEncodeOptions = {}): string {
  const padding = options.padding ?? true;
  const rest = bytes.length % 3;
  const full = bytes.length - rest;
  let out = '';
  for (let i = 0; i < full; i += 3) {
    const n = ((bytes[i] ?? 0) << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out += (ENCODE_PAIRS[n >> 12] ?? '') + (ENCODE_PAIRS[n & 0xfff] ?? '');
  }
  if (rest === 1) {
    const n = (bytes[full] ?? 0) << 4;
    out += ENCODE_PAIRS[n] ?? '';
    if (padding) out += PAD_CHAR + PAD_CHAR;
  } else if (rest === 2) {
    const n = (((bytes[full] ?? 0) << 8) | (bytes[full + 1] ?? 0)) << 2;
    out += (ENCODE_PAIRS[n >> 6] ?? '') + ALPHABET.charAt(n & 63);
    if (padding) out += PAD_CHAR;
  }
  return out;
}

export interface Base64UrlDecodeOptions {
  /**
   * `required` (default): length a multiple of 4, `=` padding as Fernet
   * emits it — the only form in the vectors and in pyca, which rejects
   * unpadded input. `forbidden`: no `=` at all (RFC 4648 §3.2 "padding
   * omitted" profiles). There is deliberately no "either" mode: one token,
   * one text.
   */
  readonly padding?: 'required' | 'forbidden';
}

/** Value of the alphabet character at `i`, or INVALID. */
function valueAt(text: string, i: number): number {
  const code = text.charCodeAt(i);
  return code < ASCII_LIMIT ? (DECODE_TABLE[code] ?? INVALID) : INVALID;
}

function badChar(text: string, i: number): Verdict<never> {
  const code = text.charCodeAt(i);
  return code === PAD_CODE
    ? reject(CODEC, 'bad-padding', `'=' at position ${i} is not trailing padding`)
    : reject(CODEC, 'bad-char', `character ${JSON.stringify(text.charAt(i))} at position ${i} is outside the base64url alphabet`);
}

/**
 * Decode strict base64url. Reasons (codec `base64url`): `bad-length`
 * (impossible length for the padding mode), `bad-padding` (`=` misplaced or
 * too many), `bad-char` (outside the alphabet, including `+` `/` and
 * whitespace), `non-canonical` (non-zero unused bits in the last character).
 */
export function decodeBase64Url(text: string, options: Base64UrlDecodeOptions = {}): Verdict<Uint8Array> {
  const padded = (options.padding ?? 'required') === 'required';
  let body = text.length;
  if (padded) {
    if (text.length % 4 !== 0) return reject(CODEC, 'bad-length', `length ${text.length} is not a multiple of 4 (padding required)`);
    // At most two `=`: a 4-character group carries at least one byte (RFC 4648 §4).
    if (body > 0 && text.charCodeAt(body - 1) === PAD_CODE) body--;
    if (body > 0 && text.charCodeAt(body - 1) === PAD_CODE) body--;
    if (body > 0 && text.charCodeAt(body - 1) === PAD_CODE) return reject(CODEC, 'bad-padding', 'more than two padding characters');
  } else if (body % 4 === 1) {
    return reject(CODEC, 'bad-length', `length ${body} leaves a lone character (6 bits) in the last group`);
  }

  const rest = body % 4;
  const full = body - rest;
  const out = new Uint8Array((full / 4) * 3 + (rest === 0 ? 0 : rest - 1));
  let o = 0;
  for (let i = 0; i < full; i += 4) {
    const a = valueAt(text, i);
    const b = valueAt(text, i + 1);
    const c = valueAt(text, i + 2);
    const d = valueAt(text, i + 3);
    // INVALID has bits above the 6-bit range, so one OR tests all four characters.
    if (((a | b | c | d) & ~63) !== 0) {
      for (let k = i; ; k++) if (valueAt(text, k) === INVALID) return badChar(text, k);
    }
    const n = (a << 18) | (b << 12) | (c << 6) | d;
    out[o++] = n >> 16;
    out[o++] = (n >> 8) & 0xff;
    out[o++] = n & 0xff;
  }
  if (rest > 0) {
    let n = 0;
    for (let k = full; k < body; k++) {
      const v = valueAt(text, k);
      if (v === INVALID) return badChar(text, k);
      n = (n << 6) | v;
    }
    // 2 characters carry 12 bits for 1 byte (4 unused), 3 carry 18 bits for 2 bytes (2 unused).
    const unusedBits = rest === 2 ? 4 : 2;
    if ((n & ((1 << unusedBits) - 1)) !== 0) {
      return reject(CODEC, 'non-canonical', `unused bits of the last character ${JSON.stringify(text.charAt(body - 1))} are not zero`);
    }
    n >>= unusedBits;
    if (rest === 3) out[o++] = n >> 8;
    out[o] = n & 0xff;
  }
  return accept(out);
}
