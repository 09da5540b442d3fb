/**
 * Pipelined journal appends (services/host/intake.ts): appends are issued as
 * inputs arrive, so a burst shares SQLite commits, while inputs are applied
 * strictly in journal order, each after its own append. And admission before
 * the journal: `admit` and `maxPending` refuse a message before it costs a
 * write, so a refused message is never journaled nor seen by the machine.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assign, emit, setup, type AnyStateMachine } from 'xstate';
import { afterAll, describe, expect, it } from 'vitest';
import type { Effect, HostEvent, MessageEvent, TimerEvent } from '../../actors/effects.ts';
import { withTimer, withoutFiredTimer } from '../../actors/effects.ts';
import type { Store } from '../../actors/ports.ts';
import { accept, reject } from '../../protocol/errors.ts';
import { decodeEnvelope, encodeEnvelope } from '../../protocol/wire/envelope.ts';
import { MessageRegistry, type MessageCodec } from '../../protocol/wire/messages.ts';
import { inboxTopic } from '../../protocol/wire/topics.ts';
import { MemoryHub } from '../../services/bus/memory.ts';
import { Host, type ActorSpec } from '../../services/host/host.ts';
import { checkAdmission } from '../../services/host/intake.ts';
import type { JournaledEvent } from '../../services/host/journal.ts';
import { decodeVersioned } from '../../services/host/snapshots.ts';
import { MemoryLogger } from '../../services/log.ts';
import { MemoryStore } from '../../services/store/memory.ts';
import { openSqliteStore } from '../../services/store/sqlite.ts';
import { VirtualScheduler } from '../../services/time/virtual.ts';

const START = 1_000_000;
const STREAM = 'journal/app-backend/a1';
const REPLY = 'tc/v1/host/client/inbox';

const pingCodec = (type: string): MessageCodec<{ n: number }> => ({
  type,
  decode: (b) => (typeof b === 'object' && b !== null && 'n' in b && typeof b.n === 'number' ? accept({ n: b.n }) : reject(type, 'bad', 'n')),
  encode: (v) => ({ n: v.n }),
});

type Ctx = { count: number; seen: number[]; ticks: number; timers: Record<string, number> };
type Ping = MessageEvent<'test.ping', { n: number }>;
/** Counts pings, remembers their order, acks each; a tick every simulated second. */
const counter = setup({
  types: { context: {} as Ctx, events: {} as HostEvent | Ping | TimerEvent<'tick'>, emitted: {} as Effect },
  actions: {
    count: assign(({ context, event }) => ({ count: context.count + 1, seen: [...context.seen, (event as Ping).body.n] })),
    ack: emit(({ event }) => {
      const e = event as Ping;
      return { type: 'bus.send', topic: e.envelope.replyTo ?? 'none', msgType: 'test.pong', body: { n: e.body.n } } as const;
    }),
    planTick: assign(({ context, event }) => ({ timers: withTimer(withoutFiredTimer(context.timers, event.type), 'tick', event.at + 1000) })),
    emitTick: emit(({ context }) => ({ type: 'timer.set', name: 'tick', deadline: context.timers['tick'] ?? 0 }) as const),
    tick: assign(({ context }) => ({ ticks: context.ticks + 1 })),
  },
}).createMachine({
  context: { count: 0, seen: [], ticks: 0, timers: {} },
  on: {
    'host.start': { actions: ['planTick', 'emitTick'] },
    'msg.test.ping': { actions: ['count', 'ack'] },
    'timer.tick': { actions: ['tick', 'planTick', 'emitTick'] },
  },
});
const SPEC: ActorSpec = { role: 'app-backend', id: 'a1', machine: counter as AnyStateMachine, journal: { snapshotEvery: 1000 } };

/** A store whose appends can be held ("the disk is slow"); counts append calls. */
class HeldStore extends MemoryStore {
  appendCalls = 0;
  private gate: Promise<void> | undefined;
  private open: () => void = () => undefined;
  hold(): void {
    this.gate = new Promise<void>((resolve) => (this.open = resolve));
  }
  release(): void {
    this.gate = undefined;
    this.open();
  }
  override async append(stream: string, record: Uint8Array): Promise<number> {
    this.appendCalls++;
    if (this.gate !== undefined) await this.gate;
    return super.append(stream, record);
  }
}

/** `hostQuiescence: false` lets simulated time advance while appends are held (the host is never idle then). */
function rig(store: Store, hostQuiescence = true) {
  const hub = new MemoryHub();
  const client = hub.connect('client');
  const scheduler = new VirtualScheduler(START);
  const logger = new MemoryLogger();
  const messages = new MessageRegistry().register(pingCodec('test.ping')).register(pingCodec('test.pong'));
  const host = new Host({ scheduler, bus: hub.connect('host'), messages, logger, store });
  if (hostQuiescence) scheduler.addQuiescence(() => host.idle(), () => host.activity());
  scheduler.addQuiescence(() => hub.idle());
  const pongs: number[] = [];
  const ready = client.subscribe(REPLY, (_t, p) => {
    const env = decodeEnvelope(p);
    if (env.ok) pongs.push((env.value.body as { n: number }).n);
  });
  const ping = (n: number) =>
    client.publish(inboxTopic('app-backend', 'a1'), encodeEnvelope({ v: 1, type: 'test.ping', id: `p${n}`, from: 'host/client', at: 0, replyTo: REPLY, body: { n } }));
  /** Publish pings `from..to` in one burst (nothing awaited in between). */
  const burst = (from: number, to: number) => Promise.all(Array.from({ length: to - from + 1 }, (_, i) => ping(from + i)));
  const context = () => host.snapshotOf('app-backend', 'a1').context as Ctx;
  const settle = async () => {
    for (let i = 0; i < 3; i++) {
      await hub.idle();
      await host.idle();
    }
  };
  return { hub, host, scheduler, logger, pongs, ready, ping, burst, context, settle };
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** The journal's events, decoded, in order. */
async function journalOf(store: Store): Promise<JournaledEvent[]> {
  return (await store.read(STREAM)).map((r) => decodeVersioned(r.record) as JournaledEvent);
}
const pingsIn = (events: readonly JournaledEvent[]): number[] =>
  events.filter((e) => e.type === 'msg.test.ping').map((e) => (e['body'] as { n: number }).n);

describe('pipelined journal appends: a burst shares commits, inputs apply in journal order', () => {
  const dirs: string[] = [];
  const tempDb = async (): Promise<string> => {
    const dir = await mkdtemp(join(tmpdir(), 'tc-pipeline-'));
    dirs.push(dir);
    return join(dir, 'journal.db');
  };
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('N inputs delivered in one burst commit in far fewer SQLite transactions than N and are applied in order', async () => {
    const N = 500;
    const store = await openSqliteStore(await tempDb());
    const r = rig(store);
    await r.ready;
    await r.host.spawn(SPEC);
    await r.settle();
    const before = store.stats();
    await r.burst(1, N);
    await r.settle();
    const commits = store.stats().commits - before.commits;
    const writes = store.stats().writes - before.writes;
    console.log(`journal pipeline: ${N} inputs, ${writes} writes, ${commits} SQLite commits`);
    expect(writes).toBe(N);
    expect(commits).toBeLessThanOrEqual(N / 50);
    expect(r.context().seen).toEqual(range(1, N));
    expect(r.pongs).toEqual(range(1, N));
    expect(pingsIn(await journalOf(store))).toEqual(range(1, N));
    await r.host.stop();
    await store.close();
  });

  it('snapshots taken in the middle of a burst, then a crash: a restart restores exactly the pre-crash state (SQLite)', async () => {
    const path = await tempDb();
    const spec: ActorSpec = { ...SPEC, journal: { snapshotEvery: 64 } };
    let store = await openSqliteStore(path);
    const first = rig(store);
    await first.ready;
    await first.host.spawn(spec);
    await first.burst(1, 300);
    await first.settle();
    await first.burst(301, 450);
    await first.scheduler.runUntil(START + 2_500); // ticks are journaled between the bursts' inputs
    const before = first.context();
    expect(before.seen).toEqual(range(1, 450));
    expect(before.ticks).toBe(2);
    await store.close(); // "kill -9": no stop(), no persist(); SQLite keeps what was acknowledged

    store = await openSqliteStore(path);
    const second = rig(store);
    await second.ready;
    await second.scheduler.runUntil(START + 2_500);
    await second.host.spawn(spec);
    await second.settle();
    expect(second.context()).toEqual(before);
    // Only the events after the last snapshot were replayed (their acks re-sent, at-least-once).
    expect(second.pongs.length).toBeLessThan(64);
    expect(second.pongs).toEqual(before.seen.slice(before.seen.length - second.pongs.length));
    await second.burst(451, 460);
    await second.settle();
    expect(second.context().seen).toEqual(range(1, 460));
    await second.host.stop();
    await store.close();
  });

  it('issues every append of a burst before the first input is applied', async () => {
    const store = new HeldStore();
    const r = rig(store);
    await r.ready;
    await r.host.spawn(SPEC);
    await r.settle();
    store.hold();
    const calls = store.appendCalls;
    await r.burst(1, 5);
    await r.hub.idle();
    expect(store.appendCalls - calls).toBe(5); // all issued: the old chain issued one, then waited for it
    expect(r.context().count).toBe(0);
    store.release();
    await r.settle();
    expect(r.context().seen).toEqual([1, 2, 3, 4, 5]);
    expect(r.pongs).toEqual([1, 2, 3, 4, 5]);
  });

  it('a failed append drops only that input; later inputs still apply, in order', async () => {
    class FailThree extends MemoryStore {
      override append(stream: string, record: Uint8Array): Promise<number> {
        const event = decodeVersioned(record) as JournaledEvent;
        if ((event['body'] as { n?: number } | undefined)?.n === 3) return Promise.reject(new Error('disk full'));
        return super.append(stream, record);
      }
    }
    const store = new FailThree();
    const r = rig(store);
    await r.ready;
    await r.host.spawn(SPEC);
    await r.burst(1, 5);
    await r.settle();
    expect(r.context().seen).toEqual([1, 2, 4, 5]);
    expect(r.pongs).toEqual([1, 2, 4, 5]);
    expect(r.host.stats.effectErrors).toBe(1);
    expect(r.logger.find({ msg: 'journal append failed; input dropped' })).toHaveLength(1);
    expect(pingsIn(await journalOf(store))).toEqual([1, 2, 4, 5]);
  });

  it('inputs arriving while the actor is replayed are journaled after every replayed event and applied once', async () => {
    /** Reads of the journal wait until released, so inputs arrive mid-replay. */
    class SlowReplayStore extends MemoryStore {
      held = false;
      waiting = 0;
      private open: () => void = () => undefined;
      private readonly gate = new Promise<void>((resolve) => (this.open = resolve));
      release(): void {
        this.open();
      }
      /** The journal as it is now, past the gate. */
      peek(): ReturnType<MemoryStore['read']> {
        return super.read(STREAM);
      }
      override async read(stream: string, afterSeq?: number, limit?: number) {
        if (this.held && stream === STREAM) {
          this.waiting++;
          await this.gate;
        }
        return super.read(stream, afterSeq, limit);
      }
    }
    const store = new SlowReplayStore();
    const first = rig(store);
    await first.ready;
    await first.host.spawn(SPEC);
    await first.burst(1, 3);
    await first.settle();
    // "kill -9" before any snapshot: host.start and three pings are only in the journal.

    store.held = true;
    const second = rig(store, false);
    await second.ready;
    const spawned = second.host.spawn(SPEC);
    while (store.waiting === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    await second.burst(4, 6);
    await second.hub.idle();
    expect((await store.peek()).length).toBe(4); // deferred behind the replay gate, not yet journaled
    store.release();
    await spawned;
    await second.settle();
    expect(second.context().seen).toEqual([1, 2, 3, 4, 5, 6]);
    expect(pingsIn(await journalOf(store))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(second.pongs).toEqual([1, 2, 3, 4, 5, 6]); // 1–3 re-sent by the replay, 4–6 new
  });
});

describe('admission before the journal: admit and maxPending', () => {
  it('admit refuses a message before it is journaled: counted, logged at debug, never seen by the machine', async () => {
    const store = new MemoryStore();
    const r = rig(store);
    const contexts: unknown[] = [];
    // Like a lockout table: the hook consults the actor's (applied) context.
    const spec: ActorSpec = {
      ...SPEC,
      admit: (event, state) => {
        contexts.push(state.context);
        if ((event.body as { n: number }).n % 2 === 0) return 'even';
        return (state.context as Ctx).count >= 2 ? 'locked' : undefined;
      },
    };
    await r.ready;
    await r.host.spawn(spec);
    for (let n = 1; n <= 6; n++) {
      await r.ping(n);
      await r.settle();
    }
    expect(r.context().seen).toEqual([1, 3]);
    expect(r.pongs).toEqual([1, 3]);
    expect(pingsIn(await journalOf(store))).toEqual([1, 3]); // refused messages never reach the journal
    expect(r.host.stats.rejections).toMatchObject({ 'admit.even': 3, 'admit.locked': 1 });
    expect(r.host.stats.rejectedAdmissions).toBe(4);
    expect(r.logger.find({ level: 'debug', msg: 'rejected by admission' })).toHaveLength(4);
    expect(contexts[4]).toMatchObject({ count: 2 });
    expect(r.host.stats.effectErrors).toBe(0);
  });

  it('readOnly message types are applied in arrival order with the journaled inputs but never journaled (queries must not grow the log)', async () => {
    const store = new MemoryStore();
    const r = rig(store);
    await r.ready;
    await r.host.spawn({ ...SPEC, readOnly: ['msg.test.ping'] });
    await r.settle();
    await r.burst(1, 50);
    await r.settle();
    expect(r.pongs).toEqual(range(1, 50));
    expect(r.context().seen).toEqual(range(1, 50));
    expect(pingsIn(await journalOf(store))).toEqual([]);
    expect(() => checkAdmission({ readOnly: ['test.ping'] })).toThrow(/readOnly/);
  });

  it('maxPending refuses bus messages as admit.queue-full while that many inputs are unapplied; timers are never refused', async () => {
    const store = new HeldStore();
    const r = rig(store, false);
    const pendings: number[] = [];
    const spec: ActorSpec = { ...SPEC, maxPending: 3, admit: (_e, state) => void pendings.push(state.pending) };
    await r.ready;
    await r.host.spawn(spec);
    await r.settle(); // host.start applied: the tick is armed for START + 1000
    store.hold();
    await r.burst(1, 5);
    await r.hub.idle();
    expect(pendings).toEqual([0, 1, 2]);
    expect(r.host.stats.rejections['admit.queue-full']).toBe(2);
    await r.scheduler.runUntil(START + 1000); // the queue is full, the tick still goes in
    store.release();
    await r.settle();
    expect(r.context()).toMatchObject({ seen: [1, 2, 3], ticks: 1 });
    expect((await journalOf(store)).map((e) => e.type)).toEqual(['host.start', 'msg.test.ping', 'msg.test.ping', 'msg.test.ping', 'timer.tick']);
    await r.ping(6); // drained: admitted again
    await r.settle();
    expect(r.context().seen).toEqual([1, 2, 3, 6]);
    expect(r.host.stats.rejectedAdmissions).toBe(2);
  });
});
