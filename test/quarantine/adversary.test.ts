/**
 * Adversary machine (issue 3 "Adversaries"): pure transitions of each kind —
 * replay captures then re-advertises captured tokens, forge mints tokens that
 * fail only the HMAC, flood emits bounded garbage sets, relay's home half
 * sends captured tokens to the away half, which re-advertises them after the
 * delay — plus stop and resume.
 */
import { createActor } from 'xstate';
import { describe, expect, it } from 'vitest';
import type { Effect, RadioAdvertiseEffect } from '../../actors/effects.ts';
import { createAdversaryMachine, initialAdversaryContext, type AdversaryEvent, type AdversaryInput } from '../../actors/quarantine/adversary.ts';
import { misuseField } from '../support/misuse.ts';
import { adversaryRelayCodec, captureToken } from '../../actors/quarantine/adversary-payloads.ts';
import { createSmartBeaconMachine } from '../../actors/quarantine/beacon.ts';
import { parseFernetKey } from '../../protocol/beacon/fernet.ts';
import { verifyPresenceToken } from '../../protocol/beacon/presence-token.ts';
import { nobleSuite } from '../../protocol/crypto/noble.ts';
import { createReassembly } from '../../protocol/wire/framing.ts';
import type { Envelope } from '../../protocol/wire/envelope.ts';

const T0 = 1_767_225_600_000;
const KEY = new Uint8Array(32).map((_, i) => i + 1);
const machine = createAdversaryMachine({ crypto: nobleSuite });

function start(kind: AdversaryInput['kind'], extra: Partial<AdversaryInput> = {}) {
  const input: AdversaryInput = { id: `a-${kind}`, kind, seed: new Uint8Array(32).fill(3), advertisingIntervalMs: 100, tickMs: 60_000, ...extra };
  const actor = createActor(machine, { input });
  const effects: Effect[] = [];
  actor.on('*', (e: Effect) => effects.push(e));
  actor.start();
  actor.send({ type: 'host.start', at: T0 });
  const send = (e: AdversaryEvent): Effect[] => {
    effects.length = 0;
    actor.send(e);
    return [...effects];
  };
  return { actor, send };
}

/** Fragments of a real beacon token minted at `at`. */
function beaconFragments(at: number): readonly Uint8Array[] {
  const beacon = createActor(createSmartBeaconMachine({ crypto: nobleSuite }), { input: { id: 'b', seed: new Uint8Array(32).fill(5), key: KEY, advertisingIntervalMs: 1000 } });
  beacon.start();
  beacon.send({ type: 'host.start', at });
  return beacon.getSnapshot().context.fragments;
}

function hear(send: (e: AdversaryEvent) => Effect[], fragments: readonly Uint8Array[], at: number): Effect[] {
  const out: Effect[] = [];
  fragments.forEach((payload, i) => out.push(...send({ type: 'radio.frame', at: at + i, frame: { payload, rssi: -60, at: at + i, address: 'BEACON' } })));
  return out;
}

/** The token a set of advertised fragments carries. */
function tokenOf(effect: Effect | undefined): Uint8Array {
  if (effect?.type !== 'radio.advertise') throw new Error(`not an advertise: ${effect?.type}`);
  let state = createReassembly();
  for (const [i, payload] of effect.payloads.entries()) {
    const step = captureToken(state, { payload, rssi: -50, at: T0 + i, address: 'X' });
    state = step.reassembly;
    if (step.token !== undefined) return step.token;
  }
  throw new Error('no token in the advertised set');
}

const verify = (token: Uint8Array, atMs: number, ttlS = 420) => verifyPresenceToken(nobleSuite, parseFernetKey(KEY), token, { now: Math.floor(atMs / 1000), ttlS });

describe('adversary machine', () => {
  it('replay: captures beacon tokens while scanning, ignores frames when not, replays them round-robin — expired by then', () => {
    const { actor, send } = start('replay');
    expect(send({ type: 'adversary.capture', at: T0, on: true })).toEqual([{ type: 'radio.scan', on: true }]);
    hear(send, beaconFragments(T0), T0 + 10);
    hear(send, beaconFragments(T0 + 60_000), T0 + 60_010);
    hear(send, beaconFragments(T0), T0 + 70_000); // a repeat is captured once
    expect(actor.getSnapshot().context.captured).toHaveLength(2);
    expect(send({ type: 'adversary.capture', at: T0 + 100_000, on: false })).toEqual([{ type: 'radio.scan', on: false }]);
    hear(send, beaconFragments(T0 + 120_000), T0 + 120_010);
    expect(actor.getSnapshot().context.counters.tokensCaptured).toBe(2);

    const later = T0 + 40 * 60_000;
    const first = send({ type: 'adversary.attack', at: later, on: true });
    expect(first.map((e) => e.type)).toEqual(['radio.advertise', 'timer.set']);
    const a = tokenOf(first[0]);
    expect(verify(a, T0)).toMatchObject({ ok: true }); // a genuine token…
    expect(verify(a, later)).toMatchObject({ ok: false, reason: 'expired' }); // …but stale when replayed
    const b = tokenOf(send({ type: 'timer.tick', at: later + 60_000 })[0]);
    const c = tokenOf(send({ type: 'timer.tick', at: later + 120_000 })[0]);
    expect(b).not.toEqual(a);
    expect(c).toEqual(a);
    expect(send({ type: 'adversary.attack', at: later + 130_000, on: false })).toEqual([{ type: 'timer.cancel', name: 'tick' }, { type: 'radio.stopAdvertising' }]);
    expect(actor.getSnapshot().context.timers).toEqual({});
  });

  it('replay with nothing captured stays silent but keeps ticking', () => {
    const { send } = start('replay');
    expect(send({ type: 'adversary.attack', at: T0, on: true }).map((e) => e.type)).toEqual(['timer.set']);
  });

  it('forge: a fresh well-formed token per tick under a wrong key — bad-hmac, never expired', () => {
    const { actor, send } = start('forge');
    const first = send({ type: 'adversary.attack', at: T0, on: true });
    const t1 = tokenOf(first[0]);
    expect(verify(t1, T0)).toMatchObject({ ok: false, reason: 'bad-hmac' });
    const t2 = tokenOf(send({ type: 'timer.tick', at: T0 + 60_000 })[0]);
    expect(t2).not.toEqual(t1);
    expect(verify(t2, T0 + 60_000)).toMatchObject({ ok: false, reason: 'bad-hmac' });
    expect(send({ type: 'timer.tick', at: T0 + 1000 })).toEqual([]); // stale firing
    expect(actor.getSnapshot().context.counters.tokensForged).toBe(2);
  });

  it('flood: a new set of fake frames, orphan fragments and garbage every tick; host.resume re-advertises it', () => {
    const { actor, send } = start('flood', { tickMs: 5000, advertisingIntervalMs: 20 });
    const first = send({ type: 'adversary.attack', at: T0, on: true });
    const adv = first[0] as RadioAdvertiseEffect;
    expect(adv).toMatchObject({ type: 'radio.advertise', intervalMs: 20 });
    expect(adv.payloads.length).toBe(4 * 5 + 20 + 20);
    expect(adv.payloads.every((p) => p.length > 5 && p.length <= 24)).toBe(true);
    const next = send({ type: 'timer.tick', at: T0 + 5000 })[0] as RadioAdvertiseEffect;
    expect(next.payloads[0]).not.toEqual(adv.payloads[0]);
    expect(send({ type: 'host.resume', at: T0 + 6000 })).toEqual([{ type: 'radio.advertise', payloads: next.payloads, intervalMs: 20 }]);
    expect(actor.getSnapshot().context.counters).toMatchObject({ floodSets: 2, floodPayloads: 120 });
  });

  it('relay: the home half sends each captured token to the away half, which advertises it after the delay', () => {
    const home = start('relay-capture', { relay: { peerTopic: 'tc/v1/adversary/away/inbox' } });
    home.send({ type: 'adversary.capture', at: T0, on: true });
    expect(home.send({ type: 'adversary.attack', at: T0, on: true })).toEqual([]);
    const sent = hear(home.send, beaconFragments(T0), T0 + 5);
    expect(sent).toHaveLength(1);
    const msg = sent[0];
    if (msg?.type !== 'bus.send') throw new Error('expected bus.send');
    expect(msg).toMatchObject({ topic: 'tc/v1/adversary/away/inbox', msgType: 'adversary.relay' });
    const body = adversaryRelayCodec.decode(msg.body);
    if (!body.ok) throw new Error(body.detail);

    const away = start('relay-advertise', { relay: { delayMs: 2000 } });
    const relayed = (at: number): AdversaryEvent => ({ type: 'msg.adversary.relay', at, envelope: {} as Envelope, body: body.value });
    expect(away.send(relayed(T0 + 10))).toEqual([]); // not attacking: dropped
    away.send({ type: 'adversary.attack', at: T0 + 20, on: true });
    expect(away.send(relayed(T0 + 100))).toEqual([{ type: 'timer.set', name: 'relay', deadline: T0 + 2100 }]);
    expect(away.send({ type: 'timer.relay', at: T0 + 2000 })).toEqual([]); // early
    const out = away.send({ type: 'timer.relay', at: T0 + 2100 });
    expect(tokenOf(out[0])).toEqual(body.value.token);
    expect(verify(tokenOf(out[0]), T0 + 2100)).toMatchObject({ ok: true }); // live: indistinguishable from presence
    expect(away.actor.getSnapshot().context.queue).toEqual([]);
  });

  it('misuse: maxCaptured below 1 is refused at creation, naming the field', () => {
    for (const bad of [0, -1, 1.5]) expect(misuseField(() => initialAdversaryContext({ id: 'a', kind: 'replay', seed: new Uint8Array(32), advertisingIntervalMs: 100, tickMs: 60_000, maxCaptured: bad }))).toBe('input.maxCaptured');
    expect(misuseField(() => initialAdversaryContext({ id: 'a', kind: 'replay', seed: new Uint8Array(32), advertisingIntervalMs: 100, tickMs: 60_000, maxCaptured: 1 }))).toBeUndefined();
  });

  it('host.stop silences the radio, cancels timers and ends', () => {
    const { actor, send } = start('forge');
    send({ type: 'adversary.capture', at: T0, on: true });
    send({ type: 'adversary.attack', at: T0, on: true });
    expect(send({ type: 'host.stop', at: T0 + 1 })).toEqual([{ type: 'timer.cancel', name: 'tick' }, { type: 'radio.stopAdvertising' }, { type: 'radio.scan', on: false }]);
    expect(actor.getSnapshot().status).toBe('done');
  });
});
