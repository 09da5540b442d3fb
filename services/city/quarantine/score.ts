/**
 * Scoring alerts against the plan's ground truth.
 *
 * - An alert is **true** when its window overlaps an absence (a violation).
 * - Otherwise it is **explained** by a phone outage (network, bluetooth,
 *   power) or a beacon outage overlapping its window — correct by the
 *   protocol's rule (no valid token could reach the backend), but not a
 *   violation — or **unexplained** (a real false alert).
 * - A violation is **detectable** when it lasts at least window + tolerance;
 *   it is **missed** when no alert's window overlaps it. Shorter violations
 *   are reported separately (the design cannot see them).
 * - Detection latency: first overlapping alert's arrival − violation start.
 */
import type { HouseholdPlan, Interval } from './plan.ts';

export interface ObservedAlert {
  readonly beaconId: string;
  readonly windowStart: number;
  readonly windowEnd: number;
  /** When the police backend stored it, ms. */
  readonly receivedAt: number;
}

export interface AlertScore {
  readonly alerts: number;
  readonly trueAlerts: number;
  readonly explainedByPhoneOutage: number;
  readonly explainedByBeaconOutage: number;
  readonly unexplainedFalseAlerts: number;
  readonly violations: number;
  readonly detectableViolations: number;
  readonly detectedViolations: number;
  readonly missedViolations: number;
  readonly undetectableShortViolations: number;
  /** Latency percentiles over detected violations, seconds (null when none). */
  readonly latencyS: { readonly p50: number | null; readonly p90: number | null; readonly max: number | null };
  /** Detected violations by latency bucket (upper bounds in minutes; the last is open). */
  readonly latencyHistogram: Readonly<Record<string, number>>;
}

/** Upper bounds of the latency buckets, minutes: window + tolerance is 7 min by default. */
export const LATENCY_BUCKETS_MIN = [5, 7, 10, 15, 30, 60] as const;

export function latencyHistogram(latenciesS: readonly number[]): Record<string, number> {
  const out: Record<string, number> = {};
  let lower = 0;
  for (const upper of LATENCY_BUCKETS_MIN) {
    const from = lower;
    out[`${from}-${upper} min`] = latenciesS.filter((l) => (from === 0 || l > from * 60) && l <= upper * 60).length;
    lower = upper;
  }
  out[`> ${lower} min`] = latenciesS.filter((l) => l > lower * 60).length;
  return out;
}

const overlaps = (a: Interval, b: Interval): boolean => a.start < b.end && b.start < a.end;

function pct(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? null;
}

/**
 * The plans as far as a run interrupted at `until` lived them: spans starting
 * later dropped, spans still running cut at `until` (so an absence cut short
 * is scored by what could be seen of it).
 */
export function clipPlans(plans: readonly HouseholdPlan[], until: number): HouseholdPlan[] {
  const clip = <T extends Interval>(spans: readonly T[]): T[] => spans.filter((x) => x.start < until).map((x) => ({ ...x, end: Math.min(x.end, until) }));
  return plans.map((p) => {
    const kept = p.absences.map((a, j) => ({ a, j })).filter(({ a }) => a.start < until);
    return {
      ...p,
      absences: kept.map(({ a }) => ({ start: a.start, end: Math.min(a.end, until) })),
      ...(p.absenceAttacks !== undefined ? { absenceAttacks: kept.map(({ j }) => p.absenceAttacks?.[j] ?? null) } : {}),
      outages: clip(p.outages),
      beaconOutages: clip(p.beaconOutages),
      ...(p.floods !== undefined ? { floods: clip(p.floods) } : {}),
    };
  });
}

export function scoreAlerts(plans: readonly HouseholdPlan[], alerts: readonly ObservedAlert[], windowMs: number, toleranceMs: number): AlertScore {
  const byBeacon = new Map(plans.map((p) => [p.beaconId, p]));
  const perBeacon = new Map<string, ObservedAlert[]>();
  let trueAlerts = 0;
  let phone = 0;
  let beacon = 0;
  let unexplained = 0;
  for (const alert of alerts) {
    const list = perBeacon.get(alert.beaconId) ?? [];
    list.push(alert);
    perBeacon.set(alert.beaconId, list);
    const plan = byBeacon.get(alert.beaconId);
    const window = { start: alert.windowStart, end: alert.windowEnd };
    if (plan?.absences.some((a) => overlaps(a, window))) trueAlerts++;
    else if (plan?.outages.some((o) => overlaps(o, window))) phone++;
    else if (plan?.beaconOutages.some((o) => overlaps(o, window))) beacon++;
    else unexplained++;
  }
  let violations = 0;
  let detectable = 0;
  let detected = 0;
  let short = 0;
  const latencies: number[] = [];
  for (const plan of plans) {
    for (const absence of plan.absences) {
      violations++;
      if (absence.end - absence.start < windowMs + toleranceMs) {
        short++;
        continue;
      }
      detectable++;
      const hits = (perBeacon.get(plan.beaconId) ?? []).filter((a) => overlaps(absence, { start: a.windowStart, end: a.windowEnd }));
      if (hits.length === 0) continue;
      detected++;
      latencies.push((Math.min(...hits.map((a) => a.receivedAt)) - absence.start) / 1000);
    }
  }
  latencies.sort((a, b) => a - b);
  return {
    alerts: alerts.length,
    trueAlerts,
    explainedByPhoneOutage: phone,
    explainedByBeaconOutage: beacon,
    unexplainedFalseAlerts: unexplained,
    violations,
    detectableViolations: detectable,
    detectedViolations: detected,
    missedViolations: detectable - detected,
    undetectableShortViolations: short,
    latencyS: { p50: pct(latencies, 50), p90: pct(latencies, 90), max: latencies.length > 0 ? (latencies[latencies.length - 1] ?? null) : null },
    latencyHistogram: latencyHistogram(latencies),
  };
}

/** Violations with one attack (or none): how many, detectable, detected, missed, too short. */
export interface AttackViolationScore {
  readonly violations: number;
  readonly detectable: number;
  readonly detected: number;
  readonly missed: number;
  readonly short: number;
}

export interface AttackScore {
  /** By the attack of the absence (`none` = no attack). */
  readonly violations: Readonly<Record<string, AttackViolationScore>>;
  readonly floods: { readonly episodes: number; readonly floodedMinutes: number; readonly alertsDuringFlood: number; readonly unexplainedAlertsDuringFlood: number };
}

/** Per-attack breakdown of scoreAlerts' violation counts, and the alerts during floods. */
export function scoreAttacks(plans: readonly HouseholdPlan[], alerts: readonly ObservedAlert[], windowMs: number, toleranceMs: number): AttackScore {
  const violations: Record<string, { violations: number; detectable: number; detected: number; missed: number; short: number }> = {};
  let episodes = 0;
  let floodedMs = 0;
  let during = 0;
  let unexplained = 0;
  for (const plan of plans) {
    const mine = alerts.filter((a) => a.beaconId === plan.beaconId).map((a) => ({ start: a.windowStart, end: a.windowEnd }));
    for (const [j, absence] of plan.absences.entries()) {
      const kind = plan.absenceAttacks?.[j] ?? 'none';
      const s = (violations[kind] ??= { violations: 0, detectable: 0, detected: 0, missed: 0, short: 0 });
      s.violations++;
      if (absence.end - absence.start < windowMs + toleranceMs) {
        s.short++;
        continue;
      }
      s.detectable++;
      if (mine.some((w) => overlaps(absence, w))) s.detected++;
      else s.missed++;
    }
    for (const f of plan.floods ?? []) {
      episodes++;
      floodedMs += f.end - f.start;
      for (const w of mine.filter((m) => overlaps(f, m))) {
        during++;
        const explained = plan.absences.some((a) => overlaps(a, w)) || plan.outages.some((x) => overlaps(x, w)) || plan.beaconOutages.some((x) => overlaps(x, w));
        if (!explained) unexplained++;
      }
    }
  }
  return { violations, floods: { episodes, floodedMinutes: Math.round(floodedMs / 60_000), alertsDuringFlood: during, unexplainedAlertsDuringFlood: unexplained } };
}
