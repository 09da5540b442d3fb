/**
 * Shared fixtures for the simulated-air tests: a SimAir/BusAir world under
 * the virtual scheduler and a scenario runner that logs every delivery.
 */
import type { Position } from '../../hardware/sim/propagation.ts';
import { SimAir, type AirCounters, type AirOptions } from '../../hardware/sim/medium.ts';
import { BusAir } from '../../hardware/sim/bus-medium.ts';
import type { PropagationConfig } from '../../hardware/sim/propagation.ts';
import type { ReceivedFrame } from '../../actors/ports.ts';
import { VirtualScheduler } from '../../services/time/virtual.ts';
import { MemoryHub } from '../../services/bus/memory.ts';
import { seededRng } from '../support/test-rng.ts';

export const START = 1_700_000_000_000;

/** An in-memory broker that records handler exceptions instead of logging them. */
export function testHub(): { hub: MemoryHub; handlerErrors: unknown[] } {
  const handlerErrors: unknown[] = [];
  return { hub: new MemoryHub({ onError: (error) => handlerErrors.push(error) }), handlerErrors };
}
/** No noise, no loss: every event in range is heard at the mean RSSI. */
export const QUIET: Partial<PropagationConfig> = { noiseSigmaDb: 0, lossProbability: 0, scanDutyCycle: 1 };

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
export const text = (s: string): Uint8Array => new TextEncoder().encode(s);

export function logLine(receiver: string, f: ReceivedFrame): string {
  return `${receiver}<-${f.address} ${hex(f.payload)} ${f.rssi}dBm @${f.at - START}`;
}

export interface ScenarioOptions {
  readonly seed: number;
  readonly layout: readonly (readonly [string, Position])[];
  readonly propagation?: Partial<PropagationConfig>;
  readonly durationMs: number;
  readonly index?: AirOptions['index'];
  readonly gridSlackM?: number;
}

export interface ScenarioResult {
  readonly log: string[];
  /** Timing- and address-free projection: `receiver<-payloadText rssi`. */
  readonly heard: Set<string>;
  readonly counters: AirCounters;
}

/** Every radio advertises two payloads (interval 100 + 7·i ms) and scans; returns the delivery log. */
export async function runSimScenario(o: ScenarioOptions): Promise<ScenarioResult> {
  const scheduler = new VirtualScheduler(START);
  const positions = new Map(o.layout);
  const air = new SimAir({
    scheduler,
    rng: seededRng(o.seed),
    positions: (id) => positions.get(id),
    ...(o.propagation !== undefined ? { propagation: o.propagation } : {}),
    ...(o.index !== undefined ? { index: o.index } : {}),
    ...(o.gridSlackM !== undefined ? { gridSlackM: o.gridSlackM } : {}),
  });
  const log: string[] = [];
  const heard = new Set<string>();
  let i = 0;
  for (const [id] of o.layout) {
    const radio = air.attach(id);
    await radio.startScan((f) => {
      log.push(logLine(id, f));
      heard.add(`${id}<-${new TextDecoder().decode(f.payload)} ${f.rssi}`);
    });
    await radio.advertise([text(`${id}/0`), text(`${id}/1`)], 100 + 7 * i++);
  }
  await scheduler.runUntil(START + o.durationMs);
  await air.close();
  return { log, heard, counters: structuredClone(air.counters) };
}

/** The same scenario over BusAir: radios spread round-robin over `hosts` hosts on one in-memory bus. */
export async function runBusScenario(o: ScenarioOptions & { readonly hosts: number }): Promise<ScenarioResult & { airs: BusAir[] }> {
  const scheduler = new VirtualScheduler(START);
  const { hub, handlerErrors } = testHub();
  const positions = new Map(o.layout);
  const airs: BusAir[] = [];
  for (let h = 0; h < o.hosts; h++) {
    const air = new BusAir({
      bus: hub.connect(`host-${h}`),
      scheduler,
      rng: seededRng(o.seed * 100 + h),
      positions: (id) => positions.get(id),
      ...(o.propagation !== undefined ? { propagation: o.propagation } : {}),
    });
    airs.push(air);
  }
  scheduler.addQuiescence(() => hub.idle());
  for (const air of airs) scheduler.addQuiescence(() => air.settled());
  const log: string[] = [];
  const heard = new Set<string>();
  let i = 0;
  for (const [id] of o.layout) {
    const radio = airs[i % o.hosts]!.attach(id);
    await radio.startScan((f) => {
      log.push(logLine(id, f));
      heard.add(`${id}<-${new TextDecoder().decode(f.payload)} ${f.rssi}`);
    });
    await radio.advertise([text(`${id}/0`), text(`${id}/1`)], 100 + 7 * i++);
  }
  await scheduler.runUntil(START + o.durationMs);
  for (const air of airs) await air.close();
  if (handlerErrors.length > 0) throw handlerErrors[0] instanceof Error ? handlerErrors[0] : new Error(String(handlerErrors[0]));
  const counters = airs.map((a) => a.counters);
  const sum: AirCounters = structuredClone(counters[0]!);
  for (const c of counters.slice(1)) {
    sum.sent += c.sent;
    sum.delivered += c.delivered;
  }
  return { log, heard, counters: sum, airs };
}
