/**
 * The quarantine city's ground truth, planned up front from the seed: who
 * is compliant, who violates (leaves home with the phone for random spans),
 * whose phone is flaky (network, bluetooth or power off for a while), whose
 * beacon loses power. The run replays this plan as events; the report scores
 * the police backend's alerts against it. Pure in (config, seed).
 */
import { z } from 'zod';
import { SeededRng } from '../../../protocol/crypto/drbg.ts';

export const quarantineCitySchema = z
  .object({
    seed: z.number().int().min(0).max(2 ** 32 - 1).default(1),
    households: z.number().int().min(1).max(5000).default(200),
    days: z.number().positive().max(60).default(14),
    /** Fraction of patients who leave home with their phone on some days. */
    violatorFraction: z.number().min(0).max(1).default(0.2),
    /** Chance per day that a violator leaves, and how long (minutes). */
    violationsPerDay: z.number().min(0).max(10).default(0.5),
    violationMinutes: z.tuple([z.number().positive(), z.number().positive()]).default([20, 180]),
    /** Fraction of phones with flaky network / bluetooth / power. */
    flakyFraction: z.number().min(0).max(1).default(0.1),
    outagesPerDay: z.number().min(0).max(20).default(1),
    outageMinutes: z.tuple([z.number().positive(), z.number().positive()]).default([5, 60]),
    /** Fraction of beacons that lose power once during the run. */
    beaconPowerLossFraction: z.number().min(0).max(1).default(0.02),
    beaconOutageMinutes: z.tuple([z.number().positive(), z.number().positive()]).default([30, 240]),
  })
  .refine((c) => c.violationMinutes[0] <= c.violationMinutes[1], { message: 'min must not exceed max', path: ['violationMinutes'] })
  .refine((c) => c.outageMinutes[0] <= c.outageMinutes[1], { message: 'min must not exceed max', path: ['outageMinutes'] })
  .refine((c) => c.beaconOutageMinutes[0] <= c.beaconOutageMinutes[1], { message: 'min must not exceed max', path: ['beaconOutageMinutes'] });

export type QuarantineCityConfig = z.output<typeof quarantineCitySchema>;

/** [start, end) in simulated ms. */
export interface Interval {
  readonly start: number;
  readonly end: number;
}

export type OutageKind = 'network' | 'bluetooth' | 'power';

export interface HouseholdPlan {
  readonly index: number;
  readonly beaconId: string;
  readonly phoneId: string;
  readonly violator: boolean;
  readonly flaky: boolean;
  /** Spans away from home with the phone (sorted, disjoint). */
  readonly absences: readonly Interval[];
  /** Phone outages by kind (sorted, disjoint across kinds). */
  readonly outages: readonly (Interval & { readonly kind: OutageKind })[];
  /** Beacon without power. */
  readonly beaconOutages: readonly Interval[];
}

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

function span(rng: SeededRng, [lo, hi]: readonly [number, number]): number {
  return Math.round((lo + rng.float() * (hi - lo)) * MINUTE);
}

/** Poisson-ish: `perDay` spans a day, each at a uniform time, kept disjoint and inside the run. */
function spans(rng: SeededRng, startMs: number, endMs: number, perDay: number, minutes: readonly [number, number]): Interval[] {
  const out: Interval[] = [];
  const days = Math.ceil((endMs - startMs) / DAY);
  for (let d = 0; d < days; d++) {
    // Bernoulli per whole expected span, plus the fractional remainder.
    let n = Math.floor(perDay);
    if (rng.float() < perDay - n) n++;
    for (let i = 0; i < n; i++) {
      const start = startMs + d * DAY + Math.floor(rng.float() * DAY);
      const end = Math.min(endMs, start + span(rng, minutes));
      if (start >= endMs || end <= start) continue;
      if (out.some((o) => start < o.end && o.start < end)) continue;
      out.push({ start, end });
    }
  }
  return out.sort((a, b) => a.start - b.start);
}

/** Exactly one span starting uniformly in [startMs, endMs). */
function oneSpan(rng: SeededRng, startMs: number, endMs: number, minutes: readonly [number, number]): Interval {
  const start = startMs + Math.floor(rng.float() * Math.max(1, endMs - startMs));
  return { start, end: Math.min(endMs, start + span(rng, minutes)) };
}

export function beaconIdOf(index: number): string {
  return `qb${index}`;
}

export function phoneIdOf(index: number): string {
  return `qp${index}`;
}

/**
 * Plan every household. The first hour is left undisturbed so monitoring is
 * established before anybody misbehaves.
 */
export function planCity(config: QuarantineCityConfig, startMs: number, seedBytes: Uint8Array): HouseholdPlan[] {
  const root = new SeededRng(seedBytes).fork('quarantine-plan');
  const endMs = startMs + Math.round(config.days * DAY);
  const quietUntil = startMs + 60 * MINUTE;
  const plans: HouseholdPlan[] = [];
  for (let i = 0; i < config.households; i++) {
    const rng = root.fork(`household:${i}`);
    const violator = rng.float() < config.violatorFraction;
    const flaky = rng.float() < config.flakyFraction;
    const losesPower = rng.float() < config.beaconPowerLossFraction;
    const absences = violator ? spans(rng, quietUntil, endMs, config.violationsPerDay, config.violationMinutes) : [];
    const kinds: OutageKind[] = ['network', 'bluetooth', 'power'];
    const outages = flaky
      ? spans(rng, quietUntil, endMs, config.outagesPerDay, config.outageMinutes)
          .filter((o) => !absences.some((a) => o.start < a.end && a.start < o.end))
          .map((o) => ({ ...o, kind: kinds[rng.int(kinds.length)] ?? 'network' }))
      : [];
    const beaconOutages = losesPower ? [oneSpan(rng, quietUntil, endMs, config.beaconOutageMinutes)] : [];
    plans.push({ index: i, beaconId: beaconIdOf(i), phoneId: phoneIdOf(i), violator, flaky, absences, outages, beaconOutages });
  }
  return plans;
}
