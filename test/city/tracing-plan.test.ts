import { describe, expect, it } from 'vitest';
import { tracingCityConfigSchema } from '../../services/city/tracing/config.ts';
import { DAY_MS, HOUR_MS, utcDay } from '../../services/city/tracing/model.ts';
import { moves, placeAt, planTracingCity, type TracingCityPlan } from '../../services/city/tracing/plan.ts';

/** 2026-01-01T00:00Z, a Thursday: the default week has Saturday 3 and Sunday 4 January. */
const T0 = Date.UTC(2026, 0, 1);
const seed = (n: number) => new Uint8Array(16).fill(n);
const defaults = tracingCityConfigSchema.parse({});

function expectWellFormedStays(plan: TracingCityPlan): void {
  expect(plan.stays).toHaveLength(plan.phones.length);
  for (const [index, stays] of plan.stays.entries()) {
    expect(stays[0]?.from).toBe(plan.t0);
    expect(stays[stays.length - 1]?.to).toBe(plan.end);
    for (const [k, s] of stays.entries()) {
      expect(s.to).toBeGreaterThan(s.from);
      if (k > 0) expect(s.from).toBe(stays[k - 1]?.to);
      // A phone's radio room is the place it is at.
      expect(s.position.room).toBe(s.place.id);
      if (s.place.kind === 'home') expect(s.place.id).toBe(plan.households[plan.phones[index]?.household ?? -1]?.id);
    }
  }
}

describe('tracing city config', () => {
  it('defaults to the 500-phone week with the 2 m / 15 min rule', () => {
    expect(defaults.phones).toBe(500);
    expect(defaults.days).toBe(7);
    expect(defaults.contact).toEqual({ maxDistanceM: 2, minDurationMin: 15, windowHours: 24 });
    expect(defaults.positives).toEqual({ fraction: 0.05, firstDay: 1, lastDiagnosisBeforeEndH: 24, infectiousDaysBefore: 2 });
  });

  it('reports every problem at once', () => {
    const r = tracingCityConfigSchema.safeParse({
      phones: 1,
      shop: { minutes: [30, 5] },
      contact: { maxDistanceM: -1 },
      positives: { fraction: 2 },
      households: { sizeWeights: [0, 0] },
    });
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => i.path.join('.')).sort()).toEqual(
      ['contact.maxDistanceM', 'households.sizeWeights', 'phones', 'positives.fraction', 'shop.minutes'].sort(),
    );
  });

  it('rejects a diagnosis window that is empty and shares above 1', () => {
    const r = tracingCityConfigSchema.safeParse({ days: 2, positives: { firstDay: 2 }, office: { share: 0.9 }, school: { share: 0.2 } });
    expect(r.error?.issues.map((i) => i.path.join('.')).sort()).toEqual(['office.share', 'positives.firstDay']);
  });
});

describe('tracing city plan', () => {
  const plan = planTracingCity(defaults, T0, seed(1));

  it('is a pure function of config, t0 and seed', () => {
    const small = tracingCityConfigSchema.parse({ phones: 60, days: 4 });
    expect(planTracingCity(small, T0, seed(1))).toEqual(planTracingCity(small, T0, seed(1)));
    expect(planTracingCity(small, T0, seed(1)).stays).not.toEqual(planTracingCity(small, T0, seed(2)).stays);
    expect(planTracingCity(small, T0, seed(1)).positives).not.toEqual(planTracingCity(small, T0, seed(2)).positives);
  });

  it('gives every phone sorted, gap-free stays covering [t0, end)', () => {
    expect(plan.end).toBe(T0 + 7 * DAY_MS);
    expectWellFormedStays(plan);
  });

  it('clips to [t0, end) when t0 is not UTC midnight', () => {
    const c = tracingCityConfigSchema.parse({ phones: 40, days: 3, positives: { firstDay: 1 } });
    const offset = planTracingCity(c, T0 + 9.25 * HOUR_MS, seed(4));
    expectWellFormedStays(offset);
  });

  it('builds households of 1–5 (mean ≈ 2.4) on a 40 m grid, members 1–5 m apart', () => {
    const sizes = plan.households.map((h) => h.members.length);
    expect(sizes.reduce((s, n) => s + n, 0)).toBe(500);
    expect(Math.min(...sizes)).toBeGreaterThanOrEqual(1);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(5);
    expect(500 / plan.households.length).toBeGreaterThan(2.1);
    expect(500 / plan.households.length).toBeLessThan(2.7);
    const [h0, h1] = plan.households;
    expect(Math.hypot((h1?.position.x ?? 0) - (h0?.position.x ?? 0), (h1?.position.y ?? 0) - (h0?.position.y ?? 0))).toBe(40);
    for (const h of plan.households) {
      for (const [i, a] of h.spots.entries()) {
        for (const b of h.spots.slice(i + 1)) {
          const d = Math.hypot(a.x - b.x, a.y - b.y);
          expect(d).toBeGreaterThanOrEqual(1);
          expect(d).toBeLessThanOrEqual(5);
        }
      }
    }
  });

  it('keeps everybody home at night and offices and schools closed at the weekend', () => {
    for (let d = 0; d < 7; d++) {
      for (const phone of plan.phones) expect(placeAt(plan, phone.index, T0 + d * DAY_MS + 3 * HOUR_MS)?.place.kind).toBe('home');
    }
    const weekendWork = plan.stays.flat().filter((s) => {
      const weekday = new Date(s.from).getUTCDay();
      return s.place.kind === 'venue' && (s.place.venueKind === 'office' || s.place.venueKind === 'school') && (weekday === 0 || weekday === 6);
    });
    expect(weekendWork).toEqual([]);
  });

  it('seats office workers at the same desk every day and gives shops 5–30 min visits', () => {
    for (const phone of plan.phones) {
      const desks = new Set(
        (plan.stays[phone.index] ?? [])
          .filter((s) => s.place.kind === 'venue' && (s.place.venueKind === 'office' || s.place.venueKind === 'school'))
          .map((s) => `${s.place.id}@${s.position.x},${s.position.y}`),
      );
      expect(desks.size).toBeLessThanOrEqual(1);
      if (desks.size === 1) expect(phone.workplace).not.toBeNull();
    }
    const shopVisits = plan.stays.flat().filter((s) => s.place.kind === 'venue' && s.place.venueKind === 'shop');
    expect(shopVisits.length).toBeGreaterThan(500);
    for (const s of shopVisits) {
      expect(s.to - s.from).toBeGreaterThanOrEqual(5 * 60_000 - 1000);
      expect(s.to - s.from).toBeLessThanOrEqual(30 * 60_000 + 1000);
    }
    const restaurantVisits = plan.stays.flat().filter((s) => s.place.kind === 'venue' && s.place.venueKind === 'restaurant');
    expect(restaurantVisits.length).toBeGreaterThan(50);
  });

  it('diagnoses 5 % of phones between day 1 and 24 h before the end, infectious from midnight two days before', () => {
    expect(plan.positives).toHaveLength(25);
    expect(new Set(plan.positives.map((p) => p.phoneId)).size).toBe(25);
    for (const p of plan.positives) {
      expect(p.diagnosedAt).toBeGreaterThanOrEqual(T0 + 1 * DAY_MS);
      expect(p.diagnosedAt).toBeLessThanOrEqual(plan.end - 24 * HOUR_MS);
      expect(p.infectiousFrom).toBe((utcDay(p.diagnosedAt) - 2) * DAY_MS);
    }
    const times = plan.positives.map((p) => p.diagnosedAt);
    expect(times).toEqual([...times].sort((a, b) => a - b));
  });

  it('lists moves in time order and agrees with placeAt', () => {
    const all = moves(plan);
    expect(all).toHaveLength(plan.stays.reduce((n, s) => n + s.length, 0));
    for (let i = 1; i < all.length; i++) {
      const [prev, cur] = [all[i - 1], all[i]];
      const order = (cur?.at ?? 0) - (prev?.at ?? 0) || (cur?.phoneIndex ?? 0) - (prev?.phoneIndex ?? 0);
      expect(order).toBeGreaterThan(0);
    }
    for (const m of all.filter((_, i) => i % 97 === 0)) {
      expect(placeAt(plan, m.phoneIndex, m.at)?.place).toEqual(m.place);
      expect(placeAt(plan, m.phoneIndex, m.at)?.position).toEqual(m.position);
    }
    expect(placeAt(plan, 0, plan.t0 - 1)).toBeUndefined();
    expect(placeAt(plan, 0, plan.end)).toBeUndefined();
  });
});
