/**
 * Simulated radio: the Radio contract on SimAir and on BusAir (two hosts on
 * an in-memory bus), then the propagation model's statistics, determinism
 * and the spatial grid's exactness.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ReceivedFrame } from '../../actors/ports.ts';
import { BusAir } from '../../hardware/sim/bus-medium.ts';
import { SimAir } from '../../hardware/sim/medium.ts';
import { PropagationModel, maxRangeM, meanRssiDbm, propagationConfig, type Position, type PropagationConfig } from '../../hardware/sim/propagation.ts';
import { LEGACY_ADVERTISEMENT_PAYLOAD, type SimRadio } from '../../hardware/sim/radio.ts';
import { MisuseError } from '../../protocol/errors.ts';
import { VirtualScheduler } from '../../services/time/virtual.ts';
import { radioContract } from '../contract/radio.contract.ts';
import { seededRng } from '../support/test-rng.ts';
import { QUIET, START, runSimScenario, testHub, text } from './sim-air.ts';

const TWO_RADIOS = new Map<string, Position>([
  ['a', { x: 0, y: 0 }],
  ['b', { x: 1, y: 0 }],
]);

radioContract(
  'SimAir',
  () => {
    const scheduler = new VirtualScheduler(START);
    const air = new SimAir({ scheduler, rng: seededRng(1), propagation: QUIET, positions: (id) => TWO_RADIOS.get(id) });
    return Promise.resolve({
      a: air.attach('a'),
      b: air.attach('b'),
      advance: async (ms: number) => void (await scheduler.runUntil(scheduler.now() + ms)),
      teardown: () => air.close(),
    });
  },
  { lossless: true },
);

radioContract(
  'BusAir (two hosts on a MemoryHub)',
  () => {
    const scheduler = new VirtualScheduler(START);
    const { hub, handlerErrors } = testHub();
    const make = (host: string, seed: number): BusAir =>
      new BusAir({ bus: hub.connect(host), scheduler, rng: seededRng(seed), propagation: QUIET, positions: (id) => TWO_RADIOS.get(id) });
    const airA = make('host-a', 1);
    const airB = make('host-b', 2);
    scheduler.addQuiescence(() => hub.idle());
    scheduler.addQuiescence(() => airA.settled());
    scheduler.addQuiescence(() => airB.settled());
    return Promise.resolve({
      a: airA.attach('a'),
      b: airB.attach('b'),
      advance: async (ms: number) => void (await scheduler.runUntil(scheduler.now() + ms)),
      teardown: async () => {
        await airA.close();
        await airB.close();
        expect(handlerErrors).toEqual([]);
      },
    });
  },
  { lossless: true },
);

/** One advertiser `tx` at the origin and receivers at the given positions, all on one SimAir. */
async function listen(
  receivers: readonly (readonly [string, Position])[],
  propagation: Partial<PropagationConfig>,
  events: { intervalMs: number; durationMs: number; seed?: number },
  tx: Position = { x: 0, y: 0 },
): Promise<{ heard: Map<string, ReceivedFrame[]>; air: SimAir; radios: Map<string, SimRadio> }> {
  const scheduler = new VirtualScheduler(START);
  const positions = new Map<string, Position>([['tx', tx], ...receivers]);
  const air = new SimAir({ scheduler, rng: seededRng(events.seed ?? 42), propagation, positions: (id) => positions.get(id) });
  const heard = new Map<string, ReceivedFrame[]>();
  const radios = new Map<string, SimRadio>();
  for (const [id] of receivers) {
    const frames: ReceivedFrame[] = [];
    heard.set(id, frames);
    const r = air.attach(id);
    radios.set(id, r);
    await r.startScan((f) => frames.push(f));
  }
  const sender = air.attach('tx');
  await sender.advertise([text('x')], events.intervalMs);
  await scheduler.runUntil(START + events.durationMs);
  return { heard, air, radios };
}

const mean = (xs: readonly number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;
const std = (xs: readonly number[]): number => Math.sqrt(mean(xs.map((x) => (x - mean(xs)) ** 2)));

describe('SimRadio specifics', () => {
  const scheduler = new VirtualScheduler(START);
  const air = new SimAir({ scheduler, rng: seededRng(3), positions: () => ({ x: 0, y: 0 }) });

  it('has legacy capabilities by default, extended on request', () => {
    expect(air.attach('legacy').capabilities).toEqual({ maxAdvertisementPayload: LEGACY_ADVERTISEMENT_PAYLOAD, extendedAdvertising: false });
    expect(air.attach('ext', { extendedAdvertising: true }).capabilities.maxAdvertisementPayload).toBeGreaterThan(200);
    expect(air.attach('custom', { maxAdvertisementPayload: 64 }).capabilities.maxAdvertisementPayload).toBe(64);
    expect(() => air.attach('legacy')).toThrow(MisuseError);
  });

  it('uses non-resolvable private MAC addresses and rotates them', () => {
    const r = air.attach('mac');
    expect(r.address).toMatch(/^[0-3][0-9A-F](:[0-9A-F]{2}){5}$/);
    const before = r.address;
    expect(r.rotateAddress()).not.toBe(before);
    expect(r.address).not.toBe(before);
  });

  it('rejects a bad config with MisuseError naming the field', () => {
    expect(() => propagationConfig({ lossProbability: 1.5 })).toThrow(expect.objectContaining({ field: 'lossProbability' }) as Error);
    expect(() => propagationConfig({ pathLossExponent: 0 })).toThrow(MisuseError);
    expect(() => propagationConfig({ txPowerDbm: Number.NaN })).toThrow(MisuseError);
  });
});

describe('propagation model', () => {
  it('mean RSSI follows TxPower − 10·n·log10(d) at 1, 5 and 10 m (σ = 4 dB)', async () => {
    const config = propagationConfig({ noiseSigmaDb: 4 });
    const at = [1, 5, 10] as const;
    const { heard } = await listen(
      at.map((d) => [`r${d}`, { x: d, y: 0 }] as const),
      config,
      { intervalMs: 20, durationMs: 120_000 },
    );
    for (const d of at) {
      const rssi = heard.get(`r${d}`)!.map((f) => f.rssi);
      expect(rssi.length).toBeGreaterThan(4_000);
      for (const r of rssi) expect(Number.isInteger(r)).toBe(true);
      expect(Math.abs(mean(rssi) - meanRssiDbm(config, d))).toBeLessThan(0.3);
      expect(std(rssi)).toBeGreaterThan(3.7);
      expect(std(rssi)).toBeLessThan(4.3);
    }
    expect(meanRssiDbm(config, 1)).toBe(-59);
    expect(meanRssiDbm(config, 10)).toBeCloseTo(-79, 10);
  });

  it('attenuates one wall between different rooms (and between indoors and outdoors)', async () => {
    for (const wall of [10, 25]) {
      const { heard } = await listen(
        [
          ['same', { x: 3, y: 0, room: 'h1' }],
          ['other', { x: 0, y: 3, room: 'h2' }],
          ['outside', { x: -3, y: 0 }],
        ],
        { ...QUIET, wallAttenuationDb: wall },
        { intervalMs: 100, durationMs: 1_000 },
        { x: 0, y: 0, room: 'h1' },
      );
      const rssi = (id: string): number => heard.get(id)![0]!.rssi;
      expect(rssi('same')).toBe(Math.round(-59 - 20 * Math.log10(3)));
      expect(rssi('same') - rssi('other')).toBe(wall);
      expect(rssi('outside')).toBe(rssi('other'));
    }
  });

  it('loses ≈ lossProbability of frames and misses ≈ (1 − duty cycle) of events, counted by cause', async () => {
    const { heard, air } = await listen(
      [['r', { x: 1, y: 0 }]],
      { ...QUIET, lossProbability: 0.3, scanDutyCycle: 0.5 },
      { intervalMs: 20, durationMs: 200_000 },
    );
    const c = air.counters;
    expect(c.sent).toBeGreaterThan(7_000);
    expect(c.lost.dutyCycle / c.sent).toBeGreaterThan(0.47);
    expect(c.lost.dutyCycle / c.sent).toBeLessThan(0.53);
    // Loss applies to the events the scanner was listening for.
    const listened = c.sent - c.lost.dutyCycle;
    expect(c.lost.loss / listened).toBeGreaterThan(0.27);
    expect(c.lost.loss / listened).toBeLessThan(0.33);
    expect(c.delivered).toBe(heard.get('r')!.length);
    expect(c.delivered + c.lost.loss + c.lost.dutyCycle).toBe(c.sent);
  });

  it('couldHear: the range through a wall is the wall attenuation shorter; slack extends it; nothing beyond is ever delivered', async () => {
    const config = propagationConfig({ noiseSigmaDb: 6 });
    const model = new PropagationModel(config);
    const open = maxRangeM(config);
    const walled = maxRangeM(config, 1);
    expect(walled).toBeCloseTo(Math.pow(10, (-59 + 24 + 100 - 10) / 20), 6);
    const at = (x: number, room?: string): Position => ({ x, y: 0, ...(room !== undefined ? { room } : {}) });
    expect(model.couldHear(at(0, 'a'), at(walled + 1, 'a'))).toBe(true); // same room: the open range
    expect(model.couldHear(at(0, 'a'), at(walled + 1, 'b'))).toBe(false);
    expect(model.couldHear(at(0, 'a'), at(walled + 1, 'b'), 2)).toBe(true);
    expect(model.couldHear(at(0), at(open + 1))).toBe(false);
    // A receiver behind a wall just beyond the walled range hears nothing, noise or not.
    const { heard, air } = await listen([['behind-wall', { x: walled + 0.5, y: 0, room: 'next-door' }]], config, { intervalMs: 20, durationMs: 20_000 });
    expect(heard.get('behind-wall')).toEqual([]);
    expect(air.counters.lost.outOfRange).toBe(air.counters.sent);
  });

  it('never delivers beyond the maximum range; loses weak frames to sensitivity', async () => {
    const config = propagationConfig({ noiseSigmaDb: 6 });
    const range = maxRangeM(config);
    expect(range).toBeCloseTo(Math.pow(10, (-59 + 24 + 100) / 20), 6);
    const { heard, air } = await listen(
      [
        ['edge-out', { x: range + 0.01, y: 0 }],
        ['far-out', { x: 0, y: 5 * range }],
        ['weak', { x: 150, y: 0 }],
      ],
      config,
      { intervalMs: 20, durationMs: 60_000 },
    );
    expect(heard.get('edge-out')).toEqual([]);
    expect(heard.get('far-out')).toEqual([]);
    const weak = heard.get('weak')!;
    // Mean at 150 m is −102.5 dBm: heard only when noise lifts it above −100.
    expect(weak.length).toBeGreaterThan(0);
    for (const f of weak) expect(f.rssi).toBeGreaterThanOrEqual(-100);
    const c = air.counters;
    expect(c.lost.outOfRange).toBe(2 * c.sent);
    expect(c.lost.sensitivity + weak.length).toBe(c.sent);
  });

  it('does not hear or send from radios without a position (eager evaluates and counts; lazy skips, same total)', async () => {
    const run = async (eager: boolean): Promise<SimAir> => {
      const scheduler = new VirtualScheduler(START);
      const positions = new Map<string, Position>([['placed', { x: 0, y: 0 }]]);
      const air = new SimAir({ scheduler, rng: seededRng(1), propagation: QUIET, positions: (id) => positions.get(id), eager });
      const atGhost: ReceivedFrame[] = [];
      const atPlaced: ReceivedFrame[] = [];
      const ghost = air.attach('ghost');
      const placed = air.attach('placed');
      await ghost.startScan((f) => atGhost.push(f));
      await placed.startScan((f) => atPlaced.push(f));
      await ghost.advertise([text('g')], 100);
      await placed.advertise([text('p')], 100);
      await scheduler.runUntil(START + 1_000);
      expect(atGhost).toEqual([]);
      expect(atPlaced).toEqual([]);
      return air;
    };
    const eager = (await run(true)).counters;
    expect(eager.unplaced).toBeGreaterThan(8);
    expect(eager.sent).toBeGreaterThan(8);
    expect(eager.lost.outOfRange).toBe(eager.sent);
    expect(eager.scheduledSkipped).toBe(0);
    // Lazy: nobody can hear either sender (the ghost has no position, `placed` hears no one but itself).
    const lazy = (await run(false)).counters;
    expect([lazy.sent, lazy.unplaced, lazy.lost.outOfRange]).toEqual([0, 0, 0]);
    expect(lazy.scheduledSkipped).toBe(eager.sent + eager.unplaced);
  });

  it('follows radios that move (positionsChanged, or the grid’s maximum age)', async () => {
    const scheduler = new VirtualScheduler(START);
    const positions = new Map<string, Position>([
      ['tx', { x: 0, y: 0 }],
      ['rx', { x: 5_000, y: 5_000 }],
    ]);
    const air = new SimAir({ scheduler, rng: seededRng(9), propagation: QUIET, positions: (id) => positions.get(id) });
    const frames: ReceivedFrame[] = [];
    await air.attach('rx').startScan((f) => frames.push(f));
    await air.attach('tx').advertise([text('hi')], 100);
    await scheduler.runUntil(START + 500);
    expect(frames).toEqual([]);
    positions.set('rx', { x: 2, y: 0 });
    air.positionsChanged();
    await scheduler.runUntil(START + 1_000);
    expect(frames.length).toBeGreaterThan(3);
    // Without notice: a long hop is picked up within gridMaxAgeMs (1 s).
    positions.set('rx', { x: 5_000, y: 5_000 });
    positions.set('tx', { x: 5_001, y: 5_000 });
    const before = frames.length;
    await scheduler.runUntil(START + 3_000);
    expect(frames.length).toBeGreaterThan(before + 5);
  });
});

describe('determinism and the spatial grid', () => {
  const layoutArb = fc
    .array(
      fc.record({
        x: fc.double({ min: -2_000, max: 2_000, noNaN: true }),
        y: fc.double({ min: -2_000, max: 2_000, noNaN: true }),
        room: fc.option(fc.constantFrom('h1', 'h2', 'h3'), { nil: undefined }),
      }),
      { minLength: 2, maxLength: 30 },
    )
    .map((ps) => ps.map((p, i): [string, Position] => [`r${i}`, p.room === undefined ? { x: p.x, y: p.y } : { x: p.x, y: p.y, room: p.room }]));
  const noisy: Partial<PropagationConfig> = { noiseSigmaDb: 4, lossProbability: 0.1, scanDutyCycle: 0.8 };

  it('replays identically from the same seed and differs with another seed', async () => {
    const layout = fc.sample(layoutArb, { seed: 5, numRuns: 1 })[0]!;
    const run = (seed: number): ReturnType<typeof runSimScenario> => runSimScenario({ seed, layout, propagation: noisy, durationMs: 10_000 });
    const first = await run(7);
    const again = await run(7);
    const other = await run(8);
    expect(first.log.length).toBeGreaterThan(100);
    expect(again.log).toEqual(first.log);
    expect(again.counters).toEqual(first.counters);
    expect(other.log).not.toEqual(first.log);
  });

  it('grid and brute force deliver the same frames in the same order (random layouts)', async () => {
    await fc.assert(
      fc.asyncProperty(layoutArb, fc.integer({ min: 1, max: 1_000 }), fc.constantFrom(0, 50), async (layout, seed, gridSlackM) => {
        const base = { seed, layout, propagation: noisy, durationMs: 2_000, gridSlackM };
        const grid = await runSimScenario({ ...base, index: 'grid' });
        const brute = await runSimScenario({ ...base, index: 'none' });
        expect(grid.log).toEqual(brute.log);
        expect(grid.counters).toEqual(brute.counters);
      }),
      { numRuns: 40 },
    );
  });
});
