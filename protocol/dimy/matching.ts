/**
 * DIMY backend matching: does a phone's QBF (OR of its DBFs) share encounters with a positive's
 * CBF? (SPECS §4.1 "Matching", §7.20: the paper gives no threshold.)
 *
 * The backend sees only bits. c = popcount(QBF AND CBF); a shared EncID adds its k = 3 positions
 * (fewer if they collide), so c = 3·j + (random overlap) for j shared EncIDs. Two *unrelated*
 * filters with w_Q and w_C set bits among m overlap like independent random sets: C is
 * hypergeometric, P(C = c) = C(w_Q, c)·C(m − w_Q, w_C − c) / C(m, w_C), with
 *   μ = w_Q·w_C / m,   σ² = w_Q·w_C·(m − w_Q)·(m − w_C) / (m²·(m − 1)).
 * A rule is a threshold on c; its false-match probability per (QBF, CBF) pair is P(C ≥ threshold).
 *
 * Rule (default `tail`): matched iff c ≥ minCommonBits (3: one EncID's k positions) AND the exact
 * hypergeometric upper tail P(C ≥ c) ≤ alpha (1e-6). Querying 10,000 CBFs then gives ≈ 0.01 false
 * matches per query. Numbers (m = 800,000, expected fills; pinned in test/dimy/matching.test.ts):
 *
 *   fills (items → set bits)            μ       σ      tail: t, P(C ≥ t)          z-score (4.75): t, P(C ≥ t)
 *   QBF 40 → 120, CBF 120 → 360         0.054   0.23   4     3.2e-7 (2 EncIDs)    3     2.4e-5
 *   city: QBF 100 → 300, CBF 300 → 899  0.337   0.58   7     6.7e-8 (3 EncIDs)    4     4.0e-4
 *   one day: 1,000 → 2,994 each         11.2    3.3    31    7.6e-7 (7 EncIDs)    28    1.6e-5
 *   paper: 21,000 → 60,583 each         4,588   62.6   4,889 9.6e-7 (101 EncIDs)  4,886 1.2e-6
 *   (t = threshold; "j EncIDs" = shared EncIDs needed on average, ⌈(t − μ) / 3⌉; tails checked
 *   against exact big-integer sums in Python)
 *
 * Why the exact tail and not the normal approximation c ≥ μ + z·σ: for the small μ of sparse
 * filters C is Poisson-like, far heavier-tailed than the normal, so z = 4.75 (normal tail 1.0e-6)
 * accepts pairs whose real false-match probability is up to 400× larger (4.0e-4 at the city fill).
 * Both rules are offered; they agree when μ is large. Paper-like alternatives, for comparison:
 *   `any-common-bits`   c ≥ 1: from one day's fill on (μ = 11) every pair matches
 *   `min-common-bits`   c ≥ minCommonBits (fixed count, default 3): same problem from μ ≈ 1 on
 * What the table means: at the paper's 21-day fill, no AND-count rule can see one encounter;
 * about a hundred shared EncIDs are needed (bloom-stats.ts header). Sparse filters (the assignment
 * profiles, a city run with short windows) see single encounters only with the fixed-count rules,
 * at a per-pair false-match probability P(C ≥ 3) (4.9e-3 at the city fill; P(C ≥ 1) = 0.29).
 * σ = 0 (an empty or a full filter) fixes c: no evidence, never matched except by the fixed-count
 * rules. All rules are deterministic functions of (c, w_Q, w_C); `matchThreshold` gives the smallest
 * matching c, so the batch path compares one integer per pair.
 *
 * Fast path (one QBF against many CBFs): `prepareQuery` keeps the QBF's nonzero 32-bit words
 * (index and value); `prepareContact` keeps a CBF's words and, when it has at most
 * DIMY_SPARSE_MAX_SET_BITS set bits, its sorted set-bit positions. Per pair the cheaper of
 * (a) testing each CBF position in the QBF bytes and (b) ANDing the QBF's nonzero words (or all
 * words in order, when over a quarter are nonzero) is taken; all give the exact c. Only CBFs uploaded at or after
 * the query's T_old are searched (SPECS §4.1: "only CBFs newer than T_old"; an encounter at the
 * instant T_old can be in both, hence ≥).
 *
 * Pure: no clock, no randomness. Caller misuse (a filter of the wrong size, a bad rule) throws
 * MisuseError naming the field; there is no hostile input here (filters come checked from
 * decodeBloom).
 */
import { ensure } from '../errors.ts';
import { checkBloom, DIMY_BLOOM_BITS, DIMY_BLOOM_BYTES, DIMY_BLOOM_HASHES, popcount32, type BloomFilter } from './bloom.ts';
import { expectedRandomOverlap } from './bloom-stats.ts';

export const DIMY_MATCH_RULES = ['tail', 'z-score', 'min-common-bits', 'any-common-bits'] as const;
export type DimyMatchRuleName = (typeof DIMY_MATCH_RULES)[number];

/** Common bits one shared EncID adds: its k = 3 positions. SPECS §4.1 (k = 3). */
export const DIMY_DEFAULT_MIN_COMMON_BITS = DIMY_BLOOM_HASHES;
/** Default per-pair false-match probability of the `tail` rule (≈ 0.01 false matches per 10,000 CBFs). SPECS §7.20: ours. */
export const DIMY_DEFAULT_MATCH_ALPHA = 1e-6;
/** Default z of the `z-score` rule: one-sided normal tail P(Z ≥ 4.75) = 1.02e-6. SPECS §7.20: ours. */
export const DIMY_DEFAULT_MATCH_Z = 4.75;
/** CBFs with at most this many set bits also keep sorted positions (32 KB, a third of the dense bits). */
export const DIMY_SPARSE_MAX_SET_BITS = 8_192;
const WORDS = DIMY_BLOOM_BYTES / 4;
/** A scattered word read costs about this many in-order position tests (measured: bench/dimy.ts, city fill). */
const SPARSE_COST_RATIO = 8;
/** Scan every word when more than 1 / FULL_SCAN_RATIO of the QBF's words are nonzero. */
const FULL_SCAN_RATIO = 4;

export interface DimyMatchRule {
  readonly name: DimyMatchRuleName;
  /** Every rule but `any-common-bits` requires c ≥ minCommonBits. */
  readonly minCommonBits: number;
  /** `tail`: the largest accepted P(C ≥ c) for unrelated filters, in (0, 0.5). */
  readonly alpha: number;
  /** `z-score`: c ≥ μ + z·σ. */
  readonly z: number;
}

export const DEFAULT_DIMY_MATCH_RULE: DimyMatchRule = {
  name: 'tail',
  minCommonBits: DIMY_DEFAULT_MIN_COMMON_BITS,
  alpha: DIMY_DEFAULT_MATCH_ALPHA,
  z: DIMY_DEFAULT_MATCH_Z,
};

/** The default rule with `partial` applied; MisuseError names the first bad field. */
export function resolveMatchRule(partial: Partial<DimyMatchRule> = {}): DimyMatchRule {
  const rule = { ...DEFAULT_DIMY_MATCH_RULE, ...partial };
  ensure((DIMY_MATCH_RULES as readonly string[]).includes(rule.name), 'rule.name', `must be one of ${DIMY_MATCH_RULES.join(', ')}`);
  ensure(Number.isInteger(rule.minCommonBits) && rule.minCommonBits >= 1, 'rule.minCommonBits', `must be a positive integer, got ${rule.minCommonBits}`);
  ensure(typeof rule.alpha === 'number' && rule.alpha > 0 && rule.alpha < 0.5, 'rule.alpha', `must be in (0, 0.5), got ${rule.alpha}`);
  ensure(typeof rule.z === 'number' && Number.isFinite(rule.z) && rule.z >= 0, 'rule.z', `must be a finite number ≥ 0, got ${rule.z}`);
  return rule;
}

/** One QBF/CBF verdict: the counts, the unrelated-filter baseline and the decision. */
export interface DimyMatchVerdict {
  readonly rule: DimyMatchRuleName;
  /** c = popcount(QBF AND CBF). */
  readonly common: number;
  readonly setQuery: number;
  readonly setContact: number;
  /** μ and σ of c for unrelated filters (hypergeometric). */
  readonly expected: number;
  readonly sigma: number;
  /** (c − μ) / σ; 0 when σ = 0. */
  readonly z: number;
  /** P(C ≥ c) for unrelated filters (exact hypergeometric tail). */
  readonly pValue: number;
  /** Smallest c this rule matches at these fills (Infinity: none). */
  readonly threshold: number;
  readonly matched: boolean;
}

// ---------------------------------------------------------------- hypergeometric tail

const LN_FACTORIAL_TABLE_SIZE = 1024;
const LN_FACTORIAL: Float64Array = (() => {
  const table = new Float64Array(LN_FACTORIAL_TABLE_SIZE);
  for (let n = 2; n < LN_FACTORIAL_TABLE_SIZE; n++) table[n] = (table[n - 1] ?? 0) + Math.log(n);
  return table;
})();

/** ln(n!): a table below 1024, else Stirling's series (error < 1/(1680·n^7)). */
function lnFactorial(n: number): number {
  if (n < LN_FACTORIAL_TABLE_SIZE) return LN_FACTORIAL[n] ?? 0;
  const inv = 1 / n;
  const inv2 = inv * inv;
  return n * Math.log(n) - n + 0.5 * Math.log(2 * Math.PI * n) + inv * (1 / 12 - inv2 * (1 / 360 - inv2 / 1260));
}

const lnChoose = (n: number, k: number): number => lnFactorial(n) - lnFactorial(k) - lnFactorial(n - k);

/** Terms below this fraction of the running sum end a summation (double precision is ~1.1e-16). */
const NEGLIGIBLE = 1e-18;

function checkFills(setQuery: number, setContact: number, bits: number): void {
  ensure(Number.isInteger(bits) && bits >= 2, 'bits', `must be an integer ≥ 2, got ${bits}`);
  ensure(Number.isInteger(setQuery) && setQuery >= 0 && setQuery <= bits, 'setQuery', `must be an integer in [0, ${bits}], got ${setQuery}`);
  ensure(Number.isInteger(setContact) && setContact >= 0 && setContact <= bits, 'setContact', `must be an integer in [0, ${bits}], got ${setContact}`);
}

/** Hypergeometric pmf terms from c upward, past the mode, until negligible; [] above the support. */
function upperTerms(c: number, a: number, b: number, m: number): number[] {
  const hi = Math.min(a, b);
  const terms: number[] = [];
  let term = Math.exp(lnChoose(a, c) + lnChoose(m - a, b - c) - lnChoose(m, b));
  let sum = 0;
  for (let j = c; j <= hi; j++) {
    terms.push(term);
    sum += term;
    const ratio = ((a - j) * (b - j)) / ((j + 1) * (m - a - b + j + 1));
    if ((term <= sum * NEGLIGIBLE && ratio < 1) || term === 0) break;
    term *= ratio;
  }
  return terms;
}

/** P(C ≥ c) for C ~ Hypergeometric(m, setQuery, setContact): exact to double precision. */
export function hypergeometricUpperTail(c: number, setQuery: number, setContact: number, bits: number = DIMY_BLOOM_BITS): number {
  checkFills(setQuery, setContact, bits);
  ensure(Number.isInteger(c), 'c', `must be an integer, got ${c}`);
  const [a, b, m] = [setQuery, setContact, bits];
  const lo = Math.max(0, a + b - m);
  const hi = Math.min(a, b);
  if (c <= lo) return 1;
  if (c > hi) return 0;
  const mode = Math.floor(((a + 1) * (b + 1)) / (m + 2));
  if (c > mode) return Math.min(1, upperTerms(c, a, b, m).reduce((s, t) => s + t, 0));
  // c ≤ mode: 1 − P(C ≤ c − 1), terms decreasing downward from c − 1.
  let term = Math.exp(lnChoose(a, c - 1) + lnChoose(m - a, b - c + 1) - lnChoose(m, b));
  let lower = 0;
  for (let j = c - 1; j >= lo && term > 0; j--) {
    lower += term;
    if (term <= lower * NEGLIGIBLE) break;
    term *= (j * (m - a - b + j)) / ((a - j + 1) * (b - j + 1));
  }
  return Math.max(0, 1 - lower);
}

/** Smallest c ≥ from with P(C ≥ c) ≤ alpha, or Infinity. */
function tailThreshold(from: number, a: number, b: number, m: number, alpha: number): number {
  if (from > Math.min(a, b)) return Infinity;
  const terms = upperTerms(from, a, b, m);
  let suffix = 0;
  let threshold = Infinity;
  for (let i = terms.length - 1; i >= 0; i--) {
    suffix += terms[i] ?? 0;
    if (suffix > alpha) break;
    threshold = from + i;
  }
  return threshold;
}

/** Smallest common-bit count `rule` matches for these fills (Infinity: none), header rules. */
export function matchThreshold(setQuery: number, setContact: number, ruleIn: DimyMatchRule = DEFAULT_DIMY_MATCH_RULE, bits: number = DIMY_BLOOM_BITS): number {
  checkFills(setQuery, setContact, bits);
  const rule = resolveMatchRule(ruleIn);
  const max = Math.min(setQuery, setContact);
  const within = (t: number): number => (t <= max ? t : Infinity);
  switch (rule.name) {
    case 'any-common-bits':
      return within(1);
    case 'min-common-bits':
      return within(rule.minCommonBits);
    case 'z-score': {
      const { expected, sigma } = expectedRandomOverlap(setQuery, setContact, bits);
      return sigma === 0 ? Infinity : within(Math.max(rule.minCommonBits, Math.ceil(expected + rule.z * sigma)));
    }
    case 'tail': {
      const { expected, sigma } = expectedRandomOverlap(setQuery, setContact, bits);
      if (sigma === 0) return Infinity;
      // P(C ≥ c) ≥ 1/2 for c ≤ ⌊μ⌋ (the median is ⌊μ⌋ or ⌈μ⌉), so with alpha < 1/2 the threshold is above ⌊μ⌋.
      return tailThreshold(Math.max(rule.minCommonBits, Math.floor(expected) + 1), setQuery, setContact, bits, rule.alpha);
    }
  }
}

/** The verdict for counts already known (the batch path computes `common` itself). */
export function verdictFor(common: number, setQuery: number, setContact: number, rule: DimyMatchRule = DEFAULT_DIMY_MATCH_RULE, threshold?: number): DimyMatchVerdict {
  const { expected, sigma } = expectedRandomOverlap(setQuery, setContact);
  const t = threshold ?? matchThreshold(setQuery, setContact, rule);
  return {
    rule: rule.name,
    common,
    setQuery,
    setContact,
    expected,
    sigma,
    z: sigma === 0 ? 0 : (common - expected) / sigma,
    pValue: hypergeometricUpperTail(common, setQuery, setContact),
    threshold: t,
    matched: common >= t,
  };
}

// ---------------------------------------------------------------- prepared filters

/** A QBF ready for many comparisons: its nonzero 32-bit words. Derived data, rebuilt at will. */
export interface PreparedQuery {
  readonly bytes: Uint8Array;
  readonly words: Uint32Array;
  /** Indices of the nonzero words, ascending, and their values. */
  readonly nonzeroIndex: Uint32Array;
  readonly nonzeroWords: Uint32Array;
  readonly setBits: number;
}

/** A CBF ready for matching: its words, and its sorted set-bit positions when sparse. */
export interface PreparedContact {
  readonly words: Uint32Array;
  /** Sorted set-bit positions when setBits ≤ DIMY_SPARSE_MAX_SET_BITS, else null. */
  readonly positions: Uint32Array | null;
  readonly setBits: number;
}

/** An aligned Uint32Array over the filter's bits (a copy only when the bytes are unaligned). */
function wordsOf(filter: BloomFilter): Uint32Array {
  const { bits } = filter;
  const aligned = bits.byteOffset % 4 === 0 ? bits : new Uint8Array(bits);
  return new Uint32Array(aligned.buffer, aligned.byteOffset, WORDS);
}

export function prepareQuery(qbf: BloomFilter): PreparedQuery {
  checkBloom(qbf, 'qbf');
  const words = wordsOf(qbf);
  const index: number[] = [];
  let setBits = 0;
  for (let i = 0; i < WORDS; i++) {
    const w = words[i] ?? 0;
    if (w === 0) continue;
    index.push(i);
    setBits += popcount32(w);
  }
  const nonzeroIndex = Uint32Array.from(index);
  return { bytes: new Uint8Array(words.buffer, words.byteOffset, DIMY_BLOOM_BYTES), words, nonzeroIndex, nonzeroWords: nonzeroIndex.map((i) => words[i] ?? 0), setBits };
}

export function prepareContact(cbf: BloomFilter): PreparedContact {
  checkBloom(cbf, 'cbf');
  const words = wordsOf(cbf);
  let setBits = 0;
  for (let i = 0; i < WORDS; i++) setBits += popcount32(words[i] ?? 0);
  if (setBits > DIMY_SPARSE_MAX_SET_BITS) return { words, positions: null, setBits };
  const positions = new Uint32Array(setBits);
  const bytes = new Uint8Array(words.buffer, words.byteOffset, DIMY_BLOOM_BYTES);
  let n = 0;
  for (let i = 0; i < WORDS; i++) {
    if ((words[i] ?? 0) === 0) continue;
    // Byte by byte inside the word: positions follow the byte layout whatever the host's endianness.
    for (let byte = 4 * i; byte < 4 * i + 4; byte++) {
      let v = bytes[byte] ?? 0;
      while (v !== 0) {
        const low = v & -v;
        positions[n++] = byte * 8 + (31 - Math.clz32(low));
        v ^= low;
      }
    }
  }
  return { words, positions, setBits };
}

/** popcount(a AND b) over all words, 4 at a time with byte-wise partial sums (≈ 1.5× the plain loop). */
function fullScanCommon(a: Uint32Array, b: Uint32Array): number {
  let count = 0;
  let i = 0;
  for (; i + 4 <= WORDS; i += 4) {
    let x0 = (a[i] ?? 0) & (b[i] ?? 0), x1 = (a[i + 1] ?? 0) & (b[i + 1] ?? 0);
    let x2 = (a[i + 2] ?? 0) & (b[i + 2] ?? 0), x3 = (a[i + 3] ?? 0) & (b[i + 3] ?? 0);
    x0 -= (x0 >>> 1) & 0x55555555;
    x1 -= (x1 >>> 1) & 0x55555555;
    x2 -= (x2 >>> 1) & 0x55555555;
    x3 -= (x3 >>> 1) & 0x55555555;
    x0 = (x0 & 0x33333333) + ((x0 >>> 2) & 0x33333333);
    x1 = (x1 & 0x33333333) + ((x1 >>> 2) & 0x33333333);
    x2 = (x2 & 0x33333333) + ((x2 >>> 2) & 0x33333333);
    x3 = (x3 & 0x33333333) + ((x3 >>> 2) & 0x33333333);
    // Each byte of each term is ≤ 8, so the sum of four fits a byte (≤ 32).
    count += Math.imul(((x0 + (x0 >>> 4)) & 0x0f0f0f0f) + ((x1 + (x1 >>> 4)) & 0x0f0f0f0f) + ((x2 + (x2 >>> 4)) & 0x0f0f0f0f) + ((x3 + (x3 >>> 4)) & 0x0f0f0f0f), 0x01010101) >>> 24;
  }
  for (; i < WORDS; i++) count += popcount32((a[i] ?? 0) & (b[i] ?? 0));
  return count;
}

/**
 * popcount(QBF AND CBF) by the cheaper exact path (header). Cost model: a position test reads
 * the CBF's positions in order and the QBF's 100 KB (cache-resident) bytes; a nonzero-word AND
 * reads a CBF word at a scattered index (a cache miss per word once 10,000 CBFs exceed the
 * caches), about SPARSE_COST_RATIO times dearer.
 */
export function preparedCommonBits(query: PreparedQuery, contact: PreparedContact): number {
  const { positions } = contact;
  const nonzero = query.nonzeroIndex.length;
  let count = 0;
  if (positions !== null && positions.length <= SPARSE_COST_RATIO * nonzero) {
    const q = query.bytes;
    for (let i = 0; i < positions.length; i++) {
      const p = positions[i] ?? 0;
      count += ((q[p >>> 3] ?? 0) >>> (p & 7)) & 1;
    }
    return count;
  }
  const c = contact.words;
  if (nonzero * FULL_SCAN_RATIO > WORDS) return fullScanCommon(query.words, c);
  const { nonzeroIndex, nonzeroWords } = query;
  for (let j = 0; j < nonzero; j++) {
    const x = (nonzeroWords[j] ?? 0) & (c[nonzeroIndex[j] ?? 0] ?? 0);
    if (x !== 0) count += popcount32(x);
  }
  return count;
}

/** One QBF against one CBF under `rule` (default: the header's `tail` rule). */
export function matchFilters(qbf: BloomFilter, cbf: BloomFilter, rule: DimyMatchRule = DEFAULT_DIMY_MATCH_RULE): DimyMatchVerdict {
  const query = prepareQuery(qbf);
  const contact = prepareContact(cbf);
  return verdictFor(preparedCommonBits(query, contact), query.setBits, contact.setBits, rule);
}

/** A stored CBF as the batch search sees it. */
export interface SearchableCbf {
  /** When the backend accepted it, ms (compared with the query's T_old). */
  readonly uploadedAt: number;
  readonly contact: PreparedContact;
}

export interface DimySearchResult {
  /** CBFs compared (uploaded at or after T_old). */
  readonly searched: number;
  /** Index in `cbfs` and verdict of every matching CBF, in input order. */
  readonly matches: readonly { readonly index: number; readonly verdict: DimyMatchVerdict }[];
}

/** One prepared QBF against many CBFs, skipping those uploaded before tOld (header). */
export function searchCbfs(query: PreparedQuery, cbfs: readonly SearchableCbf[], tOld: number, rule: DimyMatchRule = DEFAULT_DIMY_MATCH_RULE): DimySearchResult {
  ensure(Number.isFinite(tOld), 'tOld', `must be a finite time in ms, got ${tOld}`);
  const thresholds = new Map<number, number>();
  const matches: { index: number; verdict: DimyMatchVerdict }[] = [];
  let searched = 0;
  for (let i = 0; i < cbfs.length; i++) {
    const cbf = cbfs[i];
    if (cbf === undefined || cbf.uploadedAt < tOld) continue;
    searched++;
    const common = preparedCommonBits(query, cbf.contact);
    // No threshold is below minCommonBits, except any-common-bits' 1: skip the threshold for such pairs.
    if (common === 0 || (rule.name !== 'any-common-bits' && common < rule.minCommonBits)) continue;
    const set = cbf.contact.setBits;
    let threshold = thresholds.get(set);
    if (threshold === undefined) {
      threshold = matchThreshold(query.setBits, set, rule);
      thresholds.set(set, threshold);
    }
    if (common >= threshold) matches.push({ index: i, verdict: verdictFor(common, query.setBits, set, rule, threshold) });
  }
  return { searched, matches };
}
