/**
 * The patient's phone (quarantine extension, docs/decisions/0002): scans for
 * its household SmartBeacon's presence frames (actors/quarantine/beacon.ts)
 * and forwards the tokens it hears, with receive times, to the app backend
 * (`tokens.forward` on `appBackendTokensTopic`), keyed by SK_DP3T(T_PAST).
 *
 * Crypto: same factory pattern as the beacon — `createQuarantinePhoneMachine({ crypto })`,
 * actions close over deps, context stays plain data.
 *
 * Chart: idle --host.start--> running --host.stop--> stopped (final).
 * Power, bluetooth and network are guarded flags in context (events
 * `phone.power` / `phone.bluetooth` / `phone.network` { on }), not regions:
 * scanning = powered ∧ bluetooth ∧ inside a scan window (input.scan: duty
 * cycle driven by timers scanOff/scanOn), and `radio.scan` is emitted on each change
 * of that conjunction (and re-emitted on host.resume while it holds).
 * Forwarding needs powered ∧ network.
 *
 * Receive path (every stage bounded, so a flood cannot grow the context):
 *   radio.frame → flood limit: fixed windows of `windowMs` per source address,
 *     at most `maxFramesPerSourcePerWindow` frames each, at most `maxSources`
 *     sources tracked (least recently seen forgotten: forgetting only resets a
 *     count) — over-rate frames dropped and counted (floodDropped)
 *   → reassemble (framing limits) → presence kind byte + Fernet-looking token
 *   → dedupe: first 16 bytes of SHA-256(token) as hex, FIFO set of `dedupeMemory`
 *     digests (default 4 × maxBuffer); a beacon repeats one frame all period
 *   → buffer of (token, receivedAt), at most maxBuffer: when full, the oldest
 *     tuple NOT in flight is dropped (counted); if every tuple is in flight the
 *     new one is dropped instead. An in-flight tuple leaves only on its ack.
 *
 * Forwarding: on `timer.forward` (every forwardPeriodMs) and when the network
 * comes back. With no batch in flight, the first ≤ MAX_TUPLES_PER_BATCH tuples
 * go out as batch `nextBatch` and stay in the buffer, in flight. `msg.tokens.ack`
 * with that batch number drops them; other acks are ignored (stale redelivery).
 * No ack within ackTimeoutMs: the same batch (number and tuples) is re-sent at
 * the next opportunity; the backend re-acks re-sent batches. While the network
 * is off everything stays in context, which the host's snapshot/journal keeps.
 */
import { assign, enqueueActions, setup } from 'xstate';
import type { Effect } from '../effects.ts';
import { withTimer, withoutFiredTimer, withoutTimer } from '../effects.ts';
import { createReassembly, expireReassembly } from '../../protocol/wire/framing.ts';
import {
  checkedInput,
  forwardPeriod,
  onAck,
  onFrame,
  planForward,
  type QuarantinePhoneContext,
  type QuarantinePhoneDeps,
  type QuarantinePhoneEvent,
  type QuarantinePhoneInput,
} from './phone-logic.ts';

export * from './phone-logic.ts';

export function createQuarantinePhoneMachine(deps: QuarantinePhoneDeps) {
  return setup({
    types: {
      input: {} as QuarantinePhoneInput,
      context: {} as QuarantinePhoneContext,
      events: {} as QuarantinePhoneEvent,
      emitted: {} as Effect,
    },
    actions: {
      forgetTimer: assign(({ context, event }) => ({ timers: withoutFiredTimer(context.timers, event.type) })),
      planForwardTimer: assign(({ context, event }) => ({
        timers: withTimer(context.timers, 'forward', event.at + forwardPeriod(context.input)),
      })),
      emitForwardTimer: enqueueActions(({ context, enqueue }) => {
        enqueue.emit({ type: 'timer.set', name: 'forward', deadline: context.timers['forward'] ?? 0 });
      }),
      cancelForward: enqueueActions(({ context, enqueue }) => {
        enqueue.assign({ timers: withoutTimer(context.timers, 'forward') });
        enqueue.emit({ type: 'timer.cancel', name: 'forward' });
      }),
      setSwitch: assign(({ event }) => {
        if (event.type === 'phone.power') return { powered: event.on };
        if (event.type === 'phone.bluetooth') return { bluetooth: event.on };
        if (event.type === 'phone.network') return { network: event.on };
        return {};
      }),
      /** host.start: the first scan window opens now, or after input.scan.phaseMs. */
      startScanCycle: enqueueActions(({ context, event, enqueue }) => {
        const scan = context.input.scan;
        if (scan === undefined) return;
        const phase = scan.phaseMs ?? 0;
        const step = phase > 0 ? { open: false, name: 'scanOn' as const, deadline: event.at + phase } : { open: true, name: 'scanOff' as const, deadline: event.at + scan.windowMs };
        enqueue.assign({ scanWindowOpen: step.open, cycleStart: event.at, windowHeard: [], windowDone: [], timers: withTimer(context.timers, step.name, step.deadline) });
        enqueue.emit({ type: 'timer.set', name: step.name, deadline: step.deadline });
      }),
      /** timer.scanOn: forget it, open the window, scan if powered and bluetooth is on — one action (twice a scan cycle per phone). */
      beginWindow: enqueueActions(({ context, event, enqueue }) => {
        const scan = context.input.scan;
        if (scan === undefined) return;
        const deadline = event.at + scan.windowMs;
        const scanning = context.powered && context.bluetooth;
        const timers = withTimer(withoutFiredTimer(context.timers, event.type), 'scanOff', deadline);
        enqueue.assign({ scanWindowOpen: true, cycleStart: event.at, windowHeard: [], windowDone: [], timers, scanning });
        enqueue.emit({ type: 'timer.set', name: 'scanOff', deadline });
        if (scanning !== context.scanning) enqueue.emit({ type: 'radio.scan', on: scanning });
      }),
      closeScanWindow: enqueueActions(({ context, enqueue }) => {
        const scan = context.input.scan;
        if (scan === undefined) return;
        const deadline = context.cycleStart + scan.periodMs;
        enqueue.assign({ scanWindowOpen: false, timers: withTimer(context.timers, 'scanOn', deadline) });
        enqueue.emit({ type: 'timer.set', name: 'scanOn', deadline });
      }),
      cancelScanCycle: enqueueActions(({ context, enqueue }) => {
        for (const name of ['scanOn', 'scanOff'] as const) {
          if (context.timers[name] === undefined) continue;
          enqueue.assign(({ context: c }) => ({ timers: withoutTimer(c.timers, name) }));
          enqueue.emit({ type: 'timer.cancel', name });
        }
      }),
      /** Emit radio.scan when powered ∧ bluetooth ∧ in a scan window differs from the last emitted state. */
      syncScan: enqueueActions(({ context, enqueue }) => {
        const want = context.powered && context.bluetooth && context.scanWindowOpen;
        if (want === context.scanning) return;
        enqueue.assign({ scanning: want });
        enqueue.emit({ type: 'radio.scan', on: want });
      }),
      stopScan: enqueueActions(({ context, enqueue }) => {
        if (!context.scanning) return;
        enqueue.assign({ scanning: false });
        enqueue.emit({ type: 'radio.scan', on: false });
      }),
      rescan: enqueueActions(({ context, enqueue }) => {
        if (context.scanning) enqueue.emit({ type: 'radio.scan', on: true });
      }),
      takeFrame: enqueueActions(({ context, event, enqueue }) => {
        if (event.type !== 'radio.frame') return;
        const patch = onFrame(deps.crypto, context, event);
        const scan = context.input.scan;
        const heard = patch.windowHeard ?? context.windowHeard;
        const done = patch.windowDone ?? context.windowDone;
        // Early close (input.scan.untilTokensAfterMs): open long enough, and every source heard delivered a token.
        const after = scan?.untilTokensAfterMs;
        if (scan === undefined || after === undefined || !context.scanWindowOpen || event.at - context.cycleStart < after || done.length === 0 || !heard.every((a) => done.includes(a))) {
          enqueue.assign(patch);
          return;
        }
        const deadline = context.cycleStart + scan.periodMs;
        enqueue.assign({ ...patch, scanWindowOpen: false, scanning: false, timers: withTimer(withoutTimer(context.timers, 'scanOff'), 'scanOn', deadline) });
        enqueue.emit({ type: 'timer.cancel', name: 'scanOff' });
        enqueue.emit({ type: 'timer.set', name: 'scanOn', deadline });
        enqueue.emit({ type: 'radio.scan', on: false });
      }),
      expireFragments: assign(({ context, event }) => ({ reassembly: expireReassembly(context.reassembly, event.at) })),
      tryForward: enqueueActions(({ context, event, enqueue }) => {
        const { send, patch } = planForward(context, event.at);
        if (send === undefined) return;
        enqueue.assign(patch);
        enqueue.emit(send);
      }),
      takeAck: assign(({ context, event }) => (event.type === 'msg.tokens.ack' ? onAck(context, event) : {})),
    },
    guards: {
      scanning: ({ context }) => context.scanning,
    },
  }).createMachine({
    id: 'quarantine-phone',
    context: ({ input }) => ({
      input: checkedInput(input),
      powered: true,
      bluetooth: true,
      network: true,
      scanning: false,
      scanWindowOpen: true,
      cycleStart: 0,
      windowHeard: [],
      windowDone: [],
      sources: [],
      reassembly: createReassembly(input.reassembly),
      seen: [],
      buffer: [],
      nextBatch: 0,
      inFlight: null,
      counters: {
        framesReceived: 0, floodDropped: 0, framesRejected: 0, duplicates: 0, tokensBuffered: 0,
        bufferDropped: 0, batchesSent: 0, batchesResent: 0, batchesAcked: 0, tuplesAcked: 0,
      },
      timers: {},
    }),
    initial: 'idle',
    states: {
      idle: {
        on: {
          'host.start': { target: 'running', actions: ['startScanCycle', 'syncScan', 'planForwardTimer', 'emitForwardTimer'] },
          'host.stop': { target: 'stopped' },
        },
      },
      running: {
        on: {
          'radio.frame': { guard: 'scanning', actions: 'takeFrame' },
          'timer.forward': { actions: ['forgetTimer', 'expireFragments', 'tryForward', 'planForwardTimer', 'emitForwardTimer'] },
          'msg.tokens.ack': { actions: 'takeAck' },
          'timer.scanOff': { actions: ['forgetTimer', 'closeScanWindow', 'syncScan'] },
          'timer.scanOn': { actions: 'beginWindow' },
          'phone.power': { actions: ['setSwitch', 'syncScan', 'tryForward'] },
          'phone.bluetooth': { actions: ['setSwitch', 'syncScan'] },
          'phone.network': { actions: ['setSwitch', 'tryForward'] },
          'host.resume': { actions: 'rescan' },
          'host.stop': { target: 'stopped', actions: ['stopScan', 'cancelForward', 'cancelScanCycle'] },
        },
      },
      stopped: { type: 'final' },
    },
  });
}

export type QuarantinePhoneMachine = ReturnType<typeof createQuarantinePhoneMachine>;
