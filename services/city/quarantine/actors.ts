/**
 * The quarantine city's actors and layout: one health authority, one police
 * backend, one app backend (both backends journaled), and per household a
 * SmartBeacon at home and the patient's phone. Positions: a street grid;
 * an absent patient's phone is far away (out of range of every beacon).
 */
import { z } from 'zod';
import type { AnyStateMachine } from 'xstate';
import { createAppBackendMachine, type AppBackendInput } from '../../../actors/quarantine/app-backend.ts';
import { createSmartBeaconMachine, type SmartBeaconInput } from '../../../actors/quarantine/beacon.ts';
import { createHealthAuthorityMachine, type HealthAuthorityInput } from '../../../actors/quarantine/health-authority.ts';
import { createQuarantinePhoneMachine, type QuarantinePhoneInput } from '../../../actors/quarantine/phone.ts';
import { createPoliceBackendMachine, type PoliceBackendInput } from '../../../actors/quarantine/police-backend.ts';
import type { CryptoSuite } from '../../../protocol/crypto/suite.ts';
import { SeededRng } from '../../../protocol/crypto/drbg.ts';
import type { Position } from '../../../hardware/sim/propagation.ts';
import { alertsTopic, controlTopic, inboxTopic, quarantineTopic, tokensTopic } from '../../../protocol/wire/topics.ts';
import type { ActorSpec } from '../../host/host.ts';
import type { HouseholdPlan } from './plan.ts';
import { FERNET_BLOCK_BYTES, FERNET_OVERHEAD_BYTES } from '../../../protocol/beacon/fernet.ts';
import { DEFAULT_FRAGMENT_BUDGET_BYTES, fragmentCount } from '../../../protocol/wire/framing.ts';
import { MAX_ADV_DELAY_MS } from '../../../hardware/sim/schedule.ts';

/** Fragments of one presence frame: kind byte + a token for a 10-digit timestamp (one AES block) at the legacy budget. */
export const PRESENCE_FRAME_FRAGMENTS = fragmentCount(1 + FERNET_OVERHEAD_BYTES + FERNET_BLOCK_BYTES, DEFAULT_FRAGMENT_BUDGET_BYTES);

/** Shortest scan window that always hears one token whole: two fragment rounds (a window may straddle a token change). */
export function minScanWindowMs(advertisingIntervalMs: number): number {
  return 2 * PRESENCE_FRAME_FRAGMENTS * (advertisingIntervalMs + MAX_ADV_DELAY_MS);
}

export const quarantineProtocolSchema = z
  .object({
    windowMin: z.number().positive().max(24 * 60).default(6),
    toleranceS: z.number().min(0).max(3600).default(60),
    beaconPeriodS: z.number().positive().max(3600).default(60),
    advertisingIntervalMs: z.number().int().min(20).max(10_240).default(1000),
    forwardPeriodS: z.number().positive().max(86_400).default(300),
    /** Longest scan window; with scanUntilTokens a window ends after one fragment round once every beacon heard delivered a token. */
    scanWindowS: z.number().positive().default(12),
    scanPeriodS: z.number().positive().default(120),
    scanUntilTokens: z.boolean().default(true),
    alertRetryS: z.number().positive().default(60),
    /** Metres between neighbouring houses. */
    houseSpacingM: z.number().positive().default(60),
  })
  .refine((p) => p.scanWindowS * 1000 >= minScanWindowMs(p.advertisingIntervalMs), {
    // Regression: 6 s windows at 1 s per fragment only worked while every phone scanned in step with the beacons.
    message: 'scanWindowS must cover two rounds of the beacon fragments (2 × fragments × advertisingIntervalMs): a window straddling a token change must still hear one token whole',
    path: ['scanWindowS'],
  })
  .refine((p) => p.scanPeriodS >= p.scanWindowS, { message: 'must be ≥ scanWindowS', path: ['scanPeriodS'] });
export type QuarantineProtocol = z.output<typeof quarantineProtocolSchema>;

export const APP_BACKEND_ID = 'ab';
export const POLICE_ID = 'police';
export const HEALTH_AUTHORITY_ID = 'ha';

/** Per-household secrets, derived from the seed (the health authority hands them out), and the phone's scan phase. */
export interface HouseholdSecrets {
  readonly sk: Uint8Array;
  readonly beaconKey: Uint8Array;
  readonly beaconSeed: Uint8Array;
  /** Not a secret: where in its scan cycle the phone starts, a fraction in [0, 1) of the scan period. */
  readonly scanPhase: number;
}

export function householdSecrets(seedBytes: Uint8Array, index: number): HouseholdSecrets {
  const rng = new SeededRng(seedBytes).fork(`household-secrets:${index}`);
  // Drawn after the keys, so adding it changed no key.
  return { sk: rng.bytes(32), beaconKey: rng.bytes(32), beaconSeed: rng.bytes(32), scanPhase: rng.float() };
}

export function homeOf(p: QuarantineProtocol, households: number, index: number): Position {
  const cols = Math.ceil(Math.sqrt(households));
  return { x: (index % cols) * p.houseSpacingM, y: Math.floor(index / cols) * p.houseSpacingM, room: `house-${index}` };
}

/** Where a patient goes when they leave: 5 km away, outdoors. */
export function awayOf(index: number): Position {
  return { x: -5000 - index * 10, y: -5000 };
}

export function backendSpecs(crypto: CryptoSuite, p: QuarantineProtocol): ActorSpec[] {
  const app: AppBackendInput = {
    id: APP_BACKEND_ID,
    policeAlertsTopic: alertsTopic(POLICE_ID),
    inboxTopic: inboxTopic('app-backend', APP_BACKEND_ID),
    windowMs: p.windowMin * 60_000,
    toleranceMs: p.toleranceS * 1000,
    alertRetryMs: p.alertRetryS * 1000,
  };
  const police: PoliceBackendInput = { id: POLICE_ID, appBackendControlTopic: controlTopic(APP_BACKEND_ID), controlResendMs: 5 * 60_000 };
  const ha: HealthAuthorityInput = {
    id: HEALTH_AUTHORITY_ID,
    appBackendQuarantineTopic: quarantineTopic(APP_BACKEND_ID),
    inboxTopic: inboxTopic('health-authority', HEALTH_AUTHORITY_ID),
    retryMs: 60_000,
  };
  return [
    {
      role: 'app-backend',
      id: APP_BACKEND_ID,
      machine: createAppBackendMachine({ crypto }) as AnyStateMachine,
      input: app,
      journal: { snapshotEvery: 500 },
      subscribe: [tokensTopic(APP_BACKEND_ID), quarantineTopic(APP_BACKEND_ID), controlTopic(APP_BACKEND_ID)],
    },
    {
      role: 'police-backend',
      id: POLICE_ID,
      machine: createPoliceBackendMachine() as AnyStateMachine,
      input: police,
      journal: { snapshotEvery: 500 },
      subscribe: [alertsTopic(POLICE_ID)],
    },
    { role: 'health-authority', id: HEALTH_AUTHORITY_ID, machine: createHealthAuthorityMachine() as AnyStateMachine, input: ha },
  ];
}

export function householdSpecs(crypto: CryptoSuite, p: QuarantineProtocol, plan: HouseholdPlan, secrets: HouseholdSecrets): ActorSpec[] {
  const beacon: SmartBeaconInput = {
    id: plan.beaconId,
    seed: secrets.beaconSeed,
    key: secrets.beaconKey,
    periodMs: p.beaconPeriodS * 1000,
    advertisingIntervalMs: p.advertisingIntervalMs,
  };
  const phone: QuarantinePhoneInput = {
    id: plan.phoneId,
    sk: secrets.sk,
    appBackendTokensTopic: tokensTopic(APP_BACKEND_ID),
    inboxTopic: inboxTopic('phone', plan.phoneId),
    forwardPeriodMs: p.forwardPeriodS * 1000,
    maxBuffer: 2048,
    // A beacon repeats one token for a period (60 s) and a window hears a few beacons: 256 digests cover
    // many windows, where the default (4 × maxBuffer = 8192) made each token cost a copy of 8192 strings.
    dedupeMemory: 256,
    flood: { maxFramesPerSourcePerWindow: 200, windowMs: 60_000, maxSources: 64 },
    reassembly: { maxPendingFrames: 32, maxPendingBytes: 8192, expiryMs: 30_000, maxCompletedRemembered: 64 },
    ackTimeoutMs: 60_000,
    scan: {
      windowMs: p.scanWindowS * 1000,
      periodMs: p.scanPeriodS * 1000,
      phaseMs: Math.floor(secrets.scanPhase * p.scanPeriodS * 1000),
      // One fragment round: every beacon in range has been heard by then.
      ...(p.scanUntilTokens ? { untilTokensAfterMs: minScanWindowMs(p.advertisingIntervalMs) / 2 } : {}),
    },
  };
  return [
    { role: 'beacon', id: plan.beaconId, machine: createSmartBeaconMachine({ crypto }) as AnyStateMachine, input: beacon },
    { role: 'phone', id: plan.phoneId, machine: createQuarantinePhoneMachine({ crypto }) as AnyStateMachine, input: phone },
  ];
}
