/**
 * The Radio contract (actors/ports.ts) every adapter must pass: call
 * `radioContract(name, setup)` from a test file. `setup` returns two fresh
 * radios within range of each other and `advance(ms)`, which runs virtual
 * time (simulation) or waits real time (BLE); the suite assumes nothing else
 * about time, so it also runs against real radios.
 *
 * Real air carries other people's advertisements: the suite only counts
 * frames carrying its own marker. A real adapter may need a grace period
 * after stop*() for frames already in flight (GRACE_MS); the checks that
 * follow a stop are strict.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Radio, ReceivedFrame } from '../../actors/ports.ts';
import { MisuseError } from '../../protocol/errors.ts';

export interface RadioFixture {
  /** Two radios that can hear each other. */
  readonly a: Radio;
  readonly b: Radio;
  /** Let `ms` of (simulated or real) time pass. */
  advance(ms: number): Promise<void>;
  /** Close everything setup opened (radios may already be closed). */
  teardown(): Promise<void>;
}

export interface RadioContractOptions {
  /**
   * The medium loses nothing (simulation without loss or noise): every
   * advertising event is heard, so round-robin order is checked exactly.
   */
  readonly lossless?: boolean;
}

const INTERVAL_MS = 100;
/** Time for frames already in the air when stop*() resolves (real BLE). */
const GRACE_MS = 200;
const MARKER = [0xc0, 0x4e] as const;

/** A payload this suite recognises: marker, set id, index, then filler up to `length`. */
function payload(set: number, index: number, length = 8): Uint8Array {
  const p = new Uint8Array(length);
  p.set([...MARKER, set, index].slice(0, length));
  for (let i = 4; i < length; i++) p[i] = (i * 7 + set) & 0xff;
  return p;
}

function ours(f: ReceivedFrame): boolean {
  return f.payload[0] === MARKER[0] && f.payload[1] === MARKER[1];
}

function collector(): { frames: ReceivedFrame[]; calls: number; listener: (f: ReceivedFrame) => void; mine(set?: number): ReceivedFrame[] } {
  const c = {
    frames: [] as ReceivedFrame[],
    calls: 0,
    listener: (f: ReceivedFrame): void => {
      c.calls++;
      c.frames.push(f);
    },
    mine: (set?: number): ReceivedFrame[] => c.frames.filter((f) => ours(f) && (set === undefined || f.payload[2] === set)),
  };
  return c;
}

export function radioContract(name: string, setup: () => Promise<RadioFixture>, options: RadioContractOptions = {}): void {
  describe(`Radio contract: ${name}`, () => {
    let fx: RadioFixture;
    beforeEach(async () => {
      fx = await setup();
    });
    afterEach(async () => {
      await fx.teardown();
    });

    it('exposes an id and sane capabilities', () => {
      for (const r of [fx.a, fx.b]) {
        expect(typeof r.id).toBe('string');
        expect(r.id.length).toBeGreaterThan(0);
        expect(Number.isSafeInteger(r.capabilities.maxAdvertisementPayload)).toBe(true);
        expect(r.capabilities.maxAdvertisementPayload).toBeGreaterThanOrEqual(1);
        expect(typeof r.capabilities.extendedAdvertising).toBe('boolean');
      }
      expect(fx.a.id).not.toBe(fx.b.id);
    });

    it('delivers A’s payloads to scanning B, round-robin, integer RSSI, ordered `at`, one address per set', async () => {
      const set = [payload(1, 0), payload(1, 1), payload(1, 2)];
      const heard = collector();
      await fx.b.startScan(heard.listener);
      await fx.a.advertise(set, INTERVAL_MS);
      await fx.advance(1_000);
      const frames = heard.mine(1);
      expect(frames.length).toBeGreaterThanOrEqual(3);
      const indices = frames.map((f) => f.payload[3] ?? -1);
      for (const f of frames) expect(set.some((p) => Buffer.from(p).equals(Buffer.from(f.payload)))).toBe(true);
      expect(new Set(indices)).toEqual(new Set([0, 1, 2]));
      for (const f of frames) expect(Number.isInteger(f.rssi)).toBe(true);
      for (let i = 1; i < frames.length; i++) expect(frames[i]!.at).toBeGreaterThanOrEqual(frames[i - 1]!.at);
      expect(typeof frames[0]!.address).toBe('string');
      expect(frames[0]!.address.length).toBeGreaterThan(0);
      expect(new Set(frames.map((f) => f.address)).size).toBe(1);
      if (options.lossless) {
        // 1 s at 100 ms + advDelay (≤ 10 ms) is at least 9 events, every one heard, in order.
        expect(frames.length).toBeGreaterThanOrEqual(9);
        expect(indices[0]).toBe(0);
        for (let i = 1; i < indices.length; i++) expect(indices[i]).toBe(((indices[i - 1] ?? 0) + 1) % set.length);
      }
    });

    it('never lets a radio hear itself', async () => {
      const atA = collector();
      const atB = collector();
      await fx.a.startScan(atA.listener);
      await fx.b.startScan(atB.listener);
      await fx.a.advertise([payload(2, 0)], INTERVAL_MS);
      await fx.advance(600);
      expect(atB.mine(2).length).toBeGreaterThan(0);
      expect(atA.mine(2)).toEqual([]);
    });

    it('stops advertising on stopAdvertising()', async () => {
      const heard = collector();
      await fx.b.startScan(heard.listener);
      await fx.a.advertise([payload(3, 0)], INTERVAL_MS);
      await fx.advance(500);
      expect(heard.mine(3).length).toBeGreaterThan(0);
      await fx.a.stopAdvertising();
      await fx.advance(GRACE_MS);
      heard.frames.length = 0;
      await fx.advance(1_000);
      expect(heard.mine(3)).toEqual([]);
    });

    it('replaces the advertising set on a second advertise()', async () => {
      const heard = collector();
      await fx.b.startScan(heard.listener);
      await fx.a.advertise([payload(4, 0)], INTERVAL_MS);
      await fx.advance(400);
      await fx.a.advertise([payload(5, 0), payload(5, 1)], INTERVAL_MS);
      await fx.advance(GRACE_MS);
      heard.frames.length = 0;
      await fx.advance(600);
      expect(heard.mine(4)).toEqual([]);
      expect(heard.mine(5).length).toBeGreaterThan(0);
    });

    it('stops delivering on stopScan()', async () => {
      const heard = collector();
      await fx.b.startScan(heard.listener);
      await fx.a.advertise([payload(6, 0)], INTERVAL_MS);
      await fx.advance(500);
      expect(heard.mine(6).length).toBeGreaterThan(0);
      await fx.b.stopScan();
      const calls = heard.calls;
      await fx.advance(1_000);
      expect(heard.calls).toBe(calls);
      await fx.b.stopScan(); // stopping twice is harmless
    });

    it('delivers to the replacement listener only, after startScan() again', async () => {
      const first = collector();
      const second = collector();
      await fx.b.startScan(first.listener);
      await fx.a.advertise([payload(7, 0)], INTERVAL_MS);
      await fx.advance(400);
      expect(first.mine(7).length).toBeGreaterThan(0);
      await fx.b.startScan(second.listener);
      const calls = first.calls;
      await fx.advance(600);
      expect(first.calls).toBe(calls);
      expect(second.mine(7).length).toBeGreaterThan(0);
    });

    it('validates payload sizes against capabilities, the set and the interval', async () => {
      const max = fx.a.capabilities.maxAdvertisementPayload;
      const rejectsWith = async (p: Promise<void>, field: string): Promise<void> => {
        const err: unknown = await p.then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(MisuseError);
        expect((err as MisuseError).field).toBe(field);
      };
      await rejectsWith(fx.a.advertise([payload(8, 0, max + 1)], INTERVAL_MS), 'payloads');
      await rejectsWith(fx.a.advertise([payload(8, 0), payload(8, 1, max + 1)], INTERVAL_MS), 'payloads');
      await rejectsWith(fx.a.advertise([], INTERVAL_MS), 'payloads');
      await rejectsWith(fx.a.advertise([payload(8, 0)], 19), 'intervalMs');
      await rejectsWith(fx.a.advertise([payload(8, 0)], Number.NaN), 'intervalMs');
      // Exactly the maximum goes through intact.
      const full = payload(9, 0, max);
      const heard = collector();
      await fx.b.startScan(heard.listener);
      await fx.a.advertise([full], INTERVAL_MS);
      await fx.advance(500);
      const frames = heard.mine(9);
      expect(frames.length).toBeGreaterThan(0);
      expect(Buffer.from(frames[0]!.payload).equals(Buffer.from(full))).toBe(true);
    });

    it('does not let later changes to the caller’s buffers reach the air or other receivers', async () => {
      const p = payload(10, 0);
      const heard = collector();
      await fx.b.startScan(heard.listener);
      await fx.a.advertise([p], INTERVAL_MS);
      p[4] = (p[4] ?? 0) ^ 0xff;
      await fx.advance(400);
      const frames = heard.mine(10);
      expect(frames.length).toBeGreaterThan(1);
      expect(frames[0]!.payload[4]).toBe(payload(10, 0)[4]);
      frames[0]!.payload[4] = 0; // a receiver scribbling on its copy
      expect(frames[1]!.payload[4]).toBe(payload(10, 0)[4]);
    });

    it('closes idempotently; a closed radio is silent and rejects calls with MisuseError', async () => {
      const heard = collector();
      await fx.b.startScan(heard.listener);
      await fx.a.advertise([payload(11, 0)], INTERVAL_MS);
      await fx.advance(300);
      expect(heard.mine(11).length).toBeGreaterThan(0);
      await fx.a.close();
      await fx.a.close();
      await fx.advance(GRACE_MS);
      heard.frames.length = 0;
      await fx.advance(600);
      expect(heard.mine(11)).toEqual([]);
      await expect(fx.a.advertise([payload(11, 0)], INTERVAL_MS)).rejects.toBeInstanceOf(MisuseError);
      await expect(fx.a.startScan(() => undefined)).rejects.toBeInstanceOf(MisuseError);
      await expect(fx.a.stopAdvertising()).rejects.toBeInstanceOf(MisuseError);
      await expect(fx.a.stopScan()).rejects.toBeInstanceOf(MisuseError);
    });
  });
}
