/**
 * The rig of the journaled-actor tests (test/host/journal.test.ts,
 * journal-compaction.test.ts): a host on a memory hub and a virtual clock,
 * with a counting machine (acks every ping, a tick every simulated second)
 * and a gated one (counts only while running, like the real backends), a
 * client that pings it and collects the pongs, and `drive` for bursts.
 */
import { assign, emit, setup, type AnyStateMachine } from 'xstate';
import type { Effect, HostEvent, MessageEvent, TimerEvent } from '../../actors/effects.ts';
import { withTimer, withoutFiredTimer } from '../../actors/effects.ts';
import type { Store } from '../../actors/ports.ts';
import { accept, reject } from '../../protocol/errors.ts';
import { decodeEnvelope, encodeEnvelope } from '../../protocol/wire/envelope.ts';
import { MessageRegistry, type MessageCodec } from '../../protocol/wire/messages.ts';
import { inboxTopic } from '../../protocol/wire/topics.ts';
import { MemoryHub } from '../../services/bus/memory.ts';
import { Host, type ActorSpec } from '../../services/host/host.ts';
import { MemoryLogger } from '../../services/log.ts';
import { VirtualScheduler } from '../../services/time/virtual.ts';

const numberCodec = (type: string): MessageCodec<{ n: number }> => ({
  type,
  decode: (b) => (typeof b === 'object' && b !== null && 'n' in b && typeof b.n === 'number' ? accept({ n: b.n }) : reject(type, 'bad', 'n')),
  encode: (v) => ({ n: v.n }),
});

type Ctx = { count: number; ticks: number; timers: Record<string, number> };
const counter = setup({
  types: {
    context: {} as Ctx,
    events: {} as HostEvent | MessageEvent<'test.ping', { n: number }> | TimerEvent<'tick'>,
    emitted: {} as Effect,
  },
  actions: {
    count: assign(({ context }) => ({ count: context.count + 1 })),
    ack: emit(({ event }) => {
      const e = event as MessageEvent<'test.ping', { n: number }>;
      return { type: 'bus.send', topic: e.envelope.replyTo ?? 'none', msgType: 'test.pong', body: { n: e.body.n } } as const;
    }),
    planTick: assign(({ context, event }) => ({ timers: withTimer(withoutFiredTimer(context.timers, event.type), 'tick', event.at + 1000) })),
    emitTick: emit(({ context }) => ({ type: 'timer.set', name: 'tick', deadline: context.timers['tick'] ?? 0 }) as const),
    tick: assign(({ context }) => ({ ticks: context.ticks + 1 })),
  },
}).createMachine({
  context: { count: 0, ticks: 0, timers: {} },
  on: {
    'host.start': { actions: ['planTick', 'emitTick'] },
    'msg.test.ping': { actions: ['count', 'ack'] },
    'timer.tick': { actions: ['tick', 'planTick', 'emitTick'] },
  },
});

export const SPEC: ActorSpec = { role: 'app-backend', id: 'a1', machine: counter as AnyStateMachine, journal: { snapshotEvery: 3 } };

/** Like the real backends: inputs count only once host.start moved it to running; host.stop is final. */
export const gated = setup({
  types: { context: {} as { count: number }, events: {} as HostEvent | MessageEvent<'test.ping', { n: number }>, emitted: {} as Effect },
  actions: {
    count: assign(({ context }) => ({ count: context.count + 1 })),
    ack: emit(({ event }) => {
      const e = event as MessageEvent<'test.ping', { n: number }>;
      return { type: 'bus.send', topic: e.envelope.replyTo ?? 'none', msgType: 'test.pong', body: { n: e.body.n } } as const;
    }),
  },
}).createMachine({
  context: { count: 0 },
  initial: 'idle',
  states: {
    idle: { on: { 'host.start': 'running' } },
    running: { on: { 'msg.test.ping': { actions: ['count', 'ack'] }, 'host.stop': 'stopped' } },
    stopped: { type: 'final' },
  },
});
export const GATED: ActorSpec = { role: 'app-backend', id: 'a1', machine: gated as AnyStateMachine, journal: { snapshotEvery: 100 } };
const REPLY = 'tc/v1/host/client/inbox';

export function rig(store: Store) {
  const hub = new MemoryHub();
  const bus = hub.connect('host');
  const client = hub.connect('client');
  const scheduler = new VirtualScheduler(1_000_000);
  const logger = new MemoryLogger();
  const messages = new MessageRegistry().register(numberCodec('test.ping')).register(numberCodec('test.pong'));
  const host = new Host({ scheduler, bus, messages, logger, store });
  scheduler.addQuiescence(() => host.idle(), () => host.activity());
  scheduler.addQuiescence(() => hub.idle());
  const pongs: number[] = [];
  const ready = client.subscribe(REPLY, (_t, p) => {
    const env = decodeEnvelope(p);
    if (env.ok) pongs.push((env.value.body as { n: number }).n);
  });
  const ping = (n: number) =>
    client.publish(inboxTopic('app-backend', 'a1'), encodeEnvelope({ v: 1, type: 'test.ping', id: `p${n}`, from: 'host/client', at: 0, replyTo: REPLY, body: { n } }));
  const context = () => host.snapshotOf('app-backend', 'a1').context as Ctx;
  return { hub, host, scheduler, logger, pongs, ready, ping, context };
}

export const STREAM = 'journal/app-backend/a1';

/** Drive `rounds` × 10 pings, a tick every simulated second; `after` sees the store after each round. */
export async function drive(r: ReturnType<typeof rig>, rounds: number, after: () => Promise<void>): Promise<void> {
  let n = 0;
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < 10; i++) await r.ping(++n);
    await r.scheduler.runUntil(r.scheduler.now() + 700);
    await after();
  }
}
