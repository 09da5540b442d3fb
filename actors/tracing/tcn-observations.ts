/**
 * What the TCN engine keeps of the air, packed: one block per UTC hour, one entry per TCN heard in
 * a scan window (TCN 16 bytes ‖ int8 RSSI — the window's mean if the radio reported it more than
 * once — ‖ u16 seconds since the block's hour), stamped with the window's delivery time.
 *
 * Why packed hour blocks rather than protocol/tcn/matching.ts's TcnObservation objects or one
 * record per window: a phone scans 1,440 times a day and the city runs hundreds of phones for
 * days; appending to the current hour's buffer copies a few KB, never the whole store, and the
 * snapshot holds ≤ 24 × retention buffers instead of millions of objects.
 *
 * Mode A seals the last block when it uploads it, so later windows go to a new block and an
 * acknowledgement (covering window numbers ≤ lastSeq) always drops whole blocks.
 *
 * Matching (mode C) regenerates the downloaded reports' TCNs (forEachReportTcn: the same values
 * as matchTcnReports) into one Id16Table (all 16 bytes) and looks every held entry up in it.
 */
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import { Id16Table } from '../../protocol/id16-table.ts';
import { TCN_CONTACT_RSSI_MAX_DBM, TCN_CONTACT_RSSI_MIN_DBM, tcnContactMinute, type TcnContact } from '../../protocol/tcn/contact-log.ts';
import { TCN_BYTES } from '../../protocol/tcn/keys.ts';
import { forEachReportTcn } from '../../protocol/tcn/matching.ts';
import type { TcnReport } from '../../protocol/tcn/report.ts';
import type { ReceivedFrame, SimMillis } from '../ports.ts';
import type { TcnSighting } from './tcn-exposure.ts';

/** One entry: TCN (16) ‖ int8 RSSI ‖ u16 LE seconds since the block start. */
export const TCN_ENTRY_BYTES = TCN_BYTES + 1 + 2;
/** A block spans one UTC hour, ms (3,600 s fit the u16 offset). */
export const TCN_BLOCK_MS = 3_600_000;

export interface TcnBlock {
  /** Start of the block's UTC hour, ms. */
  readonly start: SimMillis;
  /** Number of the last scan window in it (windows are numbered per phone from 0). */
  readonly lastSeq: number;
  /** Uploaded (mode A): no more windows go in. */
  readonly sealed: boolean;
  /** n × TCN_ENTRY_BYTES, in time order. */
  readonly bytes: Uint8Array;
}

const validRssi = (rssi: number): boolean => Number.isInteger(rssi) && rssi >= TCN_CONTACT_RSSI_MIN_DBM && rssi <= TCN_CONTACT_RSSI_MAX_DBM;
const rssiAt = (bytes: Uint8Array, o: number): number => {
  const b = bytes[o + TCN_BYTES] ?? 0;
  return b >= 0x80 ? b - 0x100 : b;
};
const timeAt = (block: TcnBlock, o: number): SimMillis => block.start + 1000 * ((block.bytes[o + TCN_BYTES + 1] ?? 0) | ((block.bytes[o + TCN_BYTES + 2] ?? 0) << 8));

/** A scan window's TCN entries (one per TCN, mean RSSI), and how many frames were refused (not 16 bytes, RSSI not an int8). */
function entriesOf(frames: readonly ReceivedFrame[]): { readonly entries: { payload: Uint8Array; rssi: number }[]; readonly refused: number } {
  const perTcn = new Map<string, { payload: Uint8Array; sum: number; count: number }>();
  let refused = 0;
  for (const frame of frames) {
    if (!(frame.payload instanceof Uint8Array) || frame.payload.length !== TCN_BYTES || !validRssi(frame.rssi)) {
      refused++;
      continue;
    }
    const key = String.fromCharCode(...frame.payload);
    const seen = perTcn.get(key);
    if (seen === undefined) perTcn.set(key, { payload: frame.payload, sum: frame.rssi, count: 1 });
    else {
      seen.sum += frame.rssi;
      seen.count++;
    }
  }
  return { entries: [...perTcn.values()].map((s) => ({ payload: s.payload, rssi: Math.round(s.sum / s.count) })), refused };
}

/** The blocks with a scan window (number `seq`, delivered at `at`) appended. */
export function observeBlocks(blocks: readonly TcnBlock[], seq: number, frames: readonly ReceivedFrame[], at: SimMillis): { readonly blocks: readonly TcnBlock[]; readonly refused: number } {
  const { entries, refused } = entriesOf(frames);
  if (entries.length === 0) return { blocks, refused };
  const last = blocks[blocks.length - 1];
  const hour = Math.floor(at / TCN_BLOCK_MS) * TCN_BLOCK_MS;
  // A window delivered before the last block's hour (clock went back) joins that block at offset 0.
  const reuse = last !== undefined && !last.sealed && last.start >= hour;
  const start = reuse ? last.start : hour;
  const offset = Math.max(0, Math.min(0xffff, Math.floor((at - start) / 1000)));
  const old = reuse ? last.bytes : new Uint8Array(0);
  const bytes = new Uint8Array(old.length + entries.length * TCN_ENTRY_BYTES);
  bytes.set(old);
  let o = old.length;
  for (const e of entries) {
    bytes.set(e.payload, o);
    bytes[o + TCN_BYTES] = e.rssi & 0xff;
    bytes[o + TCN_BYTES + 1] = offset & 0xff;
    bytes[o + TCN_BYTES + 2] = offset >>> 8;
    o += TCN_ENTRY_BYTES;
  }
  const block: TcnBlock = { start, lastSeq: seq, sealed: false, bytes };
  return { blocks: reuse ? [...blocks.slice(0, -1), block] : [...blocks, block], refused };
}

/** The blocks with the last one sealed (mode A, after uploading it). */
export function sealLast(blocks: readonly TcnBlock[]): readonly TcnBlock[] {
  const last = blocks[blocks.length - 1];
  return last === undefined || last.sealed ? blocks : [...blocks.slice(0, -1), { ...last, sealed: true }];
}

/** Entries heard before `horizon` are forgotten (whole blocks, and the old part of the first one kept). */
export function expireBlocks(blocks: readonly TcnBlock[], horizon: SimMillis): readonly TcnBlock[] {
  let drop = 0;
  while (drop < blocks.length && (blocks[drop]?.start ?? 0) + TCN_BLOCK_MS <= horizon) drop++;
  const kept = drop === 0 ? blocks : blocks.slice(drop);
  const first = kept[0];
  if (first === undefined || first.start >= horizon) return kept;
  let o = 0;
  while (o < first.bytes.length && timeAt(first, o) < horizon) o += TCN_ENTRY_BYTES;
  if (o === 0) return kept;
  return o === first.bytes.length ? kept.slice(1) : [{ ...first, bytes: first.bytes.slice(o) }, ...kept.slice(1)];
}

/** When the oldest entry was heard. */
export function oldestEntry(blocks: readonly TcnBlock[]): SimMillis | undefined {
  const first = blocks[0];
  return first === undefined || first.bytes.length === 0 ? undefined : timeAt(first, 0);
}

/** The entries as contact-log entries (modes A, B): minute resolution, heard at or after `fromMs`. */
export function contactsOf(blocks: readonly TcnBlock[], fromMs = Number.NEGATIVE_INFINITY): TcnContact[] {
  const out: TcnContact[] = [];
  for (const b of blocks) {
    if (b.start + TCN_BLOCK_MS <= fromMs) continue;
    for (let o = 0; o < b.bytes.length; o += TCN_ENTRY_BYTES) {
      const at = timeAt(b, o);
      if (at >= fromMs) out.push({ tcn: b.bytes.subarray(o, o + TCN_BYTES), atMinute: tcnContactMinute(at), rssiDbm: rssiAt(b.bytes, o) });
    }
  }
  return out;
}

/** Entries held. */
export function entryCount(blocks: readonly TcnBlock[]): number {
  return blocks.reduce((n, b) => n + b.bytes.length / TCN_ENTRY_BYTES, 0);
}

/**
 * Local matching (mode C): the reports' TCNs (at most `max` regenerated per report, from j1) go in
 * one small table, then one pass over the blocks looks every heard entry up in it — cheaper than
 * indexing the phone's tens of thousands of entries for a handful of reports.
 */
export function sightingsOfReports(crypto: CryptoSuite, blocks: readonly TcnBlock[], reports: readonly TcnReport[], max: number, hashSeed = 0): { readonly sightings: TcnSighting[][]; readonly derived: number } {
  const table = new Id16Table(hashSeed);
  const owners: number[][] = [];
  let derived = 0;
  reports.forEach((report, r) => {
    derived += forEachReportTcn(crypto, report, max, (hash) => {
      const id = table.insert(hash);
      if (id === owners.length) owners.push([r]);
      else (owners[id] as number[]).push(r);
    });
  });
  const sightings: TcnSighting[][] = reports.map(() => []);
  for (const b of blocks) {
    for (let o = 0; o < b.bytes.length; o += TCN_ENTRY_BYTES) {
      const id = table.find(b.bytes, o);
      if (id < 0) continue;
      const sighting = { atMs: timeAt(b, o), rssiDbm: rssiAt(b.bytes, o) };
      for (const r of owners[id] as number[]) (sightings[r] as TcnSighting[]).push(sighting);
    }
  }
  return { sightings, derived };
}

/** Bytes held: the entries plus start (8), lastSeq (4) and the flag per block. */
export function blockBytes(blocks: readonly TcnBlock[]): number {
  return blocks.reduce((sum, b) => sum + b.bytes.length + 13, 0);
}
