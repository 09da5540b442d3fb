/**
 * Configuration of the contact-tracing city (issue 5): who lives with whom,
 * which venues exist and how people move between them, what counts as a
 * close contact, and who tests positive when. Every field has a default, so
 * `tracingCityConfigSchema.parse({})` is the default 500-phone, 7-day city.
 * Invalid configs report every problem at once (zod collects issues).
 */
import { z } from 'zod';

const fraction = z.number().min(0).max(1);
const hourOfDay = z.number().min(0).max(24);
const positive = z.number().positive();

/** [lo, hi] with lo ≤ hi, reported on the field itself. */
function range(bound: z.ZodNumber, fallback: readonly [number, number]) {
  return z
    .tuple([bound, bound])
    .refine(([lo, hi]) => lo <= hi, { message: 'min must not exceed max' })
    .default([fallback[0], fallback[1]]);
}

/** Probability-like rates per day, separately for weekdays and weekends. */
const perDay = (weekday: number, weekend: number) =>
  z
    .object({ weekday: z.number().min(0).max(10).default(weekday), weekend: z.number().min(0).max(10).default(weekend) })
    .prefault({});

/**
 * Seating in "pods": `seatsPerPod` seats on a circle of `podRadiusM` around
 * each pod centre, pods on a square grid `podSpacingM` apart. This is what
 * makes some co-present visitors close (same pod) and others not.
 */
const podLayout = (seatsPerPod: number, podRadiusM: number, podsPerVenue: number, podSpacingM: number) => ({
  seatsPerPod: z.number().int().min(1).max(12).default(seatsPerPod),
  podRadiusM: z.number().min(0).max(10).default(podRadiusM),
  podsPerVenue: z.number().int().min(1).max(100).default(podsPerVenue),
  podSpacingM: z.number().min(0.5).max(50).default(podSpacingM),
});

/** Workplaces with fixed seats: office (desks) and school (classroom seats). */
const workplace = (o: {
  share: number;
  attendance: number;
  arrive: [number, number];
  stayHours: [number, number];
  pods: [number, number, number, number];
}) =>
  z
    .object({
      /** Fraction of phones that belong to this kind of workplace. */
      share: fraction.default(o.share),
      /** Chance per weekday that such a phone actually goes (sick days, home office). */
      attendance: fraction.default(o.attendance),
      /** Arrival time of day, hours (UTC), uniform in the range. */
      arriveHour: range(hourOfDay, o.arrive),
      stayHours: range(z.number().min(0).max(16), o.stayHours),
      ...podLayout(...o.pods),
    })
    .prefault({});

export const tracingCityConfigSchema = z
  .object({
    seed: z.number().int().min(0).max(2 ** 32 - 1).default(1),
    phones: z.number().int().min(2).max(20_000).default(500),
    days: z.number().int().min(1).max(60).default(7),
    households: z
      .object({
        /** Relative weights of household sizes 1, 2, 3, … (default mean ≈ 2.4). */
        sizeWeights: z
          .array(z.number().min(0))
          .min(1)
          .max(12)
          .refine((w) => w.some((x) => x > 0), { message: 'at least one weight must be positive' })
          .default([0.28, 0.34, 0.16, 0.15, 0.07]),
        /** Distance between neighbouring houses; far enough that radios in different houses rarely hear each other. */
        spacingM: z.number().min(5).max(1000).default(40),
        /** Side of the square living area where members have their spots. */
        livingAreaM: z.number().min(1).max(30).default(3.5),
        /** Members' spots are at least this far apart. */
        minSpotDistanceM: z.number().min(0).max(10).default(1),
      })
      .prefault({}),
    /** Desks in pods of four on a 1.5 m square: two desk neighbours within 2 m, the diagonal (2.1 m) not. */
    office: workplace({ share: 0.45, attendance: 0.9, arrive: [7.5, 9.5], stayHours: [7.5, 9], pods: [4, 1.06, 4, 6] }),
    /** Double desks (partners 0.8 m apart), desks 2.5 m apart: a partner and sometimes a neighbour across the aisle. */
    school: workplace({ share: 0.2, attendance: 0.95, arrive: [7.75, 8.25], stayHours: [6, 7], pods: [2, 0.4, 12, 2.5] }),
    shop: z
      .object({
        per100Phones: z.number().min(0).max(100).default(0.6),
        visitsPerDay: perDay(0.4, 0.9),
        minutes: range(positive, [5, 30]),
        openHours: range(hourOfDay, [8, 20]),
        /** Shop floor (x, y), metres; visitors stand at uniform random spots. */
        floorM: z.tuple([positive, positive]).default([20, 15]),
      })
      .prefault({}),
    /** Restaurants and bars: evening parties (friends from different households) at tables. */
    restaurant: z
      .object({
        per100Phones: z.number().min(0).max(100).default(1),
        /** Chance per day that a phone wants to go out. */
        outingsPerDay: perDay(0.03, 0.08),
        partySize: range(z.number().int().min(1).max(12), [2, 6]),
        /** Seats per table, cycled over the tables of a venue. */
        tableSizes: z.array(z.number().int().min(1).max(12)).min(1).default([2, 4, 4, 6]),
        tablesPerVenue: z.number().int().min(1).max(100).default(10),
        /** Seats 0.6 m from the table centre, tables 3 m apart: the nearest seats of neighbouring tables are 1.8 m apart. */
        seatRadiusM: z.number().min(0).max(5).default(0.6),
        tableSpacingM: z.number().min(0.5).max(50).default(3),
        startHour: range(hourOfDay, [18.75, 21]),
        minutes: range(positive, [60, 150]),
      })
      .prefault({}),
    /** Cumulative time within maxDistanceM per pair per window (UTC day) ≥ minDurationMin = a close contact. */
    contact: z
      .object({
        maxDistanceM: positive.max(100).default(2),
        minDurationMin: z.number().min(0).max(24 * 60).default(15),
        /** Windows are aligned to the Unix epoch, so 24 h windows are UTC days. */
        windowHours: positive.max(24 * 14).default(24),
      })
      .prefault({}),
    positives: z
      .object({
        fraction: fraction.default(0.05),
        /** Diagnoses start this many days into the run … */
        firstDay: z.number().min(0).max(60).default(1),
        /** … and end this many hours before its end, so the last ones can still be published and matched. */
        lastDiagnosisBeforeEndH: z.number().min(0).max(60 * 24).default(24),
        /** Infectious (and reported) from UTC midnight this many days before the diagnosis day. */
        infectiousDaysBefore: z.number().int().min(0).max(30).default(2),
      })
      .prefault({}),
  })
  .refine((c) => c.office.share + c.school.share <= 1 + 1e-9, { message: 'office.share + school.share must not exceed 1', path: ['office', 'share'] })
  .refine((c) => c.positives.firstDay * 24 < c.days * 24 - c.positives.lastDiagnosisBeforeEndH, {
    message: 'no time left for diagnoses: firstDay must come before days − lastDiagnosisBeforeEndH',
    path: ['positives', 'firstDay'],
  });

export type TracingCityConfig = z.output<typeof tracingCityConfigSchema>;
export type ContactRule = TracingCityConfig['contact'];
