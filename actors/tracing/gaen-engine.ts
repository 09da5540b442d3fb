/**
 * GAEN on the tracing phone (SPECS §1; protocol/gaen/): a fresh TEK each UTC
 * day (rolling period 144), the RPI and AEM of the current 10-minute
 * interval as 0xFD6F service data (RPI ‖ AEM, 20 bytes), re-derived — with a
 * new address — at every interval boundary. Sightings are kept per scan
 * window, packed (RPI 16 ‖ AEM 4 ‖ int8 RSSI), for 14 days. On a positive the
 * TEKs of the infectious period are uploaded, today's included (truncated to
 * the current interval, EN ≥ 1.5 same-day release), and a new TEK starts.
 * Matching: protocol/gaen/matching.ts (±12 intervals of drift, AEM → TX
 * power), exposure windows and the daily weighted minutes of exposure.ts,
 * one exposure per (key, day) at or above the low threshold.
 *
 * Radio defaults: advertise every 250 ms (EN: 200–270 ms), scan 4 s every
 * 5 min (the EN scan cadence the exposure windows' secondsSinceLastScan cap
 * assumes); every advertisement of a scan is reported and averaged into one
 * sighting per RPI per scan.
 */
import { drbgDraw, type DrbgState } from '../../protocol/crypto/drbg.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import { classifyExposure, exposureConfig, exposureWindowsOf, type ExposureConfig } from '../../protocol/gaen/exposure.ts';
import { EN_INTERVAL_SECONDS, rollingStartIntervalNumber, TEK_RETENTION_DAYS, TEK_ROLLING_PERIOD } from '../../protocol/gaen/interval.ts';
import { aemk, rpi, rpik, TEK_BYTES } from '../../protocol/gaen/keys.ts';
import { buildSightingIndex, matchDiagnosisKeys, type DiagnosisKey, type KeyMatch, type Sighting, type SightingIndex } from '../../protocol/gaen/matching.ts';
import { encodeEnMetadata, encodeEnServiceData, encryptAem, EN_SERVICE_DATA_BYTES } from '../../protocol/gaen/metadata.ts';
import type { GaenTekRecord } from '../../protocol/keyserver/distribution-records.ts';
import type { SimMillis } from '../ports.ts';
import type { Exposure, TracingEngine } from './engine.ts';

const INTERVAL_MS = EN_INTERVAL_SECONDS * 1000;
const DAY_MS = 86_400_000;
/** One packed sighting: RPI (16) ‖ AEM (4) ‖ RSSI (int8). */
const SIGHTING_BYTES = EN_SERVICE_DATA_BYTES + 1;

export interface GaenEngineConfig {
  /** TX power written in the metadata, dBm: the radio's real output (attenuation = TX − RSSI). */
  readonly txPowerDbm: number;
  /** Days own TEKs and sightings are kept (SPECS §1.2: 14). */
  readonly retentionDays: number;
  /** transmission_risk_level uploaded with the TEKs (0–8). */
  readonly transmissionRisk: number;
  readonly exposure: ExposureConfig;
}

/** −59 dBm at 1 m plus ~40 dB free-space loss at 1 m on 2.4 GHz (exposure.ts header). */
export const DEFAULT_GAEN_TX_POWER_DBM = -19;

export function gaenEngineConfig(overrides: Partial<Omit<GaenEngineConfig, 'exposure'>> & { readonly exposure?: Partial<ExposureConfig> } = {}): GaenEngineConfig {
  return {
    txPowerDbm: overrides.txPowerDbm ?? DEFAULT_GAEN_TX_POWER_DBM,
    retentionDays: overrides.retentionDays ?? TEK_RETENTION_DAYS,
    transmissionRisk: overrides.transmissionRisk ?? 4,
    exposure: exposureConfig(overrides.exposure ?? {}),
  };
}

interface OwnTek {
  readonly key: Uint8Array;
  readonly rpik: Uint8Array;
  readonly aemk: Uint8Array;
  readonly start: number;
  /** Intervals: to the end of its day, cut at the current interval when released early. */
  readonly period: number;
  /** Uploaded: its RPIs are public, it is never advertised again. */
  readonly released: boolean;
}

interface SightingBatch {
  readonly at: SimMillis;
  readonly rssiAt: readonly SimMillis[];
  readonly bytes: Uint8Array;
}

/** One UTC day of scan windows: appending copies only the current day, not 14 days of windows. */
interface SightingDay {
  readonly day: number;
  readonly batches: readonly SightingBatch[];
}

export interface GaenState {
  readonly teks: readonly OwnTek[];
  readonly days: readonly SightingDay[];
}

const enin = (at: SimMillis): number => Math.floor(at / INTERVAL_MS);

/**
 * A TEK from interval j to the end of its UTC day: from the day's start
 * normally, from j itself after a same-day release (the released key ends at
 * j, and its last RPI must not be advertised again).
 */
function newTek(crypto: CryptoSuite, j: number, fromDayStart: boolean, drbg: DrbgState): { tek: OwnTek; drbg: DrbgState } {
  const draw = drbgDraw(drbg, TEK_BYTES);
  const key = draw.bytes;
  const dayStart = rollingStartIntervalNumber(j);
  const start = fromDayStart ? dayStart : j;
  return { tek: { key, rpik: rpik(crypto, key), aemk: aemk(crypto, key), start, period: dayStart + TEK_ROLLING_PERIOD - start, released: false }, drbg: draw.state };
}

function covers(tek: OwnTek, interval: number): boolean {
  return interval >= tek.start && interval < tek.start + tek.period;
}

export const gaenEngine: TracingEngine<GaenState, GaenEngineConfig> = {
  protocol: 'gaen',
  timing: { advertiseIntervalMs: 250, scanWindowMs: 4000, scanIntervalMs: 5 * 60_000, filterDuplicates: false },

  init: (_deps, _config, _at, drbg) => ({ state: { teks: [], days: [] }, drbg }),

  rotate(deps, config, state, at, drbg) {
    const j = enin(at);
    let teks = state.teks;
    let current = teks[teks.length - 1];
    if (current === undefined || current.released || !covers(current, j)) {
      const made = newTek(deps.crypto, j, current === undefined || !current.released, drbg);
      drbg = made.drbg;
      current = made.tek;
      teks = [...teks, current];
    }
    const id = rpi(deps.crypto, current.rpik, j);
    const metadata = encodeEnMetadata({ versionMajor: 1, versionMinor: 0, txPowerConfidence: 0, txPowerDbm: config.txPowerDbm });
    const payload = encodeEnServiceData(id, encryptAem(deps.crypto, current.aemk, id, metadata));
    return { state: { ...state, teks }, drbg, payloads: [payload], nextAt: (j + 1) * INTERVAL_MS };
  },

  observe(_deps, _config, state, frames, at) {
    // One sighting per RPI per scan window, at its mean RSSI (EN's scan instance averages the
    // advertisements of one scan; the radio reports all of them: filterDuplicates is off).
    const perRpi = new Map<string, { payload: Uint8Array; sum: number; count: number; at: SimMillis }>();
    let refused = 0;
    for (const frame of frames) {
      if (frame.payload.length !== EN_SERVICE_DATA_BYTES || !Number.isInteger(frame.rssi) || frame.rssi < -128 || frame.rssi > 127) {
        refused++;
        continue;
      }
      let key = '';
      for (const b of frame.payload) key += String.fromCharCode(b);
      const seen = perRpi.get(key);
      if (seen === undefined) perRpi.set(key, { payload: frame.payload, sum: frame.rssi, count: 1, at: frame.at });
      else {
        seen.sum += frame.rssi;
        seen.count++;
      }
    }
    if (perRpi.size === 0) return { state, refused };
    const bytes = new Uint8Array(perRpi.size * SIGHTING_BYTES);
    const times: SimMillis[] = [];
    let o = 0;
    for (const s of perRpi.values()) {
      bytes.set(s.payload, o);
      bytes[o + EN_SERVICE_DATA_BYTES] = Math.round(s.sum / s.count) & 0xff;
      times.push(s.at);
      o += SIGHTING_BYTES;
    }
    return { state: { ...state, days: appendBatch(state.days, { at, rssiAt: times, bytes }) }, refused };
  },

  expire(config, state, at) {
    const horizon = at - config.retentionDays * DAY_MS;
    const firstInterval = enin(Math.max(0, horizon));
    const teks = state.teks.filter((t) => t.start + t.period > firstInterval);
    const days = state.days.flatMap((d) => {
      const kept = d.batches.filter((b) => b.at >= horizon);
      return kept.length === 0 ? [] : [kept.length === d.batches.length ? d : { day: d.day, batches: kept }];
    });
    const unchanged = teks.length === state.teks.length && days.length === state.days.length && days.every((d, i) => d === state.days[i]);
    return unchanged ? state : { teks, days };
  },

  // A TEK is as old as its last interval (expire keeps it while that is within the retention).
  oldestHeld(state) {
    const tek = state.teks[0];
    const batch = state.days[0]?.batches[0];
    const times = [tek === undefined ? undefined : (tek.start + tek.period) * INTERVAL_MS, batch?.at].filter((t): t is number => t !== undefined);
    return times.length === 0 ? undefined : Math.min(...times);
  },

  report(_deps, config, state, infectiousFrom, at, drbg) {
    const from = enin(infectiousFrom);
    const now = enin(at);
    const records: GaenTekRecord[] = [];
    const teks = state.teks.map((t) => {
      const current = covers(t, now);
      const period = current ? now - t.start + 1 : t.period;
      if (t.start + period > from && t.start <= now) records.push({ protocol: 'gaen-tek', key: t.key, rollingStartIntervalNumber: t.start, rollingPeriod: period, transmissionRisk: config.transmissionRisk });
      // Released keys are never advertised again: the rotation that follows starts a new TEK.
      return current ? { ...t, period, released: true } : t;
    });
    return { state: { ...state, teks }, drbg, records };
  },

  match(deps, config, state, records, _at) {
    const keys: DiagnosisKey[] = [];
    const ids: string[] = [];
    for (const r of records) {
      if (r.protocol !== 'gaen-tek') continue;
      keys.push({ keyData: r.key, rollingStartIntervalNumber: r.rollingStartIntervalNumber, rollingPeriod: r.rollingPeriod, transmissionRiskLevel: r.transmissionRisk });
      ids.push(r.id);
    }
    if (keys.length === 0 || state.days.length === 0) return { state, exposures: [] };
    const run = (): Exposure[] => {
      // Per-day indexes: a past day never changes, so its index is built once (indexOfDay) and
      // only today's is rebuilt per download. A key is matched against every day; matchDiagnosisKeys
      // skips, without crypto, the days with no sighting in the key's window ± drift.
      const byKey = new Map<number, KeyMatch>();
      for (const day of state.days) {
        for (const m of matchDiagnosisKeys(deps.crypto, keys, indexOfDay(day)).matches) {
          const seen = byKey.get(m.keyIndex);
          byKey.set(m.keyIndex, seen === undefined ? m : { ...seen, sightings: [...seen.sightings, ...m.sightings], implausibleTxPower: seen.implausibleTxPower + m.implausibleTxPower });
        }
      }
      return exposuresOf([...byKey.values()].sort((a, b) => a.keyIndex - b.keyIndex), ids, config.exposure);
    };
    return { state, exposures: deps.meter === undefined ? run() : deps.meter.time('match', run) };
  },

  storageBytes: (state) => state.teks.length * (TEK_BYTES + 8) + state.days.reduce((sum, d) => sum + d.batches.reduce((n, b) => n + b.bytes.length + 8 * b.rssiAt.length, 0), 0),
};

function appendBatch(days: readonly SightingDay[], batch: SightingBatch): SightingDay[] {
  const day = Math.floor(batch.at / DAY_MS);
  const last = days[days.length - 1];
  if (last !== undefined && last.day === day) return [...days.slice(0, -1), { day, batches: [...last.batches, batch] }];
  return [...days, { day, batches: [batch] }];
}

/**
 * Memo of each day's sighting index, keyed by the (immutable) day object: a pure cache — the
 * same day always gives the same index — that a restored snapshot simply rebuilds.
 */
const dayIndexes = new WeakMap<SightingDay, SightingIndex>();

function indexOfDay(day: SightingDay): SightingIndex {
  let index = dayIndexes.get(day);
  if (index === undefined) {
    index = buildSightingIndex(unpack(day.batches));
    dayIndexes.set(day, index);
  }
  return index;
}

function unpack(batches: readonly SightingBatch[]): Sighting[] {
  const out: Sighting[] = [];
  for (const b of batches) {
    for (let i = 0; i < b.rssiAt.length; i++) {
      const o = i * SIGHTING_BYTES;
      const rssi = b.bytes[o + EN_SERVICE_DATA_BYTES] ?? 0;
      out.push({ rpi: b.bytes.subarray(o, o + 16), aem: b.bytes.subarray(o + 16, o + 20), receivedAtMs: b.rssiAt[i] ?? b.at, rssiDbm: rssi >= 0x80 ? rssi - 0x100 : rssi });
    }
  }
  return out;
}

/** One exposure per (key, day) whose weighted minutes reach the low threshold. */
function exposuresOf(matches: readonly KeyMatch[], ids: readonly string[], config: ExposureConfig): Exposure[] {
  const out: Exposure[] = [];
  for (const m of matches) {
    const windows = exposureWindowsOf([m], config);
    const classified = classifyExposure(windows, config);
    for (const day of classified.days) {
      const risk = day.weightedMinutes >= config.highRiskWeightedMinutes ? 'high' : day.weightedMinutes >= config.lowRiskWeightedMinutes && day.weightedMinutes > 0 ? 'low' : undefined;
      if (risk === undefined) continue;
      const ofDay = windows.filter((w) => w.dayNumber === day.dayNumber);
      out.push({
        recordId: ids[m.keyIndex] ?? '',
        dayNumber: day.dayNumber,
        firstAt: Math.min(...ofDay.map((w) => w.startMs)),
        lastAt: Math.max(...ofDay.map((w) => w.endMs)),
        minutes: day.weightedMinutes,
        risk,
      });
    }
  }
  return out;
}
