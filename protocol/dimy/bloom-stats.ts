/**
 * Bloom filter statistics for DIMY's backend matching rule (SPECS §4.1 "Matching", §7.20).
 *
 * The paper's backend ANDs a QBF with a CBF and answers "matched" "based on the number of set
 * bits in the intersection" with no threshold (§7.20). What an AND count can show is how far
 * it exceeds the overlap of two *unrelated* filters with the same fill:
 *
 *   If A has a set bits and B has b set bits, spread independently over m bits, the common
 *   count C is hypergeometric: E[C] = a·b/m,  Var[C] = b·(a/m)·(1 − a/m)·(m − b)/(m − 1).
 *
 * One shared EncID adds at most k = 3 common bits. That is decisive when the filters are
 * sparse (assignment profile: tens of items, E[C] ≈ 0.005) and invisible when they are full
 * (paper profile: a 21-day QBF and CBF of ~21,000 items each have E[C] ≈ 4,588 ± 63), so an
 * AND-count rule cannot detect a single encounter at paper scale. Even two unrelated one-day
 * filters of 1,000 items share ≈ 11 ± 3 bits, so "any common bit" matches everyone.
 * bloomOverlap reports the count, its expectation and the z-score (C − E[C]) / σ for the
 * rule to threshold.
 * Theory helpers are exact formulas, not estimates from samples.
 */
import { ensure } from '../errors.ts';
import { checkBloom, DIMY_BLOOM_BITS, DIMY_BLOOM_HASHES, popcount32, words, type BloomFilter } from './bloom.ts';

/** Common set bits of two filters, with what unrelated filters of the same fill would share. */
export interface BloomOverlap {
  /** Set bits in a, in b, and in a AND b. */
  readonly setA: number;
  readonly setB: number;
  readonly common: number;
  /** E[common] for independent filters with these fills: setA · setB / m. */
  readonly expected: number;
  /** Standard deviation of common for independent filters (hypergeometric). */
  readonly sigma: number;
  /** (common − expected) / sigma; 0 when sigma = 0 (an empty or full filter fixes common). */
  readonly z: number;
}

/** Number of bits set in both filters (popcount of a AND b): the backend's inner loop, kept tight. */
export function bloomCommonBits(a: BloomFilter, b: BloomFilter): number {
  checkBloom(a, 'a');
  checkBloom(b, 'b');
  const wa = words(a.bits);
  const wb = words(b.bits);
  if (wa === undefined || wb === undefined) {
    let count = 0;
    for (let i = 0; i < a.bits.length; i++) count += popcount32((a.bits[i] ?? 0) & (b.bits[i] ?? 0));
    return count;
  }
  return commonWords(wa, wb);
}

/** Popcount of a AND b over equal-length word arrays; AND-zero words (most, in sparse filters) cost no popcount. */
function commonWords(a: Uint32Array, b: Uint32Array): number {
  let count = 0;
  for (let i = 0; i < a.length; i++) {
    let x = (a[i] ?? 0) & (b[i] ?? 0);
    if (x === 0) continue;
    x -= (x >>> 1) & 0x55555555;
    x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
    count += Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
  }
  return count;
}

/** Hypergeometric mean and standard deviation of the overlap of a and b set bits among m. */
export function expectedRandomOverlap(setA: number, setB: number, bits: number = DIMY_BLOOM_BITS): { readonly expected: number; readonly sigma: number } {
  ensure(Number.isInteger(bits) && bits >= 2, 'bits', `must be an integer ≥ 2, got ${bits}`);
  ensure(Number.isInteger(setA) && setA >= 0 && setA <= bits, 'setA', `must be an integer in [0, ${bits}], got ${setA}`);
  ensure(Number.isInteger(setB) && setB >= 0 && setB <= bits, 'setB', `must be an integer in [0, ${bits}], got ${setB}`);
  const p = setA / bits;
  const variance = setB * p * (1 - p) * ((bits - setB) / (bits - 1));
  return { expected: (setA * setB) / bits, sigma: Math.sqrt(Math.max(0, variance)) };
}

/** Overlap of a QBF and a CBF against the random-overlap baseline (header). */
export function bloomOverlap(a: BloomFilter, b: BloomFilter): BloomOverlap {
  const common = bloomCommonBits(a, b);
  // x AND x = x: the same tight loop counts each filter's own set bits.
  const setA = bloomCommonBits(a, a);
  const setB = bloomCommonBits(b, b);
  const { expected, sigma } = expectedRandomOverlap(setA, setB);
  return { setA, setB, common, expected, sigma, z: sigma === 0 ? 0 : (common - expected) / sigma };
}

function checkItems(items: number, bits: number, hashes: number): void {
  ensure(Number.isFinite(items) && items >= 0, 'items', `must be a non-negative number, got ${items}`);
  ensure(Number.isInteger(bits) && bits >= 1, 'bits', `must be a positive integer, got ${bits}`);
  ensure(Number.isInteger(hashes) && hashes >= 1, 'hashes', `must be a positive integer, got ${hashes}`);
}

/** Expected set bits after inserting `items` items: m · (1 − (1 − 1/m)^(k·n)). */
export function bloomExpectedSetBits(items: number, bits: number = DIMY_BLOOM_BITS, hashes: number = DIMY_BLOOM_HASHES): number {
  checkItems(items, bits, hashes);
  return bits * -Math.expm1(hashes * items * Math.log1p(-1 / bits));
}

/**
 * The classic false-positive rate (1 − e^(−k·n/m))^k: SPECS §4.1 derives "1 in 19 million"
 * (n = 1,000) and "1 in 2303" (n = 21,000) from it with m = 800,000, k = 3.
 */
export function bloomFalsePositiveRate(items: number, bits: number = DIMY_BLOOM_BITS, hashes: number = DIMY_BLOOM_HASHES): number {
  checkItems(items, bits, hashes);
  return (-Math.expm1((-hashes * items) / bits)) ** hashes;
}
