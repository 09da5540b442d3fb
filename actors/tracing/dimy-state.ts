/**
 * The DIMY engine's state: plain data (Uint8Array, numbers, strings, arrays, records), so the
 * phone's snapshot holds it as is.
 *
 *   own       own EphIDs still needed: the one on the air, and older ones for one more epoch
 *             (a share group heard during their epoch is completed with their secret)
 *   frameId   framing id of the next advertised share (protocol/wire/framing.ts)
 *   groups    shares heard, per (tag, epoch), until k distinct ones reconstruct the EphID;
 *             a reconstructed group stays as a tombstone (no shares) for its epoch so the
 *             EphID's later shares do not insert the EncID again
 *   dbfs      the DBF pool (dimy-filters.ts)
 *   exchange  QBF schedule, the outstanding query, the CBF upload until acknowledged
 */
import type { WireValue } from '../../protocol/wire/msgpack.ts';
import type { SimMillis } from '../ports.ts';
import type { DimyDbf } from './dimy-filters.ts';

export interface DimyOwnEphId {
  /** Epoch number: floor(time / epochMs). */
  readonly epoch: number;
  /** X25519 private key (32 bytes). */
  readonly secret: Uint8Array;
  /** SHA-256(EphID)[0:3]. */
  readonly tag: Uint8Array;
  /** The n share payloads (37 bytes each, protocol/dimy/ephid.ts), concatenated; slot s advertises payload s. */
  readonly payloads: Uint8Array;
  /** On the air from … until (exclusive): the epoch's end, or a diagnosis (retired early). */
  readonly from: SimMillis;
  readonly to: SimMillis;
  /** Last slot of the epoch put on the air (−1: none yet). */
  readonly lastSlot: number;
}

export interface DimyHeldShare {
  readonly index: number;
  readonly bytes: Uint8Array;
}

export interface DimyShareGroup {
  /** hex(tag) ':' epoch. */
  readonly key: string;
  readonly tag: Uint8Array;
  readonly epoch: number;
  /** First and last share heard (the first decides which own secret completes the EncID). */
  readonly firstAt: SimMillis;
  readonly lastAt: SimMillis;
  /** Distinct shares so far; null once reconstructed (tombstone). */
  readonly shares: readonly DimyHeldShare[] | null;
}

export interface DimyPendingCbf {
  /** The encoded dimy.cbf.upload body, re-sent as is until acknowledged. */
  readonly body: WireValue;
  readonly bytes: number;
  readonly attempts: number;
  /** Start of the oldest DBF in it: it expires with that DBF. */
  readonly oldest: SimMillis;
}

export interface DimyExchangeState {
  /** A CBF was made (diagnosis): no more QBFs (SPECS §4.2 "once a node uploads a CBF it stops generating QBFs"). */
  readonly reported: boolean;
  readonly pending: DimyPendingCbf | null;
  /** When the next QBF is due; null until the first exchange tick. */
  readonly nextQueryAt: SimMillis | null;
  /** Time of the query awaiting its result (null: none). */
  readonly awaiting: SimMillis | null;
  /** `matches` of the last result: a notification is raised when it grows (a new matching CBF). */
  readonly matchesSeen: number;
}

export const DIMY_COUNTERS = [
  'sharesHeard',
  'sharesOwn',
  'sharesRepeated',
  'sharesConflicting',
  'fragmentsRefused',
  'payloadsRefused',
  'groupsEvicted',
  'groupsIncomplete',
  'reconstructed',
  'reconstructRefused',
  'noOwnSecret',
  'encIdsInserted',
  'queries',
  'queriesSkipped',
  'results',
  'resultsMatched',
  'resultsIgnored',
  'cbfSent',
  'cbfResent',
  'cbfAccepted',
  'cbfRefused',
  'cbfAbandoned',
  'messagesIgnored',
] as const;
export type DimyCounter = (typeof DIMY_COUNTERS)[number];
export type DimyCounters = Readonly<Record<DimyCounter, number>>;

export interface DimyState {
  readonly own: readonly DimyOwnEphId[];
  readonly frameId: number;
  readonly groups: readonly DimyShareGroup[];
  readonly dbfs: readonly DimyDbf[];
  readonly exchange: DimyExchangeState;
  readonly counters: DimyCounters;
  /** Refusals by `codec:reason` (fragments, share payloads, reconstructions, EncIDs). */
  readonly refusals: Readonly<Record<string, number>>;
}

export function initialDimyState(): DimyState {
  return {
    own: [],
    frameId: 0,
    groups: [],
    dbfs: [],
    exchange: { reported: false, pending: null, nextQueryAt: null, awaiting: null, matchesSeen: 0 },
    counters: Object.fromEntries(DIMY_COUNTERS.map((c) => [c, 0])) as Record<DimyCounter, number>,
    refusals: {},
  };
}

export function countDimy(state: DimyState, name: DimyCounter, by = 1): DimyState {
  return by === 0 ? state : { ...state, counters: { ...state.counters, [name]: state.counters[name] + by } };
}

export function hexOf(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

export const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((v, i) => v === b[i]);
