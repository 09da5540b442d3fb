/**
 * The offline-phone end-to-end rig (test/city/offline-phone.test.ts): the
 * quarantine city of services/city/quarantine/run.ts reduced to two
 * households, with probes on the tokens topic and the phones' inboxes.
 */
import { WINDOW_CHECK_AFTER_MS } from '../../actors/quarantine/app-backend-logic.ts';
import type { AppBackendContext } from '../../actors/quarantine/app-backend-state.ts';
import type { PoliceBackendContext, StoredAlert } from '../../actors/quarantine/police-backend-logic.ts';
import type { QuarantinePhoneContext, QuarantinePhoneCounters } from '../../actors/quarantine/phone.ts';
import { SeededRng } from '../../protocol/crypto/drbg.ts';
import { FERNET_TIMESTAMP_BYTES, FERNET_VERSION_BYTES } from '../../protocol/beacon/fernet.ts';
import { quarantineMessages, tokensAckCodec, tokensForwardCodec, type ForwardedToken } from '../../protocol/quarantine/messages.ts';
import { decodeEnvelope, encodeEnvelope } from '../../protocol/wire/envelope.ts';
import { inboxTopic, tokensTopic } from '../../protocol/wire/topics.ts';
import { SimAir } from '../../hardware/sim/medium.ts';
import type { Position } from '../../hardware/sim/propagation.ts';
import { MemoryHub } from '../../services/bus/memory.ts';
import { DEMO_T0_MS, seedBytes } from '../../services/city/demo-scenario.ts';
import { APP_BACKEND_ID, HEALTH_AUTHORITY_ID, POLICE_ID, backendSpecs, homeOf, householdSecrets, householdSpecs, quarantineProtocolSchema } from '../../services/city/quarantine/actors.ts';
import { beaconIdOf, phoneIdOf, type HouseholdPlan } from '../../services/city/quarantine/plan.ts';
import { CITY_PROPAGATION } from '../../services/city/quarantine/run.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { Host } from '../../services/host/host.ts';
import { silentLogger } from '../../services/log.ts';
import { MemoryStore } from '../../services/store/memory.ts';
import { VirtualScheduler } from '../../services/time/virtual.ts';

export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const T0 = DEMO_T0_MS;
/** The city's protocol defaults: 6-min window, 60-s tolerance, 5-min forwarding, a token a minute. */
export const PROTOCOL = quarantineProtocolSchema.parse({});
export const WINDOW_MS = PROTOCOL.windowMin * MINUTE;
export const TOLERANCE_MS = PROTOCOL.toleranceS * SECOND;
export const FORWARD_PERIOD_MS = PROTOCOL.forwardPeriodS * SECOND;
/** Token freshness bound, whole seconds (Fernet timestamps are Unix seconds). */
export const TTL_S = (WINDOW_MS + TOLERANCE_MS) / SECOND;

export const OFFLINE = { phoneId: phoneIdOf(0), beaconId: beaconIdOf(0) } as const;
export const CONTROL = { phoneId: phoneIdOf(1), beaconId: beaconIdOf(1) } as const;
export const HOUSEHOLDS: readonly HouseholdPlan[] = [0, 1].map((index) => ({
  index,
  beaconId: beaconIdOf(index),
  phoneId: phoneIdOf(index),
  violator: false,
  flaky: false,
  absences: [],
  outages: [],
  beaconOutages: [],
}));

/** A `tokens.forward` seen on the app backend's tokens topic. */
export interface SeenForward {
  readonly at: number;
  readonly phone: string;
  readonly batch: number;
  readonly tuples: readonly ForwardedToken[];
}

/** A `tokens.ack` seen on a phone's inbox. */
export interface SeenAck {
  readonly at: number;
  readonly phone: string;
  readonly batch: number;
  readonly accepted: number;
  readonly rejected: number;
}

/** The Fernet timestamp (Unix seconds) of a presence token: bytes [1, 9), big-endian. */
export function tokenTimestampS(token: Uint8Array): number {
  const view = new DataView(token.buffer, token.byteOffset + FERNET_VERSION_BYTES, FERNET_TIMESTAMP_BYTES);
  return Number(view.getBigUint64(0));
}

/** Fresh on arrival at `at`: age in whole seconds at most window + tolerance. */
export function freshAt(tuple: ForwardedToken, at: number): boolean {
  return Math.floor(at / SECOND) - tokenTimestampS(tuple.token) <= TTL_S;
}

/**
 * Alerts the rule predicts for a phone whose last accepted batch arrived at
 * `lastArrival` and whose next valid token arrives at `nextArrival`: the
 * first window is [A, A + window], each silent window raises its alert at
 * windowEnd + tolerance and the next one starts at its end
 * (actors/quarantine/app-backend-logic.ts), and an alert is due only if its deadline passed before the
 * next valid arrival.
 */
export function predictedAlerts(beaconId: string, lastArrival: number, nextArrival: number): { beaconId: string; windowStart: number; windowEnd: number; receivedAt: number }[] {
  const out: { beaconId: string; windowStart: number; windowEnd: number; receivedAt: number }[] = [];
  for (let start = lastArrival; start + WINDOW_MS + TOLERANCE_MS < nextArrival; start += WINDOW_MS) {
    out.push({ beaconId, windowStart: start, windowEnd: start + WINDOW_MS, receivedAt: start + WINDOW_MS + TOLERANCE_MS + WINDOW_CHECK_AFTER_MS });
  }
  return out;
}

export interface City {
  readonly scheduler: VirtualScheduler;
  readonly forwards: SeenForward[];
  readonly acks: SeenAck[];
  runUntil(at: number): Promise<void>;
  /** Schedule `fn` at `at` (virtual time). */
  at(at: number, fn: () => void): void;
  network(phoneId: string, on: boolean): void;
  bluetooth(phoneId: string, on: boolean): void;
  phoneCounters(phoneId: string): QuarantinePhoneCounters;
  backendCounters(): AppBackendContext['counters'];
  alertsFor(beaconId: string): StoredAlert[];
  /** Arrival of the last batch from `phoneId` with at least one accepted token, at or before `until`. */
  lastAcceptedArrival(phoneId: string, until: number): number;
  stop(): Promise<void>;
}

/** The quarantine city of run.ts, reduced to HOUSEHOLDS, with a probe on the tokens topic and the phones' inboxes. */
export async function startCity(): Promise<City> {
  const seed = seedBytes(1);
  const scheduler = new VirtualScheduler(T0);
  const positions = new Map<string, Position>();
  HOUSEHOLDS.forEach((plan, i) => {
    const home = homeOf(PROTOCOL, HOUSEHOLDS.length, i);
    positions.set(plan.beaconId, home);
    positions.set(plan.phoneId, { ...home, x: home.x + 3 });
  });
  const air = new SimAir({ scheduler, rng: new SeededRng(seed).fork('air'), propagation: CITY_PROPAGATION, positions: (id) => positions.get(id) });
  const hub = new MemoryHub();
  const bus = hub.connect('offline-phone-city');
  const probe = hub.connect('offline-phone-probe');
  const host = new Host({ scheduler, bus, messages: quarantineMessages(), logger: silentLogger, store: new MemoryStore(), radioFor: (spec) => air.attach(spec.id) });
  scheduler.addQuiescence(() => host.idle(), () => host.activity());
  scheduler.addQuiescence(() => bus.idle());

  const forwards: SeenForward[] = [];
  const acks: SeenAck[] = [];
  await probe.subscribe(tokensTopic(APP_BACKEND_ID), (_topic, payload) => {
    const envelope = decodeEnvelope(payload);
    if (!envelope.ok || envelope.value.type !== tokensForwardCodec.type) return;
    const body = tokensForwardCodec.decode(envelope.value.body);
    if (body.ok) forwards.push({ at: scheduler.now(), phone: envelope.value.from, batch: body.value.batch, tuples: body.value.tuples });
  });
  for (const plan of HOUSEHOLDS) {
    await probe.subscribe(inboxTopic('phone', plan.phoneId), (_topic, payload) => {
      const envelope = decodeEnvelope(payload);
      if (!envelope.ok || envelope.value.type !== tokensAckCodec.type) return;
      const body = tokensAckCodec.decode(envelope.value.body);
      if (body.ok) acks.push({ at: scheduler.now(), phone: plan.phoneId, ...body.value });
    });
  }

  for (const spec of backendSpecs(nodeSuite, PROTOCOL)) await host.spawn(spec);
  for (const [i, plan] of HOUSEHOLDS.entries()) for (const spec of householdSpecs(nodeSuite, PROTOCOL, plan, householdSecrets(seed, i))) await host.spawn(spec);
  // As run.ts setUp: the health authority quarantines at t0, officers register the beacons 30 s later (monitoring.enable).
  for (const [i, plan] of HOUSEHOLDS.entries()) {
    const s = householdSecrets(seed, i);
    host.sendTo('health-authority', HEALTH_AUTHORITY_ID, { type: 'ha.quarantine', at: T0, sk: s.sk, tPast: T0 - 24 * 60 * MINUTE, beaconId: plan.beaconId, beaconKey: s.beaconKey, endsAt: T0 + 24 * 60 * MINUTE });
  }
  scheduler.at(T0 + 30 * SECOND, () => {
    for (const plan of HOUSEHOLDS) {
      const bytes = encodeEnvelope({ v: 1, type: 'beacon.register', id: `officer.${plan.beaconId}`, from: 'host/officer', at: scheduler.now(), body: { beaconId: plan.beaconId, address: `House ${plan.index}, Quarantine Street` } });
      void bus.publish(inboxTopic('police-backend', POLICE_ID), bytes, { qos: 1 });
    }
  });

  const phoneSwitch = (type: 'phone.network' | 'phone.bluetooth', phoneId: string, on: boolean): void => host.sendTo('phone', phoneId, { type, at: scheduler.now(), on });
  let stopped = false;
  return {
    scheduler,
    forwards,
    acks,
    runUntil: async (at) => {
      await scheduler.runUntil(at);
    },
    at: (at, fn) => void scheduler.at(at, fn),
    network: (phoneId, on) => phoneSwitch('phone.network', phoneId, on),
    bluetooth: (phoneId, on) => phoneSwitch('phone.bluetooth', phoneId, on),
    phoneCounters: (phoneId) => (host.snapshotOf('phone', phoneId).context as QuarantinePhoneContext).counters,
    // Only the counters: the app backend's other context is being refactored (timers, records).
    backendCounters: () => (host.snapshotOf('app-backend', APP_BACKEND_ID).context as Pick<AppBackendContext, 'counters'>).counters,
    alertsFor: (beaconId) =>
      Object.values((host.snapshotOf('police-backend', POLICE_ID).context as PoliceBackendContext).alerts)
        .filter((a) => a.beaconId === beaconId)
        .sort((a, b) => a.windowStart - b.windowStart),
    lastAcceptedArrival: (phoneId, until) => {
      const accepted = acks.filter((a) => a.phone === phoneId && a.accepted > 0 && a.at <= until);
      const last = accepted[accepted.length - 1];
      if (last === undefined) throw new Error(`${phoneId}: no accepted batch by ${until}`);
      return last.at;
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await host.stop();
      await bus.idle();
      await air.close();
      await bus.close();
      await probe.close();
    },
  };
}
