/**
 * Pure reducers of the police backend (issue 3, docs/decisions/0002): each
 * takes the context and one input and returns the context update plus the
 * effects to emit, in order. police-backend.ts only routes events here.
 *
 * Privacy split (DESIGN.md "Security profiles"): nothing here ever copies a
 * byte array into context. The context holds beacon ids, addresses, alert
 * ids, windows, reasons and times only — the messages that reach this role
 * (alert.raise, beacon.*, alert.close, monitoring.disable) carry nothing else,
 * and every stored value is rebuilt field by field from them rather than
 * spread, so a future field added to a message cannot leak in unnoticed.
 */
import type { Effect } from '../effects.ts';
import { timerSet, withTimer, withoutTimer } from '../effects.ts';
import type { SimMillis } from '../ports.ts';
import type { WireValue } from '../../protocol/wire/msgpack.ts';
import {
  alertAckCodec,
  beaconAddressCodec,
  monitoringDisableCodec,
  monitoringEnableCodec,
  type AlertRaise,
  type AlertReason,
  type BeaconRegister,
} from '../../protocol/quarantine/messages.ts';

export interface PoliceBackendInput {
  readonly id: string;
  /** The app backend's control topic (`app-backend/<id>/control`), where monitoring.enable/disable go. */
  readonly appBackendControlTopic: string;
  /**
   * When set, `monitoring.enable` is re-sent while a beacon stays enabled:
   * first controlResendMs after the registration, then with the delay
   * doubling up to controlResendMaxMs (default DEFAULT_CONTROL_RESEND_MAX_MS).
   * Why: the control channel has no acknowledgement, and the app backend
   * drops an enable for a beacon whose quarantine the health authority has
   * not registered yet (an officer may install the beacon first). The app
   * backend ignores an enable for a beacon already monitored, so a resend is
   * harmless; the backoff keeps a city of beacons from re-sending forever at
   * the first rate (one journaled message per beacon every few minutes on
   * both backends). Undefined = send once.
   */
  readonly controlResendMs?: number;
  readonly controlResendMaxMs?: number;
}

/** Longest delay between two resends of `monitoring.enable`, ms (6 h). */
export const DEFAULT_CONTROL_RESEND_MAX_MS = 6 * 3600_000;

export interface StoredBeacon {
  readonly address: string;
  /** When the officer registered (last re-registered) it, ms. */
  readonly installedAt: number;
  /** False after the officer's monitoring.disable; the address stays resolvable for old alerts. */
  readonly enabled: boolean;
  /** `monitoring.enable` resends since the last registration (the backoff exponent). */
  readonly enableResends: number;
}

/** Delay before the next resend after `resends` resends: controlResendMs × 2^resends, capped. */
export function resendDelay(input: PoliceBackendInput, resends: number): number | undefined {
  const first = input.controlResendMs;
  if (first === undefined) return undefined;
  const max = input.controlResendMaxMs ?? DEFAULT_CONTROL_RESEND_MAX_MS;
  return Math.min(first * 2 ** Math.min(resends, 52), Math.max(first, max));
}

export interface StoredAlert {
  readonly alertId: string;
  readonly beaconId: string;
  readonly windowStart: number;
  readonly windowEnd: number;
  readonly reason: AlertReason;
  /** When the first copy arrived, ms. */
  readonly receivedAt: number;
  readonly status: 'open' | 'closed';
  readonly closedAt: number | null;
}

export interface PoliceBackendCounters {
  /** Distinct alerts stored. */
  readonly alertsReceived: number;
  /** Redelivered alert.raise (same alertId): re-acked, not stored again. */
  readonly alertsDuplicate: number;
  /** Stored alerts not yet closed (a gauge). */
  readonly alertsOpen: number;
  readonly alertsClosed: number;
  /** beacon.resolve answered with an address. */
  readonly resolves: number;
  /** Officer commands (beacon.resolve, monitoring.disable) naming a beacon never registered. */
  readonly unknownBeacon: number;
}

export interface PoliceBackendContext {
  readonly input: PoliceBackendInput;
  readonly beacons: Readonly<Record<string, StoredBeacon>>;
  /** Alerts by alertId: the dedupe key the app backend derives from beacon + window. */
  readonly alerts: Readonly<Record<string, StoredAlert>>;
  /** beaconId → its alert ids in arrival order (the per-beacon log an officer reads). */
  readonly alertsByBeacon: Readonly<Record<string, readonly string[]>>;
  readonly counters: PoliceBackendCounters;
  readonly timers: Readonly<Record<string, SimMillis>>;
}

export interface Step {
  readonly context: Partial<PoliceBackendContext>;
  readonly effects: readonly Effect[];
}

const NOTHING: Step = { context: {}, effects: [] };

/** One timer kind per beacon, named `<kind>:<beaconId>` like the app backend's (beacon ids never hold `:`). */
export type TimerKind = 'enable';
export const timerName = (kind: TimerKind, beaconId: string): string => `${kind}:${beaconId}`;

export function parseTimerName(name: string): { kind: TimerKind; beaconId: string } | undefined {
  const colon = name.indexOf(':');
  if (colon < 0 || name.slice(0, colon) !== 'enable') return undefined;
  return { kind: 'enable', beaconId: name.slice(colon + 1) };
}

export function initialContext(input: PoliceBackendInput): PoliceBackendContext {
  return {
    input,
    beacons: {},
    alerts: {},
    alertsByBeacon: {},
    counters: { alertsReceived: 0, alertsDuplicate: 0, alertsOpen: 0, alertsClosed: 0, resolves: 0, unknownBeacon: 0 },
    timers: {},
  };
}

function reply(replyTo: string | undefined, corr: string, msgType: string, body: WireValue): Effect[] {
  return replyTo === undefined ? [] : [{ type: 'bus.send', topic: replyTo, msgType, body, qos: 1, corr }];
}

function control(context: PoliceBackendContext, msgType: 'monitoring.enable' | 'monitoring.disable', beaconId: string): Effect {
  const codec = msgType === 'monitoring.enable' ? monitoringEnableCodec : monitoringDisableCodec;
  return { type: 'bus.send', topic: context.input.appBackendControlTopic, msgType, body: codec.encode({ beaconId }), qos: 1 };
}

// ---------------------------------------------------------------- alerts

/**
 * Store an alert once per alertId, then acknowledge. The host journals the
 * input before delivering it, so once this step is applied the alert is
 * durable and the ack (emitted after the context update) is truthful. A
 * redelivery (app backend retry, or a replay of our journal) is re-acked
 * without a second copy: the app backend keeps resending until it sees an ack.
 */
export function alertRaised(context: PoliceBackendContext, msg: AlertRaise, at: SimMillis, replyTo: string | undefined, corr: string): Step {
  const ack = reply(replyTo, corr, 'alert.ack', alertAckCodec.encode({ alertId: msg.alertId }));
  const counters = context.counters;
  if (context.alerts[msg.alertId] !== undefined) {
    return { context: { counters: { ...counters, alertsDuplicate: counters.alertsDuplicate + 1 } }, effects: ack };
  }
  const alert: StoredAlert = {
    alertId: msg.alertId,
    beaconId: msg.beaconId,
    windowStart: msg.windowStart,
    windowEnd: msg.windowEnd,
    reason: msg.reason,
    receivedAt: at,
    status: 'open',
    closedAt: null,
  };
  const effects: Effect[] = [];
  // Stored anyway: an alert for a beacon no officer registered is still evidence, but someone should look.
  if (context.beacons[msg.beaconId] === undefined) effects.push({ type: 'log', level: 'warn', msg: 'alert for an unregistered beacon', fields: { beaconId: msg.beaconId, alertId: msg.alertId } });
  effects.push(...ack);
  return {
    context: {
      alerts: { ...context.alerts, [msg.alertId]: alert },
      alertsByBeacon: { ...context.alertsByBeacon, [msg.beaconId]: [...(context.alertsByBeacon[msg.beaconId] ?? []), msg.alertId] },
      counters: { ...counters, alertsReceived: counters.alertsReceived + 1, alertsOpen: counters.alertsOpen + 1 },
    },
    effects,
  };
}

/** Officer closes an alert; closing an unknown or already closed alert changes nothing (idempotent redelivery). */
export function alertClosed(context: PoliceBackendContext, alertId: string, at: SimMillis): Step {
  const alert = context.alerts[alertId];
  if (alert === undefined || alert.status === 'closed') return NOTHING;
  const counters = context.counters;
  return {
    context: {
      alerts: { ...context.alerts, [alertId]: { ...alert, status: 'closed', closedAt: at } },
      counters: { ...counters, alertsOpen: counters.alertsOpen - 1, alertsClosed: counters.alertsClosed + 1 },
    },
    effects: [],
  };
}

// ---------------------------------------------------------------- beacons

/**
 * Officer installed a beacon: store it (a re-registration replaces the
 * address, e.g. a beacon moved), confirm with `beacon.address`, and ask the
 * app backend to monitor it. A redelivered register therefore re-confirms and
 * re-sends the enable, which the app backend treats as a no-op.
 */
export function beaconRegistered(context: PoliceBackendContext, msg: BeaconRegister, at: SimMillis, replyTo: string | undefined, corr: string): Step {
  const beacon: StoredBeacon = { address: msg.address, installedAt: at, enabled: true, enableResends: 0 };
  const effects: Effect[] = [...reply(replyTo, corr, 'beacon.address', beaconAddressCodec.encode({ beaconId: msg.beaconId, address: msg.address })), control(context, 'monitoring.enable', msg.beaconId)];
  let timers = context.timers;
  const resend = resendDelay(context.input, 0);
  if (resend !== undefined) {
    const name = timerName('enable', msg.beaconId);
    timers = withTimer(timers, name, at + resend);
    effects.push(timerSet(name, at + resend));
  }
  return { context: { beacons: { ...context.beacons, [msg.beaconId]: beacon }, timers }, effects };
}

/** Resend timer fired: re-send the enable while the beacon stays enabled, backing off (stale firings ignored). */
export function enableTimerFired(context: PoliceBackendContext, beaconId: string, at: SimMillis): Step {
  const name = timerName('enable', beaconId);
  const deadline = context.timers[name];
  const beacon = context.beacons[beaconId];
  if (deadline === undefined || at < deadline) return NOTHING;
  const resends = (beacon?.enableResends ?? 0) + 1;
  const next = resendDelay(context.input, resends);
  if (beacon === undefined || !beacon.enabled || next === undefined) return { context: { timers: withoutTimer(context.timers, name) }, effects: [] };
  return {
    context: { beacons: { ...context.beacons, [beaconId]: { ...beacon, enableResends: resends } }, timers: withTimer(context.timers, name, at + next) },
    effects: [control(context, 'monitoring.enable', beaconId), timerSet(name, at + next)],
  };
}

/**
 * Officer's `monitoring.disable { beaconId }` on our inbox. There is no
 * `beacon.unregister` codec yet, so this message doubles as the officer's
 * "stop monitoring this beacon" command: the beacon is marked disabled (its
 * address stays, old alerts must remain resolvable) and the same message is
 * forwarded to the app backend's control topic. An already disabled beacon
 * is forwarded again (idempotent there; covers a lost first copy).
 */
export function beaconDisabled(context: PoliceBackendContext, beaconId: string): Step {
  const beacon = context.beacons[beaconId];
  if (beacon === undefined) return unknownBeacon(context, 'monitoring.disable', beaconId);
  const name = timerName('enable', beaconId);
  const effects: Effect[] = [control(context, 'monitoring.disable', beaconId)];
  let timers = context.timers;
  if (timers[name] !== undefined) {
    timers = withoutTimer(timers, name);
    effects.push({ type: 'timer.cancel', name });
  }
  return { context: { beacons: { ...context.beacons, [beaconId]: { ...beacon, enabled: false } }, timers }, effects };
}

/** Officer asks where a beacon is; an unknown beacon gets no reply (nothing to disclose) and is counted. */
export function beaconResolved(context: PoliceBackendContext, beaconId: string, replyTo: string | undefined, corr: string): Step {
  const beacon = context.beacons[beaconId];
  if (beacon === undefined) return unknownBeacon(context, 'beacon.resolve', beaconId);
  return {
    context: { counters: { ...context.counters, resolves: context.counters.resolves + 1 } },
    effects: reply(replyTo, corr, 'beacon.address', beaconAddressCodec.encode({ beaconId, address: beacon.address })),
  };
}

function unknownBeacon(context: PoliceBackendContext, command: string, beaconId: string): Step {
  return {
    context: { counters: { ...context.counters, unknownBeacon: context.counters.unknownBeacon + 1 } },
    effects: [{ type: 'log', level: 'warn', msg: `${command}: unknown beacon`, fields: { beaconId } }],
  };
}
