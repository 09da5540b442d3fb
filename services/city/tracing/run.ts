/**
 * One tracing protocol on the planned city (issue 5), one process, virtual
 * time: every phone a tracing-phone actor with a simulated radio in the
 * receiver-driven air (hardware/sim/windowed-air.ts), moved at its stays'
 * boundaries; the diagnosis-key server as a service on the same in-memory
 * bus; positives get a one-time code from the health authority (the
 * operator issues them at the start) at their diagnosis time. At the end the
 * phones' notifications are scored against the ground truth of close
 * contacts computed from the stays.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from '../../../actors/ports.ts';
import { keyClientSubscriptions } from '../../../actors/key-client/key-client.ts';
import type { TracingProtocol, WorkMeter } from '../../../actors/tracing/engine.ts';
import type { TcnMode } from '../../../actors/tracing/tcn-config.ts';
import type { HealthColor, VenuePolicy } from '../../../actors/tracing/health-code.ts';
import { createTracingPhoneMachine } from '../../../actors/tracing/phone.ts';
import type { TracingCounters, TracingPhoneContext } from '../../../actors/tracing/phone-logic.ts';
import { drbgDraw, drbgFork, drbgInit, SeededRng } from '../../../protocol/crypto/drbg.ts';
import type { CryptoSuite } from '../../../protocol/crypto/suite.ts';
import { distributionIndexCodec } from '../../../protocol/keyserver/distribution-index.ts';
import { keyServerMessages } from '../../../protocol/keyserver/messages.ts';
import type { MessageRegistry } from '../../../protocol/wire/messages.ts';
import { inboxTopic } from '../../../protocol/wire/topics.ts';
import { WindowedAir, type WindowedAirCounters } from '../../../hardware/sim/windowed-air.ts';
import type { Position, PropagationConfig } from '../../../hardware/sim/propagation.ts';
import { MemoryHub } from '../../bus/memory.ts';
import { Host } from '../../host/host.ts';
import { MemoryBlobStore } from '../../keyserver/blobs.ts';
import { KeyServerClient } from '../../keyserver/client.ts';
import { startKeyServerService } from '../../keyserver/service.ts';
import { MemoryStore } from '../../store/memory.ts';
import { VirtualScheduler } from '../../time/virtual.ts';
import type { TracingCityConfig } from './config.ts';
import { closeContacts, expectedExposures, type Exposure } from './ground-truth.ts';
import { CityMovement } from './movement.ts';
import { planTracingCity, type TracingCityPlan } from './plan.ts';
import { tracingProtocol, type CityProtocol } from './protocols.ts';
import { scoreNotifications, type NotificationScore } from './score.ts';

export const TRACING_T0_MS = Date.UTC(2026, 0, 5); // a Monday
const SERVER_ID = 'ks-city';
const PROVIDER = 'health-authority';
const DAY_MS = 86_400_000;
/**
 * Indoor propagation of the city: n = 3 (furnished rooms), 4 dB noise, 10 dB
 * per wall, no loss, scanning windows modelled by the radios themselves.
 * Range ≈ 80 m in the open; neighbours' houses (40 m, a wall) are at the edge.
 */
export const TRACING_PROPAGATION: Partial<PropagationConfig> = Object.freeze({ pathLossExponent: 3, noiseSigmaDb: 4, lossProbability: 0, scanDutyCycle: 1 });

export interface TracingRunOptions {
  readonly city: TracingCityConfig;
  readonly protocol: TracingProtocol;
  readonly crypto: CryptoSuite;
  readonly logger: Logger;
  /** TCN operating mode (default 'C'; ignored by the other protocols). */
  readonly tcnMode?: TcnMode;
  /** Radio propagation of the city (default TRACING_PROPAGATION). */
  readonly propagation?: Partial<PropagationConfig>;
  /** Positives stay home from their diagnosis on (default true). */
  readonly isolatePositives?: boolean;
  /** Venues check the health code at entry with this policy (default: no checks). */
  readonly venueCheck?: VenuePolicy;
  readonly onProgress?: (fraction: number, simNow: number) => void;
  readonly signal?: AbortSignal;
  /** Sees what was scored: the expected exposures per phone and each phone's first notification (analysis, tests). */
  readonly onScored?: (detail: { readonly expected: ReadonlyMap<string, readonly Exposure[]>; readonly observed: readonly { phoneId: string; at: number }[] }) => void;
}

export interface TracingRunSummary {
  readonly protocol: TracingProtocol;
  readonly label: string;
  readonly limits?: string;
  readonly phones: number;
  readonly days: number;
  readonly positives: number;
  readonly closeContacts: number;
  readonly score: NotificationScore;
  /** Per phone per simulated day. */
  readonly bytesUpPerPhoneDay: number;
  readonly bytesDownPerPhoneDay: number;
  /** Tracing data held at the end, per phone (mean and max). */
  readonly storagePerPhone: { readonly meanBytes: number; readonly maxBytes: number };
  /** CPU time of the engines' matching, summed over phones, and per phone per day. */
  readonly matchingCpuMs: { readonly total: number; readonly perPhoneDay: number };
  readonly counters: Readonly<Record<string, number>>;
  readonly air: Readonly<Record<string, number>>;
  readonly wallS: number;
}

class CpuMeter implements WorkMeter {
  readonly totals = new Map<string, number>();
  time<T>(label: string, work: () => T): T {
    const start = performance.now();
    try {
      return work();
    } finally {
      this.totals.set(label, (this.totals.get(label) ?? 0) + performance.now() - start);
    }
  }
}

export async function runTracingCity(o: TracingRunOptions): Promise<TracingRunSummary> {
  const started = performance.now();
  const seedBytes = new Uint8Array(16);
  new DataView(seedBytes.buffer).setUint32(0, o.city.seed);
  const plan = planTracingCity(o.city, TRACING_T0_MS, seedBytes);
  const root = drbgFork(drbgInit(seedBytes), `tracing/${o.protocol}`);
  const scheduler = new VirtualScheduler(plan.t0);
  const positions = new Map<string, Position>();
  const air = new WindowedAir({ scheduler, rng: new SeededRng(drbgDraw(drbgFork(root, 'air'), 32).bytes), propagation: { ...TRACING_PROPAGATION, ...o.propagation }, positions: (id) => positions.get(id) });
  const hub = new MemoryHub({ onError: (error) => o.logger.error('bus handler failed', { error: String(error) }) });
  const secretDraw = drbgDraw(drbgFork(root, 'key-server'), 64);
  const secrets = { pepper: secretDraw.bytes.slice(0, 32), signingKey: secretDraw.bytes.slice(32, 64), keyId: 'city-1' };
  const server = await startKeyServerService({ serverId: SERVER_ID, bus: hub.connect('key-server'), store: new MemoryStore(), blobs: new MemoryBlobStore(), scheduler, logger: o.logger, secrets, crypto: o.crypto });
  const meter = new CpuMeter();
  const protocol = tracingProtocol(o.protocol, o.tcnMode === undefined ? {} : { tcnMode: o.tcnMode });
  const deps = { crypto: o.crypto, publicKeys: new Map([[secrets.keyId, o.crypto.p256PublicKey(secrets.signingKey)]]), meter };
  const machine = createTracingPhoneMachine(protocol.engine, deps);
  const messages = (): MessageRegistry => {
    const registry = keyServerMessages().register(distributionIndexCodec);
    return protocol.messages?.(registry) ?? registry;
  };
  const phones = new Host({ scheduler, bus: hub.connect('phones'), messages: messages(), logger: o.logger, radioFor: (spec) => air.attach(spec.id) });
  const backends = new Host({ scheduler, bus: hub.connect('backends'), messages: messages(), logger: o.logger });
  const hosts = [phones, backends, server.host];
  scheduler.addQuiescence(
    () => Promise.all(hosts.map((h) => h.idle())).then(() => undefined),
    () => hosts.reduce((n, h) => n + h.activity(), 0),
  );
  scheduler.addQuiescence(() => hub.idle());

  const operator = await KeyServerClient.connect(hub.connect('operator'), { serverId: SERVER_ID, address: 'host/health-authority', inbox: inboxTopic('host', 'health-authority') });
  await operator.admin('keys.provider.add', { providerId: PROVIDER });
  const codes = await operator.issueCodes(PROVIDER, Math.max(1, plan.positives.length), secrets.pepper, plan.end - plan.t0 + DAY_MS, plan.t0, o.crypto);

  for (const spec of protocol.backends?.({ crypto: o.crypto, drbg: drbgFork(root, 'backends'), codes: codes.map((c) => c.text), endMs: plan.end }) ?? []) await backends.spawn(spec);
  const movement = new CityMovement(plan, positions, () => air.positionsChanged(), (id) => healthOf(phones, id), { isolatePositives: o.isolatePositives ?? true, venueCheck: o.venueCheck });
  movement.start(scheduler);
  const phoneSeeds = drbgFork(root, 'phones');
  for (const phone of plan.phones) {
    const seed = drbgDraw(drbgFork(phoneSeeds, phone.id), 32).bytes;
    await phones.spawn({
      role: 'phone',
      id: phone.id,
      machine,
      input: { phoneId: phone.id, serverId: SERVER_ID, seed, engine: protocol.config, ...protocol.phone },
      subscribe: [...keyClientSubscriptions(SERVER_ID), ...(protocol.engine.exchange?.subscriptions(protocol.config, phone.id) ?? [])],
    });
  }
  plan.positives.forEach((p, i) => {
    const code = codes[i]?.text ?? '';
    scheduler.at(p.diagnosedAt, () => phones.sendTo('phone', p.phoneId, { type: 'tracing.diagnosed', at: p.diagnosedAt, code, infectiousFrom: p.infectiousFrom }));
  });

  await scheduler.runUntil(plan.end, (now) => o.onProgress?.((now - plan.t0) / (plan.end - plan.t0), now), o.signal);
  const summary = summarise(o, protocol, plan, movement, phones, (state) => protocol.engine.storageBytes(state), meter, air, performance.now() - started);
  await operator.close();
  await phones.stop();
  await backends.stop();
  await server.stop();
  await air.close();
  return summary;
}

function healthOf(phones: Host, id: string): HealthColor | undefined {
  try {
    return (phones.snapshotOf('phone', id).context as TracingPhoneContext<unknown, unknown>).health.color;
  } catch {
    return undefined; // not spawned yet (stays at t0 are entered before the phones start)
  }
}

function summarise(o: TracingRunOptions, protocol: CityProtocol, plan: TracingCityPlan, movement: CityMovement, phones: Host, storageBytes: (s: unknown) => number, meter: CpuMeter, air: WindowedAir, wallMs: number): TracingRunSummary {
  const contacts = closeContacts(movement.staysByPhoneId(), o.city.contact);
  const expected = expectedExposures(contacts, plan.positives, o.city.contact);
  const scored = { expected, observed: [] as { phoneId: string; at: number }[] };
  const observed = scored.observed;
  const counters: Record<string, number> = {};
  let up = 0;
  let down = 0;
  let storage = 0;
  let maxStorage = 0;
  for (const phone of plan.phones) {
    const c = phones.snapshotOf('phone', phone.id).context as TracingPhoneContext<unknown, unknown>;
    const first = c.notifications[0];
    if (first !== undefined) observed.push({ phoneId: phone.id, at: first.at });
    for (const k of Object.keys(c.counters) as (keyof TracingCounters)[]) counters[k] = (counters[k] ?? 0) + c.counters[k];
    // The health code at the end, and how often it changed (green/yellow/red, actors/tracing/health-code.ts).
    counters[`health.${c.health.color}`] = (counters[`health.${c.health.color}`] ?? 0) + 1;
    counters['health.changes'] = (counters['health.changes'] ?? 0) + c.health.log.length + c.health.logDropped;
    up += c.counters.bytesUp;
    down += c.counters.bytesDown;
    const bytes = storageBytes(c.engine);
    storage += bytes;
    maxStorage = Math.max(maxStorage, bytes);
  }
  o.onScored?.(scored);
  const phoneDays = plan.phones.length * o.city.days;
  const matching = meter.totals.get('match') ?? 0;
  const { lost, ...airCounters }: WindowedAirCounters = air.counters;
  return {
    protocol: o.protocol,
    label: protocol.label,
    limits: protocol.limits,
    phones: plan.phones.length,
    days: o.city.days,
    positives: plan.positives.length,
    closeContacts: contacts.length,
    score: scoreNotifications(expected, observed, plan.positives),
    bytesUpPerPhoneDay: up / phoneDays,
    bytesDownPerPhoneDay: down / phoneDays,
    storagePerPhone: { meanBytes: storage / plan.phones.length, maxBytes: maxStorage },
    matchingCpuMs: { total: matching, perPhoneDay: matching / phoneDays },
    counters: { ...counters, ...Object.fromEntries(Object.entries(movement.stats).map(([k, v]) => [`movement.${k}`, v])) },
    air: { ...airCounters, ...Object.fromEntries(Object.entries(lost).map(([k, v]) => [`lost.${k}`, v])) },
    wallS: wallMs / 1000,
  };
}
