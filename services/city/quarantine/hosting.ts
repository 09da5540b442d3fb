/**
 * The quarantine roles hosted across processes (`tracecity host --scenario
 * quarantine`, issue 3): which actors a host runs, with what protocol timing,
 * where the simulated air places them, and the operators' actions at start
 * (the health authority quarantines households, officers register beacons).
 *
 * Every host of a run derives the same per-household secrets and homes from
 * (`--seed`, `--households`), so the app backend, the health authority and
 * the households agree on SK_DP3T / SK_beacon without exchanging them, and
 * the simulated air places every radio identically.
 */
import type { Bus, Logger, Scheduler, TimerHandle } from '../../../actors/ports.ts';
import type { HealthAuthorityInput } from '../../../actors/quarantine/health-authority.ts';
import type { QuarantinePhoneInput } from '../../../actors/quarantine/phone.ts';
import type { PoliceBackendInput } from '../../../actors/quarantine/police-backend.ts';
import type { CryptoSuite } from '../../../protocol/crypto/suite.ts';
import { MisuseError } from '../../../protocol/errors.ts';
import { encodeEnvelope, ENVELOPE_VERSION } from '../../../protocol/wire/envelope.ts';
import { inboxTopic } from '../../../protocol/wire/topics.ts';
import type { Position } from '../../../hardware/sim/propagation.ts';
import type { ActorSpec, Host } from '../../host/host.ts';
import { seedBytes } from '../demo-scenario.ts';
import { HEALTH_AUTHORITY_ID, POLICE_ID, backendSpecs, homeOf, householdSecrets, householdSpecs, type QuarantineProtocol } from './actors.ts';
import { beaconIdOf, phoneIdOf, type HouseholdPlan } from './plan.ts';

export const QUARANTINE_HOST_ROLES = ['app-backend', 'police-backend', 'health-authority', 'beacon', 'phone'] as const;
export type QuarantineHostRole = (typeof QUARANTINE_HOST_ROLES)[number];

/** `app-backend`, `beacon:3`, `phone:0-4` (household ranges, inclusive). */
export interface QuarantineSelection {
  readonly role: QuarantineHostRole;
  readonly from: number;
  readonly to: number;
}

/** Inclusive household range. */
export interface HouseholdRange {
  readonly from: number;
  readonly to: number;
}

export interface QuarantineHosting {
  readonly seed: number;
  /** Households in the layout (homes on a grid); all hosts must agree. */
  readonly households: number;
  readonly protocol: QuarantineProtocol;
  /** Phone: re-send an unacknowledged batch after this long, ms (undefined: actors.ts default). */
  readonly ackTimeoutMs: number | undefined;
  /** Health authority registration retry and police monitoring.enable resend, ms (undefined: actors.ts defaults). */
  readonly retryMs: number | undefined;
  /** Households the health authority quarantines (and officers register) at start; undefined = none. */
  readonly quarantineAtStart: HouseholdRange | undefined;
  /** Officers register the beacons this long after the police host starts, ms. */
  readonly registerDelayMs: number;
  /** Length of the quarantines started at start, ms. */
  readonly quarantineMs: number;
}

const DAY = 24 * 60 * 60_000;

/** Parse the `--quarantine-at-start [range]` flag value: true = every household, `N` or `N-M`. */
export function householdRange(value: true | string, households: number): HouseholdRange {
  if (value === true) return { from: 0, to: households - 1 };
  const m = /^(\d+)(?:-(\d+))?$/.exec(value.trim());
  if (m === null) throw new MisuseError('--quarantine-at-start', `expected N or N-M, got ${JSON.stringify(value)}`);
  const from = Number(m[1]);
  const to = Number(m[2] ?? m[1]);
  if (to < from || to >= households) throw new MisuseError('--quarantine-at-start', `range ${value} is empty or outside --households ${households}`);
  return { from, to };
}

/**
 * householdSpecs reads only the ids of a plan; hosted households have no
 * scripted misbehaviour (plan.ts is being extended elsewhere, hence the
 * narrowing cast rather than a full literal).
 */
function planOf(index: number): HouseholdPlan {
  const ids: Pick<HouseholdPlan, 'index' | 'beaconId' | 'phoneId'> = { index, beaconId: beaconIdOf(index), phoneId: phoneIdOf(index) };
  return ids as HouseholdPlan;
}

function withInput<T>(spec: ActorSpec, patch: { readonly [K in keyof T]?: T[K] | undefined }): ActorSpec {
  const defined = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
  return { ...spec, input: { ...(spec.input as T), ...defined } };
}

/** The actor specs of this host's selection, with the hosting's timing applied. */
export function quarantineHostSpecs(crypto: CryptoSuite, h: QuarantineHosting, selections: readonly QuarantineSelection[]): ActorSpec[] {
  const backends = new Map(backendSpecs(crypto, h.protocol).map((s) => [s.role, s]));
  const seed = seedBytes(h.seed);
  const specs: ActorSpec[] = [];
  for (const sel of selections) {
    if (sel.role === 'beacon' || sel.role === 'phone') {
      for (let i = sel.from; i <= sel.to; i++) {
        if (i >= h.households) throw new MisuseError('--actors', `household ${i} is outside --households ${h.households}`);
        const [beacon, phone] = householdSpecs(crypto, h.protocol, planOf(i), householdSecrets(seed, i));
        if (sel.role === 'beacon' && beacon !== undefined) specs.push(beacon);
        if (sel.role === 'phone' && phone !== undefined) specs.push(withInput<QuarantinePhoneInput>(phone, { ackTimeoutMs: h.ackTimeoutMs }));
      }
      continue;
    }
    const spec = backends.get(sel.role);
    if (spec === undefined) throw new MisuseError('--actors', `no ${sel.role} in the quarantine scenario`);
    if (sel.role === 'police-backend') specs.push(withInput<PoliceBackendInput>(spec, { controlResendMs: h.retryMs }));
    else if (sel.role === 'health-authority') specs.push(withInput<HealthAuthorityInput>(spec, { retryMs: h.retryMs }));
    else specs.push(spec);
  }
  const keys = specs.map((s) => `${s.role}/${s.id}`);
  const twice = keys.find((k, i) => keys.indexOf(k) !== i);
  if (twice !== undefined) throw new MisuseError('--actors', `${twice} is selected twice`);
  return specs;
}

/** Homes from homeOf(); a phone sits 3 m from its household's beacon. Backends have no radio. */
export function quarantinePositions(h: QuarantineHosting): (id: string) => Position | undefined {
  return (id) => {
    const m = /^q([bp])(\d+)$/.exec(id);
    if (m === null) return undefined;
    const index = Number(m[2]);
    if (index >= h.households) return undefined;
    const home = homeOf(h.protocol, h.households, index);
    return m[1] === 'b' ? home : { ...home, x: home.x + 3 };
  };
}

/**
 * Operators at start, on the hosts that run the roles concerned: the health
 * authority quarantines the households of `quarantineAtStart` at once; after
 * `registerDelayMs` officers register their beacons with the police backend
 * (`beacon.register` on its inbox, as run.ts does). Returns a cancel function.
 */
export function startOperators(host: Host, bus: Bus, scheduler: Scheduler, h: QuarantineHosting, specs: readonly ActorSpec[], logger: Logger): () => void {
  const range = h.quarantineAtStart;
  if (range === undefined) return () => undefined;
  const runs = (role: string): boolean => specs.some((s) => s.role === role);
  const seed = seedBytes(h.seed);
  const start = scheduler.now();
  if (runs('health-authority')) {
    for (let i = range.from; i <= range.to; i++) {
      const s = householdSecrets(seed, i);
      host.sendTo('health-authority', HEALTH_AUTHORITY_ID, {
        type: 'ha.quarantine', at: start, sk: s.sk, tPast: start - DAY, beaconId: beaconIdOf(i), beaconKey: s.beaconKey, endsAt: start + h.quarantineMs,
      });
    }
  }
  if (!runs('police-backend')) return () => undefined;
  const handle: TimerHandle = scheduler.at(start + h.registerDelayMs, () => {
    for (let i = range.from; i <= range.to; i++) {
      const beaconId = beaconIdOf(i);
      const bytes = encodeEnvelope({
        v: ENVELOPE_VERSION,
        type: 'beacon.register',
        id: `officer.${beaconId}.${scheduler.now()}`,
        from: 'host/officer',
        at: scheduler.now(),
        body: { beaconId, address: `House ${i}, Quarantine Street` },
      });
      bus.publish(inboxTopic('police-backend', POLICE_ID), bytes, { qos: 1 }).catch((err: unknown) => logger.error('officer publish failed', { error: String(err) }));
    }
  });
  return () => scheduler.cancel(handle);
}
