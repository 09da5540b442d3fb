/**
 * TCN reports (SPECS §3, choices of SPECS §7.15–16 and the header of protocol/tcn/report.ts):
 * every rejection reason on hand-made bytes, caller misuse, and fast-check properties under both
 * suites — create → verify round trip, any single-byte change is rejected, and hostile bytes only
 * ever give typed rejections (11,000 runs on hostile bytes, plus 2,500 single-byte mutations).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nobleSuite } from '../../protocol/crypto/noble.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import type { Verdict } from '../../protocol/errors.ts';
import { tckAt } from '../../protocol/tcn/keys.ts';
import {
  createTcnReport,
  encodeTcnReport,
  parseTcnReport,
  signTcnReport,
  TCN_MEMO_TYPES,
  TCN_REPORT_CODEC,
  TCN_REPORT_REJECTION_REASONS,
  TCN_SIGNED_REPORT_MAX_BYTES,
  TCN_SIGNED_REPORT_MIN_BYTES,
  tcnsFromReport,
  verifyTcnReport,
  type TcnMemo,
  type TcnMemoType,
  type TcnReport,
} from '../../protocol/tcn/report.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { misuseField } from '../support/misuse.ts';
import vectors from '../vectors/tcn.json' with { type: 'json' };

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
const reasonOf = (v: Verdict<unknown>): string => (v.ok ? 'accepted' : v.reason);
const SUITES: readonly (readonly [string, CryptoSuite])[] = [
  ['noble', nobleSuite],
  ['node', nodeSuite],
];
const REASONS: ReadonlySet<string> = new Set(TCN_REPORT_REJECTION_REASONS);

const RAK = unhex(vectors.official.rak);
const SIGNED = unhex(vectors.official.signed_report);
const MEMO: TcnMemo = { type: TCN_MEMO_TYPES.coEpiV1, data: new TextEncoder().encode('symptom data') };

/** The vector report with `edit` applied to its unsigned bytes, re-signed by rak (so only the edit can be refused). */
function resigned(edit: (unsigned: Uint8Array) => void): Uint8Array {
  const unsigned = SIGNED.slice(0, SIGNED.length - 64);
  edit(unsigned);
  return Uint8Array.from([...unsigned, ...nodeSuite.ed25519Sign(RAK, unsigned)]);
}

/** A verdict is either an acceptance or a well-formed typed rejection of this codec. */
function isTyped(v: Verdict<unknown>): boolean {
  return v.ok || (v.codec === TCN_REPORT_CODEC && REASONS.has(v.reason) && v.detail.length > 0);
}

const key32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
/** Up to `max` bytes over the whole range: fast-check's default size would stop near 10 bytes. */
const bytesUpTo = (max: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ maxLength: max, size: 'max' });
const memoType = fc.constantFrom<TcnMemoType>(...Object.values(TCN_MEMO_TYPES));
const memoArb = fc.record({ type: memoType, data: fc.oneof(fc.uint8Array({ maxLength: 16 }), bytesUpTo(255)) });
const indices = fc.integer({ min: 0, max: 30 }).chain((j1) => fc.record({ j1: fc.constant(j1), j2: fc.integer({ min: Math.max(j1, 1), max: 60 }) }));

describe('SPECS §3 report verification: every rejection reason (both suites)', () => {
  const cases: readonly (readonly [string, string, Uint8Array])[] = [
    ['too-short', 'empty', new Uint8Array(0)],
    ['too-short', '133 bytes (empty memo, signature cut by one)', new Uint8Array(TCN_SIGNED_REPORT_MIN_BYTES - 1)],
    ['too-long', '390 bytes', new Uint8Array(TCN_SIGNED_REPORT_MAX_BYTES + 1)],
    ['bad-length', 'one trailing byte', Uint8Array.from([...SIGNED, 0])],
    ['bad-length', 'signature cut by one', SIGNED.slice(0, -1)],
    ['bad-length', 'memo length 13 instead of 12', resigned((u) => (u[69] = 13))],
    ['bad-index', 'j1 = 0 (re-signed)', resigned((u) => u.set([0, 0], 64))],
    ['bad-index', 'j1 = 11 > j2 = 10 (re-signed)', resigned((u) => u.set([11, 0], 64))],
    ['unknown-memo-type', 'memo type 0x04 (re-signed)', resigned((u) => (u[68] = 0x04))],
    ['unknown-memo-type', 'memo type 0xff (re-signed)', resigned((u) => (u[68] = 0xff))],
    ['bad-signature', 'signature bit flipped', SIGNED.map((b, i) => (i === SIGNED.length - 1 ? b ^ 1 : b))],
    ['bad-signature', 'memo byte changed', SIGNED.map((b, i) => (i === 70 ? b ^ 0x20 : b))],
    ['bad-signature', 'j2 changed', SIGNED.map((b, i) => (i === 66 ? 11 : b))],
    // The identity key with R = identity, S = 0 "verifies" every message under lax Ed25519 (protocol/crypto/args.ts).
    ['bad-signature', 'small-order rvk forgery', Uint8Array.from([1, ...new Uint8Array(31), ...SIGNED.slice(32, -64), 1, ...new Uint8Array(63)])],
  ];
  describe.each(SUITES)('%s', (_n, suite) => {
    it.each(cases)('%s: %s', (reason, _what, bytes) => {
      const v = verifyTcnReport(suite, bytes);
      expect(reasonOf(v)).toBe(reason);
      expect(isTyped(v)).toBe(true);
    });
  });

  it('names the field: memoLength, j1, j2, memoType, signature', () => {
    const fieldOf = (b: Uint8Array): string | undefined => {
      const v = verifyTcnReport(nodeSuite, b);
      return v.ok ? 'accepted' : v.field;
    };
    expect(fieldOf(SIGNED.slice(0, -1))).toBe('memoLength');
    expect(fieldOf(resigned((u) => u.set([0, 0], 64)))).toBe('j1');
    expect(fieldOf(resigned((u) => u.set([11, 0], 64)))).toBe('j2');
    expect(fieldOf(resigned((u) => (u[68] = 9)))).toBe('memoType');
    expect(fieldOf(SIGNED.map((b, i) => (i === 140 ? b ^ 1 : b)))).toBe('signature');
  });

  it('accepts the allocated memo types 0x00–0x03 (README) and j1 = j2, re-signed', () => {
    for (const type of [0, 1, 2, 3]) expect(reasonOf(verifyTcnReport(nodeSuite, resigned((u) => (u[68] = type))))).toBe('accepted');
    expect(reasonOf(verifyTcnReport(nodeSuite, resigned((u) => u.set([10, 0], 64))))).toBe('accepted');
  });

  it('parseTcnReport checks structure only and returns copies', () => {
    const forged = SIGNED.map((b, i) => (i === SIGNED.length - 1 ? b ^ 1 : b));
    const p = parseTcnReport(forged);
    if (!p.ok) throw new Error(p.reason);
    expect(hex(p.value.signed)).toBe(vectors.official.unsigned_report_ios_test);
    forged.fill(0);
    expect(hex(p.value.report.rvk)).toBe(vectors.official.rvk);
  });
});

describe('SPECS §3 report: caller misuse throws MisuseError naming the field', () => {
  const tck1 = tckAt(nodeSuite, RAK, 1);
  const report: TcnReport = { rvk: tck1.rvk, tckBytes: tck1.bytes, j1: 2, j2: 10, memo: MEMO };
  it.each([
    ['rak', () => createTcnReport(nodeSuite, new Uint8Array(16), 1, 2, MEMO)],
    ['j1', () => createTcnReport(nodeSuite, RAK, -1, 2, MEMO)],
    ['j1', () => createTcnReport(nodeSuite, RAK, 65_536, 65_536, MEMO)],
    ['j2', () => createTcnReport(nodeSuite, RAK, 5, 4, MEMO)],
    ['j2', () => createTcnReport(nodeSuite, RAK, 0, 0, MEMO)],
    ['j2', () => createTcnReport(nodeSuite, RAK, 1, 65_536, MEMO)],
    ['memo.data', () => createTcnReport(nodeSuite, RAK, 1, 2, { type: 0, data: new Uint8Array(256) })],
    ['memo.type', () => createTcnReport(nodeSuite, RAK, 1, 2, { type: 4 as TcnMemoType, data: new Uint8Array(0) })],
    ['from.index', () => createTcnReport(nodeSuite, RAK, 2, 3, MEMO, tckAt(nodeSuite, RAK, 2))],
    ['report.rvk', () => signTcnReport(nodeSuite, new Uint8Array(32).fill(1), report)],
    ['report.tckBytes', () => encodeTcnReport({ ...report, tckBytes: new Uint8Array(31) })],
    ['report.j1', () => encodeTcnReport({ ...report, j1: 0 })],
    ['report.j2', () => tcnsFromReport(nodeSuite, { ...report, j2: 1 })],
    ['bytes', () => verifyTcnReport(nodeSuite, 'not bytes' as unknown as Uint8Array)],
  ])('%s', (field, fn) => {
    expect(misuseField(fn)).toBe(field);
  });
});

describe('SPECS §3 report properties (fast-check)', () => {
  it.each(SUITES)('create → verify round trip gives back every field (%s)', (_n, suite) => {
    fc.assert(
      fc.property(key32, indices, memoArb, (rak, { j1, j2 }, memo) => {
        const signed = createTcnReport(suite, rak, j1, j2, memo);
        expect(signed.length).toBe(70 + memo.data.length + 64);
        const v = verifyTcnReport(suite, signed);
        if (!v.ok) return false;
        const tck = tckAt(suite, rak, Math.max(j1, 1) - 1);
        expect(v.value).toEqual({ rvk: tck.rvk, tckBytes: tck.bytes, j1: Math.max(j1, 1), j2, memo: { type: memo.type, data: memo.data } });
        // The other suite verifies it too.
        return verifyTcnReport(suite === nodeSuite ? nobleSuite : nodeSuite, signed).ok;
      }),
      { numRuns: suite === nodeSuite ? 300 : 100 },
    );
  });

  it.each(SUITES)('any single-byte change of a signed report is rejected (%s)', (_n, suite) => {
    const arb = fc.record({ rak: key32, idx: indices, memo: memoArb, at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) });
    fc.assert(
      fc.property(arb, ({ rak, idx, memo, at, xor }) => {
        const signed = createTcnReport(suite, rak, idx.j1, idx.j2, memo);
        const i = at % signed.length;
        const changed = signed.slice();
        changed[i]! ^= xor;
        const v = verifyTcnReport(suite, changed);
        return !v.ok && isTyped(v);
      }),
      { numRuns: suite === nodeSuite ? 2_000 : 500 },
    );
  });

  it('the vector report: every byte position, each single-bit flip and the all-bits flip, is rejected (node)', () => {
    for (let i = 0; i < SIGNED.length; i++) {
      for (const xor of [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff]) {
        const changed = SIGNED.slice();
        changed[i]! ^= xor;
        expect(verifyTcnReport(nodeSuite, changed).ok).toBe(false);
      }
    }
  });
});

describe('SPECS §3 hostile bytes only ever yield typed rejections (fuzz)', () => {
  /** Random bytes of any length around the legal range. */
  const anyBytes = bytesUpTo(TCN_SIGNED_REPORT_MAX_BYTES + 16);
  /** Random bytes whose memo length matches the total, so parsing reaches the index, type and signature checks. */
  const consistent = bytesUpTo(255).chain((memo) =>
    fc.uint8Array({ minLength: 70 + memo.length + 64, maxLength: 70 + memo.length + 64 }).map((b) => {
      b[69] = memo.length;
      return b;
    }),
  );
  /** Plausible headers: small j1 ≤ j2, allocated memo type, random key and signature. */
  const plausible = consistent.map((b) => {
    b[64] = (b[64]! % 10) + 1;
    b[65] = 0;
    b[66] = b[64] + (b[66]! % 10);
    b[67] = 0;
    b[68] = b[68]! % 4;
    return b;
  });
  /** Property: rejected with a typed reason; records the reasons seen so each test can check its coverage. */
  const never = (suite: CryptoSuite, seen: Set<string>) => (bytes: Uint8Array) => {
    const v = verifyTcnReport(suite, bytes);
    seen.add(reasonOf(v));
    return !v.ok && isTyped(v);
  };

  it.each(SUITES)('random bytes of any length (%s)', (_n, suite) => {
    const seen = new Set<string>();
    fc.assert(fc.property(anyBytes, never(suite, seen)), { numRuns: suite === nodeSuite ? 5_000 : 1_000 });
    expect([...seen]).toEqual(expect.arrayContaining(['too-short', 'too-long', 'bad-length']));
  });

  it.each(SUITES)('length-consistent random reports (%s)', (_n, suite) => {
    const seen = new Set<string>();
    fc.assert(fc.property(fc.oneof(consistent, plausible), never(suite, seen)), { numRuns: suite === nodeSuite ? 3_000 : 1_000 });
    expect([...seen].sort()).toEqual(['bad-index', 'bad-signature', 'unknown-memo-type']);
  });

  it('plausible reports under a real rvk with a random signature are bad-signature', () => {
    const rvk = unhex(vectors.official.rvk);
    fc.assert(
      fc.property(plausible, (b) => {
        b.set(rvk, 0);
        return reasonOf(verifyTcnReport(nodeSuite, b)) === 'bad-signature';
      }),
      { numRuns: 1_000 },
    );
  });
});
