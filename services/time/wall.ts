/**
 * Wall × speed scheduler (DESIGN.md "Time"): real timers, simulated time =
 * t0 + (wall − wall0) × speed. Hosts of one distributed run share the epoch
 * through the retained `tc/v1/sim/epoch` message (publishEpoch / awaitEpoch).
 */
import type { Bus, Scheduler, SimMillis, TimerHandle } from '../../actors/ports.ts';
import { MisuseError } from '../../protocol/errors.ts';
import { decodeEpoch, encodeEpoch, simulatedAt, wallAt, type Epoch } from '../../protocol/wire/epoch.ts';
import { EPOCH_TOPIC } from '../../protocol/wire/topics.ts';

interface WallTimer extends TimerHandle {
  timeout: NodeJS.Timeout | undefined;
}

/** Node caps setTimeout at 2^31−1 ms; longer waits are chained. */
const MAX_TIMEOUT_MS = 2_147_483_647;

export class WallScheduler implements Scheduler {
  private readonly timers = new Set<WallTimer>();

  constructor(
    readonly epoch: Epoch,
    private readonly wallNow: () => number = Date.now,
  ) {}

  now(): SimMillis {
    return simulatedAt(this.epoch, this.wallNow());
  }

  at(deadline: SimMillis, fn: () => void): TimerHandle {
    if (!Number.isFinite(deadline)) throw new MisuseError('deadline', 'must be a finite number (ms)');
    const timer: WallTimer = { deadline, timeout: undefined };
    const arm = (): void => {
      const wait = Math.max(0, wallAt(this.epoch, deadline) - this.wallNow());
      timer.timeout = setTimeout(() => {
        // Never early in our own clock: setTimeout works in whole wall ms and may fire a
        // fraction of one before wallAt(deadline), which at speed k is up to k simulated ms —
        // enough for a machine to see `at < deadline`, treat its timer as stale and lose it.
        if (wait > MAX_TIMEOUT_MS || this.now() < deadline) return arm();
        this.timers.delete(timer);
        fn();
      }, Math.max(1, Math.min(Math.ceil(wait), MAX_TIMEOUT_MS)));
    };
    this.timers.add(timer);
    arm();
    return timer;
  }

  cancel(handle: TimerHandle): void {
    const timer = handle as WallTimer;
    clearTimeout(timer.timeout);
    this.timers.delete(timer);
  }

  /** Cancel every pending timer (shutdown). */
  cancelAll(): void {
    for (const t of this.timers) clearTimeout(t.timeout);
    this.timers.clear();
  }
}

/** Publish the run's epoch, retained, so hosts that join later agree on time. */
export async function publishEpoch(bus: Bus, epoch: Epoch): Promise<void> {
  await bus.publish(EPOCH_TOPIC, encodeEpoch(epoch), { qos: 1, retain: true });
}

export class EpochTimeoutError extends Error {
  override readonly name = 'EpochTimeoutError';
}

/**
 * Wait for the retained epoch. Malformed epoch messages are reported through
 * `onRejected` and ignored; rejects with EpochTimeoutError after `timeoutMs`.
 */
export async function awaitEpoch(
  bus: Bus,
  timeoutMs: number,
  onRejected: (reason: string) => void = () => undefined,
): Promise<Epoch> {
  let timer: NodeJS.Timeout | undefined;
  let resolveEpoch: (e: Epoch) => void = () => undefined;
  const found = new Promise<Epoch>((resolve) => (resolveEpoch = resolve));
  const sub = await bus.subscribe(EPOCH_TOPIC, (_topic, payload) => {
    const v = decodeEpoch(payload);
    if (v.ok) resolveEpoch(v.value);
    else onRejected(`${v.reason}: ${v.detail}`);
  });
  const timeout = new Promise<never>((_, rejectTimeout) => {
    timer = setTimeout(() => rejectTimeout(new EpochTimeoutError(`no epoch on ${EPOCH_TOPIC} within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([found, timeout]);
  } finally {
    clearTimeout(timer);
    await sub.unsubscribe();
  }
}
