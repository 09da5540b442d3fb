/**
 * Golomb-coded set filters (protocol/keyserver/gcs.ts; SPECS §6) for the key
 * server's compact distribution: for n = 10k / 100k / 1M random 16-byte items
 * (TEK-sized) and two parameter pairs — BIP158's basic filter (P = 19,
 * M = 784,931) and a coarse one (P = 10, M = 1,533 ≈ 1.497 · 2^10, the same
 * M/2^P ratio) whose false-positive rate is large enough to measure
 * precisely with 1M queries (BIP158's 1/M gives ~1.3 expected hits per 1M):
 *
 * - filter bytes and bits per item against the Golomb-Rice expectation
 *       bits/item ≈ P + 1 / (1 − e^(−2^P / M))
 *   (P remainder bits, plus the unary quotient and its stop bit: deltas are
 *   ≈ exponential with mean M, so E[⌊δ / 2^P⌋] + 1 = 1 / (1 − e^(−2^P/M));
 *   for M = 2^P that is P + 1/(1 − e^−1) ≈ P + 1.582), header and padding
 *   included in the measured figure;
 * - false-positive rate over Q non-member queries (gcsCandidates: every
 *   query hashed, one walk of the filter) against 1/M;
 * - build throughput (items/s) and match throughput: a batch of Q queries
 *   (queries/s) and a single gcsMatch (ms: it walks the whole filter).
 */
import { randomBytes } from 'node:crypto';
import { bip158BasicParams, buildGcs, gcsCandidates, gcsMatch, type GcsParams } from '../protocol/keyserver/gcs.ts';
import { note, round, scaled, seconds } from './keyserver-fixtures.ts';
import type { BenchRow } from './report.ts';

const GROUP = 'keyserver/gcs';
const SIZES = [10_000, 100_000, 1_000_000];
const QUERIES = 1_000_000;
const SINGLE_MATCHES = 5;
const MEMBER_SAMPLE = 1000;
const ITEM_BYTES = 16;

/** n distinct-with-overwhelming-probability random items, views into one buffer. */
function randomItems(n: number): Uint8Array[] {
  const buf = randomBytes(ITEM_BYTES * n);
  return Array.from({ length: n }, (_, i) => buf.subarray(ITEM_BYTES * i, ITEM_BYTES * (i + 1)));
}

/** Expected bits per item of a Golomb-Rice coded set with parameters P, M (module header). */
export function expectedBitsPerItem(p: number, m: number): number {
  return p + 1 / (1 - Math.exp(-(2 ** p) / m));
}

export function gcsBench(): BenchRow[] {
  const key = bip158BasicParams(randomBytes(32)).key;
  const pairs: { label: string; params: GcsParams }[] = [
    { label: 'BIP158 P=19 M=784931', params: bip158BasicParams(Uint8Array.from(randomBytes(32))) },
    { label: 'P=10 M=1533', params: { p: 10, m: 1533, key } },
  ];
  const sizes = SIZES.map((n) => scaled(n, 1000));
  const queries = randomItems(scaled(QUERIES, 10_000));
  const rows: BenchRow[] = [];
  for (const { label, params } of pairs) {
    let hits = 0;
    let asked = 0;
    for (const n of sizes) {
      const items = randomItems(n);
      const buildStart = process.hrtime.bigint();
      const filter = buildGcs(params, items);
      const buildS = seconds(buildStart);

      const candStart = process.hrtime.bigint();
      const found = gcsCandidates(params, filter, queries);
      const candS = seconds(candStart);
      if (!found.ok) throw new Error(`bench/keyserver gcs: ${found.detail}`);
      const members = gcsCandidates(params, filter, items.slice(0, MEMBER_SAMPLE));
      if (!members.ok || members.value.length !== Math.min(MEMBER_SAMPLE, n)) throw new Error('bench/keyserver gcs: a member did not match');

      const singleStart = process.hrtime.bigint();
      for (let i = 0; i < SINGLE_MATCHES; i++) {
        const one = gcsMatch(params, filter, queries[i] as Uint8Array);
        if (!one.ok) throw new Error(one.detail);
      }
      const singleMs = (seconds(singleStart) * 1000) / SINGLE_MATCHES;

      const fp = found.value.length;
      hits += fp;
      asked += queries.length;
      const bits = (8 * filter.length) / n;
      const expected = expectedBitsPerItem(params.p, params.m);
      note(`gcs ${label} n=${n}: ${filter.length} B, ${round(bits, 3)} bits/item (expected ${round(expected, 3)}), ${fp}/${queries.length} false positives, build ${round(buildS, 2)} s`);
      rows.push({
        group: GROUP,
        name: `${label}, n=${n.toLocaleString('en-US')}: size`,
        values: { bytes: filter.length, bitsPerItem: round(bits, 3), expected: round(expected, 3) },
        unit: '',
        ratio: { label: 'measured / expected bits', value: round(bits / expected, 3), target: '≈ 1' },
      });
      rows.push({
        group: GROUP,
        name: `${label}, n=${n.toLocaleString('en-US')}: false positives`,
        values: { hits: fp, queries: queries.length, perMillion: round((fp / queries.length) * 1e6, 3), expectedPerMillion: round(1e6 / params.m, 3) },
        unit: '',
        ratio: { label: 'rate × M', value: round((fp / queries.length) * params.m, 2), target: '≈ 1' },
      });
      rows.push({
        group: GROUP,
        name: `${label}, n=${n.toLocaleString('en-US')}: speed`,
        values: { buildItemsPerS: Math.round(n / buildS), batchQueriesPerS: Math.round(queries.length / candS), singleMatchMs: round(singleMs, 2) },
        unit: '',
      });
    }
    rows.push({
      group: GROUP,
      name: `${label}: false positives, all n pooled`,
      values: { hits, queries: asked, expectedHits: round(asked / params.m, 2) },
      unit: '',
      ratio: { label: 'hits / expected', value: round(hits / (asked / params.m), 2), target: '≈ 1 (Poisson)' },
    });
  }
  return rows;
}
