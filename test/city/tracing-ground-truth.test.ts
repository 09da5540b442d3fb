import { describe, expect, it } from 'vitest';
import { closeContacts, expectedExposures, type CloseContact } from '../../services/city/tracing/ground-truth.ts';
import { DAY_MS, type PlaceRef, type Positive, type Stay } from '../../services/city/tracing/model.ts';

const MIN = 60_000;
/** 2026-01-01T00:00Z: UTC day 20454. */
const T0 = Date.UTC(2026, 0, 1);
const DAY0 = T0 / DAY_MS;
const RULE = { maxDistanceM: 2, minDurationMin: 15, windowHours: 24 };

const home = (id: string): PlaceRef => ({ kind: 'home', id });
const shop = (id: string): PlaceRef => ({ kind: 'venue', id, venueKind: 'shop' });

/** A stay from minute `fromMin` to `toMin` after T0 at (x, y) of `place`. */
function stay(place: PlaceRef, fromMin: number, toMin: number, x: number, y = 0): Stay {
  return { from: T0 + fromMin * MIN, to: T0 + toMin * MIN, place, position: { x, y, room: place.id } };
}

function contactsOf(stays: Record<string, Stay[]>, rule = RULE): CloseContact[] {
  return closeContacts(new Map(Object.entries(stays)), rule);
}

describe('close contacts (exact ground truth)', () => {
  it('measures the overlap of two fixed positions exactly', () => {
    const [c, ...rest] = contactsOf({
      'phone-0001': [stay(home('h'), 600, 800, 0)],
      'phone-0000': [stay(home('h'), 650, 900, 1)],
    });
    expect(rest).toEqual([]);
    expect(c).toEqual({
      a: 'phone-0000',
      b: 'phone-0001',
      day: DAY0,
      durationMs: 150 * MIN,
      firstAt: T0 + 650 * MIN,
      lastAt: T0 + 800 * MIN,
      minDistanceM: 1,
      place: home('h'),
      intervals: [{ from: T0 + 650 * MIN, to: T0 + 800 * MIN }],
    });
  });

  it('sums several stays of the same day, across places, and names the place with the most time', () => {
    const [c] = contactsOf({
      a: [stay(shop('s'), 600, 608, 0), stay(home('h'), 700, 705, 0), stay(shop('s'), 900, 904, 0)],
      b: [stay(shop('s'), 600, 608, 1.5), stay(home('h'), 700, 710, 0.5), stay(shop('s'), 899, 910, 2)],
    });
    expect(c?.durationMs).toBe(17 * MIN);
    expect(c?.intervals).toHaveLength(3);
    expect(c?.place).toEqual(shop('s'));
    expect(c?.minDistanceM).toBe(0.5);
    expect([c?.firstAt, c?.lastAt]).toEqual([T0 + 600 * MIN, T0 + 904 * MIN]);
  });

  it('counts 15 min but not 14 min 59 s, 2 m but not 2.01 m', () => {
    const pair = (minutes: number, distance: number) =>
      contactsOf({ a: [stay(home('h'), 0, minutes, 0)], b: [stay(home('h'), 0, minutes, distance)] }).length;
    expect(pair(15, 1)).toBe(1);
    expect(pair(14, 1)).toBe(0);
    expect(pair(15 - 1 / 60, 1)).toBe(0);
    expect(pair(60, 2)).toBe(1);
    expect(pair(60, 2.01)).toBe(0);
  });

  it('never puts phones at different places in contact, however close their coordinates', () => {
    expect(contactsOf({ a: [stay(home('h1'), 0, 600, 0)], b: [stay(home('h2'), 0, 600, 0)] })).toEqual([]);
    expect(contactsOf({ a: [stay(shop('s'), 0, 600, 0)], b: [stay(home('s'), 0, 600, 0)] })).toEqual([]);
  });

  it('splits at UTC midnight: 10 min before is no contact, 20 min after is', () => {
    const contacts = contactsOf({
      a: [stay(home('h'), 24 * 60 - 10, 24 * 60 + 20, 0)],
      b: [stay(home('h'), 24 * 60 - 30, 24 * 60 + 60, 1)],
    });
    expect(contacts.map((c) => [c.day, c.durationMs])).toEqual([[DAY0 + 1, 20 * MIN]]);
    const lowThreshold = contactsOf({ a: [stay(home('h'), 24 * 60 - 10, 24 * 60 + 20, 0)], b: [stay(home('h'), 0, 48 * 60, 1)] }, { ...RULE, minDurationMin: 5 });
    expect(lowThreshold.map((c) => [c.day, c.durationMs])).toEqual([
      [DAY0, 10 * MIN],
      [DAY0 + 1, 20 * MIN],
    ]);
  });

  it('compares only phones within range among several present', () => {
    const stays = {
      a: [stay(shop('s'), 0, 60, 0)],
      b: [stay(shop('s'), 10, 70, 1.9)],
      c: [stay(shop('s'), 0, 60, 3.5)], // 3.5 m from a, 1.6 m from b
      d: [stay(shop('s'), 60, 120, 0)], // arrives as a and c leave: no overlap; 10 min with b
    };
    const summary = (contacts: CloseContact[]) => contacts.map((c) => `${c.a}-${c.b}:${c.durationMs / MIN}`);
    expect(summary(contactsOf(stays))).toEqual(['a-b:50', 'b-c:50']);
    expect(summary(contactsOf(stays, { ...RULE, minDurationMin: 0 }))).toEqual(['a-b:50', 'b-c:50', 'b-d:10']);
  });

  it('follows the stays it is given: a phone sent home instead of the venue loses the venue contact', () => {
    const planned = { a: [stay(shop('s'), 0, 60, 0)], b: [stay(shop('s'), 0, 60, 1)] };
    const realised = { a: planned.a, b: [stay(home('hb'), 0, 60, 1)] };
    expect(contactsOf(planned)).toHaveLength(1);
    expect(contactsOf(realised)).toEqual([]);
  });
});

describe('expected exposures', () => {
  const positive: Positive = { phoneId: 'p', diagnosedAt: T0 + 2 * DAY_MS + 600 * MIN, infectiousFrom: T0 };

  it('counts contacts from infectiousFrom up to the diagnosis, on both sides of a pair of positives', () => {
    const contacts = contactsOf({
      p: [stay(home('h'), -600, 3 * 24 * 60, 0)],
      x: [stay(home('h'), -120, -60, 1), stay(home('h'), 600, 660, 1)],
      q: [stay(home('h'), 24 * 60, 24 * 60 + 30, 1.5)],
    });
    const q: Positive = { phoneId: 'q', diagnosedAt: T0 + 3 * DAY_MS, infectiousFrom: T0 + DAY_MS };
    const exposures = expectedExposures(contacts, [positive, q], RULE);
    // x before infectiousFrom (day −1) does not count; x on day 0 does.
    expect(exposures.get('x')).toEqual([{ positive: 'p', day: DAY0, durationMs: 60 * MIN, firstAt: T0 + 600 * MIN, lastAt: T0 + 660 * MIN }]);
    expect(exposures.get('q')?.map((e) => e.positive)).toEqual(['p']);
    expect(exposures.get('p')?.map((e) => e.positive)).toEqual(['q']);
  });

  it('requires the 15 min inside the infectious period on the diagnosis day', () => {
    const at = (fromMin: number, toMin: number) =>
      expectedExposures(contactsOf({ p: [stay(home('h'), 0, 4 * 24 * 60, 0)], x: [stay(home('h'), 2 * 24 * 60 + fromMin, 2 * 24 * 60 + toMin, 1)] }), [positive], RULE).get('x');
    // 20 min of contact, 10 before the diagnosis: a close contact, but not an exposure.
    expect(at(590, 610)).toBeUndefined();
    expect(at(580, 610)?.[0]?.durationMs).toBe(20 * MIN);
    expect(at(600, 700)).toBeUndefined();
  });
});
