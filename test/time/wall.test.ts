import { describe, expect, it } from 'vitest';
import { decodeEpoch, encodeEpoch, simulatedAt, wallAt } from '../../protocol/wire/epoch.ts';
import { MemoryHub } from '../../services/bus/memory.ts';
import { EpochTimeoutError, WallScheduler, awaitEpoch, publishEpoch } from '../../services/time/wall.ts';
import { EPOCH_TOPIC } from '../../protocol/wire/topics.ts';

describe('wall × speed time (DESIGN.md "Time")', () => {
  it('simulated = t0 + (wall − wall0) × speed, and wallAt inverts it', () => {
    const epoch = { t0: 1_000_000, wall0: 500, speed: 60 };
    expect(simulatedAt(epoch, 500)).toBe(1_000_000);
    expect(simulatedAt(epoch, 1500)).toBe(1_060_000);
    expect(wallAt(epoch, 1_060_000)).toBe(1500);
  });

  it('WallScheduler fires a timer when simulated time reaches its deadline', async () => {
    const epoch = { t0: 0, wall0: Date.now(), speed: 100 };
    const s = new WallScheduler(epoch);
    const fired = await new Promise<number>((resolve) => s.at(2000, () => resolve(s.now())));
    // 2000 simulated ms at 100× is 20 wall ms.
    expect(fired).toBeGreaterThanOrEqual(2000);
    expect(fired).toBeLessThan(2000 + 100 * 200);
  });

  it('regression: a timer never fires before its deadline in the scheduler\'s own clock (setTimeout may wake a fraction of a ms early)', async () => {
    // The scheduler's clock runs at half the speed of setTimeout's: a timeout armed for the deadline
    // wakes while now() still reads before it — the same as setTimeout waking a fraction of a wall ms
    // early, which at speed k is up to k simulated ms. It used to fire anyway (an app backend then took
    // its alert timer for stale, and a silent household stopped being alerted after a restart).
    const wall0 = Date.now();
    const s = new WallScheduler({ t0: 0, wall0, speed: 100 }, () => wall0 + (Date.now() - wall0) / 2);
    const seen = await Promise.all([500, 1000, 1500].map((deadline) => new Promise<number>((resolve) => s.at(deadline, () => resolve(s.now() - deadline)))));
    for (const late of seen) expect(late).toBeGreaterThanOrEqual(0);
  });

  it('cancelled and cancelAll timers never fire', async () => {
    const s = new WallScheduler({ t0: 0, wall0: Date.now(), speed: 1000 });
    let fired = 0;
    s.cancel(s.at(50, () => fired++));
    s.at(60, () => fired++);
    s.cancelAll();
    await new Promise((r) => setTimeout(r, 30));
    expect(fired).toBe(0);
  });

  it('epoch codec round-trips and rejects hostile bytes with a typed verdict', () => {
    const e = { t0: 1_767_225_600_000, wall0: 1_767_225_600_123, speed: 2.5 };
    expect(decodeEpoch(encodeEpoch(e))).toEqual({ ok: true, value: e });
    expect(decodeEpoch(new Uint8Array([0xc1]))).toMatchObject({ ok: false, codec: 'epoch' });
    expect(() => encodeEpoch({ ...e, speed: 0 })).toThrow(/speed/);
  });

  it('hosts agree on the retained epoch; malformed epoch messages are ignored', async () => {
    const hub = new MemoryHub();
    const a = hub.connect('a');
    const b = hub.connect('b');
    const rejected: string[] = [];
    await a.publish(EPOCH_TOPIC, new Uint8Array([1, 2, 3]), { retain: false });
    await publishEpoch(a, { t0: 10, wall0: 20, speed: 3 });
    expect(await awaitEpoch(b, 500, (r) => rejected.push(r))).toEqual({ t0: 10, wall0: 20, speed: 3 });
    await a.publish(EPOCH_TOPIC, new Uint8Array(0), { retain: true });
    await expect(awaitEpoch(b, 50)).rejects.toBeInstanceOf(EpochTimeoutError);
    await a.close();
    await b.close();
  });
});
