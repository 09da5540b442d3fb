/**
 * Fernet (SPECS §5) and the SmartBeacon presence token under both crypto
 * suites: the official vectors (test/vectors/fernet-*.json), the strict
 * base64url and PKCS#7 helpers, TTL boundaries, misuse, and fast-check
 * properties (round trip, single-byte mutations, hostile input never throws).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nobleSuite } from '../../protocol/crypto/noble.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import { decodeBase64Url, encodeBase64Url } from '../../protocol/beacon/base64url.ts';
import {
  createFernetToken,
  encodeFernetKey,
  encodeFernetToken,
  FERNET_MAX_TOKEN_BYTES,
  parseFernetKey,
  verifyFernetToken,
  type FernetKey,
} from '../../protocol/beacon/fernet.ts';
import { pkcs7Pad, pkcs7Unpad } from '../../protocol/beacon/pkcs7.ts';
import { createPresenceToken, presenceMessage, verifyPresenceToken } from '../../protocol/beacon/presence-token.ts';
import type { Verdict } from '../../protocol/errors.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { misuseField } from '../support/misuse.ts';
import generateVectors from '../vectors/fernet-generate.json' with { type: 'json' };
import invalidVectors from '../vectors/fernet-invalid.json' with { type: 'json' };
import verifyVectors from '../vectors/fernet-verify.json' with { type: 'json' };

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/** RFC 3339 date-time (with `Z` or a ±hh:mm offset) → Unix seconds; throws on anything else. */
function rfc3339ToUnix(value: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(Z|([+-])(\d{2}):(\d{2}))$/i.exec(value);
  if (m === null) throw new Error(`not RFC 3339: ${value}`);
  const [, y, mo, d, h, mi, s, zone, sign, oh, om] = m;
  const local = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)) / 1000;
  // Local time = UTC + offset, so UTC = local − offset.
  const offset = zone === 'Z' || zone === 'z' ? 0 : (sign === '-' ? -1 : 1) * (Number(oh) * 3600 + Number(om) * 60);
  return local - offset;
}

/** The reason each invalid vector must be rejected with, keyed by its `desc`. */
const EXPECTED_REASON: Readonly<Record<string, string>> = {
  'incorrect mac': 'bad-hmac',
  'too short': 'bad-length',
  'invalid base64': 'bad-base64',
  'payload size not multiple of block size': 'bad-length',
  'payload padding error': 'bad-padding',
  'far-future TS (unacceptable clock skew)': 'future',
  'expired TTL': 'expired',
  'incorrect IV (causes padding error)': 'bad-padding',
};
const FERNET_REASONS = new Set(['bad-base64', 'bad-version', 'bad-length', 'bad-timestamp', 'expired', 'future', 'bad-hmac', 'bad-padding']);

const reasonOf = (v: Verdict<unknown>): string => (v.ok ? 'accepted' : v.reason);

const SUITES: readonly (readonly [string, CryptoSuite])[] = [
  ['noble', nobleSuite],
  ['node', nodeSuite],
];

const key32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
const iv16 = fc.uint8Array({ minLength: 16, maxLength: 16 });
const unixSeconds = fc.maxSafeNat();
const B64_CHARS = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/%. \n'];

describe('RFC 3339 parsing used for the vectors', () => {
  it('reads offsets', () => {
    expect(rfc3339ToUnix('1985-10-26T01:20:00-07:00')).toBe(499_162_800); // SOURCES.md
    expect(rfc3339ToUnix('1985-10-26T08:20:00Z')).toBe(499_162_800);
    expect(rfc3339ToUnix('1985-10-26T10:50:00+02:30')).toBe(499_162_800);
  });
});

describe('strict base64url (RFC 4648 §5)', () => {
  it('agrees with Buffer on valid input, padded and unpadded', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        const bare = Buffer.from(bytes).toString('base64url');
        const padded = bare.padEnd(Math.ceil(bare.length / 4) * 4, '=');
        expect(encodeBase64Url(bytes)).toBe(padded);
        expect(encodeBase64Url(bytes, { padding: false })).toBe(bare);
        expect(decodeBase64Url(padded)).toEqual({ ok: true, value: bytes });
        expect(decodeBase64Url(bare, { padding: 'forbidden' })).toEqual({ ok: true, value: bytes });
      }),
      { numRuns: 1000 },
    );
  });

  it.each([
    ['A', 'required', 'bad-length'],
    ['AAA', 'required', 'bad-length'],
    ['AA=A', 'required', 'bad-padding'],
    ['A===', 'required', 'bad-padding'],
    ['====', 'required', 'bad-padding'],
    ['AB==', 'required', 'non-canonical'],
    ['AAB=', 'required', 'non-canonical'],
    ['AA+/', 'required', 'bad-char'],
    [' AAA', 'required', 'bad-char'],
    ['AAA\u00e9', 'required', 'bad-char'],
    ['AA==', 'forbidden', 'bad-padding'],
    ['A', 'forbidden', 'bad-length'],
    ['AB', 'forbidden', 'non-canonical'],
  ] as const)('%j (padding %s) → %s', (input, padding, reason) => {
    expect(reasonOf(decodeBase64Url(input, { padding }))).toBe(reason);
  });

  it('accepts the empty string and canonical tails', () => {
    expect(decodeBase64Url('')).toEqual({ ok: true, value: new Uint8Array(0) });
    expect(decodeBase64Url('AA==')).toEqual({ ok: true, value: Uint8Array.of(0) });
    expect(decodeBase64Url('__8=')).toEqual({ ok: true, value: Uint8Array.of(0xff, 0xff) });
  });
});

describe('PKCS#7 (RFC 5652 §6.3)', () => {
  it('pads 1..16 bytes and round-trips', () => {
    for (let n = 0; n <= 33; n++) {
      const padded = pkcs7Pad(new Uint8Array(n).fill(7));
      const k = 16 - (n % 16);
      expect(padded.length).toBe(n + k);
      expect([...padded.subarray(n)]).toEqual(Array<number>(k).fill(k));
      expect(pkcs7Unpad(padded)?.length).toBe(n);
    }
  });

  it.each([
    ['empty', []],
    ['not block-aligned', Array<number>(15).fill(1)],
    ['pad byte 0', [...Array<number>(15).fill(0), 0]],
    ['pad byte 17', Array<number>(16).fill(17)],
    ['inconsistent pad bytes', [...Array<number>(13).fill(0), 2, 3, 3]],
  ])('rejects %s', (_name, bytes) => {
    expect(pkcs7Unpad(Uint8Array.from(bytes))).toBeUndefined();
  });
});

describe.each(SUITES)('Fernet under the %s suite', (_name, suite) => {
  it('generate.json: byte-exact token, padding included', () => {
    for (const v of generateVectors) {
      const key = parseFernetKey(v.secret);
      const token = createFernetToken(suite, key, { now: rfc3339ToUnix(v.now), iv: Uint8Array.from(v.iv), message: ascii(v.src) });
      expect(encodeFernetToken(token)).toBe(v.token);
      expect(encodeFernetKey(key)).toBe(v.secret);
    }
  });

  it('verify.json: message and timestamp', () => {
    for (const v of verifyVectors) {
      const verdict = verifyFernetToken(suite, parseFernetKey(v.secret), v.token, { now: rfc3339ToUnix(v.now), ttlS: v.ttl_sec });
      expect(verdict.ok).toBe(true);
      if (!verdict.ok) return;
      expect(text(verdict.value.message)).toBe(v.src);
      expect(verdict.value.timestamp).toBe(499_162_800);
    }
  });

  it.each(invalidVectors.map((v) => [v.desc, v] as const))('invalid.json %s → expected reason', (desc, v) => {
    const expected = EXPECTED_REASON[desc];
    expect(expected, `no expected reason for vector ${JSON.stringify(desc)}`).toBeDefined();
    const verdict = verifyFernetToken(suite, parseFernetKey(v.secret), v.token, { now: rfc3339ToUnix(v.now), ttlS: v.ttl_sec });
    expect(verdict).toMatchObject({ ok: false, codec: 'fernet', reason: expected });
  });

  it('verify(create(x)) = x for random keys, IVs, messages and times, as bytes and as text', () => {
    fc.assert(
      fc.property(key32, iv16, fc.uint8Array({ maxLength: 100 }), unixSeconds, (k, iv, message, now) => {
        const key = parseFernetKey(k);
        const token = createFernetToken(suite, key, { now, iv, message });
        expect(token.length).toBe(57 + 16 * (Math.floor(message.length / 16) + 1));
        for (const form of [token, encodeFernetToken(token)]) {
          const verdict = verifyFernetToken(suite, key, form, { now });
          expect(verdict).toEqual({ ok: true, value: { message, timestamp: now } });
        }
      }),
      { numRuns: 300 },
    );
  });

  it('any single-byte mutation of a valid token is rejected', () => {
    fc.assert(
      fc.property(key32, iv16, fc.uint8Array({ maxLength: 40 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (k, iv, message, at, flip) => {
        const key = parseFernetKey(k);
        const now = 1_700_000_000;
        const token = createFernetToken(suite, key, { now, iv, message });
        const mutated = token.slice();
        const i = at % token.length;
        mutated[i] = (mutated[i] ?? 0) ^ flip;
        expect(verifyFernetToken(suite, key, mutated, { now }).ok).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });

  it('every single-character change of the generate vector text is rejected (canonical base64url)', () => {
    const v = generateVectors[0]!;
    const key = parseFernetKey(v.secret);
    const now = rfc3339ToUnix(v.now);
    for (let i = 0; i < v.token.length; i++) {
      for (const c of B64_CHARS) {
        if (c === v.token[i]) continue;
        const mutated = v.token.slice(0, i) + c + v.token.slice(i + 1);
        expect(verifyFernetToken(suite, key, mutated, { now }).ok, mutated).toBe(false);
      }
    }
  });

  it('random strings and bytes get a typed rejection, never an exception (3 × 10,000 cases)', () => {
    const key = parseFernetKey(new Uint8Array(32).fill(9));
    const rejectedOnly = (token: Uint8Array | string, ttlS?: number): boolean => {
      const verdict = verifyFernetToken(suite, key, token, { now: 499_162_800, ttlS });
      return !verdict.ok && verdict.codec === 'fernet' && FERNET_REASONS.has(verdict.reason);
    };
    const strings = fc.oneof(fc.string({ unit: fc.constantFrom(...B64_CHARS), maxLength: 200 }), fc.string({ unit: 'binary', maxLength: 120 }));
    fc.assert(fc.property(strings, fc.option(fc.nat(1000), { nil: undefined }), rejectedOnly), { numRuns: 10_000 });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (token) => rejectedOnly(token)), { numRuns: 10_000 });
    // Version byte right and aligned lengths, so cases reach the timestamp and HMAC checks.
    const shaped = fc
      .tuple(fc.nat(6), fc.uint8Array({ minLength: 8, maxLength: 8 }), fc.uint8Array({ maxLength: 150 }))
      .map(([blocks, ts, rest]) => {
        const body = new Uint8Array(57 + 16 * blocks);
        body.set(rest.subarray(0, body.length));
        body[0] = 0x80;
        body.set(ts, 1);
        return body;
      });
    fc.assert(fc.property(shaped, (token) => rejectedOnly(token) && rejectedOnly(encodeFernetToken(token), 60)), { numRuns: 10_000 });
  });

  it('TTL and clock-skew boundaries (strict comparisons, pyca)', () => {
    const key = parseFernetKey(new Uint8Array(32).fill(1));
    const ts = 1_000_000;
    const token = createFernetToken(suite, key, { now: ts, iv: new Uint8Array(16), message: ascii('x') });
    const at = (now: number, ttlS?: number): string => reasonOf(verifyFernetToken(suite, key, token, { now, ttlS }));
    expect(at(ts + 60, 60)).toBe('accepted'); // timestamp + ttl == now
    expect(at(ts + 61, 60)).toBe('expired');
    expect(at(ts, 0)).toBe('accepted');
    expect(at(ts + 1, 0)).toBe('expired');
    expect(at(ts - 60, 60)).toBe('accepted'); // now + 60 == timestamp
    expect(at(ts - 61, 60)).toBe('future');
    // No TTL, no time checks at all (SPECS §5).
    expect(at(0)).toBe('accepted');
    expect(at(Number.MAX_SAFE_INTEGER)).toBe('accepted');
  });

  it('expired and forged reports expired: time is checked before the HMAC (SPECS §7.24)', () => {
    const key = parseFernetKey(new Uint8Array(32).fill(1));
    const token = createFernetToken(suite, key, { now: 100, iv: new Uint8Array(16), message: ascii('x') });
    token[token.length - 1]! ^= 1;
    expect(reasonOf(verifyFernetToken(suite, key, token, { now: 1000, ttlS: 60 }))).toBe('expired');
    expect(reasonOf(verifyFernetToken(suite, key, token, { now: 100, ttlS: 60 }))).toBe('bad-hmac');
  });

  it('timestamps: 2^53 − 1 round-trips, above it is a typed rejection', () => {
    const key = parseFernetKey(new Uint8Array(32).fill(2));
    const max = createFernetToken(suite, key, { now: Number.MAX_SAFE_INTEGER, iv: new Uint8Array(16), message: new Uint8Array(0) });
    expect(verifyFernetToken(suite, key, max, { now: 0 })).toMatchObject({ ok: true, value: { timestamp: Number.MAX_SAFE_INTEGER } });
    // 2^53 written by hand, with a correct HMAC so only the timestamp is wrong.
    const big = max.slice();
    big.set([0, 0x20, 0, 0, 0, 0, 0, 0], 1);
    big.set(suite.hmacSha256(key.signingKey, big.subarray(0, big.length - 32)), big.length - 32);
    expect(reasonOf(verifyFernetToken(suite, key, big, { now: 0 }))).toBe('bad-timestamp');
  });

  it('the 64 KiB cap: largest token round-trips; larger input is bad-length without decoding', () => {
    const key = parseFernetKey(new Uint8Array(32).fill(3));
    const message = new Uint8Array(FERNET_MAX_TOKEN_BYTES - 57 - 16 + 1).fill(0x61); // pads to the last full block
    const token = createFernetToken(suite, key, { now: 5, iv: new Uint8Array(16), message });
    expect(token.length).toBeLessThanOrEqual(FERNET_MAX_TOKEN_BYTES);
    expect(verifyFernetToken(suite, key, encodeFernetToken(token), { now: 5 }).ok).toBe(true);
    expect(misuseField(() => createFernetToken(suite, key, { now: 5, iv: new Uint8Array(16), message: new Uint8Array(FERNET_MAX_TOKEN_BYTES) }))).toBe(
      'options.message',
    );
    const hugeBytes = new Uint8Array(57 + 16 * 5000);
    hugeBytes[0] = 0x80;
    expect(reasonOf(verifyFernetToken(suite, key, hugeBytes, { now: 5 }))).toBe('bad-length');
    expect(reasonOf(verifyFernetToken(suite, key, 'A'.repeat(4_000_000), { now: 5 }))).toBe('bad-length');
  });

  it('caller misuse throws MisuseError naming the field', () => {
    const key = parseFernetKey(new Uint8Array(32));
    const create = (now: number, iv = new Uint8Array(16)) => () => createFernetToken(suite, key, { now, iv, message: new Uint8Array(1) });
    for (const now of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.MAX_SAFE_INTEGER + 1]) {
      expect(misuseField(create(now))).toBe('options.now');
      expect(misuseField(() => verifyFernetToken(suite, key, 'gAAA', { now }))).toBe('options.now');
    }
    expect(misuseField(create(0, new Uint8Array(15)))).toBe('options.iv');
    expect(misuseField(() => verifyFernetToken(suite, key, 'gAAA', { now: 0, ttlS: -1 }))).toBe('options.ttlS');
    expect(misuseField(() => parseFernetKey(new Uint8Array(31)))).toBe('key');
    expect(misuseField(() => parseFernetKey('cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4'))).toBe('key'); // unpadded
    expect(misuseField(() => parseFernetKey('cw_0x689RpI+jtRR7oE8h/eQsKImvJapLeSbXpwF4e4='))).toBe('key'); // standard alphabet
    const wrongHalves: FernetKey = { signingKey: new Uint8Array(16), encryptionKey: new Uint8Array(32) };
    expect(misuseField(() => createFernetToken(suite, wrongHalves, { now: 0, iv: new Uint8Array(16), message: new Uint8Array(0) }))).toBe('key');
  });

  it('parseFernetKey splits signing = first 16, encryption = last 16 (SPECS §5) and copies', () => {
    const raw = Uint8Array.from({ length: 32 }, (_, i) => i);
    const key = parseFernetKey(raw);
    raw.fill(0);
    expect([...key.signingKey]).toEqual([...Array(16).keys()]);
    expect([...key.encryptionKey]).toEqual([...Array(16).keys()].map((i) => i + 16));
  });

  describe('presence token', () => {
    const key = parseFernetKey(new Uint8Array(32).fill(4));
    const iv = Uint8Array.from({ length: 16 }, (_, i) => 255 - i);

    it('is 73 bytes for a 10-digit timestamp and verifies within the TTL', () => {
      const token = createPresenceToken(suite, key, 1_700_000_000, iv);
      expect(token.length).toBe(73);
      expect(verifyPresenceToken(suite, key, token, { now: 1_700_000_030, ttlS: 30 })).toEqual({ ok: true, value: { timestamp: 1_700_000_000 } });
      expect(verifyPresenceToken(suite, key, encodeFernetToken(token), { now: 1_700_000_000, ttlS: 0 }).ok).toBe(true);
      expect(verifyPresenceToken(suite, key, token, { now: 1_700_000_031, ttlS: 30 })).toMatchObject({ codec: 'fernet', reason: 'expired' });
    });

    it('round-trips any time, including 0', () => {
      fc.assert(
        fc.property(unixSeconds, iv16, (now, v) => verifyPresenceToken(suite, key, createPresenceToken(suite, key, now, v), { now, ttlS: 0 }).ok),
        { numRuns: 200 },
      );
      expect(text(presenceMessage(0))).toBe('0');
    });

    it.each(['hello', '01700000000', '+1700000000', '1700000001', '170000000', '1700000000 ', ''])(
      'a valid Fernet token with message %j is bad-message',
      (message) => {
        const token = createFernetToken(suite, key, { now: 1_700_000_000, iv, message: ascii(message) });
        expect(verifyFernetToken(suite, key, token, { now: 1_700_000_000 }).ok).toBe(true);
        expect(verifyPresenceToken(suite, key, token, { now: 1_700_000_000, ttlS: 60 })).toMatchObject({
          ok: false,
          codec: 'presence-token',
          reason: 'bad-message',
        });
      },
    );
  });
});
