/**
 * Adversary machine, model-based (issue 3 "Adversaries"; DESIGN.md: every
 * machine through xstate/graph paths, including persist → restore). For each
 * kind, test/support/model.ts walks the shortest path to every abstract state
 * and then sends every event of the alphabet once from each (so self-loops
 * such as host.resume or a second tick are exercised too), and the machine's
 * documented contract (actors/quarantine/adversary.ts header) is checked at
 * every step:
 * - idle and stopped are inert; after host.stop the radio is off, no timer is
 *   armed and nothing is queued;
 * - the radio mirrors the context: radio.scan on every change of `scanning`,
 *   radio.advertise exactly when a new payload set replaces the old one (and
 *   on host.resume), only while attacking; radio.stopAdvertising when it ends;
 * - every timer.set deadline is ≥ event.at and recorded in context.timers,
 *   every other change of context.timers is a timer.cancel or the timer firing;
 * - captured tokens, the relay queue, the payload set and reassembly stay
 *   within the configured limits;
 * - replay advertises only tokens captured before the step, forge only tokens
 *   that fail the household key's HMAC (fresh, so the reason is bad-hmac),
 *   flood exactly the configured mix per set, relay-capture sends every newly
 *   captured token to its peer, relay-advertise only a relayed token once due.
 */
import { createActor } from 'xstate';
import { describe, expect, it } from 'vitest';
import type { BusSendEffect, RadioAdvertiseEffect, TimerCancelEffect, TimerSetEffect } from '../../actors/effects.ts';
import {
  createAdversaryMachine,
  type AdversaryContext,
  type AdversaryEvent,
  type AdversaryInput,
  type AdversaryKind,
} from '../../actors/quarantine/adversary.ts';
import { adversaryRelayCodec, type FloodMix } from '../../actors/quarantine/adversary-payloads.ts';
import { createSmartBeaconMachine, presenceFrameToken } from '../../actors/quarantine/beacon.ts';
import { FERNET_MIN_TOKEN_BYTES, parseFernetKey } from '../../protocol/beacon/fernet.ts';
import { verifyPresenceToken } from '../../protocol/beacon/presence-token.ts';
import {
  DEFAULT_FRAGMENT_BUDGET_BYTES,
  FRAGMENT_HEADER_BYTES,
  MAX_FRAGMENT_BUDGET_BYTES,
  createReassembly,
  fragmentCount,
  reassemble,
  type ReassemblyLimits,
} from '../../protocol/wire/framing.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { exploreModel, type StepView } from '../support/model.ts';

const T0 = 1_767_225_600_000;
const KEY = new Uint8Array(32).map((_, i) => i + 1);
const HOUSEHOLD_KEY = parseFernetKey(KEY);
const TICK_MS = 60_000;
const RELAY_DELAY_MS = 1_000;
const MAX_CAPTURED = 2;
const PEER = 'tc/v1/adversary/adv-relay-advertise/inbox';
const FLOOD: FloodMix = { fakeTokens: 2, orphans: 3, garbage: 3 };
const REASSEMBLY: ReassemblyLimits = { expiryMs: 10_000, maxPendingFrames: 2, maxPendingBytes: 256, maxCompletedRemembered: 4 };
const BUDGET = DEFAULT_FRAGMENT_BUDGET_BYTES;
/** Fragments of one presence frame (kind byte ‖ token) at BUDGET. */
const fragmentsOf = (token: Uint8Array): number => fragmentCount(1 + token.length, BUDGET);
/** A flood set: the fake token frames' fragments, the orphans and the garbage — nothing more. */
const FLOOD_SET = FLOOD.fakeTokens * fragmentCount(1 + FERNET_MIN_TOKEN_BYTES, BUDGET) + FLOOD.orphans + FLOOD.garbage;
const TICK_KINDS: readonly AdversaryKind[] = ['replay', 'forge', 'flood'];

const machine = createAdversaryMachine({ crypto: nodeSuite });

function inputOf(kind: AdversaryKind): AdversaryInput {
  const relay = kind === 'relay-capture' ? { relay: { peerTopic: PEER } } : kind === 'relay-advertise' ? { relay: { delayMs: RELAY_DELAY_MS } } : {};
  return {
    id: `adv-${kind}`,
    kind,
    seed: new Uint8Array(32).fill(7),
    advertisingIntervalMs: 100,
    tickMs: TICK_MS,
    budget: BUDGET,
    maxCaptured: MAX_CAPTURED,
    reassembly: REASSEMBLY,
    flood: FLOOD,
    ...relay,
  };
}

/** Three successive tokens of a real SmartBeacon (one a minute, the last a minute before T0) and the fragments it advertises for them. */
function beaconTokens(budget: number): { token: Uint8Array; fragments: readonly Uint8Array[] }[] {
  const beacon = createActor(createSmartBeaconMachine({ crypto: nodeSuite }), {
    input: { id: 'qb0', seed: new Uint8Array(32).fill(5), key: KEY, advertisingIntervalMs: 1000, budget },
  });
  beacon.start();
  const out: { token: Uint8Array; fragments: readonly Uint8Array[] }[] = [];
  for (let i = 0; i < 3; i++) {
    const at = T0 - (3 - i) * 60_000;
    beacon.send(i === 0 ? { type: 'host.start', at } : { type: 'timer.period', at });
    const { token, fragments } = beacon.getSnapshot().context;
    out.push({ token, fragments });
  }
  beacon.stop();
  return out;
}

/** Single-fragment frames (largest budget): one radio.frame completes a token. */
const SINGLE = beaconTokens(MAX_FRAGMENT_BUDGET_BYTES);
/** A legacy-budget frame: its first fragment alone stays pending in reassembly. */
const MULTI = beaconTokens(DEFAULT_FRAGMENT_BUDGET_BYTES);
const GENUINE = SINGLE.map((t) => t.token);

const frame = (payload: Uint8Array, at: number, address: string): AdversaryEvent => ({ type: 'radio.frame', at, frame: { payload, rssi: -60, at, address } });
const relayed = (token: Uint8Array, at: number): AdversaryEvent => ({
  type: 'msg.adversary.relay',
  at,
  envelope: { v: 1, type: 'adversary.relay', id: `relay-${at}`, from: 'adversary/adv-relay-capture', at, body: adversaryRelayCodec.encode({ token }) },
  body: { token },
});
const first = (list: readonly { fragments: readonly Uint8Array[] }[], i: number): Uint8Array => {
  const f = list[i]?.fragments[0];
  if (f === undefined) throw new Error(`no fragment ${i}`);
  return f;
};
const genuine = (i: number): Uint8Array => {
  const t = GENUINE[i];
  if (t === undefined) throw new Error(`no token ${i}`);
  return t;
};

/** The alphabet, in groups; each kind takes its own groups plus a foreign one it must ignore. */
const HOST: readonly AdversaryEvent[] = [
  { type: 'host.start', at: T0 },
  { type: 'host.resume', at: T0 + 5 },
  { type: 'host.stop', at: T0 + 6 },
];
const CAPTURE: readonly AdversaryEvent[] = [
  { type: 'adversary.capture', at: T0 + 1, on: true },
  { type: 'adversary.capture', at: T0 + 2, on: false },
];
const FRAMES: readonly AdversaryEvent[] = [
  frame(first(SINGLE, 0), T0 + 10, 'BE:AC:00:00:00:01'),
  frame(first(SINGLE, 1), T0 + 20, 'BE:AC:00:00:00:01'),
  frame(first(SINGLE, 2), T0 + 30, 'BE:AC:00:00:00:01'), // a third token: the oldest is forgotten (maxCaptured 2)
  frame(first(MULTI, 0), T0 + 15, 'BE:AC:00:00:00:02'), // 1 of 5 fragments: pending, never a token
  frame(new Uint8Array(BUDGET).fill(0xee), T0 + 16, 'GA:RB:AG:E0:00:00'), // not a fragment
];
const ATTACK: readonly AdversaryEvent[] = [
  { type: 'adversary.attack', at: T0 + 1_000, on: true },
  { type: 'adversary.attack', at: T0 + 2_000, on: false },
];
const TICKS: readonly AdversaryEvent[] = [
  { type: 'timer.tick', at: T0 + 1_000 + TICK_MS },
  { type: 'timer.tick', at: T0 + 1_000 + 2 * TICK_MS },
];
const RELAYS: readonly AdversaryEvent[] = [
  relayed(genuine(0), T0 + 100),
  relayed(genuine(1), T0 + 200),
  relayed(genuine(2), T0 + 300), // a third one overflows the queue (maxCaptured 2)
  { type: 'timer.relay', at: T0 + 100 + RELAY_DELAY_MS },
  { type: 'timer.relay', at: T0 + 250 + RELAY_DELAY_MS }, // the second is due, the third is not
  { type: 'timer.relay', at: T0 + 300 + RELAY_DELAY_MS },
];
const FOREIGN_RELAY: readonly AdversaryEvent[] = RELAYS.filter((_, i) => i === 0 || i === 3);

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const sameList = (a: readonly Uint8Array[], b: readonly Uint8Array[]): boolean => a.length === b.length && a.every((x, i) => hex(x) === hex(b[i] ?? new Uint8Array(0)));
const verify = (token: Uint8Array, atMs: number, ttlS = 3600) => verifyPresenceToken(nodeSuite, HOUSEHOLD_KEY, token, { now: Math.floor(atMs / 1000), ttlS });

/** The presence tokens a set of advertised payloads completes at a receiver (any reassembly rule applies: independent of adversary-payloads.ts). */
function tokensIn(payloads: readonly Uint8Array[]): Uint8Array[] {
  let state = createReassembly();
  const out: Uint8Array[] = [];
  payloads.forEach((payload, i) => {
    const step = reassemble(state, 'AD:VE:RS:AR:Y0:00', payload, T0 + i);
    state = step.state;
    if (step.outcome.kind !== 'completed') return;
    const token = presenceFrameToken(step.outcome.payload);
    if (token !== undefined) out.push(token);
  });
  return out;
}

/** Which beacon token (0–2) `t` is: keys tell "A then B" from "A twice". */
const which = (t: Uint8Array): number => GENUINE.findIndex((g) => hex(g) === hex(t));
const key = (value: unknown, c: AdversaryContext): string =>
  [
    JSON.stringify(value),
    `scan=${c.scanning}`,
    `attack=${c.attacking}`,
    `adv=${c.payloads.length > 0}`,
    `captured=${c.captured.map(which).join('')}`,
    `cursor=${c.cursor}`,
    `queue=${c.queue.map((q) => which(q.token)).join('')}`,
    `sent=${Math.min(2, c.counters.tokensAdvertised + c.counters.floodSets)}`,
  ].join('|');
/** The chart state and the radio flags of a key. */
const radioOf = (k: string): string => k.split('|').slice(0, 4).join('|');

/** The contract of `kind`, checked after every step; `seen` records which behaviours the walk exercised. */
function contract(kind: AdversaryKind, input: AdversaryInput, seen: Set<string>) {
  const tickKind = TICK_KINDS.includes(kind);
  const timerNames = tickKind ? ['tick'] : kind === 'relay-advertise' ? ['relay'] : [];
  return ({ state, context: c, before, event: anyEvent, effects }: StepView<AdversaryContext>): void => {
    const event = anyEvent as AdversaryEvent;
    const b = before.context;
    const running = state === 'running';

    // Idle takes host.start / host.stop only; stopped is final (takes nothing). Neither emits.
    if (before.state !== 'running') {
      expect(before.state).toBe('idle');
      expect(effects).toEqual([]);
      expect(c).toBe(b);
      expect(state).toBe(event.type === 'host.start' ? 'running' : event.type === 'host.stop' ? 'stopped' : 'idle');
      if (state === 'idle') seen.add('idle is inert');
      return;
    }
    const allowed = kind === 'relay-capture' ? ['radio.scan', 'bus.send'] : ['radio.scan', 'radio.advertise', 'radio.stopAdvertising', 'timer.set', 'timer.cancel'];
    for (const e of effects) expect(allowed, `${kind}: ${e.type} on ${event.type}`).toContain(e.type);

    // Scanning: radio.scan on every change, and again on host.resume.
    const scans = effects.filter((e) => e.type === 'radio.scan');
    const scanNow = event.type === 'host.resume' ? c.scanning : b.scanning !== c.scanning;
    expect(scans).toEqual(scanNow ? [{ type: 'radio.scan', on: c.scanning }] : []);
    if (c.scanning) expect(running).toBe(true);

    // Advertising: only while attacking; a new set is advertised once, a dropped one stopped once.
    const adverts = effects.filter((e): e is RadioAdvertiseEffect => e.type === 'radio.advertise');
    const stops = effects.filter((e) => e.type === 'radio.stopAdvertising');
    const newSet = c.payloads.length > 0 && !sameList(b.payloads, c.payloads);
    if (c.payloads.length > 0) expect(running && c.attacking).toBe(true);
    expect(adverts).toHaveLength(newSet || (event.type === 'host.resume' && c.payloads.length > 0) ? 1 : 0);
    for (const a of adverts) {
      expect(running && c.attacking).toBe(true);
      expect(sameList(a.payloads, c.payloads)).toBe(true);
      expect(a.intervalMs).toBe(input.advertisingIntervalMs);
      if (event.type === 'host.resume') seen.add('resume re-advertises');
    }
    expect(stops).toHaveLength(b.payloads.length > 0 && c.payloads.length === 0 ? 1 : 0);
    if (event.type === 'host.resume' && c.scanning) seen.add('resume re-scans');

    // Timers: deadlines never in the past, mirrored in context.timers.
    for (const e of effects) {
      if (e.type === 'timer.set') {
        expect(e.deadline).toBeGreaterThanOrEqual(event.at);
        expect(c.timers[e.name]).toBe(e.deadline);
      }
      if (e.type === 'timer.cancel') {
        expect(b.timers[e.name]).toBeTypeOf('number');
        expect(c.timers[e.name]).toBeUndefined();
      }
    }
    for (const name of new Set([...Object.keys(b.timers), ...Object.keys(c.timers)])) {
      expect(timerNames).toContain(name);
      if (b.timers[name] === c.timers[name]) continue;
      if (c.timers[name] !== undefined) expect(effects).toContainEqual({ type: 'timer.set', name, deadline: c.timers[name] } satisfies TimerSetEffect);
      else if (event.type !== `timer.${name}`) expect(effects).toContainEqual({ type: 'timer.cancel', name } satisfies TimerCancelEffect);
    }
    if (tickKind) expect(c.timers['tick'] !== undefined).toBe(running && c.attacking);
    if (kind === 'relay-advertise') expect(c.timers['relay']).toBe(c.queue[0]?.due);

    // After host.stop: radio off, nothing armed, nothing queued.
    if (state === 'stopped') {
      expect(c).toMatchObject({ scanning: false, attacking: false, payloads: [], queue: [], timers: {} });
      seen.add('stopped');
    }

    // Bounded.
    expect(c.captured.length).toBeLessThanOrEqual(MAX_CAPTURED);
    expect(c.queue.length).toBeLessThanOrEqual(MAX_CAPTURED);
    expect(c.cursor).toBeLessThan(Math.max(1, c.captured.length));
    expect(c.reassembly.pendingFrames).toBeLessThanOrEqual(REASSEMBLY.maxPendingFrames);
    expect(c.reassembly.pendingBytes).toBeLessThanOrEqual(REASSEMBLY.maxPendingBytes);
    expect(c.reassembly.completed.length).toBeLessThanOrEqual(REASSEMBLY.maxCompletedRemembered);
    for (const p of c.payloads) expect(p.length).toBeGreaterThan(FRAGMENT_HEADER_BYTES);
    for (const p of c.payloads) expect(p.length).toBeLessThanOrEqual(BUDGET);
    if (c.payloads.length > 0 && kind !== 'flood') {
      const tokens = tokensIn(c.payloads);
      expect(tokens).toHaveLength(1);
      expect(c.payloads).toHaveLength(fragmentsOf(tokens[0] ?? new Uint8Array(0)));
    }
    if (b.captured.length === MAX_CAPTURED && c.counters.tokensCaptured > b.counters.tokensCaptured) seen.add('oldest capture forgotten');
    if (b.queue.length === MAX_CAPTURED && event.type === 'msg.adversary.relay') seen.add('oldest relayed token dropped');

    // Events of other kinds change nothing.
    const takes = { 'msg.adversary.relay': kind === 'relay-advertise', 'timer.relay': kind === 'relay-advertise', 'timer.tick': tickKind } as const;
    if (event.type in takes && !takes[event.type as keyof typeof takes]) expect(c).toBe(b);

    // Capture: only while scanning, only genuine beacon tokens, each once.
    if (event.type === 'radio.frame' && !b.scanning) expect(c).toBe(b);
    if (event.type !== 'radio.frame') expect(c.captured).toBe(b.captured);
    const fresh = c.captured.filter((t) => !b.captured.some((o) => hex(o) === hex(t)));
    expect(c.counters.tokensCaptured - b.counters.tokensCaptured).toBe(fresh.length);
    expect(new Set(c.captured.map(hex)).size).toBe(c.captured.length);
    for (const t of c.captured) expect(GENUINE.map(hex)).toContain(hex(t));

    // What each kind puts on the air or the bus.
    const token = adverts.length > 0 && event.type !== 'host.resume' ? tokensIn(adverts[0]?.payloads ?? [])[0] : undefined;
    switch (kind) {
      case 'replay':
        if (token !== undefined) {
          expect(b.captured.map(hex), 'replays only tokens captured earlier').toContain(hex(token));
          expect(hex(token), 'round-robin over the captured tokens').toBe(hex(b.captured[b.cursor % b.captured.length] ?? new Uint8Array(0)));
          expect(c.cursor).toBe((b.cursor + 1) % b.captured.length);
          expect(verify(token, event.at)).toMatchObject({ ok: true }); // a genuine token (fresh enough here), replayed
          expect(c.counters.tokensAdvertised).toBe(b.counters.tokensAdvertised + 1);
          seen.add(`replay on ${event.type}`);
        }
        break;
      case 'forge':
        if (token !== undefined) {
          // Minted for this very second (ttl 0 passes the expiry check) and well-formed: only the key is wrong.
          expect(verify(token, event.at, 0)).toMatchObject({ ok: false, reason: 'bad-hmac' });
          expect(c.counters.tokensForged).toBe(b.counters.tokensForged + 1);
          seen.add(`forge on ${event.type}`);
        }
        break;
      case 'flood':
        if (adverts.length > 0 && event.type !== 'host.resume') {
          expect(c.payloads).toHaveLength(FLOOD_SET);
          const fakes = tokensIn(c.payloads);
          expect(fakes).toHaveLength(FLOOD.fakeTokens);
          for (const f of fakes) expect(verify(f, event.at).ok).toBe(false);
          expect(c.counters.floodSets).toBe(b.counters.floodSets + 1);
          seen.add(`flood on ${event.type}`);
        }
        expect(c.payloads.length === 0 || c.payloads.length === FLOOD_SET).toBe(true);
        expect(c.counters.floodPayloads).toBe(c.counters.floodSets * FLOOD_SET);
        break;
      case 'relay-capture': {
        expect(c.attacking).toBe(false);
        const sends = effects.filter((e): e is BusSendEffect => e.type === 'bus.send');
        expect(sends).toHaveLength(fresh.length);
        for (const [i, s] of sends.entries()) {
          expect(s).toMatchObject({ topic: PEER, msgType: 'adversary.relay', qos: 1 });
          const body = adversaryRelayCodec.decode(s.body);
          if (!body.ok) throw new Error(body.detail);
          expect(hex(body.value.token)).toBe(hex(fresh[i] ?? new Uint8Array(0)));
          seen.add('relayed to the away half');
        }
        expect(c.counters.tokensRelayed).toBe(c.counters.tokensCaptured);
        break;
      }
      case 'relay-advertise': {
        if (event.type === 'msg.adversary.relay') {
          // Queued while attacking (the oldest dropped beyond maxCaptured), dropped otherwise.
          const entry = (q: { token: Uint8Array; due: number }): string => `${hex(q.token)}@${q.due}`;
          const queued = [...b.queue.slice(Math.max(0, b.queue.length - MAX_CAPTURED + 1)), { token: event.body.token, due: event.at + RELAY_DELAY_MS }];
          expect(c.queue.map(entry)).toEqual((b.attacking ? queued : b.queue).map(entry));
        }
        if (token === undefined) break;
        expect(event.type).toBe('timer.relay');
        const due = b.queue.filter((q) => q.due <= event.at);
        expect(hex(token), 'the newest relayed token now due').toBe(hex(due[due.length - 1]?.token ?? new Uint8Array(0)));
        expect(c.queue.map((q) => q.due)).toEqual(b.queue.filter((q) => q.due > event.at).map((q) => q.due));
        expect(verify(token, event.at)).toMatchObject({ ok: true }); // live: indistinguishable from presence
        seen.add('relay advertised when due');
        break;
      }
    }
  };
}

const IDLE = '"idle"|scan=false|attack=false|adv=false';
const STOPPED = '"stopped"|scan=false|attack=false|adv=false';
const running = (scan: boolean, attack: boolean, adv: boolean): string => `"running"|scan=${scan}|attack=${attack}|adv=${adv}`;
const both = (f: (scan: boolean) => string[]): string[] => [...f(false), ...f(true)];

/** Per kind: the reachable (chart state, scanning, attacking, advertising) combinations, and behaviours the walk must exercise. */
const CASES: readonly { kind: AdversaryKind; events: readonly AdversaryEvent[]; radio: string[]; behaviours: string[] }[] = [
  {
    kind: 'replay',
    events: [...HOST, ...CAPTURE, ...FRAMES, ...ATTACK, ...TICKS, ...FOREIGN_RELAY],
    // attacking with nothing captured yet: silent
    radio: [IDLE, STOPPED, ...both((s) => [running(s, false, false), running(s, true, false), running(s, true, true)])],
    behaviours: ['replay on adversary.attack', 'replay on timer.tick', 'oldest capture forgotten', 'resume re-advertises', 'resume re-scans', 'stopped', 'idle is inert'],
  },
  {
    kind: 'forge',
    events: [...HOST, ...CAPTURE, ...ATTACK, ...TICKS, ...FOREIGN_RELAY],
    radio: [IDLE, STOPPED, ...both((s) => [running(s, false, false), running(s, true, true)])],
    behaviours: ['forge on adversary.attack', 'forge on timer.tick', 'resume re-advertises', 'stopped', 'idle is inert'],
  },
  {
    kind: 'flood',
    events: [...HOST, ...CAPTURE, ...ATTACK, ...TICKS, ...FOREIGN_RELAY],
    radio: [IDLE, STOPPED, ...both((s) => [running(s, false, false), running(s, true, true)])],
    behaviours: ['flood on adversary.attack', 'flood on timer.tick', 'resume re-advertises', 'stopped', 'idle is inert'],
  },
  {
    kind: 'relay-capture',
    events: [...HOST, ...CAPTURE, ...FRAMES, ...ATTACK, ...TICKS.slice(0, 1), ...FOREIGN_RELAY],
    radio: [IDLE, STOPPED, running(false, false, false), running(true, false, false)],
    behaviours: ['relayed to the away half', 'oldest capture forgotten', 'resume re-scans', 'stopped', 'idle is inert'],
  },
  {
    kind: 'relay-advertise',
    events: [...HOST, ...CAPTURE, ...ATTACK, ...RELAYS, ...TICKS.slice(0, 1)],
    radio: [IDLE, STOPPED, ...both((s) => [running(s, false, false), running(s, true, false), running(s, true, true)])],
    behaviours: ['relay advertised when due', 'oldest relayed token dropped', 'resume re-advertises', 'stopped', 'idle is inert'],
  },
];

describe('adversary machine: model-based', () => {
  it.each(CASES)('$kind: every chart state and radio combination reached; contract holds at every step and across persist → restore', ({ kind, events, radio, behaviours }) => {
    const input = inputOf(kind);
    const seen = new Set<string>();
    const reached = exploreModel<AdversaryContext, AdversaryEvent>(machine, { input, events, serialize: key, everyEvent: true, invariant: contract(kind, input, seen) });
    expect(new Set([...reached].map((k) => JSON.parse(k.split('|')[0] ?? '') as unknown))).toEqual(new Set(['idle', 'running', 'stopped']));
    expect(new Set([...reached].map(radioOf))).toEqual(new Set(radio));
    for (const b of behaviours) expect(seen, b).toContain(b);
  });

  it('stopped is a final state: after host.stop the machine takes no event at all', () => {
    expect(machine.states['stopped']?.type).toBe('final');
  });
});
