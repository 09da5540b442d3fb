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
import { timerSet, withTimer, withoutTimer } from '../effects.ts';
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
  hex,
  timerName,
  type AppBackendContext,
  type QuarantineRecord,
  type Step,
} from './app-backend-state.ts';

export * from './app-backend-state.ts';

const NOTHING: Step = { context: {}, effects: [] };

function withRecord(context: AppBackendContext, key: string, record: QuarantineRecord): Record<string, QuarantineRecord> {
  return { ...context.records, [key]: record };
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
  const existing = context.records[key];
  // A redelivered registration is acknowledged again without touching the record.
  if (existing !== undefined) return existing.beaconId === msg.beaconId ? { context: {}, effects: registered } : conflict(msg.beaconId, 'sk already registered with another beacon');
  if (context.byBeacon[msg.beaconId] !== undefined) return conflict(msg.beaconId, 'beacon already bound to another quarantine');
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
    batches: {},
    delay: { samples: 0, meanMs: 0, ewmaMs: 0 },
    pendingAlerts: [],
  };
  const end = timerName('end', msg.beaconId);
  return {
    context: {
      records: withRecord(context, key, record),
      byBeacon: { ...context.byBeacon, [msg.beaconId]: key },
      timers: withTimer(context.timers, end, msg.endsAt),
    },
    effects: [timerSet(end, msg.endsAt), ...registered],
  };
}

function conflict(beaconId: string, msg: string): Step {
  return { context: {}, effects: [{ type: 'log', level: 'warn', msg: `quarantine.register refused: ${msg}`, fields: { beaconId } }] };
}

/** Delete a record and its timers (quarantine end, by message or by its `end` timer). */
export function endQuarantine(context: AppBackendContext, beaconId: string): Step {
  const key = context.byBeacon[beaconId];
  if (key === undefined) return NOTHING;
  const records = { ...context.records };
  delete records[key];
  const byBeacon = { ...context.byBeacon };
  delete byBeacon[beaconId];
  let timers = context.timers;
  const effects: Effect[] = [];
  for (const kind of ['window', 'end', 'retry'] as const) {
    const name = timerName(kind, beaconId);
    if (timers[name] === undefined) continue;
    timers = withoutTimer(timers, name);
    effects.push({ type: 'timer.cancel', name });
  }
  return { context: { records, byBeacon, timers }, effects };
}

/** `end:<beacon>` fired: the quarantine is over (a stale firing is ignored). */
export function endTimerFired(context: AppBackendContext, beaconId: string, at: SimMillis): Step {
  const deadline = context.timers[timerName('end', beaconId)];
  return deadline === undefined || at < deadline ? NOTHING : endQuarantine(context, beaconId);
}

// ---------------------------------------------------------------- monitoring

function armWindow(context: AppBackendContext, timers: Readonly<Record<string, SimMillis>>, beaconId: string, windowStart: number): { timers: Record<string, SimMillis>; effect: Effect } {
  const name = timerName('window', beaconId);
  const deadline = windowStart + context.input.windowMs + context.input.toleranceMs;
  return { timers: withTimer(timers, name, deadline), effect: timerSet(name, deadline) };
}

export function enableMonitoring(context: AppBackendContext, beaconId: string, at: SimMillis): Step {
  const key = context.byBeacon[beaconId];
  const record = key === undefined ? undefined : context.records[key];
  if (key === undefined || record === undefined || record.monitoring) return NOTHING;
  const armed = armWindow(context, context.timers, beaconId, at);
  return { context: { records: withRecord(context, key, { ...record, monitoring: true, windowStart: at }), timers: armed.timers }, effects: [armed.effect] };
}

export function disableMonitoring(context: AppBackendContext, beaconId: string): Step {
  const key = context.byBeacon[beaconId];
  const record = key === undefined ? undefined : context.records[key];
  if (key === undefined || record === undefined || !record.monitoring) return NOTHING;
  const name = timerName('window', beaconId);
  // Alerts already raised keep being retried until acknowledged.
  return {
    context: { records: withRecord(context, key, { ...record, monitoring: false }), timers: withoutTimer(context.timers, name) },
    effects: [{ type: 'timer.cancel', name }],
  };
}

// ---------------------------------------------------------------- tokens

export function forwardTokens(deps: { crypto: CryptoSuite }, context: AppBackendContext, msg: TokensForward, at: SimMillis, replyTo: string | undefined, corr: string): Step {
  const ack = (accepted: number, rejected: number): Effect[] => reply(replyTo, corr, 'tokens.ack', tokensAckCodec.encode({ batch: msg.batch, accepted, rejected }));
  const key = hex(msg.sk);
  const record = context.records[key];
  const counters = context.counters;
  if (record === undefined) {
    const n = msg.tuples.length;
    const tokensInvalid = { ...counters.tokensInvalid, 'unknown-sk': (counters.tokensInvalid['unknown-sk'] ?? 0) + n };
    return { context: { counters: { ...counters, tokensInvalid } }, effects: ack(0, n) };
  }
  const previous = record.batches[String(msg.batch)];
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
  let timers = context.timers;
  const effects: Effect[] = [];
  if (record.monitoring && windowStart !== record.windowStart) {
    const armed = armWindow(context, timers, record.beaconId, windowStart);
    timers = armed.timers;
    effects.push(armed.effect);
  }
  effects.push(...ack(accepted, rejected));
  return {
    context: {
      records: withRecord(context, key, updated),
      timers,
      counters: { ...counters, tokensValid, tokensInvalid, replays, batchesApplied: counters.batchesApplied + 1 },
    },
    effects,
  };
}

function rememberBatch(batches: QuarantineRecord['batches'], batch: number, accepted: number, rejected: number): QuarantineRecord['batches'] {
  const next: Record<string, { accepted: number; rejected: number }> = { ...batches, [String(batch)]: { accepted, rejected } };
  const numbers = Object.keys(next).map(Number).sort((a, b) => a - b);
  for (const n of numbers.slice(0, Math.max(0, numbers.length - MAX_REMEMBERED_BATCHES))) delete next[String(n)];
  return next;
}

// ---------------------------------------------------------------- alerts

/** Window timer fired: raise one alert for the silent window, then arm the next window. */
export function windowElapsed(context: AppBackendContext, beaconId: string, at: SimMillis): Step {
  const name = timerName('window', beaconId);
  const deadline = context.timers[name];
  const key = context.byBeacon[beaconId];
  const record = key === undefined ? undefined : context.records[key];
  // Stale firing (cancelled, re-armed later, or record gone): ignore.
  if (deadline === undefined || at < deadline || key === undefined || record === undefined || !record.monitoring) return NOTHING;
  const { windowMs } = context.input;
  const windowStart = record.windowStart;
  const windowEnd = windowStart + windowMs;
  const last = record.lastValidTokenAt;
  // Defensive: an in-window token re-arms the timer, so this should not hold here.
  if (last !== null && last > windowStart && last <= windowEnd) {
    const armed = armWindow(context, context.timers, beaconId, last);
    return { context: { records: withRecord(context, key, { ...record, windowStart: last }), timers: armed.timers }, effects: [armed.effect] };
  }
  const alert: AlertRaise = { alertId: `${beaconId}:${windowStart}`, beaconId, windowStart, windowEnd, reason: 'no-valid-token' };
  // Next window: from the newest token already seen after this window, else right after it.
  const nextStart = last !== null && last > windowEnd ? last : windowEnd;
  let pendingAlerts = [...record.pendingAlerts, alert];
  const dropped = Math.max(0, pendingAlerts.length - MAX_PENDING_ALERTS);
  pendingAlerts = pendingAlerts.slice(dropped);
  const armed = armWindow(context, context.timers, beaconId, nextStart);
  let timers = armed.timers;
  const effects: Effect[] = [sendAlert(context, alert), armed.effect];
  const retry = timerName('retry', beaconId);
  if (timers[retry] === undefined) {
    timers = withTimer(timers, retry, at + context.input.alertRetryMs);
    effects.push(timerSet(retry, at + context.input.alertRetryMs));
  }
  const counters = context.counters;
  return {
    context: {
      records: withRecord(context, key, { ...record, windowStart: nextStart, pendingAlerts }),
      timers,
      counters: { ...counters, alertsRaised: counters.alertsRaised + 1, alertsDropped: counters.alertsDropped + dropped },
    },
    effects,
  };
}

/** Retry timer fired: resend every unacknowledged alert of the record, re-arm while any remain. */
export function retryAlerts(context: AppBackendContext, beaconId: string, at: SimMillis): Step {
  const name = timerName('retry', beaconId);
  const deadline = context.timers[name];
  if (deadline === undefined || at < deadline) return NOTHING;
  const key = context.byBeacon[beaconId];
  const record = key === undefined ? undefined : context.records[key];
  if (record === undefined || record.pendingAlerts.length === 0) return { context: { timers: withoutTimer(context.timers, name) }, effects: [] };
  const next = at + context.input.alertRetryMs;
  return {
    context: {
      timers: withTimer(context.timers, name, next),
      counters: { ...context.counters, alertsResent: context.counters.alertsResent + record.pendingAlerts.length },
    },
    effects: [...record.pendingAlerts.map((a) => sendAlert(context, a)), timerSet(name, next)],
  };
}

export function alertAcked(context: AppBackendContext, alertId: string): Step {
  const beaconId = alertId.slice(0, Math.max(0, alertId.indexOf(':')));
  const key = context.byBeacon[beaconId];
  const record = key === undefined ? undefined : context.records[key];
  if (key === undefined || record === undefined) return NOTHING;
  const pendingAlerts = record.pendingAlerts.filter((a) => a.alertId !== alertId);
  if (pendingAlerts.length === record.pendingAlerts.length) return NOTHING;
  const records = withRecord(context, key, { ...record, pendingAlerts });
  const retry = timerName('retry', beaconId);
  if (pendingAlerts.length > 0 || context.timers[retry] === undefined) return { context: { records }, effects: [] };
  return { context: { records, timers: withoutTimer(context.timers, retry) }, effects: [{ type: 'timer.cancel', name: retry }] };
}
