/**
 * Pure reducers of the app backend (issue 3): each takes the context and one
 * input and returns the context update plus the effects to emit. The machine
 * (app-backend.ts) only routes events here; keeping the rules in plain
 * functions keeps them small and testable.
 *
 * Units: machine time (`at`, deadlines, windows) is ms; presence token
 * timestamps are Unix seconds and are converted to ms (× 1000) on arrival.
 */
import type { Effect } from '../effects.ts';
import { timerSet } from '../effects.ts';
import type { SimMillis } from '../ports.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import type { WireValue } from '../../protocol/wire/msgpack.ts';
import { parseFernetKey } from '../../protocol/beacon/fernet.ts';
import { verifyPresenceToken } from '../../protocol/beacon/presence-token.ts';
import {
  alertRaiseCodec,
  quarantineRegisteredCodec,
  tokensAckCodec,
  type AlertRaise,
  type QuarantineRegister,
  type TokensForward,
} from '../../protocol/quarantine/messages.ts';
import {
  DELAY_EWMA_ALPHA,
  MAX_PENDING_ALERTS,
  MAX_REMEMBERED_BATCHES,
  DUE_TIMER,
  hex,
  recordBySk,
  type AppBackendContext,
  type QuarantineRecord,
  type Step,
} from './app-backend-state.ts';

export * from './app-backend-state.ts';

const NOTHING: Step = { context: {}, effects: [] };

/** The records with `slot` replaced (a copy of the slot array, nothing else). */
function withRecord(context: AppBackendContext, slot: number, record: QuarantineRecord | null): (QuarantineRecord | null)[] {
  const records = context.records.slice();
  records[slot] = record;
  return records;
}

/** The slot and record of the quarantine bound to `beaconId`, if any. */
function byBeacon(context: AppBackendContext, beaconId: string): { slot: number; record: QuarantineRecord } | undefined {
  const slot = context.slotByBeacon[beaconId];
  const record = slot === undefined ? undefined : context.records[slot];
  return slot === undefined || record === undefined || record === null ? undefined : { slot, record };
}

function reply(replyTo: string | undefined, corr: string, msgType: string, body: WireValue): Effect[] {
  return replyTo === undefined ? [] : [{ type: 'bus.send', topic: replyTo, msgType, body, qos: 1, corr }];
}

function sendAlert(context: AppBackendContext, alert: AlertRaise): Effect {
  return {
    type: 'bus.send',
    topic: context.input.policeAlertsTopic,
    msgType: 'alert.raise',
    body: alertRaiseCodec.encode(alert),
    qos: 1,
    replyTo: context.input.inboxTopic,
  };
}

// ---------------------------------------------------------------- registration

export function register(context: AppBackendContext, msg: QuarantineRegister, at: SimMillis, replyTo: string | undefined, corr: string): Step {
  const key = hex(msg.sk);
  const registered = reply(replyTo, corr, 'quarantine.registered', quarantineRegisteredCodec.encode({ beaconId: msg.beaconId }));
  const existing = recordBySk(context, key);
  // A redelivered registration is acknowledged again without touching the record.
  if (existing !== undefined) return existing.beaconId === msg.beaconId ? { context: {}, effects: registered } : conflict(msg.beaconId, 'sk already registered with another beacon');
  if (context.slotByBeacon[msg.beaconId] !== undefined) return conflict(msg.beaconId, 'beacon already bound to another quarantine');
  if (msg.endsAt <= at) return conflict(msg.beaconId, 'quarantine already ended');
  const record: QuarantineRecord = {
    sk: new Uint8Array(msg.sk),
    tPast: msg.tPast,
    beaconId: msg.beaconId,
    beaconKey: new Uint8Array(msg.beaconKey),
    endsAt: msg.endsAt,
    monitoring: false,
    windowStart: at,
    lastValidTokenAt: null,
    seen: {},
    batches: [],
    delay: { samples: 0, meanMs: 0, ewmaMs: 0 },
    pendingAlerts: [],
    retryAt: null,
  };
  const free = context.records.indexOf(null);
  const slot = free >= 0 ? free : context.records.length;
  return {
    context: {
      records: withRecord(context, slot, record),
      slotBySk: { ...context.slotBySk, [key]: slot },
      slotByBeacon: { ...context.slotByBeacon, [msg.beaconId]: slot },
    },
    effects: registered,
  };
}

function conflict(beaconId: string, msg: string): Step {
  return { context: {}, effects: [{ type: 'log', level: 'warn', msg: `quarantine.register refused: ${msg}`, fields: { beaconId } }] };
}

/** Delete a record (quarantine end, by message or at endsAt); its deadlines go with it. */
export function endQuarantine(context: AppBackendContext, beaconId: string): Step {
  const found = byBeacon(context, beaconId);
  if (found === undefined) return NOTHING;
  const slotBySk = { ...context.slotBySk };
  delete slotBySk[hex(found.record.sk)];
  const slotByBeacon = { ...context.slotByBeacon };
  delete slotByBeacon[beaconId];
  return { context: { records: withRecord(context, found.slot, null), slotBySk, slotByBeacon }, effects: [] };
}

// ---------------------------------------------------------------- monitoring

export function enableMonitoring(context: AppBackendContext, beaconId: string, at: SimMillis): Step {
  const found = byBeacon(context, beaconId);
  if (found === undefined || found.record.monitoring) return NOTHING;
  return { context: { records: withRecord(context, found.slot, { ...found.record, monitoring: true, windowStart: at }) }, effects: [] };
}

export function disableMonitoring(context: AppBackendContext, beaconId: string): Step {
  const found = byBeacon(context, beaconId);
  if (found === undefined || !found.record.monitoring) return NOTHING;
  // Alerts already raised keep being retried until acknowledged.
  return { context: { records: withRecord(context, found.slot, { ...found.record, monitoring: false }) }, effects: [] };
}

// ---------------------------------------------------------------- tokens

export function forwardTokens(deps: { crypto: CryptoSuite }, context: AppBackendContext, msg: TokensForward, at: SimMillis, replyTo: string | undefined, corr: string): Step {
  const ack = (accepted: number, rejected: number): Effect[] => reply(replyTo, corr, 'tokens.ack', tokensAckCodec.encode({ batch: msg.batch, accepted, rejected }));
  const slot = context.slotBySk[hex(msg.sk)];
  const record = slot === undefined ? undefined : (context.records[slot] ?? undefined);
  const counters = context.counters;
  if (slot === undefined || record === undefined || record === null) {
    const n = msg.tuples.length;
    const tokensInvalid = { ...counters.tokensInvalid, 'unknown-sk': (counters.tokensInvalid['unknown-sk'] ?? 0) + n };
    return { context: { counters: { ...counters, tokensInvalid } }, effects: ack(0, n) };
  }
  const previous = record.batches.find((b) => b.batch === msg.batch);
  if (previous !== undefined) {
    return { context: { counters: { ...counters, batchesReacked: counters.batchesReacked + 1 } }, effects: ack(previous.accepted, previous.rejected) };
  }

  const { windowMs, toleranceMs } = context.input;
  const horizon = at - (windowMs + toleranceMs);
  const seen: Record<string, number> = {};
  for (const [h, ts] of Object.entries(record.seen)) if (ts >= horizon) seen[h] = ts;
  const beaconKey = parseFernetKey(record.beaconKey);
  // A token older than window + tolerance can no longer count for any open window (its alert
  // deadline has passed); younger ones can, even after a 5-min forwarding delay or an outage.
  const ttlS = Math.ceil((windowMs + toleranceMs) / 1000);
  const now = Math.floor(at / 1000);
  const tokensInvalid: Record<string, number> = { ...counters.tokensInvalid };
  let { tokensValid, replays } = counters;
  let { windowStart, lastValidTokenAt, delay } = record;
  let accepted = 0;
  for (const tuple of msg.tuples) {
    const verdict = verifyPresenceToken(deps.crypto, beaconKey, tuple.token, { now, ttlS });
    if (!verdict.ok) {
      tokensInvalid[verdict.reason] = (tokensInvalid[verdict.reason] ?? 0) + 1;
      continue;
    }
    const h = hex(deps.crypto.sha256(tuple.token));
    if (seen[h] !== undefined) {
      replays++;
      continue;
    }
    const ts = verdict.value.timestamp * 1000;
    seen[h] = ts;
    accepted++;
    tokensValid++;
    lastValidTokenAt = lastValidTokenAt === null ? ts : Math.max(lastValidTokenAt, ts);
    const sample = at - ts;
    const samples = delay.samples + 1;
    delay = {
      samples,
      meanMs: delay.meanMs + (sample - delay.meanMs) / samples,
      ewmaMs: delay.samples === 0 ? sample : delay.ewmaMs + DELAY_EWMA_ALPHA * (sample - delay.ewmaMs),
    };
  }
  // Evidence is the *arrival* of a fresh (age ≤ window + tolerance), unreplayed valid token: the
  // rule is "an alert iff no valid token reached the backend within window + tolerance". Token
  // timestamps would make the 5-min forwarding delay itself raise alerts.
  if (record.monitoring && accepted > 0 && at > windowStart) windowStart = at;
  const rejected = msg.tuples.length - accepted;
  const batches = rememberBatch(record.batches, msg.batch, accepted, rejected);
  const updated: QuarantineRecord = { ...record, seen, batches, delay, windowStart, lastValidTokenAt };
  return {
    context: {
      records: withRecord(context, slot, updated),
      counters: { ...counters, tokensValid, tokensInvalid, replays, batchesApplied: counters.batchesApplied + 1 },
    },
    effects: ack(accepted, rejected),
  };
}

/** Remember the ack of `batch`, forgetting the oldest beyond MAX_REMEMBERED_BATCHES (batch numbers wrap: arrival order, not number order). */
function rememberBatch(batches: QuarantineRecord['batches'], batch: number, accepted: number, rejected: number): QuarantineRecord['batches'] {
  return [...batches.slice(Math.max(0, batches.length - MAX_REMEMBERED_BATCHES + 1)), { batch, accepted, rejected }];
}

// ---------------------------------------------------------------- alerts

/** The record's window deadline: a valid token arriving up to and including it saves the window (monitoring only). */
export function windowDeadline(input: AppBackendContext['input'], record: QuarantineRecord): number | null {
  return record.monitoring ? record.windowStart + input.windowMs + input.toleranceMs : null;
}

/**
 * The window is checked one millisecond after its deadline: a batch arriving
 * at the deadline itself is "within window + tolerance" and must win, and in
 * a discrete-event run a timer due at the same instant as a message would
 * otherwise fire first (timers fire within the step, bus deliveries settle
 * after it). Regression: test/city/offline-phone.test.ts, network back exactly at D.
 */
export const WINDOW_CHECK_AFTER_MS = 1;

function windowCheckAt(input: AppBackendContext['input'], record: QuarantineRecord): number | null {
  const deadline = windowDeadline(input, record);
  return deadline === null ? null : deadline + WINDOW_CHECK_AFTER_MS;
}

/** The window of `record` has elapsed at `at`: raise one alert for it and start the next window. */
function windowElapsed(context: AppBackendContext, slot: number, record: QuarantineRecord, at: SimMillis): Step {
  const { windowMs } = context.input;
  const windowStart = record.windowStart;
  const windowEnd = windowStart + windowMs;
  const last = record.lastValidTokenAt;
  // Defensive: an in-window token moves windowStart on arrival, so this should not hold here.
  if (last !== null && last > windowStart && last <= windowEnd) {
    return { context: { records: withRecord(context, slot, { ...record, windowStart: last }) }, effects: [] };
  }
  const alert: AlertRaise = { alertId: `${record.beaconId}:${windowStart}`, beaconId: record.beaconId, windowStart, windowEnd, reason: 'no-valid-token' };
  // Next window: from the newest token already seen after this window, else right after it.
  const nextStart = last !== null && last > windowEnd ? last : windowEnd;
  let pendingAlerts = [...record.pendingAlerts, alert];
  const dropped = Math.max(0, pendingAlerts.length - MAX_PENDING_ALERTS);
  pendingAlerts = pendingAlerts.slice(dropped);
  const retryAt = record.retryAt ?? at + context.input.alertRetryMs;
  const counters = context.counters;
  return {
    context: {
      records: withRecord(context, slot, { ...record, windowStart: nextStart, pendingAlerts, retryAt }),
      counters: { ...counters, alertsRaised: counters.alertsRaised + 1, alertsDropped: counters.alertsDropped + dropped },
    },
    effects: [sendAlert(context, alert)],
  };
}

/** Retry deadline of `record` passed: resend every unacknowledged alert, again after alertRetryMs while any remain. */
function retryAlerts(context: AppBackendContext, slot: number, record: QuarantineRecord, at: SimMillis): Step {
  if (record.pendingAlerts.length === 0) return { context: { records: withRecord(context, slot, { ...record, retryAt: null }) }, effects: [] };
  return {
    context: {
      records: withRecord(context, slot, { ...record, retryAt: at + context.input.alertRetryMs }),
      counters: { ...context.counters, alertsResent: context.counters.alertsResent + record.pendingAlerts.length },
    },
    effects: record.pendingAlerts.map((a) => sendAlert(context, a)),
  };
}

export function alertAcked(context: AppBackendContext, alertId: string): Step {
  const found = byBeacon(context, alertId.slice(0, Math.max(0, alertId.indexOf(':'))));
  if (found === undefined) return NOTHING;
  const { slot, record } = found;
  const pendingAlerts = record.pendingAlerts.filter((a) => a.alertId !== alertId);
  if (pendingAlerts.length === record.pendingAlerts.length) return NOTHING;
  return { context: { records: withRecord(context, slot, { ...record, pendingAlerts, retryAt: pendingAlerts.length > 0 ? record.retryAt : null }) }, effects: [] };
}

// ---------------------------------------------------------------- the due timer

type DueKind = 'window' | 'retry' | 'end';
/** Order of deadlines that coincide: the window closes (alert) before a retry, both before the record ends. */
const DUE_ORDER: Readonly<Record<DueKind, number>> = { window: 0, retry: 1, end: 2 };

interface DueItem {
  readonly kind: DueKind;
  readonly deadline: number;
  readonly slot: number;
  readonly beaconId: string;
}

function dueItems(context: AppBackendContext, at: SimMillis): DueItem[] {
  const items: DueItem[] = [];
  context.records.forEach((record, slot) => {
    if (record === null) return;
    const window = windowCheckAt(context.input, record);
    if (window !== null && window <= at) items.push({ kind: 'window', deadline: window, slot, beaconId: record.beaconId });
    if (record.retryAt !== null && record.retryAt <= at) items.push({ kind: 'retry', deadline: record.retryAt, slot, beaconId: record.beaconId });
    if (record.endsAt <= at) items.push({ kind: 'end', deadline: record.endsAt, slot, beaconId: record.beaconId });
  });
  return items.sort((a, b) => a.deadline - b.deadline || DUE_ORDER[a.kind] - DUE_ORDER[b.kind] || (a.beaconId < b.beaconId ? -1 : a.beaconId > b.beaconId ? 1 : 0));
}

/** Earliest deadline of any record, or undefined when there is none. */
export function nextDeadline(context: Pick<AppBackendContext, 'input' | 'records'>): number | undefined {
  let min = Infinity;
  for (const record of context.records) {
    if (record === null) continue;
    const window = windowCheckAt(context.input, record);
    if (window !== null && window < min) min = window;
    if (record.retryAt !== null && record.retryAt < min) min = record.retryAt;
    if (record.endsAt < min) min = record.endsAt;
  }
  return min === Infinity ? undefined : min;
}

/**
 * `timer.due` fired: handle every deadline that has passed, earliest first
 * (a window missed by a late firing, e.g. after a restart, raises its alert
 * and the next window is checked in turn). A firing before the recorded
 * deadline is stale and ignored.
 */
export function dueFired(context: AppBackendContext, at: SimMillis): Step {
  const deadline = context.timers[DUE_TIMER];
  if (deadline === undefined || at < deadline) return NOTHING;
  // The timer has fired: forget it, so scheduleDue re-arms whatever is next.
  let current: AppBackendContext = { ...context, timers: {} };
  const effects: Effect[] = [];
  for (let items = dueItems(current, at); items.length > 0; items = dueItems(current, at)) {
    for (const item of items) {
      const record = current.records[item.slot];
      if (record === undefined || record === null) continue;
      const step =
        item.kind === 'end' ? endQuarantine(current, item.beaconId)
        : item.kind === 'retry' ? (record.retryAt === item.deadline ? retryAlerts(current, item.slot, record, at) : NOTHING)
        : windowCheckAt(current.input, record) === item.deadline ? windowElapsed(current, item.slot, record, at) : NOTHING;
      current = { ...current, ...step.context };
      effects.push(...step.effects);
    }
  }
  return { context: { records: current.records, slotBySk: current.slotBySk, slotByBeacon: current.slotByBeacon, counters: current.counters, timers: {} }, effects };
}

/**
 * After any step that changed records: keep the one timer at the earliest
 * deadline (re-arm it when that moved, cancel it when no deadline is left).
 * Deadlines live in the records, so a restored snapshot re-arms exactly.
 */
export function scheduleDue(before: AppBackendContext, step: Step): Step {
  const records = step.context.records;
  if (records === undefined) return step;
  const timers = step.context.timers ?? before.timers;
  const current = timers[DUE_TIMER];
  const next = nextDeadline({ input: before.input, records });
  if (next === current) return step;
  if (next === undefined) return { context: { ...step.context, timers: {} }, effects: [...step.effects, { type: 'timer.cancel', name: DUE_TIMER }] };
  return { context: { ...step.context, timers: { [DUE_TIMER]: next } }, effects: [...step.effects, timerSet(DUE_TIMER, next)] };
}
