/**
 * Full-replay mode (`journal: { snapshots: false }`): the journal is the whole
 * state. A restart replays it from the beginning with the machine's effects
 * dropped (no reply re-sent, no timer armed, no record appended, nothing
 * logged), then re-arms timers from context and sends host.resume. No
 * snapshot is ever written. rebuildFromJournal recreates the same state from
 * the store alone.
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
import { JournalIncompleteError } from '../../services/host/journal.ts';
import { rebuildFromJournal, RebuildError } from '../../services/host/rebuild.ts';
import { MemoryLogger } from '../../services/log.ts';
import { MemoryStore } from '../../services/store/memory.ts';
import { openSqliteStore, type SqliteStore } from '../../services/store/sqlite.ts';
import { VirtualScheduler } from '../../services/time/virtual.ts';

const START = 1_000_000;
const ADDRESS = 'app-backend/a1';
const STREAM = `journal/${ADDRESS}`;
const AUDIT = 'audit/a1';
const REPLY = 'tc/v1/host/client/inbox';

const pingCodec = (type: string): MessageCodec<{ n: number }> => ({
  type,
  decode: (b) => (typeof b === 'object' && b !== null && 'n' in b && typeof b.n === 'number' ? accept({ n: b.n }) : reject(type, 'bad', 'n')),
  encode: (v) => ({ n: v.n }),
});

type Ctx = { count: number; sum: number; ticks: number; resumed: number; timers: Record<string, number> };
type Ping = MessageEvent<'test.ping', { n: number }>;
/**
 * Counts messages and replies to each; every effect kind a replay must not
 * repeat: a reply, an audit record, a log line, a timer. Also logs on entry
 * (a fresh actor's first effect) and counts host.resume.
 */
const counter = setup({
  types: { context: {} as Ctx, events: {} as HostEvent | Ping | TimerEvent<'tick'>, emitted: {} as Effect },
  actions: {
    count: assign(({ context, event }) => ({ count: context.count + 1, sum: context.sum + (event as Ping).body.n })),
    reply: emit(({ event }) => {
      const e = event as Ping;
      return { type: 'bus.send', topic: e.envelope.replyTo ?? 'none', msgType: 'test.pong', body: { n: e.body.n } } as const;
    }),
    audit: emit(({ event }) => ({ type: 'store.append', stream: AUDIT, record: new Uint8Array([(event as Ping).body.n & 0xff]) }) as const),
    logPing: emit({ type: 'log', level: 'info', msg: 'pinged' } as const),
    planTick: assign(({ context, event }) => ({ timers: withTimer(withoutFiredTimer(context.timers, event.type), 'tick', event.at + 1000) })),
    emitTick: emit(({ context }) => ({ type: 'timer.set', name: 'tick', deadline: context.timers['tick'] ?? 0 }) as const),
    tick: assign(({ context }) => ({ ticks: context.ticks + 1 })),
    resumed: assign(({ context }) => ({ resumed: context.resumed + 1 })),
  },
}).createMachine({
  context: { count: 0, sum: 0, ticks: 0, resumed: 0, timers: {} },
  entry: emit({ type: 'log', level: 'info', msg: 'born' } as const),
  on: {
    'host.start': { actions: ['planTick', 'emitTick'] },
    'host.resume': { actions: 'resumed' },
    'msg.test.ping': { actions: ['count', 'reply', 'audit', 'logPing'] },
    'timer.tick': { actions: ['tick', 'planTick', 'emitTick'] },
  },
});
const SPEC: ActorSpec = { role: 'app-backend', id: 'a1', machine: counter as AnyStateMachine, journal: { snapshots: false } };

/** Records every key ever put, to show no snapshot is written. */
function recordPuts(store: Store): string[] {
  const keys: string[] = [];
  const put = store.put.bind(store);
  store.put = (key, value) => {
    keys.push(key);
    return put(key, value);
  };
  return keys;
}

function rig(store: Store) {
  const hub = new MemoryHub();
  const client = hub.connect('client');
  const scheduler = new VirtualScheduler(START);
  const logger = new MemoryLogger();
  const messages = new MessageRegistry().register(pingCodec('test.ping')).register(pingCodec('test.pong'));
  const host = new Host({ scheduler, bus: hub.connect('host'), messages, logger, store });
  scheduler.addQuiescence(() => host.idle(), () => host.activity());
  scheduler.addQuiescence(() => hub.idle());
  const pongs: number[] = [];
  const ready = client.subscribe(REPLY, (_t, p) => {
    const env = decodeEnvelope(p);
    if (env.ok) pongs.push((env.value.body as { n: number }).n);
  });
  const burst = (from: number, to: number) =>
    Promise.all(
      Array.from({ length: to - from + 1 }, (_, i) =>
        client.publish(inboxTopic('app-backend', 'a1'), encodeEnvelope({ v: 1, type: 'test.ping', id: `p${from + i}`, from: 'host/client', at: 0, replyTo: REPLY, body: { n: from + i } })),
      ),
    );
  const context = () => host.snapshotOf('app-backend', 'a1').context as Ctx;
  return { hub, host, scheduler, logger, pongs, ready, burst, context };
}

describe('full-replay mode: journal: { snapshots: false }', () => {
  const dirs: string[] = [];
  const openTemp = async (): Promise<{ path: string; store: SqliteStore }> => {
    const dir = await mkdtemp(join(tmpdir(), 'tc-replay-'));
    dirs.push(dir);
    const path = join(dir, 'journal.db');
    return { path, store: await openSqliteStore(path) };
  };
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('a restart replays the whole journal silently: same state, no reply re-sent, timers re-armed, host.resume, no snapshot written (SQLite)', async () => {
    const N = 120;
    const opened = await openTemp();
    let store = opened.store;
    let puts = recordPuts(store);
    const first = rig(store);
    await first.ready;
    await first.host.spawn(SPEC);
    expect((await store.read(STREAM)).length).toBe(1); // an empty journal starts fresh: host.start, journaled
    await first.burst(1, 80);
    await first.scheduler.runUntil(START + 1_500); // one tick, journaled between the bursts
    await first.burst(81, N);
    await first.scheduler.runUntil(START + 1_600);
    const before = first.context();
    expect(before).toMatchObject({ count: N, ticks: 1, resumed: 0 });
    expect(first.pongs).toHaveLength(N);
    expect(first.logger.find({ msg: 'born' })).toHaveLength(1);
    await first.host.persist(); // a no-op for this actor
    const audit = (await store.read(AUDIT)).length;
    expect(audit).toBe(N);
    await store.close(); // "kill -9"

    store = await openSqliteStore(opened.path);
    puts = [...puts, ...recordPuts(store)];
    const second = rig(store);
    await second.ready;
    await second.scheduler.runUntil(START + 1_600);
    await second.host.spawn(SPEC);
    await second.hub.idle();
    expect(second.context()).toEqual({ ...before, resumed: 1 });
    expect(second.pongs).toEqual([]); // zero replies re-sent
    expect((await store.read(AUDIT)).length).toBe(audit); // no effect re-appended
    expect(second.logger.find({ msg: 'pinged' })).toEqual([]);
    expect(second.logger.find({ msg: 'born' })).toEqual([]);
    expect(second.logger.find({ msg: 'journal replayed' })[0]?.fields).toMatchObject({ actor: ADDRESS, events: N + 2 });
    // Timers re-armed from context: the next tick fires on time and is journaled as usual.
    await second.scheduler.runUntil(START + 2_100);
    expect(second.context().ticks).toBe(2);
    await second.burst(N + 1, N + 1);
    await second.scheduler.runUntil(START + 2_200);
    expect(second.context().count).toBe(N + 1);
    expect(second.pongs).toEqual([N + 1]); // live inputs are answered as always
    await second.host.stop(); // no snapshot on stop either
    expect(puts.filter((k) => k.startsWith('actor-snapshot/'))).toEqual([]);
    expect(await store.keys('actor-snapshot/')).toEqual([]);
    expect((await store.read(STREAM))[0]?.seq).toBe(1); // never compacted
    await store.close();
  });

  it('rebuildFromJournal recreates the same context from the store alone and reports the cost', async () => {
    const { store } = await openTemp();
    const r = rig(store);
    await r.ready;
    await r.host.spawn(SPEC);
    await r.burst(1, 200);
    await r.scheduler.runUntil(START + 3_500);
    const live = r.context();
    const progress: number[] = [];
    const rebuilt = await rebuildFromJournal(counter as AnyStateMachine, undefined, store, ADDRESS, { progressEvery: 50, onProgress: (n) => progress.push(n) });
    expect(rebuilt.context).toEqual(live);
    expect(rebuilt.snapshot.status).toBe('active');
    expect(rebuilt.events).toBe(1 + 200 + 3); // host.start, pings, ticks
    expect(rebuilt.ms).toBeGreaterThanOrEqual(0);
    expect(progress).toEqual([50, 100, 150, 200]);
    expect(r.pongs).toHaveLength(200); // the rebuild sent nothing
    expect((await store.read(AUDIT)).length).toBe(200);
    await r.host.stop();
    await store.close();
  });

  it('refuses a compacted journal: a full replay would miss its first events', async () => {
    const store = new MemoryStore();
    const r = rig(store);
    await r.ready;
    await r.host.spawn(SPEC);
    await r.burst(1, 3);
    await r.scheduler.runUntil(START + 10);
    await store.truncate(STREAM, 2);
    await expect(rebuildFromJournal(counter as AnyStateMachine, undefined, store, ADDRESS)).rejects.toBeInstanceOf(JournalIncompleteError);
    const second = rig(store);
    await expect(second.host.spawn(SPEC)).rejects.toBeInstanceOf(JournalIncompleteError);
    // The failed spawn left nothing behind: not registered, not waiting, so the host still goes idle.
    expect(() => second.host.snapshotOf('app-backend', 'a1')).toThrow(/never spawned/);
    await second.burst(9, 9);
    await second.hub.idle();
    await second.host.idle();
    expect((await store.read(STREAM)).map((e) => e.seq)).toEqual([3, 4]);
  });

  it('rebuildFromJournal reports a machine that fails on a journal event', async () => {
    const store = new MemoryStore();
    const r = rig(store);
    await r.ready;
    await r.host.spawn(SPEC);
    await r.burst(1, 1);
    await r.scheduler.runUntil(START + 10);
    const fragile = setup({}).createMachine({
      on: {
        'msg.test.ping': {
          actions: () => {
            throw new Error('boom');
          },
        },
      },
    });
    await expect(rebuildFromJournal(fragile, undefined, store, ADDRESS)).rejects.toBeInstanceOf(RebuildError);
  });

  it('validates the journal options (MisuseError naming the field)', async () => {
    const spawn = (journal: unknown) => rig(new MemoryStore()).host.spawn({ ...SPEC, journal: journal as NonNullable<ActorSpec['journal']> });
    await expect(spawn({ snapshots: false, compact: true })).rejects.toMatchObject({ name: 'MisuseError', field: 'journal.compact' });
    await expect(spawn({ snapshots: false, snapshotEvery: 10 })).rejects.toMatchObject({ field: 'journal.snapshotEvery' });
    await expect(spawn({ snapshots: 'no' })).rejects.toMatchObject({ field: 'journal.snapshots' });
    await expect(spawn({ snapshots: false, compact: false })).resolves.toBeUndefined();
  });
});
