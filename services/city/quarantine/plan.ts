/**
 * The quarantine city's ground truth, planned up front from the seed: who
 * is compliant, who violates (leaves home with the phone for random spans),
 * whose phone is flaky (network, bluetooth or power off for a while), whose
 * beacon loses power, and (issue 3 "Adversaries", off by default) which
 * violations use an attack and which homes get flooded. The run replays this
 * plan as events; the report scores the police backend's alerts against it.
 * Pure in (config, seed). Attack draws come from their own fork, so turning
 * attacks on never changes who violates when.
 */
import { z } from 'zod';
import { SeededRng } from '../../../protocol/crypto/drbg.ts';

/** Adversaries (actors/quarantine/adversary.ts). */
export const ATTACK_KINDS = ['replay', 'forge', 'flood', 'relay', 'phone-at-home'] as const;
export type AttackKind = (typeof ATTACK_KINDS)[number];
/** Attacks a violator uses during one absence (the flood targets a phone at home instead). */
export type AbsenceAttack = Exclude<AttackKind, 'flood'>;
export const ABSENCE_ATTACKS: readonly AbsenceAttack[] = ['replay', 'forge', 'relay', 'phone-at-home'];

const fraction = z.number().min(0).max(1);
export const attacksSchema = z
  .object({
    /** Fraction of violation absences using each attack (drawn per absence; the four sum to ≤ 1). */
    replay: fraction.default(0),
    forge: fraction.default(0),
    relay: fraction.default(0),
    'phone-at-home': fraction.default(0),
    /** Fraction of households whose phone is flooded once while at home. */
    flood: fraction.default(0),
    floodMinutes: z.tuple([z.number().positive(), z.number().positive()]).default([20, 40]),
    /** Flooding radios (distinct source addresses) per flood. */
    floodSources: z.number().int().min(1).max(64).default(4),
    floodIntervalMs: z.number().int().min(20).max(10_240).default(20),
    /** The replayer captures tokens at home during [start − lead − 10 min, start − lead). */
    replayLeadMinutes: z.number().min(0).max(24 * 60).default(30),
    /** Relay: time from capture at home to re-advertising next to the away phone. */
    relayDelayMs: z.number().int().min(0).max(600_000).default(2000),
  })
  .refine((a) => ABSENCE_ATTACKS.reduce((sum, k) => sum + a[k], 0) <= 1 + 1e-9, { message: 'replay + forge + relay + phone-at-home must not exceed 1', path: ['replay'] })
  .refine((a) => a.floodMinutes[0] <= a.floodMinutes[1], { message: 'min must not exceed max', path: ['floodMinutes'] });
export type AttacksConfig = z.output<typeof attacksSchema>;

/** Attacks config for a list of kinds: absence attacks share all violations evenly; floods hit a quarter of homes. */
export function attacksFor(kinds: readonly AttackKind[]): Partial<Record<AttackKind, number>> {
  const absence = ABSENCE_ATTACKS.filter((k) => kinds.includes(k));
  const out: Partial<Record<AttackKind, number>> = {};
  for (const k of absence) out[k] = 1 / absence.length;
  if (kinds.includes('flood')) out.flood = 0.25;
  return out;
}

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
    attacks: attacksSchema.prefault({}),
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
  /** Per absence (same index): the attack the violator uses, or null (absent: none). */
  readonly absenceAttacks?: readonly (AbsenceAttack | null)[];
  /** Spans during which a flood targets this household's phone at home (absent: none). */
  readonly floods?: readonly Interval[];
}

/** Whether any attack is switched on. */
export function attacksOn(a: AttacksConfig): boolean {
  return ATTACK_KINDS.some((k) => a[k] > 0);
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
    const arng = root.fork(`household-attacks:${i}`);
    const absenceAttacks = absences.map((): AbsenceAttack | null => {
      let u = arng.float();
      for (const k of ABSENCE_ATTACKS) {
        if (u < config.attacks[k]) return k;
        u -= config.attacks[k];
      }
      return null;
    });
    const floods = arng.float() < config.attacks.flood ? homeSpan(arng, quietUntil, endMs, config.attacks.floodMinutes, [...absences, ...outages, ...beaconOutages]) : [];
    plans.push({ index: i, beaconId: beaconIdOf(i), phoneId: phoneIdOf(i), violator, flaky, absences, outages, beaconOutages, absenceAttacks, floods });
  }
  return plans;
}

/** One flood span while the phone is at home and working (none when ten draws all collide). */
function homeSpan(rng: SeededRng, startMs: number, endMs: number, minutes: readonly [number, number], busy: readonly Interval[]): Interval[] {
  for (let attempt = 0; attempt < 10; attempt++) {
    const s = oneSpan(rng, startMs, endMs, minutes);
    if (s.end > s.start && !busy.some((b) => s.start < b.end && b.start < s.end)) return [s];
  }
  return [];
}
