/**
 * SPECS §4.1 Daily/Query/Contact Bloom filters, §7.19 (size, hash), §7.20 (matching): protocol/dimy/
 * bloom.ts and bloom-stats.ts. Positions equal the paper's PoC (willf/bloom v2.0.3 formula over
 * MurmurHash3_x64_128; pinned values computed with the smhasher C reference and the Go formula
 * transcribed to uint64 C, plus a BigInt transcription on random items); no false negatives;
 * measured false-positive rates against (1 − e^(−kn/m))^k for n = 1,000, 10,000 and 100,000;
 * union = QBF/CBF; codec round trip, every rejection, and fuzz (10,600 hostile inputs); overlap
 * of unrelated filters against its hypergeometric expectation.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bloomContains, bloomInsert, bloomPopcount, bloomPositions, bloomUnion, createBloom, decodeBloom, DIMY_BLOOM_BITS,
  DIMY_BLOOM_BYTES, DIMY_BLOOM_CODEC, DIMY_BLOOM_ENCODED_BYTES, DIMY_BLOOM_HASHES, DIMY_BLOOM_REJECTION_REASONS, encodeBloom, type BloomFilter,
} from '../../protocol/dimy/bloom.ts';
import { bloomCommonBits, bloomExpectedSetBits, bloomFalsePositiveRate, bloomOverlap, expectedRandomOverlap } from '../../protocol/dimy/bloom-stats.ts';
import { murmur3X64_128 } from '../../protocol/dimy/murmur3.ts';
import type { Verdict } from '../../protocol/errors.ts';
import { misuseField } from '../support/misuse.ts';
import { prng, seededRng } from '../support/test-rng.ts';

const reasonOf = (v: Verdict<unknown>): string => (v.ok ? 'accepted' : v.reason);
/** Byte equality without vitest's deep diff (slow on 100 KB). */
const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0;
const REASONS: ReadonlySet<string> = new Set(DIMY_BLOOM_REJECTION_REASONS);

/** `count` random 32-byte items (EncID-sized) from a seeded DRBG. */
function items(seed: number, count: number): Uint8Array[] {
  const bytes = seededRng(seed).bytes(32 * count);
  return Array.from({ length: count }, (_, i) => bytes.subarray(32 * i, 32 * i + 32));
}

function filled(list: readonly Uint8Array[]): BloomFilter {
  const filter = createBloom();
  for (const item of list) bloomInsert(filter, item);
  return filter;
}

/** willf/bloom v2.0.3 `location(h, i) % m` in BigInt over the (already vector-checked) murmur3 bytes. */
function referencePositions(item: Uint8Array): number[] {
  const lanes = (b: Uint8Array): bigint[] => [new DataView(b.buffer).getBigUint64(0, true), new DataView(b.buffer).getBigUint64(8, true)];
  const h = [...lanes(murmur3X64_128(item)), ...lanes(murmur3X64_128(Uint8Array.from([...item, 1])))];
  return [0, 1, 2].map((i) => {
    const loc = ((h[i % 2] ?? 0n) + BigInt(i) * (h[2 + ((i + (i % 2)) % 4) / 2] ?? 0n)) & ((1n << 64n) - 1n);
    return Number(loc % BigInt(DIMY_BLOOM_BITS));
  });
}

describe('SPECS §4.1 / §7.19 filter parameters', () => {
  it('m = 800,000 bits = 100,000 bytes, k = 3; encoded 100,001 bytes', () => {
    expect([DIMY_BLOOM_BITS, DIMY_BLOOM_BYTES, DIMY_BLOOM_HASHES, DIMY_BLOOM_ENCODED_BYTES]).toEqual([800_000, 100_000, 3, 100_001]);
  });

  it('the paper\u2019s FPR figures follow: 1 in 19.07 million (n = 1,000) and 1 in 2303 (n = 21,000)', () => {
    expect(1 / bloomFalsePositiveRate(1_000)).toBeGreaterThan(19.0e6);
    expect(1 / bloomFalsePositiveRate(1_000)).toBeLessThan(19.1e6);
    expect(1 / bloomFalsePositiveRate(21_000)).toBeCloseTo(2302.6, 0);
  });
});

describe('SPECS §4.1 Bloom positions: the paper PoC\u2019s willf/bloom v2.0.3 locations', () => {
  it.each([
    ['bytes 7·i for i < 32', Uint8Array.from({ length: 32 }, (_, i) => (7 * i) & 0xff), [786_391, 737_349, 28_245]],
    ['the empty item', new Uint8Array(0), [0, 495_493, 190_986]],
    ['bytes 7·i + 2 for i < 5', Uint8Array.from({ length: 5 }, (_, i) => 7 * i + 2), [448_096, 213_259, 177_468]],
  ])('%s (C reference)', (_what, item, expected) => {
    expect(bloomPositions(item)).toEqual(expected);
  });

  it('equal a BigInt transcription of the Go formula on random items (fast-check)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (item) => {
        expect(bloomPositions(item)).toEqual(referencePositions(item));
      }),
      { numRuns: 1_000 },
    );
  });
});

describe('SPECS §4.1 DBF insert / contains', () => {
  it('no false negatives: every inserted item is contained (fast-check)', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 32, maxLength: 32 }), { minLength: 1, maxLength: 50 }), (list) => {
        const filter = filled(list);
        return list.every((item) => bloomContains(filter, item));
      }),
      { numRuns: 100 },
    );
  });

  it('insert mutates the filter in place and sets at most 3 bits; the bit of position p is byte p >> 3, mask 1 << (p & 7)', () => {
    const filter = createBloom();
    const item = Uint8Array.of(1, 2, 3);
    bloomInsert(filter, item);
    const positions = bloomPositions(item);
    expect(bloomPopcount(filter)).toBe(new Set(positions).size);
    for (const p of positions) expect((filter.bits[p >> 3] ?? 0) & (1 << (p & 7))).not.toBe(0);
  });

  // Measured rate vs (1 − e^(−kn/m))^k: the fill (set bits) against its exact expectation, the rate
  // fill^k implied by it, and a direct count of false positives among fresh queries.
  it.each([
    [1_000, 200_000, 0, 1],
    [10_000, 200_000, 1, 25],
    [100_000, 20_000, 612 - 5 * 25, 612 + 5 * 25],
  ])('n = %d items, %d fresh queries: false positives in [%d, %d]', (n, queries, low, high) => {
    const filter = filled(items(n, n));
    const set = bloomPopcount(filter);
    const expectedSet = bloomExpectedSetBits(n);
    expect(Math.abs(set - expectedSet) / expectedSet).toBeLessThan(0.01);
    const theory = bloomFalsePositiveRate(n);
    expect(Math.abs((set / DIMY_BLOOM_BITS) ** 3 - theory) / theory).toBeLessThan(0.03);
    let falsePositives = 0;
    for (const query of items(n + 1, queries)) if (bloomContains(filter, query)) falsePositives++;
    expect(falsePositives).toBeGreaterThanOrEqual(low);
    expect(falsePositives).toBeLessThanOrEqual(high);
    expect(Math.abs(falsePositives - theory * queries)).toBeLessThanOrEqual(5 * Math.sqrt(theory * queries) + 1);
  });
});

describe('SPECS §4.1 QBF / CBF: union', () => {
  it('QBF = OR of DBFs contains every item of every DBF, inputs untouched', () => {
    const days = [items(1, 50), items(2, 50), items(3, 50)];
    const dbfs = days.map(filled);
    const before = dbfs.map(bloomPopcount);
    const qbf = bloomUnion(dbfs);
    for (const item of days.flat()) expect(bloomContains(qbf, item)).toBe(true);
    expect(dbfs.map(bloomPopcount)).toEqual(before);
    expect(bloomPopcount(qbf)).toBe(bloomPopcount(filled(days.flat())));
  });

  it('union of nothing is empty; unaligned views take the byte path with the same result', () => {
    expect(bloomPopcount(bloomUnion([]))).toBe(0);
    const a = filled(items(4, 30));
    const shifted = new Uint8Array(DIMY_BLOOM_BYTES + 1);
    shifted.set(a.bits, 1);
    const view = { bits: shifted.subarray(1) };
    expect(same(bloomUnion([view]).bits, a.bits)).toBe(true);
    expect(bloomCommonBits(view, a)).toBe(bloomPopcount(a));
  });
});

describe('SPECS §4.1 / §7.20 matching baseline: overlap of unrelated filters', () => {
  it('two unrelated 1,000-item filters overlap within 5σ of the hypergeometric expectation', () => {
    const o = bloomOverlap(filled(items(5, 1_000)), filled(items(6, 1_000)));
    expect(Math.abs(o.z)).toBeLessThan(5);
    expect(o.expected).toBeCloseTo((o.setA * o.setB) / DIMY_BLOOM_BITS, 9);
  });

  it('sparse (assignment-sized) filters: one shared EncID stands far above the baseline', () => {
    const shared = items(7, 1);
    const o = bloomOverlap(filled([...items(8, 20), ...shared]), filled([...items(9, 20), ...shared]));
    expect(o.common).toBeGreaterThanOrEqual(3);
    expect(o.expected).toBeLessThan(0.01);
    expect(o.z).toBeGreaterThan(20);
  });

  it('paper scale (21 days × 1,000 EncIDs): random overlap ≈ 4,588 ± 63 bits, so 3 bits of one encounter are invisible', () => {
    const set = Math.round(bloomExpectedSetBits(21_000));
    const { expected, sigma } = expectedRandomOverlap(set, set);
    expect(expected).toBeCloseTo(4_588, -1);
    expect(sigma).toBeCloseTo(62.6, 0);
    expect(3 / sigma).toBeLessThan(0.05);
  });

  it('empty or full filters fix the overlap: sigma = 0, z = 0', () => {
    const full = { bits: new Uint8Array(DIMY_BLOOM_BYTES).fill(0xff) };
    const o = bloomOverlap(full, filled(items(10, 10)));
    expect([o.sigma, o.z, o.common]).toEqual([0, 0, o.setB]);
    expect(bloomOverlap(createBloom(), full)).toMatchObject({ common: 0, expected: 0, z: 0 });
  });
});

describe('SPECS §4.1 filter codec (version 1, 100,001 bytes)', () => {
  const filter = filled(items(11, 100));
  const encoded = encodeBloom(filter);

  it('round trip; layout is version byte 0x01 then the bits; decode copies', () => {
    expect(encoded).toHaveLength(DIMY_BLOOM_ENCODED_BYTES);
    expect(encoded[0]).toBe(1);
    expect(same(encoded.subarray(1), filter.bits)).toBe(true);
    const v = decodeBloom(encoded.slice());
    expect(v.ok && same(v.value.bits, filter.bits)).toBe(true);
    expect(v.ok && v.value.bits.buffer).not.toBe(encoded.buffer);
  });

  const full = new Uint8Array(DIMY_BLOOM_ENCODED_BYTES).fill(0xff);
  full[0] = 1;
  it.each([
    ['too-short', undefined, new Uint8Array(0), {}],
    ['too-short', undefined, encoded.subarray(0, DIMY_BLOOM_ENCODED_BYTES - 1), {}],
    ['too-long', undefined, Uint8Array.from([...encoded, 0]), {}],
    ['bad-version', 'version', Uint8Array.from(encoded, (b, i) => (i === 0 ? 2 : b)), {}],
    ['too-full', 'bits', full, { maxSetBits: 63_000 }],
    ['accepted', undefined, full, {}],
    ['accepted', undefined, encoded, { maxSetBits: 300 }],
    ['too-full', 'bits', encoded, { maxSetBits: bloomPopcount(filter) - 1 }],
  ])('%s (%s)', (reason, field, bytes, options) => {
    const v = decodeBloom(bytes, options);
    expect(reasonOf(v)).toBe(reason);
    expect(v.ok ? undefined : v.field).toBe(field);
  });

  it('fuzz: 10,000 short random strings and 600 near-size ones give typed rejections only', () => {
    const next = prng(43);
    const isTyped = (v: Verdict<unknown>): boolean => v.ok || (v.codec === DIMY_BLOOM_CODEC && REASONS.has(v.reason) && v.detail.length > 0);
    for (let run = 0; run < 10_000; run++) {
      const bytes = Uint8Array.from({ length: Math.floor(next() * 200) }, () => Math.floor(next() * 256));
      if (!isTyped(decodeBloom(bytes, { maxSetBits: 10 }))) throw new Error('untyped');
    }
    const seen = new Set<string>();
    for (let run = 0; run < 600; run++) {
      const bytes = new Uint8Array(DIMY_BLOOM_ENCODED_BYTES - 1 + (run % 3));
      for (let i = 0; i < 64; i++) bytes[Math.floor(next() * bytes.length)] = Math.floor(next() * 256);
      bytes[0] = run % 5 === 0 ? Math.floor(next() * 256) : 1;
      const v = decodeBloom(bytes, { maxSetBits: 200 + (run % 200) });
      if (!isTyped(v)) throw new Error('untyped');
      seen.add(reasonOf(v));
    }
    expect([...seen].sort()).toEqual(['accepted', 'bad-version', 'too-full', 'too-long', 'too-short']);
  });
});

describe('SPECS §4.1 Bloom caller misuse throws MisuseError naming the field', () => {
  const short = { bits: new Uint8Array(10) };
  it.each([
    ['item', () => bloomPositions('x' as unknown as Uint8Array)],
    ['filter.bits', () => bloomInsert(short, new Uint8Array(1))],
    ['filter', () => bloomContains({} as BloomFilter, new Uint8Array(1))],
    ['filters[1].bits', () => bloomUnion([createBloom(), short])],
    ['b.bits', () => bloomCommonBits(createBloom(), short)],
    ['options.maxSetBits', () => decodeBloom(new Uint8Array(1), { maxSetBits: -1 })],
    ['bytes', () => decodeBloom([1, 2] as unknown as Uint8Array)],
    ['setA', () => expectedRandomOverlap(-1, 0)],
    ['setB', () => expectedRandomOverlap(0, DIMY_BLOOM_BITS + 1)],
    ['items', () => bloomFalsePositiveRate(-1)],
    ['hashes', () => bloomExpectedSetBits(1, 8, 0)],
  ])('%s', (field, fn) => {
    expect(misuseField(fn)).toBe(field);
  });
});
