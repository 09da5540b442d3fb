/**
 * Lazy advertising (hardware/sim/advertising.ts): SimAir skips advertising
 * events nobody can hear, and a lazy run delivers exactly what the eager
 * reference (`eager: true`) delivers — same frames, RSSI, order and loss
 * counts — for random layouts, scan on/off patterns, re-advertising, radios
 * moving, and listeners that stop scanning in the middle of a millisecond.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ReceivedFrame } from '../../actors/ports.ts';
import { SimAir, type AirCounters } from '../../hardware/sim/medium.ts';
import type { Position, PropagationConfig } from '../../hardware/sim/propagation.ts';
import type { SimRadio } from '../../hardware/sim/radio.ts';
import { VirtualScheduler } from '../../services/time/virtual.ts';
import { seededRng } from '../support/test-rng.ts';
import { START, logLine, text } from './sim-air.ts';

/** n = 3: ≤ 80 m range (≈ 25 m typical), so ±60 m layouts mix audible and inaudible pairs. */
const NOISY: Partial<PropagationConfig> = { pathLossExponent: 3, noiseSigmaDb: 4, lossProbability: 0.1, scanDutyCycle: 0.8 };

interface RadioPlan {
  readonly x: number;
  /** Room of the radio (walls between different rooms: PropagationModel.couldHear). */
  readonly room: string | undefined;
  readonly y: number;
  /** Advertising interval, or null: does not advertise. */
  readonly intervalMs: number | null;
  /** Scan toggles (ms after start; the first one starts scanning). */
  readonly toggles: readonly number[];
  /** Re-advertise (new set) or stop advertising at this time. */
  readonly change: { readonly at: number; readonly stop: boolean } | null;
  /** Move by (dx, dy) at this time and tell the medium. */
  readonly move: { readonly at: number; readonly dx: number; readonly dy: number } | null;
  /** The listener stops scanning itself after this many frames. */
  readonly stopAfter: number | null;
}

const DURATION_MS = 3_000;
const time = fc.integer({ min: 0, max: DURATION_MS });
const planArb: fc.Arbitrary<RadioPlan> = fc.record({
  x: fc.integer({ min: -60, max: 60 }),
  room: fc.constantFrom(undefined, 'a', 'b'),
  y: fc.integer({ min: -60, max: 60 }),
  intervalMs: fc.option(fc.integer({ min: 20, max: 200 }), { nil: null, freq: 4 }),
  toggles: fc.uniqueArray(time, { minLength: 1, maxLength: 6 }).map((ts) => [...ts].sort((a, b) => a - b)),
  change: fc.option(fc.record({ at: time, stop: fc.boolean() }), { nil: null, freq: 2 }),
  move: fc.option(fc.record({ at: time, dx: fc.integer({ min: -60, max: 60 }), dy: fc.integer({ min: -60, max: 60 }) }), { nil: null, freq: 2 }),
  stopAfter: fc.oneof({ arbitrary: fc.constant(null), weight: 3 }, { arbitrary: fc.integer({ min: 1, max: 20 }), weight: 1 }),
});

interface Outcome {
  readonly log: string[];
  readonly counters: AirCounters;
  readonly fired: number;
}

async function runPlan(plans: readonly RadioPlan[], seed: number, eager: boolean, index: 'grid' | 'none', gridSlackM: number): Promise<Outcome> {
  const scheduler = new VirtualScheduler(START);
  const positions = new Map<string, Position>(plans.map((p, i) => [`r${i}`, { x: p.x, y: p.y, ...(p.room !== undefined ? { room: p.room } : {}) }]));
  const air = new SimAir({ scheduler, rng: seededRng(seed), propagation: NOISY, positions: (id) => positions.get(id), eager, index, gridSlackM });
  const log: string[] = [];
  const radios: SimRadio[] = plans.map((_, i) => air.attach(`r${i}`));
  plans.forEach((plan, i) => {
    const radio = radios[i]!;
    const id = radio.id;
    let heard = 0;
    const listener = (f: ReceivedFrame): void => {
      log.push(logLine(id, f));
      if (plan.stopAfter !== null && ++heard === plan.stopAfter) void radio.stopScan();
    };
    if (plan.intervalMs !== null) void radio.advertise([text(`${id}/a`), text(`${id}/b`)], plan.intervalMs);
    plan.toggles.forEach((at, n) => {
      scheduler.at(START + at, () => void (n % 2 === 0 ? radio.startScan(listener) : radio.stopScan()));
    });
    const { change, move, intervalMs } = plan;
    if (change !== null) {
      scheduler.at(START + change.at, () => {
        void (change.stop ? radio.stopAdvertising() : radio.advertise([text(`${id}/c`)], (intervalMs ?? 100) + 13));
      });
    }
    if (move !== null) {
      scheduler.at(START + move.at, () => {
        positions.set(id, { x: plan.x + move.dx, y: plan.y + move.dy, ...(plan.room !== undefined ? { room: plan.room } : {}) });
        air.positionsChanged();
      });
    }
  });
  const { fired } = await scheduler.runUntil(START + DURATION_MS);
  const counters = structuredClone(air.counters);
  await air.close();
  return { log, counters, fired };
}

const total = (c: AirCounters): number => c.sent + c.unplaced + c.scheduledSkipped;

describe('lazy advertising ≡ eager reference', () => {
  it('same deliveries (frames, RSSI, order) and loss counts for random layouts and scan patterns', async () => {
    let frames = 0;
    let skipped = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(planArb, { minLength: 3, maxLength: 10 }),
        fc.integer({ min: 1, max: 10_000 }),
        fc.constantFrom<'grid' | 'none'>('grid', 'none'),
        fc.constantFrom(0, 50),
        async (plans, seed, index, slack) => {
          const eager = await runPlan(plans, seed, true, index, slack);
          const lazy = await runPlan(plans, seed, false, index, slack);
          expect(lazy.log).toEqual(eager.log);
          const { dutyCycle, loss, sensitivity } = eager.counters.lost;
          expect(lazy.counters.delivered).toBe(eager.counters.delivered);
          expect({ ...lazy.counters.lost, outOfRange: 0 }).toEqual({ dutyCycle, loss, sensitivity, outOfRange: 0 });
          // Every scheduled event is sent, unplaced or skipped: the schedules are the same.
          expect(total(lazy.counters)).toBe(total(eager.counters));
          expect(eager.counters.scheduledSkipped).toBe(0);
          expect(lazy.counters.sent).toBeLessThanOrEqual(eager.counters.sent);
          expect(lazy.fired).toBeLessThanOrEqual(eager.fired + 3 * plans.length + DURATION_MS / 1000 + 1);
          frames += eager.log.length;
          skipped += lazy.counters.scheduledSkipped;
        },
      ),
      { numRuns: 60 },
    );
    // The property was not vacuous: frames were heard and events were skipped.
    expect(frames).toBeGreaterThan(500);
    expect(skipped).toBeGreaterThan(500);
  }, 60_000);

  it('is deterministic from the seed (and another seed differs)', async () => {
    const plans = fc.sample(fc.array(planArb, { minLength: 8, maxLength: 8 }), { seed: 11, numRuns: 1 })[0]!;
    const dense = plans.map((p, i) => ({ ...p, x: p.x / 30, y: p.y / 30, intervalMs: 50 + i, toggles: [0], change: null, move: null, stopAfter: null }));
    const first = await runPlan(dense, 7, false, 'grid', 50);
    const again = await runPlan(dense, 7, false, 'grid', 50);
    const other = await runPlan(dense, 8, false, 'grid', 50);
    expect(first.log.length).toBeGreaterThan(500);
    expect(again.log).toEqual(first.log);
    expect(again.counters).toEqual(first.counters);
    expect(other.log).not.toEqual(first.log);
  });
});

describe('lazy advertising cost', () => {
  it('creates no scheduler event while nobody scans, and stops creating them when the last scanner leaves', async () => {
    const scheduler = new VirtualScheduler(START);
    let timersSet = 0;
    const counting = Object.assign(Object.create(scheduler) as VirtualScheduler, {
      at: (d: number, fn: () => void) => (timersSet++, scheduler.at(d, fn)),
      atStepStart: (d: number, fn: () => void) => (timersSet++, scheduler.atStepStart(d, fn)),
    });
    const positions = new Map<string, Position>();
    for (let i = 0; i < 50; i++) positions.set(`b${i}`, { x: (i % 10) * 500, y: Math.floor(i / 10) * 500 });
    positions.set('phone', { x: 0, y: 0 });
    const air = new SimAir({ scheduler: counting, rng: seededRng(3), positions: (id) => positions.get(id), propagation: NOISY });
    for (let i = 0; i < 50; i++) await air.attach(`b${i}`).advertise([text(`b${i}`)], 1_000);
    const phone = air.attach('phone');
    expect(scheduler.pending).toBe(0);
    const quiet = await scheduler.runUntil(START + 3_600_000);
    expect(quiet.fired).toBe(0);
    expect(timersSet).toBe(0);
    expect(air.counters.sent).toBe(0);
    expect(air.counters.scheduledSkipped).toBeGreaterThan(50 * 3_550);
    // A scanner near b0 only: b0 is armed, nobody else.
    const heard: ReceivedFrame[] = [];
    await phone.startScan((f) => heard.push(f));
    await scheduler.runUntil(START + 3_610_000);
    expect(heard.length).toBeGreaterThanOrEqual(5);
    expect(new Set(heard.map((f) => new TextDecoder().decode(f.payload)))).toEqual(new Set(['b0']));
    expect(air.counters.sent).toBe(heard.length + air.counters.lost.dutyCycle + air.counters.lost.loss + air.counters.lost.sensitivity);
    // Last scanner gone: at most the already-set timers fire, then nothing.
    await phone.stopScan();
    await scheduler.runUntil(START + 3_612_000);
    const before = timersSet;
    expect(scheduler.pending).toBe(0);
    expect((await scheduler.runUntil(START + 7_200_000)).fired).toBe(0);
    expect(timersSet).toBe(before);
    await air.close();
  });

  it('atStepStart timers fire before ordinary timers of the same millisecond, whenever they were set', async () => {
    const scheduler = new VirtualScheduler(START);
    const order: string[] = [];
    scheduler.at(START + 10, () => order.push('ordinary, set first'));
    scheduler.at(START + 5, () => scheduler.atStepStart(START + 10, () => order.push('first, set late')));
    scheduler.atStepStart(START + 10, () => order.push('first, set early'));
    await scheduler.runUntil(START + 20);
    expect(order).toEqual(['first, set early', 'first, set late', 'ordinary, set first']);
  });
});
