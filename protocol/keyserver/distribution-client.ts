/**
 * The pure distribution client: which files to fetch for an index, and how
 * an opened file changes the set of records a phone holds.
 *
 *   planFetch(state, index)          → FetchPlan (names to fetch, in order)
 *   applyFile(state, file, name)     → Verdict<state> (ApplyRejection says what is needed)
 *
 * The state is plain data (strings, numbers, a plain object of records by
 * id), so it persists inside an actor snapshot. `applyFile` never mutates
 * its input: an accepted file returns a new state (one copy of the record
 * map per file), a refused or already-applied one returns the same state.
 *
 * Chaining (distribution.ts): deltas form one chain, each naming the delta
 * before it; a full dump at seq k names the delta at seq k. The state keeps
 * `chainTip`, the name of the delta at its seq (after a full dump: the full's
 * basedOn), so the next delta must name exactly it.
 *
 * applyFile rejections (codec `keyserver-client`), the state unchanged:
 *   gap               a delta beyond seq + 1: `needs` the deltas in between (the last one by name)
 *   wrong-base        a delta at seq + 1 naming another predecessor, or another delta at the
 *                     state's own seq: the chains differ — `needs` the full dump
 *   stale             a file older than the state (replayed or out of order)
 *   too-many-records  the result would hold more than limits.maxRecords records
 * Re-applying the last applied file (or the delta the state's full dump
 * snapshots, or a full dump of exactly the state held) is accepted and
 * returns the state unchanged. Records are a set keyed by id: an addition
 * already held and a deletion of a record not held change nothing.
 */
import { accept, ensure, type Accepted, type Rejection } from '../errors.ts';
import { isDigestHex, type DistributionFile, type FileName } from './distribution-file.ts';
import { indexFullSeq, type DistributionIndex } from './distribution-index.ts';
import type { IdentifiedRecord, RecordId } from './distribution-records.ts';

export const DISTRIBUTION_CLIENT_CODEC = 'keyserver-client';

export interface DistributionClientState {
  /** Seq of the state held; 0 before the first file. */
  readonly seq: number;
  /** Name of the delta at `seq` (the full dump's basedOn after a full); null at seq 0. */
  readonly chainTip: FileName | null;
  /** The last full dump applied, null when the state was built from genesis deltas. */
  readonly appliedFull: FileName | null;
  /** The last file applied (delta or full). */
  readonly lastApplied: FileName | null;
  /** Number of records held. */
  readonly count: number;
  readonly records: Readonly<Record<RecordId, IdentifiedRecord>>;
}

export interface ClientLimits {
  /** Most records a client holds (bounds its memory); a file that would exceed it is refused. */
  readonly maxRecords: number;
}
export const DEFAULT_CLIENT_LIMITS: ClientLimits = { maxRecords: 1_000_000 };

export function initialDistributionClientState(): DistributionClientState {
  return { seq: 0, chainTip: null, appliedFull: null, lastApplied: null, count: 0, records: {} };
}

/** What a refused file says the client needs. */
export type Needed =
  /** The deltas at seqs fromSeq..toSeq; the one at toSeq is `lastName`. */
  | { readonly kind: 'deltas'; readonly fromSeq: number; readonly toSeq: number; readonly lastName: FileName }
  /** The latest full dump (then the deltas after it). */
  | { readonly kind: 'full' };

export const APPLY_REJECTION_REASONS = ['gap', 'wrong-base', 'stale', 'too-many-records'] as const;
export type ApplyRejectionReason = (typeof APPLY_REJECTION_REASONS)[number];

export interface ApplyRejection extends Rejection {
  readonly reason: ApplyRejectionReason;
  readonly needs?: Needed;
}

export type ApplyVerdict = Accepted<DistributionClientState> | ApplyRejection;

function refuse(reason: ApplyRejectionReason, detail: string, needs?: Needed): ApplyRejection {
  const base = { ok: false as const, codec: DISTRIBUTION_CLIENT_CODEC, reason, detail };
  return needs === undefined ? base : { ...base, needs };
}

const short = (name: FileName | null): string => (name === null ? 'genesis' : name.slice(0, 12));

function checkState(state: DistributionClientState): void {
  ensure(typeof state === 'object' && state !== null && Number.isSafeInteger(state.seq) && state.seq >= 0, 'state', 'must be a DistributionClientState');
}

/**
 * Apply an opened file (openDistributionFile's value) fetched under `name`.
 * Misuse (a malformed state or name) throws MisuseError.
 */
export function applyFile(
  state: DistributionClientState,
  file: DistributionFile<IdentifiedRecord>,
  name: FileName,
  limits: Partial<ClientLimits> = {},
): ApplyVerdict {
  checkState(state);
  ensure(isDigestHex(name), 'name', 'must be a file name (64 lowercase hex digits)');
  const { maxRecords } = { ...DEFAULT_CLIENT_LIMITS, ...limits };
  ensure(Number.isSafeInteger(maxRecords) && maxRecords > 0, 'limits.maxRecords', 'must be a positive integer');

  if (file.kind === 'delta') {
    if (name === state.chainTip || name === state.lastApplied) return accept(state);
    if (file.seq < state.seq) return refuse('stale', `delta ${file.seq} is older than the state (seq ${state.seq})`);
    if (file.seq === state.seq) return refuse('wrong-base', `another delta at seq ${state.seq} than the one held (${short(state.chainTip)}): the chains differ`, { kind: 'full' });
    if (file.seq > state.seq + 1) {
      // chainProblem guarantees basedOn for every delta after seq 1.
      return refuse('gap', `delta ${file.seq} follows seq ${file.seq - 1}; the state is at seq ${state.seq}`, {
        kind: 'deltas',
        fromSeq: state.seq + 1,
        toSeq: file.seq - 1,
        lastName: file.basedOn ?? '',
      });
    }
    if (file.basedOn !== state.chainTip) {
      return refuse('wrong-base', `delta ${file.seq} is based on ${short(file.basedOn)}, the state on ${short(state.chainTip)}`, { kind: 'full' });
    }
    const records: Record<RecordId, IdentifiedRecord> = { ...state.records };
    let count = state.count;
    for (const id of file.deletions) {
      if (Object.hasOwn(records, id)) {
        delete records[id];
        count--;
      }
    }
    for (const record of file.additions) {
      if (!Object.hasOwn(records, record.id)) {
        if (count >= maxRecords) return refuse('too-many-records', `delta ${file.seq} would hold more than ${maxRecords} records`);
        count++;
      }
      records[record.id] = record;
    }
    return accept({ seq: file.seq, chainTip: name, appliedFull: state.appliedFull, lastApplied: name, count, records });
  }

  if (name === state.lastApplied || (name === state.appliedFull && file.seq === state.seq)) return accept(state);
  if (file.seq < state.seq) return refuse('stale', `full dump ${file.seq} is older than the state (seq ${state.seq})`);
  if (file.seq === state.seq && file.basedOn === state.chainTip) return accept(state);
  if (file.additions.length > maxRecords) return refuse('too-many-records', `full dump ${file.seq} holds ${file.additions.length} records, more than ${maxRecords}`);
  const records: Record<RecordId, IdentifiedRecord> = {};
  let count = 0;
  for (const record of file.additions) {
    if (!Object.hasOwn(records, record.id)) count++;
    records[record.id] = record;
  }
  return accept({ seq: file.seq, chainTip: file.basedOn, appliedFull: name, lastApplied: name, count, records });
}

// ------------------------------------------------------------ fetch planning

export const FETCH_MODES = ['none', 'deltas', 'full', 'restart'] as const;
export type FetchMode = (typeof FETCH_MODES)[number];

export interface FetchPlan {
  /**
   * none: up to date (or the index is older than the state);
   * deltas: apply `names` to the state, in order;
   * full: `names` = the full dump, then the deltas after it — apply to the state (the full replaces it);
   * restart: the state's chain is not the index's and there is no full dump — apply
   *          `names` (every delta from seq 1) to initialDistributionClientState().
   */
  readonly mode: FetchMode;
  readonly names: readonly FileName[];
  readonly detail: string;
}

function fromFull(index: DistributionIndex, why: string): FetchPlan {
  if (index.latestFull === null) return { mode: 'restart', names: index.deltas, detail: `${why}; no full dump: every delta from seq 1` };
  return { mode: 'full', names: [index.latestFull, ...index.deltas], detail: why };
}

/**
 * The files to fetch, in order, to bring `state` to the index's seq: only
 * the missing deltas when the index still lists the state's successor,
 * otherwise the full dump and the deltas after it. Where the index names the
 * delta the state is at, a different name means the chains differ: full.
 * A `wrong-base` from applyFile says the same for the one case the index
 * cannot show (the state exactly at the full dump's seq): fetch the full.
 */
export function planFetch(state: DistributionClientState, index: DistributionIndex): FetchPlan {
  checkState(state);
  const fullSeq = indexFullSeq(index);
  // The name the index gives the delta at the state's seq, when it lists it.
  const listed = state.seq > fullSeq && state.seq <= index.seq ? index.deltas[state.seq - fullSeq - 1] : undefined;
  if (listed !== undefined && listed !== state.chainTip) return fromFull(index, `the index's delta at seq ${state.seq} is not the one the state is at`);
  if (index.seq <= state.seq) {
    return { mode: 'none', names: [], detail: index.seq === state.seq ? 'up to date' : `the index (seq ${index.seq}) is older than the state (seq ${state.seq})` };
  }
  if (state.seq < fullSeq) return fromFull(index, `the state (seq ${state.seq}) is before the full dump (seq ${fullSeq})`);
  return { mode: 'deltas', names: index.deltas.slice(state.seq - fullSeq), detail: `deltas ${state.seq + 1}..${index.seq}` };
}
