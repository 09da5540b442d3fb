/**
 * The weekly movement model: per UTC day, who goes where outside home.
 *
 *   - weekdays: office workers and pupils go to their fixed desk (attendance
 *     is drawn per day);
 *   - evenings: phones that want to go out are grouped into parties of
 *     friends (different households) and seated at a free restaurant table;
 *   - any time the shops are open: short visits at random spots;
 *   - weekends: no office or school, more shops and restaurants.
 *
 * Everything is drawn in a fixed order from one fork per day, so a plan is a
 * pure function of (config, seed). Times are rounded to whole seconds.
 */
import type { SeededRng } from '../../../protocol/crypto/drbg.ts';
import type { TracingCityConfig } from './config.ts';
import { randomSpot } from './layout.ts';
import { HOUR_MS, MINUTE_MS, type Phone, type Stay, type Venue } from './model.ts';

/** A stay away from home (stays at home fill the gaps later). */
export type Outing = Stay;

interface Booking {
  readonly from: number;
  readonly to: number;
}

function seconds(ms: number): number {
  return Math.round(ms / 1000) * 1000;
}

function uniform(rng: SeededRng, [lo, hi]: readonly [number, number]): number {
  return lo + rng.float() * (hi - lo);
}

function overlapsAny(list: readonly Booking[], from: number, to: number): boolean {
  return list.some((b) => from < b.to && b.from < to);
}

/** Whole draws plus a Bernoulli draw for the fractional part (rate 1.4 → 1 or 2). */
function countFor(rng: SeededRng, rate: number): number {
  const whole = Math.floor(rate);
  return whole + (rng.float() < rate - whole ? 1 : 0);
}

/** Fisher–Yates in place. */
export function shuffle<T>(rng: SeededRng, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const tmp = items[i] as T;
    items[i] = items[j] as T;
    items[j] = tmp;
  }
  return items;
}

function isWeekend(dayStartMs: number): boolean {
  const weekday = new Date(dayStartMs).getUTCDay();
  return weekday === 0 || weekday === 6;
}

export interface ScheduleInput {
  readonly config: TracingCityConfig;
  readonly phones: readonly Phone[];
  readonly venues: readonly Venue[];
  /** UTC midnight of the first planned day. */
  readonly firstDayStartMs: number;
  readonly dayCount: number;
}

/** Per phone index: outings (unsorted, disjoint). */
export function planOutings(root: SeededRng, input: ScheduleInput): Outing[][] {
  const outings: Outing[][] = input.phones.map(() => []);
  const byId = new Map(input.venues.map((v) => [v.id, v]));
  for (let d = 0; d < input.dayCount; d++) {
    const rng = root.fork(`day:${d}`);
    const dayStart = input.firstDayStartMs + d * 24 * HOUR_MS;
    const weekend = isWeekend(dayStart);
    if (!weekend) planWorkplaces(rng, input, byId, dayStart, outings);
    planRestaurants(rng, input, dayStart, weekend, outings);
    planShops(rng, input, dayStart, weekend, outings);
  }
  return outings;
}

function planWorkplaces(rng: SeededRng, input: ScheduleInput, byId: ReadonlyMap<string, Venue>, dayStart: number, outings: Outing[][]): void {
  for (const phone of input.phones) {
    if (phone.workplace === null || phone.role === 'none') continue;
    const c = input.config[phone.role];
    const attends = rng.float() < c.attendance;
    const arrive = seconds(dayStart + uniform(rng, c.arriveHour) * HOUR_MS);
    const leave = seconds(arrive + uniform(rng, c.stayHours) * HOUR_MS);
    const venue = byId.get(phone.workplace.venueId);
    const seat = venue?.seats[phone.workplace.seat];
    if (!attends || venue === undefined || seat === undefined || leave <= arrive) continue;
    outings[phone.index]?.push({ from: arrive, to: leave, place: { kind: 'venue', id: venue.id, venueKind: venue.kind }, position: seat });
  }
}

function planRestaurants(rng: SeededRng, input: ScheduleInput, dayStart: number, weekend: boolean, outings: Outing[][]): void {
  const c = input.config.restaurant;
  const restaurants = input.venues.filter((v) => v.kind === 'restaurant');
  if (restaurants.length === 0) return;
  const rate = weekend ? c.outingsPerDay.weekend : c.outingsPerDay.weekday;
  const willing = shuffle(
    rng,
    input.phones.filter(() => rng.float() < rate).map((p) => p.index),
  );
  const bookings = new Map<string, Booking[]>();
  let next = 0;
  while (next < willing.length) {
    const size = c.partySize[0] + rng.int(c.partySize[1] - c.partySize[0] + 1);
    const candidates = willing.slice(next, next + size);
    next += size;
    const from = seconds(dayStart + uniform(rng, c.startHour) * HOUR_MS);
    const to = seconds(from + uniform(rng, c.minutes) * MINUTE_MS);
    const first = rng.int(restaurants.length);
    // Phones busy at that time (late at work) drop out; a party smaller than the minimum stays home.
    const party = candidates.filter((i) => !overlapsAny(outings[i] ?? [], from, to));
    if (party.length < Math.max(1, c.partySize[0]) || to <= from) continue;
    const table = freeTable(restaurants, first, party.length, from, to, bookings);
    if (table === undefined) continue;
    bookings.get(table.key)?.push({ from, to });
    party.forEach((phoneIndex, k) => {
      const position = table.venue.seats[table.seats[k] ?? -1];
      if (position === undefined) return;
      outings[phoneIndex]?.push({ from, to, place: { kind: 'venue', id: table.venue.id, venueKind: 'restaurant' }, position });
    });
  }
}

/** The smallest free table that fits the party, trying restaurants from `first` on. */
function freeTable(
  restaurants: readonly Venue[],
  first: number,
  partySize: number,
  from: number,
  to: number,
  bookings: Map<string, Booking[]>,
): { venue: Venue; seats: readonly number[]; key: string } | undefined {
  for (let k = 0; k < restaurants.length; k++) {
    const venue = restaurants[(first + k) % restaurants.length];
    if (venue === undefined) continue;
    let best: { venue: Venue; seats: readonly number[]; key: string } | undefined;
    venue.tables.forEach((seats, t) => {
      const key = `${venue.id}/${t}`;
      if (!bookings.has(key)) bookings.set(key, []);
      if (seats.length < partySize || overlapsAny(bookings.get(key) ?? [], from, to)) return;
      if (best === undefined || seats.length < best.seats.length) best = { venue, seats, key };
    });
    if (best !== undefined) return best;
  }
  return undefined;
}

function planShops(rng: SeededRng, input: ScheduleInput, dayStart: number, weekend: boolean, outings: Outing[][]): void {
  const c = input.config.shop;
  const shops = input.venues.filter((v) => v.kind === 'shop');
  if (shops.length === 0) return;
  const rate = weekend ? c.visitsPerDay.weekend : c.visitsPerDay.weekday;
  for (const phone of input.phones) {
    const visits = countFor(rng, rate);
    for (let v = 0; v < visits; v++) {
      // A few tries to find a time the phone is free; otherwise the visit is skipped.
      for (let attempt = 0; attempt < 3; attempt++) {
        const durationMs = uniform(rng, c.minutes) * MINUTE_MS;
        const latestStartH = Math.max(c.openHours[0], c.openHours[1] - durationMs / HOUR_MS);
        const from = seconds(dayStart + uniform(rng, [c.openHours[0], latestStartH]) * HOUR_MS);
        const to = seconds(from + durationMs);
        const shop = shops[rng.int(shops.length)];
        if (shop === undefined || to <= from) break;
        const position = randomSpot(rng, shop);
        const mine = outings[phone.index] ?? [];
        if (overlapsAny(mine, from, to)) continue;
        mine.push({ from, to, place: { kind: 'venue', id: shop.id, venueKind: 'shop' }, position });
        break;
      }
    }
  }
}
