/**
 * GAEN exposure windows and a configurable risk score over matched sightings (matching.ts). SPECS
 * §1.6 stops at "after an RPI match the AEM is decrypted"; what follows is Google's ExposureWindow
 * model (API v2) as far as EN-internals states it (google/exposure-notifications-internals
 * @ 413b561f, `KeyExposureEvaluator.findExposureWindows`, `ExposureWindowUtils`,
 * `ContactTracingFeature`) and Apple's ENExposureConfiguration documentation:
 *
 *   exposure window   one key's sightings, split so a window spans < 30 min: a sighting ≥ 30 min
 *                     after the window's first starts a new one (`maxExposureWindowDurationMinutes() = 30`)
 *   scan instance     sightings ≤ 25.5 s after the previous one belong to the same scan
 *                     (1.5 × (scanTimeSeconds 4 + scanTimeExtendForProfileInUseSeconds 13));
 *                     typical attenuation = round(mean), min attenuation = min (`getTypicalAttenuation`,
 *                     `getMinAttenuation`); attenuation = TX power − RSSI (matching.ts)
 *   secondsSinceLastScan  capped at 300 s (`maxMinutesSinceLastScan() = 5`), 120 s when unknown
 *                     (`defaultMinutesSinceLastScan() = 2`)
 *   risk (Apple: "exposureDuration = Σ bucketDuration × bucketWeight × infectiousnessWeight ×
 *                 reportTypeWeight", weights 0–250 %): here
 *       weightedSeconds(window) = trWeight[transmissionRiskLevel] × Σ_scan secondsSinceLastScan × attWeight[bucket(typical)]
 *     with buckets immediate ≤ t0 < near ≤ t1 < medium ≤ t2 < other (dB, "Attenuation <= X").
 *   classification    per UTC day, Σ weightedSeconds of the windows that start that day; the
 *                     day with the most decides: ≥ highRisk minutes → high, ≥ lowRisk (and > 0) → low,
 *                     else none. The health code (green/yellow/red) is the caller's mapping.
 *
 * Simplifications (stated): (1) secondsSinceLastScan is the gap to the previous scan instance *in
 * which this key was seen* (EN-internals uses the phone's own previous scan, which the sightings
 * store does not hold); the first scan instance of a key gets the 120 s default. With regular scans
 * and no loss the two agree; a missed scan counts as covered (capped at 300 s). (2) Transmission
 * risk stands in for Google's infectiousness × report-type weights (days since onset and report type
 * are not in DiagnosisKey). (3) Days are UTC days of the window start, not the phone's time zone.
 * (4) No per-scan aggregation of one RPI's repeats (`aggregateSightingsFromSingleScan`): a scan's
 * typical attenuation is the mean over all its sightings.
 *
 * Default thresholds and weights are this project's choices, not GAEN's (health authorities set
 * them): 47 dB is EN-internals' `defaultMinExposureAttenuationValue() = 47 // ~2m distance`, so
 * "immediate" is about ≤ 2 m; near ≤ 55 dB and medium ≤ 63 dB follow in steps of 8 dB (each ≈ 2.5×
 * the distance at a path-loss exponent of 2); weights 100 % / 100 % / 50 % / 0 %; transmission risk
 * neutral (100 % at every level: the field is deprecated, SPECS §7.5); high risk at ≥ 15 weighted
 * minutes a day (issue 5's close contact: ≥ 15 min within 2 m), low risk from 5 weighted minutes.
 * Attenuation only means distance if the sender's TX power is calibrated: the phone must put its
 * real transmit power in the metadata (with hardware/sim's default −59 dBm at 1 m and 40 dB of
 * free-space loss at 1 m on 2.4 GHz, that is about −19 dBm).
 */
import { ensure } from '../errors.ts';
import type { KeyMatch, MatchedSighting } from './matching.ts';
import { EN_TRANSMISSION_RISK_MAX } from './matching.ts';

/** Longest exposure window, ms: 30 min (EN-internals `maxExposureWindowDurationMinutes() = 30`). */
export const EXPOSURE_WINDOW_MAX_MS = 30 * 60 * 1000;
/** Gap up to which sightings belong to one scan instance, ms: 1.5 × (4 s + 13 s) (`sightingInTheSameScanInstance`). */
export const SCAN_INSTANCE_GAP_MS = 25_500;
/** Cap of secondsSinceLastScan, s (`maxMinutesSinceLastScan() = 5`). */
export const MAX_SECONDS_SINCE_LAST_SCAN = 300;
/** secondsSinceLastScan when the previous scan is unknown, s (`defaultMinutesSinceLastScan() = 2`). */
export const DEFAULT_SECONDS_SINCE_LAST_SCAN = 120;
/** Milliseconds in a UTC day. */
export const DAY_MS = 86_400_000;

export const ATTENUATION_BUCKETS = ['immediate', 'near', 'medium', 'other'] as const;
export type AttenuationBucket = (typeof ATTENUATION_BUCKETS)[number];
export type ExposureLevel = 'none' | 'low' | 'high';

export interface ExposureConfig {
  /** A sighting this long or more after a window's first sighting opens a new window, ms. */
  readonly maxWindowMs: number;
  /** Sightings at most this far apart are one scan instance, ms. */
  readonly scanInstanceGapMs: number;
  /** Cap of a scan instance's secondsSinceLastScan, s. */
  readonly maxSecondsSinceLastScan: number;
  /** secondsSinceLastScan of a key's first scan instance, s. */
  readonly defaultSecondsSinceLastScan: number;
  /** Upper bounds (inclusive) of the immediate, near and medium buckets, dB, non-decreasing. */
  readonly attenuationThresholdsDb: readonly [number, number, number];
  /** Weights of immediate, near, medium, other (1 = 100 %), each ≥ 0. */
  readonly attenuationWeights: readonly [number, number, number, number];
  /** Weight per transmission risk level 0–8, each ≥ 0 (9 entries). */
  readonly transmissionRiskWeights: readonly number[];
  /** Weighted minutes in one day from which exposure is low risk (and > 0). */
  readonly lowRiskWeightedMinutes: number;
  /** Weighted minutes in one day from which exposure is high risk. */
  readonly highRiskWeightedMinutes: number;
}

/** Defaults: module header (EN-internals values where it has them, project choices otherwise). */
export const DEFAULT_EXPOSURE_CONFIG: ExposureConfig = Object.freeze({
  maxWindowMs: EXPOSURE_WINDOW_MAX_MS,
  scanInstanceGapMs: SCAN_INSTANCE_GAP_MS,
  maxSecondsSinceLastScan: MAX_SECONDS_SINCE_LAST_SCAN,
  defaultSecondsSinceLastScan: DEFAULT_SECONDS_SINCE_LAST_SCAN,
  attenuationThresholdsDb: Object.freeze([47, 55, 63] as const),
  attenuationWeights: Object.freeze([1, 1, 0.5, 0] as const),
  transmissionRiskWeights: Object.freeze(Array<number>(EN_TRANSMISSION_RISK_MAX + 1).fill(1)),
  lowRiskWeightedMinutes: 5,
  highRiskWeightedMinutes: 15,
});

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** DEFAULT_EXPOSURE_CONFIG with `overrides`, validated (MisuseError naming `config.<field>`). */
export function exposureConfig(overrides: Partial<ExposureConfig> = {}): ExposureConfig {
  const c: ExposureConfig = { ...DEFAULT_EXPOSURE_CONFIG, ...overrides };
  ensure(finite(c.maxWindowMs) && c.maxWindowMs > 0, 'config.maxWindowMs', `must be a number > 0, got ${String(c.maxWindowMs)}`);
  ensure(finite(c.scanInstanceGapMs) && c.scanInstanceGapMs >= 0, 'config.scanInstanceGapMs', `must be a number ≥ 0, got ${String(c.scanInstanceGapMs)}`);
  ensure(finite(c.maxSecondsSinceLastScan) && c.maxSecondsSinceLastScan > 0, 'config.maxSecondsSinceLastScan', 'must be a number > 0');
  ensure(
    finite(c.defaultSecondsSinceLastScan) && c.defaultSecondsSinceLastScan >= 0 && c.defaultSecondsSinceLastScan <= c.maxSecondsSinceLastScan,
    'config.defaultSecondsSinceLastScan',
    'must be a number in [0, maxSecondsSinceLastScan]',
  );
  const t = c.attenuationThresholdsDb;
  ensure(
    Array.isArray(t) && t.length === 3 && t.every(finite) && t[0] <= t[1] && t[1] <= t[2],
    'config.attenuationThresholdsDb',
    'must be three non-decreasing numbers (dB)',
  );
  const w = c.attenuationWeights;
  ensure(Array.isArray(w) && w.length === 4 && w.every((x) => finite(x) && x >= 0), 'config.attenuationWeights', 'must be four numbers ≥ 0');
  const tr = c.transmissionRiskWeights;
  ensure(
    Array.isArray(tr) && tr.length === EN_TRANSMISSION_RISK_MAX + 1 && tr.every((x) => finite(x) && x >= 0),
    'config.transmissionRiskWeights',
    `must be ${EN_TRANSMISSION_RISK_MAX + 1} numbers ≥ 0 (levels 0–${EN_TRANSMISSION_RISK_MAX})`,
  );
  ensure(finite(c.lowRiskWeightedMinutes) && c.lowRiskWeightedMinutes >= 0, 'config.lowRiskWeightedMinutes', 'must be a number ≥ 0');
  ensure(
    finite(c.highRiskWeightedMinutes) && c.highRiskWeightedMinutes >= c.lowRiskWeightedMinutes,
    'config.highRiskWeightedMinutes',
    'must be a number ≥ lowRiskWeightedMinutes',
  );
  return Object.freeze(c);
}

/** Bucket of an attenuation: immediate ≤ t0 < near ≤ t1 < medium ≤ t2 < other. */
export function attenuationBucket(attenuationDb: number, config: ExposureConfig = DEFAULT_EXPOSURE_CONFIG): AttenuationBucket {
  const [t0, t1, t2] = config.attenuationThresholdsDb;
  if (attenuationDb <= t0) return 'immediate';
  if (attenuationDb <= t1) return 'near';
  if (attenuationDb <= t2) return 'medium';
  return 'other';
}

/** Sightings of one key heard in one scan. */
export interface ScanInstance {
  /** Receive time of the scan's first sighting, Unix ms. */
  readonly atMs: number;
  readonly sightings: number;
  /** round(mean attenuation), dB. */
  readonly typicalAttenuationDb: number;
  readonly minAttenuationDb: number;
  /** Time this scan stands for, s (module header, simplification 1). */
  readonly secondsSinceLastScan: number;
}

/** ≤ 30 min of one key's sightings. */
export interface ExposureWindow {
  /** The key's position in the matched keys array. */
  readonly keyIndex: number;
  readonly transmissionRiskLevel: number;
  /** First and last sighting, Unix ms. */
  readonly startMs: number;
  readonly endMs: number;
  /** UTC day of startMs (days since the Unix epoch). */
  readonly dayNumber: number;
  /** TX-power calibration confidence of the window's first sighting (metadata v1.1; 0 before). */
  readonly calibrationConfidence: number;
  readonly scanInstances: readonly ScanInstance[];
  /** Σ secondsSinceLastScan over the scan instances, s. */
  readonly durationSeconds: number;
  /** round(Σ typical × seconds / Σ seconds) over the scan instances (the plain mean if no scan has seconds), dB. */
  readonly typicalAttenuationDb: number;
  readonly minAttenuationDb: number;
  /** Seconds in the immediate, near, medium and other buckets (by each scan's typical attenuation). */
  readonly bucketSeconds: readonly [number, number, number, number];
  /** The risk score: trWeight × Σ bucketSeconds × attenuationWeight, s. */
  readonly weightedSeconds: number;
}

const BUCKET_INDEX: Readonly<Record<AttenuationBucket, number>> = { immediate: 0, near: 1, medium: 2, other: 3 };

function scanInstanceOf(group: readonly MatchedSighting[], seconds: number): ScanInstance {
  let sum = 0;
  let min = Number.POSITIVE_INFINITY;
  for (const s of group) {
    sum += s.attenuationDb;
    min = Math.min(min, s.attenuationDb);
  }
  return {
    atMs: (group[0] as MatchedSighting).sighting.receivedAtMs,
    sightings: group.length,
    typicalAttenuationDb: Math.round(sum / group.length),
    minAttenuationDb: min,
    secondsSinceLastScan: seconds,
  };
}

function windowOf(match: KeyMatch, first: MatchedSighting, last: MatchedSighting, scans: readonly ScanInstance[], config: ExposureConfig): ExposureWindow {
  const bucketSeconds: [number, number, number, number] = [0, 0, 0, 0];
  let weighted = 0;
  let duration = 0;
  let typicalWeighted = 0;
  let typicalPlain = 0;
  let min = Number.POSITIVE_INFINITY;
  for (const scan of scans) {
    const b = BUCKET_INDEX[attenuationBucket(scan.typicalAttenuationDb, config)];
    bucketSeconds[b] = (bucketSeconds[b] ?? 0) + scan.secondsSinceLastScan;
    weighted += scan.secondsSinceLastScan * (config.attenuationWeights[b] ?? 0);
    duration += scan.secondsSinceLastScan;
    typicalWeighted += scan.typicalAttenuationDb * scan.secondsSinceLastScan;
    typicalPlain += scan.typicalAttenuationDb;
    min = Math.min(min, scan.minAttenuationDb);
  }
  const tr = match.key.transmissionRiskLevel;
  return {
    keyIndex: match.keyIndex,
    transmissionRiskLevel: tr,
    startMs: first.sighting.receivedAtMs,
    endMs: last.sighting.receivedAtMs,
    dayNumber: Math.floor(first.sighting.receivedAtMs / DAY_MS),
    calibrationConfidence: first.metadata.txPowerConfidence,
    scanInstances: scans,
    durationSeconds: duration,
    typicalAttenuationDb: Math.round(duration > 0 ? typicalWeighted / duration : typicalPlain / scans.length),
    minAttenuationDb: min,
    bucketSeconds,
    weightedSeconds: weighted * (config.transmissionRiskWeights[tr] ?? 0),
  };
}

/** One key's exposure windows, by time (module header). An empty match gives none. */
export function exposureWindows(match: KeyMatch, config: ExposureConfig = DEFAULT_EXPOSURE_CONFIG): ExposureWindow[] {
  const sorted = [...match.sightings].sort((a, b) => a.sighting.receivedAtMs - b.sighting.receivedAtMs || a.index - b.index);
  const windows: ExposureWindow[] = [];
  let windowFirst: MatchedSighting | undefined;
  let windowLast: MatchedSighting | undefined;
  let scans: ScanInstance[] = [];
  let group: MatchedSighting[] = [];
  let groupStartMs = 0;
  let previousScanMs: number | undefined;
  let previousMs = 0;

  const closeScan = (): void => {
    if (group.length === 0) return;
    const seconds =
      previousScanMs === undefined
        ? config.defaultSecondsSinceLastScan
        : Math.min(config.maxSecondsSinceLastScan, Math.round((groupStartMs - previousScanMs) / 1000));
    scans.push(scanInstanceOf(group, seconds));
    previousScanMs = groupStartMs;
    group = [];
  };
  const closeWindow = (): void => {
    closeScan();
    if (windowFirst !== undefined && windowLast !== undefined && scans.length > 0) windows.push(windowOf(match, windowFirst, windowLast, scans, config));
    scans = [];
    windowFirst = undefined;
  };

  for (const s of sorted) {
    const t = s.sighting.receivedAtMs;
    if (windowFirst === undefined || t - windowFirst.sighting.receivedAtMs >= config.maxWindowMs) {
      closeWindow();
      windowFirst = s;
    } else if (t - previousMs > config.scanInstanceGapMs) {
      closeScan();
    }
    if (group.length === 0) groupStartMs = t;
    group.push(s);
    windowLast = s;
    previousMs = t;
  }
  closeWindow();
  return windows;
}

/** Every window of every matched key, by key then time. */
export function exposureWindowsOf(matches: readonly KeyMatch[], config: ExposureConfig = DEFAULT_EXPOSURE_CONFIG): ExposureWindow[] {
  return matches.flatMap((m) => exposureWindows(m, config));
}

export interface DailyExposure {
  /** UTC days since the Unix epoch. */
  readonly dayNumber: number;
  readonly windows: number;
  /** Σ weightedSeconds / 60 of the day's windows. */
  readonly weightedMinutes: number;
}

export interface ExposureClassification {
  readonly level: ExposureLevel;
  /** The largest daily weighted minutes (0 without windows). */
  readonly maxDailyWeightedMinutes: number;
  /** Days with windows, ascending. */
  readonly days: readonly DailyExposure[];
}

/** none / low / high from the windows' daily weighted minutes (module header). */
export function classifyExposure(windows: readonly ExposureWindow[], config: ExposureConfig = DEFAULT_EXPOSURE_CONFIG): ExposureClassification {
  const byDay = new Map<number, { windows: number; seconds: number }>();
  for (const w of windows) {
    const day = byDay.get(w.dayNumber) ?? { windows: 0, seconds: 0 };
    day.windows++;
    day.seconds += w.weightedSeconds;
    byDay.set(w.dayNumber, day);
  }
  const days = [...byDay.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([dayNumber, d]) => ({ dayNumber, windows: d.windows, weightedMinutes: d.seconds / 60 }));
  const max = days.reduce((m, d) => Math.max(m, d.weightedMinutes), 0);
  const level: ExposureLevel =
    max >= config.highRiskWeightedMinutes && max > 0 ? 'high' : max >= config.lowRiskWeightedMinutes && max > 0 ? 'low' : 'none';
  return { level, maxDailyWeightedMinutes: max, days };
}
