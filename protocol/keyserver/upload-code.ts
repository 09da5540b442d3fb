/**
 * One-time upload codes (issue 4 "Providers and codes"): a healthcare
 * provider hands a patient a code on paper; the patient's phone sends it
 * with the diagnosis keys; the key server accepts the upload once, before
 * the code expires, on behalf of the provider that issued it.
 *
 *   printed:   XXXX-XXXX-XXXX-XXXX-C      16 data symbols + 1 check symbol
 *   data:      80 random bits (10 bytes, caller-supplied), big-endian, 5 bits per
 *              symbol, in Crockford's Base32 alphabet 0-9 A-Z without I L O U
 *   check:     Damm check symbol over GF(32), in the same alphabet
 *   stored:    HMAC-SHA-256(pepper, "tracecity/v1/upload-code" ‖ 0x00 ‖ bytes) — never the code
 *
 * Size: 80 bits is the smallest multiple of 5 bits at or above the issue's
 * 64-bit floor that fills whole bytes (10 bytes = 16 symbols exactly), so
 * every 16-symbol string is a code and no symbol carries unused bits. A
 * guesser with 10^7 live codes outstanding hits one with probability
 * 10^7 / 2^80 ≈ 8·10^-18 per guess, before any rate limit or lockout
 * (rate-limit.ts). The secret needs no slow hash: 2^80 HMACs is out of reach
 * even with the pepper, which lives outside the database anyway.
 *
 * Alphabet and reading rules: Douglas Crockford, "Base32 Encoding"
 * (https://www.crockford.com/base32.html): upper case on output; on input
 * case is ignored, O/o read as 0 and I/i/L/l as 1, hyphens are ignored (we
 * also ignore white space and the Unicode dashes a word processor puts in).
 * U/u is not a symbol (Crockford uses it only for his mod-37 check symbol).
 *
 * Check symbol: the Damm algorithm (H. Michael Damm, "Total anti-symmetrische
 * Quasigruppen", Dissertation, Philipps-Universität Marburg, 2004; Beispiel
 * 5.2: over a field GF(q), (x, y) ↦ a·x + y with a ∉ {0, 1} is a totally
 * anti-symmetric quasigroup) with q = 32, a = 2 and the input symbol
 * multiplied by 2, i.e. x ⋆ y = 2·(x ⊕ y) in GF(2^5) mod x^5 + x^2 + 1 —
 * the base-32 form given at https://stackoverflow.com/q/23431621 (the column
 * permutation y ↦ 2·y keeps both properties and makes the diagonal zero, so
 * the check symbol equals the interim value). Interim r₀ = 0, rᵢ = rᵢ₋₁ ⋆ dᵢ;
 * the check symbol is r₁₆, and a code is valid iff its 17 symbols give 0.
 * Why every error below is caught (test/keyserver/upload-code.test.ts checks
 * the two table properties exhaustively and the errors on random codes):
 * - one symbol substituted: ⋆ is a Latin square (2 is invertible and ⊕ is a
 *   group), so the interim differs from that position on, and r ↦ r ⋆ d is a
 *   bijection, so it stays different and the total is not 0;
 * - two adjacent symbols a ≠ b swapped (the check symbol included):
 *   (r ⋆ a) ⋆ b = 4r ⊕ 4a ⊕ 2b and (r ⋆ b) ⋆ a = 4r ⊕ 4b ⊕ 2a differ because
 *   6·(a ⊕ b) ≠ 0 in a field; then the same bijection argument.
 * Crockford's own mod-37 check would do as well, but needs five extra
 * symbols (* ~ $ = U) that are hard to type on a phone and that a reader
 * takes for a hyphen (~, =) or an S ($).
 *
 * Parsing hostile text never throws: it returns a Rejection with codec
 * `upload-code` and one of these reasons, checked in this order:
 *   not-a-string     the value is not a string
 *   input-too-long   more than UPLOAD_CODE_MAX_INPUT_CHARS characters, before anything else is looked at
 *   bad-character    a character that is neither a symbol, a look-alike nor a separator (`field`: its index)
 *   wrong-length     not exactly 17 symbols once separators are removed
 *   bad-check        the Damm check fails: a mistyped or made-up code
 * Redeeming a record (codec `upload-code-record`): `used`, then `expired`.
 * Caller misuse (wrong random byte count, short pepper, bad times) throws
 * MisuseError naming the field.
 */
import { constantTimeEqual } from '../crypto/ct.ts';
import type { CryptoSuite } from '../crypto/suite.ts';
import { accept, ensure, reject, type Verdict } from '../errors.ts';

export const UPLOAD_CODE_CODEC = 'upload-code';
export const UPLOAD_CODE_REJECTION_REASONS = ['not-a-string', 'input-too-long', 'bad-character', 'wrong-length', 'bad-check'] as const;
export const UPLOAD_CODE_RECORD_CODEC = 'upload-code-record';
export const REDEEM_REJECTION_REASONS = ['used', 'expired'] as const;

/** Crockford's Base32 symbols, value = index (https://www.crockford.com/base32.html). */
export const CROCKFORD_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
/** Secret bytes per code: 80 bits ≥ the issue's 64-bit floor, exactly 16 symbols (see the header). */
export const UPLOAD_CODE_BYTES = 10;
export const UPLOAD_CODE_BITS = UPLOAD_CODE_BYTES * 8;
const BITS_PER_SYMBOL = 5;
/** 80 bits / 5 bits per symbol. */
export const UPLOAD_CODE_DATA_SYMBOLS = UPLOAD_CODE_BITS / BITS_PER_SYMBOL;
/** Data symbols plus the Damm check symbol. */
export const UPLOAD_CODE_SYMBOLS = UPLOAD_CODE_DATA_SYMBOLS + 1;
/** Printed as four groups of four data symbols, then the check symbol: XXXX-XXXX-XXXX-XXXX-C. */
export const UPLOAD_CODE_GROUP_SYMBOLS = 4;
/** The printed length: 17 symbols + 4 hyphens. */
export const UPLOAD_CODE_PRINTED_CHARS = UPLOAD_CODE_SYMBOLS + UPLOAD_CODE_DATA_SYMBOLS / UPLOAD_CODE_GROUP_SYMBOLS;
/**
 * Longest input looked at: twice the printed form leaves room for spaces
 * around every group; beyond it the text is not a code a person typed.
 */
export const UPLOAD_CODE_MAX_INPUT_CHARS = 2 * UPLOAD_CODE_PRINTED_CHARS;
/** HMAC-SHA-256 key floor: RFC 2104 §3 discourages keys shorter than the output (32 bytes). */
export const UPLOAD_CODE_PEPPER_MIN_BYTES = 32;
export const UPLOAD_CODE_DIGEST_BYTES = 32;
/** Domain separation for the stored digest, NUL-terminated (the code after it has a fixed length). */
const DIGEST_LABEL = new TextEncoder().encode('tracecity/v1/upload-code\0');
/**
 * Default lifetime: the "long codes … last longer, like 24 hours" of
 * google/exposure-notifications-verification-server (README) — a code on
 * paper must survive the trip home.
 */
export const DEFAULT_UPLOAD_CODE_LIFETIME_MS = 24 * 60 * 60 * 1000;
/** Longest lifetime accepted: the key retention (14 days, issue 4); keys authorized later would be past distribution. */
export const MAX_UPLOAD_CODE_LIFETIME_MS = 14 * 24 * 60 * 60 * 1000;
/** Provider ids are short printable names (they end up in events and logs). */
export const MAX_PROVIDER_ID_CHARS = 64;

/** GF(2^5) reduction: x^5 + x^2 + 1 (0b100101), irreducible; 2 = the element x. */
const GF32_MODULUS = 0b10_0101;
const GF32_HIGH_BIT = 0b10_0000;

/** One Damm step over GF(32): x ⋆ y = 2·(x ⊕ y) (see the header). Both arguments in [0, 32). */
export function damm32Step(interim: number, symbol: number): number {
  const doubled = (interim ^ symbol) << 1;
  return doubled & GF32_HIGH_BIT ? doubled ^ GF32_MODULUS : doubled;
}

/** The Damm interim after `symbols`: the check symbol of data, or 0 for a valid data ‖ check. */
export function damm32(symbols: readonly number[]): number {
  let interim = 0;
  for (const symbol of symbols) interim = damm32Step(interim, symbol);
  return interim;
}

/** A parsed code: its secret bytes and its canonical printed form. Plain data. */
export interface UploadCode {
  readonly bytes: Uint8Array;
  /** Canonical form, e.g. `7ZQ4-M0B1-X8RT-K2VD-H`. */
  readonly text: string;
}

/** 10 bytes → 16 symbol values, 5 bits each, most significant first. */
function toSymbols(bytes: Uint8Array): number[] {
  const symbols: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const byte of bytes) {
    acc = ((acc << 8) | byte) & 0xfff; // ≤ 4 + 8 bits pending at any time
    bits += 8;
    while (bits >= BITS_PER_SYMBOL) {
      bits -= BITS_PER_SYMBOL;
      symbols.push((acc >> bits) & 0x1f);
    }
  }
  return symbols;
}

/** 16 symbol values → 10 bytes (80 bits exactly: no leftover bits to check). */
function fromSymbols(symbols: readonly number[]): Uint8Array {
  const bytes = new Uint8Array(UPLOAD_CODE_BYTES);
  let acc = 0;
  let bits = 0;
  let at = 0;
  for (const symbol of symbols) {
    acc = ((acc << BITS_PER_SYMBOL) | symbol) & 0xfff; // ≤ 7 + 5 bits pending at any time
    bits += BITS_PER_SYMBOL;
    if (bits >= 8) {
      bits -= 8;
      bytes[at++] = (acc >> bits) & 0xff;
    }
  }
  return bytes;
}

function printed(symbols: readonly number[]): string {
  let text = '';
  symbols.forEach((value, i) => {
    if (i > 0 && i % UPLOAD_CODE_GROUP_SYMBOLS === 0) text += '-';
    text += CROCKFORD_ALPHABET[value] ?? '';
  });
  return text;
}

/**
 * The printed code for 10 caller-supplied random bytes (a CSPRNG in
 * production, the seeded Rng in simulation): `XXXX-XXXX-XXXX-XXXX-C`.
 */
export function formatUploadCode(randomBytes: Uint8Array): string {
  ensure(randomBytes instanceof Uint8Array && randomBytes.length === UPLOAD_CODE_BYTES, 'randomBytes', `must be ${UPLOAD_CODE_BYTES} bytes (${UPLOAD_CODE_BITS} bits)`);
  const symbols = toSymbols(randomBytes);
  symbols.push(damm32(symbols));
  return printed(symbols);
}

/** Input character → symbol value; look-alikes folded (Crockford); separators map to SEPARATOR. */
const SEPARATOR = -1;
const SYMBOL_OF = new Map<string, number>();
for (let value = 0; value < CROCKFORD_ALPHABET.length; value++) {
  const upper = CROCKFORD_ALPHABET.charAt(value);
  SYMBOL_OF.set(upper, value);
  SYMBOL_OF.set(upper.toLowerCase(), value);
}
for (const zero of 'Oo') SYMBOL_OF.set(zero, 0);
for (const one of 'IiLl') SYMBOL_OF.set(one, 1);
/** Hyphen-minus, white space (ASCII and Unicode) and the Unicode dashes U+2010–U+2015 and minus U+2212. */
const SEPARATOR_PATTERN = /^[-\s\u2010-\u2015\u2212]$/u;

/**
 * Read a code a person typed: case, spaces, hyphens and Crockford's
 * look-alikes are forgiven; anything else is a typed rejection (see header).
 */
export function parseUploadCode(text: unknown): Verdict<UploadCode> {
  if (typeof text !== 'string') return reject(UPLOAD_CODE_CODEC, 'not-a-string', `expected a string, got ${typeof text}`);
  if (text.length > UPLOAD_CODE_MAX_INPUT_CHARS) {
    return reject(UPLOAD_CODE_CODEC, 'input-too-long', `${text.length} characters, at most ${UPLOAD_CODE_MAX_INPUT_CHARS}`);
  }
  const symbols: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const char = text.charAt(i);
    const value = SYMBOL_OF.get(char) ?? (SEPARATOR_PATTERN.test(char) ? SEPARATOR : undefined);
    if (value === undefined) {
      const shown = /^[\x21-\x7e]$/u.test(char) ? `'${char}'` : `U+${char.charCodeAt(0).toString(16).padStart(4, '0')}`;
      return reject(UPLOAD_CODE_CODEC, 'bad-character', `${shown} at index ${i} is not a Base32 symbol`, `text[${i}]`);
    }
    if (value !== SEPARATOR) symbols.push(value);
  }
  if (symbols.length !== UPLOAD_CODE_SYMBOLS) {
    return reject(UPLOAD_CODE_CODEC, 'wrong-length', `${symbols.length} symbols, need ${UPLOAD_CODE_SYMBOLS}`);
  }
  if (damm32(symbols) !== 0) return reject(UPLOAD_CODE_CODEC, 'bad-check', 'the check symbol does not match: mistyped code');
  const data = symbols.slice(0, UPLOAD_CODE_DATA_SYMBOLS);
  return accept({ bytes: fromSymbols(data), text: printed(symbols) });
}

function checkPepper(pepper: Uint8Array): void {
  ensure(pepper instanceof Uint8Array && pepper.length >= UPLOAD_CODE_PEPPER_MIN_BYTES, 'pepper', `must be at least ${UPLOAD_CODE_PEPPER_MIN_BYTES} bytes`);
}

function checkCode(code: UploadCode): void {
  ensure(typeof code === 'object' && code !== null && code.bytes instanceof Uint8Array && code.bytes.length === UPLOAD_CODE_BYTES, 'code.bytes', `must be ${UPLOAD_CODE_BYTES} bytes`);
}

/**
 * What the server stores and looks codes up by: HMAC-SHA-256 under a server
 * pepper (kept out of the database), so a leaked table reveals no code.
 * Looking a record up by this digest leaks nothing useful through timing:
 * without the pepper no one can relate a digest to a code.
 */
export function uploadCodeDigest(crypto: CryptoSuite, code: UploadCode, pepper: Uint8Array): Uint8Array {
  checkCode(code);
  checkPepper(pepper);
  const message = new Uint8Array(DIGEST_LABEL.length + UPLOAD_CODE_BYTES);
  message.set(DIGEST_LABEL);
  message.set(code.bytes, DIGEST_LABEL.length);
  return crypto.hmacSha256(pepper, message);
}

/** Does `code` belong to a stored digest? Compared in constant time (protocol/crypto/ct.ts). */
export function uploadCodeMatches(crypto: CryptoSuite, code: UploadCode, pepper: Uint8Array, storedDigest: Uint8Array): boolean {
  ensure(storedDigest instanceof Uint8Array, 'storedDigest', 'must be a Uint8Array');
  return constantTimeEqual(uploadCodeDigest(crypto, code, pepper), storedDigest);
}

/**
 * What the server keeps per issued code (plain data, msgpack-friendly):
 * valid on [issuedAt, expiresAt), once. Times in ms since the Unix epoch
 * (simulated time, as the envelope's `at`).
 */
export interface UploadCodeRecord {
  /** The provider that issued the code: uploads it authorizes are attributed to it (and withdrawn with it). */
  readonly providerId: string;
  /** uploadCodeDigest of the code. */
  readonly digest: Uint8Array;
  readonly issuedAt: number;
  /** First instant the code is no longer accepted (exclusive end). */
  readonly expiresAt: number;
  /** When the code was redeemed; null while unused. */
  readonly usedAt: number | null;
}

export interface IssueUploadCodeOptions {
  readonly providerId: string;
  /** UPLOAD_CODE_BYTES fresh random bytes: CSPRNG in production, the seeded Rng in simulation. */
  readonly randomBytes: Uint8Array;
  readonly pepper: Uint8Array;
  readonly issuedAt: number;
  /** Default DEFAULT_UPLOAD_CODE_LIFETIME_MS; at most MAX_UPLOAD_CODE_LIFETIME_MS. */
  readonly lifetimeMs?: number;
}

export interface IssuedUploadCode {
  /** Printed once for the patient; the server keeps only `record`. */
  readonly text: string;
  readonly record: UploadCodeRecord;
}

/** Issue one code for a provider: its printed text and the record the server stores. */
export function issueUploadCode(crypto: CryptoSuite, options: IssueUploadCodeOptions): IssuedUploadCode {
  const { providerId, randomBytes, pepper, issuedAt, lifetimeMs = DEFAULT_UPLOAD_CODE_LIFETIME_MS } = options;
  ensure(typeof providerId === 'string' && providerId.length > 0 && providerId.length <= MAX_PROVIDER_ID_CHARS, 'options.providerId', `must be a string of 1–${MAX_PROVIDER_ID_CHARS} characters`);
  ensure(Number.isSafeInteger(issuedAt) && issuedAt >= 0, 'options.issuedAt', 'must be a non-negative integer time in ms');
  ensure(Number.isSafeInteger(lifetimeMs) && lifetimeMs > 0 && lifetimeMs <= MAX_UPLOAD_CODE_LIFETIME_MS, 'options.lifetimeMs', `must be an integer in (0, ${MAX_UPLOAD_CODE_LIFETIME_MS}] ms`);
  const text = formatUploadCode(randomBytes);
  const digest = uploadCodeDigest(crypto, { bytes: randomBytes, text }, pepper);
  return { text, record: { providerId, digest, issuedAt, expiresAt: issuedAt + lifetimeMs, usedAt: null } };
}

/**
 * Redeem a code's record at `now` (ms): the record marked used, or why not.
 * Single use: a record with usedAt ≠ null is `used` for ever (checked first,
 * so a replay reads as a replay even after expiry). Expiry is exclusive:
 * the code is accepted while now < expiresAt and `expired` from expiresAt
 * on. A `now` before issuedAt (another host's clock behind) is accepted:
 * issuedAt is informational, only expiresAt bounds validity.
 * The caller persists the returned record before acknowledging the upload.
 */
export function redeem(record: UploadCodeRecord, now: number): Verdict<UploadCodeRecord> {
  ensure(Number.isFinite(now), 'now', 'must be a finite time in ms');
  ensure(typeof record === 'object' && record !== null && Number.isFinite(record.expiresAt), 'record.expiresAt', 'must be a finite time in ms');
  if (record.usedAt !== null) {
    return reject(UPLOAD_CODE_RECORD_CODEC, 'used', `code already redeemed at ${record.usedAt}`, 'usedAt');
  }
  if (now >= record.expiresAt) {
    return reject(UPLOAD_CODE_RECORD_CODEC, 'expired', `code expired at ${record.expiresAt}, now ${now}`, 'expiresAt');
  }
  return accept({ ...record, usedAt: now });
}
