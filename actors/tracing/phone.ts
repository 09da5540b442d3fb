/**
 * The tracing phone (issue 5): one machine for every protocol, the protocol
 * plugged in as an engine (engine.ts; gaen-engine.ts, …). Rules in
 * phone-logic.ts; this file is the chart.
 *
 *   idle ──host.start──▶ tracing ──tracing.diagnosed (valid code)──▶ uploading ──msg.keys.upload.ack──▶ reported
 *                                                                    uploading ──timer.upload, attempts used up──▶ reported (abandoned, counted)
 *   tracing | uploading | reported ──host.stop──▶ stopped (final)
 *
 * In every live state: timer.rotate (new identifiers + address),
 * timer.scanStart, radio.frames / radio.frame (observe), timer.retention
 * (expire + health tick), the key client's msg.keys.index / msg.keys.file /
 * timer.fetch (then match the new records), tracing.test (health code),
 * host.resume (re-advertise, re-scan, re-send a pending upload), and for
 * engines with a backend of their own, timer.exchange and its messages.
 * A diagnosis with a malformed code is counted and ignored (stays tracing).
 */
import { enqueueActions, setup } from 'xstate';
import type { DistributionIndex } from '../../protocol/keyserver/distribution-index.ts';
import type { FileReply, TrackingRef } from '../../protocol/keyserver/messages.ts';
import { parseUploadCode } from '../../protocol/keyserver/upload-code.ts';
import type { Effect, HostEvent, MessageEvent, TimerEvent } from '../effects.ts';
import { FETCH_TIMER, onFetchTimer, onFile, onIndex, onResume } from '../key-client/key-client-logic.ts';
import type { SimMillis } from '../ports.ts';
import type { TracingEngine } from './engine.ts';
import { applyHealthEvent } from './health-code.ts';
import {
  afterKeyStep,
  initialTracingContext,
  onDiagnosed,
  onEngineMessage,
  onExchangeTimer,
  onFrames,
  onResumeRadio,
  onRetention,
  onRotate,
  onScanStart,
  onStart,
  onUploadAck,
  onUploadTimer,
  type Step,
  type TracingDeps,
  type TracingPhoneContext,
  type TracingPhoneInput,
} from './phone-logic.ts';

export interface DiagnosedEvent {
  readonly type: 'tracing.diagnosed';
  readonly at: SimMillis;
  /** The health authority's one-time upload code (printed form). */
  readonly code: string;
  /** Start of the infectious period: contacts from here on are reported. */
  readonly infectiousFrom: SimMillis;
}

export interface TestEvent {
  readonly type: 'tracing.test';
  readonly at: SimMillis;
  readonly result: 'awaiting' | 'negative';
}

export type TracingPhoneEvent =
  | HostEvent
  | TimerEvent
  | DiagnosedEvent
  | TestEvent
  | MessageEvent<'keys.index', DistributionIndex>
  | MessageEvent<'keys.file', FileReply>
  | MessageEvent<'keys.upload.ack', TrackingRef>;

/** Live-state transitions shared by tracing, uploading and reported. */
const LIVE = {
  'timer.rotate': { actions: 'apply' },
  'timer.scanStart': { actions: 'apply' },
  'timer.retention': { actions: 'apply' },
  'radio.frames': { actions: 'apply' },
  'radio.frame': { actions: 'apply' },
  'msg.keys.index': { actions: 'apply' },
  'msg.keys.file': { actions: 'apply' },
  [`timer.${FETCH_TIMER}`]: { actions: 'apply' },
  'tracing.test': { actions: 'apply' },
  'host.resume': { actions: 'apply' },
  'timer.exchange': { actions: 'apply' },
} as const;

export function createTracingPhoneMachine<S, C>(engine: TracingEngine<S, C>, deps: TracingDeps) {
  type Ctx = TracingPhoneContext<S, C>;
  const engineMessages = new Set(engine.exchange?.messages ?? []);
  const live = { ...LIVE, ...Object.fromEntries((engine.exchange?.messages ?? []).map((type) => [`msg.${type}`, { actions: 'apply' as const }])) };
  const reduce = (c: Ctx, e: TracingPhoneEvent): Step<S, C> => {
    switch (e.type) {
      case 'host.start':
        return onStart(engine, deps, c, e.at);
      case 'host.resume': {
        const radio = onResumeRadio(c, e.at);
        const keys = onResume(radio.context.keys, e.at);
        return { context: { ...radio.context, keys: keys.context }, effects: [...radio.effects, ...keys.effects] };
      }
      case 'radio.frames':
        return onFrames(engine, deps, c, e.frames, e.at);
      case 'radio.frame':
        return onFrames(engine, deps, c, [e.frame], e.at);
      case 'tracing.diagnosed':
        return onDiagnosed(engine, deps, c, e.code, e.infectiousFrom, e.at);
      case 'tracing.test':
        return { context: { ...c, health: applyHealthEvent(c.health, { kind: e.result === 'awaiting' ? 'awaiting-test' : 'negative-test' }, e.at, c.settings.health) }, effects: [] };
      case 'msg.keys.index':
        return afterKeyStep(engine, deps, c, onIndex(c.keys, e.body, e.at), e.at);
      case 'msg.keys.file':
        return afterKeyStep(engine, deps, c, onFile(deps, c.keys, e.body, e.at), e.at, e.body.found ? e.body.bytes.length : 0);
      case 'msg.keys.upload.ack':
        return onUploadAck(c, e.body.trackingId);
      case 'host.stop':
        return { context: c, effects: [] };
      default:
        return onTimer(c, e.type, e.at);
    }
  };
  const onTimer = (c: Ctx, type: string, at: SimMillis): Step<S, C> => {
    switch (type) {
      case 'timer.rotate':
        return onRotate(engine, deps, c, type, at);
      case 'timer.scanStart':
        return onScanStart(c, type);
      case 'timer.retention':
        return onRetention(engine, c, type, at);
      case 'timer.upload':
        return onUploadTimer(c, type, at);
      case 'timer.exchange':
        return onExchangeTimer(engine, deps, c, type, at);
      case `timer.${FETCH_TIMER}`:
        return afterKeyStep(engine, deps, c, onFetchTimer(c.keys, type, at), at);
      default:
        return { context: c, effects: [] };
    }
  };
  return setup({
    types: {
      input: {} as TracingPhoneInput<C>,
      context: {} as Ctx,
      events: {} as TracingPhoneEvent,
      emitted: {} as Effect,
    },
    actions: {
      apply: enqueueActions(({ context, event, enqueue }) => {
        // The engine's own messages (exchange.messages) are msg.<type> events outside the static union.
        const type: string = event.type;
        const message = type.startsWith('msg.') && engineMessages.has(type.slice(4)) ? (event as unknown as MessageEvent) : undefined;
        const step = message !== undefined ? onEngineMessage(engine, deps, context, type.slice(4), message.body, message.at) : reduce(context, event);
        if (step.context !== context) enqueue.assign(() => step.context);
        for (const effect of step.effects) enqueue.emit(effect);
      }),
      stopRadio: enqueueActions(({ context, enqueue }) => {
        if (context.advertising !== null) enqueue.emit({ type: 'radio.stopAdvertising' });
        if (context.scanning) enqueue.emit({ type: 'radio.scan', on: false });
        enqueue.assign({ advertising: null, scanning: false });
      }),
    },
    guards: {
      validCode: ({ event }) => event.type === 'tracing.diagnosed' && parseUploadCode(event.code).ok,
      uploadPending: ({ context }) => context.upload !== null,
      uploadDone: ({ context }) => context.upload === null,
    },
  }).createMachine({
    id: `tracing-phone-${engine.protocol}`,
    context: ({ input }) => initialTracingContext(engine, deps, input),
    initial: 'idle',
    states: {
      idle: {
        on: {
          'host.start': { target: 'tracing', actions: 'apply' },
          'host.stop': { target: 'stopped' },
        },
      },
      tracing: {
        on: {
          ...live,
          'tracing.diagnosed': [{ guard: 'validCode', target: 'uploading', actions: 'apply' }, { actions: 'apply' }],
          'host.stop': { target: 'stopped', actions: 'stopRadio' },
        },
      },
      uploading: {
        always: { guard: 'uploadDone', target: 'reported' },
        on: {
          ...live,
          'msg.keys.upload.ack': { target: 'reported', actions: 'apply' },
          'timer.upload': { actions: 'apply' },
          'host.stop': { target: 'stopped', actions: 'stopRadio' },
        },
      },
      reported: {
        on: {
          ...live,
          'host.stop': { target: 'stopped', actions: 'stopRadio' },
        },
      },
      stopped: { type: 'final' },
    },
  });
}

export type TracingPhoneMachine<S, C> = ReturnType<typeof createTracingPhoneMachine<S, C>>;
