/**
 * The foundation demo scenario: households on a street grid, one demo beacon
 * per household, phones at home or visiting neighbours, one collector.
 * Positions are a pure function of the actor id and the layout, so every
 * process of a distributed run places every actor identically.
 */
import { z } from 'zod';
import type { AnyStateMachine } from 'xstate';
import { demoBeaconMachine, type DemoBeaconInput } from '../../actors/demo/beacon.ts';
import { demoCollectorMachine } from '../../actors/demo/collector.ts';
import { demoPhoneMachine, type DemoPhoneInput } from '../../actors/demo/phone.ts';
import { sha256 } from '@noble/hashes/sha2.js';
import { drbgDraw, drbgFork, drbgInit, type DrbgState } from '../../protocol/crypto/drbg.ts';
import { demoHeardCodec } from '../../protocol/demo/messages.ts';
import { DEFAULT_FRAGMENT_BUDGET_BYTES } from '../../protocol/wire/framing.ts';
import { MessageRegistry } from '../../protocol/wire/messages.ts';
import { inboxTopic } from '../../protocol/wire/topics.ts';
import type { ActorSpec } from '../host/host.ts';
import type { Position } from '../../hardware/sim/propagation.ts';

export const demoScenarioSchema = z
  .object({
    seed: z.number().int().min(0).max(2 ** 32 - 1).default(1),
    households: z.number().int().min(1).max(10_000).default(12),
    phonesPerHousehold: z.number().int().min(0).max(20).default(2),
    /** Metres between neighbouring houses along the street grid. */
    houseSpacingM: z.number().positive().max(1000).default(15),
    /** Fraction of phones visiting a neighbouring house instead of being at home. */
    visitingFraction: z.number().min(0).max(1).default(0.25),
    durationS: z.number().int().positive().max(30 * 86_400).default(1800),
    beaconPeriodS: z.number().positive().max(86_400).default(60),
    advertisingIntervalMs: z.number().int().min(20).max(10_240).default(250),
    frameBytes: z.number().int().min(16).max(512).default(72),
    scanWindowS: z.number().positive().default(4),
    scanPeriodS: z.number().positive().default(30),
    reportPeriodS: z.number().positive().default(300),
    collectorId: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/).default('main'),
  })
  .refine((c) => c.scanWindowS <= c.scanPeriodS, { message: 'scanWindowS must not exceed scanPeriodS', path: ['scanWindowS'] });

export type DemoScenario = z.output<typeof demoScenarioSchema>;

/** Simulated start of every run: 2026-01-01T00:00:00Z (a fixed epoch keeps summaries reproducible). */
export const DEMO_T0_MS = Date.UTC(2026, 0, 1);

export function demoMessages(): MessageRegistry {
  return new MessageRegistry().register(demoHeardCodec);
}

export function seedBytes(seed: number): Uint8Array {
  return sha256(new TextEncoder().encode(`tracecity-seed:${seed}`));
}

/** Uniform float in [0,1) from a DRBG state (for layout only). */
function draw(state: DrbgState, n: number): number[] {
  const { bytes } = drbgDraw(state, n * 4);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: n }, (_, i) => view.getUint32(i * 4) / 2 ** 32);
}

export function beaconId(household: number): string {
  return `b${household}`;
}

export function phoneId(household: number, k: number): string {
  return `p${household}-${k}`;
}

function houseCentre(s: DemoScenario, household: number): { x: number; y: number } {
  const cols = Math.ceil(Math.sqrt(s.households));
  return { x: (household % cols) * s.houseSpacingM, y: Math.floor(household / cols) * s.houseSpacingM };
}

/** Where an actor stands: beacons at home, phones at home or at the neighbour's. Pure in (scenario, id). */
export function positionOf(s: DemoScenario, actorId: string): Position | undefined {
  const root = drbgInit(seedBytes(s.seed));
  const beacon = /^b(\d+)$/.exec(actorId);
  if (beacon !== null) {
    const h = Number(beacon[1]);
    const c = houseCentre(s, h);
    return { x: c.x, y: c.y, room: `house-${h}` };
  }
  const phone = /^p(\d+)-(\d+)$/.exec(actorId);
  if (phone === null) return undefined;
  const [visit, pick, dx, dy] = draw(drbgFork(root, `position:${actorId}`), 4) as [number, number, number, number];
  let h = Number(phone[1]);
  if (visit < s.visitingFraction && s.households > 1) h = (h + 1 + Math.floor(pick * (s.households - 1))) % s.households;
  const c = houseCentre(s, h);
  // Anywhere inside a 10 m × 10 m house.
  return { x: c.x + (dx - 0.5) * 10, y: c.y + (dy - 0.5) * 10, room: `house-${h}` };
}

export function beaconSpec(s: DemoScenario, household: number): ActorSpec {
  const id = beaconId(household);
  const input: DemoBeaconInput = {
    id,
    seed: drbgDraw(drbgFork(drbgInit(seedBytes(s.seed)), `actor:${id}`), 32).bytes,
    periodMs: s.beaconPeriodS * 1000,
    advertisingIntervalMs: s.advertisingIntervalMs,
    frameBytes: s.frameBytes,
    advertisementBudget: DEFAULT_FRAGMENT_BUDGET_BYTES,
  };
  return { role: 'beacon', id, machine: demoBeaconMachine as AnyStateMachine, input };
}

export function phoneSpec(s: DemoScenario, household: number, k: number): ActorSpec {
  const id = phoneId(household, k);
  const input: DemoPhoneInput = {
    id,
    collectorTopic: inboxTopic('collector', s.collectorId),
    scanWindowMs: s.scanWindowS * 1000,
    scanPeriodMs: s.scanPeriodS * 1000,
    reportPeriodMs: s.reportPeriodS * 1000,
    reassembly: { maxPendingFrames: 64, maxPendingBytes: 16 * 1024, expiryMs: 10_000, maxCompletedRemembered: 256 },
  };
  return { role: 'phone', id, machine: demoPhoneMachine as AnyStateMachine, input };
}

export function collectorSpec(s: DemoScenario): ActorSpec {
  return { role: 'collector', id: s.collectorId, machine: demoCollectorMachine as AnyStateMachine };
}

/** Every actor of the scenario: collector first so it is subscribed before phones report. */
export function demoActors(s: DemoScenario): ActorSpec[] {
  const specs: ActorSpec[] = [collectorSpec(s)];
  for (let h = 0; h < s.households; h++) specs.push(beaconSpec(s, h));
  for (let h = 0; h < s.households; h++) for (let k = 0; k < s.phonesPerHousehold; k++) specs.push(phoneSpec(s, h, k));
  return specs;
}
