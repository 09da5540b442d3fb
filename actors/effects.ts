/**
 * Effects as data (DESIGN.md "Actors: pure machines, effects as data").
 *
 * A machine never performs I/O: it `emit`s one of these effects and the host
 * (services/host) interprets it with real adapters. Timer deadlines are also
 * kept in the machine's context (`timers`) so a restored snapshot re-arms them.
 *
 * Inputs to a machine are the events of `HostEvent` plus its own decoded
 * messages (`msg.<type>`), all namespaced and all carrying `at`, the
 * simulated time at which the host delivered them.
 */
import type { Qos, ReceivedFrame, ScanOptions, SimMillis } from './ports.ts';
import type { Envelope } from '../protocol/wire/envelope.ts';
import type { WireValue } from '../protocol/wire/msgpack.ts';

export interface BusSendEffect {
  readonly type: 'bus.send';
  /** Destination topic (build it with protocol/wire/topics.ts). */
  readonly topic: string;
  /** Envelope message type, e.g. `demo.heard`. */
  readonly msgType: string;
  readonly body: WireValue;
  readonly qos?: Qos;
  readonly retain?: boolean;
  readonly replyTo?: string;
  readonly corr?: string;
}

export interface BusSubscribeEffect {
  readonly type: 'bus.subscribe';
  readonly filter: string;
}

export interface RadioAdvertiseEffect {
  readonly type: 'radio.advertise';
  /** One payload per advertising event, round-robin (fragments of a frame). */
  readonly payloads: readonly Uint8Array[];
  readonly intervalMs: number;
  /** A fresh random link-layer address with this set (identifier rotation; AdvertiseOptions.newAddress). */
  readonly newAddress?: boolean;
}

export interface RadioStopAdvertisingEffect {
  readonly type: 'radio.stopAdvertising';
}

export interface RadioScanEffect {
  readonly type: 'radio.scan';
  /** Start (true) or stop (false) scanning; frames arrive as `radio.frame` events. */
  readonly on: boolean;
  /** Duty cycle and duplicate filtering (the Radio port's ScanOptions). */
  readonly options?: ScanOptions;
  /**
   * Deliver frames the radio reports together (one simulated instant; a
   * window's results in the windowed air) as one `radio.frames` event
   * instead of one `radio.frame` each (Android's batch scan results): far
   * fewer machine steps for a phone that scans many neighbours.
   */
  readonly batch?: boolean;
}

export interface TimerSetEffect {
  readonly type: 'timer.set';
  /** Fires `timer.<name>`; setting a name again replaces its deadline. */
  readonly name: string;
  readonly deadline: SimMillis;
}

export interface TimerCancelEffect {
  readonly type: 'timer.cancel';
  readonly name: string;
}

export interface StoreAppendEffect {
  readonly type: 'store.append';
  readonly stream: string;
  readonly record: Uint8Array;
}

/**
 * Write every blob durably (content-addressed files: a name is written once
 * and never changes, so re-writing one that exists is a no-op), and only
 * then send `announce` — e.g. a retained index that names the files, which
 * must never reach a client before the files it names can be fetched.
 */
export interface BlobPublishEffect {
  readonly type: 'blob.publish';
  readonly blobs: readonly { readonly name: string; readonly bytes: Uint8Array }[];
  readonly announce: BusSendEffect;
}

export interface LogEffect {
  readonly type: 'log';
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly msg: string;
  readonly fields?: Readonly<Record<string, WireValue>>;
}

export type Effect =
  | BusSendEffect
  | BusSubscribeEffect
  | RadioAdvertiseEffect
  | RadioStopAdvertisingEffect
  | RadioScanEffect
  | TimerSetEffect
  | TimerCancelEffect
  | StoreAppendEffect
  | BlobPublishEffect
  | LogEffect;

export type EffectType = Effect['type'];

/** Context fields every machine run by the host keeps (deadlines by timer name). */
export interface TimedContext {
  readonly timers: Readonly<Record<string, SimMillis>>;
}

// ---------------------------------------------------------------- events in

/** First event of a fresh actor. */
export interface HostStartEvent {
  readonly type: 'host.start';
  readonly at: SimMillis;
}

/**
 * Sent after a snapshot was restored (timers already re-armed from
 * `context.timers`): the machine re-emits whatever live adapter state it
 * needs (advertising, scanning, subscriptions), which a snapshot cannot hold.
 */
export interface HostResumeEvent {
  readonly type: 'host.resume';
  readonly at: SimMillis;
}

/** Operator request to stop: the machine may flush and should stop its radio. */
export interface HostStopEvent {
  readonly type: 'host.stop';
  readonly at: SimMillis;
}

export interface RadioFrameEvent {
  readonly type: 'radio.frame';
  readonly at: SimMillis;
  readonly frame: ReceivedFrame;
}

export interface TimerEvent<N extends string = string> {
  readonly type: `timer.${N}`;
  readonly at: SimMillis;
}

export interface MessageEvent<T extends string = string, B = WireValue> {
  readonly type: `msg.${T}`;
  readonly at: SimMillis;
  readonly envelope: Envelope;
  /** The body, checked by the message type's decoder. */
  readonly body: B;
}

/** Frames reported together (RadioScanEffect.batch), in the order the radio reported them; `at` is when they were handed over. */
export interface RadioFramesEvent {
  readonly type: 'radio.frames';
  readonly at: SimMillis;
  readonly frames: readonly ReceivedFrame[];
}

export type HostEvent = HostStartEvent | HostResumeEvent | HostStopEvent | RadioFrameEvent | RadioFramesEvent;

// ---------------------------------------------------------------- helpers

export function timerSet(name: string, deadline: SimMillis): TimerSetEffect {
  return { type: 'timer.set', name, deadline };
}

/** Context update that records a deadline (pair it with `timerSet`). */
export function withTimer(timers: Readonly<Record<string, SimMillis>>, name: string, deadline: SimMillis): Record<string, SimMillis> {
  return { ...timers, [name]: deadline };
}

/** Context update that forgets a fired or cancelled timer. */
export function withoutTimer(timers: Readonly<Record<string, SimMillis>>, name: string): Record<string, SimMillis> {
  const next = { ...timers };
  delete next[name];
  return next;
}

/** Context update for a `timer.<name>` event: the timer has fired, forget it. */
export function withoutFiredTimer(timers: Readonly<Record<string, SimMillis>>, eventType: string): Record<string, SimMillis> {
  return eventType.startsWith('timer.') ? withoutTimer(timers, eventType.slice('timer.'.length)) : { ...timers };
}
