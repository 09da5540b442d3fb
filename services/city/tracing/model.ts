/**
 * Data types of the contact-tracing city plan: phones, households, venues,
 * stays and positives. Plain data (no classes, no Maps), so plans compare
 * with deep equality and serialise as JSON.
 */
import type { Position } from '../../../hardware/sim/propagation.ts';

export const VENUE_KINDS = ['office', 'school', 'shop', 'restaurant'] as const;
export type VenueKind = (typeof VENUE_KINDS)[number];

/** Where a phone is. Ids are unique across homes and venues. */
export type PlaceRef =
  | { readonly kind: 'home'; readonly id: string }
  | { readonly kind: 'venue'; readonly id: string; readonly venueKind: VenueKind };

/**
 * A phone at one fixed position for [from, to) ms. A phone's stays are sorted
 * and gap-free; travel between places is instantaneous (nobody meets anybody
 * on the way).
 */
export interface Stay {
  readonly from: number;
  readonly to: number;
  readonly place: PlaceRef;
  readonly position: Position;
}

/** What a phone does on weekdays besides living at home. */
export type PhoneRole = 'office' | 'school' | 'none';

export interface Phone {
  /** `phone-0000`, zero-padded so that string order equals index order. */
  readonly id: string;
  readonly index: number;
  /** Index into `TracingCityPlan.households`. */
  readonly household: number;
  readonly role: PhoneRole;
  /** The office or school desk this phone always uses; null when role is 'none'. */
  readonly workplace: { readonly venueId: string; readonly seat: number } | null;
}

export interface Household {
  /** `house-0000`; also the home's place id and the radio room of its members. */
  readonly id: string;
  readonly index: number;
  /** Centre of the house. */
  readonly position: Position;
  /** Phone indices of the members. */
  readonly members: readonly number[];
  /** Each member's fixed spot at home (same order as `members`). */
  readonly spots: readonly Position[];
}

export interface Venue {
  /** `office-00`, `shop-03`, …; also the place id and the radio room inside. */
  readonly id: string;
  readonly kind: VenueKind;
  /** South-west corner of the floor. */
  readonly origin: Position;
  /** Floor size (x, y), metres. */
  readonly floorM: readonly [number, number];
  /** Fixed seats (desks, classroom seats, restaurant chairs); empty for shops (random spots). */
  readonly seats: readonly Position[];
  /** Seat indices grouped by pod / table. */
  readonly tables: readonly (readonly number[])[];
}

export interface Positive {
  readonly phoneId: string;
  readonly diagnosedAt: number;
  /** UTC midnight `infectiousDaysBefore` days before the diagnosis day: daily keys cover whole UTC days. */
  readonly infectiousFrom: number;
}

export interface TracingCityPlan {
  /** The run covers [t0, end) ms. */
  readonly t0: number;
  readonly end: number;
  readonly phones: readonly Phone[];
  readonly households: readonly Household[];
  readonly venues: readonly Venue[];
  /** Per phone index: sorted, gap-free stays covering [t0, end). */
  readonly stays: readonly (readonly Stay[])[];
  /** Sorted by diagnosis time. */
  readonly positives: readonly Positive[];
}

export const MINUTE_MS = 60_000;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;

/** UTC day number of a time (days since 1970-01-01). */
export function utcDay(ms: number): number {
  return Math.floor(ms / DAY_MS);
}

/** Key identifying a place across homes and venues. */
export function placeKey(place: PlaceRef): string {
  return `${place.kind}:${place.id}`;
}
