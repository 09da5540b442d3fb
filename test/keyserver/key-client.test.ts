/**
 * The key-client machine (actors/key-client/), driven directly against a
 * key-server machine driven the same way (test/support/key-server-fixtures.ts):
 * the server's blob.publish announcements are delivered to the client as
 * `msg.keys.index`, and the client's `keys.file.get` requests are answered
 * from the files the server's ledger holds (what its file responder serves).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import type { Effect } from '../../actors/effects.ts';
import { createKeyClientMachine, heldRecordIds } from '../../actors/key-client/key-client.ts';
import { currentIndex } from '../../actors/key-server/publication.ts';
import { type DistributionIndex } from '../../protocol/keyserver/distribution-index.ts';
import { distributionFileName } from '../../protocol/keyserver/distribution-signing.ts';
import type { AdminResult } from '../../protocol/keyserver/messages.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { announced, KeyClientDriver, liveIds, mustAnnounce, PERIOD, pump, requestedNames, requests, serve, server, TIMEOUT, upload } from '../support/key-client-fixtures.ts';
import { KS_PUBLIC_KEYS, replyBody, T0 } from '../support/key-server-fixtures.ts';

describe('key client: following a key server (issue 4 "Distribution")', () => {
  it('follows deltas: one request per new delta, to the files topic with its inbox as replyTo', () => {
    const ks = server();
    const client = new KeyClientDriver();
    upload(ks, 'clinic-a', 1, T0 + 1);
    const first = mustAnnounce(ks.tick(T0 + PERIOD));
    const sent = client.index(first, T0 + PERIOD + 1);
    expect(requests(sent)).toEqual([
      expect.objectContaining({ topic: 'tc/v1/key-server/ks1/files', msgType: 'keys.file.get', body: { name: first.deltas[0] }, replyTo: 'tc/v1/phone/p1/inbox', corr: 'p1.1' }),
    ]);
    expect(sent).toContainEqual({ type: 'timer.set', name: 'fetch', deadline: T0 + PERIOD + 1 + TIMEOUT });
    expect(client.context.timers).toEqual({ fetch: T0 + PERIOD + 1 + TIMEOUT });
    pump(client, ks, sent, T0 + PERIOD + 1);
    expect(client.ids()).toEqual(liveIds(ks));
    expect(client.context.timers).toEqual({});
    expect(client.effects).toContainEqual({ type: 'timer.cancel', name: 'fetch' });

    upload(ks, 'clinic-b', 100, T0 + PERIOD + 5);
    const second = mustAnnounce(ks.tick(T0 + 2 * PERIOD));
    const next = client.index(second, T0 + 2 * PERIOD + 1);
    expect(requestedNames(next)).toEqual([second.deltas[1]]);
    pump(client, ks, next, T0 + 2 * PERIOD + 1);
    expect(client.ids()).toEqual(liveIds(ks));
    expect(client.ids()).toHaveLength(6);
    expect(client.context.state.seq).toBe(2);
    expect(client.context.index).toEqual(second);
    expect(client.context.counters).toMatchObject({ indexesSeen: 2, filesApplied: 2, requests: 2, retries: 0, gaveUp: 0, rejected: {} });
    expect(client.context.lastAppliedAt).toBe(T0 + 2 * PERIOD + 11);
  });

  it('catches up after missing deltas: fetches the missed ones in chain order', () => {
    const ks = server();
    const client = new KeyClientDriver();
    upload(ks, 'clinic-a', 1, T0 + 1);
    pump(client, ks, client.index(mustAnnounce(ks.tick(T0 + PERIOD)), T0 + PERIOD), T0 + PERIOD);
    upload(ks, 'clinic-a', 10, T0 + PERIOD + 1);
    ks.tick(T0 + 2 * PERIOD); // announcement lost
    upload(ks, 'clinic-b', 20, T0 + 2 * PERIOD + 1);
    ks.tick(T0 + 3 * PERIOD); // announcement lost
    upload(ks, 'clinic-b', 30, T0 + 3 * PERIOD + 1);
    const latest = mustAnnounce(ks.tick(T0 + 4 * PERIOD));
    const asked: string[] = [];
    pump(client, ks, client.index(latest, T0 + 4 * PERIOD), T0 + 4 * PERIOD, { lose: (name) => (asked.push(name), false) });
    expect(asked).toEqual(latest.deltas.slice(1));
    expect(client.ids()).toEqual(liveIds(ks));
    expect(client.context.state.seq).toBe(4);
  });

  it('an index not newer than the state asks for nothing; an older one than the last seen is counted and ignored', () => {
    const ks = server();
    const client = new KeyClientDriver();
    upload(ks, 'clinic-a', 1, T0 + 1);
    const first = mustAnnounce(ks.tick(T0 + PERIOD));
    pump(client, ks, client.index(first, T0 + PERIOD), T0 + PERIOD);
    expect(client.index(first, T0 + PERIOD + 100)).toEqual([]);
    upload(ks, 'clinic-a', 10, T0 + PERIOD + 1);
    const second = mustAnnounce(ks.tick(T0 + 2 * PERIOD));
    pump(client, ks, client.index(second, T0 + 2 * PERIOD), T0 + 2 * PERIOD);
    expect(client.index(first, T0 + 2 * PERIOD + 100)).toEqual([]);
    expect(client.context.index).toEqual(second);
    expect(client.context.counters).toMatchObject({ indexesSeen: 4, staleIndexes: 1, filesApplied: 2 });
  });

  it('a fresh client starts from the full dump, then the deltas after it', () => {
    const ks = server({ fullEveryMs: 2 * PERIOD });
    upload(ks, 'clinic-a', 1, T0 + 1);
    ks.tick(T0 + PERIOD);
    upload(ks, 'clinic-b', 10, T0 + PERIOD + 1);
    ks.tick(T0 + 2 * PERIOD); // delta 2 and a full dump at seq 2
    upload(ks, 'clinic-a', 20, T0 + 2 * PERIOD + 1);
    const index = mustAnnounce(ks.tick(T0 + 3 * PERIOD));
    expect(index.latestFull).not.toBeNull();
    expect(index.deltas).toHaveLength(1);
    const client = new KeyClientDriver({ clientId: 'p2' }, T0 + 3 * PERIOD);
    const asked: string[] = [];
    pump(client, ks, client.index(index, T0 + 3 * PERIOD), T0 + 3 * PERIOD, { lose: (name) => (asked.push(name), false) });
    expect(asked).toEqual([index.latestFull, ...index.deltas]);
    expect(client.ids()).toEqual(liveIds(ks));
    expect(client.context.state).toMatchObject({ seq: 3, appliedFull: index.latestFull });
  });

  it('a client behind the full dump switches to it as soon as it is applied, and keeps it when the delta after it is lost', () => {
    const ks = server({ fullEveryMs: 2 * PERIOD });
    const client = new KeyClientDriver({ maxRetries: 0 });
    upload(ks, 'clinic-a', 1, T0 + 1);
    pump(client, ks, client.index(mustAnnounce(ks.tick(T0 + PERIOD)), T0 + PERIOD), T0 + PERIOD);
    upload(ks, 'clinic-b', 10, T0 + PERIOD + 1);
    ks.tick(T0 + 2 * PERIOD); // missed: delta 2 and the full dump at seq 2
    const atFull = liveIds(ks);
    upload(ks, 'clinic-a', 20, T0 + 2 * PERIOD + 1);
    const index = mustAnnounce(ks.tick(T0 + 3 * PERIOD));
    expect(requestedNames(client.index(index, T0 + 3 * PERIOD))).toEqual([index.latestFull]);
    expect(client.context.staging).toMatchObject({ seq: 0 }); // rebuilding from genesis, seq-1 records still held
    expect(client.ids()).toHaveLength(3);
    const next = client.file(serve(ks, index.latestFull!), T0 + 3 * PERIOD + 1);
    expect(requestedNames(next)).toEqual(index.deltas);
    expect(client.context.staging).toBeNull();
    expect(client.context.state.seq).toBe(2);
    expect(client.ids()).toEqual(atFull);
    client.fire(T0 + 3 * PERIOD + 1 + TIMEOUT); // the delta's reply lost, no retries left
    expect(client.context.counters.gaveUp).toBe(1);
    expect(client.ids()).toEqual(atFull);
  });

  it('rejects a tampered file (one byte changed) and counts it; the next index recovers', () => {
    const ks = server();
    const client = new KeyClientDriver();
    upload(ks, 'clinic-a', 1, T0 + 1);
    const first = mustAnnounce(ks.tick(T0 + PERIOD));
    const sent = client.index(first, T0 + PERIOD);
    const name = requestedNames(sent)[0]!;
    const bytes = serve(ks, name).bytes.slice();
    bytes[bytes.length >> 1]! ^= 0x01;
    expect(client.file({ name, found: true, bytes }, T0 + PERIOD + 10)).toEqual([{ type: 'timer.cancel', name: 'fetch' }]);
    expect(client.context.counters).toMatchObject({ rejected: { 'name-mismatch': 1 }, gaveUp: 1, filesApplied: 0 });
    expect(client.context.pending).toBeNull();
    expect(client.ids()).toEqual([]);

    upload(ks, 'clinic-b', 10, T0 + PERIOD + 1);
    const second = mustAnnounce(ks.tick(T0 + 2 * PERIOD));
    pump(client, ks, client.index(second, T0 + 2 * PERIOD), T0 + 2 * PERIOD);
    expect(client.ids()).toEqual(liveIds(ks));
    expect(client.context.counters.filesApplied).toBe(2);
  });

  it('a forged index naming re-hashed tampered bytes gets them refused by the signature check', () => {
    const ks = server();
    const client = new KeyClientDriver();
    upload(ks, 'clinic-a', 1, T0 + 1);
    const genuine = mustAnnounce(ks.tick(T0 + PERIOD));
    const bytes = serve(ks, genuine.deltas[0]!).bytes.slice();
    bytes[bytes.length >> 1]! ^= 0x01;
    const forgedName = distributionFileName(nodeSuite, bytes);
    client.index({ ...genuine, deltas: [forgedName] }, T0 + PERIOD);
    client.file({ name: forgedName, found: true, bytes }, T0 + PERIOD + 10);
    expect(client.context.counters.rejected).toEqual({ 'bad-signature': 1 });
    expect(client.ids()).toEqual([]);
    pump(client, ks, client.index(genuine, T0 + PERIOD + 20), T0 + PERIOD + 20); // the genuine retained index, re-delivered
    expect(client.ids()).toEqual(liveIds(ks));
  });

  it('a lying index (a delta left out) ends in a gap: re-plan, one rebuild from genesis, then it waits for the next index', () => {
    const ks = server();
    const client = new KeyClientDriver();
    const deltas: string[] = [];
    for (let k = 1; k <= 3; k++) {
      upload(ks, 'clinic-a', 10 * k, T0 + (k - 1) * PERIOD + 1);
      const index = mustAnnounce(ks.tick(T0 + k * PERIOD));
      deltas.push(index.deltas.at(-1)!);
      if (k === 1) pump(client, ks, client.index(index, T0 + PERIOD), T0 + PERIOD);
    }
    const genuine = currentIndex(ks.context.ledger, T0 + 3 * PERIOD);
    const asked: string[] = [];
    const lying: DistributionIndex = { v: 1, latestFull: null, deltas: [deltas[0]!, deltas[2]!], seq: 2, publishedAt: T0 + 3 * PERIOD };
    pump(client, ks, client.index(lying, T0 + 3 * PERIOD), T0 + 3 * PERIOD, { lose: (name) => (asked.push(name), false) });
    expect(asked).toEqual([deltas[2], deltas[0], deltas[2]]);
    expect(client.context.counters).toMatchObject({ rejected: { gap: 2 }, replans: 2, gaveUp: 1 });
    expect(client.context).toMatchObject({ pending: null, staging: null, state: { seq: 1 } });
    pump(client, ks, client.index(genuine, T0 + 3 * PERIOD + 100), T0 + 3 * PERIOD + 100);
    expect(client.ids()).toEqual(liveIds(ks));
  });

  it('retries a lost reply on timer.fetch with the same name, and gives up after maxRetries until the next index', () => {
    const ks = server();
    const client = new KeyClientDriver({ maxRetries: 2 });
    upload(ks, 'clinic-a', 1, T0 + 1);
    const index = mustAnnounce(ks.tick(T0 + PERIOD));
    const name = requestedNames(client.index(index, T0 + PERIOD))[0]!;
    const deadline = T0 + PERIOD + TIMEOUT;
    expect(client.fire(deadline - 1)).toEqual([{ type: 'timer.set', name: 'fetch', deadline }]); // early: keep waiting
    const retry = client.fire(deadline);
    expect(requestedNames(retry)).toEqual([name]);
    expect(retry).toContainEqual({ type: 'timer.set', name: 'fetch', deadline: deadline + TIMEOUT });
    expect(client.context.pending).toMatchObject({ name, attempts: 2, requestId: 'p1.2', deadline: deadline + TIMEOUT });
    expect(requestedNames(client.fire(deadline + TIMEOUT))).toEqual([name]);
    expect(client.fire(deadline + 2 * TIMEOUT)).toEqual([]); // third timeout: retries used up
    expect(client.context).toMatchObject({ pending: null, timers: {}, counters: { retries: 2, gaveUp: 1 } });

    // A late reply to a request already given up on is a stray.
    client.file(serve(ks, name), deadline + 2 * TIMEOUT + 1);
    expect(client.context.counters.unmatchedReplies).toBe(1);
    expect(client.ids()).toEqual([]);
    // The retained index, re-delivered, starts over.
    pump(client, ks, client.index(index, deadline + 3 * TIMEOUT), deadline + 3 * TIMEOUT);
    expect(client.ids()).toEqual(liveIds(ks));
  });

  it('keeps one request in flight when an index arrives mid-fetch, and re-plans after a missing file (found: false)', () => {
    const ks = server({ fullEveryMs: 2 * PERIOD });
    const client = new KeyClientDriver();
    upload(ks, 'clinic-a', 1, T0 + 1);
    const first = mustAnnounce(ks.tick(T0 + PERIOD));
    const asked = requestedNames(client.index(first, T0 + PERIOD));
    upload(ks, 'clinic-b', 10, T0 + PERIOD + 1);
    const second = mustAnnounce(ks.tick(T0 + 2 * PERIOD)); // a full dump: the server no longer holds delta 1
    expect(second.deltas).toEqual([]);
    expect(client.index(second, T0 + 2 * PERIOD)).toEqual([]);
    const after = client.file(serve(ks, asked[0]!), T0 + 2 * PERIOD + 1);
    expect(client.context.counters).toMatchObject({ missing: 1, replans: 1 });
    expect(requestedNames(after)).toEqual([second.latestFull]);
    pump(client, ks, after, T0 + 2 * PERIOD + 1);
    expect(client.ids()).toEqual(liveIds(ks));
  });

  it('ignores a reply for a name it did not ask for', () => {
    const ks = server();
    const client = new KeyClientDriver();
    upload(ks, 'clinic-a', 1, T0 + 1);
    const index = mustAnnounce(ks.tick(T0 + PERIOD));
    client.index(index, T0 + PERIOD);
    expect(client.file({ name: 'ab'.repeat(32), found: true, bytes: new Uint8Array(4) }, T0 + PERIOD + 1)).toEqual([]);
    expect(client.context.counters).toMatchObject({ unmatchedReplies: 1, rejected: {} });
    expect(client.context.pending?.name).toBe(index.deltas[0]);
  });

  it('after a retroactive provider revocation and the next tick, holds exactly the server live records', () => {
    const ks = server();
    const client = new KeyClientDriver();
    upload(ks, 'clinic-a', 1, T0 + 1);
    pump(client, ks, client.index(mustAnnounce(ks.tick(T0 + PERIOD)), T0 + PERIOD), T0 + PERIOD);
    const since = T0 + PERIOD + 10;
    upload(ks, 'clinic-a', 100, since);
    upload(ks, 'clinic-b', 200, since + 1);
    pump(client, ks, client.index(mustAnnounce(ks.tick(T0 + 2 * PERIOD)), T0 + 2 * PERIOD), T0 + 2 * PERIOD);
    expect(client.ids()).toHaveLength(9);
    const revoked = replyBody<AdminResult>(ks.msg('keys.provider.revoke', { providerId: 'clinic-a', retroactive: true, since }, T0 + 2 * PERIOD + 1, 'operator/op'), 'keys.admin.result');
    expect(revoked).toMatchObject({ ok: true, count: 1 });
    pump(client, ks, client.index(mustAnnounce(ks.tick(T0 + 3 * PERIOD)), T0 + 3 * PERIOD), T0 + 3 * PERIOD);
    expect(client.ids()).toEqual(liveIds(ks));
    expect(client.ids()).toHaveLength(6);
  });

  it('on another chain (wrong-base), rebuilds from the full dump in staging and keeps its records until the rebuild is newer', () => {
    const a = server();
    const b = server({ fullEveryMs: 2 * PERIOD });
    const client = new KeyClientDriver();
    upload(a, 'clinic-a', 1, T0 + 1);
    pump(client, a, client.index(mustAnnounce(a.tick(T0 + PERIOD)), T0 + PERIOD), T0 + PERIOD);
    upload(a, 'clinic-a', 10, T0 + PERIOD + 1);
    pump(client, a, client.index(mustAnnounce(a.tick(T0 + 2 * PERIOD)), T0 + 2 * PERIOD), T0 + 2 * PERIOD);
    const held = client.ids();
    // The same server id and key, restored from another history (b): its full dump sits at the client's seq.
    upload(b, 'clinic-b', 50, T0 + 1);
    b.tick(T0 + PERIOD);
    upload(b, 'clinic-b', 60, T0 + PERIOD + 1);
    b.tick(T0 + 2 * PERIOD);
    upload(b, 'clinic-b', 70, T0 + 2 * PERIOD + 1);
    const index = mustAnnounce(b.tick(T0 + 3 * PERIOD));
    const [delta] = requestedNames(client.index(index, T0 + 3 * PERIOD));
    expect(delta).toBe(index.deltas[0]);
    const full = client.file(serve(b, delta!), T0 + 3 * PERIOD + 1);
    expect(client.context.counters).toMatchObject({ rejected: { 'wrong-base': 1 }, replans: 1 });
    expect(requestedNames(full)).toEqual([index.latestFull]);
    const rest = client.file(serve(b, index.latestFull!), T0 + 3 * PERIOD + 2);
    expect(client.context.staging?.seq).toBe(2);
    expect(client.ids()).toEqual(held); // the rebuild is not newer yet
    expect(requestedNames(rest)).toEqual(index.deltas);
    pump(client, b, rest, T0 + 3 * PERIOD + 3);
    expect(client.context.staging).toBeNull();
    expect(client.ids()).toEqual(liveIds(b));
  });

  it('survives persist → restore mid-fetch: the deadline is in context.timers and host.resume re-sends the request', () => {
    const ks = server();
    const client = new KeyClientDriver();
    upload(ks, 'clinic-a', 1, T0 + 1);
    const index = mustAnnounce(ks.tick(T0 + PERIOD));
    const name = requestedNames(client.index(index, T0 + PERIOD))[0]!;
    const snapshot = JSON.parse(JSON.stringify(client.actor.getPersistedSnapshot())) as ReturnType<typeof client.actor.getPersistedSnapshot>;
    const restored = createActor(createKeyClientMachine({ crypto: nodeSuite, publicKeys: KS_PUBLIC_KEYS }), { snapshot, input: { serverId: 'ks1', clientId: 'p1' } });
    const effects: Effect[] = [];
    restored.on('*', (effect: Effect) => effects.push(effect));
    restored.start();
    expect(restored.getSnapshot().context.timers).toEqual({ fetch: T0 + PERIOD + TIMEOUT });
    restored.send({ type: 'host.resume', at: T0 + PERIOD + 5 });
    expect(requestedNames(effects)).toEqual([name]);
    const bytes = serve(ks, name).bytes;
    restored.send({ type: 'msg.keys.file', at: T0 + PERIOD + 6, envelope: { v: 1, type: 'keys.file', id: 'x', from: 'key-server/ks1', at: T0 + PERIOD + 6, body: {} }, body: { name, found: true, bytes } });
    expect(heldRecordIds(restored.getSnapshot().context)).toEqual(liveIds(ks));
  });
});

// ------------------------------------------------------------------ model

type Op =
  | { readonly kind: 'upload'; readonly provider: 'clinic-a' | 'clinic-b'; readonly first: number; readonly count: number }
  | { readonly kind: 'withdraw'; readonly pick: number }
  | { readonly kind: 'tick'; readonly deliver: boolean; readonly losses: readonly boolean[]; readonly fire: boolean };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('upload' as const), provider: fc.constantFrom('clinic-a' as const, 'clinic-b' as const), first: fc.integer({ min: 0, max: 12 }), count: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('withdraw' as const), pick: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('tick' as const), deliver: fc.boolean(), losses: fc.array(fc.boolean(), { maxLength: 6 }), fire: fc.boolean() }) },
);

describe('key client: model', () => {
  it('random uploads, withdrawals, ticks and client message loss converge to the server set once the last index arrives without loss', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 4, maxLength: 30, size: 'max' }), (ops) => {
        const ks = server({ fullEveryMs: 3 * PERIOD });
        const client = new KeyClientDriver({ maxRetries: 1 });
        const uploads: { provider: string; trackingId: string }[] = [];
        let now = T0 + 1;
        let period = 0;
        for (const op of ops) {
          now += 10;
          if (op.kind === 'upload') {
            uploads.push({ provider: op.provider, trackingId: upload(ks, op.provider, op.first, now, op.count) });
          } else if (op.kind === 'withdraw') {
            const target = uploads.splice(op.pick % Math.max(1, uploads.length), 1)[0];
            if (target !== undefined) ks.msg('keys.upload.withdraw', { providerId: target.provider, trackingId: target.trackingId }, now, 'operator/op');
          } else {
            period++;
            now = Math.max(now, T0 + period * PERIOD);
            const index = announced(ks.tick(T0 + period * PERIOD));
            if (index === undefined || !op.deliver) continue;
            let n = 0;
            now = pump(client, ks, client.index(index, now), now, { lose: () => op.losses[n++ % Math.max(1, op.losses.length)] === true, fireTimers: op.fire });
          }
        }
        // The last tick, then its index (or the retained one) delivered and served without loss.
        period++;
        now = Math.max(now, T0 + period * PERIOD) + 10;
        ks.tick(T0 + period * PERIOD);
        const last = currentIndex(ks.context.ledger, now);
        pump(client, ks, client.index(last, now), now, { fireTimers: true });
        expect(client.context.pending).toBeNull();
        expect(client.ids()).toEqual(liveIds(ks));
      }),
      { numRuns: 100 },
    );
  });
});
