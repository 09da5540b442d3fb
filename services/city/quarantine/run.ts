/**
 * The quarantine city, one process, virtual time (issue 3): households with
 * a SmartBeacon and the patient's phone, the three backends over a real bus,
 * the plan's violations and outages replayed as events, and the police
 * backend's alerts scored against the plan.
 */
import type { Bus, Logger, Store } from '../../../actors/ports.ts';
import type { AppBackendContext } from '../../../actors/quarantine/app-backend-logic.ts';
import type { PoliceBackendContext } from '../../../actors/quarantine/police-backend-logic.ts';
import type { QuarantinePhoneContext } from '../../../actors/quarantine/phone.ts';
import { SeededRng } from '../../../protocol/crypto/drbg.ts';
import type { CryptoSuite } from '../../../protocol/crypto/suite.ts';
import { quarantineMessages } from '../../../protocol/quarantine/messages.ts';
import { encodeEnvelope } from '../../../protocol/wire/envelope.ts';
import { inboxTopic } from '../../../protocol/wire/topics.ts';
import { SimAir } from '../../../hardware/sim/medium.ts';
import type { Position } from '../../../hardware/sim/propagation.ts';
import { openBus, type BusChoice } from '../../bus/open.ts';
import { Host } from '../../host/host.ts';
import { VirtualScheduler } from '../../time/virtual.ts';
import { DEMO_T0_MS, seedBytes } from '../demo-scenario.ts';
import { APP_BACKEND_ID, HEALTH_AUTHORITY_ID, POLICE_ID, awayOf, backendSpecs, homeOf, householdSecrets, householdSpecs, type QuarantineProtocol } from './actors.ts';
import { adversaryRelayCodec } from '../../../actors/quarantine/adversary.ts';
import { adversaryCounters, setUpAdversaries, type AdversaryRuntime, type FloodedPhoneSizes } from './adversaries.ts';
import { attacksOn, planCity, type AttacksConfig, type HouseholdPlan, type QuarantineCityConfig } from './plan.ts';
import { clipPlans, scoreAlerts, scoreAttacks, type AlertScore, type AttackScore, type ObservedAlert } from './score.ts';

/** Indoor propagation for the city: n = 3 keeps a beacon's range to its own and the next houses. */
export const CITY_PROPAGATION = { pathLossExponent: 3 } as const;

export interface QuarantineRunOptions {
  readonly city: QuarantineCityConfig;
  readonly protocol: QuarantineProtocol;
  readonly bus: BusChoice;
  readonly store: Store;
  readonly crypto: CryptoSuite;
  readonly logger: Logger;
  readonly onProgress?: (fraction: number, simNow: number) => void;
  /** Abort: stop at the current simulated time and summarise what was simulated (Ctrl-C). */
  readonly signal?: AbortSignal;
}

export interface QuarantineSummary {
  readonly seed: number;
  readonly simulated: { readonly startMs: number; readonly days: number };
  /** Only when the run was aborted: where it stopped (scores cover the plan up to there). */
  readonly interrupted?: { readonly atMs: number; readonly simulatedDays: number };
  readonly households: { readonly total: number; readonly violators: number; readonly flakyPhones: number; readonly beaconsLosingPower: number };
  readonly score: AlertScore;
  readonly appBackend: Readonly<Record<string, unknown>>;
  readonly police: Readonly<Record<string, number>>;
  readonly phones: Readonly<Record<string, number>>;
  readonly air: Readonly<Record<string, number>>;
  readonly bus: { readonly sent: number; readonly received: number; readonly rejected: number };
  /** Only when an attack is switched on (summaries without attacks are unchanged). */
  readonly adversaries?: QuarantineAdversarySummary;
}

export interface QuarantineAdversarySummary {
  readonly config: AttacksConfig;
  readonly score: AttackScore;
  /** Summed counters of the adversary devices, by kind. */
  readonly devices: Readonly<Record<string, Readonly<Record<string, number>>>>;
  /** Largest context sizes of flooded phones while flooded. */
  readonly floodedPhones: FloodedPhoneSizes;
}

const MINUTE = 60_000;

export async function runQuarantineCity(o: QuarantineRunOptions): Promise<QuarantineSummary> {
  const t0 = DEMO_T0_MS;
  const seed = seedBytes(o.city.seed);
  const plans = planCity(o.city, t0, seed);
  const end = t0 + Math.round(o.city.days * 24 * 60 * MINUTE);
  const scheduler = new VirtualScheduler(t0);
  const positions = new Map<string, Position>();
  plans.forEach((plan, i) => {
    const home = homeOf(o.protocol, plans.length, i);
    positions.set(plan.beaconId, home);
    positions.set(plan.phoneId, { ...home, x: home.x + 3 });
  });
  // Every move in the city is announced (replayPlan and the adversaries call air.positionsChanged()),
  // so the air need not re-read positions every simulated second on its own, nor allow for
  // unannounced movement (slack 0: a beacon is armed only for scanners that could hear it).
  const air = new SimAir({ scheduler, rng: new SeededRng(seed).fork('air'), propagation: CITY_PROPAGATION, positions: (id) => positions.get(id), gridMaxAgeMs: Number.POSITIVE_INFINITY, gridSlackM: 0 });
  const opened = await openBus(o.bus, 'quarantine-city', o.logger);
  const bus: Bus = opened.bus;
  const messages = quarantineMessages();
  if (attacksOn(o.city.attacks)) messages.register(adversaryRelayCodec);
  const host = new Host({ scheduler, bus, messages, logger: o.logger, store: o.store, radioFor: (spec) => air.attach(spec.id) });
  scheduler.addQuiescence(() => host.idle(), () => host.activity());
  scheduler.addQuiescence(() => bus.idle());
  try {
    for (const spec of backendSpecs(o.crypto, o.protocol)) await host.spawn(spec);
    const secrets = plans.map((_, i) => householdSecrets(seed, i));
    for (const [i, plan] of plans.entries()) for (const spec of householdSpecs(o.crypto, o.protocol, plan, secrets[i]!)) await host.spawn(spec);
    setUp(o, plans, secrets, host, bus, scheduler, t0, end);
    const adversaries = await setUpAdversaries({ crypto: o.crypto, protocol: o.protocol, plans, attacks: o.city.attacks, seed, t0, host, scheduler, positions, air });
    replayPlan(plans, host, scheduler, positions, air);
    const run = await scheduler.runUntil(end, (now) => o.onProgress?.((now - t0) / (end - t0), now), o.signal);
    await host.stop();
    await bus.idle();
    const stoppedAt = run.aborted ? scheduler.now() : undefined;
    return summarise(o, stoppedAt === undefined ? plans : clipPlans(plans, stoppedAt), host, air, adversaries, stoppedAt);
  } finally {
    await opened.close();
  }
}

/** t0: the health authority quarantines every patient; t0 + 30 s: officers register the beacons. */
function setUp(
  o: QuarantineRunOptions,
  plans: readonly HouseholdPlan[],
  secrets: readonly { sk: Uint8Array; beaconKey: Uint8Array }[],
  host: Host,
  bus: Bus,
  scheduler: VirtualScheduler,
  t0: number,
  end: number,
): void {
  for (const [i, plan] of plans.entries()) {
    const s = secrets[i]!;
    host.sendTo('health-authority', HEALTH_AUTHORITY_ID, { type: 'ha.quarantine', at: t0, sk: s.sk, tPast: t0 - 24 * 60 * MINUTE, beaconId: plan.beaconId, beaconKey: s.beaconKey, endsAt: end });
  }
  scheduler.at(t0 + 30_000, () => {
    for (const plan of plans) {
      const bytes = encodeEnvelope({
        v: 1,
        type: 'beacon.register',
        id: `officer.${plan.beaconId}`,
        from: 'host/officer',
        at: scheduler.now(),
        body: { beaconId: plan.beaconId, address: `House ${plan.index}, Quarantine Street` },
      });
      void bus.publish(inboxTopic('police-backend', POLICE_ID), bytes, { qos: 1 }).catch((err: unknown) => o.logger.error('officer publish failed', { error: String(err) }));
    }
  });
}

/** Violations move the phone away and back; outages switch the phone or beacon off and on. */
function replayPlan(plans: readonly HouseholdPlan[], host: Host, scheduler: VirtualScheduler, positions: Map<string, Position>, air: SimAir): void {
  for (const [i, plan] of plans.entries()) {
    const home = positions.get(plan.phoneId);
    for (const [j, a] of plan.absences.entries()) {
      // phone-at-home: the patient leaves, the phone does not (undetectable by design).
      if (plan.absenceAttacks?.[j] === 'phone-at-home') continue;
      scheduler.at(a.start, () => {
        positions.set(plan.phoneId, awayOf(i));
        air.positionsChanged();
      });
      scheduler.at(a.end, () => {
        if (home !== undefined) positions.set(plan.phoneId, home);
        air.positionsChanged();
      });
    }
    for (const out of plan.outages) {
      const type = `phone.${out.kind}`;
      scheduler.at(out.start, () => host.sendTo('phone', plan.phoneId, { type, at: scheduler.now(), on: false }));
      scheduler.at(out.end, () => host.sendTo('phone', plan.phoneId, { type, at: scheduler.now(), on: true }));
    }
    for (const out of plan.beaconOutages) {
      scheduler.at(out.start, () => host.sendTo('beacon', plan.beaconId, { type: 'beacon.power', at: scheduler.now(), on: false }));
      scheduler.at(out.end, () => host.sendTo('beacon', plan.beaconId, { type: 'beacon.power', at: scheduler.now(), on: true }));
    }
  }
}

function summarise(o: QuarantineRunOptions, plans: readonly HouseholdPlan[], host: Host, air: SimAir, adversaries: AdversaryRuntime, stoppedAt: number | undefined): QuarantineSummary {
  const police = host.snapshotOf('police-backend', POLICE_ID).context as PoliceBackendContext;
  const app = host.snapshotOf('app-backend', APP_BACKEND_ID).context as AppBackendContext;
  const alerts: ObservedAlert[] = Object.values(police.alerts).map((a) => ({ beaconId: a.beaconId, windowStart: a.windowStart, windowEnd: a.windowEnd, receivedAt: a.receivedAt }));
  const phones: Record<string, number> = {};
  for (const plan of plans) {
    const c = (host.snapshotOf('phone', plan.phoneId).context as QuarantinePhoneContext).counters;
    for (const [k, v] of Object.entries(c) as [string, number][]) phones[k] = (phones[k] ?? 0) + v;
  }
  const { lost, ...rest } = air.counters;
  const airFlat: Record<string, number> = { ...rest };
  for (const [cause, n] of Object.entries(lost)) airFlat[`lost.${cause}`] = n;
  const windowMs = o.protocol.windowMin * MINUTE;
  const toleranceMs = o.protocol.toleranceS * 1000;
  const adversary: QuarantineAdversarySummary | undefined = attacksOn(o.city.attacks)
    ? { config: o.city.attacks, score: scoreAttacks(plans, alerts, windowMs, toleranceMs), devices: adversaryCounters(host, adversaries), floodedPhones: adversaries.flooded }
    : undefined;
  return {
    seed: o.city.seed,
    simulated: { startMs: DEMO_T0_MS, days: o.city.days },
    ...(stoppedAt !== undefined ? { interrupted: { atMs: stoppedAt, simulatedDays: Math.round(((stoppedAt - DEMO_T0_MS) / (24 * 60 * MINUTE)) * 1000) / 1000 } } : {}),
    households: {
      total: plans.length,
      violators: plans.filter((p) => p.violator).length,
      flakyPhones: plans.filter((p) => p.flaky).length,
      beaconsLosingPower: plans.filter((p) => p.beaconOutages.length > 0).length,
    },
    score: scoreAlerts(plans, alerts, windowMs, toleranceMs),
    appBackend: { ...app.counters },
    police: { ...police.counters },
    phones,
    air: airFlat,
    bus: { sent: host.stats.sent, received: host.stats.received, rejected: host.stats.rejectedEnvelopes + host.stats.rejectedBodies },
    ...(adversary !== undefined ? { adversaries: adversary } : {}),
  };
}
