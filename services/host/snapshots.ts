/**
 * Persisted actor snapshots. msgpack (not JSON) so byte fields in machine
 * context (keys, DRBG state, reassembly buffers) survive as Uint8Array.
 * A version prefix lets a later format refuse old snapshots explicitly.
 *
 * A stored snapshot also records `journalSeq`: for a journaled actor, the
 * position of the last journal event the snapshot includes (0 otherwise), so a
 * restart replays exactly the events after it.
 */
import { Packr, Unpackr } from 'msgpackr';
import type { Snapshot } from 'xstate';

/** Snapshot format version, first byte of every stored snapshot. */
export const SNAPSHOT_FORMAT = 1;

const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export function snapshotKey(address: string): string {
  return `actor-snapshot/${address}`;
}

export interface StoredSnapshot {
  readonly snapshot: Snapshot<unknown>;
  readonly journalSeq: number;
}

export class SnapshotFormatError extends Error {
  override readonly name = 'SnapshotFormatError';
}

/** Version-prefixed msgpack of any value (snapshots, journal events). */
export function encodeVersioned(value: unknown): Uint8Array {
  const body = packr.pack(value);
  const out = new Uint8Array(body.length + 1);
  out[0] = SNAPSHOT_FORMAT;
  out.set(body, 1);
  return out;
}

/** Inverse of encodeVersioned; throws SnapshotFormatError for another format or corrupt bytes. */
export function decodeVersioned(bytes: Uint8Array): unknown {
  if (bytes[0] !== SNAPSHOT_FORMAT) throw new SnapshotFormatError(`format ${String(bytes[0])}, expected ${SNAPSHOT_FORMAT}`);
  try {
    return unpackr.unpack(bytes.subarray(1));
  } catch (err) {
    throw new SnapshotFormatError(`corrupt record: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export function encodeSnapshot(snapshot: unknown, journalSeq = 0): Uint8Array {
  return encodeVersioned({ journalSeq, snapshot });
}

export function decodeSnapshot(bytes: Uint8Array): StoredSnapshot {
  const decoded = decodeVersioned(bytes) as Partial<StoredSnapshot> | null;
  if (decoded === null || typeof decoded !== 'object' || typeof decoded.journalSeq !== 'number' || decoded.snapshot === undefined) {
    throw new SnapshotFormatError('stored snapshot lacks journalSeq/snapshot');
  }
  return { snapshot: decoded.snapshot, journalSeq: decoded.journalSeq };
}
