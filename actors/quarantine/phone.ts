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
import type { BusSendEffect, Effect, HostEvent, MessageEvent, RadioFrameEvent, TimerEvent } from '../effects.ts';
import { withTimer, withoutFiredTimer, withoutTimer } from '../effects.ts';
import type { SimMillis } from '../ports.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import { FERNET_MIN_TOKEN_BYTES, FERNET_VERSION } from '../../protocol/beacon/fernet.ts';
import {
  MAX_FORWARDED_TOKEN_BYTES,
  MAX_TUPLES_PER_BATCH,
  tokensForwardCodec,
  type ForwardedToken,
  type TokensAck,
} from '../../protocol/quarantine/messages.ts';
import { createReassembly, expireReassembly, reassemble, type ReassemblyLimits, type ReassemblyState } from '../../protocol/wire/framing.ts';
import { presenceFrameToken } from './beacon.ts';
import { ensure } from '../../protocol/errors.ts';

export const DEFAULT_FORWARD_PERIOD_MS = 5 * 60_000;
export const DEFAULT_ACK_TIMEOUT_MS = 60_000;
export const DEDUPE_DIGEST_BYTES = 16;

export interface FloodLimits {
  readonly maxFramesPerSourcePerWindow: number;
  readonly windowMs: number;
  readonly maxSources: number;
}

export interface QuarantinePhoneInput {
  readonly id: string;
  /** SK_DP3T(T_PAST), 32 bytes: the patient's pseudonym at the app backend. */
  readonly sk: Uint8Array;
  readonly appBackendTokensTopic: string;
  /** This phone's inbox: replyTo of every forward, where `tokens.ack` arrives. */
  readonly inboxTopic: string;
  readonly forwardPeriodMs?: number;
  readonly maxBuffer: number;
  readonly flood: FloodLimits;
  readonly reassembly: ReassemblyLimits;
  readonly ackTimeoutMs?: number;
  /** Digests remembered for dedupe (default 4 × maxBuffer). */
  readonly dedupeMemory?: number;
  /**
   * Duty-cycled scanning: listen `scanWindowMs` out of every `scanPeriodMs`
   * (phones scan periodically, and a simulated city cannot afford a radio.frame
   * per advertisement). Absent: scan whenever powered and bluetooth is on.
   * `phaseMs` (default 0, < periodMs) delays the first window after
   * host.start: phones in a city are not synchronised, and a window shared by
   * every phone at once would also make the simulated air re-arm every
   * beacon for every phone at the same instant.
   * `untilTokensAfterMs` (absent: off) closes a window early once it has
   * been open that long AND every source heard in it has delivered a complete
   * presence token (what an app saving energy does); windowMs is then the
   * longest window, sized for the worst case (a window straddling the
   * beacon's token change needs two fragment rounds). Set it to one fragment
   * round: by then every beacon in range has been heard, and a source heard
   * but not completed keeps the window open, so neither a neighbour's beacon
   * nor a flood of complete fake frames can cut the phone's own token short.
   */
  readonly scan?: { readonly windowMs: number; readonly periodMs: number; readonly phaseMs?: number; readonly untilTokensAfterMs?: number };
}

export interface QuarantinePhoneDeps {
  readonly crypto: CryptoSuite;
}

export interface QuarantinePhoneCounters {
  readonly framesReceived: number;
  readonly floodDropped: number;
  /** Completed frames that are not presence tokens. */
  readonly framesRejected: number;
  readonly duplicates: number;
  readonly tokensBuffered: number;
  readonly bufferDropped: number;
  readonly batchesSent: number;
  readonly batchesResent: number;
  readonly batchesAcked: number;
  readonly tuplesAcked: number;
}

export interface SourceWindow {
  readonly address: string;
  readonly windowStart: SimMillis;
  readonly count: number;
}

export interface InFlightBatch {
  readonly batch: number;
  /** The first `count` tuples of the buffer. */
  readonly count: number;
  readonly sentAt: SimMillis;
}

export interface QuarantinePhoneContext {
  readonly input: QuarantinePhoneInput;
  readonly powered: boolean;
  readonly bluetooth: boolean;
  readonly network: boolean;
  /** Last `radio.scan` state emitted. */
  readonly scanning: boolean;
  /** Inside a scan window of the duty cycle (always true without `input.scan`). */
  readonly scanWindowOpen: boolean;
  /** Start of the current scan cycle, ms. */
  readonly cycleStart: SimMillis;
  /** Sources with admitted frames in the current window, and those that completed a presence token in it (input.scan.untilTokens). */
  readonly windowHeard: readonly string[];
  readonly windowDone: readonly string[];
  /** Flood windows, least recently seen first. */
  readonly sources: readonly SourceWindow[];
  readonly reassembly: ReassemblyState;
  /** Dedupe digests (hex), oldest first. */
  readonly seen: readonly string[];
  readonly buffer: readonly ForwardedToken[];
  readonly nextBatch: number;
  readonly inFlight: InFlightBatch | null;
  readonly counters: QuarantinePhoneCounters;
  readonly timers: Readonly<Record<string, SimMillis>>;
}

export interface PhoneSwitchEvent<T extends 'phone.power' | 'phone.bluetooth' | 'phone.network'> {
  readonly type: T;
  readonly at: SimMillis;
  readonly on: boolean;
}
export type TokensAckEvent = MessageEvent<'tokens.ack', TokensAck>;
export type QuarantinePhoneEvent =
  | HostEvent
  | TimerEvent<'forward' | 'scanOn' | 'scanOff'>
  | PhoneSwitchEvent<'phone.power'>
  | PhoneSwitchEvent<'phone.bluetooth'>
  | PhoneSwitchEvent<'phone.network'>
  | TokensAckEvent;

type Counters = { -readonly [K in keyof QuarantinePhoneCounters]: number };
const forwardPeriod = (input: QuarantinePhoneInput): number => input.forwardPeriodMs ?? DEFAULT_FORWARD_PERIOD_MS;
const hex = (bytes: Uint8Array): string => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

/** Flood limiter step: the new source list and whether the frame is admitted. */
export function admitFrame(sources: readonly SourceWindow[], limits: FloodLimits, address: string, at: SimMillis): { sources: SourceWindow[]; admitted: boolean } {
  const i = sources.findIndex((s) => s.address === address);
  const old = sources[i];
  const rest = i >= 0 ? [...sources.slice(0, i), ...sources.slice(i + 1)] : sources.slice(Math.max(0, sources.length - limits.maxSources + 1));
  if (old !== undefined && at < old.windowStart + limits.windowMs) {
    const admitted = old.count < limits.maxFramesPerSourcePerWindow;
    return { sources: [...rest, { ...old, count: admitted ? old.count + 1 : old.count }], admitted };
  }
  const admitted = limits.maxFramesPerSourcePerWindow > 0;
  return { sources: [...rest, { address, windowStart: at, count: admitted ? 1 : 0 }], admitted };
}

/** Whether reassembled bytes look like a token worth forwarding (the backend verifies). */
function plausibleToken(token: Uint8Array | undefined): token is Uint8Array {
  return token !== undefined && token.length >= FERNET_MIN_TOKEN_BYTES && token.length <= MAX_FORWARDED_TOKEN_BYTES && token[0] === FERNET_VERSION;
}

function onFrame(crypto: CryptoSuite, c: QuarantinePhoneContext, event: RadioFrameEvent): Partial<QuarantinePhoneContext> {
  const counters: Counters = { ...c.counters, framesReceived: c.counters.framesReceived + 1 };
  const flood = admitFrame(c.sources, c.input.flood, event.frame.address, event.at);
  if (!flood.admitted) return { sources: flood.sources, counters: { ...counters, floodDropped: counters.floodDropped + 1 } };
  const { state, outcome } = reassemble(c.reassembly, event.frame.address, event.frame.payload, event.at);
  const address = event.frame.address;
  const tracking = c.input.scan?.untilTokensAfterMs !== undefined;
  const windowHeard = tracking && !c.windowHeard.includes(address) ? [...c.windowHeard.slice(Math.max(0, c.windowHeard.length - c.input.flood.maxSources + 1)), address] : c.windowHeard;
  if (outcome.kind !== 'completed') return { sources: flood.sources, reassembly: state, counters, windowHeard };
  const token = presenceFrameToken(outcome.payload);
  if (!plausibleToken(token)) return { sources: flood.sources, reassembly: state, windowHeard, counters: { ...counters, framesRejected: counters.framesRejected + 1 } };
  const windowDone = tracking && !c.windowDone.includes(address) ? [...c.windowDone.slice(Math.max(0, c.windowDone.length - c.input.flood.maxSources + 1)), address] : c.windowDone;
  const base = { sources: flood.sources, reassembly: state, counters, windowHeard, windowDone };
  const digest = hex(crypto.sha256(token).subarray(0, DEDUPE_DIGEST_BYTES));
  if (c.seen.includes(digest)) return { ...base, counters: { ...counters, duplicates: counters.duplicates + 1 } };
  const memory = c.input.dedupeMemory ?? 4 * c.input.maxBuffer;
  const seen = [...c.seen.slice(Math.max(0, c.seen.length - memory + 1)), digest];
  const inFlight = c.inFlight?.count ?? 0;
  let buffer = c.buffer;
  if (buffer.length >= c.input.maxBuffer) {
    counters.bufferDropped += 1;
    if (buffer.length <= inFlight) return { ...base, seen, counters }; // everything held is in flight: drop the newcomer
    buffer = [...buffer.slice(0, inFlight), ...buffer.slice(inFlight + 1)];
  }
  counters.tokensBuffered += 1;
  return { ...base, seen, counters, buffer: [...buffer, { token, receivedAt: event.at }] };
}

/** Misuse of the input throws a MisuseError naming the field (before the actor runs). */
function checkedInput(input: QuarantinePhoneInput): QuarantinePhoneInput {
  const scan = input.scan;
  if (scan !== undefined) {
    ensure(Number.isFinite(scan.windowMs) && scan.windowMs > 0, 'input.scan.windowMs', 'must be > 0 (ms)');
    ensure(Number.isFinite(scan.periodMs) && scan.periodMs >= scan.windowMs, 'input.scan.periodMs', 'must be ≥ scan.windowMs (ms)');
    const phase = scan.phaseMs ?? 0;
    ensure(Number.isFinite(phase) && phase >= 0 && phase < scan.periodMs, 'input.scan.phaseMs', 'must be in [0, scan.periodMs) (ms)');
    const after = scan.untilTokensAfterMs;
    ensure(after === undefined || (Number.isFinite(after) && after >= 0 && after <= scan.windowMs), 'input.scan.untilTokensAfterMs', 'must be in [0, scan.windowMs] (ms)');
  }
  ensure(Number.isSafeInteger(input.maxBuffer) && input.maxBuffer > 0, 'input.maxBuffer', 'must be a positive integer');
  return input;
}

/** What forwarding does now: the effect to emit (if any) and the context patch. */
export function planForward(c: QuarantinePhoneContext, at: SimMillis): { send?: BusSendEffect; patch: Partial<QuarantinePhoneContext> } {
  if (!c.powered || !c.network || c.buffer.length === 0) return { patch: {} };
  const timeout = c.input.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS;
  if (c.inFlight !== null && at < c.inFlight.sentAt + timeout) return { patch: {} };
  const resend = c.inFlight !== null;
  const batch = c.inFlight?.batch ?? c.nextBatch;
  const count = c.inFlight?.count ?? Math.min(c.buffer.length, MAX_TUPLES_PER_BATCH);
  const body = tokensForwardCodec.encode({ sk: c.input.sk, batch, tuples: c.buffer.slice(0, count) });
  const send: BusSendEffect = {
    type: 'bus.send', topic: c.input.appBackendTokensTopic, msgType: tokensForwardCodec.type, body, qos: 1,
    replyTo: c.input.inboxTopic, corr: `${c.input.id}/${batch}`,
  };
  const counters = resend
    ? { ...c.counters, batchesResent: c.counters.batchesResent + 1 }
    : { ...c.counters, batchesSent: c.counters.batchesSent + 1 };
  return { send, patch: { inFlight: { batch, count, sentAt: at }, nextBatch: resend ? c.nextBatch : (c.nextBatch + 1) % 2 ** 32, counters } };
}

function onAck(c: QuarantinePhoneContext, event: TokensAckEvent): Partial<QuarantinePhoneContext> {
  if (c.inFlight === null || event.body.batch !== c.inFlight.batch) return {};
  const { count } = c.inFlight;
  return {
    buffer: c.buffer.slice(count),
    inFlight: null,
    counters: { ...c.counters, batchesAcked: c.counters.batchesAcked + 1, tuplesAcked: c.counters.tuplesAcked + count },
  };
}

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
