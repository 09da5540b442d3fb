/**
 * Exact ground truth of the tracing city: close contacts from the stays as
 * actually realised, and the exposures each phone should be notified about.
 *
 * Assumptions (stated because the protocols measure something else):
 *   - Distance is the Euclidean distance between the two stays' fixed
 *     positions. Two phones at **different places** are infinitely far apart,
 *     even when their coordinates are close: walls separate places, and the
 *     layout keeps places far apart anyway. So only phones present at the
 *     same place at the same time are ever compared (a sweep per place).
 *   - Time within maxDistanceM is summed per pair and per window (24 h
 *     windows aligned to the Unix epoch = UTC days); an interval crossing a
 *     window boundary is split. A pair-window is a close contact when the sum
 *     reaches minDurationMin (exactly 15 min counts, 14:59 does not).
 *   - Stays are taken as an argument, not from the plan, because the driver
 *     may realise a different day (e.g. a phone refused at a venue stays home).
 */
import { distanceM } from '../../../hardware/sim/propagation.ts';
import type { ContactRule } from './config.ts';
import { HOUR_MS, MINUTE_MS, placeKey, type PlaceRef, type Positive, type Stay } from './model.ts';

export interface Interval {
  readonly from: number;
  readonly to: number;
}

export interface CloseContact {
  /** Phone ids, a < b (string order). */
  readonly a: string;
  readonly b: string;
  /** Window number: floor(time / windowHours); with 24 h windows the UTC day number. */
  readonly day: number;
  /** Total time within maxDistanceM in this window. */
  readonly durationMs: number;
  readonly firstAt: number;
  readonly lastAt: number;
  /** Smallest distance seen while within range. */
  readonly minDistanceM: number;
  /** The place where the pair spent most of that time (for statistics by place kind). */
  readonly place: PlaceRef;
  /** The within-range periods, sorted and disjoint (exposures clip them to the infectious period). */
  readonly intervals: readonly Interval[];
}

interface PresenceAtPlace {
  readonly phoneId: string;
  readonly from: number;
  readonly to: number;
  readonly stay: Stay;
}

interface PairWindow {
  readonly a: string;
  readonly b: string;
  readonly day: number;
  readonly intervals: Interval[];
  readonly timeByPlace: Map<string, { place: PlaceRef; ms: number }>;
  minDistanceM: number;
}

/** Close contacts, sorted by (day, a, b). */
export function closeContacts(staysByPhone: ReadonlyMap<string, readonly Stay[]>, rule: ContactRule): CloseContact[] {
  const windowMs = rule.windowHours * HOUR_MS;
  const byPlace = new Map<string, PresenceAtPlace[]>();
  for (const [phoneId, stays] of staysByPhone) {
    for (const stay of stays) {
      if (stay.to <= stay.from) continue;
      const key = placeKey(stay.place);
      let list = byPlace.get(key);
      if (list === undefined) byPlace.set(key, (list = []));
      list.push({ phoneId, from: stay.from, to: stay.to, stay });
    }
  }
  const pairs = new Map<string, PairWindow>();
  for (const presences of byPlace.values()) sweepPlace(presences, rule.maxDistanceM, windowMs, pairs);
  const minMs = rule.minDurationMin * MINUTE_MS;
  const contacts: CloseContact[] = [];
  for (const pw of pairs.values()) {
    const intervals = mergeIntervals(pw.intervals);
    const durationMs = intervals.reduce((sum, i) => sum + (i.to - i.from), 0);
    if (durationMs < minMs || intervals.length === 0) continue;
    const main = [...pw.timeByPlace.values()].reduce((best, p) => (p.ms > best.ms ? p : best));
    contacts.push({
      a: pw.a,
      b: pw.b,
      day: pw.day,
      durationMs,
      firstAt: intervals[0]?.from ?? 0,
      lastAt: intervals[intervals.length - 1]?.to ?? 0,
      minDistanceM: pw.minDistanceM,
      place: main.place,
      intervals,
    });
  }
  return contacts.sort((x, y) => x.day - y.day || compare(x.a, y.a) || compare(x.b, y.b));
}

function compare(x: string, y: string): number {
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * Sweep the presences at one place in start order, comparing each new arrival
 * only with the phones still there. Cost: Σ over arrivals of the occupancy.
 */
function sweepPlace(presences: PresenceAtPlace[], maxDistanceM: number, windowMs: number, pairs: Map<string, PairWindow>): void {
  presences.sort((x, y) => x.from - y.from);
  let active: PresenceAtPlace[] = [];
  for (const arrival of presences) {
    active = active.filter((p) => p.to > arrival.from);
    for (const other of active) {
      if (other.phoneId === arrival.phoneId) continue;
      const d = distanceM(arrival.stay.position, other.stay.position);
      if (d > maxDistanceM) continue;
      const from = arrival.from;
      const to = Math.min(arrival.to, other.to);
      const [a, b] = arrival.phoneId < other.phoneId ? [arrival.phoneId, other.phoneId] : [other.phoneId, arrival.phoneId];
      addSplitByWindow(pairs, a, b, from, to, d, arrival.stay.place, windowMs);
    }
    active.push(arrival);
  }
}

function addSplitByWindow(pairs: Map<string, PairWindow>, a: string, b: string, from: number, to: number, d: number, place: PlaceRef, windowMs: number): void {
  let start = from;
  while (start < to) {
    const day = Math.floor(start / windowMs);
    const stop = Math.min(to, (day + 1) * windowMs);
    const key = `${a}|${b}|${day}`;
    let pw = pairs.get(key);
    if (pw === undefined) pairs.set(key, (pw = { a, b, day, intervals: [], timeByPlace: new Map(), minDistanceM: d }));
    pw.intervals.push({ from: start, to: stop });
    pw.minDistanceM = Math.min(pw.minDistanceM, d);
    const pk = placeKey(place);
    const spent = pw.timeByPlace.get(pk);
    if (spent === undefined) pw.timeByPlace.set(pk, { place, ms: stop - start });
    else spent.ms += stop - start;
    start = stop;
  }
}

/** Sorted, disjoint union (touching intervals join); guards against double counting if stays overlap. */
export function mergeIntervals(intervals: readonly Interval[]): Interval[] {
  const sorted = [...intervals].sort((x, y) => x.from - y.from);
  const out: { from: number; to: number }[] = [];
  for (const i of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && i.from <= last.to) last.to = Math.max(last.to, i.to);
    else out.push({ from: i.from, to: i.to });
  }
  return out;
}

/** What a phone should be notified about: a close contact with a positive during its infectious period. */
export interface Exposure {
  readonly positive: string;
  readonly day: number;
  /** Time within range inside [infectiousFrom, diagnosedAt] on that day. */
  readonly durationMs: number;
  readonly firstAt: number;
  readonly lastAt: number;
}

/**
 * Phone X should be notified about positive P when, in some window, X and P
 * spent at least minDurationMin within range **inside** P's infectious
 * period [infectiousFrom, diagnosedAt]: minutes before infectiousFrom or
 * after the diagnosis do not count towards the threshold. (infectiousFrom is
 * UTC midnight, so the cut only bites on the diagnosis day.) Positives can be
 * exposed to each other; each side is then expected to hear about the other.
 */
export function expectedExposures(contacts: readonly CloseContact[], positives: readonly Positive[], rule: ContactRule): Map<string, Exposure[]> {
  const positiveById = new Map(positives.map((p) => [p.phoneId, p]));
  const minMs = rule.minDurationMin * MINUTE_MS;
  const out = new Map<string, Exposure[]>();
  for (const contact of contacts) {
    for (const [exposed, source] of [
      [contact.a, contact.b],
      [contact.b, contact.a],
    ] as const) {
      const positive = positiveById.get(source);
      if (positive === undefined) continue;
      const inside = clip(contact.intervals, positive.infectiousFrom, positive.diagnosedAt);
      const durationMs = inside.reduce((sum, i) => sum + (i.to - i.from), 0);
      if (inside.length === 0 || durationMs < minMs) continue;
      let list = out.get(exposed);
      if (list === undefined) out.set(exposed, (list = []));
      list.push({ positive: source, day: contact.day, durationMs, firstAt: inside[0]?.from ?? 0, lastAt: inside[inside.length - 1]?.to ?? 0 });
    }
  }
  for (const list of out.values()) list.sort((x, y) => x.firstAt - y.firstAt || compare(x.positive, y.positive));
  return out;
}

function clip(intervals: readonly Interval[], from: number, to: number): Interval[] {
  return intervals.flatMap((i) => {
    const start = Math.max(i.from, from);
    const stop = Math.min(i.to, to);
    return stop > start ? [{ from: start, to: stop }] : [];
  });
}
