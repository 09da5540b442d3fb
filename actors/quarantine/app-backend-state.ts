/**
 * The app backend's state: input, per-quarantine records, counters, timer
 * names, and the initial context (app-backend-logic.ts holds the rules).
 */
import type { SimMillis } from '../ports.ts';
import { ensure } from '../../protocol/errors.ts';
import type { AlertRaise } from '../../protocol/quarantine/messages.ts';
import type { ReducerStep } from './backend-machine.ts';

export interface AppBackendInput {
  readonly id: string;
  /** The police backend's alerts topic (`police-backend/<id>/alerts`). */
  readonly policeAlertsTopic: string;
  /** This backend's inbox: the replyTo of every alert, where `alert.ack` arrives. */
  readonly inboxTopic: string;
  /** Alert window: longest silence (no valid token) allowed, ms (default 6 min). */
  readonly windowMs: number;
  /** Freshness tolerance, ms (default 60 s): token ttl and the grace after a window. */
  readonly toleranceMs: number;
  /** Resend period of an unacknowledged `alert.raise`, ms. */
  readonly alertRetryMs: number;
}

export const DEFAULT_WINDOW_MS = 6 * 60_000;
export const DEFAULT_TOLERANCE_MS = 60_000;
/** Applied batch numbers remembered per record for re-acks (oldest forgotten first). */
export const MAX_REMEMBERED_BATCHES = 64;
/** Unacknowledged alerts kept per record (oldest dropped and counted beyond it). */
export const MAX_PENDING_ALERTS = 64;
/** Weight of the newest delay sample in the EWMA reliability score. */
export const DELAY_EWMA_ALPHA = 0.125;

export interface DelayStats {
  readonly samples: number;
  /** Running mean of (arrival at backend − token timestamp), ms. */
  readonly meanMs: number;
  /** EWMA of the same delay, ms (recent connection quality). */
  readonly ewmaMs: number;
}

export interface QuarantineRecord {
  readonly sk: Uint8Array;
  readonly tPast: number;
  readonly beaconId: string;
  readonly beaconKey: Uint8Array;
  readonly endsAt: number;
  readonly monitoring: boolean;
  /** Start of the current alert window: monitoring start or the last in-window valid token, ms. */
  readonly windowStart: number;
  /** Timestamp (not arrival) of the newest valid token, ms; null before the first. */
  readonly lastValidTokenAt: number | null;
  /**
   * Replay guard: sha256(token) hex → token timestamp ms. Pruned to tokens
   * newer than `at − (windowMs + toleranceMs)`: an older token fails the
   * ttl (= window + tolerance) check before the replay check, so forgetting it is safe.
   */
  readonly seen: Readonly<Record<string, number>>;
  /** The acks sent for the last MAX_REMEMBERED_BATCHES applied batches, oldest first: re-acks without recount. */
  readonly batches: readonly AppliedBatch[];
  readonly delay: DelayStats;
  /** Raised but not yet acknowledged by the police backend, oldest first. */
  readonly pendingAlerts: readonly AlertRaise[];
  /** When the pending alerts are resent next, ms; null while none is pending. */
  readonly retryAt: number | null;
}

export interface AppliedBatch {
  readonly batch: number;
  readonly accepted: number;
  readonly rejected: number;
}

export interface AppBackendCounters {
  readonly tokensValid: number;
  readonly tokensInvalid: Readonly<Record<string, number>>;
  readonly replays: number;
  readonly alertsRaised: number;
  readonly alertsResent: number;
  readonly alertsDropped: number;
  readonly batchesApplied: number;
  readonly batchesReacked: number;
}

export interface AppBackendContext {
  readonly input: AppBackendInput;
  /**
   * Records in slots; a record keeps its slot while it lives, null marks a
   * free slot (reused by the next registration). Why slots, not a map keyed by
   * SK: every batch replaces one record, and copying an array of references is
   * cheap where copying an object with hundreds of keys is not (V8 turns such
   * objects into hash tables: ~60 µs a copy at 200 records).
   */
  readonly records: readonly (QuarantineRecord | null)[];
  /** hex(sk) → slot (changes only on register and end). */
  readonly slotBySk: Readonly<Record<string, number>>;
  /** beaconId → slot. */
  readonly slotByBeacon: Readonly<Record<string, number>>;
  readonly counters: AppBackendCounters;
  /** At most one timer, DUE_TIMER, at the earliest deadline of any record (app-backend.ts "Timer design"). */
  readonly timers: Readonly<Record<string, SimMillis>>;
}

export type Step = ReducerStep<AppBackendContext>;

/** The backend's single timer: it fires at the earliest record deadline (window, retry or end). */
export const DUE_TIMER = 'due';

export function initialContext(input: AppBackendInput): AppBackendContext {
  // Positive periods: handling a passed deadline always moves it strictly forward (dueFired terminates).
  ensure(Number.isSafeInteger(input.windowMs) && input.windowMs > 0, 'input.windowMs', 'must be a positive integer (ms)');
  ensure(Number.isSafeInteger(input.toleranceMs) && input.toleranceMs >= 0, 'input.toleranceMs', 'must be a non-negative integer (ms)');
  ensure(Number.isSafeInteger(input.alertRetryMs) && input.alertRetryMs > 0, 'input.alertRetryMs', 'must be a positive integer (ms)');
  return {
    input,
    records: [],
    slotBySk: {},
    slotByBeacon: {},
    counters: { tokensValid: 0, tokensInvalid: {}, replays: 0, alertsRaised: 0, alertsResent: 0, alertsDropped: 0, batchesApplied: 0, batchesReacked: 0 },
    timers: {},
  };
}

/** The live records, in slot order. */
export function liveRecords(context: Pick<AppBackendContext, 'records'>): QuarantineRecord[] {
  return context.records.filter((r): r is QuarantineRecord => r !== null);
}

/** The record registered under hex(sk), if any. */
export function recordBySk(context: AppBackendContext, skHex: string): QuarantineRecord | undefined {
  const slot = context.slotBySk[skHex];
  return slot === undefined ? undefined : (context.records[slot] ?? undefined);
}

export function hex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}
