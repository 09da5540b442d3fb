/**
 * Where things are: houses on a street grid with members' spots inside,
 * and a venue district south of the houses with desks, seats and tables.
 * Seats are laid out so that some co-present visitors are within the
 * contact distance and others are not (see the pod comments in config.ts).
 */
import type { SeededRng } from '../../../protocol/crypto/drbg.ts';
import type { Position } from '../../../hardware/sim/propagation.ts';
import type { TracingCityConfig } from './config.ts';
import type { Household, Venue, VenueKind } from './model.ts';

/**
 * Distance between venue origins. Far beyond any floor and beyond the
 * simulated radio range through a wall, so visitors of different venues do
 * not hear each other.
 */
const VENUE_SPACING_M = 100;

/** Household sizes drawn from the weights until every phone has a home (the last one takes the remainder). */
export function householdSizes(rng: SeededRng, phones: number, weights: readonly number[]): number[] {
  const total = weights.reduce((s, w) => s + w, 0);
  const sizes: number[] = [];
  let placed = 0;
  while (placed < phones) {
    let u = rng.float() * total;
    let size = weights.length;
    for (let i = 0; i < weights.length; i++) {
      u -= weights[i] ?? 0;
      if (u < 0) {
        size = i + 1;
        break;
      }
    }
    size = Math.min(size, phones - placed);
    sizes.push(size);
    placed += size;
  }
  return sizes;
}

export function householdId(index: number): string {
  return `house-${String(index).padStart(4, '0')}`;
}

/** Houses on a square grid; members at random spots of the living area, at least minSpotDistanceM apart. */
export function layOutHouseholds(rng: SeededRng, sizes: readonly number[], config: TracingCityConfig['households']): Household[] {
  const columns = Math.ceil(Math.sqrt(sizes.length));
  const households: Household[] = [];
  let firstMember = 0;
  sizes.forEach((size, index) => {
    const id = householdId(index);
    const centre = { x: (index % columns) * config.spacingM, y: Math.floor(index / columns) * config.spacingM, room: id };
    const spots: Position[] = [];
    for (let m = 0; m < size; m++) spots.push(freeSpot(rng, centre, config.livingAreaM, config.minSpotDistanceM, spots));
    households.push({ id, index, position: centre, members: Array.from({ length: size }, (_, m) => firstMember + m), spots });
    firstMember += size;
  });
  return households;
}

/** A uniform spot in the square around `centre`, away from `taken`; gives up on the distance after 200 tries (crowded houses). */
function freeSpot(rng: SeededRng, centre: Position & { room: string }, sideM: number, minDistanceM: number, taken: readonly Position[]): Position {
  let spot = { x: 0, y: 0, room: centre.room };
  for (let attempt = 0; attempt < 200; attempt++) {
    spot = { x: round2(centre.x + (rng.float() - 0.5) * sideM), y: round2(centre.y + (rng.float() - 0.5) * sideM), room: centre.room };
    if (taken.every((t) => Math.hypot(t.x - spot.x, t.y - spot.y) >= minDistanceM)) break;
  }
  return spot;
}

/** Centimetre precision keeps plans readable; distances stay exact enough for a 2 m rule. */
function round2(metres: number): number {
  return Math.round(metres * 100) / 100;
}

/** Pods of seats on a circle, pods on a square grid. */
interface PodGeometry {
  readonly seatsPerPod: readonly number[];
  readonly podRadiusM: number;
  readonly podSpacingM: number;
}

function podVenue(id: string, kind: VenueKind, origin: Position, geometry: PodGeometry): Venue {
  const pods = geometry.seatsPerPod.length;
  const columns = Math.ceil(Math.sqrt(pods));
  const rows = Math.ceil(pods / columns);
  // Margin so the outermost seats stay on the floor.
  const margin = geometry.podRadiusM + 1;
  const seats: Position[] = [];
  const tables: number[][] = [];
  geometry.seatsPerPod.forEach((count, pod) => {
    const cx = origin.x + margin + (pod % columns) * geometry.podSpacingM;
    const cy = origin.y + margin + Math.floor(pod / columns) * geometry.podSpacingM;
    const table: number[] = [];
    for (let s = 0; s < count; s++) {
      // Seat 0 faces east, the rest follow counter-clockwise.
      const angle = (2 * Math.PI * s) / count;
      table.push(seats.length);
      seats.push({ x: round2(cx + geometry.podRadiusM * Math.cos(angle)), y: round2(cy + geometry.podRadiusM * Math.sin(angle)), room: id });
    }
    tables.push(table);
  });
  const floorM: [number, number] = [2 * margin + (columns - 1) * geometry.podSpacingM, 2 * margin + (rows - 1) * geometry.podSpacingM];
  return { id, kind, origin, floorM, seats, tables };
}

export function venueId(kind: VenueKind, index: number): string {
  return `${kind}-${String(index).padStart(2, '0')}`;
}

/** How many venues of each kind the city gets. */
export interface VenueCounts {
  readonly office: number;
  readonly school: number;
  readonly shop: number;
  readonly restaurant: number;
}

/** Venues in a district south of the houses, one grid cell each, in kind order. */
export function layOutVenues(config: TracingCityConfig, counts: VenueCounts): Venue[] {
  const kinds: VenueKind[] = [];
  for (const kind of ['office', 'school', 'shop', 'restaurant'] as const) for (let i = 0; i < counts[kind]; i++) kinds.push(kind);
  const columns = Math.max(1, Math.ceil(Math.sqrt(kinds.length)));
  const perKind: Record<VenueKind, number> = { office: 0, school: 0, shop: 0, restaurant: 0 };
  return kinds.map((kind, n) => {
    const id = venueId(kind, perKind[kind]++);
    const origin = { x: (n % columns) * VENUE_SPACING_M, y: -VENUE_SPACING_M * (1 + Math.floor(n / columns)), room: id };
    switch (kind) {
      case 'office':
      case 'school': {
        const c = config[kind];
        return podVenue(id, kind, origin, { seatsPerPod: Array<number>(c.podsPerVenue).fill(c.seatsPerPod), podRadiusM: c.podRadiusM, podSpacingM: c.podSpacingM });
      }
      case 'restaurant': {
        const c = config.restaurant;
        const sizes = Array.from({ length: c.tablesPerVenue }, (_, t) => c.tableSizes[t % c.tableSizes.length] ?? 2);
        return podVenue(id, kind, origin, { seatsPerPod: sizes, podRadiusM: c.seatRadiusM, podSpacingM: c.tableSpacingM });
      }
      case 'shop':
        return { id, kind, origin, floorM: config.shop.floorM, seats: [], tables: [] };
    }
  });
}

/** Seats per office / school venue. */
export function seatsPerVenue(c: TracingCityConfig['office']): number {
  return c.seatsPerPod * c.podsPerVenue;
}

/** A uniform random spot on a shop floor. */
export function randomSpot(rng: SeededRng, venue: Venue): Position {
  return { x: round2(venue.origin.x + rng.float() * venue.floorM[0]), y: round2(venue.origin.y + rng.float() * venue.floorM[1]), room: venue.id };
}
