/**
 * The tracing phone with the TCN engine, one machine-level scenario per mode: three phones
 * (createTracingPhoneMachine(tcnEngine, deps) under xstate createActor) whose timers fire at their
 * deadlines; for 40 minutes `near` hears the positive at −62 dBm (≈ 1.3 m) and `far` at −80 dBm
 * (≈ 5 m), and the positive hears both; two hours later the positive is diagnosed.
 *   C  its reports go to a key-server machine, the others download them and match locally;
 *   A  contacts stream to a TCN backend machine, the report goes there, it notifies the uploaders;
 *   B  the positive's log goes to the backend, which publishes it to every phone.
 * In every mode `near` gets a high-risk notification and `far` none, and every advertising set
 * the phones emit asks for a new address.
 */
import { describe, expect, it } from 'vitest';
import { createActor, type Actor } from 'xstate';
import type { BusSendEffect, Effect } from '../../actors/effects.ts';
import { createTcnBackendMachine } from '../../actors/tcn/backend.ts';
import { tcnBackendInbox, tcnLogTopic } from '../../actors/tcn/topics.ts';
import { tcnEngine, tcnEngineConfig, type TcnEngineConfig, type TcnMode, type TcnState } from '../../actors/tracing/tcn-engine.ts';
import { createTracingPhoneMachine, type TracingPhoneEvent } from '../../actors/tracing/phone.ts';
import type { TracingPhoneContext } from '../../actors/tracing/phone-logic.ts';
import type { DistributionIndex } from '../../protocol/keyserver/distribution-index.ts';
import { keyServerMessages, type TrackingRef } from '../../protocol/keyserver/messages.ts';
import { tcnMessages } from '../../protocol/tcn/messages.ts';
import type { WireValue } from '../../protocol/wire/msgpack.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { mustAnnounce, requestedNames, serve, server } from '../support/key-client-fixtures.ts';
import { freshCode, KS_PUBLIC_KEYS, registerBody, replyBody, T0 as KS_T0, type KeyServerDriver } from '../support/key-server-fixtures.ts';
import { seededRng } from '../support/test-rng.ts';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const START = KS_T0 + 8 * HOUR;
const registry = keyServerMessages(tcnMessages());
const machine = createTracingPhoneMachine(tcnEngine, { crypto: nodeSuite, publicKeys: KS_PUBLIC_KEYS });
const envelope = (type: string, from: string, at: number, replyTo?: string): { v: 1; type: string; id: string; from: string; at: number; replyTo?: string; body: WireValue } =>
  ({ v: 1, type, id: `${from}.${at}.${Math.floor(at % 997)}`, from, at, ...(replyTo === undefined ? {} : { replyTo }), body: {} });

class Phone {
  readonly actor: Actor<typeof machine>;
  readonly timers = new Map<string, number>();
  readonly outbox: BusSendEffect[] = [];
  current: Uint8Array = new Uint8Array(0);
  advertised = 0;

  constructor(readonly id: string, config: TcnEngineConfig, seed: number) {
    this.actor = createActor(machine, { input: { phoneId: id, serverId: 'ks1', seed: seededRng(seed).bytes(32), engine: config } });
    this.actor.on('*', (e: Effect) => {
      if (e.type === 'timer.set') this.timers.set(e.name, e.deadline);
      if (e.type === 'timer.cancel') this.timers.delete(e.name);
      if (e.type === 'bus.send') this.outbox.push(e);
      if (e.type === 'radio.advertise') {
        expect(e.newAddress).toBe(true);
        this.current = e.payloads[0] ?? new Uint8Array(0);
        this.advertised++;
      }
    });
    this.actor.start();
  }

  /** Any event as the host would deliver it (msg.* bodies already decoded). */
  send(event: { readonly type: string; readonly at: number; readonly [field: string]: unknown }): void {
    this.actor.send(event as TracingPhoneEvent);
  }

  get context(): TracingPhoneContext<TcnState, TcnEngineConfig> {
    return this.actor.getSnapshot().context;
  }
}

/** The three phones, the TCN backend (A, B) and the bus between them. */
class World {
  readonly phones: Phone[];
  readonly backend;
  readonly backendOut: BusSendEffect[] = [];
  /** What phones sent the key server (mode C: the test delivers it). */
  readonly keyServerOut: BusSendEffect[] = [];
  readonly code = freshCode('clinic-a', START);
  now = START;

  constructor(readonly mode: TcnMode) {
    const config = tcnEngineConfig({ mode });
    this.phones = ['positive', 'near', 'far'].map((id, i) => new Phone(id, config, i + 1));
    this.backend = createActor(createTcnBackendMachine({ crypto: nodeSuite, pepper: nodeSuite.sha256(new Uint8Array(32)) }), { input: { id: config.backendId, codes: [this.code.text], codesExpireAt: START + DAY } });
    this.backend.on('*', (e: Effect) => {
      if (e.type === 'bus.send') this.backendOut.push(e);
    });
    this.backend.start();
    this.backend.send({ type: 'host.start', at: START });
    for (const p of this.phones) p.send({ type: 'host.start', at: START });
    this.flush();
  }

  phone(id: string): Phone {
    return this.phones.find((p) => p.id === id)!;
  }

  /** Deliver every pending message (phones ↔ backend) until none is left. */
  flush(): void {
    for (let guard = 0; guard < 1000; guard++) {
      const from = this.phones.find((p) => p.outbox.length > 0);
      const send = from?.outbox.shift() ?? this.backendOut.shift();
      if (send === undefined) return;
      if (from !== undefined && send.topic !== tcnBackendInbox('tcn-backend')) {
        this.keyServerOut.push(send);
        continue;
      }
      const body = registry.decodeBody(send.msgType, send.body);
      if (!body.ok) throw new Error(`${send.msgType}: ${body.detail}`);
      const event = { type: `msg.${send.msgType}`, at: this.now, body: body.value };
      if (from !== undefined) {
        this.backend.send({ ...event, envelope: envelope(send.msgType, `phone/${from.id}`, this.now, send.replyTo) } as never);
      } else {
        const to = send.topic === tcnLogTopic('tcn-backend') ? this.phones : this.phones.filter((p) => send.topic === `tc/v1/phone/${p.id}/inbox`);
        for (const p of to) p.send({ ...event, envelope: envelope(send.msgType, 'app-backend/tcn-backend', this.now) });
      }
    }
    throw new Error('flush did not settle');
  }

  /** Fire every phone timer due up to `to`, in time order. */
  advance(to: number): void {
    for (;;) {
      let next: { phone: Phone; name: string; at: number } | undefined;
      for (const phone of this.phones) for (const [name, at] of phone.timers) if (at <= to && (next === undefined || at < next.at)) next = { phone, name, at };
      if (next === undefined) break;
      next.phone.timers.delete(next.name);
      this.now = Math.max(this.now, next.at);
      next.phone.send({ type: `timer.${next.name}`, at: this.now });
      this.flush();
    }
    this.now = to;
  }

  /** 40 one-minute scans in which near and far hear the positive, and it hears them. */
  meet(): void {
    const [positive, near, far] = this.phones as [Phone, Phone, Phone];
    for (let m = 1; m <= 40; m++) {
      this.advance(START + m * MIN + 30_000);
      const frame = (p: Phone, rssi: number): { payload: Uint8Array; rssi: number; at: number; address: string } => ({ payload: p.current, rssi, at: this.now, address: p.id });
      near.send({ type: 'radio.frames', at: this.now, frames: [frame(positive, -62)] });
      far.send({ type: 'radio.frames', at: this.now, frames: [frame(positive, -80)] });
      positive.send({ type: 'radio.frames', at: this.now, frames: [frame(near, -62), frame(far, -80)] });
      this.flush();
    }
    this.advance(START + 2 * HOUR);
  }

  diagnose(): void {
    this.phone('positive').send({ type: 'tracing.diagnosed', at: this.now, code: this.code.text, infectiousFrom: this.now - DAY });
    this.flush();
  }

  expectOutcome(): void {
    expect(this.phone('near').context.notifications.map((n) => n.risk)).toEqual(['high']);
    expect(this.phone('near').context.notifications[0]!.minutes).toBe(40);
    expect(this.phone('far').context.notifications).toEqual([]);
    expect(this.phone('far').context.exposures).toEqual([]);
    for (const p of this.phones) expect(p.advertised).toBeGreaterThanOrEqual(9);
  }
}

/** Mode C's key-server leg: upload → publish → every other phone downloads and matches. */
function throughKeyServer(world: World, ks: KeyServerDriver): void {
  const positive = world.phone('positive');
  const upload = world.keyServerOut.find((e) => e.msgType === 'keys.upload');
  expect(upload).toBeDefined();
  const body = registry.decodeBody('keys.upload', upload!.body);
  if (!body.ok) throw new Error(body.detail);
  const ack = replyBody<TrackingRef>(ks.msg('keys.upload', body.value, world.now, 'phone/positive'), 'keys.upload.ack');
  positive.send({ type: 'msg.keys.upload.ack', at: world.now, envelope: envelope('keys.upload.ack', 'key-server/ks1', world.now), body: ack });
  const index: DistributionIndex = mustAnnounce(ks.tick(Math.ceil((world.now + 1) / (15 * MIN)) * 15 * MIN));
  for (const phone of world.phones.filter((p) => p.id !== 'positive')) {
    phone.outbox.length = 0;
    phone.send({ type: 'msg.keys.index', at: world.now, envelope: envelope('keys.index', 'key-server/ks1', world.now), body: index });
    for (let guard = 0; guard < 100; guard++) {
      const names = requestedNames(phone.outbox.splice(0));
      if (names.length === 0) break;
      for (const name of names) phone.send({ type: 'msg.keys.file', at: world.now, envelope: envelope('keys.file', 'key-server/ks1', world.now), body: serve(ks, name) });
    }
  }
}

describe('tracing phone × TCN, one scenario per mode', () => {
  it('mode C: reports through the key server, local matching', () => {
    const ks = server();
    const world = new World('C');
    expect(replyBody<{ ok: boolean }>(ks.msg('keys.codes.register', registerBody(world.code), START, 'operator/op'), 'keys.admin.result').ok).toBe(true);
    world.meet();
    // Mode C keeps its observations: near holds ~40 entries of the positive.
    expect(world.phone('near').context.engine.blocks.length).toBeGreaterThan(0);
    world.diagnose();
    throughKeyServer(world, ks);
    expect(world.phone('near').context.engine.counters.reportsVerified).toBeGreaterThan(0);
    world.expectOutcome();
  });

  it('mode A: contacts stream to the backend, which matches the report and notifies', () => {
    const world = new World('A');
    world.meet();
    // Every contact the phones heard was acknowledged: they keep no observations.
    expect(world.phone('near').context.engine.blocks).toEqual([]);
    expect(world.backend.getSnapshot().context.contactCount).toBe(4 * 40);
    world.diagnose();
    expect(world.keyServerOut.some((e) => e.msgType === 'keys.upload')).toBe(false);
    expect(world.phone('positive').context.engine.exchange.pending).toBeNull();
    expect(world.backend.getSnapshot().context.counters.notifications).toBe(2);
    world.expectOutcome();
  });

  it('mode B: the positive log is published and phones find their own TCNs in it', () => {
    const world = new World('B');
    world.meet();
    world.diagnose();
    expect(world.backend.getSnapshot().context.counters.logPartsPublished).toBe(1);
    expect(world.phone('positive').context.engine.exchange.pending).toBeNull();
    world.expectOutcome();
    // Re-sent periodic exchanges do not notify twice.
    world.advance(world.now + 2 * HOUR);
    expect(world.phone('near').context.notifications).toHaveLength(1);
  });
});
