/**
 * The phone's Daily Bloom Filters (SPECS §4.1): one per `dbfMs` period, at most `dbfCount` of
 * them (the pool), and the filters built from them — QBF = OR of all DBFs, CBF = OR of the DBFs
 * since the infectious period's first day.
 *
 * How a DBF is held: as its sorted, distinct set-bit positions (3 bytes each, big-endian; m =
 * 800,000 < 2^24) while that is smaller than the 100,000 bytes of bits, and as the bits beyond
 * (33,333 set bits ≈ 11,000 EncIDs in one period). A city phone inserts a few hundred EncIDs a
 * day, so its DBFs stay sparse: ~1–3 KB a day instead of 100 KB. Either form holds exactly the
 * Bloom filter's information (the positions are its set bits), never an EncID: the EncID is
 * dropped right after insertion, as the paper asks. The dense 100 KB filters exist only while a
 * QBF or CBF is being sent.
 *
 * Insertion returns new arrays (the phone's snapshot shares the old ones); all EncIDs of one scan
 * window are inserted with one merge.
 */
import { bloomPositions, createBloom, DIMY_BLOOM_BYTES, popcount32, type BloomFilter } from '../../protocol/dimy/bloom.ts';
import type { SimMillis } from '../ports.ts';

/** Bytes per sparse position: 800,000 bits need 20 bits. */
export const DIMY_POSITION_BYTES = 3;
/** Beyond this many set bits the dense form is smaller. */
export const DIMY_MAX_SPARSE_POSITIONS = Math.floor(DIMY_BLOOM_BYTES / DIMY_POSITION_BYTES);

export type DimyDbf =
  | { readonly start: SimMillis; readonly items: number; readonly form: 'sparse'; readonly positions: Uint8Array }
  | { readonly start: SimMillis; readonly items: number; readonly form: 'dense'; readonly bits: Uint8Array };

const readPosition = (p: Uint8Array, i: number): number => ((p[3 * i] ?? 0) << 16) | ((p[3 * i + 1] ?? 0) << 8) | (p[3 * i + 2] ?? 0);

function writePosition(p: Uint8Array, i: number, value: number): void {
  p[3 * i] = value >>> 16;
  p[3 * i + 1] = (value >>> 8) & 0xff;
  p[3 * i + 2] = value & 0xff;
}

/** The sorted distinct positions of a sparse DBF. */
export function positionsOf(positions: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < positions.length / DIMY_POSITION_BYTES; i++) out.push(readPosition(positions, i));
  return out;
}

/** Merge sorted distinct `held` with `added` (any order, repeats allowed). */
function mergePositions(held: Uint8Array, added: readonly number[]): Uint8Array {
  const fresh = [...new Set(added)].sort((a, b) => a - b);
  const count = held.length / DIMY_POSITION_BYTES;
  const out: number[] = [];
  let i = 0;
  for (const p of fresh) {
    while (i < count && readPosition(held, i) < p) out.push(readPosition(held, i++));
    if (i < count && readPosition(held, i) === p) continue;
    out.push(p);
  }
  while (i < count) out.push(readPosition(held, i++));
  const bytes = new Uint8Array(out.length * DIMY_POSITION_BYTES);
  out.forEach((p, j) => writePosition(bytes, j, p));
  return bytes;
}

function setBits(bits: Uint8Array, positions: Iterable<number>): void {
  for (const p of positions) bits[p >>> 3] = (bits[p >>> 3] ?? 0) | (1 << (p & 7));
}

/** The DBF with `encIds` inserted (a new object); dense once the positions would outgrow the bits. */
function insertInto(dbf: DimyDbf, encIds: readonly Uint8Array[]): DimyDbf {
  const added = encIds.flatMap((e) => bloomPositions(e));
  const items = dbf.items + encIds.length;
  if (dbf.form === 'dense') {
    const bits = dbf.bits.slice();
    setBits(bits, added);
    return { start: dbf.start, items, form: 'dense', bits };
  }
  const positions = mergePositions(dbf.positions, added);
  if (positions.length / DIMY_POSITION_BYTES <= DIMY_MAX_SPARSE_POSITIONS) return { start: dbf.start, items, form: 'sparse', positions };
  const bits = new Uint8Array(DIMY_BLOOM_BYTES);
  setBits(bits, positionsOf(positions));
  return { start: dbf.start, items, form: 'dense', bits };
}

/** The period start of time `at` (periods aligned to the Unix epoch, as UTC days for 24 h). */
export const periodStart = (at: SimMillis, periodMs: number): SimMillis => Math.floor(at / periodMs) * periodMs;

/**
 * The pool with `encIds` inserted into the DBF of the period starting at `start` (created if
 * missing), sorted by start, trimmed to the `count` newest.
 */
export function insertEncIds(dbfs: readonly DimyDbf[], start: SimMillis, encIds: readonly Uint8Array[], count: number): readonly DimyDbf[] {
  if (encIds.length === 0) return dbfs;
  const i = dbfs.findIndex((d) => d.start === start);
  const base: DimyDbf = dbfs[i] ?? { start, items: 0, form: 'sparse', positions: new Uint8Array(0) };
  const next = [...dbfs.filter((_, j) => j !== i), insertInto(base, encIds)].sort((a, b) => a.start - b.start);
  return next.slice(Math.max(0, next.length - count));
}

/** A dense filter, the OR of `dbfs` (QBF, CBF). SPECS §4.1. */
export function unionOf(dbfs: readonly DimyDbf[]): BloomFilter {
  const out = createBloom();
  for (const d of dbfs) {
    if (d.form === 'sparse') setBits(out.bits, positionsOf(d.positions));
    else for (let b = 0; b < out.bits.length; b++) out.bits[b] = (out.bits[b] ?? 0) | (d.bits[b] ?? 0);
  }
  return out;
}

/** Bytes a DBF takes as held (positions or bits) plus its start and count. */
export const dbfBytes = (d: DimyDbf): number => (d.form === 'sparse' ? d.positions.length : d.bits.length) + 16;

/** Set bits of a DBF. */
export const dbfSetBits = (d: DimyDbf): number => (d.form === 'sparse' ? d.positions.length / DIMY_POSITION_BYTES : d.bits.reduce((n, b) => n + popcount32(b), 0));
