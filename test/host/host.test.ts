import { assign, emit, setup, type AnyStateMachine } from 'xstate';
import { describe, expect, it } from 'vitest';
import type { Effect, MessageEvent, TimerEvent, HostEvent } from '../../actors/effects.ts';
import { withTimer, withoutFiredTimer } from '../../actors/effects.ts';
import type { DemoBeaconContext } from '../../actors/demo/beacon.ts';
import { accept, reject } from '../../protocol/errors.ts';
import { encodeEnvelope } from '../../protocol/wire/envelope.ts';
import { MessageRegistry, type MessageCodec } from '../../protocol/wire/messages.ts';
import { inboxTopic } from '../../protocol/wire/topics.ts';
import { MemoryHub } from '../../services/bus/memory.ts';
import { beaconSpec, demoScenarioSchema } from '../../services/city/demo-scenario.ts';
import { Host } from '../../services/host/host.ts';
import { MemoryLogger } from '../../services/log.ts';
import { MemoryStore } from '../../services/store/memory.ts';
import { VirtualScheduler } from '../../services/time/virtual.ts';
import { SimAir } from '../../hardware/sim/medium.ts';
import { SeededRng } from '../../protocol/crypto/drbg.ts';

/** `test.ping` { n } → the echo actor answers `test.pong` { n } to replyTo. */
const pingCodec: MessageCodec<{ n: number }> = {
  type: 'test.ping',
  decode: (body) =>
    typeof body === 'object' && body !== null && 'n' in body && typeof body.n === 'number' ? accept({ n: body.n }) : reject('test.ping', 'bad', 'n missing'),
  encode: (v) => ({ n: v.n }),
};
const pongCodec: MessageCodec<{ n: number }> = { ...pingCodec, type: 'test.pong' };

const echoMachine = setup({
  types: {
    context: {} as { pings: number; timers: Record<string, number>; ticks: number },
    events: {} as HostEvent | MessageEvent<'test.ping', { n: number }> | TimerEvent<'tick'>,
    emitted: {} as Effect,
  },
  actions: {
    count: assign(({ context }) => ({ pings: context.pings + 1 })),
    answer: emit(({ event }) => {
      const e = event as MessageEvent<'test.ping', { n: number }>;
      return { type: 'bus.send', topic: e.envelope.replyTo ?? 'nowhere', msgType: 'test.pong', body: { n: e.body.n + 1 } } as const;
    }),
    planTick: assign(({ context, event }) => ({ timers: withTimer(withoutFiredTimer(context.timers, event.type), 'tick', event.at + 1000) })),
    emitTick: emit(({ context }) => ({ type: 'timer.set', name: 'tick', deadline: context.timers['tick'] ?? 0 }) as const),
    tick: assign(({ context }) => ({ ticks: context.ticks + 1 })),
    radioWithoutRadio: emit({ type: 'radio.scan', on: true } as const),
  },
}).createMachine({
  context: { pings: 0, timers: {}, ticks: 0 },
  on: {
    'host.start': { actions: ['planTick', 'emitTick'] },
    'msg.test.ping': { actions: ['count', 'answer'] },
    'timer.tick': { actions: ['tick', 'planTick', 'emitTick'] },
    'host.resume': { actions: 'radioWithoutRadio' },
  },
});

function rig(store = new MemoryStore()) {
  const hub = new MemoryHub();
  const bus = hub.connect('host');
  const client = hub.connect('client');
  const scheduler = new VirtualScheduler(1_000_000);
  const logger = new MemoryLogger();
  const messages = new MessageRegistry().register(pingCodec).register(pongCodec);
  const host = new Host({ scheduler, bus, messages, logger, store });
  scheduler.addQuiescence(() => host.idle(), () => host.activity());
  scheduler.addQuiescence(() => bus.idle());
  scheduler.addQuiescence(() => client.idle());
  return { hub, bus, client, scheduler, logger, host, store };
}

function ping(n: number, replyTo: string): Uint8Array {
  return encodeEnvelope({ v: 1, type: 'test.ping', id: `p${n}`, from: 'host/client', at: 0, replyTo, body: { n } });
}

describe('Host: interprets effects, decodes inbox messages, persists and restores', () => {
  it('delivers decoded messages as msg.<type> and publishes bus.send effects as envelopes', async () => {
    const { client, host, scheduler } = rig();
    await host.spawn({ role: 'collector', id: 'echo', machine: echoMachine as AnyStateMachine });
    const replies: Uint8Array[] = [];
    await client.subscribe('tc/v1/host/client/inbox', (_t, p) => replies.push(p));
    await client.publish(inboxTopic('collector', 'echo'), ping(41, 'tc/v1/host/client/inbox'), { qos: 1 });
    await scheduler.runUntil(scheduler.now());
    expect(replies).toHaveLength(1);
    const { decodeEnvelope } = await import('../../protocol/wire/envelope.ts');
    const reply = decodeEnvelope(replies[0]!);
    expect(reply.ok && reply.value).toMatchObject({ type: 'test.pong', from: 'collector/echo', body: { n: 42 } });
    expect(host.stats.sent).toBe(1);
  });

  it('counts and drops hostile envelopes and bodies; unknown types are rejected explicitly', async () => {
    const { client, host, scheduler } = rig();
    await host.spawn({ role: 'collector', id: 'echo', machine: echoMachine as AnyStateMachine });
    const inbox = inboxTopic('collector', 'echo');
    await client.publish(inbox, new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
    await client.publish(inbox, encodeEnvelope({ v: 1, type: 'test.ping', id: 'x', from: 'host/c', at: 0, body: { m: 1 } }));
    await client.publish(inbox, encodeEnvelope({ v: 1, type: 'test.unknown', id: 'y', from: 'host/c', at: 0, body: null }));
    await scheduler.runUntil(scheduler.now());
    expect(host.stats).toMatchObject({ received: 3, rejectedEnvelopes: 1, rejectedBodies: 2, actorErrors: 0 });
    expect(host.stats.rejections['message.unknown-type']).toBe(1);
    expect((host.snapshotOf('collector', 'echo').context as { pings: number }).pings).toBe(0);
  });

  it('admit and maxPending are validated at spawn (MisuseError naming the field)', async () => {
    const spawn = (extra: Record<string, unknown>) => rig().host.spawn({ role: 'collector', id: 'echo', machine: echoMachine as AnyStateMachine, ...extra });
    await expect(spawn({ admit: 'yes' })).rejects.toMatchObject({ name: 'MisuseError', field: 'admit' });
    for (const maxPending of [0, -1, 1.5, '10']) await expect(spawn({ maxPending })).rejects.toMatchObject({ field: 'maxPending' });
  });

  it('admit guards an unjournaled actor too; a throwing hook refuses the message (fail closed) and logs an error', async () => {
    const { client, host, scheduler, logger } = rig();
    let calls = 0;
    const admit = (event: { body: unknown }) => {
      if (++calls === 3) throw new Error('lookup failed');
      return (event.body as { n: number }).n > 100 ? 'too-big' : undefined;
    };
    await host.spawn({ role: 'collector', id: 'echo', machine: echoMachine as AnyStateMachine, admit });
    for (const n of [1, 500, 2]) await client.publish(inboxTopic('collector', 'echo'), ping(n, 'tc/v1/host/client/inbox'));
    await scheduler.runUntil(scheduler.now());
    expect((host.snapshotOf('collector', 'echo').context as { pings: number }).pings).toBe(1);
    expect(host.stats.rejections).toMatchObject({ 'admit.too-big': 1, 'admit.hook-failed': 1 });
    expect(host.stats.rejectedAdmissions).toBe(2);
    expect(logger.find({ level: 'error', msg: 'admission hook failed; message rejected' })).toHaveLength(1);
  });

  it('timer.set fires timer.<name> at the deadline in virtual time', async () => {
    const { host, scheduler } = rig();
    await host.spawn({ role: 'collector', id: 'echo', machine: echoMachine as AnyStateMachine });
    await scheduler.runUntil(1_000_000 + 5_500);
    expect((host.snapshotOf('collector', 'echo').context as { ticks: number }).ticks).toBe(5);
  });

  it('a failing effect is counted and logged, never thrown out of the host', async () => {
    const { host, scheduler, logger, store } = rig();
    await host.spawn({ role: 'collector', id: 'echo', machine: echoMachine as AnyStateMachine });
    await host.persist();
    // host.resume makes the machine ask for a radio this host does not have.
    const second = rig(store);
    await second.host.spawn({ role: 'collector', id: 'echo', machine: echoMachine as AnyStateMachine });
    expect(second.host.stats.effectErrors).toBe(1);
    expect(second.logger.entries.some((e) => e.msg === 'effect failed')).toBe(true);
    await scheduler.runUntil(scheduler.now() + 10);
    expect(logger.entries.filter((e) => e.level === 'error')).toEqual([]);
  });

  it('persist → restore re-arms deadlines from context: a restored beacon continues its sequence on time', async () => {
    const scenario = demoScenarioSchema.parse({ beaconPeriodS: 60 });
    const spec = beaconSpec(scenario, 0);
    const start = 1_000_000;
    const build = (store: MemoryStore) => {
      const r = rig(store);
      const air = new SimAir({ scheduler: r.scheduler, rng: new SeededRng(new Uint8Array(16)), positions: () => ({ x: 0, y: 0 }) });
      const host = new Host({ scheduler: r.scheduler, bus: r.bus, messages: new MessageRegistry(), logger: r.logger, store, radioFor: (s) => air.attach(s.id) });
      r.scheduler.addQuiescence(() => host.idle(), () => host.activity());
      return { ...r, host };
    };
    const store = new MemoryStore();
    const first = build(store);
    await first.host.spawn(spec);
    await first.scheduler.runUntil(start + 150_000); // frames 1 (t=0), 2 (60 s), 3 (120 s)
    const before = first.host.snapshotOf('beacon', 'b0').context as DemoBeaconContext;
    expect(before.seq).toBe(3);
    expect(before.timers['rotate']).toBe(start + 180_000);
    await first.host.persist(); // then "crash": the first host is simply abandoned

    const second = build(store);
    // The restored host starts later than the deadline was set for: it fires late, once, then on period.
    await second.scheduler.runUntil(start + 150_000);
    await second.host.spawn(spec);
    const restored = second.host.snapshotOf('beacon', 'b0').context as DemoBeaconContext;
    expect(restored.seq).toBe(3);
    expect(restored.fragments).toEqual(before.fragments);
    await second.scheduler.runUntil(start + 185_000);
    const after = second.host.snapshotOf('beacon', 'b0').context as DemoBeaconContext;
    expect(after.seq).toBe(4);
    expect(after.timers['rotate']).toBe(start + 240_000);
  });
});
