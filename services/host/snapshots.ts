/**
 * Persisted actor snapshots. msgpack (not JSON) so byte fields in machine
 * context (keys, DRBG state, reassembly buffers) survive as Uint8Array.
 * A version prefix lets a later format refuse old snapshots explicitly.
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

export class SnapshotFormatError extends Error {
  override readonly name = 'SnapshotFormatError';
}

export function encodeSnapshot(snapshot: unknown): Uint8Array {
  const body = packr.pack(snapshot);
  const out = new Uint8Array(body.length + 1);
  out[0] = SNAPSHOT_FORMAT;
  out.set(body, 1);
  return out;
}

/** Decode a stored snapshot; throws SnapshotFormatError for another format or corrupt bytes. */
export function decodeSnapshot(bytes: Uint8Array): Snapshot<unknown> {
  if (bytes[0] !== SNAPSHOT_FORMAT) throw new SnapshotFormatError(`snapshot format ${String(bytes[0])}, expected ${SNAPSHOT_FORMAT}`);
  try {
    return unpackr.unpack(bytes.subarray(1)) as Snapshot<unknown>;
  } catch (err) {
    throw new SnapshotFormatError(`corrupt snapshot: ${err instanceof Error ? err.message : String(err)}`);
  }
}
