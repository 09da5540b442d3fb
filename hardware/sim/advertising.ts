/**
 * Advertising events, driven by the medium (lazy advertising). Every
 * advertising set has a pure schedule (hardware/sim/schedule.ts); the driver
 * keeps the sets that are *armed* in a queue ordered by (event time, radio
 * attach seq) and holds ONE scheduler timer, at the earliest armed event.
 * When it fires, every armed event due is evaluated in that order (a batch).
 *
 * - Eager (reference, and BusAir): every set is always armed.
 * - Lazy (SimAir default): the medium arms a set only while some scanning
 *   receiver could hear it (AirBase decides); a disarmed set's events are
 *   skipped without any scheduler event and counted as `scheduledSkipped`
 *   when the schedule is walked past them (re-arm, stop, counters read).
 *
 * Batches run at the START of their millisecond when the scheduler offers
 * `atStepStart` (VirtualScheduler): before any ordinary timer due then, so an
 * event at T sees the scan states and positions everything before T left —
 * whichever mode, whenever the timer was set. Air cursor: events at or before
 * (now, +∞) are past outside a batch, and at or before (T, seq of the event
 * being evaluated) inside one; arming never resurrects a past event. As a set
 * never has an event at the millisecond it starts, nothing is ever due at
 * `now` outside a batch, so both modes evaluate exactly the same events for
 * every receiver that can hear them.
 */
import type { Scheduler, TimerHandle } from '../../actors/ports.ts';
import { AdvSchedule, type SetKey } from './schedule.ts';
import type { SimRadio } from './radio.ts';

/** A Scheduler that can order a timer before every ordinary timer due at the same time (VirtualScheduler does). */
export interface StepScheduler extends Scheduler {
  atStepStart?(deadline: number, fn: () => void): TimerHandle;
}

/** One advertising set (one advertise() call) of one radio. */
export class Advertiser {
  /** The medium wants this set's events evaluated. */
  armed = false;
  /** In the queue (armed, and not being evaluated right now). */
  heapIndex = -1;
  ended = false;

  constructor(
    readonly radio: SimRadio,
    readonly payloads: readonly Uint8Array[],
    readonly schedule: AdvSchedule,
  ) {}
}

export interface AdvertisingHooks {
  /** Evaluate event `k` of `a` now (may re-enter the driver: listeners can scan, advertise, close). */
  emit(a: Advertiser, payload: Uint8Array, k: number): void;
  /** Events of the schedule passed without evaluation. */
  skipped(n: number): void;
}

export class AdvertisingDriver {
  private readonly sets = new Map<SimRadio, Advertiser>();
  private readonly heap: Advertiser[] = [];
  private timer: TimerHandle | undefined;
  private current: Advertiser | undefined;

  constructor(
    private readonly scheduler: StepScheduler,
    private readonly hooks: AdvertisingHooks,
  ) {}

  /** Current sets, in no particular order. */
  advertisers(): IterableIterator<Advertiser> {
    return this.sets.values();
  }

  get size(): number {
    return this.sets.size;
  }

  /** Replace `radio`'s set by a new one starting now (unarmed: the caller arms it). */
  start(radio: SimRadio, payloads: readonly Uint8Array[], intervalMs: number, key: SetKey): Advertiser {
    this.stop(radio);
    const a = new Advertiser(radio, payloads, new AdvSchedule(key, intervalMs, this.scheduler.now()));
    this.sets.set(radio, a);
    return a;
  }

  stop(radio: SimRadio): void {
    const a = this.sets.get(radio);
    if (a === undefined) return;
    this.sets.delete(radio);
    this.disarm(a);
    if (a !== this.current) this.catchUp(a);
    a.ended = true;
  }

  arm(a: Advertiser): void {
    if (a.ended || a.armed) return;
    a.armed = true;
    if (a === this.current) return; // requeued once its event is done
    this.catchUp(a);
    this.push(a);
    this.ensureTimer();
  }

  /** Its pending timer (if any) stays: it fires, finds nothing due and moves on. */
  disarm(a: Advertiser): void {
    if (!a.armed) return;
    a.armed = false;
    if (a.heapIndex >= 0) this.remove(a);
  }

  /** Count every past event of the disarmed sets (for counters). */
  flush(): void {
    for (const a of this.sets.values()) if (a.heapIndex < 0 && a !== this.current) this.catchUp(a);
  }

  private isPast(t: number, seq: number): boolean {
    const c = this.current;
    if (c === undefined) return t <= this.scheduler.now();
    const ct = c.schedule.t;
    return t < ct || (t === ct && seq <= c.radio.seq);
  }

  private catchUp(a: Advertiser): void {
    let n = 0;
    while (this.isPast(a.schedule.t, a.radio.seq)) {
      a.schedule.next();
      n++;
    }
    if (n > 0) this.hooks.skipped(n);
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    const now = this.scheduler.now();
    try {
      for (let a = this.heap[0]; a !== undefined && a.schedule.t <= now; a = this.heap[0]) {
        this.remove(a);
        this.current = a;
        const k = a.schedule.k;
        try {
          this.hooks.emit(a, a.payloads[k % a.payloads.length]!, k);
        } finally {
          this.current = undefined;
          a.schedule.next();
          // Only a wall clock runs late: no burst after a stalled process.
          let late = 0;
          for (; a.schedule.t < now; late++) a.schedule.next();
          if (late > 0) this.hooks.skipped(late);
          if (a.armed && !a.ended) this.push(a);
        }
      }
    } finally {
      this.ensureTimer();
    }
  };

  private ensureTimer(): void {
    const top = this.heap[0];
    if (top === undefined) return;
    const t = top.schedule.t;
    if (this.timer !== undefined) {
      if (this.timer.deadline <= t) return; // fires first, then re-arms
      this.scheduler.cancel(this.timer);
    }
    const s = this.scheduler;
    this.timer = s.atStepStart !== undefined ? s.atStepStart(t, this.fire) : s.at(t, this.fire);
  }

  // ---- indexed binary heap on (t, seq)

  private push(a: Advertiser): void {
    a.heapIndex = this.heap.length;
    this.heap.push(a);
    this.up(a.heapIndex);
  }

  private remove(a: Advertiser): void {
    const i = a.heapIndex;
    const last = this.heap.pop()!;
    a.heapIndex = -1;
    if (last === a) return;
    this.heap[i] = last;
    last.heapIndex = i;
    this.down(i);
    this.up(last.heapIndex);
  }

  private up(i: number): void {
    const h = this.heap;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i]!, h[p]!)) break;
      this.swap(i, p);
      i = p;
    }
  }

  private down(i: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      let m = i;
      if (l < h.length && before(h[l]!, h[m]!)) m = l;
      if (l + 1 < h.length && before(h[l + 1]!, h[m]!)) m = l + 1;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }

  private swap(i: number, j: number): void {
    const h = this.heap;
    const x = h[i]!;
    const y = h[j]!;
    h[i] = y;
    h[j] = x;
    x.heapIndex = j;
    y.heapIndex = i;
  }
}

function before(x: Advertiser, y: Advertiser): boolean {
  const a = x.schedule.t;
  const b = y.schedule.t;
  return a < b || (a === b && x.radio.seq < y.radio.seq);
}
