/**
 * DoS filtering for the key server (issue 4 "per-client and per-source
 * token-bucket rate limits, code brute-force lockout, bounded queues
 * everywhere"), as pure functions over plain data: every state here is
 * numbers, strings, arrays and plain objects (JSON- and msgpack-friendly, no
 * classes, no closures), so it lives in an xstate machine's context and
 * survives persist → restore. Time is an argument: ms since the Unix epoch
 * (simulated time, as the envelope's `at`).
 *
 * - Token bucket (`take`): `capacity` tokens at most (the burst), refilled
 *   continuously at `refillPerSecond`. Monotonic-safe: `updatedAt` never moves
 *   backwards, so a `now` earlier than the last update refills nothing, and
 *   the interval is not counted twice when time moves forward again.
 * - Bounded keyed limiter (`limiterTake`): one bucket per key (client id,
 *   source address…), at most `maxKeys` keys. Evicting a key only forgets its
 *   bucket: when the key comes back it starts full again, i.e. eviction can
 *   only ever *loosen* the limit for the evicted key, by at most `capacity`
 *   tokens per eviction; it never blocks anyone. An attacker cycling through
 *   more than `maxKeys` identities therefore escapes the per-key limit: put
 *   an aggregate bucket (one fixed key) in front to bound the total. Eviction
 *   is lossless for a key idle for capacity / refillPerSecond seconds (its
 *   bucket would be full anyway).
 * - Brute-force lockout (`recordFailure`): `maxFailures` wrong codes within
 *   `windowMs` (sliding: a failure at t counts while now − t < windowMs) lock
 *   the key for baseLockMs · growthFactor^(n−1), capped at maxLockMs, for its
 *   n-th lock; the lock ends at `lockedUntil` (exclusive: unlocked from that
 *   instant). Offences are forgotten `forgetAfterMs` after the last lock ended.
 *   Failures during a lock are not counted (callers check `lockoutStatus` and
 *   do not even look at the code). A success clears the failures, not the
 *   offences. Eviction picks the least recently seen *unlocked* entry, and only
 *   when every entry of its shard is locked the one whose lock ends first:
 *   an evicted key forgets its failures and offence count (its next lock is
 *   the base again). With 80-bit codes (upload-code.ts) the lockout is defence
 *   in depth; the buckets bound the guessing rate.
 *
 * Bounded tables: keys are spread over ⌈√maxKeys⌉ shards by FNV-1a; each
 * shard keeps its keys least recently seen first and evicts within itself.
 * That approximates a global LRU while keeping every update O(√maxKeys)
 * (copy one shard and the shard list) instead of O(maxKeys). Memory is at
 * most maxKeys entries of keys ≤ MAX_KEY_CHARS characters.
 *
 * Caller misuse (bad config, non-finite time, over-long key, cost above
 * capacity) throws MisuseError naming the field. Nothing here sees hostile
 * bytes: keys come from already-decoded messages.
 */
import { ensure } from '../errors.ts';

/** Fractional refill rates accumulate binary rounding; a bucket this close to `cost` counts as holding it. */
export const TOKEN_EPSILON = 1e-9;
const MS_PER_SECOND = 1000;
/** Keys are ids and addresses, not payloads: an envelope `from` is far shorter. */
export const MAX_KEY_CHARS = 256;
/** Upper bound on maxKeys (≈ 100 MB of keys at MAX_KEY_CHARS), to catch unit mistakes. */
export const MAX_TRACKED_KEYS = 1_000_000;
/** FNV-1a 32-bit (http://www.isthe.com/chongo/tech/comp/fnv/): offset basis and prime. */
const FNV_OFFSET_BASIS = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

const checkNow = (now: number): void => ensure(Number.isFinite(now), 'now', 'must be a finite time in ms');

// ---------------------------------------------------------------- Token bucket

export interface TokenBucketConfig {
  /** Most tokens held: the burst allowed after a quiet period. */
  readonly capacity: number;
  /** Tokens added per second of (simulated) time. */
  readonly refillPerSecond: number;
}

export interface TokenBucket {
  /** Tokens available at `updatedAt`, in [0, capacity]; may be fractional. */
  readonly tokens: number;
  /** Time (ms) of the last update; never moves backwards. */
  readonly updatedAt: number;
}

export interface TakeResult {
  readonly allowed: boolean;
  /** The bucket after the attempt (refilled; tokens spent only when allowed). */
  readonly bucket: TokenBucket;
  /** 0 when allowed; otherwise ms until `cost` tokens will be there (rounded up). */
  readonly retryAfterMs: number;
}

/** Throw MisuseError naming the field unless capacity and refill rate are positive and finite. */
export function checkTokenBucketConfig(config: TokenBucketConfig, field = 'config'): void {
  ensure(typeof config === 'object' && config !== null, field, 'must be { capacity, refillPerSecond }');
  ensure(Number.isFinite(config.capacity) && config.capacity > 0, `${field}.capacity`, 'must be a positive number of tokens');
  ensure(Number.isFinite(config.refillPerSecond) && config.refillPerSecond > 0, `${field}.refillPerSecond`, 'must be a positive number of tokens per second');
}

/** A bucket holding `capacity` tokens at `now`. */
export function fullBucket(config: TokenBucketConfig, now: number): TokenBucket {
  checkTokenBucketConfig(config);
  checkNow(now);
  return { tokens: config.capacity, updatedAt: now };
}

/** The bucket brought up to `now`: refilled for the time elapsed since updatedAt, nothing if `now` is earlier. */
export function refill(bucket: TokenBucket, config: TokenBucketConfig, now: number): TokenBucket {
  checkTokenBucketConfig(config);
  checkNow(now);
  ensure(typeof bucket === 'object' && bucket !== null && Number.isFinite(bucket.tokens) && Number.isFinite(bucket.updatedAt), 'bucket', 'must be { tokens, updatedAt } with finite numbers');
  if (now <= bucket.updatedAt) return bucket.tokens <= config.capacity ? bucket : { tokens: config.capacity, updatedAt: bucket.updatedAt };
  const tokens = Math.min(config.capacity, bucket.tokens + ((now - bucket.updatedAt) * config.refillPerSecond) / MS_PER_SECOND);
  return { tokens, updatedAt: now };
}

/** Try to spend `cost` tokens at `now`. A refused attempt spends nothing. */
export function take(bucket: TokenBucket, config: TokenBucketConfig, now: number, cost = 1): TakeResult {
  const current = refill(bucket, config, now);
  ensure(Number.isFinite(cost) && cost >= 0 && cost <= config.capacity, 'cost', `must be a number of tokens in [0, capacity = ${config.capacity}]`);
  if (current.tokens + TOKEN_EPSILON >= cost) {
    return { allowed: true, bucket: { tokens: Math.max(0, current.tokens - cost), updatedAt: current.updatedAt }, retryAfterMs: 0 };
  }
  const retryAfterMs = Math.ceil(((cost - current.tokens) * MS_PER_SECOND) / config.refillPerSecond);
  return { allowed: false, bucket: current, retryAfterMs };
}

// ---------------------------------------------------------------- Bounded keyed table

export interface KeyedEntry<V> {
  readonly key: string;
  readonly value: V;
}

/** At most maxKeys entries, sharded (see the header). Plain data. */
export interface KeyedTable<V> {
  readonly maxKeys: number;
  /** shards[i]: the keys hashing to i, least recently seen first. */
  readonly shards: readonly (readonly KeyedEntry<V>[])[];
  /** Entries held, ≤ maxKeys. */
  readonly size: number;
  /** Entries evicted so far (for reports and metrics). */
  readonly evicted: number;
}

/** An empty table for at most `maxKeys` keys (⌈√maxKeys⌉ shards). */
export function createKeyedTable<V>(maxKeys: number): KeyedTable<V> {
  ensure(Number.isSafeInteger(maxKeys) && maxKeys >= 1 && maxKeys <= MAX_TRACKED_KEYS, 'maxKeys', `must be an integer in [1, ${MAX_TRACKED_KEYS}]`);
  const shardCount = Math.ceil(Math.sqrt(maxKeys));
  return { maxKeys, shards: Array.from({ length: shardCount }, () => []), size: 0, evicted: 0 };
}

function checkKey(key: string): void {
  ensure(typeof key === 'string' && key.length > 0 && key.length <= MAX_KEY_CHARS, 'key', `must be a string of 1–${MAX_KEY_CHARS} characters`);
}

/** FNV-1a over the UTF-16 code units, mod the shard count. */
function shardOf(table: KeyedTable<unknown>, key: string): number {
  let hash = FNV_OFFSET_BASIS;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), FNV_PRIME) >>> 0;
  return hash % table.shards.length;
}

/** Shard capacities differ by at most one and sum to maxKeys exactly. */
function shardCapacity(table: KeyedTable<unknown>, shard: number): number {
  const count = table.shards.length;
  return Math.floor(table.maxKeys / count) + (shard < table.maxKeys % count ? 1 : 0);
}

/** The value held for `key`, without touching its recency. */
export function tableGet<V>(table: KeyedTable<V>, key: string): V | undefined {
  checkKey(key);
  const shard = table.shards[shardOf(table, key)] ?? [];
  for (const entry of shard) if (entry.key === key) return entry.value;
  return undefined;
}

/**
 * Set (`value` defined: the key becomes the most recently seen, evicting the
 * shard's `victim` if the shard is full) or delete (`value` undefined).
 */
function tablePut<V>(table: KeyedTable<V>, key: string, value: V | undefined, victim: (entries: readonly KeyedEntry<V>[]) => number): KeyedTable<V> {
  const index = shardOf(table, key);
  const shard = table.shards[index] ?? [];
  const at = shard.findIndex((entry) => entry.key === key);
  if (at < 0 && value === undefined) return table;
  const next = shard.slice();
  let { size, evicted } = table;
  if (at >= 0) {
    next.splice(at, 1);
    size--;
  }
  if (value !== undefined) {
    if (next.length >= shardCapacity(table, index)) {
      next.splice(victim(next), 1);
      size--;
      evicted++;
    }
    next.push({ key, value });
    size++;
  }
  const shards = table.shards.slice();
  shards[index] = next;
  return { maxKeys: table.maxKeys, shards, size, evicted };
}

/** Drop every entry `keep` refuses (a periodic sweep: O(maxKeys)); eviction counters unchanged. */
function tableFilter<V>(table: KeyedTable<V>, keep: (value: V) => boolean): KeyedTable<V> {
  let size = 0;
  let changed = false;
  const shards = table.shards.map((shard) => {
    const kept = shard.filter((entry) => keep(entry.value));
    size += kept.length;
    changed ||= kept.length !== shard.length;
    return kept.length === shard.length ? shard : kept;
  });
  return changed ? { maxKeys: table.maxKeys, shards, size, evicted: table.evicted } : table;
}

// ---------------------------------------------------------------- Keyed limiter

export type KeyedLimiter = KeyedTable<TokenBucket>;

export interface KeyedTakeResult {
  readonly allowed: boolean;
  readonly state: KeyedLimiter;
  readonly retryAfterMs: number;
}

/** An empty limiter tracking at most `maxKeys` keys. */
export function createKeyedLimiter(maxKeys: number): KeyedLimiter {
  return createKeyedTable<TokenBucket>(maxKeys);
}

const leastRecentlySeen = (): number => 0;

/** `take` on `key`'s bucket (a new or evicted key starts full); the key becomes the most recently seen. */
export function limiterTake(state: KeyedLimiter, config: TokenBucketConfig, key: string, now: number, cost = 1): KeyedTakeResult {
  checkKey(key);
  const bucket = tableGet(state, key) ?? fullBucket(config, now);
  const result = take(bucket, config, now, cost);
  return { allowed: result.allowed, state: tablePut(state, key, result.bucket, leastRecentlySeen), retryAfterMs: result.retryAfterMs };
}

/** Forget keys whose bucket is full again at `now`: they behave exactly as unseen keys. */
export function pruneKeyedLimiter(state: KeyedLimiter, config: TokenBucketConfig, now: number): KeyedLimiter {
  return tableFilter(state, (bucket) => refill(bucket, config, now).tokens + TOKEN_EPSILON < config.capacity);
}

// ---------------------------------------------------------------- Brute-force lockout

export interface LockoutConfig {
  /** K: this many wrong codes within the window lock the key. */
  readonly maxFailures: number;
  /** Sliding window (ms) over which failures count. */
  readonly windowMs: number;
  /** T: the first lock's length (ms). */
  readonly baseLockMs: number;
  /** Each further lock lasts this many times the previous one (≥ 1). */
  readonly growthFactor: number;
  /** No lock lasts longer (ms). */
  readonly maxLockMs: number;
  /** Offences are forgotten this long (ms) after the last lock ended. */
  readonly forgetAfterMs: number;
}

/**
 * Defaults: a phone checks the check symbol before sending, so a wrong code
 * reaching the server is rarely a typo; 5 within 15 minutes lock for 15
 * minutes, doubling per offence up to a day; forgiven a day after the last lock.
 */
export const DEFAULT_LOCKOUT_CONFIG: LockoutConfig = {
  maxFailures: 5,
  windowMs: 15 * 60 * 1000,
  baseLockMs: 15 * 60 * 1000,
  growthFactor: 2,
  maxLockMs: 24 * 60 * 60 * 1000,
  forgetAfterMs: 24 * 60 * 60 * 1000,
};

export interface LockoutEntry {
  /** Times (ms) of the failures inside the window, oldest first; fewer than maxFailures. */
  readonly failures: readonly number[];
  /** Locks imposed so far (and not yet forgotten). */
  readonly offences: number;
  /** End (exclusive, ms) of the current or last lock; null when none is remembered. */
  readonly lockedUntil: number | null;
  /** Latest time seen for this key (ms): time never moves backwards within an entry. */
  readonly seenAt: number;
}

export type LockoutTable = KeyedTable<LockoutEntry>;

export interface LockoutStatus {
  readonly locked: boolean;
  /** End of the lock (exclusive, ms) while locked, else null. */
  readonly until: number | null;
  readonly offences: number;
  /** Failures currently inside the window. */
  readonly failures: number;
}

export function checkLockoutConfig(config: LockoutConfig, field = 'config'): void {
  ensure(typeof config === 'object' && config !== null, field, 'must be a LockoutConfig');
  const positive = (value: number): boolean => Number.isFinite(value) && value > 0;
  ensure(Number.isSafeInteger(config.maxFailures) && config.maxFailures >= 1, `${field}.maxFailures`, 'must be an integer ≥ 1');
  ensure(positive(config.windowMs), `${field}.windowMs`, 'must be a positive number of ms');
  ensure(positive(config.baseLockMs), `${field}.baseLockMs`, 'must be a positive number of ms');
  ensure(Number.isFinite(config.growthFactor) && config.growthFactor >= 1, `${field}.growthFactor`, 'must be a finite number ≥ 1');
  ensure(Number.isFinite(config.maxLockMs) && config.maxLockMs >= config.baseLockMs, `${field}.maxLockMs`, 'must be a finite number of ms ≥ baseLockMs');
  ensure(Number.isFinite(config.forgetAfterMs) && config.forgetAfterMs >= 0, `${field}.forgetAfterMs`, 'must be a non-negative number of ms');
}

/** Length (ms) of the n-th lock (n ≥ 1): min(maxLockMs, ⌈baseLockMs · growthFactor^(n−1)⌉). */
export function lockDurationMs(config: LockoutConfig, offence: number): number {
  checkLockoutConfig(config);
  ensure(Number.isSafeInteger(offence) && offence >= 1, 'offence', 'must be an integer ≥ 1');
  return Math.min(config.maxLockMs, Math.ceil(config.baseLockMs * config.growthFactor ** (offence - 1)));
}

export function createLockoutTable(maxKeys: number): LockoutTable {
  return createKeyedTable<LockoutEntry>(maxKeys);
}

const EMPTY_ENTRY: LockoutEntry = { failures: [], offences: 0, lockedUntil: null, seenAt: Number.NEGATIVE_INFINITY };

/** The entry as of `now` (never earlier than seenAt): stale failures dropped, old offences forgiven. */
function settle(entry: LockoutEntry, config: LockoutConfig, now: number): LockoutEntry {
  const at = Math.max(now, entry.seenAt);
  const forgiven = entry.lockedUntil !== null && at >= entry.lockedUntil + config.forgetAfterMs;
  return {
    failures: entry.failures.filter((t) => at - t < config.windowMs),
    offences: forgiven ? 0 : entry.offences,
    lockedUntil: forgiven ? null : entry.lockedUntil,
    seenAt: at,
  };
}

const isLocked = (entry: LockoutEntry): boolean => entry.lockedUntil !== null && entry.seenAt < entry.lockedUntil;
const isBlank = (entry: LockoutEntry): boolean => entry.failures.length === 0 && entry.offences === 0 && entry.lockedUntil === null;

function statusOf(entry: LockoutEntry): LockoutStatus {
  const locked = isLocked(entry);
  return { locked, until: locked ? entry.lockedUntil : null, offences: entry.offences, failures: entry.failures.length };
}

/** Evict the least recently seen unlocked entry; if all are locked, the one whose lock ends first. */
function lockoutVictim(now: number): (entries: readonly KeyedEntry<LockoutEntry>[]) => number {
  return (entries) => {
    let soonest = 0;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]?.value ?? EMPTY_ENTRY;
      const until = entry.lockedUntil ?? Number.NEGATIVE_INFINITY;
      if (Math.max(now, entry.seenAt) >= until) return i;
      if (until < (entries[soonest]?.value.lockedUntil ?? Number.POSITIVE_INFINITY)) soonest = i;
    }
    return soonest;
  };
}

/** Is `key` locked at `now`? Read-only: the key's recency is not touched. */
export function lockoutStatus(state: LockoutTable, config: LockoutConfig, key: string, now: number): LockoutStatus {
  checkLockoutConfig(config);
  checkNow(now);
  return statusOf(settle(tableGet(state, key) ?? EMPTY_ENTRY, config, now));
}

export interface LockoutResult {
  readonly state: LockoutTable;
  readonly status: LockoutStatus;
}

/** Count a wrong code from `key` at `now`; the K-th within the window starts a lock (see the header). */
export function recordFailure(state: LockoutTable, config: LockoutConfig, key: string, now: number): LockoutResult {
  checkLockoutConfig(config);
  checkNow(now);
  const entry = settle(tableGet(state, key) ?? EMPTY_ENTRY, config, now);
  let next: LockoutEntry;
  if (isLocked(entry)) {
    next = entry; // not counted during a lock
  } else if (entry.failures.length + 1 >= config.maxFailures) {
    const offences = entry.offences + 1;
    next = { failures: [], offences, lockedUntil: entry.seenAt + lockDurationMs(config, offences), seenAt: entry.seenAt };
  } else {
    next = { ...entry, failures: [...entry.failures, entry.seenAt] };
  }
  return { state: tablePut(state, key, next, lockoutVictim(now)), status: statusOf(next) };
}

/** A correct code from `key`: its failures are cleared (offences and a running lock stay). */
export function recordSuccess(state: LockoutTable, config: LockoutConfig, key: string, now: number): LockoutTable {
  checkLockoutConfig(config);
  checkNow(now);
  const existing = tableGet(state, key);
  if (existing === undefined) return state;
  const entry = { ...settle(existing, config, now), failures: [] };
  return tablePut(state, key, isBlank(entry) ? undefined : entry, lockoutVictim(now));
}

/** Forget keys with nothing left to remember at `now` (no failures in the window, offences forgiven). */
export function pruneLockouts(state: LockoutTable, config: LockoutConfig, now: number): LockoutTable {
  checkLockoutConfig(config);
  checkNow(now);
  return tableFilter(state, (entry) => !isBlank(settle(entry, config, now)));
}
