/**
 * GAEN exposure windows and risk (protocol/gaen/exposure.ts) on hand-made matches: 30-min windows,
 * scan instances (≤ 25.5 s apart), typical = round(mean) and min attenuation, secondsSinceLastScan
 * (120 s first, gap capped at 300 s), attenuation buckets and weights, transmission-risk weights,
 * per-day classification none / low / high, config validation; and end to end from real crypto:
 * a phone next to a positive for 20 minutes is high risk, one across the room for 20 minutes low.
 */
import { describe, expect, it } from 'vitest';
import { MisuseError } from '../../protocol/errors.ts';
import {
  attenuationBucket,
  classifyExposure,
  DAY_MS,
  DEFAULT_EXPOSURE_CONFIG,
  exposureConfig,
  exposureWindows,
  exposureWindowsOf,
  type ExposureWindow,
} from '../../protocol/gaen/exposure.ts';
import { aemk, rpisForTek } from '../../protocol/gaen/keys.ts';
import { buildSightingIndex, EN_INTERVAL_MS, matchDiagnosisKeys, type DiagnosisKey, type KeyMatch, type MatchedSighting, type Sighting } from '../../protocol/gaen/matching.ts';
import { encodeEnMetadata, encryptAem } from '../../protocol/gaen/metadata.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { misuseField } from '../support/misuse.ts';

const T0 = 1_585_785_600_000; // 2020-04-02T00:00Z, a UTC day start
const MIN = 60_000;
const KEY: DiagnosisKey = { keyData: new Uint8Array(16), rollingStartIntervalNumber: T0 / EN_INTERVAL_MS, rollingPeriod: 144, transmissionRiskLevel: 0 };

/** A KeyMatch of sightings at (ms offset from T0, attenuation dB), TX power 0 so RSSI = −attenuation. */
function keyMatch(points: readonly (readonly [number, number])[], key: DiagnosisKey = KEY, keyIndex = 0): KeyMatch {
  const sightings: MatchedSighting[] = points.map(([offsetMs, attenuationDb], index) => ({
    index,
    sighting: { rpi: new Uint8Array(16), aem: new Uint8Array(4), receivedAtMs: T0 + offsetMs, rssiDbm: -attenuationDb },
    rpiIntervalNumber: Math.floor((T0 + offsetMs) / EN_INTERVAL_MS),
    receivedIntervalNumber: Math.floor((T0 + offsetMs) / EN_INTERVAL_MS),
    metadata: { versionMajor: 1, versionMinor: 1, txPowerConfidence: 2, txPowerDbm: 0 },
    attenuationDb,
  }));
  return { keyIndex, key, sightings, implausibleTxPower: 0 };
}

/** One sighting a minute for `minutes` minutes from `fromMs`, all at `attenuationDb`. */
const everyMinute = (minutes: number, attenuationDb: number, fromMs = 0): [number, number][] =>
  Array.from({ length: minutes }, (_, i) => [fromMs + i * MIN, attenuationDb] as [number, number]);

describe('exposure windows', () => {
  it('20 minutes at 40 dB, one sighting a minute: one window, 20 scans, 120 + 19 × 60 s, all immediate', () => {
    const [w, ...rest] = exposureWindows(keyMatch(everyMinute(20, 40)));
    expect(rest).toEqual([]);
    expect(w?.scanInstances).toHaveLength(20);
    expect(w?.scanInstances.map((s) => s.secondsSinceLastScan)).toEqual([120, ...Array<number>(19).fill(60)]);
    expect(w).toMatchObject({
      startMs: T0,
      endMs: T0 + 19 * MIN,
      dayNumber: T0 / DAY_MS,
      durationSeconds: 1260,
      typicalAttenuationDb: 40,
      minAttenuationDb: 40,
      bucketSeconds: [1260, 0, 0, 0],
      weightedSeconds: 1260,
      calibrationConfidence: 2,
      keyIndex: 0,
      transmissionRiskLevel: 0,
    });
  });

  it('windows are < 30 min: a sighting 30 min after the window start opens the next; seconds continue across', () => {
    const windows = exposureWindows(keyMatch(everyMinute(45, 40)));
    expect(windows.map((w) => [w.startMs - T0, w.endMs - T0, w.scanInstances.length])).toEqual([
      [0, 29 * MIN, 30],
      [30 * MIN, 44 * MIN, 15],
    ]);
    expect(windows[1]?.scanInstances[0]?.secondsSinceLastScan).toBe(60);
  });

  it('sightings ≤ 25.5 s apart are one scan: typical = round(mean), min = min', () => {
    const [w] = exposureWindows(keyMatch([[0, 40], [10_000, 45], [25_000, 46], [60_000, 50], [85_500, 52], [111_001, 60]]));
    expect(w?.scanInstances.map((s) => [s.sightings, s.typicalAttenuationDb, s.minAttenuationDb, s.secondsSinceLastScan])).toEqual([
      [3, 44, 40, 120], // (40 + 45 + 46) / 3 = 43.67
      [2, 51, 50, 60], // 25.5 s gap: same scan
      [1, 60, 60, 51], // 25.501 s: a new scan, 51 s after the previous scan's start
    ]);
    expect(w?.minAttenuationDb).toBe(40);
    // Seconds-weighted typical: (44·120 + 51·60 + 60·51) / 231 = 49.35
    expect(w?.typicalAttenuationDb).toBe(49);
  });

  it('a gap counts at most 300 s (5 min), and a long gap within 30 min stays in the window', () => {
    const [w] = exposureWindows(keyMatch([[0, 40], [20 * MIN, 40]]));
    expect(w?.scanInstances.map((s) => s.secondsSinceLastScan)).toEqual([120, 300]);
    expect(w?.durationSeconds).toBe(420);
  });

  it('buckets: ≤ 47 immediate, ≤ 55 near, ≤ 63 medium (weight ½), above other (weight 0)', () => {
    expect([47, 48, 55, 56, 63, 64].map((a) => attenuationBucket(a))).toEqual(['immediate', 'near', 'near', 'medium', 'medium', 'other']);
    const [w] = exposureWindows(keyMatch([[0, 40], [MIN, 50], [2 * MIN, 60], [3 * MIN, 70]]));
    expect(w?.bucketSeconds).toEqual([120, 60, 60, 60]);
    expect(w?.weightedSeconds).toBe(120 + 60 + 30 + 0);
  });

  it('weights and thresholds are configurable, transmission risk included', () => {
    const config = exposureConfig({
      attenuationThresholdsDb: [30, 40, 50],
      attenuationWeights: [2, 1, 0, 0],
      transmissionRiskWeights: [1, 1, 1, 1, 1, 1, 1, 1, 0.5],
    });
    const key = { ...KEY, transmissionRiskLevel: 8 };
    const [w] = exposureWindows(keyMatch([[0, 30], [MIN, 35], [2 * MIN, 45]], key, 3), config);
    expect(w?.bucketSeconds).toEqual([120, 60, 60, 0]);
    expect(w?.weightedSeconds).toBe((2 * 120 + 60) * 0.5);
    expect(w?.keyIndex).toBe(3);
  });

  it('sightings out of order are sorted; no sightings, no windows', () => {
    const points: [number, number][] = [[2 * MIN, 40], [0, 40], [MIN, 40]];
    expect(exposureWindows(keyMatch(points))[0]?.scanInstances.map((s) => s.atMs - T0)).toEqual([0, MIN, 2 * MIN]);
    expect(exposureWindows(keyMatch([]))).toEqual([]);
  });
});

describe('classifyExposure', () => {
  const windowsOf = (...matches: KeyMatch[]): ExposureWindow[] => exposureWindowsOf(matches);

  it('none without windows or with only zero-weight exposure', () => {
    expect(classifyExposure([])).toEqual({ level: 'none', maxDailyWeightedMinutes: 0, days: [] });
    expect(classifyExposure(windowsOf(keyMatch(everyMinute(60, 80)))).level).toBe('none');
  });

  it('low from 5 weighted minutes a day, high from 15 (defaults)', () => {
    // 120 + 60 · (n − 1) seconds at 40 dB.
    expect(classifyExposure(windowsOf(keyMatch(everyMinute(3, 40)))).level).toBe('none'); // 4 min
    expect(classifyExposure(windowsOf(keyMatch(everyMinute(4, 40)))).level).toBe('low'); // 5 min
    expect(classifyExposure(windowsOf(keyMatch(everyMinute(13, 40)))).level).toBe('low'); // 14 min
    const high = classifyExposure(windowsOf(keyMatch(everyMinute(14, 40)))); // 15 min
    expect(high.level).toBe('high');
    expect(high.maxDailyWeightedMinutes).toBe(15);
  });

  it('adds windows of one UTC day (several keys too) and keeps days apart', () => {
    const morning = keyMatch(everyMinute(8, 40, 8 * 60 * MIN)); // 9 min
    const evening = keyMatch(everyMinute(8, 40, 20 * 60 * MIN), KEY, 1); // 9 min, another key
    const sameDay = classifyExposure(windowsOf(morning, evening));
    expect(sameDay.level).toBe('high');
    expect(sameDay.days).toEqual([{ dayNumber: T0 / DAY_MS, windows: 2, weightedMinutes: 18 }]);
    const nextDay = keyMatch(everyMinute(8, 40, DAY_MS + 60 * MIN));
    const split = classifyExposure(windowsOf(morning, nextDay));
    expect(split.level).toBe('low');
    expect(split.days.map((d) => [d.dayNumber - T0 / DAY_MS, d.weightedMinutes])).toEqual([
      [0, 9],
      [1, 9],
    ]);
  });

  it('thresholds are configurable', () => {
    const config = exposureConfig({ lowRiskWeightedMinutes: 0, highRiskWeightedMinutes: 3 });
    expect(classifyExposure(exposureWindowsOf([keyMatch(everyMinute(1, 40))], config), config).level).toBe('low');
    expect(classifyExposure(exposureWindowsOf([keyMatch(everyMinute(2, 40))], config), config).level).toBe('high');
  });
});

describe('exposureConfig: MisuseError naming config.<field>', () => {
  const cases: [string, Parameters<typeof exposureConfig>[0], string][] = [
    ['window', { maxWindowMs: 0 }, 'config.maxWindowMs'],
    ['gap', { scanInstanceGapMs: -1 }, 'config.scanInstanceGapMs'],
    ['cap', { maxSecondsSinceLastScan: Number.NaN }, 'config.maxSecondsSinceLastScan'],
    ['default', { defaultSecondsSinceLastScan: 301 }, 'config.defaultSecondsSinceLastScan'],
    ['thresholds order', { attenuationThresholdsDb: [50, 40, 60] }, 'config.attenuationThresholdsDb'],
    ['negative weight', { attenuationWeights: [1, 1, -0.5, 0] }, 'config.attenuationWeights'],
    ['tr weights length', { transmissionRiskWeights: [1, 1] }, 'config.transmissionRiskWeights'],
    ['low', { lowRiskWeightedMinutes: -1 }, 'config.lowRiskWeightedMinutes'],
    ['high below low', { lowRiskWeightedMinutes: 10, highRiskWeightedMinutes: 5 }, 'config.highRiskWeightedMinutes'],
  ];
  it.each(cases)('%s', (_name, overrides, field) => {
    expect(misuseField(() => exposureConfig(overrides))).toBe(field);
  });

  it('defaults validate and are frozen', () => {
    expect(exposureConfig()).toEqual(DEFAULT_EXPOSURE_CONFIG);
    expect(Object.isFrozen(DEFAULT_EXPOSURE_CONFIG)).toBe(true);
    expect(() => exposureConfig({})).not.toThrow(MisuseError);
  });
});

describe('end to end: sightings → matches → windows → classification', () => {
  const crypto = nodeSuite;
  const start = T0 / EN_INTERVAL_MS;
  const positive = Uint8Array.from({ length: 16 }, (_, i) => i * 7);
  const stranger = Uint8Array.from({ length: 16 }, (_, i) => 255 - i);
  const TX = -19; // dBm: hardware/sim's −59 dBm at 1 m minus 40 dB free-space loss at 1 m

  /** What a phone stores hearing `tek` once a minute for `minutes` from `fromMs` at RSSI `rssiDbm`. */
  function heardFor(tek: Uint8Array, fromMs: number, minutes: number, rssiDbm: number): Sighting[] {
    const rpis = rpisForTek(crypto, tek, start, 144);
    const metadata = encodeEnMetadata({ versionMajor: 1, versionMinor: 0, txPowerConfidence: 0, txPowerDbm: TX });
    return Array.from({ length: minutes }, (_, i) => {
      const at = T0 + fromMs + i * MIN;
      const rpi = rpis[Math.floor(at / EN_INTERVAL_MS) - start] as Uint8Array;
      return { rpi, aem: encryptAem(crypto, aemk(crypto, tek), rpi, metadata), receivedAtMs: at, rssiDbm };
    });
  }

  const keys: DiagnosisKey[] = [{ keyData: positive, rollingStartIntervalNumber: start, rollingPeriod: 144, transmissionRiskLevel: 0 }];

  it('20 min at about 1 m (−60 dBm → 41 dB) is high risk; a stranger nearby does not count', () => {
    const store = [...heardFor(positive, 9 * 60 * MIN, 20, -60), ...heardFor(stranger, 9 * 60 * MIN, 20, -50)];
    const result = matchDiagnosisKeys(crypto, keys, buildSightingIndex(store));
    expect(result.stats.matchedSightings).toBe(20);
    const windows = exposureWindowsOf(result.matches);
    expect(windows).toHaveLength(1);
    expect(windows[0]?.typicalAttenuationDb).toBe(41);
    expect(classifyExposure(windows).level).toBe('high');
  });

  it('20 min across a room (−76 dBm → 57 dB, medium) is low risk: 10.5 weighted minutes', () => {
    const result = matchDiagnosisKeys(crypto, keys, buildSightingIndex(heardFor(positive, 14 * 60 * MIN, 20, -76)));
    const c = classifyExposure(exposureWindowsOf(result.matches));
    expect(c.level).toBe('low');
    expect(c.maxDailyWeightedMinutes).toBeCloseTo(10.5, 9);
  });
});
