/**
 * Journaled actors (docs/decisions/0002): an input reaches the machine only
 * after it is durable, so anything the machine acknowledges is durable; a
 * restart restores the last snapshot and replays the journal after it.
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
import { MemoryLogger } from '../../services/log.ts';
import { decodeSnapshot, snapshotKey } from '../../services/host/snapshots.ts';
import { MemoryStore } from '../../services/store/memory.ts';
import { openSqliteStore } from '../../services/store/sqlite.ts';
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

const SPEC: ActorSpec = { role: 'app-backend', id: 'a1', machine: counter as AnyStateMachine, journal: { snapshotEvery: 3 } };

/** Like the real backends: inputs count only once host.start moved it to running; host.stop is final. */
const gated = setup({
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
const GATED: ActorSpec = { role: 'app-backend', id: 'a1', machine: gated as AnyStateMachine, journal: { snapshotEvery: 100 } };
const REPLY = 'tc/v1/host/client/inbox';

/** A store whose appends complete only when released: "the disk is slow". */
class GatedStore extends MemoryStore {
  private open: () => void = () => undefined;
  private readonly gate = new Promise<void>((resolve) => (this.open = resolve));
  release(): void {
    this.open();
  }
  override async append(stream: string, record: Uint8Array): Promise<number> {
    await this.gate;
    return super.append(stream, record);
  }
}

function rig(store: Store) {
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

describe('journaled actors: acknowledged = durable, restart = snapshot + replay', () => {
  it('the machine (and so its ack) sees an input only after the journal append is durable', async () => {
    const store = new GatedStore();
    const r = rig(store);
    await r.ready;
    await r.host.spawn(SPEC);
    await r.ping(1);
    await r.hub.idle();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(r.context().count).toBe(0);
    expect(r.pongs).toEqual([]);
    store.release();
    await r.host.idle();
    await r.hub.idle();
    expect(r.context().count).toBe(1);
    expect(r.pongs).toEqual([1]);
    // host.start is journaled too (a restart before the first snapshot replays it first).
    expect((await store.read('journal/app-backend/a1')).map((e) => e.seq)).toEqual([1, 2]);
  });

  it('a restarted host restores the last snapshot and replays the journal after it (at-least-once effects)', async () => {
    const store = new MemoryStore();
    const first = rig(store);
    await first.ready;
    await first.host.spawn(SPEC);
    for (let n = 1; n <= 7; n++) await first.ping(n);
    await first.scheduler.runUntil(1_000_000 + 2_500); // two ticks, journaled too
    expect(first.context()).toMatchObject({ count: 7, ticks: 2 });
    // 10 events (host.start, 7 pings, 2 ticks); the snapshot after event 9 let the journal drop 1–9.
    expect((await store.read('journal/app-backend/a1')).map((e) => e.seq)).toEqual([10]);
    // "kill -9": the first host is abandoned without stop() or persist().

    const second = rig(store);
    await second.ready;
    await second.scheduler.runUntil(1_000_000 + 2_500);
    await second.host.spawn(SPEC);
    await second.hub.idle();
    expect(second.context()).toMatchObject({ count: 7, ticks: 2 });
    // Snapshots were taken after events 3, 6 and 9: only the last tick is replayed, no duplicate acks.
    expect(second.pongs).toEqual([]);
    expect(second.context().timers['tick']).toBe(1_000_000 + 3_000);
    await second.scheduler.runUntil(1_000_000 + 3_500);
    expect(second.context().ticks).toBe(3);
  });

  it('events after the last snapshot are replayed and their effects re-emitted', async () => {
    const store = new MemoryStore();
    const first = rig(store);
    await first.ready;
    await first.host.spawn({ ...SPEC, journal: { snapshotEvery: 100 } });
    await first.host.persist(); // snapshot at journal position 0
    for (let n = 1; n <= 4; n++) await first.ping(n);
    await first.scheduler.runUntil(1_000_000 + 500);
    expect(first.pongs).toEqual([1, 2, 3, 4]);

    const second = rig(store);
    await second.ready;
    await second.host.spawn({ ...SPEC, journal: { snapshotEvery: 100 } });
    await second.hub.idle();
    expect(second.context().count).toBe(4);
    expect(second.pongs).toEqual([1, 2, 3, 4]); // re-sent: receivers must be idempotent
  });

  it('a restart before the first snapshot replays host.start first, so a gated machine runs again', async () => {
    const store = new MemoryStore();
    const first = rig(store);
    await first.ready;
    await first.host.spawn(GATED);
    for (let n = 1; n <= 3; n++) await first.ping(n);
    await first.scheduler.runUntil(1_000_000 + 100);
    expect(first.pongs).toEqual([1, 2, 3]);
    // "kill -9" before any snapshot: only the journal is left.
    expect(await store.keys('actor-snapshot/')).toEqual([]);

    const second = rig(store);
    await second.ready;
    await second.host.spawn(GATED);
    await second.ping(4);
    await second.scheduler.runUntil(1_000_000 + 200);
    expect(second.host.snapshotOf('app-backend', 'a1').value).toBe('running');
    expect((second.context() as unknown as { count: number }).count).toBe(4);
    expect(second.pongs).toEqual([1, 2, 3, 4]); // replayed acks re-sent, then the new one
  });

  it('a host stopped cleanly persists the running machine: a restart on the same store resumes it', async () => {
    const store = new MemoryStore();
    const first = rig(store);
    await first.ready;
    await first.host.spawn(GATED);
    await first.ping(1);
    await first.scheduler.runUntil(1_000_000 + 100);
    await first.host.stop();
    expect(first.host.snapshotOf('app-backend', 'a1').value).toBe('stopped');

    const second = rig(store);
    await second.ready;
    await second.host.spawn(GATED);
    await second.ping(2);
    await second.scheduler.runUntil(1_000_000 + 200);
    expect(second.host.snapshotOf('app-backend', 'a1').value).toBe('running');
    expect((second.context() as unknown as { count: number }).count).toBe(2);
    expect(second.pongs).toEqual([2]); // the snapshot covers the journal: nothing replayed
  });

  it('a failing journal append drops the input, counts it, and never crashes the host', async () => {
    const store = new MemoryStore();
    const r = rig(store);
    await r.ready;
    await r.host.spawn(SPEC);
    store.append = () => Promise.reject(new Error('disk full'));
    await r.ping(1);
    await r.scheduler.runUntil(1_000_000 + 10);
    expect(r.context().count).toBe(0);
    expect(r.pongs).toEqual([]);
    expect(r.host.stats.effectErrors).toBeGreaterThan(0);
    expect(r.logger.find({ msg: 'journal append failed; input dropped' }).length).toBeGreaterThan(0);
  });

  it('a journaled actor rejects a non-boolean compact option', async () => {
    const r = rig(new MemoryStore());
    await expect(r.host.spawn({ ...SPEC, journal: { compact: 'yes' as unknown as boolean } })).rejects.toMatchObject({ field: 'journal.compact' });
  });

  it('a journaled actor needs a store', async () => {
    const hub = new MemoryHub();
    const host = new Host({ scheduler: new VirtualScheduler(0), bus: hub.connect('h'), messages: new MessageRegistry(), logger: new MemoryLogger() });
    await expect(host.spawn(SPEC)).rejects.toThrow(/journaled but the host has no store/);
  });
});

const STREAM = 'journal/app-backend/a1';

/** Drive `rounds` × 10 pings, a tick every simulated second; `after` sees the store after each round. */
async function drive(r: ReturnType<typeof rig>, rounds: number, after: () => Promise<void>): Promise<void> {
  let n = 0;
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < 10; i++) await r.ping(++n);
    await r.scheduler.runUntil(r.scheduler.now() + 700);
    await after();
  }
}

describe('journal compaction: a durable snapshot lets the journal forget what it covers', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('keeps at most snapshotEvery journal records however many inputs arrive, exactly the events after the snapshot', async () => {
    const store = new MemoryStore();
    const r = rig(store);
    await r.ready;
    await r.host.spawn({ ...SPEC, journal: { snapshotEvery: 8 } });
    let most = 0;
    await drive(r, 30, async () => {
      const journal = await store.read(STREAM);
      most = Math.max(most, journal.length);
      const stored = decodeSnapshot((await store.get(snapshotKey('app-backend/a1')))!);
      // What is left is exactly what a restart would replay: the events after the snapshot.
      expect(journal.map((e) => e.seq)).toEqual(Array.from({ length: journal.length }, (_, i) => stored.journalSeq + 1 + i));
    });
    const ctx = r.context();
    expect(ctx.count).toBe(300);
    expect(ctx.ticks).toBeGreaterThan(10);
    const events = 1 + ctx.count + ctx.ticks; // host.start, pings, ticks
    expect(most).toBeLessThan(8);
    const journal = await store.read(STREAM);
    expect(journal.at(-1)?.seq ?? events).toBe(events);
  });

  it('a restart on a compacted journal restores the same state from snapshot + remaining journal', async () => {
    const store = new MemoryStore();
    const first = rig(store);
    await first.ready;
    await first.host.spawn({ ...SPEC, journal: { snapshotEvery: 8 } });
    await drive(first, 12, () => Promise.resolve());
    const before = first.context();
    const left = await store.read(STREAM);
    expect(left.length).toBeGreaterThan(0); // something to replay: the test covers snapshot + journal
    expect(left.length).toBeLessThan(8);
    // "kill -9": abandon the first host.

    const second = rig(store);
    await second.ready;
    await second.scheduler.runUntil(first.scheduler.now());
    await second.host.spawn({ ...SPEC, journal: { snapshotEvery: 8 } });
    await second.hub.idle();
    expect(second.context()).toEqual(before);
    // Journal numbering continued, so new inputs land after the snapshot and survive the next restart.
    await second.ping(1000);
    await second.scheduler.runUntil(second.scheduler.now() + 10);
    expect(second.context().count).toBe(before.count + 1);
  });

  it('numbering survives a fully compacted journal and a store reopen: inputs after a restart are not skipped (SQLite)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tc-journal-'));
    dirs.push(dir);
    const path = join(dir, 'journal.db');
    const spec: ActorSpec = { ...SPEC, machine: gated as AnyStateMachine, journal: { snapshotEvery: 5 } };
    const countOf = (r: ReturnType<typeof rig>): number => (r.context() as unknown as { count: number }).count;

    // host.start + 9 pings = 10 events: snapshots after 5 and 10 compact the journal to nothing.
    let store = await openSqliteStore(path);
    const first = rig(store);
    await first.ready;
    await first.host.spawn(spec);
    for (let n = 1; n <= 9; n++) await first.ping(n);
    await first.scheduler.runUntil(1_000_000 + 100);
    expect(countOf(first)).toBe(9);
    expect(await store.read(STREAM)).toEqual([]);
    await store.close(); // the process dies; SQLite keeps what was acknowledged

    store = await openSqliteStore(path);
    const second = rig(store);
    await second.ready;
    await second.host.spawn(spec);
    for (let n = 10; n <= 11; n++) await second.ping(n);
    await second.scheduler.runUntil(1_000_000 + 100);
    expect(countOf(second)).toBe(11);
    expect((await store.read(STREAM)).map((e) => e.seq)).toEqual([11, 12]); // not 1, 2: those would sort before the snapshot
    await store.close();

    store = await openSqliteStore(path);
    const third = rig(store);
    await third.ready;
    await third.host.spawn(spec);
    await third.hub.idle();
    expect(countOf(third)).toBe(11);
    expect(third.pongs).toEqual([10, 11]); // replayed after the snapshot at 10
    await third.host.stop();
    await store.close();
  });

  it('truncates only after the snapshot put has resolved, never further than that snapshot', async () => {
    /** put is slow ("fsync"); records when each snapshot put resolved and when each truncate was issued. */
    class SlowPutStore extends MemoryStore {
      readonly log: string[] = [];
      override async put(key: string, value: Uint8Array): Promise<void> {
        await new Promise((resolve) => setTimeout(resolve, 2));
        await super.put(key, value);
        if (key === snapshotKey('app-backend/a1')) this.log.push(`snapshot ${decodeSnapshot(value).journalSeq} durable`);
      }
      override truncate(stream: string, throughSeq: number): Promise<void> {
        this.log.push(`truncate ${throughSeq}`);
        return super.truncate(stream, throughSeq);
      }
    }
    const store = new SlowPutStore();
    const r = rig(store);
    await r.ready;
    await r.host.spawn({ ...SPEC, journal: { snapshotEvery: 4 } });
    await drive(r, 2, () => Promise.resolve());
    await r.host.stop(); // the final snapshot compacts too
    expect(store.log.length).toBeGreaterThan(6);
    store.log.forEach((entry, i) => {
      const m = /^truncate (\d+)$/.exec(entry);
      if (m !== null) expect(store.log[i - 1]).toBe(`snapshot ${m[1]} durable`);
    });
  });

  it('with compact: false the journal keeps every input', async () => {
    const store = new MemoryStore();
    const r = rig(store);
    await r.ready;
    await r.host.spawn({ ...SPEC, journal: { snapshotEvery: 8, compact: false } });
    await drive(r, 10, () => Promise.resolve());
    const ctx = r.context();
    const events = 1 + ctx.count + ctx.ticks;
    expect((await store.read(STREAM)).map((e) => e.seq)).toEqual(Array.from({ length: events }, (_, i) => i + 1));
    expect(decodeSnapshot((await store.get(snapshotKey('app-backend/a1')))!).journalSeq).toBeGreaterThan(events - 8);
  });

  it('a failing truncate keeps the journal, is logged, and neither drops the input nor stops later snapshots', async () => {
    const store = new MemoryStore();
    const r = rig(store);
    await r.ready;
    await r.host.spawn({ ...SPEC, journal: { snapshotEvery: 4 } });
    const truncate = store.truncate.bind(store);
    store.truncate = () => Promise.reject(new Error('disk full'));
    await drive(r, 1, () => Promise.resolve());
    expect(r.context().count).toBe(10);
    expect(r.logger.find({ level: 'warn', msg: 'journal compaction failed; events kept' }).length).toBeGreaterThan(0);
    expect(r.host.stats.effectErrors).toBe(0);
    expect((await store.read(STREAM))[0]?.seq).toBe(1);
    store.truncate = truncate;
    await drive(r, 1, () => Promise.resolve());
    const stored = decodeSnapshot((await store.get(snapshotKey('app-backend/a1')))!);
    expect((await store.read(STREAM))[0]?.seq ?? stored.journalSeq + 1).toBe(stored.journalSeq + 1);
  });
});
