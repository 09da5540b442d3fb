/**
 * One-time upload codes (protocol/keyserver/upload-code.ts):
 * - the printed form against an independent BigInt Crockford encoder and an
 *   independent Damm table built from Damm's Beispiel 5.2 (a·x + y over GF(32));
 * - the two properties that make the check symbol catch every single
 *   substitution and every adjacent transposition, exhaustively over the
 *   32 × 32 table and all 32^3 (interim, a, b) triples — the proof in the
 *   module header needs nothing else — and then directly on random codes;
 * - look-alike, case and separator forgiveness; typed rejections, one per
 *   reason, and for ≥ 10,000 random strings;
 * - the stored digest (pinned against node:crypto's HMAC), its constant-time
 *   match, and the record's single use and exclusive expiry.
 */
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nobleSuite } from '../../protocol/crypto/noble.ts';
import type { Verdict } from '../../protocol/errors.ts';
import {
  CROCKFORD_ALPHABET,
  damm32,
  damm32Step,
  DEFAULT_UPLOAD_CODE_LIFETIME_MS,
  formatUploadCode,
  issueUploadCode,
  MAX_UPLOAD_CODE_LIFETIME_MS,
  parseUploadCode,
  redeem,
  REDEEM_REJECTION_REASONS,
  UPLOAD_CODE_BYTES,
  UPLOAD_CODE_CODEC,
  UPLOAD_CODE_MAX_INPUT_CHARS,
  UPLOAD_CODE_PRINTED_CHARS,
  UPLOAD_CODE_RECORD_CODEC,
  UPLOAD_CODE_REJECTION_REASONS,
  UPLOAD_CODE_SYMBOLS,
  uploadCodeDigest,
  uploadCodeMatches,
  type UploadCode,
  type UploadCodeRecord,
} from '../../protocol/keyserver/upload-code.ts';
import { packWire, unpackWire, wireProblem, type WireValue } from '../../protocol/wire/msgpack.ts';
import { misuseField } from '../support/misuse.ts';

const codeBytes = fc.uint8Array({ minLength: UPLOAD_CODE_BYTES, maxLength: UPLOAD_CODE_BYTES });
const reasonOf = (v: Verdict<unknown>): string => (v.ok ? 'accepted' : v.reason);
const compact = (text: string): string => text.replaceAll('-', '');
const parsed = (text: string): UploadCode => {
  const v = parseUploadCode(text);
  if (!v.ok) throw new Error(`${text}: ${v.reason}`);
  return v.value;
};
const PEPPER_A = new Uint8Array(32).fill(0xa5);
const PEPPER_B = new Uint8Array(32).fill(0x5a);

// ---- independent references -------------------------------------------------------------------

/** GF(2^5) multiplication by shift-and-add, reduced by x^5 + x^2 + 1. */
function gfMul(a: number, b: number): number {
  let product = 0;
  for (let x = a, y = b; y > 0; y >>= 1) {
    if (y & 1) product ^= x;
    x <<= 1;
    if (x & 0x20) x ^= 0x25;
  }
  return product;
}
/** Damm's Beispiel 5.2 table a·x + y (a = 2), columns permuted by y ↦ 2·y for a zero diagonal. */
const REFERENCE_TABLE = Array.from({ length: 32 }, (_, x) => Array.from({ length: 32 }, (_, y) => gfMul(2, x) ^ gfMul(2, y)));
const referenceCheck = (symbols: readonly number[]): number => symbols.reduce((r, d) => REFERENCE_TABLE[r]![d]!, 0);

/** Crockford's number encoding of the 80-bit big-endian integer, zero-padded to 16 symbols. */
function referenceSymbols(bytes: Uint8Array): number[] {
  const n = bytes.reduce((acc, byte) => (acc << 8n) | BigInt(byte), 0n);
  return [...n.toString(32).padStart(16, '0')].map((digit) => parseInt(digit, 32));
}
function referencePrinted(bytes: Uint8Array): string {
  const symbols = referenceSymbols(bytes);
  symbols.push(referenceCheck(symbols));
  const chars = symbols.map((s) => CROCKFORD_ALPHABET[s]!).join('');
  return [0, 4, 8, 12, 16].map((at) => chars.slice(at, at === 16 ? 17 : at + 4)).join('-');
}

describe('printed form', () => {
  it('matches an independent BigInt Crockford encoder and Damm table, and round-trips through parse', () => {
    fc.assert(
      fc.property(codeBytes, (bytes) => {
        const text = formatUploadCode(bytes);
        expect(text).toBe(referencePrinted(bytes));
        expect(text).toMatch(/^([0-9A-HJKMNP-TV-Z]{4}-){4}[0-9A-HJKMNP-TV-Z]$/);
        expect(text).toHaveLength(UPLOAD_CODE_PRINTED_CHARS);
        const code = parsed(text);
        expect(code.text).toBe(text);
        expect(code.bytes).toEqual(bytes);
      }),
      { numRuns: 2000, seed: 4001 },
    );
  });

  it('pins two vectors: all zero bits and all one bits', () => {
    expect(formatUploadCode(new Uint8Array(10))).toBe('0000-0000-0000-0000-0');
    // 16 × Z (31): the interims run 27, 8, 11, 13, 1, 25, 12, 3, 29, 4, 19, 24, 14, 7, 21, 20 (by hand) → M.
    expect(formatUploadCode(new Uint8Array(10).fill(0xff))).toBe('ZZZZ-ZZZZ-ZZZZ-ZZZZ-M');
    expect(referencePrinted(new Uint8Array(10).fill(0xff))).toBe('ZZZZ-ZZZZ-ZZZZ-ZZZZ-M');
  });

  it('refuses random byte counts other than 10 (MisuseError randomBytes)', () => {
    expect(misuseField(() => formatUploadCode(new Uint8Array(8)))).toBe('randomBytes');
    expect(misuseField(() => formatUploadCode(new Uint8Array(11)))).toBe('randomBytes');
  });
});

describe('check symbol (Damm over GF(32))', () => {
  it('is the reference table: a Latin square with a zero diagonal (exhaustive 32 × 32)', () => {
    for (let x = 0; x < 32; x++) {
      const row = new Set<number>();
      const column = new Set<number>();
      for (let y = 0; y < 32; y++) {
        expect(damm32Step(x, y)).toBe(REFERENCE_TABLE[x]![y]);
        row.add(damm32Step(x, y));
        column.add(damm32Step(y, x));
      }
      expect(row.size).toBe(32); // d ↦ r ⋆ d bijective: substitutions change the interim
      expect(column.size).toBe(32); // r ↦ r ⋆ d bijective: a difference survives later symbols
      expect(damm32Step(x, x)).toBe(0);
    }
  });

  it('is totally anti-symmetric: (r ⋆ a) ⋆ b = (r ⋆ b) ⋆ a only if a = b (exhaustive 32^3)', () => {
    let collisions = 0;
    for (let r = 0; r < 32; r++) {
      for (let a = 0; a < 32; a++) {
        for (let b = 0; b < 32; b++) {
          if (a !== b && damm32Step(damm32Step(r, a), b) === damm32Step(damm32Step(r, b), a)) collisions++;
        }
      }
    }
    expect(collisions).toBe(0);
  });

  it('catches every single substitution and every adjacent transposition of valid codes', () => {
    let substitutions = 0;
    let transpositions = 0;
    fc.assert(
      fc.property(codeBytes, (bytes) => {
        const chars = [...compact(formatUploadCode(bytes))];
        expect(chars).toHaveLength(UPLOAD_CODE_SYMBOLS);
        expect(damm32(chars.map((c) => CROCKFORD_ALPHABET.indexOf(c)))).toBe(0);
        for (let i = 0; i < chars.length; i++) {
          for (const other of CROCKFORD_ALPHABET) {
            if (other === chars[i]) continue;
            const typo = chars.with(i, other).join('');
            expect(reasonOf(parseUploadCode(typo))).toBe('bad-check');
            substitutions++;
          }
        }
        for (let i = 0; i + 1 < chars.length; i++) {
          if (chars[i] === chars[i + 1]) continue;
          const swapped = chars.with(i, chars[i + 1]!).with(i + 1, chars[i]!).join('');
          expect(reasonOf(parseUploadCode(swapped))).toBe('bad-check');
          transpositions++;
        }
      }),
      { numRuns: 300, seed: 4002 },
    );
    expect(substitutions).toBe(300 * UPLOAD_CODE_SYMBOLS * 31);
    expect(transpositions).toBeGreaterThan(300 * 15);
  });

  it('lets about 1 in 32 random 17-symbol strings through (it is a check, not a secret)', () => {
    let valid = 0;
    const runs = 32_000;
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 31 }), { minLength: 17, maxLength: 17 }), (symbols) => {
        if (parseUploadCode(symbols.map((s) => CROCKFORD_ALPHABET[s]).join('')).ok) valid++;
      }),
      { numRuns: runs, seed: 4003 },
    );
    expect(valid / runs).toBeGreaterThan(0.8 / 32);
    expect(valid / runs).toBeLessThan(1.2 / 32);
  });
});

describe('reading what a person typed', () => {
  const lookAlike = (char: string): fc.Arbitrary<string> =>
    char === '0' ? fc.constantFrom('0', 'O', 'o') : char === '1' ? fc.constantFrom('1', 'I', 'i', 'L', 'l') : fc.constantFrom(char, char.toLowerCase());
  const separator = fc.constantFrom('', '', ' ', '-', '  ', '\t', '\u2013', '\u00a0', ' - ');

  it('forgives case, O/I/L look-alikes, spaces, hyphens and Unicode dashes', () => {
    const typed = codeBytes.chain((bytes) => {
      const chars = [...compact(formatUploadCode(bytes))];
      return fc.tuple(fc.constant(bytes), fc.tuple(...chars.map(lookAlike)), fc.array(separator, { minLength: 18, maxLength: 18 }));
    });
    fc.assert(
      fc.property(typed, ([bytes, chars, seps]) => {
        const text = seps[0]! + chars.map((c, i) => c + seps[i + 1]!).join('');
        fc.pre(text.length <= UPLOAD_CODE_MAX_INPUT_CHARS);
        const code = parsed(text);
        expect(code.bytes).toEqual(bytes);
        expect(code.text).toBe(formatUploadCode(bytes));
      }),
      { numRuns: 1500, seed: 4004 },
    );
  });

  it('reads O as 0 and I, L as 1 in every position, the check symbol included', () => {
    const zeros = formatUploadCode(new Uint8Array(10)); // 0000-0000-0000-0000-0
    expect(parsed(zeros.replaceAll('0', 'O')).text).toBe(zeros);
    expect(parsed(zeros.replaceAll('0', 'o').replaceAll('-', ' ')).text).toBe(zeros);
    const bytes = fc.sample(codeBytes.filter((b) => formatUploadCode(b).includes('1')), { numRuns: 20, seed: 4005 });
    for (const b of bytes) {
      const text = formatUploadCode(b);
      for (const one of ['I', 'i', 'L', 'l']) expect(parsed(text.replaceAll('1', one)).bytes).toEqual(b);
    }
  });

  it('gives one typed reason per kind of bad input', () => {
    const good = formatUploadCode(Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
    const cases: [unknown, string, string?][] = [
      [42, 'not-a-string'],
      [null, 'not-a-string'],
      [new TextEncoder().encode(good), 'not-a-string'],
      ['0'.repeat(UPLOAD_CODE_MAX_INPUT_CHARS + 1), 'input-too-long'],
      [`U${good.slice(1)}`, 'bad-character', 'text[0]'], // U is not a Crockford symbol
      [`${good.slice(0, 5)}*${good.slice(6)}`, 'bad-character', 'text[5]'],
      [`${good}\u0000`, 'bad-character', `text[${good.length}]`],
      [good.replace('-', '_'), 'bad-character', 'text[4]'],
      ['', 'wrong-length'],
      ['   ', 'wrong-length'],
      [good.slice(0, -1), 'wrong-length'],
      [`${good}0`, 'wrong-length'],
      [good.slice(0, -1) + CROCKFORD_ALPHABET[(CROCKFORD_ALPHABET.indexOf(good.at(-1)!) + 1) % 32]!, 'bad-check'],
    ];
    for (const [input, reason, field] of cases) {
      const v = parseUploadCode(input);
      expect(v.ok).toBe(false);
      if (v.ok) continue;
      expect(v.codec).toBe(UPLOAD_CODE_CODEC);
      expect(v.reason).toBe(reason);
      if (field !== undefined) expect(v.field).toBe(field);
    }
    expect(new Set(cases.map(([, reason]) => reason))).toEqual(new Set(UPLOAD_CODE_REJECTION_REASONS));
  });

  it('answers 12,000 random strings with a typed rejection or a canonical parse, never a throw', () => {
    const codeChars = `${CROCKFORD_ALPHABET}${CROCKFORD_ALPHABET.toLowerCase()}OoIiLlUu-- \t*~$=_.\u2013\u00e9\u{1f600}`;
    const nearCode = fc.string({ unit: fc.constantFrom(...codeChars), maxLength: UPLOAD_CODE_MAX_INPUT_CHARS + 3 });
    const mutated = fc.tuple(codeBytes, fc.nat(), fc.constantFrom(...codeChars)).map(([bytes, at, char]) => {
      const text = formatUploadCode(bytes);
      const i = at % (text.length + 1);
      return text.slice(0, i) + char + text.slice(i + (at % 2));
    });
    const anyString = fc.oneof(nearCode, mutated, fc.string({ unit: 'binary', maxLength: 60 }), fc.string({ maxLength: 5 }), fc.string({ minLength: UPLOAD_CODE_MAX_INPUT_CHARS - 2, maxLength: 200 }));
    const counts = new Map<string, number>();
    const allowed = new Set<string>(UPLOAD_CODE_REJECTION_REASONS);
    fc.assert(
      fc.property(anyString, (text) => {
        const v = parseUploadCode(text);
        counts.set(reasonOf(v), (counts.get(reasonOf(v)) ?? 0) + 1);
        if (v.ok) {
          expect(formatUploadCode(v.value.bytes)).toBe(v.value.text);
          expect(parsed(v.value.text).bytes).toEqual(v.value.bytes);
        } else {
          expect(v.codec).toBe(UPLOAD_CODE_CODEC);
          expect(allowed.has(v.reason)).toBe(true);
        }
      }),
      { numRuns: 12_000, seed: 4006 },
    );
    expect([...counts.values()].reduce((a, b) => a + b, 0)).toBe(12_000);
    for (const reason of ['bad-character', 'wrong-length', 'bad-check', 'input-too-long']) expect(counts.get(reason) ?? 0).toBeGreaterThan(0);
  });
});

describe('stored digest', () => {
  const label = new TextEncoder().encode('tracecity/v1/upload-code\0');

  it('is HMAC-SHA-256(pepper, label ‖ bytes), differs per pepper, and never equals the code bytes', () => {
    fc.assert(
      fc.property(codeBytes, (bytes) => {
        const code = parsed(formatUploadCode(bytes));
        const a = uploadCodeDigest(nobleSuite, code, PEPPER_A);
        const b = uploadCodeDigest(nobleSuite, code, PEPPER_B);
        expect(a).toEqual(new Uint8Array(createHmac('sha256', PEPPER_A).update(label).update(bytes).digest()));
        expect(a).toHaveLength(32);
        expect(a).not.toEqual(b);
        expect(a).not.toEqual(bytes);
        expect(Buffer.from(a).includes(Buffer.from(bytes))).toBe(false);
        expect(uploadCodeMatches(nobleSuite, code, PEPPER_A, a)).toBe(true);
        expect(uploadCodeMatches(nobleSuite, code, PEPPER_B, a)).toBe(false);
        expect(uploadCodeMatches(nobleSuite, code, PEPPER_A, a.subarray(0, 31))).toBe(false);
      }),
      { numRuns: 300, seed: 4007 },
    );
  });

  it('differs per code, so one code never matches another code’s record', () => {
    const codes = fc.sample(fc.uniqueArray(codeBytes, { minLength: 200, maxLength: 200, selector: (b) => b.join() }), { numRuns: 1, seed: 4008 })[0]!;
    const digests = new Set(codes.map((b) => Buffer.from(uploadCodeDigest(nobleSuite, parsed(formatUploadCode(b)), PEPPER_A)).toString('hex')));
    expect(digests.size).toBe(200);
    const [first, second] = codes.map((b) => parsed(formatUploadCode(b)));
    expect(uploadCodeMatches(nobleSuite, first!, PEPPER_A, uploadCodeDigest(nobleSuite, second!, PEPPER_A))).toBe(false);
  });

  it('refuses a pepper shorter than 32 bytes and a malformed code (MisuseError)', () => {
    const code = parsed(formatUploadCode(new Uint8Array(10)));
    expect(misuseField(() => uploadCodeDigest(nobleSuite, code, new Uint8Array(31)))).toBe('pepper');
    expect(misuseField(() => uploadCodeDigest(nobleSuite, { bytes: new Uint8Array(9), text: '' }, PEPPER_A))).toBe('code.bytes');
  });
});

describe('issued records: single use, exclusive expiry', () => {
  const T0 = Date.UTC(2026, 10, 22, 9, 0, 0);
  const issue = (lifetimeMs?: number): { text: string; record: UploadCodeRecord } =>
    issueUploadCode(nobleSuite, {
      providerId: 'clinic-7', randomBytes: Uint8Array.from([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]), pepper: PEPPER_A, issuedAt: T0,
      ...(lifetimeMs === undefined ? {} : { lifetimeMs }),
    });

  it('stores the provider, the digest of the printed code and [issuedAt, issuedAt + lifetime)', () => {
    const { text, record } = issue();
    expect(record).toEqual({ providerId: 'clinic-7', digest: uploadCodeDigest(nobleSuite, parsed(text), PEPPER_A), issuedAt: T0, expiresAt: T0 + DEFAULT_UPLOAD_CODE_LIFETIME_MS, usedAt: null });
    expect(uploadCodeMatches(nobleSuite, parsed(text.toLowerCase()), PEPPER_A, record.digest)).toBe(true);
    expect(Buffer.from(record.digest).includes(Buffer.from(parsed(text).bytes))).toBe(false);
  });

  it('redeems once: the second redemption is `used`, even after expiry', () => {
    const { record } = issue(60_000);
    const first = redeem(record, T0 + 10);
    expect(first).toEqual({ ok: true, value: { ...record, usedAt: T0 + 10 } });
    if (!first.ok) return;
    expect(redeem(first.value, T0 + 11)).toMatchObject({ ok: false, codec: UPLOAD_CODE_RECORD_CODEC, reason: 'used' });
    expect(reasonOf(redeem(first.value, T0 + 120_000))).toBe('used');
  });

  it('expires at expiresAt exactly (valid at expiresAt − 1 ms), and accepts a clock behind issuedAt', () => {
    const { record } = issue(60_000);
    expect(redeem(record, T0 + 59_999).ok).toBe(true);
    expect(redeem(record, T0 + 60_000)).toMatchObject({ ok: false, codec: UPLOAD_CODE_RECORD_CODEC, reason: 'expired', field: 'expiresAt' });
    expect(reasonOf(redeem(record, T0 + 10 ** 9))).toBe('expired');
    expect(redeem(record, T0 - 5_000).ok).toBe(true);
    expect(new Set(['used', 'expired'])).toEqual(new Set(REDEEM_REJECTION_REASONS));
  });

  it('is plain msgpack-dialect data that survives a round trip', () => {
    const { record } = issue();
    expect(wireProblem(record)).toBeUndefined();
    const back = unpackWire(packWire(record as unknown as WireValue), 'test');
    expect(back.ok && (back.value as unknown as UploadCodeRecord).expiresAt).toBe(record.expiresAt);
    if (back.ok) expect(new Uint8Array((back.value as unknown as UploadCodeRecord).digest)).toEqual(record.digest);
  });

  it('names the field on misuse', () => {
    const base = { providerId: 'p', randomBytes: new Uint8Array(10), pepper: PEPPER_A, issuedAt: T0 };
    expect(misuseField(() => issueUploadCode(nobleSuite, { ...base, providerId: '' }))).toBe('options.providerId');
    expect(misuseField(() => issueUploadCode(nobleSuite, { ...base, providerId: 'p'.repeat(65) }))).toBe('options.providerId');
    expect(misuseField(() => issueUploadCode(nobleSuite, { ...base, lifetimeMs: 0 }))).toBe('options.lifetimeMs');
    expect(misuseField(() => issueUploadCode(nobleSuite, { ...base, lifetimeMs: MAX_UPLOAD_CODE_LIFETIME_MS + 1 }))).toBe('options.lifetimeMs');
    expect(misuseField(() => issueUploadCode(nobleSuite, { ...base, issuedAt: Number.NaN }))).toBe('options.issuedAt');
    expect(misuseField(() => issueUploadCode(nobleSuite, { ...base, randomBytes: new Uint8Array(16) }))).toBe('randomBytes');
    expect(misuseField(() => issueUploadCode(nobleSuite, { ...base, pepper: new Uint8Array(8) }))).toBe('pepper');
    expect(misuseField(() => redeem(issue().record, Number.POSITIVE_INFINITY))).toBe('now');
  });
});
