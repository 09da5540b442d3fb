/**
 * DP-3T low-cost design (SPECS §2.1; white paper 25 May 2020 §2.1, reference implementation
 * DP3T-ref @ fa2aafc1 `dp3t/protocols/lowcost.py`, `dp3t/config.py`; DP3T-android @ 583ebf4a
 * `CryptoModule.createEphIds`):
 *
 *   SK_t         32 bytes; SK_0 random (the caller draws it), SK_{t+1} = SHA-256(SK_t)
 *   stream_key   HMAC-SHA256(key = SK_t, msg = ASCII "broadcast key")   (32 bytes)
 *   keystream    AES-256-CTR(stream_key, counter block 0x00 × 16, 128-bit big-endian
 *                counter) over n · 16 zero bytes
 *   EphID_i      keystream[16i : 16i + 16], i = 0 … n − 1, n = 1440 / L (96 for L = 15 min)
 *
 * ephIdsForDay returns the EphIDs in generation order, as the vectors list them; a phone
 * broadcasts them in a secure random order (shuffleEphIds, randomness as an argument).
 * Ambiguities settled by SPECS §7: the PRF label is lowercase "broadcast key" (§7.8; the
 * capital-B and early-draft labels give other EphIDs), the PRG is AES-256-CTR from counter 0
 * (§7.9), L is configurable with 15 min the reference default (§7.12).
 * Caller misuse throws MisuseError naming the field.
 */
import type { CryptoSuite } from '../crypto/suite.ts';
import { ensure } from '../errors.ts';

/** SK_t length, bytes (SHA-256 output; legacy backend `ws.app.key_size = 32`). SPECS §2.1. */
export const DP3T_SK_BYTES = 32;
/** EphID length, bytes (`LENGTH_EPHID = 16`). SPECS §2.1. */
export const DP3T_EPHID_BYTES = 16;
/** Reference epoch length L, minutes (`EPOCH_LENGTH = 15`). SPECS §2.1, §7.12. */
export const DP3T_EPOCH_LENGTH_MINUTES = 15;
/** Minutes in a (UTC) day. SPECS §2.1 (`NUM_EPOCHS_PER_DAY = 1440 // EPOCH_LENGTH`). */
export const DP3T_MINUTES_PER_DAY = 1440;
/** Seconds in a day (`SECONDS_PER_DAY`); day t starts at t · 86 400 Unix seconds. SPECS §2.1. */
export const DP3T_SECONDS_PER_DAY = 86_400;
/** EphIDs per day at the reference epoch length, count: 1440 / 15. SPECS §2.1. */
export const DP3T_EPHIDS_PER_DAY = DP3T_MINUTES_PER_DAY / DP3T_EPOCH_LENGTH_MINUTES;
/** Days of observations kept (white paper 14; DP3T-ref `RETENTION_PERIOD = 21`, SDK 21). SPECS §2.1, §7.11. */
export const DP3T_RETENTION_DAYS = 21;
/** ASCII "broadcast key" (13 bytes), the PRF message (`BROADCAST_KEY`). SPECS §2.1, §7.8. */
export const DP3T_BROADCAST_KEY_LABEL = Uint8Array.of(0x62, 0x72, 0x6f, 0x61, 0x64, 0x63, 0x61, 0x73, 0x74, 0x20, 0x6b, 0x65, 0x79);
/** Seconds per minute, to turn the epoch length L into seconds. */
const SECONDS_PER_MINUTE = 60;
/** Initial CTR counter block: 16 zero bytes (`Counter.new(128, initial_value=0)`). SPECS §2.1, §7.9. */
const ZERO_COUNTER = new Uint8Array(16);
/** Most EphIDs one day key may give: one per minute (L = 1). */
const MAX_EPHIDS_PER_DAY = DP3T_MINUTES_PER_DAY;

function checkSk(sk: Uint8Array, field: string): void {
  ensure(sk instanceof Uint8Array, field, 'must be a Uint8Array');
  ensure(sk.length === DP3T_SK_BYTES, field, `must be ${DP3T_SK_BYTES} bytes, got ${sk.length}`);
}

function checkCount(count: number, field: string, min: number, max: number): void {
  ensure(Number.isInteger(count) && count >= min && count <= max, field, `must be an integer in [${min}, ${max}], got ${count}`);
}

function checkEpochLength(epochLengthMinutes: number): void {
  checkCount(epochLengthMinutes, 'epochLengthMinutes', 1, DP3T_MINUTES_PER_DAY);
  ensure(DP3T_MINUTES_PER_DAY % epochLengthMinutes === 0, 'epochLengthMinutes', `must divide ${DP3T_MINUTES_PER_DAY}, got ${epochLengthMinutes}`);
}

/**
 * n = 1440 / L EphIDs per day for an epoch of L minutes (white paper "n = 24·60/L").
 * L must divide 1440 so that the day is exactly n epochs. SPECS §2.1, §7.12.
 */
export function dp3tEphIdsPerDay(epochLengthMinutes: number): number {
  checkEpochLength(epochLengthMinutes);
  return DP3T_MINUTES_PER_DAY / epochLengthMinutes;
}

function checkUnixSeconds(unixSeconds: number): void {
  ensure(Number.isFinite(unixSeconds) && unixSeconds >= 0, 'unixSeconds', `must be a finite number ≥ 0, got ${unixSeconds}`);
}

/** Day t = floor(unixSeconds / 86 400), the UTC day (`day_start_from_time`). SPECS §2.1. */
export function dp3tDayNumber(unixSeconds: number): number {
  checkUnixSeconds(unixSeconds);
  return Math.floor(unixSeconds / DP3T_SECONDS_PER_DAY);
}

/**
 * Index within its day of the epoch holding `unixSeconds`: floor(seconds since
 * UTC midnight / (L · 60)), in [0, n) (`get_ephid_for_time`). SPECS §2.1.
 */
export function dp3tEpochOfDay(unixSeconds: number, epochLengthMinutes: number = DP3T_EPOCH_LENGTH_MINUTES): number {
  checkUnixSeconds(unixSeconds);
  checkEpochLength(epochLengthMinutes);
  const sinceMidnight = unixSeconds - dp3tDayNumber(unixSeconds) * DP3T_SECONDS_PER_DAY;
  return Math.floor(sinceMidnight / (epochLengthMinutes * SECONDS_PER_MINUTE));
}

/** SK_{t+1} = SHA-256(SK_t) (`next_day_key`). SPECS §2.1. */
export function nextDayKey(crypto: CryptoSuite, sk: Uint8Array): Uint8Array {
  checkSk(sk, 'sk');
  return crypto.sha256(sk);
}

/**
 * SK_{t+days} = H^days(SK_t): the key `days` days after `sk` (0 gives a copy).
 * A receiver ratchets a published (SK_t, t) to each later day. SPECS §2.1.
 */
export function dayKeyAfter(crypto: CryptoSuite, sk: Uint8Array, days: number): Uint8Array {
  checkSk(sk, 'sk');
  ensure(Number.isSafeInteger(days) && days >= 0, 'days', `must be a non-negative integer, got ${days}`);
  let key: Uint8Array = sk.slice();
  for (let d = 0; d < days; d++) key = crypto.sha256(key);
  return key;
}

/** stream_key = HMAC-SHA256(SK_t, "broadcast key"), 32 bytes: PRF(SK_t, "broadcast key"). SPECS §2.1. */
export function broadcastStreamKey(crypto: CryptoSuite, sk: Uint8Array): Uint8Array {
  checkSk(sk, 'sk');
  return crypto.hmacSha256(sk, DP3T_BROADCAST_KEY_LABEL);
}

/**
 * EphID_0 … EphID_{count−1} of day key SK_t in generation order (before the
 * broadcast shuffle): one AES-256-CTR keystream of count · 16 bytes, split
 * into 16-byte EphIDs. `count` defaults to 96 (L = 15 min); use
 * dp3tEphIdsPerDay(L) for another epoch length. SPECS §2.1.
 */
export function ephIdsForDay(crypto: CryptoSuite, sk: Uint8Array, count: number = DP3T_EPHIDS_PER_DAY): Uint8Array[] {
  checkSk(sk, 'sk');
  checkCount(count, 'count', 1, MAX_EPHIDS_PER_DAY);
  const keystream = crypto.aesCtr(broadcastStreamKey(crypto, sk), ZERO_COUNTER, new Uint8Array(count * DP3T_EPHID_BYTES));
  const out: Uint8Array[] = [];
  // slice (not subarray): each EphID owns its bytes.
  for (let i = 0; i < count; i++) out.push(keystream.slice(i * DP3T_EPHID_BYTES, (i + 1) * DP3T_EPHID_BYTES));
  return out;
}

/**
 * The EphIDs of `days` consecutive days starting with SK_t's day: result[d]
 * is ephIdsForDay(H^d(SK_t)), what a receiver regenerates from a published
 * (SK_t, t) to match observations of day t + d (`_reconstruct_ephids`). SPECS §2.1.
 */
export function ephIdsForDays(crypto: CryptoSuite, sk: Uint8Array, days: number, count: number = DP3T_EPHIDS_PER_DAY): Uint8Array[][] {
  checkSk(sk, 'sk');
  ensure(Number.isSafeInteger(days) && days >= 0, 'days', `must be a non-negative integer, got ${days}`);
  checkCount(count, 'count', 1, MAX_EPHIDS_PER_DAY);
  const out: Uint8Array[][] = [];
  let key = sk;
  for (let d = 0; d < days; d++) {
    if (d > 0) key = crypto.sha256(key);
    out.push(ephIdsForDay(crypto, key, count));
  }
  return out;
}

/** Uniform integers in [0, maxExclusive): the shape of the Rng port's `int` (actors/ports.ts). */
export interface UniformIntSource {
  int(maxExclusive: number): number;
}

/**
 * A copy of `ephIds` in a random broadcast order (`secure_shuffle`): Fisher–Yates
 * drawing from `rng` (a CSPRNG on a phone, the seeded Rng in simulation). SPECS §2.1.
 */
export function shuffleEphIds(ephIds: readonly Uint8Array[], rng: UniformIntSource): Uint8Array[] {
  const out = ephIds.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    ensure(Number.isInteger(j) && j >= 0 && j <= i, 'rng', `int(${i + 1}) returned ${j}, outside [0, ${i}]`);
    const a = out[i] as Uint8Array;
    out[i] = out[j] as Uint8Array;
    out[j] = a;
  }
  return out;
}
