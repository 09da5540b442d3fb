import { describe, expect, it } from 'vitest';
import { tracingCityConfigSchema } from '../../services/city/tracing/config.ts';
import { closeContacts, expectedExposures, type CloseContact } from '../../services/city/tracing/ground-truth.ts';
import { planTracingCity, staysByPhoneId } from '../../services/city/tracing/plan.ts';

const T0 = Date.UTC(2026, 0, 1);
const seed = (n: number) => new Uint8Array(16).fill(n);

function kindOf(c: CloseContact): string {
  return c.place.kind === 'home' ? 'home' : c.place.venueKind;
}

/** Contacts per phone per day (each contact involves two phones), by place kind. */
function perPhoneDay(contacts: readonly CloseContact[], phones: number, days: number): Record<string, number> {
  const out: Record<string, number> = { home: 0, office: 0, school: 0, restaurant: 0, shop: 0 };
  for (const c of contacts) out[kindOf(c)] = (out[kindOf(c)] ?? 0) + 2 / phones / days;
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, Math.round(v * 1000) / 1000]));
}

describe('default tracing city (500 phones, 7 days)', () => {
  const config = tracingCityConfigSchema.parse({});
  const started = performance.now();
  const plan = planTracingCity(config, T0, seed(1));
  const planned = performance.now();
  const stays = staysByPhoneId(plan);
  const contacts = closeContacts(stays, config.contact);
  const done = performance.now();

  it('has a plausible mix of close contacts: mostly household, then office, school, a few restaurant, hardly any shop', () => {
    const rates = perPhoneDay(contacts, config.phones, config.days);
    // Shops: many encounters in the same shop, some within 2 m, almost none long enough.
    const sameShop = closeContacts(stays, { ...config.contact, maxDistanceM: 1e6, minDurationMin: 0 }).filter((c) => kindOf(c) === 'shop').length;
    const nearShop = closeContacts(stays, { ...config.contact, minDurationMin: 0 }).filter((c) => kindOf(c) === 'shop').length;
    const shopContacts = contacts.filter((c) => kindOf(c) === 'shop').length;
    console.log(
      `tracing city: plan ${(planned - started).toFixed(0)} ms, closeContacts ${(done - planned).toFixed(0)} ms; ` +
        `${contacts.length} close contacts = ${((2 * contacts.length) / config.phones / config.days).toFixed(2)} per phone per day ` +
        `${JSON.stringify(rates)}; shop pair-days: ${sameShop} together, ${nearShop} within 2 m, ${shopContacts} ≥ 15 min`,
    );
    expect(rates.home).toBeGreaterThan(0.5);
    expect(rates.home).toBeLessThan(2);
    const total = Object.values(rates).reduce((sum, r) => sum + r, 0);
    expect(rates.home).toBeGreaterThan(0.45 * total);
    expect(rates.office).toBeGreaterThan(0.2);
    expect(rates.office).toBeLessThan(1);
    expect(rates.school).toBeGreaterThan(0.1);
    expect(rates.restaurant).toBeGreaterThan(0.02);
    expect(rates.restaurant).toBeLessThan(rates.office ?? 0);
    expect(rates.shop).toBeLessThan(0.05);
    expect(nearShop).toBeGreaterThan(3 * shopContacts);
    expect(sameShop).toBeGreaterThan(5 * nearShop);
  });

  it('gives every contact at least 15 min within 2 m and pairs in id order', () => {
    for (const c of contacts) {
      expect(c.a < c.b).toBe(true);
      expect(c.durationMs).toBeGreaterThanOrEqual(15 * 60_000);
      expect(c.minDistanceM).toBeLessThanOrEqual(2);
    }
  });

  it('expects a few dozen phones to be notified about the 25 positives', () => {
    const exposures = expectedExposures(contacts, plan.positives, config.contact);
    console.log(`tracing city: ${plan.positives.length} positives, ${exposures.size} phones expected to be notified`);
    expect(exposures.size).toBeGreaterThan(10);
    expect(exposures.size).toBeLessThan(250);
  });
});
