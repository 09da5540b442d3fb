/**
 * Sighting filters (protocol/keyserver/sighting-filter.ts): Golomb-coded
 * sets of the identifiers a delta's keys produce, signed and bound to the
 * delta; the key server publishes one per delta when configured, and a phone
 * screens its sightings, then confirms on the delta (issue 4 "Golomb-coded sets").
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { BlobPublishEffect } from '../../actors/effects.ts';
import { filterIndexTopic } from '../../actors/key-server/publication.ts';
import type { DiagnosisRecord } from '../../protocol/keyserver/distribution-records.ts';
import { openDistributionFile } from '../../protocol/keyserver/distribution-signing.ts';
import type { AdminResult } from '../../protocol/keyserver/messages.ts';
import {
  filterIndexCodec,
  openSightingFilter,
  screenSightings,
  signSightingFilter,
  type SightingFilter,
} from '../../protocol/keyserver/sighting-filter.ts';
import { DP3T_SIGHTING_DAYS, sightingIdsOf } from '../../protocol/keyserver/sightings.ts';
import { ephIdsForDay } from '../../protocol/dp3t/lowcost.ts';
import { rpisForTek } from '../../protocol/gaen/keys.ts';
import { createTcnReport } from '../../protocol/tcn/report.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { freshCode, KeyServerDriver, KS_KEY_ID, KS_PUBLIC_KEYS, KS_SIGNING_KEY, MINUTE, registerBody, replyBody, T0, tekAt, testDeps, uploadBody } from '../support/key-server-fixtures.ts';
import { nobleSuite } from '../../protocol/crypto/noble.ts';

const SIGNER = { crypto: nobleSuite, signingKey: KS_SIGNING_KEY, keyId: KS_KEY_ID };
const DELTA = 'ab'.repeat(32);
const OTHER_DELTA = 'cd'.repeat(32);
const id16 = (label: string): Uint8Array => nodeSuite.sha256(new TextEncoder().encode(label)).slice(0, 16);

function opened(items: readonly Uint8Array[], delta = DELTA): SightingFilter {
  const signed = signSightingFilter(SIGNER, delta, 7, items);
  const verdict = openSightingFilter(nodeSuite, KS_PUBLIC_KEYS, signed.name, signed.bytes, delta);
  if (!verdict.ok) throw new Error(verdict.detail);
  return verdict.value;
}

describe('sighting filters: codec (SPECS §6 GCS with BIP158 parameters)', () => {
  it('finds every member, and non-members at about the configured 1/M rate', () => {
    const members = Array.from({ length: 2000 }, (_, i) => id16(`member ${i}`));
    const filter = opened(members);
    expect(filter).toMatchObject({ delta: DELTA, seq: 7, n: 2000, p: 19, m: 784_931 });
    const hits = screenSightings(filter, members);
    expect(hits.ok && hits.value.length).toBe(2000);
    const strangers = Array.from({ length: 200_000 }, (_, i) => id16(`stranger ${i}`));
    const false_ = screenSightings(filter, strangers);
    if (!false_.ok) throw new Error(false_.detail);
    // Expected 200,000 / 784,931 ≈ 0.25 false positives; more than 5 would be a broken filter.
    expect(false_.value.length).toBeLessThanOrEqual(5);
    // ~P + 2 bits per member (Golomb-Rice at the BIP158 parameters).
    expect(filter.filter.length * 8 / 2000).toBeLessThan(22);
  });

  it('refuses a filter bound to another delta, a changed byte, and another signer', () => {
    const signed = signSightingFilter(SIGNER, DELTA, 1, [id16('x')]);
    expect(openSightingFilter(nodeSuite, KS_PUBLIC_KEYS, signed.name, signed.bytes, OTHER_DELTA)).toMatchObject({ ok: false, reason: 'wrong-delta' });
    const changed = signed.bytes.slice();
    changed[changed.length - 80] = (changed[changed.length - 80] ?? 0) ^ 1;
    const renamed = nodeSuite.sha256(changed);
    const verdict = openSightingFilter(nodeSuite, KS_PUBLIC_KEYS, Buffer.from(renamed).toString('hex'), changed, DELTA);
    expect(verdict.ok).toBe(false);
    // A distribution-file reader does not accept a filter (separate signing contexts).
    expect(openDistributionFile(nodeSuite, KS_PUBLIC_KEYS, signed.name, signed.bytes)).toMatchObject({ ok: false });
  });

  it('random bytes only ever give typed rejections (10,000 runs)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        const name = Buffer.from(nodeSuite.sha256(bytes)).toString('hex');
        const verdict = openSightingFilter(nodeSuite, KS_PUBLIC_KEYS, name, bytes, DELTA);
        expect(verdict.ok).toBe(false);
      }),
      { numRuns: 10_000 },
    );
  });

  it('the filter index round-trips and refuses ragged entries', () => {
    const index = { seq: 3, entries: [{ delta: DELTA, filter: OTHER_DELTA }] };
    expect(filterIndexCodec.decode(filterIndexCodec.encode(index))).toEqual({ ok: true, value: index });
    expect(filterIndexCodec.decode({ v: 1, seq: 3, entries: new Uint8Array(63) })).toMatchObject({ ok: false, reason: 'field-length' });
  });
});

describe('sighting identifiers of a record (what phones hear)', () => {
  it('GAEN TEK → its 144 RPIs (SPECS §1.3); DP-3T seed → 14 days × 96 EphIDs (SPECS §2.1); TCN report → tcn_j1..tcn_j2 (SPECS §3); a forged report → none', () => {
    const tek = tekAt(1, T0);
    const rpis = sightingIdsOf(nodeSuite, tek);
    expect(rpis).toHaveLength(144);
    expect(rpis[5]).toEqual(rpisForTek(nodeSuite, tek.key, tek.rollingStartIntervalNumber, 144)[5]);
    const seed = nodeSuite.sha256(new TextEncoder().encode('dp3t seed'));
    const ephIds = sightingIdsOf(nodeSuite, { protocol: 'dp3t-seed', seed, day: 20_000 });
    expect(ephIds).toHaveLength(DP3T_SIGHTING_DAYS * 96);
    expect(ephIds.slice(0, 96)).toEqual(ephIdsForDay(nodeSuite, seed));
    const rak = nodeSuite.sha256(new TextEncoder().encode('rak'));
    const report = createTcnReport(nodeSuite, rak, 3, 12, { type: 0, data: new Uint8Array(0) });
    expect(sightingIdsOf(nodeSuite, { protocol: 'tcn-report', report })).toHaveLength(10);
    const forged = report.slice();
    forged[40] = (forged[40] ?? 0) ^ 1;
    expect(sightingIdsOf(nodeSuite, { protocol: 'tcn-report', report: forged })).toEqual([]);
    for (const id of [...rpis, ...ephIds]) expect(id).toHaveLength(16);
  });
});

describe('key server: sighting filters as an alternative distribution (issue 4)', () => {
  /** Stand-in for the protocols' derivations: 4 identifiers per record. */
  const sightingsOf = (record: DiagnosisRecord): Uint8Array[] => [0, 1, 2, 3].map((j) => id16(`${Buffer.from(record.protocol === 'gaen-tek' ? record.key : new Uint8Array(0)).toString('hex')}/${j}`));

  it('publishes a signed filter per delta and a retained filter index; a phone screens its sightings and confirms on the delta', () => {
    const ks = new KeyServerDriver({ ...testDeps(), sightingsOf }, { sightingFilters: true });
    ks.start();
    expect(replyBody<AdminResult>(ks.msg('keys.provider.add', { providerId: 'clinic-a' }, T0, 'operator/op'), 'keys.admin.result').ok).toBe(true);
    const code = freshCode('clinic-a', T0);
    ks.msg('keys.codes.register', registerBody(code), T0, 'operator/op');
    const keys = Array.from({ length: 14 }, (_, i) => tekAt(i, T0, 1 + (i % 13)));
    ks.msg('keys.upload', uploadBody(code.text, keys), T0 + 1);
    const effects = ks.tick(T0 + 15 * MINUTE);
    const filterEffect = effects.find((e): e is BlobPublishEffect => e.type === 'blob.publish' && e.announce.topic === filterIndexTopic('ks1'));
    expect(filterEffect).toBeDefined();
    const index = filterIndexCodec.decode(filterEffect?.announce.body ?? null);
    if (!index.ok) throw new Error(index.detail);
    expect(index.value.entries).toHaveLength(1);
    const entry = index.value.entries[0];
    const blob = filterEffect?.blobs.find((b) => b.name === entry?.filter);
    if (entry === undefined || blob === undefined) throw new Error('filter blob missing');
    const filter = openSightingFilter(nodeSuite, KS_PUBLIC_KEYS, blob.name, blob.bytes, entry.delta);
    if (!filter.ok) throw new Error(filter.detail);
    expect(filter.value.n).toBe(14 * 4);
    // The phone heard identifier 2 of key 5, and 500 strangers.
    const heard = [...Array.from({ length: 500 }, (_, i) => id16(`noise ${i}`)), sightingsOf(keys[5] as DiagnosisRecord)[2] as Uint8Array];
    const candidates = screenSightings(filter.value, heard);
    expect(candidates.ok && candidates.value).toContain(500);
    // Confirmation: the delta the filter names holds the key.
    const delta = effects.flatMap((e) => (e.type === 'blob.publish' ? e.blobs : [])).find((b) => b.name === entry.delta);
    const file = openDistributionFile(nodeSuite, KS_PUBLIC_KEYS, entry.delta, delta?.bytes ?? new Uint8Array(0));
    if (!file.ok) throw new Error(file.detail);
    expect(file.value.additions.some((r) => r.protocol === 'gaen-tek' && Buffer.from(r.key).equals(Buffer.from((keys[5] as { key: Uint8Array }).key)))).toBe(true);
  });

  it('publishes no filters unless configured', () => {
    const ks = new KeyServerDriver({ ...testDeps(), sightingsOf });
    ks.start();
    ks.msg('keys.provider.add', { providerId: 'clinic-a' }, T0, 'operator/op');
    const code = freshCode('clinic-a', T0);
    ks.msg('keys.codes.register', registerBody(code), T0, 'operator/op');
    ks.msg('keys.upload', uploadBody(code.text, [tekAt(1, T0)]), T0 + 1);
    const effects = ks.tick(T0 + 15 * MINUTE);
    expect(effects.filter((e) => e.type === 'blob.publish')).toHaveLength(1);
    expect(ks.context.ledger.filterIndex).toHaveLength(0);
  });
});
