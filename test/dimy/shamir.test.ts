/**
 * SPECS §4.1 shares (k-out-of-n), §4.2 parameter sets: Shamir over GF(2^8) (protocol/dimy/shamir.ts).
 * Properties: any k of n shares reconstruct; k − 1 shares determine nothing (exhaustively: for a
 * 1-byte secret and k = 3 every pair of share values occurs exactly once per secret, so they are
 * uniform and independent of it) and combining k − 1 of them gives a wrong secret with
 * overwhelming probability; the randomness layout; every typed rejection; caller misuse.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Verdict } from '../../protocol/errors.ts';
import {
  combineShares,
  DIMY_DEFAULT_K,
  DIMY_DEFAULT_N,
  SHAMIR_CODEC,
  SHAMIR_REJECTION_REASONS,
  shamirRandomBytesNeeded,
  splitSecret,
  type ShamirShare,
} from '../../protocol/dimy/shamir.ts';
import { gfMul } from '../../protocol/dimy/gf256.ts';
import { misuseField } from '../support/misuse.ts';
import { seededRng } from '../support/test-rng.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const reasonOf = (v: Verdict<unknown>): string => (v.ok ? 'accepted' : v.reason);
const REASONS: ReadonlySet<string> = new Set(SHAMIR_REJECTION_REASONS);

/** A k-subset of shares in a random order, chosen by fast-check. */
const kn = fc.integer({ min: 2, max: 12 }).chain((k) => fc.record({ k: fc.constant(k), n: fc.integer({ min: k, max: 20 }) }));
const secretArb = fc.uint8Array({ minLength: 1, maxLength: 48 });

describe('SPECS §4.2 defaults', () => {
  it('k = 3, n = 5 (22T1 profile); randomness is (k − 1) · L bytes', () => {
    expect([DIMY_DEFAULT_K, DIMY_DEFAULT_N]).toEqual([3, 5]);
    expect(shamirRandomBytesNeeded(32, 3)).toBe(64);
  });
});

describe('SPECS §4.1 shares: split → combine', () => {
  it('any k of n shares, in any order, reconstruct the secret (fast-check)', () => {
    fc.assert(
      fc.property(secretArb, kn, fc.integer(), fc.integer(), (secret, { k, n }, seed, pick) => {
        const shares = splitSecret(secret, k, n, seededRng(seed));
        expect(shares.map((s) => s.index)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
        const chosen = fc.sample(fc.shuffledSubarray(shares, { minLength: k, maxLength: n }), { seed: pick, numRuns: 1 })[0] ?? [];
        const v = combineShares(chosen, k);
        expect(v.ok && hex(v.value)).toBe(hex(secret));
      }),
      { numRuns: 300 },
    );
  });

  it('the paper profile k = 15, n = 30 on a 32-byte EphID (SPECS §4.1)', () => {
    const secret = seededRng(1).bytes(32);
    const shares = splitSecret(secret, 15, 30, seededRng(2));
    const v = combineShares(shares.slice(15), 15);
    expect(v.ok && hex(v.value)).toBe(hex(secret));
  });

  it('share i is p(i) with the documented coefficient layout: randomness[(c − 1)·L + j] = a_{c,j}', () => {
    // secret 0x10 0x20, k = 3: a_1 = (0x01, 0x02), a_2 = (0x03, 0x04); p_j(x) = s_j + a_1j·x + a_2j·x².
    const shares = splitSecret(Uint8Array.of(0x10, 0x20), 3, 4, Uint8Array.of(0x01, 0x02, 0x03, 0x04));
    for (const { index: x, bytes } of shares) {
      const x2 = gfMul(x, x);
      expect(bytes[0]).toBe(0x10 ^ gfMul(0x01, x) ^ gfMul(0x03, x2));
      expect(bytes[1]).toBe(0x20 ^ gfMul(0x02, x) ^ gfMul(0x04, x2));
    }
  });

  it('all-zero coefficients give shares equal to the secret (the polynomial is constant)', () => {
    const shares = splitSecret(Uint8Array.of(7, 8, 9), 3, 5, new Uint8Array(6));
    for (const s of shares) expect([...s.bytes]).toEqual([7, 8, 9]);
  });
});

describe('SPECS §4.1 shares: fewer than k reveal nothing', () => {
  it('k = 3, 1-byte secret: over all 65,536 coefficient pairs, (share 1, share 2) takes every value exactly once, for every secret tried', () => {
    for (const secret of [0x00, 0x5a, 0xff]) {
      const seen = new Uint8Array(65_536);
      for (let a1 = 0; a1 < 256; a1++) {
        for (let a2 = 0; a2 < 256; a2++) {
          const [s1, s2] = splitSecret(Uint8Array.of(secret), 3, 3, Uint8Array.of(a1, a2));
          const cell = ((s1?.bytes[0] ?? 0) << 8) | (s2?.bytes[0] ?? 0);
          seen[cell] = (seen[cell] ?? 0) + 1;
        }
      }
      expect(seen.every((count) => count === 1)).toBe(true);
    }
  });

  it('k − 1 shares combined as if the threshold were k − 1 give a different 32-byte secret (fast-check)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.integer({ min: 3, max: 10 }), fc.integer(), (secret, k, seed) => {
        const shares = splitSecret(secret, k, k + 2, seededRng(seed));
        const v = combineShares(shares.slice(0, k - 1), k - 1);
        // Equal only if every byte's polynomial has a zero top coefficient: probability 2^−256.
        expect(v.ok && hex(v.value)).not.toBe(hex(secret));
      }),
      { numRuns: 300 },
    );
  });

  it('k − 1 shares are refused with too-few-shares at threshold k', () => {
    const shares = splitSecret(Uint8Array.of(1, 2, 3), 3, 5, seededRng(3));
    expect(reasonOf(combineShares(shares.slice(0, 2), 3))).toBe('too-few-shares');
  });
});

describe('SPECS §4.1 shares: typed rejections of hostile shares', () => {
  const shares = splitSecret(Uint8Array.of(1, 2, 3, 4), 3, 5, seededRng(4));
  const [a, b, c] = shares as [ShamirShare, ShamirShare, ShamirShare];
  const cases: readonly (readonly [string, string | undefined, readonly ShamirShare[]])[] = [
    ['too-few-shares', undefined, []],
    ['too-few-shares', undefined, [a, b]],
    ['bad-index', 'shares[1].index', [a, { index: 0, bytes: b.bytes }, c]],
    ['bad-index', 'shares[2].index', [a, b, { index: 256, bytes: c.bytes }]],
    ['bad-index', 'shares[0].index', [{ index: 1.5, bytes: a.bytes }, b, c]],
    ['empty-share', 'shares[0].bytes', [{ index: 1, bytes: new Uint8Array(0) }, { index: 2, bytes: new Uint8Array(0) }, { index: 3, bytes: new Uint8Array(0) }]],
    ['inconsistent-length', 'shares[2].bytes', [a, b, { index: c.index, bytes: c.bytes.subarray(1) }]],
    ['duplicate-index', 'shares[2].index', [a, b, a]],
    ['duplicate-index', 'shares[3].index', [a, b, c, { index: 2, bytes: c.bytes }]],
  ];
  it.each(cases)('%s (%s)', (reason, field, input) => {
    const v = combineShares(input, 3);
    expect(reasonOf(v)).toBe(reason);
    expect(v.ok ? undefined : v.field).toBe(field);
    expect(!v.ok && v.codec === SHAMIR_CODEC && REASONS.has(v.reason) && v.detail.length > 0).toBe(true);
  });

  it('hostile share sets only ever give typed rejections or a secret (fast-check)', () => {
    const share = fc.record({ index: fc.oneof(fc.integer({ min: -2, max: 258 }), fc.double()), bytes: fc.uint8Array({ maxLength: 4 }) });
    fc.assert(
      fc.property(fc.array(share, { maxLength: 6 }), fc.integer({ min: 2, max: 4 }), (input, k) => {
        const v = combineShares(input, k);
        expect(v.ok || (v.codec === SHAMIR_CODEC && REASONS.has(v.reason))).toBe(true);
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('SPECS §4.1 shares: caller misuse throws MisuseError naming the field', () => {
  const rng = (): ReturnType<typeof seededRng> => seededRng(5);
  it.each([
    ['secret', () => splitSecret(new Uint8Array(0), 3, 5, rng())],
    ['k', () => splitSecret(Uint8Array.of(1), 1, 5, rng())],
    ['k', () => splitSecret(Uint8Array.of(1), 256, 256, rng())],
    ['n', () => splitSecret(Uint8Array.of(1), 3, 2, rng())],
    ['n', () => splitSecret(Uint8Array.of(1), 3, 256, rng())],
    ['randomness', () => splitSecret(Uint8Array.of(1, 2), 3, 5, new Uint8Array(3))],
    ['randomness', () => splitSecret(Uint8Array.of(1, 2), 3, 5, { bytes: () => new Uint8Array(1) })],
    ['k', () => combineShares([], 0)],
  ])('%s', (field, fn) => {
    expect(misuseField(fn)).toBe(field);
  });
});
