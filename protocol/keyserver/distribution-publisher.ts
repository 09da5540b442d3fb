/**
 * The server side of the chain rules, pure: given the publisher's state and
 * the net change of a period (or the whole record set for a full dump), sign
 * the next file and say what the index becomes.
 *
 *   publishDelta(signer, state, change)   → { state, file, index }
 *   publishFull(signer, state, snapshot)  → { state, file, index }
 *
 * The caller computes the net change between two published states (records
 * both added and withdrawn within a period appear in neither list) and keeps
 * the PublisherState durable with its event log: a server that forgot its
 * seq and chain tip would start a chain no client follows.
 */
import type { CryptoSuite } from '../crypto/suite.ts';
import { ensure } from '../errors.ts';
import { DISTRIBUTION_VERSION, type DistributionLimits, type FileName } from './distribution-file.ts';
import { MAX_INDEX_DELTAS, type DistributionIndex } from './distribution-index.ts';
import type { DiagnosisRecord, RecordId } from './distribution-records.ts';
import { signDistributionFile, type SignedDistributionFile } from './distribution-signing.ts';

export interface PublisherState {
  /** Seq of the newest file; 0 before the first. */
  readonly seq: number;
  /** Name of the delta at `seq` (null at 0). */
  readonly chainTip: FileName | null;
  readonly latestFull: FileName | null;
  /** Deltas after latestFull (from seq 1 when there is none), in order. */
  readonly deltas: readonly FileName[];
}

export interface DistributionSigner {
  readonly crypto: CryptoSuite;
  /** P-256 private key, 32 bytes. */
  readonly signingKey: Uint8Array;
  readonly keyId: string;
}

export interface Period {
  /** ms since the Unix epoch. */
  readonly createdAt: number;
  readonly periodStart: number;
  readonly periodEnd: number;
}

export interface DeltaChange extends Period {
  readonly additions: readonly DiagnosisRecord[];
  readonly deletions: readonly RecordId[];
}

export interface FullSnapshot extends Period {
  /** Every record in distribution. */
  readonly records: readonly DiagnosisRecord[];
}

export interface Publication {
  readonly state: PublisherState;
  readonly file: SignedDistributionFile;
  /** The index to publish (retained) after `file` is served. */
  readonly index: DistributionIndex;
}

export function initialPublisherState(): PublisherState {
  return { seq: 0, chainTip: null, latestFull: null, deltas: [] };
}

function indexOf(state: PublisherState, publishedAt: number): DistributionIndex {
  return { v: DISTRIBUTION_VERSION, latestFull: state.latestFull, deltas: state.deltas, seq: state.seq, publishedAt };
}

function checkState(state: PublisherState): void {
  ensure(typeof state === 'object' && state !== null && Number.isSafeInteger(state.seq) && state.seq >= 0, 'state', 'must be a PublisherState');
  ensure(Array.isArray(state.deltas), 'state.deltas', 'must be an array of file names');
}

/** Sign the delta at seq + 1 (based on the chain tip). Throws MisuseError naming the field. */
export function publishDelta(signer: DistributionSigner, state: PublisherState, change: DeltaChange, limits: Partial<DistributionLimits> = {}): Publication {
  checkState(state);
  ensure(state.deltas.length < MAX_INDEX_DELTAS, 'state.deltas', `the index lists at most ${MAX_INDEX_DELTAS} deltas: publish a full dump first`);
  const seq = state.seq + 1;
  const file = signDistributionFile(
    signer.crypto,
    signer.signingKey,
    signer.keyId,
    {
      v: DISTRIBUTION_VERSION,
      kind: 'delta',
      seq,
      basedOn: state.chainTip,
      createdAt: change.createdAt,
      periodStart: change.periodStart,
      periodEnd: change.periodEnd,
      additions: change.additions,
      deletions: change.deletions,
    },
    limits,
  );
  const next: PublisherState = { seq, chainTip: file.name, latestFull: state.latestFull, deltas: [...state.deltas, file.name] };
  return { state: next, file, index: indexOf(next, change.createdAt) };
}

/**
 * Sign a full dump of the state after the chain tip (same seq). Needs at
 * least one delta first (the genesis delta may be empty). Throws MisuseError.
 */
export function publishFull(signer: DistributionSigner, state: PublisherState, snapshot: FullSnapshot, limits: Partial<DistributionLimits> = {}): Publication {
  checkState(state);
  ensure(state.seq >= 1 && state.chainTip !== null, 'state', 'a full dump snapshots the state after a delta: publish a delta first');
  const file = signDistributionFile(
    signer.crypto,
    signer.signingKey,
    signer.keyId,
    {
      v: DISTRIBUTION_VERSION,
      kind: 'full',
      seq: state.seq,
      basedOn: state.chainTip,
      createdAt: snapshot.createdAt,
      periodStart: snapshot.periodStart,
      periodEnd: snapshot.periodEnd,
      additions: snapshot.records,
      deletions: [],
    },
    limits,
  );
  const next: PublisherState = { seq: state.seq, chainTip: state.chainTip, latestFull: file.name, deltas: [] };
  return { state: next, file, index: indexOf(next, snapshot.createdAt) };
}
