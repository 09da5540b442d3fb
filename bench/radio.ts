/**
 * SimAir throughput: 1,000 radios placed uniformly in 1 km², each advertising
 * at 1 Hz and scanning, for 60 simulated seconds under the virtual scheduler;
 * spatial grid vs brute force (same deliveries, checked).
 *
 * Path-loss exponent 3 (built-up area) gives a ~80 m maximum range, so a
 * transmission reaches a few percent of the map and the grid has something to
 * skip. With the indoor default n = 2 the 4σ range is ~700 m — most of 1 km² —
 * and both variants visit nearly everyone (second row; 10 simulated seconds,
 * since every event then reaches ~800 radios).
 *
 * Lazy advertising (third row): 200 households 150 m apart, a beacon
 * advertising at 1 s and a phone (±10 m) scanning 10 s every minute
 * (staggered) in each, one simulated hour, n = 3, gridSlackM 10 (static
 * radios), two no-op quiescence checks standing for host and bus. Lazy
 * (default) vs eager (`eager: true`): same deliveries, checked; events/s =
 * advertising events of the schedules simulated per wall second.
 */
import type { Position, PropagationConfig } from '../hardware/sim/propagation.ts';
import { SimAir } from '../hardware/sim/medium.ts';
import { SeededRng } from '../protocol/crypto/drbg.ts';
import { VirtualScheduler } from '../services/time/virtual.ts';
import type { BenchModule, BenchRow } from './report.ts';

const RADIOS = 1_000;
const SIDE_M = 1_000;
const START = 1_700_000_000_000;

interface Run {
  readonly deliveries: number;
  readonly seconds: number;
}

async function run(index: 'grid' | 'none', propagation: Partial<PropagationConfig>, simMs: number): Promise<Run> {
  const seed = new Uint8Array(16).fill(7);
  const rng = new SeededRng(seed);
  const placement = new SeededRng(seed).fork('placement');
  const positions = new Map<string, Position>();
  for (let i = 0; i < RADIOS; i++) positions.set(`r${i}`, { x: placement.float() * SIDE_M, y: placement.float() * SIDE_M });
  const scheduler = new VirtualScheduler(START);
  const air = new SimAir({ scheduler, rng, propagation, index, positions: (id) => positions.get(id) });
  let deliveries = 0;
  const payload = new Uint8Array(20);
  for (let i = 0; i < RADIOS; i++) {
    const radio = air.attach(`r${i}`);
    await radio.startScan(() => void deliveries++);
    await radio.advertise([payload], 1_000);
  }
  const start = process.hrtime.bigint();
  await scheduler.runUntil(START + simMs);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await air.close();
  if (deliveries !== air.counters.delivered) throw new Error('listener count disagrees with counters');
  return { deliveries, seconds };
}

async function row(name: string, propagation: Partial<PropagationConfig>, simMs: number): Promise<BenchRow> {
  const grid = await run('grid', propagation, simMs);
  const naive = await run('none', propagation, simMs);
  if (grid.deliveries !== naive.deliveries) throw new Error(`grid ${grid.deliveries} ≠ brute force ${naive.deliveries} deliveries`);
  return {
    group: 'radio/sim-air',
    name: `${name}: ${RADIOS} radios, 1 km², 1 Hz, ${simMs / 1000} s simulated (${grid.deliveries} deliveries)`,
    values: { grid: Math.round(grid.deliveries / grid.seconds), naive: Math.round(naive.deliveries / naive.seconds) },
    unit: 'deliveries/s',
    ratio: { label: 'grid / naive', value: naive.seconds / grid.seconds },
  };
}

interface CityRun {
  readonly log: string;
  readonly events: number;
  readonly evaluated: number;
  readonly seconds: number;
}

async function city(eager: boolean): Promise<CityRun> {
  const HOUSEHOLDS = 200;
  const HOUR = 3_600_000;
  const placement = new SeededRng(new Uint8Array(16).fill(9)).fork('placement');
  const positions = new Map<string, Position>();
  for (let h = 0; h < HOUSEHOLDS; h++) {
    const home = { x: (h % 20) * 150, y: Math.floor(h / 20) * 150, room: `h${h}` };
    positions.set(`b${h}`, home);
    positions.set(`p${h}`, { x: home.x + (placement.float() - 0.5) * 20, y: home.y + (placement.float() - 0.5) * 20, room: home.room });
  }
  const scheduler = new VirtualScheduler(START);
  // A city run settles its host and its bus after every time step.
  for (let i = 0; i < 2; i++) scheduler.addQuiescence(() => Promise.resolve());
  const air = new SimAir({ scheduler, rng: new SeededRng(new Uint8Array(16).fill(5)), propagation: { pathLossExponent: 3 }, gridSlackM: 10, eager, positions: (id) => positions.get(id) });
  let log = 0;
  const token = [1, 2, 3, 4, 5].map((i) => new Uint8Array(24).fill(i));
  for (let h = 0; h < HOUSEHOLDS; h++) await air.attach(`b${h}`).advertise(token, 1_000);
  for (let h = 0; h < HOUSEHOLDS; h++) {
    const phone = air.attach(`p${h}`);
    const listener = (f: { rssi: number; at: number }): void => void (log = (Math.imul(log, 31) + f.rssi * 7 + f.at + h) | 0);
    const window = (at: number): void => {
      scheduler.at(at, () => void phone.startScan(listener));
      scheduler.at(at + 10_000, () => {
        void phone.stopScan();
        if (at + 60_000 < START + HOUR) window(at + 60_000);
      });
    };
    window(START + ((h * 300) % 60_000));
  }
  const start = process.hrtime.bigint();
  await scheduler.runUntil(START + HOUR);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const c = air.counters;
  await air.close();
  return { log: `${log}/${c.delivered}`, events: c.sent + c.unplaced + c.scheduledSkipped, evaluated: c.sent, seconds };
}

async function lazyRow(): Promise<BenchRow> {
  // Warm the JIT, then take the faster of two runs each.
  await city(false);
  const best = async (eager: boolean): Promise<CityRun> => {
    const a = await city(eager);
    const b = await city(eager);
    return a.seconds <= b.seconds ? a : b;
  };
  const lazy = await best(false);
  const eager = await best(true);
  if (lazy.log !== eager.log || lazy.events !== eager.events) throw new Error(`lazy ${lazy.log} ≠ eager ${eager.log}`);
  return {
    group: 'radio/lazy-advertising',
    name: `200 beacons @ 1 s, 200 phones scanning 10 s/min, 1 h simulated (${lazy.events} events, lazy evaluates ${lazy.evaluated}; lazy ${lazy.seconds.toFixed(2)} s, eager ${eager.seconds.toFixed(2)} s wall)`,
    values: { lazy: Math.round(lazy.events / lazy.seconds), eager: Math.round(eager.events / eager.seconds) },
    unit: 'events/s',
    ratio: { label: 'lazy / eager', value: eager.seconds / lazy.seconds },
  };
}

export const radioBench: BenchModule = async () => [
  await row('n=3 (≈80 m range)', { pathLossExponent: 3 }, 60_000),
  await row('n=2 default (≈700 m range)', {}, 10_000),
  await lazyRow(),
];
