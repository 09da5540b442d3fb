/**
 * DP-3T low-cost matching (SPECS §2.1; DP3T-ref @ fa2aafc1 `dp3t/protocols/lowcost.py`
 * `ContactTracer.matches_with_key`, `next_day`):
 *
 *   for each published (SK_t, t, release time):
 *     for each day t' with t ≤ t' ≤ min(today, day of the release):
 *       SK_{t'} = H^{t'−t}(SK_t); EphID_0..n−1 = AES-256-CTR(HMAC(SK_{t'}, "broadcast key"), 0)
 *       an observation matches iff its EphID is one of them, it was received on UTC day t'
 *       (an EphID heard on another day never matches) and strictly before the release time.
 *
 * The reference stores observations in 2-hour batches and ignores a batch whose start is ≥ the
 * release time; we keep exact receive times and compare them (stricter by < 2 h: an observation
 * after the release but inside a batch that began before it matches there, not here).
 *
 * Store: plain data (msgpack-friendly), one bucket per UTC day. Retention (SPECS §7.11 item 11):
 * the white paper keeps 14 days, DP3T-ref `RETENTION_PERIOD` and DP3T-android keep 21, the legacy
 * backend publishes 14. We default to 14 (DP3T_MATCH_RETENTION_DAYS; lowcost.ts's
 * DP3T_RETENTION_DAYS = 21 is the reference's figure) and take the reference's rule: on day D keep
 * the buckets of days ≥ D − retention (today plus `retention` past days).
 *
 * Exposure estimate per (key, day): the number of distinct scan slots (receive time ÷ scan
 * interval, default 60 s: one scan a minute) covered by the matched observations — an observation
 * with `durationMs` covers every slot of [receivedAtMs, receivedAtMs + durationMs] — times the scan
 * interval (a coarse estimate; the reference only counts EphIDs seen).
 *
 * Speed: each day of the store is indexed once (Id16Table, an open-addressed table over all 16
 * bytes, seeded by the caller); each (key, day) costs one SHA-256 ratchet step, one HMAC and one
 * AES-CTR call over n·16 bytes, then n probes reading the keystream in place. Days without an
 * observation before the release cost no HMAC/AES.
 *
 * Published keys are hostile data: a malformed key, a key dated after today, older than
 * `maxKeyAgeDays` (bounds the ratchet at that many hashes) or released before its own day is
 * skipped and counted, never thrown. The store and options are the caller's: MisuseError.
 */
import type { CryptoSuite } from '../crypto/suite.ts';
import { ensure, MisuseError } from '../errors.ts';
import { addToDays, keepDaysFrom } from '../day-buckets.ts';
import { Id16Table } from '../id16-table.ts';
import { broadcastStreamKey, dp3tEphIdsPerDay, DP3T_EPHID_BYTES, DP3T_EPOCH_LENGTH_MINUTES, DP3T_SECONDS_PER_DAY, DP3T_SK_BYTES } from './lowcost.ts';

/** Array.isArray without narrowing the argument to any[]. */
const isList = (value: unknown): boolean => Array.isArray(value);
const fail = (field: string, message: string): never => {
  throw new MisuseError(field, message);
};

/** Observation retention, days past today (white paper 14; DP3T-ref/android 21). SPECS §2.1, §7.11. */
export const DP3T_MATCH_RETENTION_DAYS = 14;
/** Oldest published key day accepted, days before today (DP3T-ref `RETENTION_PERIOD = 21`, the larger figure). SPECS §2.1, §7.11. */
export const DP3T_MAX_KEY_AGE_DAYS = 21;
/** Scan interval of the exposure estimate, ms: one scan a minute (issue 5's TCN scan period; SPECS is silent). */
export const DP3T_SCAN_INTERVAL_MS = 60_000;
/** One UTC day, ms. SPECS §2.1 (`SECONDS_PER_DAY`). */
export const DP3T_MS_PER_DAY = DP3T_SECONDS_PER_DAY * 1000;
/** RSSI range a BLE controller reports, dBm (HCI LE Advertising Report: −127…+20, as gaen/sighting-index.ts). */
export const DP3T_RSSI_MIN_DBM = -127;
export const DP3T_RSSI_MAX_DBM = 20;
/** Latest time accepted, ms (the ECMAScript Date range); ceiling of day-count options (ten years). */
const MAX_TIME_MS = 8.64e15;
const MAX_DAYS_OPTION = 3650;
/** Counter block 0 of the PRG (SPECS §2.1, §7.9). */
const ZERO_COUNTER = new Uint8Array(16);


// ------------------------------------------------------------ the observation store

/** One received EphID as the phone stores it (SPECS §2.1 "received EphID, exposure measurement, day"). */
export interface Dp3tObservation {
  /** 16 bytes. */ readonly ephId: Uint8Array;
  /** Receive time, Unix milliseconds; its UTC day is the observation's day. */ readonly receivedAtMs: number;
  /** Received signal strength, integer dBm in [−127, 20]. */ readonly rssiDbm: number;
  /** TX power − RSSI, dB, when the sender's TX power is known (DP-3T carries none). */ readonly attenuationDb?: number;
  /** How long the radio kept hearing it after receivedAtMs (merged sightings), ms, 0–1 day. */ readonly durationMs?: number;
}

/** The observations of one UTC day. */
export interface Dp3tObservationDay { readonly day: number; readonly observations: readonly Dp3tObservation[] }
/** Observations by UTC day, days ascending and distinct. Plain data: persist it as it is. */
export interface Dp3tObservationStore { readonly days: readonly Dp3tObservationDay[] }

export const EMPTY_DP3T_OBSERVATION_STORE: Dp3tObservationStore = { days: [] };

/** UTC day of a Unix-ms time. */
export function dp3tDayOfMs(ms: number): number {
  return Math.floor(ms / DP3T_MS_PER_DAY);
}

/** MisuseError naming the first bad field; message strings are built only on failure (index builds check every one). */
function checkObservation(o: Dp3tObservation, at: string): void {
  if (typeof o !== 'object' || o === null) fail(at, 'must be a Dp3tObservation');
  if (!(o.ephId instanceof Uint8Array) || o.ephId.length !== DP3T_EPHID_BYTES) fail(`${at}.ephId`, `must be ${DP3T_EPHID_BYTES} bytes`);
  const t = o.receivedAtMs, r = o.rssiDbm, d = o.durationMs;
  if (!(t >= 0 && t <= MAX_TIME_MS)) fail(`${at}.receivedAtMs`, `must be Unix ms in [0, ${MAX_TIME_MS}], got ${t}`);
  if (!(Number.isInteger(r) && r >= DP3T_RSSI_MIN_DBM && r <= DP3T_RSSI_MAX_DBM)) fail(`${at}.rssiDbm`, `must be an integer dBm in [${DP3T_RSSI_MIN_DBM}, ${DP3T_RSSI_MAX_DBM}], got ${r}`);
  if (o.attenuationDb !== undefined && !Number.isFinite(o.attenuationDb)) fail(`${at}.attenuationDb`, 'must be finite');
  if (d !== undefined && !(d >= 0 && d <= DP3T_MS_PER_DAY)) fail(`${at}.durationMs`, `must be in [0, ${DP3T_MS_PER_DAY}] ms`);
}

/** A new store with `observations` added to their UTC days (only the touched days are copied). */
export function addDp3tObservations(store: Dp3tObservationStore, observations: readonly Dp3tObservation[]): Dp3tObservationStore {
  observations.forEach((o, i) => checkObservation(o, `observations[${i}]`));
  return addToDays(store, observations, (o) => dp3tDayOfMs(o.receivedAtMs));
}

const checkDays = (value: number, field: string): void =>
  ensure(Number.isInteger(value) && value >= 0 && value <= MAX_DAYS_OPTION, field, `must be an integer in [0, ${MAX_DAYS_OPTION}] days, got ${value}`);
const checkNow = (nowMs: number, field: string): void =>
  ensure(Number.isFinite(nowMs) && nowMs >= 0 && nowMs <= MAX_TIME_MS, field, `must be Unix ms in [0, ${MAX_TIME_MS}], got ${nowMs}`);

/**
 * Retention deletion: keep the days ≥ today − retentionDays (DP3T-ref `next_day`: `last_retained =
 * start_of_today − RETENTION_PERIOD days`). Default 14 days (see the header, SPECS §7.11).
 */
export function pruneDp3tObservations(store: Dp3tObservationStore, nowMs: number, retentionDays: number = DP3T_MATCH_RETENTION_DAYS): Dp3tObservationStore {
  checkNow(nowMs, 'nowMs');
  checkDays(retentionDays, 'retentionDays');
  return keepDaysFrom(store, dp3tDayOfMs(nowMs) - retentionDays);
}

// ------------------------------------------------------------ the index

interface DayIndex {
  readonly day: number;
  readonly table: Id16Table;
  /** groups[id]: the day's observations of distinct EphID id, by receive time. */ readonly groups: readonly (readonly Dp3tObservation[])[];
  /** Earliest receive time of the day. */ readonly firstMs: number;
}

/** A store indexed for matchDp3tKeys: build once, match many batches. Do not mutate the store's bytes meanwhile. */
export class Dp3tObservationIndex {
  readonly days: readonly DayIndex[];
  readonly observations: number;

  constructor(store: Dp3tObservationStore, hashSeed = 0) {
    ensure(typeof store === 'object' && store !== null && isList(store.days), 'store.days', 'must be an array of Dp3tObservationDay');
    const days: DayIndex[] = [];
    let total = 0;
    let previous = -1;
    store.days.forEach((d, k) => {
      const at = `store.days[${k}]`;
      ensure(Number.isInteger(d.day) && d.day > previous, `${at}.day`, 'days must be ascending, distinct integers ≥ 0');
      previous = d.day;
      const table = new Id16Table(hashSeed);
      const groups: Dp3tObservation[][] = [];
      let firstMs = Number.POSITIVE_INFINITY;
      d.observations.forEach((o, i) => {
        checkObservation(o, `${at}.observations[${i}]`);
        ensure(dp3tDayOfMs(o.receivedAtMs) === d.day, `${at}.observations[${i}].receivedAtMs`, `lies outside day ${d.day}`);
        const id = table.insert(o.ephId);
        if (id === groups.length) groups.push([o]);
        else (groups[id] as Dp3tObservation[]).push(o);
        firstMs = Math.min(firstMs, o.receivedAtMs);
      });
      for (const g of groups) g.sort((a, b) => a.receivedAtMs - b.receivedAtMs);
      total += d.observations.length;
      if (groups.length > 0) days.push({ day: d.day, table, groups, firstMs });
    });
    this.days = days;
    this.observations = total;
  }
}

// ------------------------------------------------------------ matching

/** A published key (legacy backend `ProtoExposee {key, keyDate}` plus its batch release time). SPECS §2.1. */
export interface PublishedDp3tKey {
  /** SK_t, 32 bytes. */ readonly sk: Uint8Array;
  /** t, the UTC day number of the first contagious day. */ readonly day: number;
  /** Publication (batch release) time, Unix ms: only observations strictly before it count. */ readonly releasedAtMs: number;
}

export interface Dp3tMatchOptions {
  /** Current time, Unix ms: today's UTC day is the last day matched. */ readonly nowMs: number;
  /** Epoch length L, minutes (default 15, n = 96 EphIDs a day). SPECS §2.1, §7.12. */ readonly epochLengthMinutes?: number;
  /** Keys dated more than this many days before today are skipped (default 21). */ readonly maxKeyAgeDays?: number;
  /** Scan interval of the exposure estimate, ms (default 60 000). */ readonly scanIntervalMs?: number;
  /** Seed of the EphID hash when a store (not an index) is passed, uint32. Results never depend on it. */ readonly hashSeed?: number;
}

export interface Dp3tMatch {
  /** Position of the key in `published`. */ readonly keyIndex: number;
  /** UTC day t' of the EphID and of the observation. */ readonly day: number;
  /** Position of the EphID in generation order (the broadcast order is shuffled). */ readonly ephIdIndex: number;
  /** Epoch of the receive time within its day, 0 … n − 1. */ readonly epochOfDay: number;
  readonly observation: Dp3tObservation;
}

/** Summary of one key's matches on one day. */
export interface Dp3tExposure {
  readonly keyIndex: number;
  readonly day: number;
  readonly observations: number;
  /** Distinct EphIDs seen (the reference's count for the day). */ readonly ephIds: number;
  /** Distinct scan slots covered (see the header). */ readonly scanSlots: number;
  /** scanSlots × scan interval, ms. */ readonly durationMs: number;
  readonly maxRssiDbm: number;
  /** Smallest attenuation among observations that carry one. */ readonly minAttenuationDb?: number;
}

export interface Dp3tMatchStats {
  readonly keys: number;
  readonly matchedKeys: number;
  /** (key, day) pairs whose EphIDs were derived (one HMAC + one AES-CTR each). */ readonly daysDerived: number;
  /** SHA-256 ratchet steps. */ readonly ratchets: number;
  /** Keys skipped, by reason (hostile or useless data, never thrown). */
  readonly skipped: { readonly malformed: number; readonly future: number; readonly tooOld: number; readonly releasedBeforeDay: number };
}

export interface Dp3tMatchResult { readonly matches: readonly Dp3tMatch[]; readonly exposures: readonly Dp3tExposure[]; readonly stats: Dp3tMatchStats }

function isWellFormed(key: PublishedDp3tKey): boolean {
  if (typeof key !== 'object' || key === null) return false;
  const { sk, day, releasedAtMs } = key;
  return sk instanceof Uint8Array && sk.length === DP3T_SK_BYTES && Number.isSafeInteger(day) && day >= 0 && typeof releasedAtMs === 'number' && Number.isFinite(releasedAtMs);
}

/** Distinct slots of ⌊t / scan⌋ covered by [receivedAtMs, receivedAtMs + durationMs] over `obs`. */
function scanSlots(obs: readonly Dp3tObservation[], scanMs: number): number {
  const ranges = obs.map((o) => [Math.floor(o.receivedAtMs / scanMs), Math.floor((o.receivedAtMs + (o.durationMs ?? 0)) / scanMs)] as const);
  ranges.sort((a, b) => a[0] - b[0]);
  let total = 0;
  let end = Number.NEGATIVE_INFINITY;
  for (const [from, to] of ranges) {
    if (to <= end) continue;
    total += to - Math.max(from, end + 1) + 1;
    end = to;
  }
  return total;
}

function exposureOf(keyIndex: number, day: number, obs: readonly Dp3tObservation[], ephIds: number, scanMs: number): Dp3tExposure {
  let maxRssi = DP3T_RSSI_MIN_DBM;
  let minAtt = Number.POSITIVE_INFINITY;
  for (const o of obs) {
    maxRssi = Math.max(maxRssi, o.rssiDbm);
    if (o.attenuationDb !== undefined) minAtt = Math.min(minAtt, o.attenuationDb);
  }
  const slots = scanSlots(obs, scanMs);
  const base = { keyIndex, day, observations: obs.length, ephIds, scanSlots: slots, durationMs: slots * scanMs, maxRssiDbm: maxRssi };
  return Number.isFinite(minAtt) ? { ...base, minAttenuationDb: minAtt } : base;
}

/**
 * Match published DP-3T keys against the phone's observations (SPECS §2.1, see the header).
 * `store` may be a prebuilt Dp3tObservationIndex (reuse it across batches).
 */
export function matchDp3tKeys(
  crypto: CryptoSuite,
  published: readonly PublishedDp3tKey[],
  store: Dp3tObservationStore | Dp3tObservationIndex,
  options: Dp3tMatchOptions,
): Dp3tMatchResult {
  ensure(isList(published), 'published', 'must be an array');
  ensure(typeof options === 'object' && options !== null, 'options', 'must be Dp3tMatchOptions');
  checkNow(options.nowMs, 'options.nowMs');
  const n = dp3tEphIdsPerDay(options.epochLengthMinutes ?? DP3T_EPOCH_LENGTH_MINUTES);
  const epochMs = DP3T_MS_PER_DAY / n;
  const maxAge = options.maxKeyAgeDays ?? DP3T_MAX_KEY_AGE_DAYS;
  checkDays(maxAge, 'options.maxKeyAgeDays');
  const scanMs = options.scanIntervalMs ?? DP3T_SCAN_INTERVAL_MS;
  ensure(Number.isFinite(scanMs) && scanMs >= 1 && scanMs <= DP3T_MS_PER_DAY, 'options.scanIntervalMs', `must be in [1, ${DP3T_MS_PER_DAY}] ms, got ${scanMs}`);
  const seed = options.hashSeed ?? 0;
  ensure(Number.isInteger(seed) && seed >= 0 && seed <= 0xffff_ffff, 'options.hashSeed', `must be a uint32, got ${seed}`);
  const index = store instanceof Dp3tObservationIndex ? store : new Dp3tObservationIndex(store, seed);
  const today = dp3tDayOfMs(options.nowMs);

  const matches: Dp3tMatch[] = [];
  const exposures: Dp3tExposure[] = [];
  const skipped = { malformed: 0, future: 0, tooOld: 0, releasedBeforeDay: 0 };
  let matchedKeys = 0, daysDerived = 0, ratchets = 0;
  for (let k = 0; k < published.length; k++) {
    const key = published[k] as PublishedDp3tKey;
    if (!isWellFormed(key)) { skipped.malformed++; continue; }
    if (key.day > today) { skipped.future++; continue; }
    if (key.day < today - maxAge) { skipped.tooOld++; continue; }
    const release = key.releasedAtMs;
    // Observations strictly before the release: the last day that can hold one is that of release − 1 ms.
    const lastDay = Math.min(today, Math.floor((release - 1) / DP3T_MS_PER_DAY));
    if (lastDay < key.day) { skipped.releasedBeforeDay++; continue; }
    let sk = key.sk;
    let skDay = key.day;
    let matchedThisKey = false;
    for (const d of index.days) {
      if (d.day < key.day || d.firstMs >= release) continue;
      if (d.day > lastDay) break;
      for (; skDay < d.day; skDay++, ratchets++) sk = crypto.sha256(sk);
      const keystream = crypto.aesCtr(broadcastStreamKey(crypto, sk), ZERO_COUNTER, new Uint8Array(n * DP3T_EPHID_BYTES));
      daysDerived++;
      const dayMatches: Dp3tObservation[] = [];
      let ephIds = 0;
      for (let i = 0; i < n; i++) {
        const id = d.table.find(keystream, i * DP3T_EPHID_BYTES);
        if (id < 0) continue;
        let seen = false;
        for (const o of d.groups[id] as readonly Dp3tObservation[]) {
          if (o.receivedAtMs >= release) break;
          seen = true;
          dayMatches.push(o);
          const epochOfDay = Math.floor((o.receivedAtMs - d.day * DP3T_MS_PER_DAY) / epochMs);
          matches.push({ keyIndex: k, day: d.day, ephIdIndex: i, epochOfDay, observation: o });
        }
        if (seen) ephIds++;
      }
      if (dayMatches.length > 0) {
        matchedThisKey = true;
        exposures.push(exposureOf(k, d.day, dayMatches, ephIds, scanMs));
      }
    }
    if (matchedThisKey) matchedKeys++;
  }
  return { matches, exposures, stats: { keys: published.length, matchedKeys, daysDerived, ratchets, skipped } };
}
