/**
 * Adversaries of the quarantine extension (issue 3 "Adversaries"): one
 * parameterised machine, `createAdversaryMachine({ crypto })`, role
 * `adversary`, whose `input.kind` chooses the attack. The city driver
 * (services/city/quarantine/) places the device and switches it with
 * `adversary.capture { on }` (scan and capture presence tokens) and
 * `adversary.attack { on }` (advertise).
 *
 * - `replay`: captures a patient's beacon tokens near the home earlier, later
 *   re-advertises them round-robin (one per tick) next to the away phone.
 *   Expected: the app backend rejects them (expired, or replay by hash).
 * - `forge`: mints a well-formed presence token for the current time under a
 *   random key (drawn from its DRBG) every tick. Expected: bad-hmac.
 * - `flood`: a fresh set of fake token frames, orphan fragments and garbage
 *   every tick, advertised at a high rate. Expected: the phone stays bounded.
 * - `relay-capture` (relay, home half): scans at home; every captured token
 *   goes to the away half as `adversary.relay` on `relay.peerTopic`.
 * - `relay-advertise` (relay, away half): advertises each relayed token
 *   `relay.delayMs` after it arrives, next to the away phone. The seed design
 *   cannot tell this from presence.
 *
 * Chart: idle --host.start--> running --host.stop--> stopped (final); scanning
 * and attacking are flags in context (radio.scan / radio.advertise emitted on
 * change, re-emitted on host.resume). Timers: `tick` (replay, forge, flood)
 * and `relay` (relay-advertise), deadlines in context.timers. Pure: reducers
 * return the context patch and the effects; the machine only routes.
 */
import { enqueueActions, setup } from 'xstate';
import type { Effect, HostEvent, MessageEvent, RadioFrameEvent, TimerEvent } from '../effects.ts';
import { timerSet, withTimer, withoutTimer } from '../effects.ts';
import type { SimMillis } from '../ports.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import { drbgInit, type DrbgState } from '../../protocol/crypto/drbg.ts';
import { ensure } from '../../protocol/errors.ts';
import { DEFAULT_FRAGMENT_BUDGET_BYTES, createReassembly, nextFrameId, type ReassemblyLimits, type ReassemblyState } from '../../protocol/wire/framing.ts';
import {
  DEFAULT_FLOOD_MIX,
  adversaryRelayCodec,
  captureToken,
  floodPayloads,
  forgeToken,
  forgerKey,
  sameBytes,
  tokenFragments,
  type AdversaryRelay,
  type FloodMix,
} from './adversary-payloads.ts';

export { adversaryRelayCodec, type AdversaryRelay, type FloodMix } from './adversary-payloads.ts';

export const ADVERSARY_KINDS = ['replay', 'forge', 'flood', 'relay-capture', 'relay-advertise'] as const;
export type AdversaryKind = (typeof ADVERSARY_KINDS)[number];
export const DEFAULT_MAX_CAPTURED = 64;

export interface AdversaryInput {
  readonly id: string;
  readonly kind: AdversaryKind;
  /** DRBG seed (≥ 16 bytes): forged keys and IVs, flood bytes. */
  readonly seed: Uint8Array;
  readonly advertisingIntervalMs: number;
  /** replay: next captured token; forge: next forged token; flood: next payload set. */
  readonly tickMs: number;
  readonly budget?: number;
  readonly reassembly?: Partial<ReassemblyLimits>;
  /** Captured tokens kept (oldest forgotten), and relayed tokens queued. */
  readonly maxCaptured?: number;
  /** relay-capture: the away half's inbox; relay-advertise: the delay. */
  readonly relay?: { readonly peerTopic?: string; readonly delayMs?: number };
  readonly flood?: FloodMix;
}

export interface AdversaryDeps {
  readonly crypto: CryptoSuite;
}

export interface AdversaryCounters {
  readonly framesHeard: number;
  readonly tokensCaptured: number;
  readonly tokensRelayed: number;
  readonly tokensAdvertised: number;
  readonly tokensForged: number;
  readonly floodSets: number;
  readonly floodPayloads: number;
}

export interface AdversaryContext {
  readonly input: AdversaryInput;
  readonly rng: DrbgState;
  /** forge: the wrong key; empty otherwise. */
  readonly key: Uint8Array;
  readonly scanning: boolean;
  readonly attacking: boolean;
  readonly reassembly: ReassemblyState;
  /** Captured tokens, oldest first (≤ maxCaptured). */
  readonly captured: readonly Uint8Array[];
  /** replay: index of the next captured token to advertise. */
  readonly cursor: number;
  readonly frameId: number;
  /** relay-advertise: relayed tokens waiting for their delay, oldest first. */
  readonly queue: readonly { readonly token: Uint8Array; readonly due: SimMillis }[];
  /** Payload set being advertised ([] when silent). */
  readonly payloads: readonly Uint8Array[];
  readonly counters: AdversaryCounters;
  readonly timers: Readonly<Record<string, SimMillis>>;
}

export interface AdversarySwitchEvent<T extends 'adversary.capture' | 'adversary.attack'> {
  readonly type: T;
  readonly at: SimMillis;
  readonly on: boolean;
}
export type AdversaryRelayEvent = MessageEvent<'adversary.relay', AdversaryRelay>;
export type AdversaryEvent =
  | HostEvent
  | TimerEvent<'tick' | 'relay'>
  | AdversarySwitchEvent<'adversary.capture'>
  | AdversarySwitchEvent<'adversary.attack'>
  | AdversaryRelayEvent;

export interface AdversaryStep {
  readonly context: Partial<AdversaryContext>;
  readonly effects: readonly Effect[];
}

const NOTHING: AdversaryStep = { context: {}, effects: [] };
type Counters = { -readonly [K in keyof AdversaryCounters]: number };
const budgetOf = (input: AdversaryInput): number => input.budget ?? DEFAULT_FRAGMENT_BUDGET_BYTES;
const maxCaptured = (input: AdversaryInput): number => input.maxCaptured ?? DEFAULT_MAX_CAPTURED;

export function initialAdversaryContext(input: AdversaryInput): AdversaryContext {
  // ≥ 1: the capture and relay queues keep maxCaptured − 1 entries plus the newcomer.
  ensure(input.maxCaptured === undefined || (Number.isSafeInteger(input.maxCaptured) && input.maxCaptured >= 1), 'input.maxCaptured', 'must be a positive integer');
  let rng = drbgInit(input.seed);
  let key: Uint8Array = new Uint8Array(0);
  if (input.kind === 'forge') ({ key, rng } = forgerKey(rng));
  return {
    input,
    rng,
    key,
    scanning: false,
    attacking: false,
    reassembly: createReassembly(input.reassembly),
    captured: [],
    cursor: 0,
    frameId: 0,
    queue: [],
    payloads: [],
    counters: { framesHeard: 0, tokensCaptured: 0, tokensRelayed: 0, tokensAdvertised: 0, tokensForged: 0, floodSets: 0, floodPayloads: 0 },
    timers: {},
  };
}

/** Advertise `payloads` (a new frame id for a new token). */
function advertise(c: AdversaryContext, payloads: Uint8Array[], patch: Partial<AdversaryContext>): AdversaryStep {
  return { context: { ...patch, payloads }, effects: [{ type: 'radio.advertise', payloads, intervalMs: c.input.advertisingIntervalMs }] };
}

function advertiseToken(c: AdversaryContext, token: Uint8Array, counters: Counters, patch: Partial<AdversaryContext> = {}): AdversaryStep {
  const frameId = nextFrameId(c.frameId);
  counters.tokensAdvertised += 1;
  return advertise(c, tokenFragments(token, frameId, budgetOf(c.input)), { ...patch, frameId, counters });
}

/** What the attack does at `at`: on start and on every tick (replay, forge, flood). */
function attackTick(deps: AdversaryDeps, c: AdversaryContext, at: SimMillis): AdversaryStep {
  const counters: Counters = { ...c.counters };
  const tick = at + c.input.tickMs;
  const timers = withTimer(c.timers, 'tick', tick);
  let step: AdversaryStep;
  switch (c.input.kind) {
    case 'replay': {
      const token = c.captured[c.cursor % Math.max(1, c.captured.length)];
      // Nothing captured: a replayer with nothing to replay stays silent.
      if (token === undefined) return { context: { timers }, effects: [timerSet('tick', tick)] };
      step = advertiseToken(c, token, counters, { cursor: (c.cursor + 1) % c.captured.length });
      break;
    }
    case 'forge': {
      const forged = forgeToken(deps.crypto, c.key, c.rng, at);
      counters.tokensForged += 1;
      step = advertiseToken(c, forged.token, counters, { rng: forged.rng });
      break;
    }
    case 'flood': {
      const set = floodPayloads(c.rng, c.frameId, at, c.input.flood ?? DEFAULT_FLOOD_MIX, budgetOf(c.input));
      counters.floodSets += 1;
      counters.floodPayloads += set.payloads.length;
      step = advertise(c, set.payloads, { rng: set.rng, frameId: set.frameId, counters });
      break;
    }
    default:
      return NOTHING;
  }
  return { context: { ...step.context, timers }, effects: [...step.effects, timerSet('tick', tick)] };
}

function stopAttack(c: AdversaryContext): AdversaryStep {
  const effects: Effect[] = [];
  let timers = c.timers;
  for (const name of ['tick', 'relay'] as const) {
    if (timers[name] === undefined) continue;
    timers = withoutTimer(timers, name);
    effects.push({ type: 'timer.cancel', name });
  }
  if (c.payloads.length > 0) effects.push({ type: 'radio.stopAdvertising' });
  return { context: { attacking: false, payloads: [], queue: [], timers }, effects };
}

function onAttack(deps: AdversaryDeps, c: AdversaryContext, on: boolean, at: SimMillis): AdversaryStep {
  if (on === c.attacking) return NOTHING;
  if (!on) return stopAttack(c);
  if (c.input.kind === 'relay-capture') return NOTHING; // the home half only captures
  const started = { ...c, attacking: true };
  if (c.input.kind === 'relay-advertise') return { context: { attacking: true }, effects: [] };
  const step = attackTick(deps, started, at);
  return { context: { attacking: true, ...step.context }, effects: step.effects };
}

function onCapture(c: AdversaryContext, on: boolean): AdversaryStep {
  if (on === c.scanning) return NOTHING;
  return { context: { scanning: on }, effects: [{ type: 'radio.scan', on }] };
}

function onFrame(c: AdversaryContext, event: RadioFrameEvent): AdversaryStep {
  if (!c.scanning) return NOTHING;
  const counters: Counters = { ...c.counters, framesHeard: c.counters.framesHeard + 1 };
  const { reassembly, token } = captureToken(c.reassembly, event.frame);
  if (token === undefined || c.captured.some((t) => sameBytes(t, token))) return { context: { reassembly, counters }, effects: [] };
  counters.tokensCaptured += 1;
  const captured = [...c.captured.slice(Math.max(0, c.captured.length - maxCaptured(c.input) + 1)), token];
  const peer = c.input.relay?.peerTopic;
  if (c.input.kind !== 'relay-capture' || peer === undefined) return { context: { reassembly, counters, captured }, effects: [] };
  counters.tokensRelayed += 1;
  return {
    context: { reassembly, counters, captured },
    effects: [{ type: 'bus.send', topic: peer, msgType: adversaryRelayCodec.type, body: adversaryRelayCodec.encode({ token }), qos: 1 }],
  };
}

function armRelay(c: AdversaryContext, queue: AdversaryContext['queue'], timers: Readonly<Record<string, SimMillis>>): { timers: Record<string, SimMillis>; effects: Effect[] } {
  const head = queue[0];
  if (head === undefined) return { timers: { ...timers }, effects: [] };
  if (timers['relay'] === head.due) return { timers: { ...timers }, effects: [] };
  return { timers: withTimer(timers, 'relay', head.due), effects: [timerSet('relay', head.due)] };
}

function onRelayed(c: AdversaryContext, event: AdversaryRelayEvent): AdversaryStep {
  if (c.input.kind !== 'relay-advertise' || !c.attacking) return NOTHING;
  const due = event.at + (c.input.relay?.delayMs ?? 0);
  const queue = [...c.queue.slice(Math.max(0, c.queue.length - maxCaptured(c.input) + 1)), { token: event.body.token, due }];
  const armed = armRelay(c, queue, c.timers);
  return { context: { queue, timers: armed.timers }, effects: armed.effects };
}

/** `timer.relay`: advertise the newest token now due; re-arm for the next. */
function relayDue(c: AdversaryContext, at: SimMillis): AdversaryStep {
  const deadline = c.timers['relay'];
  if (deadline === undefined || at < deadline || !c.attacking) return NOTHING;
  const due = c.queue.filter((q) => q.due <= at);
  const queue = c.queue.filter((q) => q.due > at);
  const timers = withoutTimer(c.timers, 'relay');
  const armed = armRelay(c, queue, timers);
  const newest = due[due.length - 1];
  if (newest === undefined) return { context: { queue, timers: armed.timers }, effects: armed.effects };
  const step = advertiseToken(c, newest.token, { ...c.counters }, { queue, timers: armed.timers });
  return { context: step.context, effects: [...step.effects, ...armed.effects] };
}

function tickFired(deps: AdversaryDeps, c: AdversaryContext, at: SimMillis): AdversaryStep {
  const deadline = c.timers['tick'];
  if (deadline === undefined || at < deadline || !c.attacking) return NOTHING;
  return attackTick(deps, { ...c, timers: withoutTimer(c.timers, 'tick') }, at);
}

function resume(c: AdversaryContext): AdversaryStep {
  const effects: Effect[] = [];
  if (c.scanning) effects.push({ type: 'radio.scan', on: true });
  if (c.payloads.length > 0) effects.push({ type: 'radio.advertise', payloads: c.payloads, intervalMs: c.input.advertisingIntervalMs });
  return { context: {}, effects };
}

function stop(c: AdversaryContext): AdversaryStep {
  const stopped = stopAttack(c);
  const effects = [...stopped.effects, ...(c.scanning ? [{ type: 'radio.scan', on: false } as const] : [])];
  return { context: { ...stopped.context, scanning: false }, effects };
}

/** One input of a running adversary: the context patch and the effects. */
export function adversaryStep(deps: AdversaryDeps, c: AdversaryContext, event: AdversaryEvent): AdversaryStep {
  switch (event.type) {
    case 'adversary.capture':
      return onCapture(c, event.on);
    case 'adversary.attack':
      return onAttack(deps, c, event.on, event.at);
    case 'radio.frame':
      return onFrame(c, event);
    case 'msg.adversary.relay':
      return onRelayed(c, event);
    case 'timer.tick':
      return tickFired(deps, c, event.at);
    case 'timer.relay':
      return relayDue(c, event.at);
    case 'host.resume':
      return resume(c);
    case 'host.stop':
      return stop(c);
    default:
      return NOTHING;
  }
}

export function createAdversaryMachine(deps: AdversaryDeps) {
  return setup({
    types: {
      input: {} as AdversaryInput,
      context: {} as AdversaryContext,
      events: {} as AdversaryEvent,
      emitted: {} as Effect,
    },
    actions: {
      apply: enqueueActions(({ context, event, enqueue }) => {
        const step = adversaryStep(deps, context, event);
        if (Object.keys(step.context).length > 0) enqueue.assign(step.context);
        for (const effect of step.effects) enqueue.emit(effect);
      }),
    },
  }).createMachine({
    id: 'adversary',
    context: ({ input }) => initialAdversaryContext(input),
    initial: 'idle',
    states: {
      idle: {
        on: { 'host.start': { target: 'running' }, 'host.stop': { target: 'stopped' } },
      },
      running: {
        on: {
          'adversary.capture': { actions: 'apply' },
          'adversary.attack': { actions: 'apply' },
          'radio.frame': { actions: 'apply' },
          'msg.adversary.relay': { actions: 'apply' },
          'timer.tick': { actions: 'apply' },
          'timer.relay': { actions: 'apply' },
          'host.resume': { actions: 'apply' },
          'host.stop': { target: 'stopped', actions: 'apply' },
        },
      },
      stopped: { type: 'final' },
    },
  });
}

export type AdversaryMachine = ReturnType<typeof createAdversaryMachine>;
