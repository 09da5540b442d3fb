/**
 * SmartBeacon (quarantine extension, docs/decisions/0002): installed in the
 * patient's household, it broadcasts a fresh Fernet presence token
 * (protocol/beacon/presence-token.ts) every `periodMs`, keyed with SK_beacon.
 *
 * Crypto dependency pattern (used by every machine that calls the suite):
 * the CryptoSuite is NOT kept in context — it is an object with functions and
 * would break `getPersistedSnapshot()` → restore. Instead the module exports a
 * factory, `createSmartBeaconMachine({ crypto })`, whose actions close over
 * `deps`. Context stays plain data (keys and DRBG state as Uint8Array), so a
 * snapshot restored into a machine built with another suite (noble vs
 * node:crypto) continues identically.
 *
 * Over the air each period's frame is
 *   [0]      PRESENCE_FRAME_KIND_V1 (0x71) — "tracecity presence token v1"
 *   [1, end) the raw presence token (Fernet bytes, 73 for a 10-digit timestamp)
 * cut into fragments (protocol/wire/framing.ts) advertised round-robin. The
 * kind byte lets a phone tell beacon frames from other tracecity frames that
 * share the framing (e.g. the demo frame starts with 0x01, DIMY shares later).
 *
 * Chart:  idle --host.start--> advertising <--beacon.power{on}--> off
 *         advertising/off --host.stop--> stopped (final)
 *         advertising: timer.period → mint + advertise + re-arm; host.resume → re-advertise
 *         anywhere: beacon.sync { offsetMs } sets the clock error (police sync)
 * Pure: time from event `at`, IVs from the DRBG state in context, effects emitted.
 */
import { assign, emit, enqueueActions, setup } from 'xstate';
import type { Effect, HostEvent, TimerEvent } from '../effects.ts';
import { withTimer, withoutFiredTimer, withoutTimer } from '../effects.ts';
import type { SimMillis } from '../ports.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import { drbgDraw, drbgInit, type DrbgState } from '../../protocol/crypto/drbg.ts';
import { FERNET_IV_BYTES, parseFernetKey } from '../../protocol/beacon/fernet.ts';
import { createPresenceToken } from '../../protocol/beacon/presence-token.ts';
import { DEFAULT_FRAGMENT_BUDGET_BYTES, fragment, nextFrameId } from '../../protocol/wire/framing.ts';

/** First byte of a reassembled frame carrying a presence token, version 1 ('q' = 0x71; high nibble 0x7 = quarantine frames). */
export const PRESENCE_FRAME_KIND_V1 = 0x71;
export const DEFAULT_BEACON_PERIOD_MS = 60_000;

/** Frame = kind byte ‖ token. */
export function encodePresenceFrame(token: Uint8Array): Uint8Array {
  const out = new Uint8Array(token.length + 1);
  out[0] = PRESENCE_FRAME_KIND_V1;
  out.set(token, 1);
  return out;
}

/** The token of a presence frame, or undefined when the frame is of another kind (or empty). */
export function presenceFrameToken(frame: Uint8Array): Uint8Array | undefined {
  return frame.length > 1 && frame[0] === PRESENCE_FRAME_KIND_V1 ? frame.slice(1) : undefined;
}

export interface SmartBeaconInput {
  readonly id: string;
  /** DRBG seed (≥ 16 bytes): the Fernet IVs come from it. */
  readonly seed: Uint8Array;
  /** SK_beacon, the 32-byte Fernet key (signing ‖ encryption). */
  readonly key: Uint8Array;
  /** A new token every periodMs (default 60 s). */
  readonly periodMs?: number;
  /** Advertising interval per fragment, ms. */
  readonly advertisingIntervalMs: number;
  /** Fragment budget, bytes (Radio capabilities; default 24, a legacy advertisement). */
  readonly budget?: number;
  /** The beacon's clock error, ms (its clock reads at + clockOffsetMs). */
  readonly clockOffsetMs?: number;
}

export interface SmartBeaconDeps {
  readonly crypto: CryptoSuite;
}

export interface SmartBeaconContext {
  readonly input: SmartBeaconInput;
  readonly rng: DrbgState;
  readonly clockOffsetMs: number;
  /** Frame id of the current frame (wraps at 65535). */
  readonly frameId: number;
  readonly tokensMinted: number;
  /** Raw token and fragments being advertised (empty before the first period). */
  readonly token: Uint8Array;
  readonly fragments: readonly Uint8Array[];
  readonly timers: Readonly<Record<string, SimMillis>>;
}

export interface BeaconPowerEvent {
  readonly type: 'beacon.power';
  readonly at: SimMillis;
  readonly on: boolean;
}
export interface BeaconSyncEvent {
  readonly type: 'beacon.sync';
  readonly at: SimMillis;
  readonly offsetMs: number;
}
export type SmartBeaconEvent = HostEvent | TimerEvent<'period'> | BeaconPowerEvent | BeaconSyncEvent;

const periodOf = (input: SmartBeaconInput): number => input.periodMs ?? DEFAULT_BEACON_PERIOD_MS;

/** Token for the period starting at `at` (beacon clock, whole seconds) and its fragments. */
type Minted = Pick<SmartBeaconContext, 'rng' | 'token' | 'fragments' | 'frameId' | 'tokensMinted'>;

function mint(crypto: CryptoSuite, context: SmartBeaconContext, at: SimMillis): Minted {
  const { bytes: iv, state } = drbgDraw(context.rng, FERNET_IV_BYTES);
  const now = Math.max(0, Math.floor((at + context.clockOffsetMs) / 1000));
  const token = createPresenceToken(crypto, parseFernetKey(context.input.key), now, iv);
  const frameId = context.tokensMinted === 0 ? context.frameId : nextFrameId(context.frameId);
  const fragments = fragment(encodePresenceFrame(token), frameId, context.input.budget ?? DEFAULT_FRAGMENT_BUDGET_BYTES);
  return { rng: state, token, fragments, frameId, tokensMinted: context.tokensMinted + 1 };
}

export function createSmartBeaconMachine(deps: SmartBeaconDeps) {
  return setup({
    types: {
      input: {} as SmartBeaconInput,
      context: {} as SmartBeaconContext,
      events: {} as SmartBeaconEvent,
      emitted: {} as Effect,
    },
    actions: {
      /** Mint, advertise and plan the next period in one action: the hot path of a city (one per beacon per minute). */
      nextToken: enqueueActions(({ context, event, enqueue }) => {
        const deadline = event.at + periodOf(context.input);
        const minted = mint(deps.crypto, context, event.at);
        enqueue.assign({ ...minted, timers: withTimer(withoutFiredTimer(context.timers, event.type), 'period', deadline) });
        enqueue.emit({ type: 'radio.advertise', payloads: minted.fragments, intervalMs: context.input.advertisingIntervalMs });
        enqueue.emit({ type: 'timer.set', name: 'period', deadline });
      }),
      emitAdvertise: emit(({ context }) => ({
        type: 'radio.advertise',
        payloads: context.fragments,
        intervalMs: context.input.advertisingIntervalMs,
      }) as const),
      silence: emit({ type: 'radio.stopAdvertising' } as const),
      cancelPeriod: assign(({ context }) => ({ timers: withoutTimer(context.timers, 'period') })),
      emitCancelPeriod: emit({ type: 'timer.cancel', name: 'period' } as const),
      sync: assign(({ event }) => (event.type === 'beacon.sync' ? { clockOffsetMs: event.offsetMs } : {})),
    },
    guards: {
      powerOn: ({ event }) => event.type === 'beacon.power' && event.on,
      powerOff: ({ event }) => event.type === 'beacon.power' && !event.on,
      validOffset: ({ event }) => event.type === 'beacon.sync' && Number.isSafeInteger(event.offsetMs),
    },
  }).createMachine({
    id: 'smart-beacon',
    context: ({ input }) => {
      parseFernetKey(input.key); // MisuseError now rather than at the first period
      return {
        input,
        rng: drbgInit(input.seed),
        clockOffsetMs: input.clockOffsetMs ?? 0,
        frameId: 0,
        tokensMinted: 0,
        token: new Uint8Array(0),
        fragments: [],
        timers: {},
      };
    },
    initial: 'idle',
    on: {
      'beacon.sync': { guard: 'validOffset', actions: 'sync' },
    },
    states: {
      idle: {
        on: {
          'host.start': { target: 'advertising', actions: 'nextToken' },
          'host.stop': { target: 'stopped' },
        },
      },
      advertising: {
        on: {
          'timer.period': { actions: 'nextToken' },
          // Timers are re-armed by the host from context; the radio is not in the snapshot.
          'host.resume': { actions: ['emitAdvertise'] },
          'beacon.power': { guard: 'powerOff', target: 'off', actions: ['silence', 'cancelPeriod', 'emitCancelPeriod'] },
          'host.stop': { target: 'stopped', actions: ['silence', 'cancelPeriod', 'emitCancelPeriod'] },
        },
      },
      off: {
        on: {
          // A fresh token on power-on: the old one's period is over.
          'beacon.power': { guard: 'powerOn', target: 'advertising', actions: 'nextToken' },
          'host.stop': { target: 'stopped' },
        },
      },
      stopped: { type: 'final' },
    },
  });
}

export type SmartBeaconMachine = ReturnType<typeof createSmartBeaconMachine>;
