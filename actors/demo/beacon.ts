/**
 * Demo beacon (foundation seam only): every `periodMs` it builds a new demo
 * frame (larger than one advertisement), fragments it and advertises the
 * fragments round-robin. Pure: randomness from the DRBG state in context,
 * time from event `at`, effects emitted as data.
 */
import { assign, emit, setup } from 'xstate';
import type { Effect, HostEvent, TimerEvent } from '../effects.ts';
import { withTimer, withoutFiredTimer, withoutTimer } from '../effects.ts';
import type { SimMillis } from '../ports.ts';
import { drbgDraw, drbgInit, type DrbgState } from '../../protocol/crypto/drbg.ts';
import { DEMO_FRAME_OVERHEAD_BYTES, encodeDemoFrame } from '../../protocol/demo/beacon-frame.ts';
import { fragment } from '../../protocol/wire/framing.ts';

export interface DemoBeaconInput {
  readonly id: string;
  /** Seed of this beacon's DRBG (≥ 16 bytes). */
  readonly seed: Uint8Array;
  /** A new frame every periodMs (simulated ms). */
  readonly periodMs: number;
  /** Advertising interval per fragment, ms. */
  readonly advertisingIntervalMs: number;
  /** Total frame size in bytes (≥ overhead + id). */
  readonly frameBytes: number;
  /** Per-advertisement payload budget (Radio capabilities). */
  readonly advertisementBudget: number;
}

export interface DemoBeaconContext {
  readonly input: DemoBeaconInput;
  readonly rng: DrbgState;
  readonly seq: number;
  readonly fragments: readonly Uint8Array[];
  readonly timers: Readonly<Record<string, SimMillis>>;
}

type DemoBeaconEvent = HostEvent | TimerEvent<'rotate'>;

/** Build frame `seq` (filler from the DRBG) and its fragments. */
function nextFrame(context: DemoBeaconContext): Pick<DemoBeaconContext, 'rng' | 'seq' | 'fragments'> {
  const seq = context.seq + 1;
  const fillerBytes = Math.max(0, context.input.frameBytes - DEMO_FRAME_OVERHEAD_BYTES - context.input.id.length);
  const { bytes, state } = drbgDraw(context.rng, fillerBytes);
  const frame = encodeDemoFrame({ beacon: context.input.id, seq }, bytes);
  return { rng: state, seq, fragments: fragment(frame, seq & 0xffff, context.input.advertisementBudget) };
}

export const demoBeaconMachine = setup({
  types: {
    input: {} as DemoBeaconInput,
    context: {} as DemoBeaconContext,
    events: {} as DemoBeaconEvent,
    emitted: {} as Effect,
  },
  actions: {
    forgetTimer: assign(({ context, event }) => ({ timers: withoutFiredTimer(context.timers, event.type) })),
    buildFrame: assign(({ context }) => nextFrame(context)),
    scheduleRotate: assign(({ context, event }) => ({
      timers: withTimer(context.timers, 'rotate', event.at + context.input.periodMs),
    })),
    emitRotateTimer: emit(({ context }) => ({ type: 'timer.set', name: 'rotate', deadline: context.timers['rotate'] ?? 0 }) as const),
    emitAdvertise: emit(({ context }) => ({
      type: 'radio.advertise',
      payloads: context.fragments,
      intervalMs: context.input.advertisingIntervalMs,
    }) as const),
    silence: emit({ type: 'radio.stopAdvertising' } as const),
    cancelRotate: assign(({ context }) => ({ timers: withoutTimer(context.timers, 'rotate') })),
    emitCancelRotate: emit({ type: 'timer.cancel', name: 'rotate' } as const),
  },
}).createMachine({
  id: 'demo-beacon',
  context: ({ input }) => ({ input, rng: drbgInit(input.seed), seq: 0, fragments: [], timers: {} }),
  initial: 'idle',
  states: {
    idle: {
      on: {
        'host.start': { target: 'advertising', actions: ['buildFrame', 'emitAdvertise', 'scheduleRotate', 'emitRotateTimer'] },
      },
    },
    advertising: {
      on: {
        'timer.rotate': { actions: ['forgetTimer', 'buildFrame', 'emitAdvertise', 'scheduleRotate', 'emitRotateTimer'] },
        // Timers are re-armed by the host from context; the radio is not in the snapshot.
        'host.resume': { actions: ['emitAdvertise'] },
        'host.stop': { target: 'stopped', actions: ['silence', 'cancelRotate', 'emitCancelRotate'] },
      },
    },
    stopped: { type: 'final' },
  },
});
