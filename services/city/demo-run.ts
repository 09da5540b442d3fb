/**
 * One-process demo run (mode 1 of DESIGN.md): every actor in this process,
 * virtual time, simulated air in memory, a real bus (embedded aedes by
 * default). Same seed ⇒ the same summary, byte for byte.
 */
import type { Bus, Logger } from '../../actors/ports.ts';
import type { DemoCollectorContext } from '../../actors/demo/collector.ts';
import type { DemoPhoneContext } from '../../actors/demo/phone.ts';
import type { DemoBeaconContext } from '../../actors/demo/beacon.ts';
import { SeededRng } from '../../protocol/crypto/drbg.ts';
import { SimAir } from '../../hardware/sim/medium.ts';
import { propagationConfig } from '../../hardware/sim/propagation.ts';
import { Host } from '../host/host.ts';
import { VirtualScheduler } from '../time/virtual.ts';
import { openBus, type BusChoice } from '../bus/open.ts';
import { DEMO_T0_MS, demoActors, demoMessages, positionOf, seedBytes, type DemoScenario } from './demo-scenario.ts';

export interface DemoRunOptions {
  readonly scenario: DemoScenario;
  readonly bus: BusChoice;
  readonly logger: Logger;
  /** Called after each time step with the fraction of the run done. */
  readonly onProgress?: (fraction: number, simNow: number) => void;
}

export interface DemoSummary {
  readonly seed: number;
  readonly simulated: { readonly startMs: number; readonly durationS: number };
  readonly actors: { readonly beacons: number; readonly phones: number };
  readonly beacons: { readonly framesBuilt: number; readonly fragmentsPerFrame: number };
  readonly air: Readonly<Record<string, number>>;
  readonly phones: {
    readonly fragmentsReceived: number;
    readonly framesReassembled: number;
    readonly framesRejected: number;
    readonly reportsSent: number;
    readonly reassembly: Readonly<Record<string, number>>;
  };
  readonly collector: {
    readonly reports: number;
    readonly framesHeard: number;
    readonly duplicates: number;
    readonly meanRssiDbm: number | null;
    readonly beaconsHeard: number;
    readonly phonesHeardSomething: number;
  };
  readonly bus: { readonly sent: number; readonly received: number; readonly rejected: number };
}

export async function runDemo(options: DemoRunOptions): Promise<DemoSummary> {
  const s = options.scenario;
  const rng = new SeededRng(seedBytes(s.seed));
  const scheduler = new VirtualScheduler(DEMO_T0_MS);
  const air = new SimAir({
    scheduler,
    rng: rng.fork('air'),
    propagation: propagationConfig(),
    positions: (id) => positionOf(s, id),
  });
  const opened = await openBus(options.bus, 'demo-run', options.logger);
  const bus: Bus = opened.bus;
  const host = new Host({
    scheduler,
    bus,
    messages: demoMessages(),
    logger: options.logger,
    radioFor: (spec) => air.attach(spec.id),
  });
  scheduler.addQuiescence(() => host.idle(), () => host.activity());
  scheduler.addQuiescence(() => bus.idle());
  try {
    const specs = demoActors(s);
    for (const spec of specs) await host.spawn(spec);
    const end = DEMO_T0_MS + s.durationS * 1000;
    await scheduler.runUntil(end, (now) => options.onProgress?.((now - DEMO_T0_MS) / (end - DEMO_T0_MS), now));
    await host.stop();
    await bus.idle();
    return summarise(s, host, air, specs.map((spec) => spec.id));
  } finally {
    await opened.close();
  }
}

function summarise(s: DemoScenario, host: Host, air: SimAir, _ids: readonly string[]): DemoSummary {
  let framesBuilt = 0;
  let fragmentsPerFrame = 0;
  const phones = { fragmentsReceived: 0, framesReassembled: 0, framesRejected: 0, reportsSent: 0 };
  const reassembly: Record<string, number> = {};
  for (let h = 0; h < s.households; h++) {
    const beacon = host.snapshotOf('beacon', `b${h}`).context as DemoBeaconContext;
    framesBuilt += beacon.seq;
    fragmentsPerFrame = Math.max(fragmentsPerFrame, beacon.fragments.length);
    for (let k = 0; k < s.phonesPerHousehold; k++) {
      const phone = host.snapshotOf('phone', `p${h}-${k}`).context as DemoPhoneContext;
      for (const key of Object.keys(phones) as (keyof typeof phones)[]) phones[key] += phone.counters[key];
      for (const [name, value] of Object.entries(phone.reassembly.counters)) {
        if (typeof value === 'number') reassembly[name] = (reassembly[name] ?? 0) + value;
      }
    }
  }
  const collector = host.snapshotOf('collector', s.collectorId).context as DemoCollectorContext;
  const phonesHeard = new Set<string>();
  for (const perPhone of Object.values(collector.heardBy)) for (const p of Object.keys(perPhone)) phonesHeard.add(p);
  return {
    seed: s.seed,
    simulated: { startMs: DEMO_T0_MS, durationS: s.durationS },
    actors: { beacons: s.households, phones: s.households * s.phonesPerHousehold },
    beacons: { framesBuilt, fragmentsPerFrame },
    air: flattenAir(air),
    phones: { ...phones, reassembly },
    collector: {
      reports: collector.reports,
      framesHeard: collector.framesHeard,
      duplicates: collector.duplicates,
      meanRssiDbm: collector.framesHeard > 0 ? Math.round((collector.rssiSum / collector.framesHeard) * 10) / 10 : null,
      beaconsHeard: Object.keys(collector.heardBy).length,
      phonesHeardSomething: phonesHeard.size,
    },
    bus: {
      sent: host.stats.sent,
      received: host.stats.received,
      rejected: host.stats.rejectedEnvelopes + host.stats.rejectedBodies,
    },
  };
}

function flattenAir(air: SimAir): Record<string, number> {
  const { lost, ...rest } = air.counters;
  const out: Record<string, number> = { ...rest };
  for (const [cause, n] of Object.entries(lost)) out[`lost.${cause}`] = n;
  return out;
}

/** JSON with keys sorted at every level, so equal summaries are equal bytes. */
export function stableJson(value: unknown): string {
  return `${JSON.stringify(value, (_k, v: unknown) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? sortKeys(v as Record<string, unknown>) : v), 2)}\n`;
}

function sortKeys(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k]]));
}
