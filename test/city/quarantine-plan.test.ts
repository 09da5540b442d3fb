import { describe, expect, it } from 'vitest';
import { planCity, quarantineCitySchema, type HouseholdPlan } from '../../services/city/quarantine/plan.ts';
import { clipPlans, latencyHistogram, scoreAlerts } from '../../services/city/quarantine/score.ts';

const T0 = 1_767_225_600_000;
const MIN = 60_000;
const seed = (n: number) => new Uint8Array(16).fill(n);

describe('quarantine city plan (ground truth)', () => {
  it('is a pure function of config and seed', () => {
    const c = quarantineCitySchema.parse({ households: 50 });
    expect(planCity(c, T0, seed(1))).toEqual(planCity(c, T0, seed(1)));
    expect(planCity(c, T0, seed(1))).not.toEqual(planCity(c, T0, seed(2)));
  });

  it('honours the fractions and keeps every span inside the run, after the quiet first hour, disjoint', () => {
    const c = quarantineCitySchema.parse({ households: 2000, days: 7 });
    const plans = planCity(c, T0, seed(3));
    const frac = (f: (p: HouseholdPlan) => boolean) => plans.filter(f).length / plans.length;
    expect(frac((p) => p.violator)).toBeCloseTo(0.2, 1);
    expect(frac((p) => p.flaky)).toBeCloseTo(0.1, 1);
    expect(frac((p) => p.beaconOutages.length > 0)).toBeCloseTo(0.02, 1);
    const end = T0 + 7 * 24 * 60 * MIN;
    for (const p of plans) {
      const all = [...p.absences, ...p.outages, ...p.beaconOutages];
      for (const s of all) {
        expect(s.start).toBeGreaterThanOrEqual(T0 + 60 * MIN);
        expect(s.end).toBeLessThanOrEqual(end);
        expect(s.end).toBeGreaterThan(s.start);
      }
      const phoneSpans = [...p.absences, ...p.outages].sort((a, b) => a.start - b.start);
      for (let i = 1; i < phoneSpans.length; i++) expect(phoneSpans[i]!.start).toBeGreaterThanOrEqual(phoneSpans[i - 1]!.end);
      if (!p.violator) expect(p.absences).toEqual([]);
      if (!p.flaky) expect(p.outages).toEqual([]);
    }
  });

  it('rejects inverted ranges, all problems at once', () => {
    const r = quarantineCitySchema.safeParse({ households: 0, violationMinutes: [100, 10] });
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => i.path.join('.')).sort()).toEqual(['households', 'violationMinutes'].sort());
  });
});

describe('alert scoring', () => {
  const W = 6 * MIN;
  const TOL = MIN;
  const plan: HouseholdPlan = {
    index: 0,
    beaconId: 'qb0',
    phoneId: 'qp0',
    violator: true,
    flaky: true,
    absences: [
      { start: T0 + 100 * MIN, end: T0 + 160 * MIN },
      { start: T0 + 300 * MIN, end: T0 + 303 * MIN }, // shorter than window + tolerance
      { start: T0 + 500 * MIN, end: T0 + 560 * MIN }, // missed
    ],
    outages: [{ start: T0 + 200 * MIN, end: T0 + 230 * MIN, kind: 'network' }],
    beaconOutages: [{ start: T0 + 400 * MIN, end: T0 + 450 * MIN }],
  };
  const alert = (startMin: number, receivedMin: number) => ({ beaconId: 'qb0', windowStart: T0 + startMin * MIN, windowEnd: T0 + (startMin + 6) * MIN, receivedAt: T0 + receivedMin * MIN });

  it('classifies alerts by what overlaps their window and scores detection', () => {
    const s = scoreAlerts([plan], [alert(99, 106), alert(105, 113), alert(201, 208), alert(401, 408), alert(700, 707)], W, TOL);
    expect(s).toMatchObject({
      alerts: 5,
      trueAlerts: 2,
      explainedByPhoneOutage: 1,
      explainedByBeaconOutage: 1,
      unexplainedFalseAlerts: 1,
      violations: 3,
      detectableViolations: 2,
      detectedViolations: 1,
      missedViolations: 1,
      undetectableShortViolations: 1,
    });
    expect(s.latencyS).toEqual({ p50: 360, p90: 360, max: 360 });
    expect(s.latencyHistogram).toEqual({ '0-5 min': 0, '5-7 min': 1, '7-10 min': 0, '10-15 min': 0, '15-30 min': 0, '30-60 min': 0, '> 60 min': 0 });
  });

  it('latency histogram: bucket bounds are inclusive above, the first bucket takes 0, the last is open', () => {
    expect(latencyHistogram([0, 300, 301, 420, 421, 3600, 3601, 86_400])).toEqual({
      '0-5 min': 2, '5-7 min': 2, '7-10 min': 1, '10-15 min': 0, '15-30 min': 0, '30-60 min': 1, '> 60 min': 2,
    });
  });

  it('clipPlans: an interrupted run is scored on the spans it lived, cut at the stop', () => {
    const [clipped] = clipPlans([plan], T0 + 205 * MIN);
    expect(clipped?.absences).toEqual([{ start: T0 + 100 * MIN, end: T0 + 160 * MIN }]);
    expect(clipped?.outages).toEqual([{ start: T0 + 200 * MIN, end: T0 + 205 * MIN, kind: 'network' }]);
    expect(clipped?.beaconOutages).toEqual([]);
    // the run stopped 5 min into the outage: its alerts are scored against what was simulated
    expect(scoreAlerts([clipped!], [alert(99, 106)], W, TOL)).toMatchObject({ violations: 1, detectedViolations: 1, missedViolations: 0 });
  });
});
