/**
 * Discrete-event scheduler (DESIGN.md "Time", virtual): a priority queue of
 * (deadline, sequence) → callback. Simulated time jumps to the next deadline,
 * but only once the system is quiescent (every bus idle, every host done with
 * the effects of the previous step), so a run from the same seed replays the
 * same events in the same order, byte for byte.
 */
import type { Scheduler, SimMillis, TimerHandle } from '../../actors/ports.ts';
import { MisuseError } from '../../protocol/errors.ts';
import { DeadlineHeap } from './heap.ts';

/** Steps between two turns of the event loop during runUntil. */
const YIELD_EVERY_STEPS = 2048;

interface Entry extends TimerHandle {
  readonly seq: number;
  readonly fn: () => void;
  cancelled: boolean;
}

/** Resolves when nothing is in flight any more; called before every time step. */
export type Quiescence = () => Promise<void>;

export interface RunStats {
  /** Timer callbacks fired. */
  readonly fired: number;
  /** Distinct time steps taken. */
  readonly steps: number;
  /** The run stopped early on its abort signal (simulated time stays where it stopped). */
  readonly aborted: boolean;
}

export class VirtualScheduler implements Scheduler {
  private current: SimMillis;
  private seq = 0;
  /** atStepStart entries sort before every ordinary entry of their deadline. */
  private firstSeq = -(2 ** 52);
  private readonly queue = new DeadlineHeap<Entry>();
  private readonly quiescence: { readonly idle: Quiescence; readonly activity: (() => number) | undefined }[] = [];
  private running = false;

  constructor(startAt: SimMillis) {
    if (!Number.isSafeInteger(startAt) || startAt < 0) throw new MisuseError('startAt', 'must be a non-negative integer (ms)');
    this.current = startAt;
  }

  now(): SimMillis {
    return this.current;
  }

  /** A deadline in the past fires at the current time, after earlier-set timers. */
  at(deadline: SimMillis, fn: () => void): TimerHandle {
    if (!Number.isFinite(deadline)) throw new MisuseError('deadline', 'must be a finite number (ms)');
    const entry: Entry = { deadline: Math.max(deadline, this.current), seq: this.seq++, fn, cancelled: false };
    this.queue.push(entry);
    return entry;
  }

  /**
   * Like `at`, but before every ordinary timer due at the same deadline
   * (among themselves, in the order they were set). The simulated air runs
   * its advertising events this way, so what they see does not depend on
   * when their timer happened to be set (hardware/sim/advertising.ts).
   */
  atStepStart(deadline: SimMillis, fn: () => void): TimerHandle {
    if (!Number.isFinite(deadline)) throw new MisuseError('deadline', 'must be a finite number (ms)');
    const entry: Entry = { deadline: Math.max(deadline, this.current), seq: this.firstSeq++, fn, cancelled: false };
    this.queue.push(entry);
    return entry;
  }

  cancel(handle: TimerHandle): void {
    (handle as Entry).cancelled = true;
  }

  /**
   * Register something that must be quiescent before time advances (a bus, a
   * host). `activity`, when given, counts work it ever started: settling
   * repeats until a whole pass starts no new work, because one part going
   * idle can wake another (a bus delivery starts a host's journal append).
   */
  addQuiescence(idle: Quiescence, activity?: () => number): void {
    this.quiescence.push({ idle, activity });
  }

  /** Number of live timers (cancelled ones excluded lazily). */
  get pending(): number {
    return this.queue.size;
  }

  private activity(): number {
    let sum = 0;
    for (const q of this.quiescence) sum += q.activity?.() ?? 0;
    return sum;
  }

  private async settle(): Promise<void> {
    for (;;) {
      const before = this.activity();
      for (const q of this.quiescence) await q.idle();
      if (this.activity() === before) return;
    }
  }

  /**
   * Advance simulated time to `until`, firing every timer due by then in
   * (deadline, seq) order. All timers sharing a deadline fire in one step;
   * the system settles before the next step. `onStep` sees each new time.
   * An aborted `signal` ends the run after the current step (Ctrl-C on a
   * long run): time stays at that step, nothing later fires.
   */
  async runUntil(until: SimMillis, onStep?: (now: SimMillis) => void, signal?: AbortSignal): Promise<RunStats> {
    if (this.running) throw new MisuseError('runUntil', 'already running');
    if (until < this.current) throw new MisuseError('until', `is before now (${until} < ${this.current})`);
    this.running = true;
    let fired = 0;
    let steps = 0;
    try {
      await this.settle();
      for (;;) {
        const next = this.queue.peek();
        if (next === undefined || next.deadline > until) break;
        this.current = next.deadline;
        steps++;
        // Fire everything due now, including timers set for "now" by these callbacks.
        for (let e = this.queue.peek(); e !== undefined && e.deadline <= this.current; e = this.queue.peek()) {
          this.queue.pop();
          if (e.cancelled) continue;
          fired++;
          e.fn();
        }
        await this.settle();
        onStep?.(this.current);
        // Settling can run entirely on microtasks (in-memory bus): give the event loop a turn now
        // and then, or signal handlers (Ctrl-C), timers and I/O would starve until the run ends.
        if (steps % YIELD_EVERY_STEPS === 0) await new Promise<void>((resolve) => setImmediate(resolve));
        if (signal?.aborted === true) return { fired, steps, aborted: true };
      }
      this.current = until;
      return { fired, steps, aborted: false };
    } finally {
      this.running = false;
    }
  }
}
