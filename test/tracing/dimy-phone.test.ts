/**
 * DIMY end to end at the machine level: three tracing phones with the DIMY engine and the DIMY
 * backend machine (actors/dimy/backend.ts, codes registered from the start as the city does,
 * actors/tracing/dimy-backend-spec.ts), wired by hand — radio sets become the other phones'
 * frames, bus sends become the backend's (or the phone's) message events, decoded by the
 * registered codecs as a host would. A and B meet for k slots, C meets A only; B is diagnosed:
 * its empty key-server report leaves the phone in `reported` without a key-server upload, its CBF
 * reaches the backend and is acknowledged. A's next daily QBF matches → one high-risk
 * notification (health code red); C's does not.
 */
import { describe, expect, it } from 'vitest';
import { createActor, type AnyStateMachine } from 'xstate';
import type { Effect } from '../../actors/effects.ts';
import { dimyBackendActor, dimyEngine, dimyEngineConfig, dimyMessages } from '../../actors/tracing/dimy-backend-spec.ts';
import { createTracingPhoneMachine } from '../../actors/tracing/phone.ts';
import type { TracingPhoneContext } from '../../actors/tracing/phone-logic.ts';
import type { DimyState } from '../../actors/tracing/dimy-engine.ts';
import { drbgInit } from '../../protocol/crypto/drbg.ts';
import { inboxTopic } from '../../protocol/wire/topics.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { freshCode, KS_PUBLIC_KEYS } from '../support/key-server-fixtures.ts';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const config = dimyEngineConfig();
const T0 = Math.ceil(Date.UTC(2026, 10, 23, 9) / config.epochMs) * config.epochMs;
const registry = dimyMessages();

interface Node {
  readonly id: string;
  readonly actor: ReturnType<typeof createActor<AnyStateMachine>>;
  readonly effects: Effect[];
}

function node(id: string, machine: AnyStateMachine, input: unknown): Node {
  const actor = createActor(machine, { input });
  const effects: Effect[] = [];
  actor.on('*', (e: Effect) => effects.push(e));
  actor.start();
  return { id, actor, effects };
}

const phoneMachine = createTracingPhoneMachine(dimyEngine, { crypto: nodeSuite, publicKeys: KS_PUBLIC_KEYS });
const phone = (id: string, seed: number): Node => node(id, phoneMachine, { phoneId: id, serverId: 'ks1', seed: new Uint8Array(32).fill(seed), engine: config });
const ctx = (n: Node): TracingPhoneContext<DimyState, typeof config> => (n.actor.getSnapshot() as { context: TracingPhoneContext<DimyState, typeof config> }).context;

/** Send an event; return the effects it produced. */
function send(n: Node, event: { type: string; at: number; [k: string]: unknown }): Effect[] {
  const from = n.effects.length;
  n.actor.send(event);
  return n.effects.slice(from);
}

/** The last advertising set of `n`, as frames heard at `at`. */
function heard(n: Node, at: number) {
  const set = [...n.effects].reverse().find((e) => e.type === 'radio.advertise');
  if (set?.type !== 'radio.advertise') throw new Error(`${n.id} advertises nothing`);
  return set.payloads.map((payload, i) => ({ payload, rssi: -55, at: at + 250 * i, address: `addr-${n.id}` }));
}

/** Deliver a bus send as the receiving host would: the body decoded by its codec, replyTo in the envelope. */
function deliver(to: Node, e: Effect, from: string, at: number): Effect[] {
  if (e.type !== 'bus.send') throw new Error('not a bus send');
  const body = registry.decodeBody(e.msgType, e.body);
  if (!body.ok) throw new Error(body.detail);
  const envelope = { v: 1, type: e.msgType, id: `m-${at}`, from, at, body: null, ...(e.replyTo === undefined ? {} : { replyTo: e.replyTo }) };
  return send(to, { type: `msg.${e.msgType}`, at, envelope, body: body.value });
}

const sends = (effects: readonly Effect[], msgType: string): Effect[] => effects.filter((e) => e.type === 'bus.send' && e.msgType === msgType);

describe('DIMY phones and backend (machines)', () => {
  it('query → matched result → notification; the diagnosed phone goes to reported without a key-server upload', () => {
    const code = freshCode('clinic', T0).text;
    const spec = dimyBackendActor({ crypto: nodeSuite, drbg: drbgInit(new Uint8Array(32).fill(9)), codes: [code], endMs: T0 + 30 * DAY }, config);
    expect(spec.role).toBe('app-backend');
    const backend = node('dimy', spec.machine, spec.input);
    backend.actor.send({ type: 'host.start', at: T0 });
    const [a, b, c] = [phone('a', 1), phone('b', 2), phone('c', 3)];
    for (const p of [a, b, c]) send(p, { type: 'host.start', at: T0 });

    // k slots side by side: A–B and A–C hear each other once per slot (one scan window each).
    for (let slot = 1; slot <= config.k; slot++) {
      const t = T0 + slot * config.shareMs;
      for (const p of [a, b, c]) send(p, { type: 'timer.rotate', at: t });
      const w = t + 60_000;
      send(a, { type: 'radio.frames', at: w + 4000, frames: [...heard(b, w), ...heard(c, w)] });
      send(b, { type: 'radio.frames', at: w + 4000, frames: heard(a, w) });
      send(c, { type: 'radio.frames', at: w + 4000, frames: heard(a, w) });
    }
    expect(ctx(a).engine.dbfs[0]?.items).toBe(2);
    expect(ctx(b).engine.dbfs[0]?.items).toBe(1);
    expect(ctx(c).engine.dbfs[0]?.items).toBe(1);

    // B is diagnosed: no key-server upload, straight to reported; its CBF goes to the backend.
    const diagnosedAt = T0 + 2 * HOUR;
    const effects = send(b, { type: 'tracing.diagnosed', at: diagnosedAt, code, infectiousFrom: T0 - DAY });
    expect(b.actor.getSnapshot().value).toBe('reported');
    expect(ctx(b).upload).toBeNull();
    expect(sends(effects, 'keys.upload')).toEqual([]);
    const [cbf] = sends(effects, 'dimy.cbf.upload');
    if (cbf?.type !== 'bus.send') throw new Error('no CBF upload');
    expect(cbf.topic).toBe(inboxTopic('app-backend', 'dimy'));
    expect(cbf.replyTo).toBe(inboxTopic('phone', 'b'));
    const [ack] = deliver(backend, cbf, 'phone/b', diagnosedAt + 10);
    if (ack === undefined) throw new Error('no ack');
    deliver(b, ack, 'app-backend/dimy', diagnosedAt + 20);
    expect(ctx(b).engine.exchange.pending).toBeNull();
    expect(ctx(b).engine.counters.cbfAccepted).toBe(1);

    // A and C: the first exchange tick schedules, the query goes out a day later.
    const query = (p: Node): Effect[] => {
      send(p, { type: 'timer.exchange', at: T0 + 3 * HOUR });
      return sends(send(p, { type: 'timer.exchange', at: T0 + 3 * HOUR + DAY }), 'dimy.qbf.query');
    };
    const answer = (p: Node, at: number): Effect[] => {
      const [q] = query(p);
      if (q === undefined) throw new Error(`${p.id} sent no query`);
      const [result] = deliver(backend, q, `phone/${p.id}`, at);
      if (result === undefined) throw new Error('no result');
      return deliver(p, result, 'app-backend/dimy', at + 5);
    };
    const atA = T0 + 3 * HOUR + DAY + 100;
    const logs = answer(a, atA).filter((e) => e.type === 'log');
    expect(logs.map((e) => e.type === 'log' && e.msg)).toEqual(['exposure notification']);
    expect(ctx(a).notifications).toEqual([{ at: atA + 5, recordId: `dimy-qbf-${T0 + 3 * HOUR + DAY}`, dayNumber: Math.floor((T0 + 3 * HOUR + DAY) / DAY), risk: 'high', minutes: 10 }]);
    expect(ctx(a).health.color).toBe('red');
    answer(c, atA);
    expect(ctx(c).notifications).toEqual([]);
    expect(ctx(c).health.color).toBe('green');
    // Bytes: a 100 KB QBF up, a few bytes down.
    expect(ctx(a).counters.bytesUp).toBe(100_001);
    expect(ctx(a).counters.bytesDown).toBeLessThan(100);
    // The backend matched one of two queries against one CBF.
    const backendCounters = (backend.actor.getSnapshot() as { context: { counters: Record<string, number> } }).context.counters;
    expect(backendCounters).toMatchObject({ queries: 2, queriesMatched: 1, uploadsAccepted: 1 });
  });
});
