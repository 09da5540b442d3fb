/**
 * Quarantine phone machine: pure transitions (scan effects, dedupe, bounded
 * buffer, batches kept in flight until acked, re-send after the ack timeout,
 * nothing sent while offline), a flood of 10,000 frames, and model-based
 * paths with persist → restore and invariants at every step.
 */
import { createActor } from 'xstate';
import { describe, expect, it } from 'vitest';
import type { BusSendEffect, Effect, RadioFrameEvent } from '../../actors/effects.ts';
import { encodePresenceFrame } from '../../actors/quarantine/beacon.ts';
import {
  createQuarantinePhoneMachine,
  type QuarantinePhoneContext,
  type QuarantinePhoneEvent,
  type QuarantinePhoneInput,
  type TokensAckEvent,
} from '../../actors/quarantine/phone.ts';
import { parseFernetKey } from '../../protocol/beacon/fernet.ts';
import { createPresenceToken } from '../../protocol/beacon/presence-token.ts';
import { nobleSuite } from '../../protocol/crypto/noble.ts';
import { tokensForwardCodec } from '../../protocol/quarantine/messages.ts';
import { fragment } from '../../protocol/wire/framing.ts';
import { exploreModel } from '../support/model.ts';
import { misuseField } from '../support/misuse.ts';

const T0 = 1_767_225_600_000;
const KEY = parseFernetKey(new Uint8Array(32).fill(5));
const SK = new Uint8Array(32).fill(0xab);
const input: QuarantinePhoneInput = {
  id: 'p1',
  sk: SK,
  appBackendTokensTopic: 'tc/v1/app-backend/main/tokens',
  inboxTopic: 'tc/v1/phone/p1/inbox',
  maxBuffer: 4,
  flood: { maxFramesPerSourcePerWindow: 20, windowMs: 10_000, maxSources: 16 },
  reassembly: { maxPendingFrames: 16, maxPendingBytes: 4096, expiryMs: 10_000, maxCompletedRemembered: 32 },
  ackTimeoutMs: 60_000,
};
const machine = createQuarantinePhoneMachine({ crypto: nobleSuite });

const token = (n: number): Uint8Array => createPresenceToken(nobleSuite, KEY, T0 / 1000 + n, new Uint8Array(16).fill(n));
/** The fragments a beacon advertises for `token(n)` (budget 252 → a single fragment when `single`). */
const framesOf = (n: number, single = false): Uint8Array[] => fragment(encodePresenceFrame(token(n)), n & 0xffff, single ? 252 : undefined);
const frame = (payload: Uint8Array, at: number, address = 'BE:AC:00:00:00:01'): RadioFrameEvent => ({
  type: 'radio.frame', at, frame: { payload, rssi: -60, at, address },
});
const ack = (batch: number, at: number): TokensAckEvent => ({
  type: 'msg.tokens.ack', at,
  envelope: { v: 1, type: 'tokens.ack', id: `a${batch}`, from: 'app-backend/main', at, body: null },
  body: { batch, accepted: 1, rejected: 0 },
});

function start(extra: Partial<QuarantinePhoneInput> = {}) {
  const actor = createActor(machine, { input: { ...input, ...extra } });
  const effects: Effect[] = [];
  actor.on('*', (e: Effect) => effects.push(e));
  actor.start();
  actor.send({ type: 'host.start', at: T0 });
  return { actor, effects, ctx: (): QuarantinePhoneContext => actor.getSnapshot().context };
}
const hear = (send: (e: RadioFrameEvent) => void, n: number, at: number, address?: string) => {
  for (const f of framesOf(n)) send(frame(f, at, address));
};
const sends = (effects: readonly Effect[]): BusSendEffect[] => effects.filter((e): e is BusSendEffect => e.type === 'bus.send');
const decodeSend = (e: BusSendEffect) => {
  const v = tokensForwardCodec.decode(e.body);
  if (!v.ok) throw new Error(v.detail);
  return v.value;
};

describe('quarantine phone machine', () => {
  it('host.start starts scanning and arms the forward timer', () => {
    const { effects, ctx } = start();
    expect(effects).toEqual([{ type: 'radio.scan', on: true }, { type: 'timer.set', name: 'forward', deadline: T0 + 300_000 }]);
    expect(ctx().timers).toEqual({ forward: T0 + 300_000 });
  });

  it('buffers each token once, forwards it, and drops it only when its batch is acked', () => {
    const { actor, effects, ctx } = start();
    hear((e) => actor.send(e), 1, T0 + 10);
    hear((e) => actor.send(e), 1, T0 + 20, 'BE:AC:00:00:00:02'); // same token, another address
    expect(ctx().buffer).toEqual([{ token: token(1), receivedAt: T0 + 10 }]);
    expect(ctx().counters).toMatchObject({ tokensBuffered: 1, duplicates: 1 });
    effects.length = 0;
    actor.send({ type: 'timer.forward', at: T0 + 300_000 });
    expect(effects).toEqual([
      {
        type: 'bus.send', topic: input.appBackendTokensTopic, msgType: 'tokens.forward', qos: 1, replyTo: input.inboxTopic, corr: 'p1/0',
        body: tokensForwardCodec.encode({ sk: SK, batch: 0, tuples: [{ token: token(1), receivedAt: T0 + 10 }] }),
      },
      { type: 'timer.set', name: 'forward', deadline: T0 + 600_000 },
    ]);
    expect(ctx().buffer).toHaveLength(1);
    expect(ctx().inFlight).toEqual({ batch: 0, count: 1, sentAt: T0 + 300_000 });
    hear((e) => actor.send(e), 2, T0 + 300_010);
    actor.send(ack(7, T0 + 300_020)); // not ours: ignored
    expect(ctx().buffer).toHaveLength(2);
    actor.send(ack(0, T0 + 300_030));
    expect(ctx().buffer).toEqual([{ token: token(2), receivedAt: T0 + 300_010 }]);
    expect(ctx().inFlight).toBeNull();
    actor.send(ack(0, T0 + 300_040)); // redelivered ack: ignored
    expect(ctx().counters).toMatchObject({ batchesSent: 1, batchesAcked: 1, tuplesAcked: 1 });
    effects.length = 0;
    actor.send({ type: 'timer.forward', at: T0 + 600_000 });
    expect(decodeSend(sends(effects)[0]!)).toMatchObject({ batch: 1, tuples: [{ token: token(2) }] });
  });

  it('re-sends the same batch (number and tuples) after the ack timeout, not before', () => {
    const { actor, effects, ctx } = start({ forwardPeriodMs: 30_000 });
    hear((e) => actor.send(e), 1, T0 + 10);
    actor.send({ type: 'timer.forward', at: T0 + 30_000 });
    hear((e) => actor.send(e), 2, T0 + 30_010);
    effects.length = 0;
    actor.send({ type: 'timer.forward', at: T0 + 60_000 }); // 30 s after sending: still waiting
    expect(sends(effects)).toEqual([]);
    actor.send({ type: 'timer.forward', at: T0 + 90_000 });
    const resent = sends(effects);
    expect(resent).toHaveLength(1);
    expect(decodeSend(resent[0]!)).toEqual({ sk: SK, batch: 0, tuples: [{ token: token(1), receivedAt: T0 + 10 }] });
    expect(ctx().counters).toMatchObject({ batchesSent: 1, batchesResent: 1 });
    actor.send(ack(0, T0 + 90_001));
    expect(ctx().buffer.map((t) => t.token)).toEqual([token(2)]);
  });

  it('sends nothing while the network is off, keeps the buffer, and forwards when it returns', () => {
    const { actor, effects, ctx } = start();
    actor.send({ type: 'phone.network', at: T0 + 1, on: false });
    hear((e) => actor.send(e), 1, T0 + 10);
    effects.length = 0;
    actor.send({ type: 'timer.forward', at: T0 + 300_000 });
    expect(sends(effects)).toEqual([]);
    expect(ctx().buffer).toHaveLength(1);
    actor.send({ type: 'phone.network', at: T0 + 310_000, on: true });
    expect(decodeSend(sends(effects)[0]!)).toMatchObject({ batch: 0, tuples: [{ token: token(1), receivedAt: T0 + 10 }] });
  });

  it('scans iff powered and bluetooth on; frames heard while not scanning are ignored', () => {
    const { actor, effects, ctx } = start();
    effects.length = 0;
    actor.send({ type: 'phone.bluetooth', at: T0 + 1, on: false });
    actor.send({ type: 'phone.power', at: T0 + 2, on: false });
    actor.send({ type: 'phone.bluetooth', at: T0 + 3, on: true });
    hear((e) => actor.send(e), 1, T0 + 4);
    expect(ctx().counters.framesReceived).toBe(0);
    actor.send({ type: 'host.resume', at: T0 + 5 });
    actor.send({ type: 'phone.power', at: T0 + 6, on: true });
    actor.send({ type: 'host.resume', at: T0 + 7 });
    expect(effects).toEqual([{ type: 'radio.scan', on: false }, { type: 'radio.scan', on: true }, { type: 'radio.scan', on: true }]);
    effects.length = 0;
    actor.send({ type: 'host.stop', at: T0 + 8 });
    expect(effects).toEqual([{ type: 'radio.scan', on: false }, { type: 'timer.cancel', name: 'forward' }]);
    expect(actor.getSnapshot().status).toBe('done');
  });

  it('bounds the buffer: drops the oldest tuple not in flight, or the newcomer when all are in flight', () => {
    const { actor, ctx } = start({ maxBuffer: 2 });
    for (const n of [1, 2]) hear((e) => actor.send(e), n, T0 + n);
    actor.send({ type: 'timer.forward', at: T0 + 300_000 }); // 1 and 2 in flight
    hear((e) => actor.send(e), 3, T0 + 300_001);
    expect(ctx().buffer.map((t) => t.token)).toEqual([token(1), token(2)]);
    actor.send(ack(0, T0 + 300_002));
    for (const n of [4, 5, 6]) hear((e) => actor.send(e), n, T0 + 300_000 + n);
    expect(ctx().buffer.map((t) => t.token)).toEqual([token(5), token(6)]);
    expect(ctx().counters).toMatchObject({ bufferDropped: 2, tokensBuffered: 5 });
  });

  it('counts completed frames that are not presence tokens as rejected', () => {
    const { actor, ctx } = start();
    for (const f of fragment(new Uint8Array([0x01, ...token(1)]), 9)) actor.send(frame(f, T0 + 1)); // other kind
    for (const f of fragment(encodePresenceFrame(new Uint8Array(80).fill(0x11)), 10)) actor.send(frame(f, T0 + 2)); // not Fernet
    expect(ctx().counters.framesRejected).toBe(2);
    expect(ctx().buffer).toEqual([]);
  });

  it('flood: 10,000 frames from 1,000 fake sources keep the context bounded; a genuine token still gets buffered', () => {
    const { actor, ctx } = start({ maxBuffer: 64 });
    const genuine = framesOf(42);
    const junk = (i: number): Uint8Array =>
      i % 3 === 0 ? new Uint8Array([0xc1, 0, i & 0xff, 0, 3, 1, 2, 3]) : i % 3 === 1 ? new Uint8Array(20).fill(i & 0xff) : fragment(new Uint8Array([0x71, i & 0xff]), i & 0xffff)[0]!;
    let g = 0;
    for (let i = 0; i < 10_000; i++) {
      const at = T0 + i;
      actor.send(frame(junk(i), at, `fake-${i % 1000}`));
      if (i % 7 === 0 && i >= 9_000 && g < genuine.length) actor.send(frame(genuine[g++]!, at));
      if (i % 50 === 0) actor.send(frame(junk(i), at, 'fake-hot')); // one source over its rate
    }
    for (let i = 0; i < 100; i++) actor.send(frame(junk(i), T0 + 10_000, 'fake-hot'));
    const c = ctx();
    expect(g).toBe(genuine.length);
    expect(c.buffer.map((t) => t.token)).toEqual([token(42)]);
    expect(c.sources.length).toBeLessThanOrEqual(input.flood.maxSources);
    expect(c.reassembly.pendingFrames).toBeLessThanOrEqual(input.reassembly.maxPendingFrames);
    expect(c.reassembly.completed.length).toBeLessThanOrEqual(input.reassembly.maxCompletedRemembered);
    expect(c.seen.length).toBeLessThanOrEqual(4 * 64);
    expect(c.counters.floodDropped).toBeGreaterThan(0);
    expect(c.counters.framesReceived).toBe(10_000 + genuine.length + 200 + 100);
  });

  it('model-based: every flag combination reached; invariants hold at every step and across persist → restore', () => {
    const [a, b] = [framesOf(1, true)[0]!, framesOf(2, true)[0]!];
    let scanning = false;
    let prev: QuarantinePhoneContext | undefined;
    const events: QuarantinePhoneEvent[] = [
      { type: 'host.start', at: T0 },
      frame(a, T0 + 10),
      frame(b, T0 + 20),
      { type: 'timer.forward', at: T0 + 300_000 },
      { type: 'timer.forward', at: T0 + 400_000 },
      ack(0, T0 + 300_001),
      ack(1, T0 + 400_001),
      ...(['phone.power', 'phone.bluetooth', 'phone.network'] as const).flatMap((type) => [true, false].map((on) => ({ type, at: T0 + 5, on }))),
      { type: 'host.resume', at: T0 + 6 },
      { type: 'host.stop', at: T0 + 7 },
    ];
    const reached = exploreModel<QuarantinePhoneContext, QuarantinePhoneEvent>(machine, {
      input: { ...input, maxBuffer: 1 },
      events,
      serialize: (value, c) =>
        `${JSON.stringify(value)}|p=${c.powered}|b=${c.bluetooth}|n=${c.network}|buf=${c.buffer.length}|flight=${c.inFlight !== null}`,
      invariant: ({ state, context, event: anyEvent, effects }) => {
        const event = anyEvent as QuarantinePhoneEvent;
        // A new path starts from idle (a fresh actor): host.start, an ignored event, or host.stop without a timer to cancel.
        const fromIdle = event.type === 'host.stop' && !effects.some((e) => e.type === 'timer.cancel');
        if (event.type === 'host.start' || state === 'idle' || fromIdle) scanning = false;
        expect(context.buffer.length).toBeLessThanOrEqual(1);
        for (const e of effects) {
          if (e.type === 'radio.scan') scanning = e.on;
          if (e.type === 'bus.send') {
            expect(context.network && context.powered).toBe(true);
            expect(decodeSend(e).tuples.length).toBeGreaterThan(0);
          }
        }
        expect(scanning).toBe(state === 'running' && context.powered && context.bluetooth);
        // An in-flight tuple leaves the buffer only on the ack of its batch.
        const p = prev;
        if (p?.inFlight && context.counters.framesReceived > 0 && !(event.type === 'msg.tokens.ack' && event.body.batch === p.inFlight.batch)) {
          expect(context.buffer.slice(0, p.inFlight.count)).toEqual(p.buffer.slice(0, p.inFlight.count));
        }
        prev = context;
      },
    });
    const keys = [...reached];
    for (const p of [true, false]) for (const b of [true, false]) for (const n of [true, false]) {
      expect(keys.some((k) => k.startsWith(`"running"|p=${p}|b=${b}|n=${n}|`))).toBe(true);
    }
    for (const s of ['"idle"', '"stopped"', '"running"|p=true|b=true|n=false|buf=1|flight=false', '"running"|p=true|b=true|n=true|buf=1|flight=true']) {
      expect(keys.some((k) => k.startsWith(s))).toBe(true);
    }
  });
});

describe('quarantine phone: duty-cycled scanning', () => {
  it('listens scan.windowMs out of every scan.periodMs, and only hears frames inside a window', () => {
    const { actor, effects, ctx } = start({ scan: { windowMs: 10_000, periodMs: 60_000 } });
    expect(effects.filter((e) => e.type === 'radio.scan' || (e.type === 'timer.set' && e.name.startsWith('scan')))).toEqual([
      { type: 'timer.set', name: 'scanOff', deadline: T0 + 10_000 },
      { type: 'radio.scan', on: true },
    ]);
    effects.length = 0;
    actor.send({ type: 'timer.scanOff', at: T0 + 10_000 });
    expect(effects).toEqual([
      { type: 'timer.set', name: 'scanOn', deadline: T0 + 60_000 },
      { type: 'radio.scan', on: false },
    ]);
    for (const f of framesOf(1)) actor.send(frame(f, T0 + 20_000)); // asleep: ignored
    expect(ctx().counters.framesReceived).toBe(0);
    effects.length = 0;
    actor.send({ type: 'timer.scanOn', at: T0 + 60_000 });
    expect(effects).toEqual([
      { type: 'timer.set', name: 'scanOff', deadline: T0 + 70_000 },
      { type: 'radio.scan', on: true },
    ]);
    for (const f of framesOf(2)) actor.send(frame(f, T0 + 61_000));
    expect(ctx().buffer).toHaveLength(1);
    // Bluetooth off inside a window stops the scan; back on inside the window resumes it.
    effects.length = 0;
    actor.send({ type: 'phone.bluetooth', at: T0 + 62_000, on: false });
    actor.send({ type: 'phone.bluetooth', at: T0 + 63_000, on: true });
    expect(effects.filter((e) => e.type === 'radio.scan')).toEqual([
      { type: 'radio.scan', on: false },
      { type: 'radio.scan', on: true },
    ]);
    effects.length = 0;
    actor.send({ type: 'host.stop', at: T0 + 64_000 });
    expect(effects).toContainEqual({ type: 'timer.cancel', name: 'scanOff' });
    expect(ctx().timers).toEqual({});
  });
});


describe('quarantine phone: scan phase and early close', () => {
  const SCAN = { windowMs: 12_000, periodMs: 120_000 };
  const scanEffects = (effects: readonly Effect[]) => effects.filter((e) => e.type === 'radio.scan' || ((e.type === 'timer.set' || e.type === 'timer.cancel') && e.name.startsWith('scan')));

  it('phaseMs delays the first window; the cycle then repeats every periodMs from it', () => {
    const { actor, effects, ctx } = start({ scan: { ...SCAN, phaseMs: 45_000 } });
    expect(scanEffects(effects)).toEqual([{ type: 'timer.set', name: 'scanOn', deadline: T0 + 45_000 }]);
    expect(ctx().scanning).toBe(false);
    effects.length = 0;
    actor.send({ type: 'timer.scanOn', at: T0 + 45_000 });
    actor.send({ type: 'timer.scanOff', at: T0 + 57_000 });
    expect(scanEffects(effects)).toEqual([
      { type: 'timer.set', name: 'scanOff', deadline: T0 + 57_000 },
      { type: 'radio.scan', on: true },
      { type: 'timer.set', name: 'scanOn', deadline: T0 + 165_000 },
      { type: 'radio.scan', on: false },
    ]);
  });

  it('untilTokensAfterMs: closes the window once open that long and every source heard delivered a token', () => {
    const { actor, effects, ctx } = start({ scan: { ...SCAN, untilTokensAfterMs: 5_000 } });
    effects.length = 0;
    const [f0, f1, f2, f3, f4] = framesOf(1);
    // A token completed before the minimum: the window stays open.
    for (const [i, f] of [f0, f1, f2, f3, f4].entries()) actor.send(frame(f!, T0 + 100 + i * 10));
    expect(ctx().buffer).toHaveLength(1);
    expect(ctx().scanning).toBe(true);
    // A neighbour heard but not complete keeps it open past the minimum …
    actor.send(frame(framesOf(2)[0]!, T0 + 5_000, 'BE:AC:00:00:00:02'));
    actor.send(frame(f0!, T0 + 5_100));
    expect(ctx().scanning).toBe(true);
    // … until its token completes too: then the window closes and the next one is planned.
    for (const f of framesOf(2).slice(1)) actor.send(frame(f, T0 + 6_000, 'BE:AC:00:00:00:02'));
    expect(ctx().scanning).toBe(false);
    expect(scanEffects(effects)).toEqual([
      { type: 'timer.cancel', name: 'scanOff' },
      { type: 'timer.set', name: 'scanOn', deadline: T0 + 120_000 },
      { type: 'radio.scan', on: false },
    ]);
    expect(ctx().timers).toMatchObject({ scanOn: T0 + 120_000 });
    expect(ctx().timers['scanOff']).toBeUndefined();
    // Frames after the close are not heard; the next window forgets the last one's sources.
    actor.send(frame(framesOf(3)[0]!, T0 + 7_000));
    expect(ctx().counters.framesReceived).toBe(11);
    actor.send({ type: 'timer.scanOn', at: T0 + 120_000 });
    expect(ctx()).toMatchObject({ scanning: true, windowHeard: [], windowDone: [] });
  });

  it('untilTokensAfterMs: a flood of complete fake frames before the minimum cannot end the window before the own beacon is heard', () => {
    const { actor, ctx } = start({ scan: { ...SCAN, untilTokensAfterMs: 5_000 } });
    const fake = createPresenceToken(nobleSuite, parseFernetKey(new Uint8Array(32).fill(9)), T0 / 1000, new Uint8Array(16));
    for (let i = 0; i < 50; i++) actor.send(frame(fragment(encodePresenceFrame(fake), i, 252)[0]!, T0 + i * 20, `FA:KE:00:00:00:${String(i % 4).padStart(2, '0')}`));
    expect(ctx().scanning).toBe(true);
    for (const f of framesOf(4)) actor.send(frame(f, T0 + 5_500));
    expect(ctx().scanning).toBe(false);
    expect(ctx().buffer.map((t) => t.token)).toContainEqual(token(4));
  });

  it('misuse: a bad scan configuration throws naming the field', () => {
    const bad: [Partial<QuarantinePhoneInput>, string][] = [
      [{ scan: { windowMs: 0, periodMs: 1000 } }, 'input.scan.windowMs'],
      [{ scan: { windowMs: 2000, periodMs: 1000 } }, 'input.scan.periodMs'],
      [{ scan: { ...SCAN, phaseMs: 120_000 } }, 'input.scan.phaseMs'],
      [{ scan: { ...SCAN, untilTokensAfterMs: 13_000 } }, 'input.scan.untilTokensAfterMs'],
      [{ maxBuffer: 0 }, 'input.maxBuffer'],
    ];
    for (const [extra, field] of bad) {
      // xstate reports an error thrown while creating the context on the actor's error channel.
      const actor = createActor(machine, { input: { ...input, ...extra } });
      const errors: unknown[] = [];
      actor.subscribe({ error: (e: unknown) => errors.push(e) });
      actor.start();
      expect(actor.getSnapshot().status).toBe('error');
      expect(misuseField(() => { throw errors[0]; })).toBe(field);
    }
  });
});
