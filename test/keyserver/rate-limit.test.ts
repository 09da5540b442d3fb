/**
 * DoS filtering building blocks (protocol/keyserver/rate-limit.ts), all with
 * exact times: token bucket refill, burst, refusal and backwards time (plus
 * a fast-check bound on what any schedule can get through); the bounded keyed
 * limiter under 100,000 distinct keys, its eviction effect and pruning; the
 * brute-force lockout's threshold, sliding window, growth, cap, forgiveness
 * and eviction order; and that every state is plain data surviving JSON and
 * msgpack round trips (it lives in an xstate context).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createKeyedLimiter,
  createLockoutTable,
  DEFAULT_LOCKOUT_CONFIG,
  fullBucket,
  type KeyedTable,
  limiterTake,
  lockDurationMs,
  type LockoutConfig,
  lockoutStatus,
  type LockoutTable,
  MAX_KEY_CHARS,
  pruneKeyedLimiter,
  pruneLockouts,
  recordFailure,
  recordSuccess,
  refill,
  take,
  type TokenBucket,
  type TokenBucketConfig,
} from '../../protocol/keyserver/rate-limit.ts';
import { packWire, unpackWire, wireProblem, type WireValue } from '../../protocol/wire/msgpack.ts';
import { misuseField } from '../support/misuse.ts';

const BUCKET: TokenBucketConfig = { capacity: 5, refillPerSecond: 2 };
const held = (table: KeyedTable<unknown>): number => table.shards.reduce((n, shard) => n + shard.length, 0);

describe('token bucket', () => {
  it('allows a burst of `capacity`, then one token per 1/rate seconds (exact times)', () => {
    let bucket = fullBucket(BUCKET, 0);
    for (let i = 0; i < 5; i++) {
      const r = take(bucket, BUCKET, 0);
      expect(r.allowed).toBe(true);
      bucket = r.bucket;
    }
    expect(bucket).toEqual({ tokens: 0, updatedAt: 0 });
    expect(take(bucket, BUCKET, 0)).toEqual({ allowed: false, bucket, retryAfterMs: 500 });
    expect(take(bucket, BUCKET, 250)).toEqual({ allowed: false, bucket: { tokens: 0.5, updatedAt: 250 }, retryAfterMs: 250 });
    const at500 = take(bucket, BUCKET, 500);
    expect(at500).toEqual({ allowed: true, bucket: { tokens: 0, updatedAt: 500 }, retryAfterMs: 0 });
    expect(refill(at500.bucket, BUCKET, 1_500).tokens).toBe(2);
    expect(refill(at500.bucket, BUCKET, 60_000)).toEqual({ tokens: 5, updatedAt: 60_000 }); // capped
  });

  it('spends nothing on a refused take and charges `cost` tokens at once', () => {
    const start: TokenBucket = { tokens: 2, updatedAt: 1_000 };
    expect(take(start, BUCKET, 1_000, 3)).toEqual({ allowed: false, bucket: start, retryAfterMs: 500 });
    expect(take(start, BUCKET, 1_500, 3)).toEqual({ allowed: true, bucket: { tokens: 0, updatedAt: 1_500 }, retryAfterMs: 0 });
    expect(take(start, BUCKET, 1_000, 0)).toEqual({ allowed: true, bucket: start, retryAfterMs: 0 });
  });

  it('refills nothing when time goes backwards, and does not count that interval twice', () => {
    const drained: TokenBucket = { tokens: 0, updatedAt: 10_000 };
    const back = take(drained, BUCKET, 4_000);
    expect(back).toEqual({ allowed: false, bucket: drained, retryAfterMs: 500 });
    expect(refill(drained, BUCKET, 4_000)).toBe(drained);
    // Forward again: only 10 000 → 10 500 counts (one token), not 4 000 → 10 500.
    const forward = take(back.bucket, BUCKET, 10_500);
    expect(forward).toEqual({ allowed: true, bucket: { tokens: 0, updatedAt: 10_500 }, retryAfterMs: 0 });
    expect(take(forward.bucket, BUCKET, 10_500).allowed).toBe(false);
  });

  it('grants a fractional-rate token at the exact instant despite binary rounding', () => {
    const slow: TokenBucketConfig = { capacity: 1, refillPerSecond: 0.1 };
    let bucket: TokenBucket = { tokens: 0, updatedAt: 0 };
    for (let t = 100; t < 10_000; t += 100) {
      const r = take(bucket, slow, t);
      expect(r.allowed).toBe(false);
      bucket = r.bucket;
    }
    expect(take(bucket, slow, 10_000).allowed).toBe(true);
  });

  it('never lets more than capacity + rate × elapsed through, whatever the schedule (time may go backwards)', () => {
    const step = fc.record({ dt: fc.integer({ min: -2_000, max: 3_000 }), cost: fc.integer({ min: 0, max: 5 }) });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 200 }), (steps) => {
        let bucket = fullBucket(BUCKET, 0);
        let now = 0;
        let latest = 0;
        let spent = 0;
        for (const { dt, cost } of steps) {
          now += dt;
          const r = take(bucket, BUCKET, now, cost);
          expect(r.bucket.updatedAt).toBeGreaterThanOrEqual(bucket.updatedAt);
          expect(r.bucket.tokens).toBeGreaterThanOrEqual(0);
          expect(r.bucket.tokens).toBeLessThanOrEqual(BUCKET.capacity);
          if (r.allowed) spent += cost;
          else expect(r.retryAfterMs).toBeGreaterThan(0);
          latest = Math.max(latest, now);
          bucket = r.bucket;
        }
        expect(spent).toBeLessThanOrEqual(BUCKET.capacity + (BUCKET.refillPerSecond * latest) / 1000 + 1e-6);
      }),
      { numRuns: 500, seed: 4101 },
    );
  });

  it('names the field on misuse', () => {
    const bucket = fullBucket(BUCKET, 0);
    expect(misuseField(() => take(bucket, BUCKET, 0, 6))).toBe('cost');
    expect(misuseField(() => take(bucket, BUCKET, 0, -1))).toBe('cost');
    expect(misuseField(() => take(bucket, BUCKET, Number.NaN))).toBe('now');
    expect(misuseField(() => take(bucket, { capacity: 0, refillPerSecond: 1 }, 0))).toBe('config.capacity');
    expect(misuseField(() => take(bucket, { capacity: 1, refillPerSecond: 0 }, 0))).toBe('config.refillPerSecond');
  });
});

describe('bounded keyed limiter', () => {
  const STRICT: TokenBucketConfig = { capacity: 1, refillPerSecond: 0.001 }; // one token per 1000 s

  it('keeps one bucket per key', () => {
    let state = createKeyedLimiter(100);
    for (let i = 0; i < 5; i++) state = limiterTake(state, BUCKET, 'client:a', 0).state;
    expect(limiterTake(state, BUCKET, 'client:a', 0)).toMatchObject({ allowed: false, retryAfterMs: 500 });
    expect(limiterTake(state, BUCKET, 'client:b', 0).allowed).toBe(true);
    expect(state.size).toBe(1);
  });

  it('tracks at most maxKeys keys under 100,000 distinct keys, and a hot key keeps its bucket', () => {
    const started = performance.now();
    let state = createKeyedLimiter(1_000);
    let hotAllowed = 0;
    for (let i = 0; i < 100_000; i++) {
      state = limiterTake(state, STRICT, `source:${i}`, i).state;
      if (i % 10 === 0) {
        const hot = limiterTake(state, STRICT, 'client:hot', i);
        if (hot.allowed) hotAllowed++;
        state = hot.state;
      }
      if (i % 1_000 === 0) {
        expect(state.size).toBeLessThanOrEqual(1_000);
        expect(held(state)).toBe(state.size);
      }
    }
    expect(state.size).toBe(1_000); // every shard full: √-sharding wastes no capacity here
    expect(held(state)).toBe(1_000);
    expect(state.evicted).toBe(100_001 - 1_000);
    expect(hotAllowed).toBe(1); // its drained bucket was never evicted (100 s ≪ 1000 s refill)
    expect(JSON.stringify(state).length).toBeLessThan(1_000 * 80);
    expect(performance.now() - started).toBeLessThan(20_000);
  });

  it('evicting a key only resets its bucket to full', () => {
    let state = createKeyedLimiter(16);
    state = limiterTake(state, STRICT, 'victim', 0).state;
    expect(limiterTake(state, STRICT, 'victim', 1).allowed).toBe(false);
    for (let i = 0; i < 1_000; i++) state = limiterTake(state, STRICT, `other:${i}`, 2).state;
    expect(state.size).toBeLessThanOrEqual(16);
    expect(limiterTake(state, STRICT, 'victim', 3).allowed).toBe(true); // forgotten: starts full again
  });

  it('prunes keys whose bucket is full again, which then behave as never seen', () => {
    let state = createKeyedLimiter(100);
    for (let i = 0; i < 50; i++) state = limiterTake(state, BUCKET, `k${i}`, 0, 2).state;
    expect(pruneKeyedLimiter(state, BUCKET, 999)).toMatchObject({ size: 50 }); // 3 + 1.998 < 5
    const pruned = pruneKeyedLimiter(state, BUCKET, 1_000);
    expect(pruned.size).toBe(0);
    expect(pruneKeyedLimiter(pruned, BUCKET, 2_000)).toBe(pruned);
    expect(limiterTake(pruned, BUCKET, 'k0', 1_500, 5).allowed).toBe(true);
  });

  it('is plain data: JSON and msgpack round trips continue identically', () => {
    let state = createKeyedLimiter(64);
    for (let i = 0; i < 200; i++) state = limiterTake(state, BUCKET, `k${i % 70}`, i * 37).state;
    expect(wireProblem(state)).toBeUndefined();
    const viaJson = JSON.parse(JSON.stringify(state)) as typeof state;
    const packed = unpackWire(packWire(state as unknown as WireValue), 'test');
    expect(viaJson).toEqual(state);
    expect(packed.ok && packed.value).toEqual(state);
    for (const key of ['k1', 'k69', 'new']) {
      expect(limiterTake(viaJson, BUCKET, key, 8_000)).toEqual(limiterTake(state, BUCKET, key, 8_000));
    }
  });

  it('names the field on misuse', () => {
    expect(misuseField(() => createKeyedLimiter(0))).toBe('maxKeys');
    expect(misuseField(() => createKeyedLimiter(1.5))).toBe('maxKeys');
    expect(misuseField(() => limiterTake(createKeyedLimiter(4), BUCKET, '', 0))).toBe('key');
    expect(misuseField(() => limiterTake(createKeyedLimiter(4), BUCKET, 'k'.repeat(MAX_KEY_CHARS + 1), 0))).toBe('key');
  });
});

describe('brute-force lockout', () => {
  const LOCK: LockoutConfig = { maxFailures: 3, windowMs: 60_000, baseLockMs: 10_000, growthFactor: 2, maxLockMs: 40_000, forgetAfterMs: 3_600_000 };
  const fail = (state: LockoutTable, key: string, ...times: number[]): ReturnType<typeof recordFailure> => {
    let result: ReturnType<typeof recordFailure> | undefined;
    for (const t of times) result = recordFailure(result?.state ?? state, LOCK, key, t);
    if (result === undefined) throw new Error('no times');
    return result;
  };

  it('locks on the K-th wrong code within the window, until exactly now + T (exclusive)', () => {
    const two = fail(createLockoutTable(100), 'client:x', 0, 1_000);
    expect(two.status).toEqual({ locked: false, until: null, offences: 0, failures: 2 });
    const three = fail(two.state, 'client:x', 2_000);
    expect(three.status).toEqual({ locked: true, until: 12_000, offences: 1, failures: 0 });
    expect(lockoutStatus(three.state, LOCK, 'client:x', 11_999).locked).toBe(true);
    expect(lockoutStatus(three.state, LOCK, 'client:x', 12_000)).toEqual({ locked: false, until: null, offences: 1, failures: 0 });
    expect(lockoutStatus(three.state, LOCK, 'client:y', 5_000).locked).toBe(false);
  });

  it('does not count failures during a lock', () => {
    const locked = fail(createLockoutTable(100), 'k', 0, 0, 0);
    const during = fail(locked.state, 'k', 1_000, 2_000, 3_000, 9_999);
    expect(during.status).toEqual({ locked: true, until: 10_000, offences: 1, failures: 0 });
    expect(fail(during.state, 'k', 10_000).status).toEqual({ locked: false, until: null, offences: 1, failures: 1 });
  });

  it('uses a sliding window: a failure at t counts while now − t < windowMs', () => {
    expect(fail(createLockoutTable(100), 'k', 0, 30_000, 59_999).status.locked).toBe(true);
    expect(fail(createLockoutTable(100), 'k', 0, 30_000, 60_000).status).toEqual({ locked: false, until: null, offences: 0, failures: 2 });
  });

  it('doubles the lock on each repeat offence, capped at maxLockMs', () => {
    expect([1, 2, 3, 4, 5, 5_000].map((n) => lockDurationMs(LOCK, n))).toEqual([10_000, 20_000, 40_000, 40_000, 40_000, 40_000]);
    let state = createLockoutTable(100);
    const untils: (number | null)[] = [];
    for (const t of [0, 10_000, 30_000, 70_000, 110_000]) {
      const r = fail(state, 'k', t, t, t);
      untils.push(r.status.until);
      state = r.state;
    }
    expect(untils).toEqual([10_000, 30_000, 70_000, 110_000, 150_000]);
    expect(lockoutStatus(state, LOCK, 'k', 149_999)).toEqual({ locked: true, until: 150_000, offences: 5, failures: 0 });
    expect(lockDurationMs({ ...LOCK, growthFactor: 1.5 }, 2)).toBe(15_000);
  });

  it('forgets offences forgetAfterMs after the last lock ended', () => {
    const first = fail(createLockoutTable(100), 'k', 0, 0, 0); // locked until 10 000
    expect(fail(first.state, 'k', 3_609_999, 3_609_999, 3_609_999).status).toMatchObject({ until: 3_609_999 + 20_000, offences: 2 });
    expect(fail(first.state, 'k', 3_610_000, 3_610_000, 3_610_000).status).toMatchObject({ until: 3_610_000 + 10_000, offences: 1 });
    expect(pruneLockouts(first.state, LOCK, 3_609_999).size).toBe(1);
    expect(pruneLockouts(first.state, LOCK, 3_610_000).size).toBe(0);
  });

  it('clears failures on success but keeps the offence count', () => {
    let state = fail(createLockoutTable(100), 'k', 0, 1).state;
    state = recordSuccess(state, LOCK, 'k', 2);
    expect(state.size).toBe(0); // nothing left to remember
    expect(fail(state, 'k', 3, 4).status.locked).toBe(false);
    state = fail(state, 'k', 5, 5, 5).state; // offence 1, until 10 005
    state = recordSuccess(state, LOCK, 'k', 20_000);
    expect(lockoutStatus(state, LOCK, 'k', 20_000)).toEqual({ locked: false, until: null, offences: 1, failures: 0 });
    expect(fail(state, 'k', 20_001, 20_002, 20_003).status.until).toBe(40_003);
    expect(recordSuccess(createLockoutTable(4), LOCK, 'unknown', 0).size).toBe(0);
  });

  it('never lets time go backwards for a key: an earlier `now` cannot end a lock', () => {
    const locked = fail(createLockoutTable(100), 'k', 1_000, 1_000, 1_000);
    expect(lockoutStatus(locked.state, LOCK, 'k', 0)).toEqual({ locked: true, until: 11_000, offences: 1, failures: 0 });
    const late = fail(createLockoutTable(100), 'k', 50_000, 10_000).status; // counted at 50 000
    expect(late).toEqual({ locked: false, until: null, offences: 0, failures: 2 });
  });

  it('stays within maxKeys under 100,000 distinct keys and evicts unlocked entries first', () => {
    const started = performance.now();
    let state = createLockoutTable(1_000);
    const attackers = Array.from({ length: 10 }, (_, i) => `attacker:${i}`);
    for (const key of attackers) state = fail(state, key, 0, 0, 0).state; // locked until 10 000
    for (let i = 0; i < 100_000; i++) {
      state = recordFailure(state, LOCK, `source:${i}`, i / 20).state; // all before 5 000
      if (i % 1_000 === 0) expect(held(state)).toBeLessThanOrEqual(1_000);
    }
    expect(state.size).toBe(held(state));
    expect(state.size).toBeLessThanOrEqual(1_000);
    expect(state.evicted).toBe(100_010 - state.size);
    for (const key of attackers) expect(lockoutStatus(state, LOCK, key, 5_000)).toMatchObject({ locked: true, until: 10_000 });
    expect(performance.now() - started).toBeLessThan(20_000);
  });

  it('evicts the lock that ends first when every entry of a shard is locked', () => {
    let state = fail(createLockoutTable(1), 'a', 0, 0, 0).state; // one shard of one entry
    state = fail(state, 'b', 5, 5, 5).state;
    expect(state.size).toBe(1);
    expect(lockoutStatus(state, LOCK, 'a', 6).locked).toBe(false); // forgotten (documented effect)
    expect(lockoutStatus(state, LOCK, 'b', 6).locked).toBe(true);
  });

  it('is plain data (JSON and msgpack), with sane defaults', () => {
    const state = fail(fail(createLockoutTable(16), 'a', 0, 0, 0).state, 'b', 1).state;
    expect(wireProblem(state)).toBeUndefined();
    expect(JSON.parse(JSON.stringify(state))).toEqual(state);
    const packed = unpackWire(packWire(state as unknown as WireValue), 'test');
    expect(packed.ok && packed.value).toEqual(state);
    expect(lockDurationMs(DEFAULT_LOCKOUT_CONFIG, 1)).toBe(15 * 60_000);
    expect(lockDurationMs(DEFAULT_LOCKOUT_CONFIG, 100)).toBe(24 * 3_600_000);
  });

  it('names the field on misuse', () => {
    const table = createLockoutTable(4);
    expect(misuseField(() => recordFailure(table, { ...LOCK, maxFailures: 0 }, 'k', 0))).toBe('config.maxFailures');
    expect(misuseField(() => recordFailure(table, { ...LOCK, windowMs: 0 }, 'k', 0))).toBe('config.windowMs');
    expect(misuseField(() => recordFailure(table, { ...LOCK, growthFactor: 0.5 }, 'k', 0))).toBe('config.growthFactor');
    expect(misuseField(() => recordFailure(table, { ...LOCK, maxLockMs: 5_000 }, 'k', 0))).toBe('config.maxLockMs');
    expect(misuseField(() => recordFailure(table, LOCK, 'k', Number.NaN))).toBe('now');
    expect(misuseField(() => lockDurationMs(LOCK, 0))).toBe('offence');
  });
});
