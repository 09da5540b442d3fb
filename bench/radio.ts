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

export const radioBench: BenchModule = async () => [
  await row('n=3 (≈80 m range)', { pathLossExponent: 3 }, 60_000),
  await row('n=2 default (≈700 m range)', {}, 10_000),
];
