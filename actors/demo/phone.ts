/**
 * Demo phone (foundation seam only): scans with a duty cycle (scan for
 * `scanWindowMs` out of every `scanPeriodMs`), reassembles demo beacon
 * frames from fragments, and every `reportPeriodMs` reports the frames it
 * heard to the collector over the bus (`demo.heard`).
 */
import { assign, emit, setup } from 'xstate';
import type { Effect, HostEvent, RadioFrameEvent, TimerEvent } from '../effects.ts';
import { withTimer, withoutFiredTimer } from '../effects.ts';
import type { SimMillis } from '../ports.ts';
import { decodeDemoFrame } from '../../protocol/demo/beacon-frame.ts';
import { DEMO_HEARD, MAX_HEARD_ENTRIES, type HeardEntry } from '../../protocol/demo/messages.ts';
import { createReassembly, expireReassembly, reassemble, type ReassemblyLimits, type ReassemblyState } from '../../protocol/wire/framing.ts';

export interface DemoPhoneInput {
  readonly id: string;
  /** Topic of the collector's inbox. */
  readonly collectorTopic: string;
  readonly scanWindowMs: number;
  readonly scanPeriodMs: number;
  readonly reportPeriodMs: number;
  readonly reassembly: ReassemblyLimits;
}

export interface DemoPhoneCounters {
  readonly fragmentsReceived: number;
  readonly framesReassembled: number;
  readonly framesRejected: number;
  readonly reportsSent: number;
}

export interface DemoPhoneContext {
  readonly input: DemoPhoneInput;
  readonly reassembly: ReassemblyState;
  /** Highest sequence heard per beacon, so each frame is reported once. */
  readonly lastSeq: Readonly<Record<string, number>>;
  readonly pending: readonly HeardEntry[];
  readonly counters: DemoPhoneCounters;
  /** Start of the current scan cycle, ms. */
  readonly cycleStart: SimMillis;
  readonly timers: Readonly<Record<string, SimMillis>>;
}

type DemoPhoneEvent = HostEvent | TimerEvent<'scanStop' | 'scanStart' | 'report'>;

function onFrame(context: DemoPhoneContext, event: RadioFrameEvent): Partial<DemoPhoneContext> {
  const { state, outcome } = reassemble(context.reassembly, event.frame.address, event.frame.payload, event.at);
  const counters = { ...context.counters, fragmentsReceived: context.counters.fragmentsReceived + 1 };
  if (outcome.kind !== 'completed') return { reassembly: state, counters };
  const frame = decodeDemoFrame(outcome.payload);
  if (!frame.ok) return { reassembly: state, counters: { ...counters, framesRejected: counters.framesRejected + 1 } };
  const { beacon, seq } = frame.value;
  const reassembled = { ...counters, framesReassembled: counters.framesReassembled + 1 };
  if ((context.lastSeq[beacon] ?? -1) >= seq || context.pending.length >= MAX_HEARD_ENTRIES) {
    return { reassembly: state, counters: reassembled };
  }
  return {
    reassembly: state,
    counters: reassembled,
    lastSeq: { ...context.lastSeq, [beacon]: seq },
    pending: [...context.pending, { beacon, seq, rssi: event.frame.rssi, at: event.at }],
  };
}

export const demoPhoneMachine = setup({
  types: {
    input: {} as DemoPhoneInput,
    context: {} as DemoPhoneContext,
    events: {} as DemoPhoneEvent,
    emitted: {} as Effect,
  },
  actions: {
    forgetTimer: assign(({ context, event }) => ({ timers: withoutFiredTimer(context.timers, event.type) })),
    scanOn: emit({ type: 'radio.scan', on: true } as const),
    scanOff: emit({ type: 'radio.scan', on: false } as const),
    startCycle: assign(({ context, event }) => ({
      cycleStart: event.at,
      timers: withTimer(context.timers, 'scanStop', event.at + context.input.scanWindowMs),
    })),
    emitScanStop: emit(({ context }) => ({ type: 'timer.set', name: 'scanStop', deadline: context.timers['scanStop'] ?? 0 }) as const),
    planNextCycle: assign(({ context }) => ({
      timers: withTimer(context.timers, 'scanStart', context.cycleStart + context.input.scanPeriodMs),
    })),
    emitScanStart: emit(({ context }) => ({ type: 'timer.set', name: 'scanStart', deadline: context.timers['scanStart'] ?? 0 }) as const),
    planReport: assign(({ context, event }) => ({
      timers: withTimer(context.timers, 'report', event.at + context.input.reportPeriodMs),
    })),
    emitReportTimer: emit(({ context }) => ({ type: 'timer.set', name: 'report', deadline: context.timers['report'] ?? 0 }) as const),
    expireFragments: assign(({ context, event }) => ({ reassembly: expireReassembly(context.reassembly, event.at) })),
    takeFrame: assign(({ context, event }) => (event.type === 'radio.frame' ? onFrame(context, event) : {})),
    emitReport: emit(({ context }) => ({
      type: 'bus.send',
      topic: context.input.collectorTopic,
      msgType: DEMO_HEARD,
      body: { phone: context.input.id, heard: context.pending.map((e) => ({ ...e })) },
      qos: 1,
    }) as const),
    clearPending: assign(({ context }) => ({
      pending: [],
      counters: { ...context.counters, reportsSent: context.counters.reportsSent + 1 },
    })),
  },
  guards: {
    hasPending: ({ context }) => context.pending.length > 0,
  },
}).createMachine({
  id: 'demo-phone',
  context: ({ input }) => ({
    input,
    reassembly: createReassembly(input.reassembly),
    lastSeq: {},
    pending: [],
    counters: { fragmentsReceived: 0, framesReassembled: 0, framesRejected: 0, reportsSent: 0 },
    cycleStart: 0,
    timers: {},
  }),
  initial: 'idle',
  states: {
    idle: {
      on: {
        'host.start': { target: 'running', actions: ['planReport', 'emitReportTimer'] },
      },
    },
    running: {
      initial: 'scanning',
      on: {
        'timer.report': [
          { guard: 'hasPending', actions: ['forgetTimer', 'emitReport', 'clearPending', 'planReport', 'emitReportTimer'] },
          { actions: ['forgetTimer', 'planReport', 'emitReportTimer'] },
        ],
        'host.stop': [
          { guard: 'hasPending', target: 'stopped', actions: ['scanOff', 'emitReport', 'clearPending'] },
          { target: 'stopped', actions: ['scanOff'] },
        ],
      },
      states: {
        scanning: {
          entry: ['scanOn', 'startCycle', 'emitScanStop'],
          on: {
            'radio.frame': { actions: 'takeFrame' },
            'timer.scanStop': { target: 'sleeping', actions: ['forgetTimer', 'expireFragments'] },
            'host.resume': { actions: 'scanOn' },
          },
        },
        sleeping: {
          entry: ['scanOff', 'planNextCycle', 'emitScanStart'],
          on: {
            'timer.scanStart': { target: 'scanning', actions: 'forgetTimer' },
          },
        },
      },
    },
    stopped: { type: 'final' },
  },
});
