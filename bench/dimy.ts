/**
 * DIMY backend matching (protocol/dimy/matching.ts) at issue 5's size: one QBF against 10,000
 * CBFs, target ≤ 1 s on one core, at two fills:
 *   city   CBF of 300 items (≈ 899 set bits, sparse positions), QBF of 100 items (≈ 300 bits)
 *   paper  CBF and QBF of 21,000 items (21 days × 1,000 encounters, ≈ 60,583 bits: dense)
 * Filters are built from random bit positions (3 per item, collisions allowed, as a Bloom insert
 * of random EncIDs would set them; the hashing itself is not what is measured). Paper-scale CBFs
 * are 32 random base filters, each rotated by a different whole number of words (a rotation of a
 * random filter is a random filter of the same fill), so building 1 GB of CBFs takes seconds.
 *
 * Planted encounters: 5 "strong" CBFs share many EncIDs with the QBF (city 5, paper 200: enough
 * to clear the tail rule's threshold — about 2 and 100 EncIDs above the random overlap, header
 * table of matching.ts) and must all be found, else the bench throws; 5 "weak" CBFs share one
 * EncID each: reported, expected not found (one encounter is below every threshold that keeps
 * false matches rare). Rows: preparing the CBFs (done once, at upload), the query (median of 5 runs,
 * tail rule; wall and CPU time, the ratio to 1 s on CPU time as bench/gaen-matching.ts), the naive loop (bloomCommonBits over every CBF) for
 * comparison, and the CBFs each rule matches (false matches of the fixed-count rules).
 */
import { SeededRng } from '../protocol/crypto/drbg.ts';
import { bloomInsert, createBloom, DIMY_BLOOM_BITS, DIMY_BLOOM_BYTES, DIMY_BLOOM_HASHES, type BloomFilter } from '../protocol/dimy/bloom.ts';
import { bloomCommonBits } from '../protocol/dimy/bloom-stats.ts';
import { DIMY_MATCH_RULES, matchThreshold, prepareContact, prepareQuery, resolveMatchRule, searchCbfs, type SearchableCbf } from '../protocol/dimy/matching.ts';
import type { BenchModule, BenchRow } from './report.ts';

const GROUP = 'dimy/matching';
const CBFS = 10_000;
const TARGET_MS = 1000;
const RUNS = 5;
const PLANTED = 5;
const PAPER_BASES = 32;
const WORDS = DIMY_BLOOM_BYTES / 4;

interface Scale {
  readonly label: string;
  readonly cbfItems: number;
  readonly qbfItems: number;
  /** Shared EncIDs per strong plant. */
  readonly strongShared: number;
  readonly rotate: boolean;
}
const SCALES: readonly Scale[] = [
  { label: 'city', cbfItems: 300, qbfItems: 100, strongShared: 5, rotate: false },
  { label: 'paper', cbfItems: 21_000, qbfItems: 21_000, strongShared: 200, rotate: true },
];

const round = (x: number, digits = 1): number => Math.round(x * 10 ** digits) / 10 ** digits;
const note = (msg: string): void => void process.stderr.write(`  dimy: ${msg}\n`);

interface Timing {
  readonly wallMs: number;
  /** CPU time of this process (user + system): less sensitive to other load on a shared machine. */
  readonly cpuMs: number;
}

function timed(fn: () => void): Timing {
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  fn();
  const wallMs = Number(process.hrtime.bigint() - start) / 1e6;
  const used = process.cpuUsage(cpu);
  return { wallMs, cpuMs: (used.user + used.system) / 1000 };
}
const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

/** 3 random positions per item, as Bloom inserts of random items. */
function randomFilter(rng: SeededRng, items: number): BloomFilter {
  const filter = createBloom();
  for (let i = 0; i < items * DIMY_BLOOM_HASHES; i++) {
    const p = rng.int(DIMY_BLOOM_BITS);
    filter.bits[p >>> 3] = (filter.bits[p >>> 3] ?? 0) | (1 << (p & 7));
  }
  return filter;
}

/** `base` rotated by `words` 32-bit words (a new filter). */
function rotated(base: BloomFilter, words: number): BloomFilter {
  const cut = (words % WORDS) * 4;
  const bits = new Uint8Array(DIMY_BLOOM_BYTES);
  bits.set(base.bits.subarray(cut), 0);
  bits.set(base.bits.subarray(0, cut), DIMY_BLOOM_BYTES - cut);
  return { bits };
}

interface Workload {
  readonly qbf: BloomFilter;
  readonly cbfs: BloomFilter[];
  readonly strong: ReadonlySet<number>;
  readonly weak: ReadonlySet<number>;
}

function workload(scale: Scale): Workload {
  const rng = new SeededRng(new TextEncoder().encode(`tracecity bench dimy ${scale.label} v1`));
  const bases = scale.rotate ? Array.from({ length: PAPER_BASES }, () => randomFilter(rng, scale.cbfItems)) : [];
  const cbfs: BloomFilter[] = [];
  for (let i = 0; i < CBFS; i++) {
    const base = bases[i % PAPER_BASES];
    cbfs.push(base === undefined ? randomFilter(rng, scale.cbfItems) : rotated(base, 1 + Math.floor(i / PAPER_BASES) * 61 + (i % PAPER_BASES) * 997));
  }
  const qbf = randomFilter(rng, scale.qbfItems);
  const strong = new Set<number>();
  const weak = new Set<number>();
  for (let p = 0; p < 2 * PLANTED; p++) {
    const index = Math.floor(((p + 0.5) * CBFS) / (2 * PLANTED));
    const isStrong = p % 2 === 0;
    (isStrong ? strong : weak).add(index);
    const target = cbfs[index] as BloomFilter;
    for (let e = 0; e < (isStrong ? scale.strongShared : 1); e++) {
      const encId = rng.bytes(32);
      bloomInsert(qbf, encId);
      bloomInsert(target, encId);
    }
  }
  return { qbf, cbfs, strong, weak };
}

function benchScale(scale: Scale): BenchRow[] {
  note(`${scale.label}: building ${CBFS.toLocaleString('en-US')} CBFs`);
  const w = workload(scale);
  const rows: BenchRow[] = [];
  const name = `${scale.label}: 1 QBF (${scale.qbfItems.toLocaleString('en-US')} items) × ${CBFS.toLocaleString('en-US')} CBFs (${scale.cbfItems.toLocaleString('en-US')} items)`;

  let searchable: SearchableCbf[] = [];
  const prepare = timed(() => {
    searchable = w.cbfs.map((cbf, i) => ({ uploadedAt: i, contact: prepareContact(cbf) }));
  });
  const sparse = searchable.filter((s) => s.contact.positions !== null).length;
  const meanSet = searchable.reduce((s, c) => s + c.contact.setBits, 0) / CBFS;
  rows.push({ group: GROUP, name: `${scale.label}: prepare ${CBFS.toLocaleString('en-US')} CBFs (once, at upload)`, values: { wall: round(prepare.wallMs), cpu: round(prepare.cpuMs), sparse, meanSetBits: round(meanSet) }, unit: 'ms' });

  const times: Timing[] = [];
  let found = new Set<number>();
  let qbfSet = 0;
  for (let run = 0; run < RUNS; run++) {
    times.push(
      timed(() => {
        const query = prepareQuery(w.qbf);
        qbfSet = query.setBits;
        found = new Set(searchCbfs(query, searchable, 0).matches.map((m) => m.index));
      }),
    );
  }
  const wall = median(times.map((t) => t.wallMs));
  const cpu = median(times.map((t) => t.cpuMs));
  const strongFound = [...w.strong].filter((i) => found.has(i)).length;
  if (strongFound !== w.strong.size) throw new Error(`bench/dimy: ${scale.label}: found ${strongFound} of ${w.strong.size} strong planted matches`);
  const weakFound = [...w.weak].filter((i) => found.has(i)).length;
  const falseMatches = [...found].filter((i) => !w.strong.has(i) && !w.weak.has(i)).length;
  rows.push({
    group: GROUP,
    name: `${name}, tail rule`,
    values: {
      wall: round(wall),
      cpu: round(cpu),
      bestWall: round(Math.min(...times.map((t) => t.wallMs))),
      qbfSetBits: qbfSet,
      threshold: matchThreshold(qbfSet, Math.round(meanSet)),
      strongFound,
      weakFound,
      falseMatches,
    },
    unit: 'ms',
    ratio: { label: `cpu ms ÷ ${TARGET_MS.toLocaleString('en-US')}`, value: round(cpu / TARGET_MS, 3), target: '≤ 1.00' },
  });

  let naiveFound = 0;
  const naive = timed(() => {
    for (const cbf of w.cbfs) if (bloomCommonBits(w.qbf, cbf) >= 3) naiveFound++;
  });
  rows.push({
    group: GROUP,
    name: `${scale.label}: naive bloomCommonBits × ${CBFS.toLocaleString('en-US')} (c ≥ 3)`,
    values: { wall: round(naive.wallMs), cpu: round(naive.cpuMs), matched: naiveFound },
    unit: 'ms',
    ratio: { label: 'naive ÷ prepared (cpu)', value: round(naive.cpuMs / cpu, 1) },
  });

  const query = prepareQuery(w.qbf);
  const byRule: Record<string, number> = {};
  for (const rule of DIMY_MATCH_RULES) byRule[rule] = searchCbfs(query, searchable, 0, resolveMatchRule({ name: rule })).matches.length;
  rows.push({ group: GROUP, name: `${scale.label}: CBFs matched per rule (${w.strong.size} strong + ${w.weak.size} weak planted)`, values: byRule, unit: 'CBFs' });
  return rows;
}

export const dimyBench: BenchModule = () => Promise.resolve(SCALES.flatMap(benchScale));
