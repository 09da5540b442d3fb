/**
 * The key-server machine (actors/key-server/), driven directly: submissions,
 * codes, lockout, chaff, withdrawal, revocation, expiry and publication, and
 * that replaying the same inputs re-creates the same state and files.
 */
import { describe, expect, it } from 'vitest';
import type { BlobPublishEffect, Effect } from '../../actors/effects.ts';
import { stateDigest } from '../../actors/key-server/ledger.ts';
import { applyFile, initialDistributionClientState, planFetch, type DistributionClientState } from '../../protocol/keyserver/distribution-client.ts';
import { readDistributionIndex } from '../../protocol/keyserver/distribution-index.ts';
import { openDistributionFile } from '../../protocol/keyserver/distribution-signing.ts';
import type { AdminResult, KeysStatusReply, TrackingRef } from '../../protocol/keyserver/messages.ts';
import { DEFAULT_LOCKOUT_CONFIG } from '../../protocol/keyserver/rate-limit.ts';
import { createTcnReport, verifyTcnReport } from '../../protocol/tcn/report.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import {
  DAY,
  freshCode,
  KeyServerDriver,
  KS_PUBLIC_KEYS,
  MINUTE,
  registerBody,
  replyBody,
  T0,
  tekAt,
  testDeps,
  uploadBody,
} from '../support/key-server-fixtures.ts';

const PERIOD = 15 * MINUTE;

function withProvider(driver: KeyServerDriver, providerId = 'clinic-a', at = T0): void {
  expect(replyBody<AdminResult>(driver.msg('keys.provider.add', { providerId }, at, 'operator/op'), 'keys.admin.result').ok).toBe(true);
}

function registered(driver: KeyServerDriver, providerId = 'clinic-a', at = T0): string {
  const code = freshCode(providerId, at);
  const result = replyBody<AdminResult>(driver.msg('keys.codes.register', registerBody(code), at, 'operator/op'), 'keys.admin.result');
  expect(result).toMatchObject({ ok: true, count: 1 });
  return code.text;
}

function uploadWith(driver: KeyServerDriver, code: string, first: number, at: number, from = 'phone/p1', count = 14): string {
  const records = Array.from({ length: count }, (_, i) => tekAt(first + i, at, 1 + (i % 13)));
  return replyBody<TrackingRef>(driver.msg('keys.upload', uploadBody(code, records), at, from), 'keys.upload.ack').trackingId;
}

function statusOf(driver: KeyServerDriver, trackingId: string, at: number): KeysStatusReply {
  return replyBody<KeysStatusReply>(driver.msg('keys.status', { trackingId }, at), 'keys.status.reply');
}

/** A phone-side client following every announcement (verifies names and signatures). */
class Follower {
  state: DistributionClientState = initialDistributionClientState();
  private readonly files = new Map<string, Uint8Array>();

  take(effects: readonly Effect[]): void {
    for (const effect of effects) if (effect.type === 'blob.publish') this.announce(effect);
  }

  private announce(effect: BlobPublishEffect): void {
    for (const blob of effect.blobs) this.files.set(blob.name, blob.bytes);
    const index = readDistributionIndex(effect.announce.body);
    if (!index.ok) throw new Error(index.detail);
    const plan = planFetch(this.state, index.value);
    let state = plan.mode === 'restart' ? initialDistributionClientState() : this.state;
    for (const name of plan.names) {
      const bytes = this.files.get(name);
      if (bytes === undefined) throw new Error(`missing ${name}`);
      const file = openDistributionFile(nodeSuite, KS_PUBLIC_KEYS, name, bytes);
      if (!file.ok) throw new Error(file.detail);
      const applied = applyFile(state, file.value, name);
      if (!applied.ok) throw new Error(applied.detail);
      state = applied.value;
    }
    this.state = state;
  }

  keys(): string[] {
    return Object.keys(this.state.records).sort();
  }
}

const liveIds = (driver: KeyServerDriver): string[] => [...driver.context.ledger.records.keys()].sort();

describe('key server: submissions (issue 4 "Submission")', () => {
  it('acknowledges an upload with a tracking id, then reports it accepted with its records', () => {
    const ks = new KeyServerDriver();
    ks.start();
    withProvider(ks);
    const code = registered(ks);
    const id = uploadWith(ks, code, 1, T0 + MINUTE);
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(statusOf(ks, id, T0 + 2 * MINUTE)).toEqual({ trackingId: id, state: 'accepted', reason: '', records: 14 });
    expect(ks.context.ledger.records.size).toBe(14);
  });

  it('answers a retry of an accepted upload (lost ack) with the same tracking id and no new records', () => {
    const ks = new KeyServerDriver();
    ks.start();
    withProvider(ks);
    const code = registered(ks);
    const first = uploadWith(ks, code, 1, T0 + MINUTE);
    const again = uploadWith(ks, code, 1, T0 + 2 * MINUTE);
    expect(again).toBe(first);
    expect(ks.context.ledger.uploads.size).toBe(1);
    expect(ks.context.ledger.counters.uploadRetries).toBe(1);
    // Same code, other records: a replay, refused.
    const other = uploadWith(ks, code, 100, T0 + 3 * MINUTE);
    expect(statusOf(ks, other, T0 + 4 * MINUTE)).toMatchObject({ state: 'rejected', reason: 'used' });
    expect(ks.context.ledger.records.size).toBe(14);
  });

  it('refuses unknown, expired and revoked-provider codes, future keys and malformed records with distinct reasons', () => {
    const ks = new KeyServerDriver();
    ks.start();
    withProvider(ks);
    const unknown = freshCode('clinic-a', T0).text; // never registered
    expect(statusOf(ks, uploadWith(ks, unknown, 1, T0 + MINUTE), T0 + MINUTE).reason).toBe('unknown-code');
    const late = registered(ks);
    expect(statusOf(ks, uploadWith(ks, late, 1, T0 + DAY), T0 + DAY).reason).toBe('expired');
    const future = registered(ks, 'clinic-a', T0 + DAY);
    const ahead = [tekAt(1, T0 + DAY, -3)];
    const futureId = replyBody<TrackingRef>(ks.msg('keys.upload', uploadBody(future, ahead), T0 + DAY), 'keys.upload.ack').trackingId;
    expect(statusOf(ks, futureId, T0 + DAY).reason).toBe('future-key');
    const body = { ...uploadBody(future, [tekAt(1, T0 + DAY)]), records: Uint8Array.of(0x7f, 1, 2) };
    const malformed = replyBody<TrackingRef>(ks.msg('keys.upload', body, T0 + DAY), 'keys.upload.ack').trackingId;
    expect(statusOf(ks, malformed, T0 + DAY).reason).toBe('malformed');
    // A malformed upload does not spend the code: the fixed upload goes through.
    expect(statusOf(ks, uploadWith(ks, future, 1, T0 + DAY), T0 + DAY).state).toBe('accepted');
    ks.msg('keys.provider.revoke', { providerId: 'clinic-a', retroactive: false, since: 0 }, T0 + DAY + 1, 'operator/op');
    const afterRevoke = freshCode('clinic-a', T0 + DAY);
    const refused = ks.msg('keys.codes.register', registerBody(afterRevoke), T0 + DAY + 2, 'operator/op');
    expect(replyBody<AdminResult>(refused, 'keys.admin.result')).toMatchObject({ ok: false, reason: 'provider-revoked' });
    expect(statusOf(ks, uploadWith(ks, afterRevoke.text, 50, T0 + DAY + 2), T0 + DAY + 2).reason).toBe('unknown-code');
    expect(ks.context.ledger.counters.rejected).toMatchObject({ 'unknown-code': 2, expired: 1, 'future-key': 1, malformed: 1 });
  }, 20_000);

  it('verifies TCN reports on arrival (SPECS §3): a signed report is accepted, a report with one byte changed is refused as bad-tcn-signature', () => {
    const ks = new KeyServerDriver(testDeps((report) => verifyTcnReport(nodeSuite, report).ok));
    ks.start();
    withProvider(ks);
    const rak = nodeSuite.sha256(new TextEncoder().encode('tcn test rak'));
    const report = createTcnReport(nodeSuite, rak, 1, 40, { type: 0, data: new TextEncoder().encode('symptoms') });
    const good = replyBody<TrackingRef>(ks.msg('keys.upload', uploadBody(registered(ks), [{ protocol: 'tcn-report', report }]), T0 + 1), 'keys.upload.ack');
    expect(statusOf(ks, good.trackingId, T0 + 2)).toMatchObject({ state: 'accepted', records: 1 });
    const forged = report.slice();
    forged[70] = (forged[70] ?? 0) ^ 1; // first memo byte: covered by the signature
    const bad = replyBody<TrackingRef>(ks.msg('keys.upload', uploadBody(registered(ks), [{ protocol: 'tcn-report', report: forged }]), T0 + 3), 'keys.upload.ack');
    expect(statusOf(ks, bad.trackingId, T0 + 4)).toMatchObject({ state: 'rejected', reason: 'bad-tcn-signature' });
    expect(ks.context.ledger.records.size).toBe(1);
  });

  it('locks a client out after repeated wrong codes, without affecting other clients', () => {
    const ks = new KeyServerDriver();
    ks.start();
    withProvider(ks);
    const valid = registered(ks);
    for (let i = 0; i < DEFAULT_LOCKOUT_CONFIG.maxFailures; i++) uploadWith(ks, freshCode('x', T0).text, i, T0 + i, 'phone/guesser');
    const locked = uploadWith(ks, valid, 1, T0 + 10, 'phone/guesser');
    expect(statusOf(ks, locked, T0 + 11).reason).toBe('locked-out');
    expect(statusOf(ks, uploadWith(ks, valid, 1, T0 + 12, 'phone/honest'), T0 + 13).state).toBe('accepted');
  });

  it('accepts chaff like an upload and discards it: same ack shape, status accepted, no records, no code spent, no lockout', () => {
    const ks = new KeyServerDriver();
    ks.start();
    withProvider(ks);
    const code = registered(ks);
    for (let i = 0; i < 20; i++) {
      const fake = replyBody<TrackingRef>(ks.msg('keys.upload', uploadBody(freshCode('x', T0).text, [tekAt(i, T0)], true), T0 + i), 'keys.upload.ack');
      expect(Object.keys(fake)).toEqual(['trackingId']);
      expect(statusOf(ks, fake.trackingId, T0 + i)).toMatchObject({ state: 'accepted', records: 0 });
    }
    expect(ks.context.ledger.records.size).toBe(0);
    expect(statusOf(ks, uploadWith(ks, code, 1, T0 + MINUTE), T0 + MINUTE).state).toBe('accepted');
    expect(ks.context.ledger.counters.chaff).toBe(20);
  });

  it('remembers at most statusMemory rejected statuses under a flood of wrong codes', () => {
    const ks = new KeyServerDriver(testDeps(), { statusMemory: 50 });
    ks.start();
    for (let i = 0; i < 400; i++) uploadWith(ks, freshCode('x', T0).text, i, T0 + i, `phone/f${i}`, 1);
    expect(ks.context.ledger.statuses.size).toBe(50);
    expect(ks.context.ledger.counters.rejected['unknown-code']).toBe(400);
  });
});

describe('key server: distribution, withdrawal, revocation, expiry (issue 4)', () => {
  it('publishes a signed delta per period with changes, and a full dump at the day boundary that a fresh client can start from', () => {
    const ks = new KeyServerDriver();
    ks.start(T0 + 1);
    withProvider(ks, 'clinic-a', T0 + 1);
    const follower = new Follower();
    uploadWith(ks, registered(ks, 'clinic-a', T0 + 2), 1, T0 + 3);
    follower.take(ks.tick(T0 + PERIOD));
    expect(follower.keys()).toEqual(liveIds(ks));
    expect(ks.tick(T0 + 2 * PERIOD).filter((e) => e.type === 'blob.publish')).toHaveLength(0); // nothing changed
    uploadWith(ks, registered(ks, 'clinic-a', T0 + DAY - 10), 100, T0 + DAY - 5);
    const atMidnight = ks.tick(T0 + DAY);
    follower.take(atMidnight);
    const announced = atMidnight.find((e): e is BlobPublishEffect => e.type === 'blob.publish');
    expect(announced?.blobs).toHaveLength(2); // the delta, then the full dump
    const fresh = new Follower();
    fresh.take(atMidnight);
    expect(fresh.state.appliedFull).not.toBeNull();
    expect(fresh.keys()).toEqual(liveIds(ks));
    expect(follower.keys()).toEqual(liveIds(ks));
  });

  it('withdraws one upload by tracking id for its own provider only; the next delta deletes its keys', () => {
    const ks = new KeyServerDriver();
    ks.start();
    withProvider(ks, 'clinic-a');
    withProvider(ks, 'clinic-b');
    const follower = new Follower();
    const a = uploadWith(ks, registered(ks, 'clinic-a'), 1, T0 + 1);
    uploadWith(ks, registered(ks, 'clinic-b'), 100, T0 + 2);
    follower.take(ks.tick(T0 + PERIOD));
    expect(follower.keys()).toHaveLength(28);
    const wrong = replyBody<AdminResult>(ks.msg('keys.upload.withdraw', { providerId: 'clinic-b', trackingId: a }, T0 + PERIOD + 1, 'operator/b'), 'keys.admin.result');
    expect(wrong).toMatchObject({ ok: false, reason: 'unknown-upload' });
    const right = replyBody<AdminResult>(ks.msg('keys.upload.withdraw', { providerId: 'clinic-a', trackingId: a }, T0 + PERIOD + 1, 'operator/a'), 'keys.admin.result');
    expect(right).toMatchObject({ ok: true, count: 1 });
    expect(statusOf(ks, a, T0 + PERIOD + 2)).toMatchObject({ state: 'withdrawn', reason: 'withdrawn-by-provider' });
    follower.take(ks.tick(T0 + 2 * PERIOD));
    expect(follower.keys()).toEqual(liveIds(ks));
    expect(follower.keys()).toHaveLength(14);
  });

  it('revokes a provider retroactively since T: later uploads leave distribution in the next delta, earlier ones and other providers stay', () => {
    const ks = new KeyServerDriver();
    ks.start();
    withProvider(ks, 'clinic-a');
    withProvider(ks, 'clinic-b');
    const follower = new Follower();
    const before = uploadWith(ks, registered(ks, 'clinic-a'), 1, T0 + 1);
    follower.take(ks.tick(T0 + PERIOD));
    const since = T0 + PERIOD + 10;
    const after1 = uploadWith(ks, registered(ks, 'clinic-a', since), 100, since);
    const after2 = uploadWith(ks, registered(ks, 'clinic-a', since), 200, since + 5);
    const other = uploadWith(ks, registered(ks, 'clinic-b', since), 300, since + 6);
    follower.take(ks.tick(T0 + 2 * PERIOD));
    expect(follower.keys()).toHaveLength(56);
    const revoked = replyBody<AdminResult>(ks.msg('keys.provider.revoke', { providerId: 'clinic-a', retroactive: true, since }, T0 + 2 * PERIOD + 1, 'operator/op'), 'keys.admin.result');
    expect(revoked).toMatchObject({ ok: true, count: 2 });
    follower.take(ks.tick(T0 + 3 * PERIOD));
    expect(follower.keys()).toEqual(liveIds(ks));
    expect(follower.keys()).toHaveLength(28);
    expect(statusOf(ks, after1, T0 + 3 * PERIOD).state).toBe('withdrawn');
    expect(statusOf(ks, after2, T0 + 3 * PERIOD).state).toBe('withdrawn');
    expect(statusOf(ks, before, T0 + 3 * PERIOD).state).toBe('accepted');
    expect(statusOf(ks, other, T0 + 3 * PERIOD).state).toBe('accepted');
  });

  it('keeps a key two uploads share until both are withdrawn (reference counting)', () => {
    const ks = new KeyServerDriver();
    ks.start();
    withProvider(ks);
    const one = uploadWith(ks, registered(ks), 1, T0 + 1, 'phone/p1', 3);
    const two = uploadWith(ks, registered(ks), 1, T0 + 2, 'phone/p2', 3);
    expect(ks.context.ledger.records.size).toBe(3);
    ks.msg('keys.upload.withdraw', { providerId: 'clinic-a', trackingId: one }, T0 + 3, 'operator/a');
    expect(ks.context.ledger.records.size).toBe(3);
    ks.msg('keys.upload.withdraw', { providerId: 'clinic-a', trackingId: two }, T0 + 4, 'operator/a');
    expect(ks.context.ledger.records.size).toBe(0);
  });

  it('drops keys past the 14-day retention as deletions, and reports the upload expired', () => {
    const ks = new KeyServerDriver();
    ks.start();
    withProvider(ks);
    const follower = new Follower();
    const id = uploadWith(ks, registered(ks), 1, T0 + 1, 'phone/p1', 1); // key of day T0-1
    follower.take(ks.tick(T0 + PERIOD));
    expect(follower.keys()).toHaveLength(1);
    // The key's day ends at T0; it leaves distribution 14 days later.
    for (let t = T0 + 2 * PERIOD; t <= T0 + 14 * DAY; t += 6 * 60 * MINUTE) follower.take(ks.tick(t));
    follower.take(ks.tick(T0 + 14 * DAY + PERIOD));
    expect(ks.context.ledger.records.size).toBe(0);
    expect(follower.keys()).toHaveLength(0);
    expect(statusOf(ks, id, T0 + 14 * DAY + PERIOD).state).toBe('expired');
    expect(ks.context.ledger.counters.recordsExpired).toBe(1);
  });
});

describe('key server: the journal is the source of truth (issue 4 "Event log")', () => {
  it('replaying the same inputs re-creates the same state digest, tracking ids and file names', () => {
    const inputs: { type: string; body: unknown; at: number; from: string }[] = [];
    const run = (driver: KeyServerDriver): Effect[] => {
      driver.start();
      const all: Effect[] = [];
      for (const i of inputs) all.push(...(i.type === 'tick' ? driver.tick(i.at) : driver.msg(i.type, i.body, i.at, i.from)));
      return all;
    };
    const providers = ['clinic-a', 'clinic-b'];
    const codes = providers.flatMap((p) => Array.from({ length: 6 }, () => ({ p, code: freshCode(p, T0) })));
    for (const p of providers) inputs.push({ type: 'keys.provider.add', body: { providerId: p }, at: T0, from: 'operator/op' });
    for (const { code } of codes) inputs.push({ type: 'keys.codes.register', body: registerBody(code), at: T0, from: 'operator/op' });
    codes.forEach(({ code }, i) => {
      inputs.push({ type: 'keys.upload', body: uploadBody(code.text, [tekAt(i * 10, T0 + i * PERIOD), tekAt(i * 10 + 1, T0 + i * PERIOD, 2)]), at: T0 + i * PERIOD + 7, from: `phone/p${i}` });
      inputs.push({ type: 'tick', body: null, at: T0 + (i + 1) * PERIOD, from: '' });
    });
    inputs.push({ type: 'keys.provider.revoke', body: { providerId: 'clinic-b', retroactive: true, since: T0 + 3 * PERIOD }, at: T0 + 13 * PERIOD, from: 'operator/op' });
    inputs.push({ type: 'tick', body: null, at: T0 + 14 * PERIOD, from: '' });
    const first = new KeyServerDriver();
    const second = new KeyServerDriver();
    const effectsA = run(first);
    const effectsB = run(second);
    const names = (effects: Effect[]): string[] => effects.flatMap((e) => (e.type === 'blob.publish' ? e.blobs.map((b) => b.name) : []));
    expect(names(effectsA).length).toBeGreaterThan(5);
    expect(names(effectsB)).toEqual(names(effectsA));
    expect(stateDigest(nodeSuite, second.context.ledger)).toBe(stateDigest(nodeSuite, first.context.ledger));
    // A different history gives a different digest (the digest is not constant).
    second.msg('keys.provider.add', { providerId: 'clinic-c' }, T0 + 15 * PERIOD, 'operator/op');
    expect(stateDigest(nodeSuite, second.context.ledger)).not.toBe(stateDigest(nodeSuite, first.context.ledger));
  });
});
