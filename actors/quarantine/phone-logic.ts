/**
 * The quarantine phone's state and pure reducers (phone.ts has the chart and
 * the machine): input and context types, the flood limiter, the receive path
 * and forwarding/ack planning. Plain functions over plain data, tested directly.
 */
import type { BusSendEffect, HostEvent, MessageEvent, RadioFrameEvent, TimerEvent } from '../effects.ts';
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
import { reassemble, type ReassemblyLimits, type ReassemblyState } from '../../protocol/wire/framing.ts';
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
export const forwardPeriod = (input: QuarantinePhoneInput): number => input.forwardPeriodMs ?? DEFAULT_FORWARD_PERIOD_MS;
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

export function onFrame(crypto: CryptoSuite, c: QuarantinePhoneContext, event: RadioFrameEvent): Partial<QuarantinePhoneContext> {
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
export function checkedInput(input: QuarantinePhoneInput): QuarantinePhoneInput {
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

export function onAck(c: QuarantinePhoneContext, event: TokensAckEvent): Partial<QuarantinePhoneContext> {
  if (c.inFlight === null || event.body.batch !== c.inFlight.batch) return {};
  const { count } = c.inFlight;
  return {
    buffer: c.buffer.slice(count),
    inFlight: null,
    counters: { ...c.counters, batchesAcked: c.counters.batchesAcked + 1, tuplesAcked: c.counters.tuplesAcked + count },
  };
}

