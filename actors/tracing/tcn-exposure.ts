/**
 * The TCN exposure rule (tcn-config.ts explains the calibration): for one source — a report (mode
 * C), a report the backend matched (A), a published log (B) — the sightings of a UTC day are split
 * into runs (gaps ≤ runGapMs, at most maxRunMs long); a run whose mean RSSI puts the positive
 * within closeDistanceM (estimateDistanceM, TxPower and n from the config) contributes its
 * distinct scan periods, one scan period each. The day's close minutes ≥ highRiskMinutes →
 * 'high', ≥ lowRiskMinutes → 'low'.
 *
 * Sources can grow (modes A and B learn more contacts of the same positive later), so the engine
 * remembers the highest risk it reported per (source, day) and reports a day again only when its
 * risk rises.
 */
import { estimateDistanceM } from '../../protocol/tcn/distance.ts';
import type { Exposure, ExposureRisk } from './engine.ts';
import { DAY_MS, MINUTE_MS, type TcnEngineConfig } from './tcn-config.ts';

/** One sighting of a positive's TCN: when (ms) and how strong (dBm). */
export interface TcnSighting {
  readonly atMs: number;
  readonly rssiDbm: number;
}

interface Run {
  readonly first: number;
  last: number;
  sum: number;
  count: number;
  readonly periods: Set<number>;
}

/** Runs of one day's sightings (sorted by time). */
function runsOf(config: TcnEngineConfig, sightings: readonly TcnSighting[]): Run[] {
  const runs: Run[] = [];
  let run: Run | undefined;
  for (const s of sightings) {
    if (run === undefined || s.atMs - run.last > config.runGapMs || s.atMs - run.first >= config.maxRunMs) {
      run = { first: s.atMs, last: s.atMs, sum: 0, count: 0, periods: new Set() };
      runs.push(run);
    }
    run.last = s.atMs;
    run.sum += s.rssiDbm;
    run.count++;
    run.periods.add(Math.floor(s.atMs / config.scanPeriodMs));
  }
  return runs;
}

/** Is a run close: its mean RSSI's distance estimate within closeDistanceM? */
function isClose(config: TcnEngineConfig, run: Run): boolean {
  return estimateDistanceM(run.sum / run.count, { txPowerDbm: config.txPowerDbm, pathLossExponent: config.pathLossExponent }) <= config.closeDistanceM;
}

export function riskOf(config: TcnEngineConfig, minutes: number): ExposureRisk | undefined {
  if (minutes >= config.highRiskMinutes) return 'high';
  return minutes >= config.lowRiskMinutes ? 'low' : undefined;
}

/** Exposures of one source, one per UTC day with at least lowRiskMinutes close. */
export function tcnExposures(config: TcnEngineConfig, recordId: string, sightings: readonly TcnSighting[]): Exposure[] {
  const byDay = new Map<number, TcnSighting[]>();
  for (const s of sightings) {
    const day = Math.floor(s.atMs / DAY_MS);
    const list = byDay.get(day);
    if (list === undefined) byDay.set(day, [s]);
    else list.push(s);
  }
  const out: Exposure[] = [];
  for (const [dayNumber, list] of [...byDay].sort((a, b) => a[0] - b[0])) {
    list.sort((a, b) => a.atMs - b.atMs);
    let periods = 0;
    let firstAt = Number.POSITIVE_INFINITY;
    let lastAt = 0;
    for (const run of runsOf(config, list)) {
      if (!isClose(config, run)) continue;
      periods += run.periods.size;
      firstAt = Math.min(firstAt, run.first);
      lastAt = Math.max(lastAt, run.last);
    }
    const minutes = (periods * config.scanPeriodMs) / MINUTE_MS;
    const risk = riskOf(config, minutes);
    if (risk !== undefined) out.push({ recordId, dayNumber, firstAt, lastAt, minutes, risk });
  }
  return out;
}

const RANK: Readonly<Record<ExposureRisk, number>> = { low: 1, high: 2 };

/** The exposures whose (record, day) risk rose above what was reported before, and the updated memory. */
export function freshExposures(notified: Readonly<Record<string, ExposureRisk>>, exposures: readonly Exposure[]): { readonly notified: Readonly<Record<string, ExposureRisk>>; readonly fresh: readonly Exposure[] } {
  let next = notified;
  const fresh: Exposure[] = [];
  for (const e of exposures) {
    const key = `${e.recordId}/${e.dayNumber}`;
    const before = next[key];
    if (before !== undefined && RANK[before] >= RANK[e.risk]) continue;
    next = { ...next, [key]: e.risk };
    fresh.push(e);
  }
  return { notified: next, fresh };
}

/** Forget what was reported for days before `horizonDay`. */
export function expireNotified(notified: Readonly<Record<string, ExposureRisk>>, horizonDay: number): Readonly<Record<string, ExposureRisk>> {
  const kept = Object.entries(notified).filter(([key]) => Number(key.slice(key.lastIndexOf('/') + 1)) >= horizonDay);
  return kept.length === Object.keys(notified).length ? notified : Object.fromEntries(kept);
}
