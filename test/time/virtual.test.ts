import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MisuseError } from '../../protocol/errors.ts';
import { VirtualScheduler } from '../../services/time/virtual.ts';

describe('VirtualScheduler (DESIGN.md "Time": discrete-event, deterministic)', () => {
  it('fires timers in (deadline, insertion) order and leaves time at the end', async () => {
    const s = new VirtualScheduler(1000);
    const log: string[] = [];
    s.at(3000, () => log.push(`c@${s.now()}`));
    s.at(2000, () => log.push(`a@${s.now()}`));
    s.at(2000, () => log.push(`b@${s.now()}`));
    s.at(9000, () => log.push('late'));
    const stats = await s.runUntil(5000);
    expect(log).toEqual(['a@2000', 'b@2000', 'c@3000']);
    expect(stats).toEqual({ fired: 3, steps: 2, aborted: false });
    expect(s.now()).toBe(5000);
  });

  it('an aborted signal ends the run after the current step; time stays there and later timers stay pending', async () => {
    const s = new VirtualScheduler(0);
    const abort = new AbortController();
    const log: number[] = [];
    s.at(10, () => log.push(s.now()));
    s.at(20, () => {
      log.push(s.now());
      abort.abort();
    });
    s.at(30, () => log.push(s.now()));
    expect(await s.runUntil(100, undefined, abort.signal)).toEqual({ fired: 2, steps: 2, aborted: true });
    expect(log).toEqual([10, 20]);
    expect(s.now()).toBe(20);
    expect(s.pending).toBe(1);
  });

  it('a long run gives the event loop a turn now and then (signal handlers, I/O and timers are not starved)', async () => {
    const s = new VirtualScheduler(0);
    let immediates = 0;
    const tick = (): void => {
      immediates++;
      if (immediates < 1_000) setImmediate(tick);
    };
    setImmediate(tick);
    for (let t = 1; t <= 20_000; t++) s.at(t, () => undefined);
    await s.runUntil(20_000);
    // 20,000 steps that settle on microtasks only: without yielding no setImmediate callback would run before the end.
    expect(immediates).toBeGreaterThan(5);
  });

  it('a past deadline fires at the current time; cancelled timers never fire', async () => {
    const s = new VirtualScheduler(10_000);
    const log: number[] = [];
    s.at(5, () => log.push(s.now()));
    const h = s.at(10_500, () => log.push(-1));
    s.cancel(h);
    await s.runUntil(11_000);
    expect(log).toEqual([10_000]);
  });

  it('timers set by a callback for the same instant fire in the same run', async () => {
    const s = new VirtualScheduler(0);
    const log: string[] = [];
    s.at(10, () => {
      log.push('first');
      s.at(10, () => log.push('chained'));
      s.at(20, () => log.push('next'));
    });
    await s.runUntil(100);
    expect(log).toEqual(['first', 'chained', 'next']);
  });

  it('advances only after every quiescence check resolved', async () => {
    const s = new VirtualScheduler(0);
    const log: string[] = [];
    let inFlight: Promise<void> = Promise.resolve();
    s.addQuiescence(() => inFlight);
    s.at(10, () => {
      // Simulates a bus message whose handler runs later, asynchronously.
      inFlight = new Promise((resolve) =>
        setTimeout(() => {
          log.push('delivered');
          resolve();
        }, 20),
      );
    });
    s.at(11, () => log.push('next step'));
    await s.runUntil(50);
    expect(log).toEqual(['delivered', 'next step']);
  });

  it('regression: work one part starts while another settles is awaited (a bus delivery starting a journal append)', async () => {
    const s = new VirtualScheduler(0);
    const log: string[] = [];
    let hostWork: Promise<void> = Promise.resolve();
    let started = 0;
    let busPending = false;
    s.addQuiescence(() => hostWork, () => started);
    s.addQuiescence(() => {
      if (!busPending) return Promise.resolve();
      busPending = false;
      // The delivery reaches the host after the host's own idle check already passed.
      started++;
      hostWork = new Promise((resolve) =>
        setTimeout(() => {
          log.push('journaled');
          resolve();
        }, 10),
      );
      return Promise.resolve();
    });
    s.at(10, () => (busPending = true));
    s.at(11, () => log.push('next step'));
    await s.runUntil(20);
    expect(log).toEqual(['journaled', 'next step']);
  });

  it('same schedule ⇒ same firing order (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 60 }), async (deadlines) => {
        const s = new VirtualScheduler(0);
        const order: number[] = [];
        deadlines.forEach((d, i) => s.at(d, () => order.push(i)));
        await s.runUntil(100);
        const expected = deadlines.map((d, i) => [d, i] as const).sort((x, y) => x[0] - y[0] || x[1] - y[1]).map(([, i]) => i);
        expect(order).toEqual(expected);
      }),
      { numRuns: 100 },
    );
  });

  it('misuse throws MisuseError naming the field', async () => {
    expect(() => new VirtualScheduler(-1)).toThrow(MisuseError);
    const s = new VirtualScheduler(100);
    expect(() => s.at(Number.NaN, () => undefined)).toThrow(/deadline/);
    await expect(s.runUntil(50)).rejects.toThrow(/until/);
  });
});
