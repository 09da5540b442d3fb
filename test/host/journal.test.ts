/**
 * Journaled actors (docs/decisions/0002): an input reaches the machine only
 * after it is durable, so anything the machine acknowledges is durable; a
 * restart restores the last snapshot and replays the journal after it.
 */
import { describe, expect, it } from 'vitest';
import { MessageRegistry } from '../../protocol/wire/messages.ts';
import { MemoryHub } from '../../services/bus/memory.ts';
import { Host } from '../../services/host/host.ts';
import { MemoryLogger } from '../../services/log.ts';
import { MemoryStore } from '../../services/store/memory.ts';
import { VirtualScheduler } from '../../services/time/virtual.ts';
import { GATED, rig, SPEC } from '../support/journal-rig.ts';

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
