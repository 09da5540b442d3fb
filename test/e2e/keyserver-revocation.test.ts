/**
 * Issue 4 acceptance: "Retroactive provider revocation: every simulated phone
 * drops the withdrawn keys after the next delta (test)."
 *
 * End to end with the real parts, in one process under virtual time: one
 * MemoryHub; the key-server service (startKeyServerService) journaling its
 * event log in SQLite (temp file) and writing its files into a
 * DirectoryBlobStore (temp dir); ≥ 50 simulated phones, each a key-client
 * actor in a second Host on the same hub and scheduler, following the
 * server's retained index and fetching files from its file responder over the
 * bus. Providers, codes, uploads, statuses and the revocation all go through
 * KeyServerClient over the bus, as a provider's tool and the patients' phones
 * would send them.
 *
 * Simulated time only advances when the bus, every host and the blob store
 * are idle (VirtualScheduler.addQuiescence), so "just past the next delta
 * boundary" means: the tick fired, its files were written, its index was
 * announced and every phone finished fetching.
 *
 * Timeline (server defaults: 15-min deltas, daily full dump at 00:00 UTC):
 *   21:00  start; providers clinic-a, clinic-b; codes
 *   21:02  pre-T uploads: A×3, B×3                         → delta 21:15
 *   T−1ms  A×1 (the last pre-T upload)                      → delta 21:45
 *   T      A×1, B×1 (at T exactly: withdrawn — "at or after")
 *   T+3m   A×1, B×1                                         → delta 21:45
 *   T+8m   A×1, B×1 (B's shares one key with an A upload)   → delta 22:00
 *   22:05  keys.provider.revoke { clinic-a, retroactive, since: T }
 *   22:15  the delta carrying the deletions
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SECOND, MINUTE, PERIOD, PROVIDER_A, PROVIDER_B, PHONES, TEKS_PER_UPLOAD, MIDNIGHT, PRE_T_UPLOADS_AT, REVOKE_AT, REVOCATION_DELTA, JUST_PAST, nextBoundary, sorted, KeyCity } from '../support/key-city.ts';
import { Uploads, uploadEverything, expectConverged, expectPhonesHealthy, expectAllHeld, revoke, expectWithdrawnDropped, expectRevocationDelta, expectStatuses, filesApplied } from '../support/key-city-checks.ts';

let running: KeyCity | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

describe('retroactive provider revocation, end to end (key server on SQLite, 60 phones, virtual time)', () => {
  it('every phone drops exactly the keys of the provider’s uploads at or after `since` with the next delta, keeping its earlier keys and all of the other provider’s', async () => {
    const city = await KeyCity.start(PHONES);
    running = city;
    const operator = await city.operator();
    const uploads = new Uploads(city, operator);
    await uploads.setUp(8);
    await uploadEverything(city, uploads);

    // 13 uploads × 14 TEKs, one key shared by a6 (A, withdrawn) and b6 (B): 181 records, on every phone.
    expect(uploads.all).toHaveLength(13);
    expectAllHeld(city, uploads);
    expect(city.live()).toHaveLength(13 * TEKS_PER_UPLOAD - 1);
    const seqBefore = city.latestIndex().seq;

    await city.run(REVOKE_AT);
    const result = await revoke(city, operator, uploads);
    // a5 (at T exactly), a6, a7 — not a4 (1 ms before T).
    expect(uploads.withdrawn().map((u) => u.name)).toEqual(['a5', 'a6', 'a7']);
    expect(result).toMatchObject({ ok: true, count: uploads.withdrawn().length });
    // Revocation is final: A's remaining codes authorize nothing any more.
    await city.run(REVOKE_AT + MINUTE);
    expect(await uploads.uploadRefused('a8', PROVIDER_A)).toMatchObject({ state: 'rejected', reason: 'provider-revoked', records: 0 });

    // Just before the boundary the phones still hold everything; just past it, the withdrawn keys are gone everywhere.
    await city.run(REVOCATION_DELTA - 1);
    expect(city.latestIndex().seq).toBe(seqBefore);
    for (const id of city.onlinePhones()) expect(city.held(id)).toHaveLength(13 * TEKS_PER_UPLOAD - 1);
    const applied = filesApplied(city, city.phones);
    await city.run(REVOCATION_DELTA + JUST_PAST);

    // 3 uploads × 14 keys, less the one b6 also holds: 41 deletions, in one delta.
    expect(uploads.deletions()).toHaveLength(3 * TEKS_PER_UPLOAD - 1);
    const delta = await expectRevocationDelta(city, uploads, seqBefore);
    expect(delta.periodEnd).toBe(REVOCATION_DELTA);
    expectWithdrawnDropped(city, uploads);
    expect(city.phones).toHaveLength(PHONES);
    // Each phone fetched exactly that one delta.
    for (const [id, before] of applied) expect(city.phone(id).counters.filesApplied).toBe(before + 1);
    // The key b6 shares with a6 stays: b6 still vouches for it.
    const shared = uploads.get('b6').ids[0];
    expect(uploads.get('a6').ids).toContain(shared);
    for (const id of city.phones) expect(city.held(id)).toContain(shared);
    await expectStatuses(uploads);
    expectPhonesHealthy(city, city.phones);
    city.checkServerHealthy();
    city.checkHostsHealthy();
    expect(city.problems).toEqual([]);
  });

  it('a phone offline during the revocation delta, one offline past the day’s full dump and one first started after it all converge to the same set', async () => {
    const city = await KeyCity.start(PHONES - 2);
    running = city;
    await city.spawnSleeper('sleeper-delta');
    await city.spawnSleeper('sleeper-full');
    const operator = await city.operator();
    const uploads = new Uploads(city, operator);
    await uploads.setUp(8);
    await uploadEverything(city, uploads);
    expectAllHeld(city, uploads);
    const seqBefore = city.latestIndex().seq;

    // Both sleepers hold A's post-T keys when they go offline.
    await city.run(REVOKE_AT - 3 * MINUTE);
    await city.sleep('sleeper-delta');
    await city.sleep('sleeper-full');
    for (const id of ['sleeper-delta', 'sleeper-full']) expect(city.held(id)).toEqual(sorted(uploads.ids(uploads.all)));

    await city.run(REVOKE_AT);
    expect(await revoke(city, operator, uploads)).toMatchObject({ ok: true, count: 3 });
    await city.run(REVOCATION_DELTA + JUST_PAST);
    await expectRevocationDelta(city, uploads, seqBefore);
    expectWithdrawnDropped(city, uploads);
    // The sleepers missed it: they still hold the withdrawn keys.
    for (const id of ['sleeper-delta', 'sleeper-full']) expect(city.held(id)).toEqual(sorted(uploads.ids(uploads.all)));

    // Back before the full dump: the retained index still lists the delta it missed; it fetches just that.
    const backAt = REVOCATION_DELTA + 15 * MINUTE + 7 * SECOND;
    await city.run(backAt);
    const before = city.phone('sleeper-delta').counters.filesApplied;
    await city.wake('sleeper-delta');
    await city.run(backAt + JUST_PAST);
    expect(city.latestIndex().latestFull).toBeNull();
    expect(city.phone('sleeper-delta').counters.filesApplied).toBe(before + 1);
    expect(city.phone('sleeper-delta').state.seq).toBe(seqBefore + 1);
    expectWithdrawnDropped(city, uploads);

    // Midnight: the day's full dump (no change since the delta, so no new delta). No phone needs it.
    const applied = filesApplied(city, city.onlinePhones());
    await city.run(MIDNIGHT + JUST_PAST);
    const atMidnight = city.latestIndex();
    expect(atMidnight.seq).toBe(seqBefore + 1);
    expect(atMidnight.deltas).toEqual([]);
    if (atMidnight.latestFull === null) throw new Error('no full dump at the day boundary');
    const full = await city.openFile(atMidnight.latestFull);
    expect(full).toMatchObject({ kind: 'full', seq: seqBefore + 1, periodEnd: MIDNIGHT });
    expect(sorted(full.additions.map((r) => r.id))).toEqual(sorted(uploads.ids(uploads.kept())));
    for (const [id, n] of applied) expect(city.phone(id).counters.filesApplied).toBe(n);

    // A new phone starts after the full dump (it takes the retained index at once),
    // then B uploads once more: a delta on top of the full dump.
    await city.run(MIDNIGHT + MINUTE);
    await city.spawnPhone('late');
    await city.run(MIDNIGHT + 5 * MINUTE);
    await uploads.upload('b7', PROVIDER_B);
    await city.run(MIDNIGHT + PERIOD + JUST_PAST);
    expect(city.latestIndex()).toMatchObject({ seq: seqBefore + 2, latestFull: atMidnight.latestFull });
    expectWithdrawnDropped(city, uploads);

    // The other sleeper comes back: like the new phone, it rebuilds from the full dump and the delta after it.
    const wakeAt = MIDNIGHT + PERIOD + 5 * MINUTE;
    await city.run(wakeAt);
    const sleeperBefore = city.phone('sleeper-full').counters.filesApplied;
    await city.wake('sleeper-full');
    await city.run(wakeAt + JUST_PAST);
    expect(city.phone('sleeper-full').counters.filesApplied).toBe(sleeperBefore + 2);
    expect(city.phone('late').counters.filesApplied).toBe(2);
    for (const id of ['sleeper-full', 'late']) expect(city.phone(id).state).toMatchObject({ seq: seqBefore + 2, appliedFull: atMidnight.latestFull });
    expect(city.onlinePhones()).toHaveLength(PHONES + 1);
    expectWithdrawnDropped(city, uploads);
    expectConverged(city);
    expectPhonesHealthy(city, city.onlinePhones());
    city.checkServerHealthy();
    city.checkHostsHealthy();
    expect(city.problems).toEqual([]);
  });

  // Regression (services/host/host.ts, Host.spawn): a non-journaled actor's topics were subscribed
  // before `host.start`, so the retained index handed out on subscribe reached the key client while
  // still `idle` and was dropped; a phone started after the last publication held nothing until the
  // server published again. The host now holds such deliveries until host.start / host.resume.
  it('a phone first started after the last publication takes the retained index at once and holds the live set', async () => {
    const city = await KeyCity.start(3);
    running = city;
    const uploads = new Uploads(city, await city.operator());
    await uploads.setUp(2);
    await city.run(PRE_T_UPLOADS_AT);
    await uploads.upload('a1', PROVIDER_A);
    await uploads.upload('b1', PROVIDER_B);
    await city.run(nextBoundary(PRE_T_UPLOADS_AT) + JUST_PAST);
    expectConverged(city);
    await city.spawnPhone('late');
    await city.run(nextBoundary(PRE_T_UPLOADS_AT) + MINUTE);
    expect(city.phone('late').counters.indexesSeen).toBe(1);
    expect(city.held('late')).toEqual(city.live());
  });

  it('a key server restarted on its SQLite log replays it — between uploads, and between the revocation and its delta while down across the boundary — and every phone still drops exactly the withdrawn keys', async () => {
    const city = await KeyCity.start(PHONES);
    running = city;
    const operator = await city.operator();
    const uploads = new Uploads(city, operator);
    await uploads.setUp(8);
    const digest = async (): Promise<string> => {
      const state = await operator.admin('keys.server.state', {});
      expect(state.ok).toBe(true);
      return state.stateDigest;
    };

    // Restart 1: after the first delta, before T.
    await uploadEverything(city, uploads, async () => {
      const before = await digest();
      await city.restartServer();
      expect(await digest()).toBe(before);
      expectConverged(city);
    });
    expectAllHeld(city, uploads);
    const seqBefore = city.latestIndex().seq;

    // Restart 2: the revocation is only in the log when the server stops; it stays down across the delta boundary.
    await city.run(REVOKE_AT);
    expect(await revoke(city, operator, uploads)).toMatchObject({ ok: true, count: 3 });
    const revokedDigest = await digest();
    await city.run(REVOKE_AT + MINUTE);
    await city.stopServer();
    const downUntil = REVOCATION_DELTA + 5 * MINUTE;
    await city.run(downUntil);
    // No server, no delta: the phones still hold the withdrawn keys.
    expect(city.latestIndex().seq).toBe(seqBefore);
    for (const id of city.phones) expect(city.held(id)).toEqual(sorted(uploads.ids(uploads.all)));

    await city.startServer();
    city.restarts++;
    // The fold of the log reproduces the state, the revocation included.
    expect(await digest()).toBe(revokedDigest);
    expect(city.live()).toEqual(sorted(uploads.ids(uploads.kept())));
    // The overdue tick fires on the first step after the restart.
    await city.run(downUntil + JUST_PAST);
    const delta = await expectRevocationDelta(city, uploads, seqBefore);
    expect(delta.periodEnd).toBe(downUntil);
    expectWithdrawnDropped(city, uploads);
    await expectStatuses(uploads);

    // And it keeps publishing on its period: B's next upload reaches every phone, the withdrawn keys stay gone.
    await uploads.upload('b7', PROVIDER_B);
    await city.run(nextBoundary(downUntil) + JUST_PAST);
    expect(city.latestIndex().seq).toBe(seqBefore + 2);
    expectWithdrawnDropped(city, uploads);
    expect(city.restarts).toBe(2);
    expectPhonesHealthy(city, city.phones);
    city.checkServerHealthy();
    city.checkHostsHealthy();
    expect(city.problems).toEqual([]);
  });
});

