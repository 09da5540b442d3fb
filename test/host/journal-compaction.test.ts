/**
 * Journal compaction (docs/decisions/0002): once a snapshot is durable, the
 * journal forgets the events it covers — at most snapshotEvery records are
 * kept, a restart restores snapshot + remaining journal, numbering survives a
 * fully compacted journal and a store reopen, and a failing truncate loses
 * nothing.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AnyStateMachine } from 'xstate';
import { afterAll, describe, expect, it } from 'vitest';
import type { ActorSpec } from '../../services/host/host.ts';
import { decodeSnapshot, snapshotKey } from '../../services/host/snapshots.ts';
import { MemoryStore } from '../../services/store/memory.ts';
import { openSqliteStore } from '../../services/store/sqlite.ts';
import { drive, gated, rig, SPEC, STREAM } from '../support/journal-rig.ts';

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
