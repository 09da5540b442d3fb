/**
 * The contact-tracing city's plan (issue 5), made up front from the seed:
 * households and venues with positions, every phone's stays (where it is,
 * at which fixed position, from when to when) over the whole run, and who is
 * diagnosed positive when. The run driver replays the stays as radio
 * positions; ground-truth.ts derives the close contacts from them and
 * score.ts compares the app's notifications with the expected ones.
 *
 * Pure in (config, t0, seed): every random choice comes from a labelled fork
 * of one SeededRng, so changing e.g. the shop model never moves who lives
 * where.
 */
import { SeededRng } from '../../../protocol/crypto/drbg.ts';
import type { Position } from '../../../hardware/sim/propagation.ts';
import type { TracingCityConfig } from './config.ts';
import { householdSizes, layOutHouseholds, layOutVenues, seatsPerVenue, venueId } from './layout.ts';
import { DAY_MS, HOUR_MS, type Household, type Phone, type PhoneRole, type PlaceRef, type Positive, type Stay, type TracingCityPlan } from './model.ts';
import { planOutings, shuffle, type Outing } from './schedule.ts';

export type { Household, Phone, PlaceRef, Positive, Stay, TracingCityPlan, Venue } from './model.ts';

export function phoneIdOf(index: number, phoneCount: number): string {
  const width = Math.max(4, String(phoneCount - 1).length);
  return `phone-${String(index).padStart(width, '0')}`;
}

export function planTracingCity(config: TracingCityConfig, t0Ms: number, seed: Uint8Array): TracingCityPlan {
  const root = new SeededRng(seed).fork('tracing-plan');
  const end = t0Ms + config.days * DAY_MS;
  const households = layOutHouseholds(root.fork('households'), householdSizes(root.fork('household-sizes'), config.phones, config.households.sizeWeights), config.households);
  const roles = drawRoles(root.fork('roles'), config);
  const counts = {
    office: Math.ceil(roles.filter((r) => r === 'office').length / seatsPerVenue(config.office)),
    school: Math.ceil(roles.filter((r) => r === 'school').length / seatsPerVenue(config.school)),
    shop: venuesFor(config.shop.per100Phones, config.phones),
    restaurant: venuesFor(config.restaurant.per100Phones, config.phones),
  };
  const venues = layOutVenues(config, counts);
  const phones = assignPhones(root.fork('desks'), config, households, roles);
  // Plan whole UTC days from the midnight at or before t0, then clip to [t0, end).
  const firstDayStartMs = Math.floor(t0Ms / DAY_MS) * DAY_MS;
  const dayCount = Math.ceil((end - firstDayStartMs) / DAY_MS);
  const outings = planOutings(root.fork('outings'), { config, phones, venues, firstDayStartMs, dayCount });
  const stays = phones.map((phone) => {
    const household = households[phone.household];
    const member = household?.members.indexOf(phone.index) ?? -1;
    const spot = household?.spots[member];
    if (household === undefined || spot === undefined) throw new Error(`phone ${phone.id} has no home spot`);
    return fillWithHome(outings[phone.index] ?? [], { kind: 'home', id: household.id }, spot, t0Ms, end);
  });
  const positives = drawPositives(root.fork('positives'), config, phones, t0Ms, end);
  return { t0: t0Ms, end, phones, households, venues, stays, positives };
}

/** At least one venue of a kind that exists at all, so small cities still have a shop and a restaurant. */
function venuesFor(per100Phones: number, phones: number): number {
  return per100Phones <= 0 ? 0 : Math.max(1, Math.round((per100Phones * phones) / 100));
}

function drawRoles(rng: SeededRng, config: TracingCityConfig): PhoneRole[] {
  return Array.from({ length: config.phones }, (): PhoneRole => {
    const u = rng.float();
    if (u < config.office.share) return 'office';
    return u < config.office.share + config.school.share ? 'school' : 'none';
  });
}

/**
 * Desks are handed out in a shuffled order: in phone order, members of one
 * household would sit next to each other and office contacts would mostly
 * repeat household contacts.
 */
function assignPhones(rng: SeededRng, config: TracingCityConfig, households: readonly Household[], roles: readonly PhoneRole[]): Phone[] {
  const householdOf: number[] = [];
  for (const h of households) for (const m of h.members) householdOf[m] = h.index;
  const desks = new Map<number, { venueId: string; seat: number }>();
  for (const role of ['office', 'school'] as const) {
    const holders = shuffle(
      rng,
      roles.flatMap((r, i) => (r === role ? [i] : [])),
    );
    const capacity = seatsPerVenue(config[role]);
    holders.forEach((phoneIndex, k) => desks.set(phoneIndex, { venueId: venueId(role, Math.floor(k / capacity)), seat: k % capacity }));
  }
  return roles.map((role, index) => ({
    id: phoneIdOf(index, config.phones),
    index,
    household: householdOf[index] ?? 0,
    role,
    workplace: desks.get(index) ?? null,
  }));
}

/** Sort the outings, clip them to [t0, end) and fill every gap with a stay at home. */
function fillWithHome(outings: readonly Outing[], home: PlaceRef, spot: Position, t0: number, end: number): Stay[] {
  const stays: Stay[] = [];
  let cursor = t0;
  const sorted = [...outings].sort((a, b) => a.from - b.from);
  for (const outing of sorted) {
    const from = Math.max(outing.from, t0);
    const to = Math.min(outing.to, end);
    if (to <= from) continue;
    if (from > cursor) stays.push({ from: cursor, to: from, place: home, position: spot });
    stays.push({ ...outing, from, to });
    cursor = to;
  }
  if (cursor < end) stays.push({ from: cursor, to: end, place: home, position: spot });
  return stays;
}

/** round(fraction × phones) distinct phones, diagnosed uniformly over [t0 + firstDay, end − lastDiagnosisBeforeEndH). */
function drawPositives(rng: SeededRng, config: TracingCityConfig, phones: readonly Phone[], t0: number, end: number): Positive[] {
  const p = config.positives;
  const count = Math.round(p.fraction * phones.length);
  const chosen = shuffle(
    rng,
    phones.map((ph) => ph.id),
  ).slice(0, count);
  const earliest = t0 + p.firstDay * DAY_MS;
  const latest = end - p.lastDiagnosisBeforeEndH * HOUR_MS;
  return chosen
    .map((phoneId) => {
      const diagnosedAt = Math.round((earliest + rng.float() * (latest - earliest)) / 1000) * 1000;
      const infectiousFrom = (Math.floor(diagnosedAt / DAY_MS) - p.infectiousDaysBefore) * DAY_MS;
      return { phoneId, diagnosedAt, infectiousFrom };
    })
    .sort((a, b) => a.diagnosedAt - b.diagnosedAt || (a.phoneId < b.phoneId ? -1 : 1));
}

/** A phone moving to a new stay: the driver repositions its radio at `at`. */
export interface Move {
  readonly at: number;
  readonly phoneIndex: number;
  readonly position: Position;
  readonly place: PlaceRef;
}

/** Every stay start (including the first stays at t0), sorted by time, then phone index. */
export function moves(plan: TracingCityPlan): Move[] {
  const out: Move[] = [];
  plan.stays.forEach((stays, phoneIndex) => {
    for (const s of stays) out.push({ at: s.from, phoneIndex, position: s.position, place: s.place });
  });
  return out.sort((a, b) => a.at - b.at || a.phoneIndex - b.phoneIndex);
}

/** The stay of a phone that contains t (binary search); undefined outside [t0, end). */
export function placeAt(plan: TracingCityPlan, phoneIndex: number, t: number): Stay | undefined {
  const stays = plan.stays[phoneIndex] ?? [];
  let lo = 0;
  let hi = stays.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const s = stays[mid];
    if (s === undefined) return undefined;
    if (t < s.from) hi = mid - 1;
    else if (t >= s.to) lo = mid + 1;
    else return s;
  }
  return undefined;
}

/** Stays keyed by phone id, the input of closeContacts. */
export function staysByPhoneId(plan: TracingCityPlan): Map<string, readonly Stay[]> {
  return new Map(plan.phones.map((p) => [p.id, plan.stays[p.index] ?? []]));
}
