/**
 * The receiver-driven air (hardware/sim/windowed-air.ts) and the Radio
 * port's scan options (duty cycle, duplicate filter) and advertise option
 * (new address), also on SimAir, plus the host's batched delivery.
 */
import { describe, expect, it } from 'vitest';
import type { Radio, ReceivedFrame } from '../../actors/ports.ts';
import { SimAir } from '../../hardware/sim/medium.ts';
import type { Position } from '../../hardware/sim/propagation.ts';
import { WindowedAir } from '../../hardware/sim/windowed-air.ts';
import { MisuseError } from '../../protocol/errors.ts';
import { radioEffect } from '../../services/host/radio-effects.ts';
import { VirtualScheduler } from '../../services/time/virtual.ts';
import { seededRng } from '../support/test-rng.ts';

const START = 1_700_000_000_000;
const QUIET = { noiseSigmaDb: 0, lossProbability: 0, scanDutyCycle: 1 } as const;
const p1 = Uint8Array.of(1, 1, 1);
const p2 = Uint8Array.of(2, 2, 2);

interface Rig {
  readonly scheduler: VirtualScheduler;
  readonly positions: Map<string, Position>;
  readonly air: WindowedAir | SimAir;
}

function rig(kind: 'windowed' | 'sim', seed = 1): Rig {
  const scheduler = new VirtualScheduler(START);
  const positions = new Map<string, Position>([
    ['a', { x: 0, y: 0 }],
    ['b', { x: 1, y: 0 }],
  ]);
  const options = { scheduler, rng: seededRng(seed), propagation: QUIET, positions: (id: string) => positions.get(id) };
  return { scheduler, positions, air: kind === 'windowed' ? new WindowedAir(options) : new SimAir(options) };
}

/** Frames `b` reports, with the simulated time its listener got each one. */
async function listen(r: Rig, b: Radio, options: Parameters<Radio['startScan']>[1]): Promise<{ frame: ReceivedFrame; handedAt: number }[]> {
  const got: { frame: ReceivedFrame; handedAt: number }[] = [];
  await b.startScan((frame) => got.push({ frame, handedAt: r.scheduler.now() }), options);
  return got;
}

describe('scan duty cycle (ScanOptions windowMs/intervalMs)', () => {
  for (const kind of ['windowed', 'sim'] as const) {
    it(`${kind}: frames only inside the windows, every advertising event in them (250 ms interval, 4 s of every 60 s)`, async () => {
      const r = rig(kind);
      const a = r.air.attach('a');
      const b = r.air.attach('b');
      await a.advertise([p1, p2], 250);
      const got = await listen(r, b, { windowMs: 4000, intervalMs: 60_000 });
      await r.scheduler.runUntil(START + 180_000);
      const windows = [0, 1, 2].map((j) => got.filter(({ frame }) => frame.at >= START + j * 60_000 && frame.at < START + j * 60_000 + 4000));
      expect(windows.map((w) => w.length).reduce((x, y) => x + y)).toBe(got.length); // nothing outside a window
      for (const w of windows) {
        expect(w.length).toBeGreaterThanOrEqual(15); // 4000 / (250 + ≤ 10 jitter)
        expect(w.length).toBeLessThanOrEqual(16);
        expect(new Set(w.map(({ frame }) => frame.payload[0]))).toEqual(new Set([1, 2]));
      }
      if (kind === 'windowed') for (const { frame, handedAt } of got) expect(handedAt - START - (frame.at - START) % 60_000).toBeGreaterThanOrEqual(0);
    });
  }

  it('windowed: a window is reported when it closes, in time order', async () => {
    const r = rig('windowed');
    await r.air.attach('a').advertise([p1], 100);
    const got = await listen(r, r.air.attach('b'), { windowMs: 1000, intervalMs: 10_000 });
    await r.scheduler.runUntil(START + 10_500);
    expect(got.length).toBeGreaterThanOrEqual(9);
    expect(new Set(got.map((g) => g.handedAt))).toEqual(new Set([START + 1000]));
    const times = got.map((g) => g.frame.at);
    expect([...times].sort((x, y) => x - y)).toEqual(times);
  });

  it('filterDuplicates reports each (address, payload) once per window', async () => {
    for (const kind of ['windowed', 'sim'] as const) {
      const r = rig(kind);
      await r.air.attach('a').advertise([p1, p2], 250);
      const got = await listen(r, r.air.attach('b'), { windowMs: 4000, intervalMs: 60_000, filterDuplicates: true });
      await r.scheduler.runUntil(START + 130_000);
      const perWindow = [0, 1, 2].map((j) => got.filter((g) => Math.floor((g.frame.at - START) / 60_000) === j).map((g) => g.frame.payload[0]).sort());
      expect(perWindow).toEqual([[1, 2], [1, 2], [1, 2]]);
    }
  });

  it('rejects a half-given or inverted duty cycle, naming the field', async () => {
    const b = rig('windowed').air.attach('b');
    await expect(b.startScan(() => undefined, { windowMs: 10 })).rejects.toThrow(MisuseError);
    await expect(b.startScan(() => undefined, { windowMs: 20, intervalMs: 10 })).rejects.toThrow(/windowMs/);
    await expect(b.startScan(() => undefined, { windowMs: 0, intervalMs: 10 })).rejects.toThrow(/windowMs/);
  });
});

describe('advertise({ newAddress })', () => {
  it('rotates the address with the set; frames of each set carry its own address', async () => {
    const r = rig('windowed');
    const a = r.air.attach('a');
    await a.advertise([p1], 200);
    const first = a.address;
    const got = await listen(r, r.air.attach('b'), { windowMs: 4000, intervalMs: 60_000 });
    r.scheduler.at(START + 2000, () => void a.advertise([p2], 200, { newAddress: true }));
    await r.scheduler.runUntil(START + 5000);
    expect(a.address).not.toBe(first);
    expect(got.length).toBeGreaterThan(10);
    for (const { frame } of got) expect(frame.address).toBe(frame.payload[0] === 1 ? first : a.address);
    expect(got.filter((g) => g.frame.payload[0] === 1).every((g) => g.frame.at < START + 2000)).toBe(true);
    expect(got.some((g) => g.frame.payload[0] === 2)).toBe(true);
  });

  it('keeps the address without the option', async () => {
    const r = rig('sim');
    const a = r.air.attach('a');
    const before = a.address;
    await a.advertise([p1], 200);
    await a.advertise([p2], 200);
    expect(a.address).toBe(before);
  });
});

describe('windowed air: range and movement', () => {
  it('out of range hears nothing; after positionsChanged() the moved radio is heard', async () => {
    const r = rig('windowed');
    r.positions.set('b', { x: 500, y: 0 });
    await r.air.attach('a').advertise([p1], 250);
    const got = await listen(r, r.air.attach('b'), { windowMs: 1000, intervalMs: 10_000 });
    await r.scheduler.runUntil(START + 15_000);
    expect(got).toHaveLength(0);
    r.positions.set('b', { x: 2, y: 0 });
    (r.air as WindowedAir).positionsChanged();
    await r.scheduler.runUntil(START + 25_000);
    expect(got.length).toBeGreaterThan(0);
    expect((r.air as WindowedAir).counters.windows).toBe(3);
  });

  it('is deterministic for a seed', async () => {
    const run = async (): Promise<string> => {
      const r = rig('windowed', 7);
      await r.air.attach('a').advertise([p1, p2], 270);
      const got = await listen(r, r.air.attach('b'), { windowMs: 4000, intervalMs: 30_000 });
      await r.scheduler.runUntil(START + 120_000);
      return got.map((g) => `${g.frame.at}:${g.frame.rssi}:${g.frame.payload[0]}`).join(',');
    };
    expect(await run()).toBe(await run());
  });
});

describe('host radio effects: batched delivery', () => {
  it('frames handed over in one burst become one radio.frames event', async () => {
    const r = rig('windowed');
    await r.air.attach('a').advertise([p1, p2], 250);
    const b = r.air.attach('b');
    const events: { type: string; frames?: unknown }[] = [];
    const work: Promise<void>[] = [];
    const hooks = { send: (e: { type: string }) => void events.push(e), track: (op: Promise<void>) => void work.push(op), now: () => r.scheduler.now() };
    await radioEffect(b, { type: 'radio.scan', on: true, batch: true, options: { windowMs: 4000, intervalMs: 60_000 } }, hooks);
    r.scheduler.addQuiescence(() => Promise.all(work).then(() => undefined));
    await r.scheduler.runUntil(START + 130_000);
    await Promise.all(work);
    expect(events.map((e) => e.type)).toEqual(['radio.frames', 'radio.frames', 'radio.frames']);
    for (const e of events) expect((e.frames as unknown[]).length).toBeGreaterThanOrEqual(15);
  });
});
