/**
 * The health authority of the quarantine extension (issue 3; topics and
 * durability in docs/decisions/0002). When a patient is diagnosed the city
 * (operator) sends `ha.quarantine`; the authority registers the quarantine
 * with the app backend (`quarantine.register` on the app backend's
 * quarantine topic, which only this role may write) and keeps re-sending it
 * until the app backend confirms with `quarantine.registered` on our inbox.
 * `ha.release` ends a quarantine early (`quarantine.end`).
 *
 * State chart (top level; each quarantine's state lives in context because
 * the authority handles many at once):
 *
 *   idle ──host.start──▶ running ──host.stop──▶ stopped (final)
 *   per beacon (context.quarantines[beaconId]):
 *     ∅ ──ha.quarantine──▶ pending ──quarantine.registered──▶ registered
 *     pending ──timer.register:<beacon>──▶ pending (re-sent, re-armed)
 *     pending ──timer.register:<beacon> at/after endsAt──▶ ∅ (abandoned)
 *     pending | registered ──ha.release──▶ ∅ (quarantine.end sent)
 *
 * Why re-send: the bus gives no end-to-end guarantee (a broker may drop QoS 1
 * messages beyond its queue limit), and the app backend acknowledges only
 * once the registration is applied (journaled). It re-acks a redelivered
 * registration without touching its record, so resending is safe. It refuses
 * a registration whose end has passed (silently, towards us), so the retry
 * stops at endsAt instead of running forever.
 *
 * Data minimisation: SK_DP3T and SK_beacon are kept only while pending (they
 * are needed to re-send); a confirmed record keeps beacon id and times only.
 *
 * Timers: one `register:<beaconId>` per pending quarantine, taken by the
 * wildcard `timer.*` transition (scheme of app-backend.ts); a firing before
 * its recorded deadline, or for a timer no longer recorded, is stale.
 */
import { createBackendMachine } from './backend-machine.ts';
import type { Effect, HostEvent, MessageEvent, TimerEvent } from '../effects.ts';
import { timerSet, withTimer, withoutTimer } from '../effects.ts';
import type { SimMillis } from '../ports.ts';
import { quarantineEndCodec, quarantineRegisterCodec, type BeaconRef, type QuarantineRegister } from '../../protocol/quarantine/messages.ts';

export interface HealthAuthorityInput {
  readonly id: string;
  /** The app backend's quarantine topic (`app-backend/<id>/quarantine`). */
  readonly appBackendQuarantineTopic: string;
  /** Our inbox: replyTo of every registration, where `quarantine.registered` arrives. */
  readonly inboxTopic: string;
  /** Resend period of an unconfirmed registration, ms. */
  readonly retryMs: number;
}

export interface PendingQuarantine {
  readonly status: 'pending';
  /** The registration as sent (re-sent unchanged, so the app backend sees a redelivery). */
  readonly register: QuarantineRegister;
  readonly requestedAt: number;
  /** Sends so far, first one included. */
  readonly attempts: number;
}

export interface RegisteredQuarantine {
  readonly status: 'registered';
  readonly endsAt: number;
  readonly registeredAt: number;
}

export type QuarantineState = PendingQuarantine | RegisteredQuarantine;

export interface HealthAuthorityCounters {
  /** Confirmations received for pending registrations. */
  readonly registered: number;
  /** Registrations waiting for confirmation now (a gauge). */
  readonly pending: number;
  /** Re-sends of unconfirmed registrations. */
  readonly resent: number;
  /** Pending registrations given up because their quarantine ended first. */
  readonly abandoned: number;
}

export interface HealthAuthorityContext {
  readonly input: HealthAuthorityInput;
  /** By beaconId: one quarantine per household beacon at a time. */
  readonly quarantines: Readonly<Record<string, QuarantineState>>;
  readonly counters: HealthAuthorityCounters;
  readonly timers: Readonly<Record<string, SimMillis>>;
}

/** Operator: a patient was diagnosed; quarantine them with their household beacon. */
export interface HaQuarantineEvent extends QuarantineRegister {
  readonly type: 'ha.quarantine';
  readonly at: SimMillis;
}

/** Operator: end a quarantine before its endsAt. */
export interface HaReleaseEvent extends BeaconRef {
  readonly type: 'ha.release';
  readonly at: SimMillis;
}

export type HealthAuthorityEvent = HostEvent | TimerEvent | HaQuarantineEvent | HaReleaseEvent | MessageEvent<'quarantine.registered', BeaconRef>;

interface Step {
  readonly context: Partial<HealthAuthorityContext>;
  readonly effects: readonly Effect[];
}

const NOTHING: Step = { context: {}, effects: [] };

export const timerName = (beaconId: string): string => `register:${beaconId}`;

function parseTimerName(name: string): string | undefined {
  return name.startsWith('register:') ? name.slice('register:'.length) : undefined;
}

export function initialContext(input: HealthAuthorityInput): HealthAuthorityContext {
  return { input, quarantines: {}, counters: { registered: 0, pending: 0, resent: 0, abandoned: 0 }, timers: {} };
}

function sendRegister(context: HealthAuthorityContext, msg: QuarantineRegister): Effect {
  return {
    type: 'bus.send',
    topic: context.input.appBackendQuarantineTopic,
    msgType: 'quarantine.register',
    body: quarantineRegisterCodec.encode(msg),
    qos: 1,
    replyTo: context.input.inboxTopic,
  };
}

function warn(msg: string, beaconId: string): Step {
  return { context: {}, effects: [{ type: 'log', level: 'warn', msg, fields: { beaconId } }] };
}

function without(quarantines: HealthAuthorityContext['quarantines'], beaconId: string): Record<string, QuarantineState> {
  const next = { ...quarantines };
  delete next[beaconId];
  return next;
}

export function quarantine(context: HealthAuthorityContext, event: HaQuarantineEvent): Step {
  // Operator input is checked like a message (the codec's field rules): a bad command is refused, never thrown.
  const checked = quarantineRegisterCodec.decode({ sk: event.sk, tPast: event.tPast, beaconId: event.beaconId, beaconKey: event.beaconKey, endsAt: event.endsAt });
  if (!checked.ok) return { context: {}, effects: [{ type: 'log', level: 'warn', msg: `ha.quarantine refused: ${checked.detail}`, fields: { field: checked.field ?? '' } }] };
  const msg = checked.value;
  if (msg.endsAt <= event.at) return warn('ha.quarantine refused: quarantine already ended', msg.beaconId);
  // The app backend binds a beacon to one quarantine; a second one must wait for ha.release.
  if (context.quarantines[msg.beaconId] !== undefined) return warn('ha.quarantine refused: beacon already quarantined', msg.beaconId);
  // Copies: the caller's arrays must not alias our (persisted) context.
  const register: QuarantineRegister = { ...msg, sk: new Uint8Array(msg.sk), beaconKey: new Uint8Array(msg.beaconKey) };
  const name = timerName(msg.beaconId);
  const deadline = event.at + context.input.retryMs;
  return {
    context: {
      quarantines: { ...context.quarantines, [msg.beaconId]: { status: 'pending', register, requestedAt: event.at, attempts: 1 } },
      counters: { ...context.counters, pending: context.counters.pending + 1 },
      timers: withTimer(context.timers, name, deadline),
    },
    effects: [sendRegister(context, register), timerSet(name, deadline)],
  };
}

/** Confirmation: pending → registered (keys dropped). Duplicates and strays are ignored. */
export function confirmed(context: HealthAuthorityContext, beaconId: string, at: SimMillis): Step {
  const q = context.quarantines[beaconId];
  if (q === undefined || q.status !== 'pending') return NOTHING;
  const name = timerName(beaconId);
  return {
    context: {
      quarantines: { ...context.quarantines, [beaconId]: { status: 'registered', endsAt: q.register.endsAt, registeredAt: at } },
      counters: { ...context.counters, pending: context.counters.pending - 1, registered: context.counters.registered + 1 },
      timers: withoutTimer(context.timers, name),
    },
    effects: [{ type: 'timer.cancel', name }],
  };
}

export function retryFired(context: HealthAuthorityContext, beaconId: string, at: SimMillis): Step {
  const name = timerName(beaconId);
  const deadline = context.timers[name];
  if (deadline === undefined || at < deadline) return NOTHING;
  const q = context.quarantines[beaconId];
  if (q === undefined || q.status !== 'pending') return { context: { timers: withoutTimer(context.timers, name) }, effects: [] };
  const counters = context.counters;
  if (at >= q.register.endsAt) {
    return {
      context: {
        quarantines: without(context.quarantines, beaconId),
        counters: { ...counters, pending: counters.pending - 1, abandoned: counters.abandoned + 1 },
        timers: withoutTimer(context.timers, name),
      },
      effects: [{ type: 'log', level: 'warn', msg: 'quarantine ended before the app backend confirmed it', fields: { beaconId } }],
    };
  }
  const next = at + context.input.retryMs;
  return {
    context: {
      quarantines: { ...context.quarantines, [beaconId]: { ...q, attempts: q.attempts + 1 } },
      counters: { ...counters, resent: counters.resent + 1 },
      timers: withTimer(context.timers, name, next),
    },
    effects: [sendRegister(context, q.register), timerSet(name, next)],
  };
}

/**
 * Release: `quarantine.end` to the app backend and the record forgotten. A
 * pending registration is released too (and its retry cancelled): it may
 * already have been applied even though the confirmation is not back.
 */
export function release(context: HealthAuthorityContext, beaconId: string): Step {
  const q = context.quarantines[beaconId];
  if (q === undefined) return warn('ha.release: no quarantine for this beacon', beaconId);
  const effects: Effect[] = [
    { type: 'bus.send', topic: context.input.appBackendQuarantineTopic, msgType: 'quarantine.end', body: quarantineEndCodec.encode({ beaconId }), qos: 1 },
  ];
  const name = timerName(beaconId);
  let timers = context.timers;
  if (timers[name] !== undefined) {
    timers = withoutTimer(timers, name);
    effects.push({ type: 'timer.cancel', name });
  }
  const pending = context.counters.pending - (q.status === 'pending' ? 1 : 0);
  return { context: { quarantines: without(context.quarantines, beaconId), counters: { ...context.counters, pending }, timers }, effects };
}

function reduce(context: HealthAuthorityContext, event: HealthAuthorityEvent): Step {
  switch (event.type) {
    case 'ha.quarantine':
      return quarantine(context, event);
    case 'ha.release':
      return release(context, event.beaconId);
    case 'msg.quarantine.registered':
      return confirmed(context, event.body.beaconId, event.at);
    default: {
      if (!event.type.startsWith('timer.')) return NOTHING;
      const beaconId = parseTimerName(event.type.slice('timer.'.length));
      return beaconId === undefined ? NOTHING : retryFired(context, beaconId, event.at);
    }
  }
}

export function createHealthAuthorityMachine() {
  return createBackendMachine<HealthAuthorityInput, HealthAuthorityContext, HealthAuthorityEvent>({
    id: 'health-authority',
    initialContext,
    reduce,
    handles: ['ha.quarantine', 'ha.release', 'msg.quarantine.registered', 'timer.*'],
  });
}

export type HealthAuthorityMachine = ReturnType<typeof createHealthAuthorityMachine>;
