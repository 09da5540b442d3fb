/**
 * Configuration of the TCN engine (tcn-engine.ts), its defaults and why.
 *
 * Keys and radio (SPECS §3; TCN README; issue 5's TCN defaults in protocol/tcn/distance.ts):
 * - one TCN per rotation, rotated every 15 min with the BLE address (the README: TCN rotation
 *   should coincide with MAC rotation; 15 min is the DP-3T/GAEN order of magnitude), on a grid
 *   aligned to the Unix epoch so every phone's TCNs and rak periods end at UTC midnight;
 * - a new rak every UTC day (rakPeriodMs) — 96 TCNs, far below the u16 ratchet's 65,535, which
 *   is still checked (a rak that would pass it is replaced) — so one report covers at most one
 *   day of TCNs and a positive's 14 days fit the key server's 30-record upload; the README's
 *   "≤ 6 hours per report" (less linkage per report) is rakPeriodMs = 6 h, 4 records a day;
 * - advertise ~1 Hz, scan 1 s every minute, each advertiser reported once per window.
 *
 * Distance (calibrated to the city, services/city/tracing/run.ts TRACING_PROPAGATION, as a health
 * authority calibrates to real phones): the city's air gives RSSI = −59 dBm − 30·log10(d) + 4 dB
 * of noise, so TxPower −59 dBm and n = 3 make estimateDistanceM unbiased on the mean RSSI. One
 * reading per scan is off by a factor 10^(4/30) ≈ 1.36 (1 σ: 2 m reads as 1.5–2.7 m), too coarse
 * for the city's 1.5 m desk neighbours vs 2.1 m diagonals. So RSSI is averaged over a *run*: the
 * sightings of one positive with gaps ≤ runGapMs (a stay side by side), at most maxRunMs long;
 * 15 sightings leave 1 dB (±8 % of distance). A run whose mean-RSSI distance is ≤ closeDistanceM
 * counts one scan period per distinct scan period heard (each observation stands for one).
 *
 * Exposure: cumulative close time per UTC day ≥ highRiskMinutes (15, the ground truth's rule) →
 * 'high', ≥ lowRiskMinutes (5) → 'low'.
 */
import { ensure } from '../../protocol/errors.ts';
import { TCN_ADVERTISE_INTERVAL_MS, TCN_SCAN_PERIOD_MS, TCN_SCAN_WINDOW_MS } from '../../protocol/tcn/distance.ts';
import { TCN_MAX_TCNS_PER_REPORT, TCN_RETENTION_DAYS } from '../../protocol/tcn/matching.ts';
import { isTcnMemoType, TCN_MEMO_MAX_BYTES, TCN_MEMO_TYPES, type TcnMemo } from '../../protocol/tcn/report.ts';
import { SEGMENT_PATTERN } from '../../protocol/wire/topics.ts';
import type { RadioTiming } from './engine.ts';

export const MINUTE_MS = 60_000;
export const DAY_MS = 86_400_000;

/** A: contacts streamed to the backend; B: the positive's log uploaded on request and published; C: local matching. */
export type TcnMode = 'A' | 'B' | 'C';
export const TCN_MODES: readonly TcnMode[] = ['A', 'B', 'C'];

/** Radio cadence: issue 5's TCN defaults (protocol/tcn/distance.ts); duplicates filtered: one reading per advertiser per window. */
export const TCN_TIMING: RadioTiming = Object.freeze({
  advertiseIntervalMs: TCN_ADVERTISE_INTERVAL_MS,
  scanWindowMs: TCN_SCAN_WINDOW_MS,
  scanIntervalMs: TCN_SCAN_PERIOD_MS,
  filterDuplicates: true,
});

/** TCN and address rotation, ms: 15 min (header). */
export const DEFAULT_TCN_ROTATION_MS = 15 * MINUTE_MS;
/** rak lifetime, ms: one UTC day (header). */
export const DEFAULT_TCN_RAK_PERIOD_MS = DAY_MS;
/** RSSI at 1 m in the city, dBm (TRACING_PROPAGATION keeps hardware/sim's −59). */
export const CITY_TCN_TX_POWER_DBM = -59;
/** Path-loss exponent of the city (TRACING_PROPAGATION pathLossExponent: furnished rooms). */
export const CITY_TCN_PATH_LOSS_EXPONENT = 3;
/** The ground truth's close-contact distance, m (services/city/tracing/config.ts contact.maxDistanceM). */
export const DEFAULT_TCN_CLOSE_DISTANCE_M = 2;
/** Close minutes a day for a high-risk exposure: the ground truth's 15 min. */
export const DEFAULT_TCN_HIGH_RISK_MINUTES = 15;
/** … and for a low-risk one. */
export const DEFAULT_TCN_LOW_RISK_MINUTES = 5;
/** A run of sightings ends after this gap, ms: two missed scans (a missed scan at the range's edge does not split a stay). */
export const DEFAULT_TCN_RUN_GAP_MS = 3 * TCN_SCAN_PERIOD_MS;
/** Longest run averaged as one, ms: a day (the city's stays are hours at fixed spots; shorten for walking contacts). */
export const DEFAULT_TCN_MAX_RUN_MS = DAY_MS;
/** Modes A and B: contacts uploaded (A) and unacknowledged uploads re-sent (A, B) every 15 min. */
export const DEFAULT_TCN_EXCHANGE_PERIOD_MS = 15 * MINUTE_MS;
/** The city's TCN backend actor id (role app-backend). */
export const DEFAULT_TCN_BACKEND_ID = 'tcn-backend';
/** Memo of our reports: CovidWatch test result v1 (README allocation 0x01), ASCII "positive". */
export const DEFAULT_TCN_MEMO: TcnMemo = Object.freeze({ type: TCN_MEMO_TYPES.covidWatchV1, data: new TextEncoder().encode('positive') });

export interface TcnEngineConfig {
  readonly mode: TcnMode;
  readonly rotationMs: number;
  readonly rakPeriodMs: number;
  /** Distance model: RSSI at 1 m (dBm) and path-loss exponent n (estimateDistanceM). */
  readonly txPowerDbm: number;
  readonly pathLossExponent: number;
  readonly closeDistanceM: number;
  readonly highRiskMinutes: number;
  readonly lowRiskMinutes: number;
  /** The time one observation stands for, ms: the phone's scan interval (must equal timing.scanIntervalMs). */
  readonly scanPeriodMs: number;
  readonly runGapMs: number;
  readonly maxRunMs: number;
  /** Days own keys, sent TCNs and observations are kept past today (protocol/tcn/matching.ts: 14). */
  readonly retentionDays: number;
  readonly memo: TcnMemo;
  /** TCNs regenerated per downloaded report at most (hostile j2; protocol/tcn/matching.ts). */
  readonly maxTcnsPerReport: number;
  /** Modes A/B: the backend's actor id (role app-backend) and the exchange period. */
  readonly backendId: string;
  readonly exchangePeriodMs: number;
}

export function tcnEngineConfig(overrides: Partial<TcnEngineConfig> = {}): TcnEngineConfig {
  const c: TcnEngineConfig = {
    mode: 'C',
    rotationMs: DEFAULT_TCN_ROTATION_MS,
    rakPeriodMs: DEFAULT_TCN_RAK_PERIOD_MS,
    txPowerDbm: CITY_TCN_TX_POWER_DBM,
    pathLossExponent: CITY_TCN_PATH_LOSS_EXPONENT,
    closeDistanceM: DEFAULT_TCN_CLOSE_DISTANCE_M,
    highRiskMinutes: DEFAULT_TCN_HIGH_RISK_MINUTES,
    lowRiskMinutes: DEFAULT_TCN_LOW_RISK_MINUTES,
    scanPeriodMs: TCN_SCAN_PERIOD_MS,
    runGapMs: DEFAULT_TCN_RUN_GAP_MS,
    maxRunMs: DEFAULT_TCN_MAX_RUN_MS,
    retentionDays: TCN_RETENTION_DAYS,
    memo: DEFAULT_TCN_MEMO,
    maxTcnsPerReport: TCN_MAX_TCNS_PER_REPORT,
    backendId: DEFAULT_TCN_BACKEND_ID,
    exchangePeriodMs: DEFAULT_TCN_EXCHANGE_PERIOD_MS,
    ...overrides,
  };
  checkTcnEngineConfig(c);
  return c;
}

const msIn = (v: number, lo: number, hi: number): boolean => Number.isSafeInteger(v) && v >= lo && v <= hi;

/** MisuseError naming the first bad field. */
export function checkTcnEngineConfig(c: TcnEngineConfig): void {
  ensure(typeof c === 'object' && c !== null, 'config', 'must be a TcnEngineConfig');
  ensure(TCN_MODES.includes(c.mode), 'config.mode', "must be 'A', 'B' or 'C'");
  ensure(msIn(c.rotationMs, MINUTE_MS, DAY_MS) && DAY_MS % c.rotationMs === 0, 'config.rotationMs', 'must divide a day, ≥ 1 min');
  ensure(msIn(c.rakPeriodMs, c.rotationMs, DAY_MS) && c.rakPeriodMs % c.rotationMs === 0 && DAY_MS % c.rakPeriodMs === 0, 'config.rakPeriodMs', 'must be a multiple of rotationMs that divides a day');
  ensure(Number.isFinite(c.txPowerDbm), 'config.txPowerDbm', 'must be a finite dBm');
  ensure(Number.isFinite(c.pathLossExponent) && c.pathLossExponent > 0, 'config.pathLossExponent', 'must be > 0');
  ensure(Number.isFinite(c.closeDistanceM) && c.closeDistanceM > 0, 'config.closeDistanceM', 'must be > 0 m');
  ensure(c.lowRiskMinutes > 0 && c.highRiskMinutes >= c.lowRiskMinutes && Number.isFinite(c.highRiskMinutes), 'config.highRiskMinutes', 'must be ≥ lowRiskMinutes > 0');
  ensure(msIn(c.scanPeriodMs, 1, DAY_MS), 'config.scanPeriodMs', 'must be an integer in [1, 86 400 000] ms');
  ensure(msIn(c.runGapMs, 0, DAY_MS), 'config.runGapMs', 'must be an integer in [0, 86 400 000] ms');
  ensure(msIn(c.maxRunMs, 1, DAY_MS), 'config.maxRunMs', 'must be an integer in [1, 86 400 000] ms');
  ensure(Number.isInteger(c.retentionDays) && c.retentionDays >= 0 && c.retentionDays <= 3650, 'config.retentionDays', 'must be an integer in [0, 3650]');
  ensure(typeof c.memo === 'object' && c.memo !== null && isTcnMemoType(c.memo.type), 'config.memo.type', 'must be an allocated memo type 0x00–0x03');
  ensure(c.memo.data instanceof Uint8Array && c.memo.data.length <= TCN_MEMO_MAX_BYTES, 'config.memo.data', `must be at most ${TCN_MEMO_MAX_BYTES} bytes`);
  ensure(Number.isInteger(c.maxTcnsPerReport) && c.maxTcnsPerReport >= 1 && c.maxTcnsPerReport <= 0xffff, 'config.maxTcnsPerReport', 'must be an integer in [1, 65535]');
  ensure(typeof c.backendId === 'string' && SEGMENT_PATTERN.test(c.backendId), 'config.backendId', `must match ${String(SEGMENT_PATTERN)}`);
  ensure(msIn(c.exchangePeriodMs, 1000, DAY_MS), 'config.exchangePeriodMs', 'must be an integer in [1 s, 1 day] ms');
}

