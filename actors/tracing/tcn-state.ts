/**
 * The TCN engine's state: plain data (Uint8Array, numbers, strings, arrays, records), so the
 * phone's snapshot holds it as is. Which parts a mode uses:
 *
 *   raks      A, B, C  own keys (B only broadcasts with them; A and C report them)
 *   blocks    A        observations until the backend acknowledged them (it holds the contact graph)
 *             B, C     for the retention (B uploads them on diagnosis, C matches reports locally)
 *   sent      B        own TCNs per UTC day, to recognise them in published logs
 *   exchange  A, B     message numbers, pending uploads, matched sightings per source
 *   notified  A, B, C  the highest risk reported per (source, day)
 */
import type { WireValue } from '../../protocol/wire/msgpack.ts';
import { EMPTY_SENT_TCN_SET, type SentTcnSet } from '../../protocol/tcn/matching.ts';
import type { ExposureRisk } from './engine.ts';
import type { TcnSighting } from './tcn-exposure.ts';
import { keyBytes, type TcnOwnRak } from './tcn-keys.ts';
import { blockBytes, type TcnBlock } from './tcn-observations.ts';

/** A diagnosis upload to the backend (A: reports; B: the log in parts), re-sent every exchange period until acknowledged. */
export interface TcnPendingUpload {
  readonly msgType: string;
  readonly bodies: readonly WireValue[];
  readonly acked: readonly boolean[];
  readonly attempts: number;
  /** Bytes per body (for the bytes-up counter). */
  readonly sizes: readonly number[];
}

export interface TcnExchangeState {
  /** Next contacts-upload number (mode A). */
  readonly nextBatch: number;
  /** Contact uploads awaiting an ack: upload number → the last scan window (seq) whose entries it completes. */
  readonly inFlight: readonly { readonly batch: number; readonly lastSeq: number }[];
  readonly pending: TcnPendingUpload | null;
  /** Sightings of positives the backend told us about, per source (A: `tcn-a-<reportId>`, B: `tcn-b-<logId>`). */
  readonly matched: Readonly<Record<string, readonly TcnSighting[]>>;
}

export interface TcnEngineCounters {
  /** Mode C: downloaded reports that verified, and those that did not (skipped). */
  readonly reportsVerified: number;
  readonly reportsInvalid: number;
  /** TCNs regenerated from reports (mode C). */
  readonly tcnsDerived: number;
  /** Mode A: contact entries sent, uploads the backend refused. */
  readonly contactsUploaded: number;
  readonly uploadsRefused: number;
  /** Modes A/B: diagnosis uploads refused for good (bad code, used, expired, bad signature) or given up. */
  readonly diagnosisRefused: number;
  readonly diagnosisAbandoned: number;
  /** Mode B: contact entries left out of an upload because it exceeded TCN_MAX_LOG_PARTS parts. */
  readonly logEntriesDropped: number;
  /** Backend messages that failed their codec here or did not fit the mode. */
  readonly messagesIgnored: number;
}

export interface TcnState {
  readonly raks: readonly TcnOwnRak[];
  readonly blocks: readonly TcnBlock[];
  /** Number of the next scan window with TCNs. */
  readonly nextSeq: number;
  readonly sent: SentTcnSet;
  readonly exchange: TcnExchangeState;
  readonly notified: Readonly<Record<string, ExposureRisk>>;
  readonly counters: TcnEngineCounters;
}

export const EMPTY_TCN_COUNTERS: TcnEngineCounters = {
  reportsVerified: 0,
  reportsInvalid: 0,
  tcnsDerived: 0,
  contactsUploaded: 0,
  uploadsRefused: 0,
  diagnosisRefused: 0,
  diagnosisAbandoned: 0,
  logEntriesDropped: 0,
  messagesIgnored: 0,
};

export function initialTcnState(): TcnState {
  return {
    raks: [],
    blocks: [],
    nextSeq: 0,
    sent: EMPTY_SENT_TCN_SET,
    exchange: { nextBatch: 0, inFlight: [], pending: null, matched: {} },
    notified: {},
    counters: EMPTY_TCN_COUNTERS,
  };
}

export function countTcn(state: TcnState, field: keyof TcnEngineCounters, by = 1): TcnState {
  return by === 0 ? state : { ...state, counters: { ...state.counters, [field]: state.counters[field] + by } };
}

/** Bytes of tracing data held: keys, observations, sent TCNs, matched sightings (16 each), a pending upload. */
export function tcnStorageBytes(state: TcnState): number {
  const sent = state.sent.days.reduce((sum, d) => sum + d.tcns.length + 4, 0);
  const matched = Object.values(state.exchange.matched).reduce((sum, list) => sum + 16 * list.length, 0);
  const pending = state.exchange.pending?.sizes.reduce((sum, n) => sum + n, 0) ?? 0;
  return keyBytes(state.raks) + blockBytes(state.blocks) + sent + matched + pending;
}
