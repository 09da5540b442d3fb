/**
 * SmartBeacon machine: pure transitions (exact effects, tokens verify,
 * fragments reassemble), power loss / power-on, clock sync, and model-based
 * paths with persist → restore (advertising iff powered).
 */
import { createActor } from 'xstate';
import { describe, expect, it } from 'vitest';
import type { Effect } from '../../actors/effects.ts';
import {
  PRESENCE_FRAME_KIND_V1,
  createSmartBeaconMachine,
  encodePresenceFrame,
  presenceFrameToken,
  type SmartBeaconContext,
  type SmartBeaconEvent,
  type SmartBeaconInput,
} from '../../actors/quarantine/beacon.ts';
import { MisuseError } from '../../protocol/errors.ts';
import { parseFernetKey } from '../../protocol/beacon/fernet.ts';
import { verifyPresenceToken } from '../../protocol/beacon/presence-token.ts';
import { nobleSuite } from '../../protocol/crypto/noble.ts';
import { DEFAULT_FRAGMENT_BUDGET_BYTES, createReassembly, reassemble } from '../../protocol/wire/framing.ts';
import { exploreModel } from '../support/model.ts';

const T0 = 1_767_225_600_000;
const KEY = new Uint8Array(32).map((_, i) => i + 1);
const input: SmartBeaconInput = { id: 'b0', seed: new Uint8Array(32).fill(9), key: KEY, advertisingIntervalMs: 250 };
const machine = createSmartBeaconMachine({ crypto: nobleSuite });

function start(extra: Partial<SmartBeaconInput> = {}) {
  const actor = createActor(machine, { input: { ...input, ...extra } });
  const effects: Effect[] = [];
  actor.on('*', (e: Effect) => effects.push(e));
  actor.start();
  return { actor, effects };
}

/** Reassemble advertised fragments back to the presence token. */
function tokenOf(payloads: readonly Uint8Array[]): Uint8Array {
  let state = createReassembly();
  for (const p of payloads) {
    const step = reassemble(state, 'beacon-addr', p, T0);
    state = step.state;
    if (step.outcome.kind === 'completed') {
      const token = presenceFrameToken(step.outcome.payload);
      if (token === undefined) throw new Error('not a presence frame');
      return token;
    }
  }
  throw new Error('fragments did not complete a frame');
}

const verify = (token: Uint8Array, nowS: number) => verifyPresenceToken(nobleSuite, parseFernetKey(KEY), token, { now: nowS, ttlS: 120 });

describe('SmartBeacon machine', () => {
  it('host.start advertises the fragments of a verifiable token and arms the period timer', () => {
    const { actor, effects } = start();
    actor.send({ type: 'host.start', at: T0 });
    const ctx = actor.getSnapshot().context;
    expect(actor.getSnapshot().value).toBe('advertising');
    expect(effects).toEqual([
      { type: 'radio.advertise', payloads: ctx.fragments, intervalMs: 250 },
      { type: 'timer.set', name: 'period', deadline: T0 + 60_000 },
    ]);
    expect(ctx.timers).toEqual({ period: T0 + 60_000 });
    for (const f of ctx.fragments) expect(f.length).toBeLessThanOrEqual(DEFAULT_FRAGMENT_BUDGET_BYTES);
    expect(ctx.fragments.length).toBeGreaterThan(1);
    const token = tokenOf(ctx.fragments);
    expect(token).toEqual(ctx.token);
    expect(verify(token, T0 / 1000)).toEqual({ ok: true, value: { timestamp: T0 / 1000 } });
  });

  it('every period mints a new token (fresh IV, new frame id) stamped with the period start', () => {
    const { actor, effects } = start();
    actor.send({ type: 'host.start', at: T0 });
    const first = actor.getSnapshot().context;
    effects.length = 0;
    actor.send({ type: 'timer.period', at: T0 + 60_000 });
    const second = actor.getSnapshot().context;
    expect(second.frameId).toBe(first.frameId + 1);
    expect(second.token).not.toEqual(first.token);
    expect(verify(tokenOf(second.fragments), T0 / 1000 + 60)).toEqual({ ok: true, value: { timestamp: T0 / 1000 + 60 } });
    expect(effects).toEqual([
      { type: 'radio.advertise', payloads: second.fragments, intervalMs: 250 },
      { type: 'timer.set', name: 'period', deadline: T0 + 120_000 },
    ]);
  });

  it('uses its clock offset (input or beacon.sync) for the token timestamp', () => {
    const { actor } = start({ clockOffsetMs: -90_000, periodMs: 30_000 });
    actor.send({ type: 'host.start', at: T0 });
    expect(verify(actor.getSnapshot().context.token, T0 / 1000)).toMatchObject({ ok: true, value: { timestamp: T0 / 1000 - 90 } });
    actor.send({ type: 'beacon.sync', at: T0 + 1, offsetMs: 2_500 });
    actor.send({ type: 'timer.period', at: T0 + 30_000 });
    expect(actor.getSnapshot().context.timers).toEqual({ period: T0 + 60_000 });
    expect(verify(actor.getSnapshot().context.token, T0 / 1000 + 32)).toMatchObject({ ok: true, value: { timestamp: T0 / 1000 + 32 } });
    actor.send({ type: 'beacon.sync', at: T0 + 2, offsetMs: Number.NaN });
    expect(actor.getSnapshot().context.clockOffsetMs).toBe(2_500);
  });

  it('stops advertising on power loss and resumes with a fresh token on power-on', () => {
    const { actor, effects } = start();
    actor.send({ type: 'host.start', at: T0 });
    const before = actor.getSnapshot().context.token;
    effects.length = 0;
    actor.send({ type: 'beacon.power', at: T0 + 10_000, on: false });
    expect(actor.getSnapshot().value).toBe('off');
    expect(effects).toEqual([{ type: 'radio.stopAdvertising' }, { type: 'timer.cancel', name: 'period' }]);
    expect(actor.getSnapshot().context.timers).toEqual({});
    effects.length = 0;
    actor.send({ type: 'timer.period', at: T0 + 60_000 }); // a late firing of the cancelled timer
    actor.send({ type: 'host.resume', at: T0 + 60_001 });
    actor.send({ type: 'beacon.power', at: T0 + 60_002, on: false });
    expect(effects).toEqual([]);
    actor.send({ type: 'beacon.power', at: T0 + 100_000, on: true });
    const ctx = actor.getSnapshot().context;
    expect(actor.getSnapshot().value).toBe('advertising');
    expect(ctx.token).not.toEqual(before);
    expect(effects).toEqual([
      { type: 'radio.advertise', payloads: ctx.fragments, intervalMs: 250 },
      { type: 'timer.set', name: 'period', deadline: T0 + 160_000 },
    ]);
  });

  it('host.resume re-advertises the same fragments; host.stop silences and cancels', () => {
    const { actor, effects } = start();
    actor.send({ type: 'host.start', at: T0 });
    const { fragments } = actor.getSnapshot().context;
    effects.length = 0;
    actor.send({ type: 'host.resume', at: T0 + 5 });
    expect(effects).toEqual([{ type: 'radio.advertise', payloads: fragments, intervalMs: 250 }]);
    effects.length = 0;
    actor.send({ type: 'host.stop', at: T0 + 6 });
    expect(effects).toEqual([{ type: 'radio.stopAdvertising' }, { type: 'timer.cancel', name: 'period' }]);
    expect(actor.getSnapshot().status).toBe('done');
  });

  it('is deterministic from its seed; the frame kind byte marks presence frames', () => {
    const run = (seed: Uint8Array) => {
      const { actor } = start({ seed });
      actor.send({ type: 'host.start', at: T0 });
      return actor.getSnapshot().context.fragments;
    };
    expect(run(new Uint8Array(32).fill(1))).toEqual(run(new Uint8Array(32).fill(1)));
    expect(run(new Uint8Array(32).fill(1))).not.toEqual(run(new Uint8Array(32).fill(2)));
    expect(encodePresenceFrame(new Uint8Array([0x80, 1]))).toEqual(new Uint8Array([PRESENCE_FRAME_KIND_V1, 0x80, 1]));
    expect(presenceFrameToken(new Uint8Array([0x01, 0x80, 1]))).toBeUndefined();
    expect(presenceFrameToken(new Uint8Array([PRESENCE_FRAME_KIND_V1]))).toBeUndefined();
  });

  it('rejects a key that is not 32 bytes at creation', () => {
    const actor = createActor(machine, { input: { ...input, key: new Uint8Array(16) } });
    const errors: unknown[] = [];
    actor.subscribe({ error: (e: unknown) => errors.push(e) });
    actor.start();
    expect(actor.getSnapshot().status).toBe('error');
    expect(errors[0]).toBeInstanceOf(MisuseError);
  });

  it('model-based: every state reached; advertising iff powered; a period deadline pending iff advertising', () => {
    let advertising = false;
    const reached = exploreModel<SmartBeaconContext, SmartBeaconEvent>(machine, {
      input,
      events: [
        { type: 'host.start', at: T0 },
        { type: 'timer.period', at: T0 + 60_000 },
        { type: 'beacon.power', at: T0 + 70_000, on: false },
        { type: 'beacon.power', at: T0 + 80_000, on: true },
        { type: 'beacon.sync', at: T0 + 1, offsetMs: 1500 },
        { type: 'host.resume', at: T0 + 2 },
        { type: 'host.stop', at: T0 + 3 },
      ],
      invariant: ({ state, context, event, effects }) => {
        if (context.tokensMinted === 0) advertising = false; // a new path (nothing advertised yet)
        for (const e of effects) {
          if (e.type === 'radio.advertise') {
            advertising = true;
            expect(e.payloads).toEqual(context.fragments);
            expect(verify(tokenOf(e.payloads), ((event as SmartBeaconEvent).at + context.clockOffsetMs) / 1000).ok).toBe(true);
          }
          if (e.type === 'radio.stopAdvertising') advertising = false;
        }
        expect(advertising).toBe(state === 'advertising');
        expect(context.timers['period'] !== undefined).toBe(state === 'advertising');
      },
    });
    expect([...reached].sort()).toEqual(['"advertising"', '"idle"', '"off"', '"stopped"']);
  });
});
