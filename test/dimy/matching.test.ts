/**
 * SPECS §4.1 "Matching", §7.20: protocol/dimy/matching.ts. The hypergeometric tail against exact
 * big-integer sums (BigInt here for small m; Python `math.comb` for the pinned m = 800,000 values
 * in the header table), the thresholds of every rule at the header's fills, the fast paths
 * (sparse positions, nonzero words, full scan, unaligned bytes) against bloomCommonBits, T_old,
 * planted encounters, and a Monte Carlo false-match rate of unrelated filters.
 */
import { describe, expect, it } from 'vitest';
import { bloomInsert, createBloom, DIMY_BLOOM_BITS, DIMY_BLOOM_BYTES, type BloomFilter } from '../../protocol/dimy/bloom.ts';
import { bloomCommonBits, expectedRandomOverlap } from '../../protocol/dimy/bloom-stats.ts';
import {
  DEFAULT_DIMY_MATCH_RULE,
  DIMY_MATCH_RULES,
  DIMY_SPARSE_MAX_SET_BITS,
  hypergeometricUpperTail,
  matchFilters,
  matchThreshold,
  preparedCommonBits,
  prepareContact,
  prepareQuery,
  resolveMatchRule,
  searchCbfs,
  verdictFor,
} from '../../protocol/dimy/matching.ts';
import { misuseField } from '../support/misuse.ts';
import { seededRng } from '../support/test-rng.ts';

const Z_RULE = resolveMatchRule({ name: 'z-score' });
const ANY = resolveMatchRule({ name: 'any-common-bits' });
const MIN3 = resolveMatchRule({ name: 'min-common-bits' });

/** A filter with exactly `count` distinct random set bits. */
function randomFilter(seed: number, count: number): BloomFilter {
  const rng = seededRng(seed);
  const filter = createBloom();
  let set = 0;
  while (set < count) {
    const p = rng.int(DIMY_BLOOM_BITS);
    const mask = 1 << (p & 7);
    if (((filter.bits[p >>> 3] ?? 0) & mask) !== 0) continue;
    filter.bits[p >>> 3] = (filter.bits[p >>> 3] ?? 0) | mask;
    set++;
  }
  return filter;
}

function withItems(base: BloomFilter, items: readonly Uint8Array[]): BloomFilter {
  const out = { bits: base.bits.slice() };
  for (const item of items) bloomInsert(out, item);
  return out;
}

/** `count` random 32-byte EncIDs. */
function encIds(seed: number, count: number): Uint8Array[] {
  const bytes = seededRng(seed).bytes(32 * count);
  return Array.from({ length: count }, (_, i) => bytes.subarray(32 * i, 32 * i + 32));
}

function choose(n: bigint, k: bigint): bigint {
  if (k < 0n || k > n) return 0n;
  let r = 1n;
  for (let i = 0n; i < k; i++) r = (r * (n - i)) / (i + 1n);
  return r;
}

describe('hypergeometric tail (header formula)', () => {
  it('equals exact BigInt sums for every c at small m', () => {
    for (const [m, a, b] of [
      [50, 10, 20],
      [60, 59, 30],
      [40, 0, 7],
      [30, 30, 30],
      [200, 150, 120],
    ] as const) {
      const total = choose(BigInt(m), BigInt(b));
      for (let c = -1; c <= Math.min(a, b) + 1; c++) {
        let num = 0n;
        for (let j = Math.max(c, 0); j <= Math.min(a, b); j++) num += choose(BigInt(a), BigInt(j)) * choose(BigInt(m - a), BigInt(b - j));
        const exact = Number((num * 10n ** 30n) / total) / 1e30;
        const got = hypergeometricUpperTail(c, a, b, m);
        expect(Math.abs(got - exact)).toBeLessThanOrEqual(1e-12 + 1e-9 * exact);
      }
    }
  });

  it('matches the header table at m = 800,000 (exact values from Python math.comb)', () => {
    const pinned: readonly (readonly [number, number, number, number])[] = [
      [4, 120, 360, 3.178723181741972e-7],
      [3, 120, 360, 2.4405207689433445e-5],
      [7, 300, 899, 6.720216228637754e-8],
      [6, 300, 899, 1.440229402471673e-6],
      [4, 300, 899, 4.025844376520466e-4],
      [3, 300, 899, 4.919537881237909e-3],
      [31, 2994, 2994, 7.557349584986822e-7],
      [28, 2994, 2994, 1.5846430086543403e-5],
      [4889, 60583, 60583, 9.63719521565347e-7],
      [4886, 60583, 60583, 1.2156406037993796e-6],
    ];
    for (const [c, a, b, p] of pinned) expect(hypergeometricUpperTail(c, a, b) / p).toBeCloseTo(1, 8);
  });

  it('is 1 at or below the support and 0 above it; misuse names the field', () => {
    expect(hypergeometricUpperTail(0, 10, 10)).toBe(1);
    expect(hypergeometricUpperTail(11, 10, 10)).toBe(0);
    expect(hypergeometricUpperTail(DIMY_BLOOM_BITS, DIMY_BLOOM_BITS, DIMY_BLOOM_BITS)).toBe(1);
    expect(misuseField(() => hypergeometricUpperTail(1.5, 1, 1))).toBe('c');
    expect(misuseField(() => hypergeometricUpperTail(1, -1, 1))).toBe('setQuery');
    expect(misuseField(() => hypergeometricUpperTail(1, 1, DIMY_BLOOM_BITS + 1))).toBe('setContact');
  });
});

describe('rules and thresholds (header table)', () => {
  it('default: tail, minCommonBits 3, alpha 1e-6, z 4.75; misuse names the field', () => {
    expect(DEFAULT_DIMY_MATCH_RULE).toEqual({ name: 'tail', minCommonBits: 3, alpha: 1e-6, z: 4.75 });
    expect(misuseField(() => resolveMatchRule({ name: 'nope' as 'tail' }))).toBe('rule.name');
    expect(misuseField(() => resolveMatchRule({ minCommonBits: 0 }))).toBe('rule.minCommonBits');
    expect(misuseField(() => resolveMatchRule({ alpha: 0.5 }))).toBe('rule.alpha');
    expect(misuseField(() => resolveMatchRule({ z: Number.NaN }))).toBe('rule.z');
    expect(misuseField(() => matchThreshold(10, 10, { ...DEFAULT_DIMY_MATCH_RULE, name: 'x' as 'tail' }))).toBe('rule.name');
  });

  it.each([
    [120, 360, 4, 3],
    [300, 899, 7, 4],
    [2994, 2994, 31, 28],
    [60583, 60583, 4889, 4886],
  ])('QBF %i bits, CBF %i bits: tail threshold %i, z-score threshold %i; fixed counts 1 and 3', (q, c, tail, z) => {
    expect(matchThreshold(q, c)).toBe(tail);
    expect(matchThreshold(q, c, Z_RULE)).toBe(z);
    expect(matchThreshold(q, c, ANY)).toBe(1);
    expect(matchThreshold(q, c, MIN3)).toBe(3);
    // The tail threshold is the smallest count whose tail is within alpha.
    expect(hypergeometricUpperTail(tail, q, c)).toBeLessThanOrEqual(1e-6);
    expect(hypergeometricUpperTail(tail - 1, q, c)).toBeGreaterThan(1e-6);
  });

  it('an empty or full filter (σ = 0) never matches under tail or z-score; thresholds beyond the support are Infinity', () => {
    for (const [q, c] of [
      [0, 500],
      [DIMY_BLOOM_BITS, 500],
    ] as const) {
      expect(matchThreshold(q, c)).toBe(Infinity);
      expect(matchThreshold(q, c, Z_RULE)).toBe(Infinity);
    }
    expect(matchThreshold(DIMY_BLOOM_BITS, 500, MIN3)).toBe(3);
    expect(matchThreshold(2, 500, MIN3)).toBe(Infinity);
    expect(matchThreshold(0, 0, ANY)).toBe(Infinity);
  });

  it('a larger alpha lowers the tail threshold down to minCommonBits', () => {
    expect(matchThreshold(300, 899, resolveMatchRule({ alpha: 0.01 }))).toBe(3);
    expect(matchThreshold(300, 899, resolveMatchRule({ alpha: 0.4, minCommonBits: 1 }))).toBe(1);
  });
});

describe('fast paths equal bloomCommonBits', () => {
  const fills = [0, 1, 120, 900, DIMY_SPARSE_MAX_SET_BITS, DIMY_SPARSE_MAX_SET_BITS + 1, 30_000, 61_000, 300_000];
  it('every QBF fill × every CBF fill (sparse, nonzero-word and full-scan paths)', () => {
    let seed = 100;
    for (const qf of fills) {
      const qbf = randomFilter(seed++, qf);
      const query = prepareQuery(qbf);
      expect(query.setBits).toBe(qf);
      for (const cf of fills) {
        const cbf = randomFilter(seed++, cf);
        const contact = prepareContact(cbf);
        expect(contact.setBits).toBe(cf);
        expect(contact.positions === null).toBe(cf > DIMY_SPARSE_MAX_SET_BITS);
        expect(preparedCommonBits(query, contact)).toBe(bloomCommonBits(qbf, cbf));
      }
    }
  });

  it('unaligned bits (a view at an odd offset) are copied, not misread', () => {
    const qbf = randomFilter(1, 500);
    const cbf = randomFilter(2, 20_000);
    const shifted = (f: BloomFilter): BloomFilter => {
      const buf = new Uint8Array(DIMY_BLOOM_BYTES + 1);
      buf.set(f.bits, 1);
      return { bits: buf.subarray(1) };
    };
    expect(preparedCommonBits(prepareQuery(shifted(qbf)), prepareContact(shifted(cbf)))).toBe(bloomCommonBits(qbf, cbf));
    const positions = prepareContact(shifted(qbf)).positions;
    expect(positions && Array.from(positions.slice(0, 3))).toEqual(Array.from(prepareContact(qbf).positions!.slice(0, 3)));
  });

  it('filters of the wrong size are misuse', () => {
    expect(misuseField(() => prepareQuery({ bits: new Uint8Array(10) }))).toBe('qbf.bits');
    expect(misuseField(() => prepareContact({ bits: new Uint8Array(10) }))).toBe('cbf.bits');
  });
});

describe('verdicts and planted encounters', () => {
  const shared = encIds(7, 200);
  it('city fill: 1 shared EncID matches only the fixed-count rules, 3 match the default, none matches nothing', () => {
    const qBase = randomFilter(11, 300);
    const cBase = randomFilter(12, 899);
    const none = matchFilters(qBase, cBase);
    expect(none.matched).toBe(false);
    const [q1, c1] = [withItems(qBase, shared.slice(0, 1)), withItems(cBase, shared.slice(0, 1))];
    const one = matchFilters(q1, c1);
    expect(one.common).toBeGreaterThanOrEqual(3);
    expect(one.matched).toBe(false);
    expect(matchFilters(q1, c1, MIN3).matched).toBe(true);
    expect(matchFilters(q1, c1, Z_RULE).matched).toBe(one.common >= 4);
    const three = matchFilters(withItems(qBase, shared.slice(0, 3)), withItems(cBase, shared.slice(0, 3)));
    expect(three.matched).toBe(true);
    expect(three.pValue).toBeLessThanOrEqual(1e-6);
    expect(three.z).toBeCloseTo((three.common - three.expected) / three.sigma, 12);
  });

  it('paper fill (60,583 bits each): unrelated filters match any-common-bits and min-common-bits, never tail; 150 shared EncIDs match', () => {
    const qBase = randomFilter(21, 60_583);
    const cBase = randomFilter(22, 60_583);
    expect(matchFilters(qBase, cBase, ANY).matched).toBe(true);
    expect(matchFilters(qBase, cBase, MIN3).matched).toBe(true);
    const unrelated = matchFilters(qBase, cBase);
    expect(unrelated.matched).toBe(false);
    expect(Math.abs(unrelated.z)).toBeLessThan(4.75);
    const planted = matchFilters(withItems(qBase, shared.slice(0, 150)), withItems(cBase, shared.slice(0, 150)));
    expect(planted.matched).toBe(true);
    expect(planted.z).toBeGreaterThan(4.75);
  });

  it('verdictFor: the fields agree with expectedRandomOverlap and the threshold', () => {
    const v = verdictFor(7, 300, 899);
    const { expected, sigma } = expectedRandomOverlap(300, 899);
    expect(v).toEqual({ rule: 'tail', common: 7, setQuery: 300, setContact: 899, expected, sigma, z: (7 - expected) / sigma, pValue: hypergeometricUpperTail(7, 300, 899), threshold: 7, matched: true });
    expect(verdictFor(0, 0, 899).z).toBe(0);
  });
});

describe('searchCbfs: one QBF against many CBFs', () => {
  const shared = encIds(8, 20);
  const qbf = withItems(randomFilter(31, 300), shared);
  const query = prepareQuery(qbf);
  const cbfs = Array.from({ length: 24 }, (_, i) => {
    const fill = [0, 899, 5_000, 20_000][i % 4] ?? 0;
    // A dense CBF (μ ≈ 9 common bits with this QBF) needs more shared EncIDs to stand out.
    const planted = i % 3 === 0 ? shared.slice(0, fill >= 20_000 ? 15 : 3 + (i % 5)) : [];
    return { filter: withItems(randomFilter(200 + i, fill), planted), uploadedAt: 1000 + 10 * i, planted: planted.length > 0 };
  });
  const searchable = cbfs.map((c) => ({ uploadedAt: c.uploadedAt, contact: prepareContact(c.filter) }));

  it.each(DIMY_MATCH_RULES)('rule %s: same matches as matchFilters pair by pair', (name) => {
    const rule = resolveMatchRule({ name });
    const result = searchCbfs(query, searchable, 0, rule);
    expect(result.searched).toBe(cbfs.length);
    const expected = cbfs.flatMap((c, index) => {
      const verdict = matchFilters(qbf, c.filter, rule);
      return verdict.matched ? [{ index, verdict }] : [];
    });
    expect(result.matches).toEqual(expected);
  });

  it('default rule finds exactly the planted CBFs', () => {
    expect(searchCbfs(query, searchable, 0).matches.map((m) => m.index)).toEqual(cbfs.flatMap((c, i) => (c.planted ? [i] : [])));
  });

  it('only CBFs uploaded at or after T_old are searched', () => {
    const tOld = cbfs[6]!.uploadedAt;
    const result = searchCbfs(query, searchable, tOld);
    expect(result.searched).toBe(cbfs.length - 6);
    expect(result.matches.every((m) => m.index >= 6)).toBe(true);
    expect(result.matches.map((m) => m.index)).toContain(6);
    expect(searchCbfs(query, searchable, 1e15).searched).toBe(0);
    expect(misuseField(() => searchCbfs(query, searchable, Number.NaN))).toBe('tOld');
  });
});

describe('false matches of unrelated filters (Monte Carlo)', () => {
  it('city fill, min-common-bits: the rate is P(C ≥ 3) = 4.9e-3; tail (threshold 7): none', () => {
    const rng = seededRng(99);
    const pairs = 3000;
    const counts = new Map<number, number>();
    for (let t = 0; t < pairs; t++) {
      const q = new Set<number>();
      while (q.size < 300) q.add(rng.int(DIMY_BLOOM_BITS));
      let common = 0;
      const c = new Set<number>();
      while (c.size < 899) c.add(rng.int(DIMY_BLOOM_BITS));
      for (const p of c) if (q.has(p)) common++;
      counts.set(common, (counts.get(common) ?? 0) + 1);
    }
    const atLeast = (k: number): number => [...counts].filter(([c]) => c >= k).reduce((s, [, n]) => s + n, 0);
    // Expected 14.8 pairs with ≥ 3 common bits; Poisson 99.9 % interval [4, 29].
    expect(atLeast(3)).toBeGreaterThanOrEqual(4);
    expect(atLeast(3)).toBeLessThanOrEqual(29);
    expect(atLeast(matchThreshold(300, 899))).toBe(0);
    // Mean common count ≈ μ = 0.337 (σ of the mean 0.011).
    const mean = [...counts].reduce((s, [c, n]) => s + c * n, 0) / pairs;
    expect(Math.abs(mean - expectedRandomOverlap(300, 899).expected)).toBeLessThan(0.05);
  });
});
