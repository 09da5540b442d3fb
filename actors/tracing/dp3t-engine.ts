/**
 * DP-3T low-cost on the tracing phone (SPECS §2.1; protocol/dp3t/):
 *
 *   keys      SK_t per UTC day: the first one 32 bytes from the phone's DRBG,
 *             then SK_{t+1} = SHA-256(SK_t); the day keys of the retention are
 *             held (a diagnosis reports the first infectious day's).
 *   broadcast the 96 EphIDs of the day (15-minute epochs) in an order shuffled
 *             with the DRBG once a day; the EphID of the current epoch is the
 *             whole advertised payload (16 bytes), re-advertised — with a new
 *             address, by the phone — at every epoch boundary.
 *   observe   one observation per EphID per scan window (EphID, time of the
 *             first frame, mean RSSI), in protocol/dp3t/matching.ts's store.
 *   retention 14 days (SPECS §7.11 item 11: white paper and legacy backend 14,
 *             reference and SDK 21), to the millisecond: own keys whose day
 *             ended and observations older than that are dropped.
 *   report    (SK_t, t) of the first infectious day as the key server's
 *             dp3t-seed record; then every held key is discarded and a fresh
 *             random SK starts today (the reported chain is public: its later
 *             EphIDs, today's included, must never go on the air).
 *   match     matchDp3tKeys with the download time `at` as the release time:
 *             the key client's records carry no publication time, and the
 *             phone sees a record only once it has downloaded it, so every
 *             observation recorded before that moment counts (the reference
 *             compares with the batch release time, which is earlier; the
 *             positive's phone stopped broadcasting the chain at its diagnosis,
 *             so nothing of it is heard in between).
 *
 * Radio defaults — the same cadence as the GAEN engine, so the comparison
 * between the protocols is one of protocols, not of duty cycles: advertise
 * every 250 ms, scan 4 s every 5 min. Duplicates are not filtered: every
 * advertisement of a window is reported and averaged into one observation, as
 * DP-3T's storage is per EphID anyway and one RSSI per window (4 dB of noise in
 * the city's air) is too noisy to tell 1.5 m from 2.1 m; the mean of the
 * window's ~16 frames has ~1 dB.
 *
 * Risk (see dp3tEngineConfig): per (record, day) the matched observations are
 * split into runs of consecutive scan windows (the contact's stays); a run whose
 * mean RSSI reaches `rssiThresholdDbm` counts one scan interval per window. The
 * day's sum is the estimated exposure: ≥ 15 min high, ≥ 5 min low. Why runs:
 * the city's near misses are long (household members at 2.1 m all evening, desk
 * diagonals at 2.12 m all day, ~0.8 dB under the 2 m threshold), and with ~1 dB
 * per window one window in five crosses it — enough for 15 minutes a day. A
 * run's mean over hours has ~0.1 dB. Measured on the city (200 phones × 4 days,
 * 20 positives, recall 1 in all three): runs 0.97 precision, per-window means
 * 0.73, runs over one RSSI per window (filterDuplicates) 0.89.
 */
import { SeededRng, drbgDraw, type DrbgState } from '../../protocol/crypto/drbg.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import { ensure } from '../../protocol/errors.ts';
import { dayKeyAfter, dp3tEphIdsPerDay, DP3T_EPHID_BYTES, DP3T_EPOCH_LENGTH_MINUTES, DP3T_SK_BYTES, ephIdsForDay, shuffleEphIds } from '../../protocol/dp3t/lowcost.ts';
import {
  addDp3tObservations,
  dp3tDayOfMs,
  DP3T_MATCH_RETENTION_DAYS,
  DP3T_MAX_KEY_AGE_DAYS,
  DP3T_MS_PER_DAY,
  DP3T_RSSI_MAX_DBM,
  DP3T_RSSI_MIN_DBM,
  EMPTY_DP3T_OBSERVATION_STORE,
  matchDp3tKeys,
  pruneDp3tObservations,
  type Dp3tMatch,
  type Dp3tObservation,
  type Dp3tObservationStore,
  type PublishedDp3tKey,
} from '../../protocol/dp3t/matching.ts';
import type { Dp3tSeedRecord } from '../../protocol/keyserver/distribution-records.ts';
import type { SimMillis } from '../ports.ts';
import type { Exposure, ExposureRisk, RadioTiming, TracingEngine } from './engine.ts';

const MINUTE_MS = 60_000;
/** Bytes of a stored observation: EphID (16) ‖ receive time (8) ‖ int8 RSSI. SPECS §2.1 "EphID, exposure measurement, day". */
const OBSERVATION_BYTES = DP3T_EPHID_BYTES + 8 + 1;
/** Bytes of a held day key: SK_t (32) ‖ the 2-byte day counter. SPECS §2.1. */
const DAY_KEY_BYTES = DP3T_SK_BYTES + 2;
/** A run of a contact ends when a window is missed: a gap over 1.5 scan intervals (windows are one interval apart ± the window). */
const RUN_GAP_INTERVALS = 1.5;
/** Latest frame time accepted, ms (the ECMAScript Date range, as matching.ts checks: a bad radio time is refused, not thrown). */
const MAX_FRAME_TIME_MS = 8.64e15;
/** Ceiling of day-count options (ten years, as matching.ts). */
const MAX_CONFIG_DAYS = 3650;

/** Radio cadence: GAEN's (gaen-engine.ts), so both protocols are compared on the same duty cycle (SPECS §2.1 leaves it open). */
export const DP3T_TIMING: RadioTiming = Object.freeze({ advertiseIntervalMs: 250, scanWindowMs: 4000, scanIntervalMs: 5 * MINUTE_MS, filterDuplicates: false });

/**
 * RSSI from which a contact counts, dBm: the city's −59 dBm at 1 m with path-loss
 * exponent 3 gives −59 − 30·log10(2) = −68.0 dBm at 2 m, the ground truth's distance
 * (services/city/tracing/run.ts TRACING_PROPAGATION; calibrated there, as a health
 * authority calibrates to real phones).
 */
export const DEFAULT_DP3T_RSSI_THRESHOLD_DBM = -68;
/** Estimated minutes a day within the threshold for a high-risk exposure (the ground truth's 15 min; SPECS §2.1 leaves risk to the app). */
export const DEFAULT_DP3T_HIGH_RISK_MINUTES = 15;
/** … and for a low-risk one (GAEN's low threshold, for the same comparison). */
export const DEFAULT_DP3T_LOW_RISK_MINUTES = 5;

export interface Dp3tEngineConfig {
  /** Epoch length L, minutes (SPECS §2.1, §7.12: 15, n = 96 EphIDs a day). Must divide 1440. */
  readonly epochLengthMinutes: number;
  /** Days own keys and observations are kept past today (SPECS §7.11: white paper 14, reference 21; we take 14). */
  readonly retentionDays: number;
  /** Published keys dated more than this many days ago are skipped (SPECS §2.1: reference 21). */
  readonly maxKeyAgeDays: number;
  /** The phone's scan interval, ms: the time one heard window stands for (must equal timing.scanIntervalMs). */
  readonly scanIntervalMs: number;
  /** Mean RSSI of a run (or a window, below) from which its windows count, dBm. */
  readonly rssiThresholdDbm: number;
  /** 'run': threshold the mean over a run of consecutive windows; 'window': each window's own mean. */
  readonly rssiAveraging: 'run' | 'window';
  readonly highRiskMinutes: number;
  readonly lowRiskMinutes: number;
}

export function dp3tEngineConfig(overrides: Partial<Dp3tEngineConfig> = {}): Dp3tEngineConfig {
  const c: Dp3tEngineConfig = {
    epochLengthMinutes: DP3T_EPOCH_LENGTH_MINUTES,
    retentionDays: DP3T_MATCH_RETENTION_DAYS,
    maxKeyAgeDays: DP3T_MAX_KEY_AGE_DAYS,
    scanIntervalMs: DP3T_TIMING.scanIntervalMs,
    rssiThresholdDbm: DEFAULT_DP3T_RSSI_THRESHOLD_DBM,
    rssiAveraging: 'run',
    highRiskMinutes: DEFAULT_DP3T_HIGH_RISK_MINUTES,
    lowRiskMinutes: DEFAULT_DP3T_LOW_RISK_MINUTES,
    ...overrides,
  };
  dp3tEphIdsPerDay(c.epochLengthMinutes); // throws MisuseError unless L divides 1440
  const days = (v: number): boolean => Number.isInteger(v) && v >= 0 && v <= MAX_CONFIG_DAYS;
  ensure(days(c.retentionDays), 'retentionDays', `must be an integer in [0, ${MAX_CONFIG_DAYS}] days`);
  ensure(days(c.maxKeyAgeDays), 'maxKeyAgeDays', `must be an integer in [0, ${MAX_CONFIG_DAYS}] days`);
  ensure(Number.isInteger(c.scanIntervalMs) && c.scanIntervalMs >= 1 && c.scanIntervalMs <= DP3T_MS_PER_DAY, 'scanIntervalMs', 'must be an integer in [1, 86 400 000] ms');
  ensure(Number.isFinite(c.rssiThresholdDbm), 'rssiThresholdDbm', 'must be a finite dBm');
  ensure(c.rssiAveraging === 'run' || c.rssiAveraging === 'window', 'rssiAveraging', "must be 'run' or 'window'");
  ensure(c.lowRiskMinutes > 0 && c.highRiskMinutes >= c.lowRiskMinutes, 'highRiskMinutes', 'must be ≥ lowRiskMinutes > 0');
  return c;
}

/** SK_t of one UTC day. */
export interface Dp3tDayKey {
  readonly day: number;
  readonly sk: Uint8Array;
}

export interface Dp3tState {
  /** Own day keys, days ascending, one hash chain (a report restarts it with a fresh SK). */
  readonly keys: readonly Dp3tDayKey[];
  /** Broadcast order of the last key's EphIDs: order[e] = generation index of epoch e's EphID. */
  readonly order: readonly number[];
  readonly store: Dp3tObservationStore;
}

const epochMsOf = (config: Dp3tEngineConfig): number => config.epochLengthMinutes * MINUTE_MS;

/** A new day's key on the chain (or a fresh one) with its shuffled broadcast order. */
function startDay(crypto: CryptoSuite, config: Dp3tEngineConfig, sk: Uint8Array, day: number, drbg: DrbgState): { key: Dp3tDayKey; order: number[]; drbg: DrbgState } {
  const ids = ephIdsForDay(crypto, sk, dp3tEphIdsPerDay(config.epochLengthMinutes));
  const rng = SeededRng.fromState(drbg);
  const shuffled = shuffleEphIds(ids, rng);
  // shuffleEphIds permutes references: their positions in `ids` are the order.
  return { key: { day, sk }, order: shuffled.map((id) => ids.indexOf(id)), drbg: rng.state() };
}

function freshDay(crypto: CryptoSuite, config: Dp3tEngineConfig, day: number, drbg: DrbgState): { key: Dp3tDayKey; order: number[]; drbg: DrbgState } {
  const draw = drbgDraw(drbg, DP3T_SK_BYTES);
  return startDay(crypto, config, draw.bytes, day, draw.state);
}

/** The EphID on the air at `at` (the last key must be of at's day). */
export function dp3tEphIdAt(crypto: CryptoSuite, config: Dp3tEngineConfig, state: Dp3tState, at: SimMillis): Uint8Array {
  const key = state.keys[state.keys.length - 1];
  ensure(key !== undefined && key.day === dp3tDayOfMs(at), 'state.keys', `hold no key of day ${dp3tDayOfMs(at)}`);
  const epoch = Math.floor((at - key.day * DP3T_MS_PER_DAY) / epochMsOf(config));
  const ids = ephIdsForDay(crypto, key.sk, state.order.length);
  return ids[state.order[epoch] ?? 0] ?? new Uint8Array(DP3T_EPHID_BYTES);
}

const validFrameRssi = (rssi: number): boolean => Number.isInteger(rssi) && rssi >= DP3T_RSSI_MIN_DBM && rssi <= DP3T_RSSI_MAX_DBM;

export const dp3tEngine: TracingEngine<Dp3tState, Dp3tEngineConfig> = {
  protocol: 'dp3t',
  timing: DP3T_TIMING,

  // No key yet: the first rotation (host.start) draws SK from the DRBG for its own day.
  init: (_deps, _config, _at, drbg) => ({ state: { keys: [], order: [], store: EMPTY_DP3T_OBSERVATION_STORE }, drbg }),

  rotate(deps, config, state, at, drbg) {
    const day = dp3tDayOfMs(at);
    let next = state;
    const last = state.keys[state.keys.length - 1];
    if (last === undefined || last.day < day) {
      // Days the phone was off are skipped on the chain: SK_day = H^(day − t)(SK_t).
      const made = last === undefined ? freshDay(deps.crypto, config, day, drbg) : startDay(deps.crypto, config, dayKeyAfter(deps.crypto, last.sk, day - last.day), day, drbg);
      drbg = made.drbg;
      next = { ...state, keys: [...state.keys, made.key], order: made.order };
    }
    const epochMs = epochMsOf(config);
    return { state: next, drbg, payloads: [dp3tEphIdAt(deps.crypto, config, next, at)], nextAt: (Math.floor(at / epochMs) + 1) * epochMs };
  },

  observe(_deps, _config, state, frames) {
    // One observation per EphID per scan window at the window's mean RSSI (module header).
    const perId = new Map<string, { ephId: Uint8Array; at: SimMillis; sum: number; count: number }>();
    let refused = 0;
    for (const frame of frames) {
      if (frame.payload.length !== DP3T_EPHID_BYTES || !validFrameRssi(frame.rssi) || !(frame.at >= 0 && frame.at <= MAX_FRAME_TIME_MS)) {
        refused++;
        continue;
      }
      const key = String.fromCharCode(...frame.payload);
      const seen = perId.get(key);
      if (seen === undefined) perId.set(key, { ephId: frame.payload.slice(), at: frame.at, sum: frame.rssi, count: 1 });
      else {
        seen.sum += frame.rssi;
        seen.count++;
        seen.at = Math.min(seen.at, frame.at);
      }
    }
    if (perId.size === 0) return { state, refused };
    const observations: Dp3tObservation[] = [...perId.values()].map((s) => ({ ephId: s.ephId, receivedAtMs: s.at, rssiDbm: Math.round(s.sum / s.count) }));
    return { state: { ...state, store: addDp3tObservations(state.store, observations) }, refused };
  },

  expire(config, state, at) {
    // To the millisecond (stricter than the reference's whole days, SPECS §7.11): nothing older
    // than the retention is held, whenever the timer fires. A day key is as old as its last moment.
    const horizon = at - config.retentionDays * DP3T_MS_PER_DAY;
    const keys = state.keys.filter((k) => (k.day + 1) * DP3T_MS_PER_DAY > horizon);
    let store = pruneDp3tObservations(state.store, at, config.retentionDays);
    const first = store.days[0];
    if (first !== undefined && first.day === dp3tDayOfMs(horizon) && first.observations.some((o) => o.receivedAtMs < horizon)) {
      const kept = first.observations.filter((o) => o.receivedAtMs >= horizon);
      store = { days: kept.length === 0 ? store.days.slice(1) : [{ day: first.day, observations: kept }, ...store.days.slice(1)] };
    }
    return keys.length === state.keys.length && store === state.store ? state : { ...state, keys, store };
  },

  oldestHeld(state) {
    const key = state.keys[0];
    let oldest = key === undefined ? undefined : (key.day + 1) * DP3T_MS_PER_DAY;
    // The store's first day holds its oldest observations (unsorted within the day).
    for (const o of state.store.days[0]?.observations ?? []) if (oldest === undefined || o.receivedAtMs < oldest) oldest = o.receivedAtMs;
    return oldest;
  },

  report(deps, config, state, infectiousFrom, at, drbg) {
    const last = state.keys[state.keys.length - 1];
    if (last === undefined) return { state, drbg, records: [] };
    const fromDay = dp3tDayOfMs(Math.max(0, infectiousFrom));
    // The chain's key of the first infectious day: the first held key from that day on (none
    // before it when the phone was off or retention dropped it), else the last one ratcheted
    // forward — never an earlier day's, whose EphIDs were broadcast before the infectious period.
    const key = state.keys.find((k) => k.day >= fromDay) ?? { day: fromDay, sk: dayKeyAfter(deps.crypto, last.sk, fromDay - last.day) };
    const records: Dp3tSeedRecord[] = [{ protocol: 'dp3t-seed', seed: key.sk, day: key.day }];
    // Everything of the reported chain from its day on is derivable now: start a fresh one today.
    const fresh = freshDay(deps.crypto, config, dp3tDayOfMs(at), drbg);
    return { state: { ...state, keys: [fresh.key], order: fresh.order }, drbg: fresh.drbg, records };
  },

  match(deps, config, state, records, at) {
    const published: PublishedDp3tKey[] = [];
    const ids: string[] = [];
    for (const r of records) {
      if (r.protocol !== 'dp3t-seed') continue;
      published.push({ sk: r.seed, day: r.day, releasedAtMs: at });
      ids.push(r.id);
    }
    if (published.length === 0 || state.store.days.length === 0) return { state, exposures: [] };
    // Only days a key can reach are indexed (the index is rebuilt per call: it is not plain data).
    const firstDay = published.reduce((min, k) => Math.min(min, k.day), Number.POSITIVE_INFINITY);
    const store: Dp3tObservationStore = { days: state.store.days.filter((d) => d.day >= firstDay) };
    const run = (): Exposure[] => {
      const result = matchDp3tKeys(deps.crypto, published, store, { nowMs: at, epochLengthMinutes: config.epochLengthMinutes, maxKeyAgeDays: config.maxKeyAgeDays, scanIntervalMs: config.scanIntervalMs });
      return exposuresOf(result.matches, ids, config);
    };
    return { state, exposures: deps.meter === undefined ? run() : deps.meter.time('match', run) };
  },

  storageBytes: (state) =>
    state.keys.length * DAY_KEY_BYTES + state.order.length * (state.order.length > 256 ? 2 : 1) + state.store.days.reduce((sum, d) => sum + d.observations.length * OBSERVATION_BYTES, 0),
};

/** Sum of scan intervals of the windows that count (module header), plus the first and last of them. Observations come one per window per EphID. */
function estimate(observations: readonly Dp3tObservation[], config: Dp3tEngineConfig): { ms: number; firstAt: SimMillis; lastAt: SimMillis } {
  const sorted = [...observations].sort((a, b) => a.receivedAtMs - b.receivedAtMs);
  const counted: Dp3tObservation[] = [];
  const flush = (run: readonly Dp3tObservation[]): void => {
    const mean = run.reduce((s, o) => s + o.rssiDbm, 0) / run.length;
    if (mean >= config.rssiThresholdDbm) counted.push(...run);
  };
  let current: Dp3tObservation[] = [];
  let previousAt = Number.NEGATIVE_INFINITY;
  for (const o of sorted) {
    // A window across an epoch boundary hears two EphIDs of one key: one window, counted once.
    if (o.receivedAtMs - previousAt < config.scanIntervalMs / 2) continue;
    const split = config.rssiAveraging === 'window' || o.receivedAtMs - previousAt > RUN_GAP_INTERVALS * config.scanIntervalMs;
    previousAt = o.receivedAtMs;
    if (split && current.length > 0) {
      flush(current);
      current = [];
    }
    current.push(o);
  }
  if (current.length > 0) flush(current);
  return { ms: counted.length * config.scanIntervalMs, firstAt: counted[0]?.receivedAtMs ?? 0, lastAt: counted[counted.length - 1]?.receivedAtMs ?? 0 };
}

/** One exposure per (record, day) whose estimate reaches the low-risk minutes. */
function exposuresOf(matches: readonly Dp3tMatch[], ids: readonly string[], config: Dp3tEngineConfig): Exposure[] {
  const groups = new Map<string, { keyIndex: number; day: number; observations: Dp3tObservation[] }>();
  for (const m of matches) {
    const k = `${m.keyIndex}/${m.day}`;
    const g = groups.get(k);
    if (g === undefined) groups.set(k, { keyIndex: m.keyIndex, day: m.day, observations: [m.observation] });
    else g.observations.push(m.observation);
  }
  const out: Exposure[] = [];
  for (const g of groups.values()) {
    const e = estimate(g.observations, config);
    const minutes = e.ms / MINUTE_MS;
    const risk: ExposureRisk | undefined = minutes >= config.highRiskMinutes ? 'high' : minutes >= config.lowRiskMinutes ? 'low' : undefined;
    if (risk !== undefined) out.push({ recordId: ids[g.keyIndex] ?? '', dayNumber: g.day, firstAt: e.firstAt, lastAt: e.lastAt, minutes, risk });
  }
  return out;
}
