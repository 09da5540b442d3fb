/**
 * Uploads and expectations of the revocation end-to-end test (test/e2e/keyserver-revocation.test.ts).
 */
import { expect } from 'vitest';
import type { DistributionFile } from '../../protocol/keyserver/distribution-file.ts';
import { recordId, type GaenTekRecord, type IdentifiedRecord } from '../../protocol/keyserver/distribution-records.ts';
import { type AdminResult, type KeysStatusReply } from '../../protocol/keyserver/messages.ts';
import type { IssuedUploadCode } from '../../protocol/keyserver/upload-code.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import type { KeyServerClient } from '../../services/keyserver/client.ts';
import type { KeyCity } from './key-city.ts';
import { MINUTE, DAY, PROVIDER_A, PROVIDER_B, TEKS_PER_UPLOAD, PRE_T_UPLOADS_AT, T, ALL_UPLOADED, ALL_PUBLISHED, JUST_PAST, SECRETS, nextBoundary, sorted } from './key-city.ts';

// ---------------------------------------------------------------- uploads

/** 14 GAEN TEKs of one patient: one key per day, today back to 13 days ago (all within the 14-day retention at `at`). */
export function teks(patient: string, at: number): GaenTekRecord[] {
  const today = Math.floor(at / DAY);
  return Array.from({ length: TEKS_PER_UPLOAD }, (_, i) => ({
    protocol: 'gaen-tek' as const,
    key: nodeSuite.sha256(new TextEncoder().encode(`${patient} tek ${i}`)).slice(0, 16),
    rollingStartIntervalNumber: (today - i) * 144,
    rollingPeriod: 144,
    transmissionRisk: 1 + (i % 8),
  }));
}

export interface Upload {
  readonly name: string;
  readonly provider: string;
  readonly at: number;
  readonly ids: readonly string[];
  readonly trackingId: string;
  readonly client: KeyServerClient;
}

/** The scenario's uploads and what it expects of them. */
export class Uploads {
  readonly all: Upload[] = [];
  private readonly codes = new Map<string, IssuedUploadCode[]>();

  constructor(
    private readonly city: KeyCity,
    private readonly operator: KeyServerClient,
  ) {}

  /** Providers added over the admin topic; `count` codes issued for each (pepper from the test's secrets). */
  async setUp(count: number): Promise<void> {
    for (const providerId of [PROVIDER_A, PROVIDER_B]) {
      expect(await this.operator.admin('keys.provider.add', { providerId })).toMatchObject({ ok: true, count: 1 });
      this.codes.set(providerId, await this.operator.issueCodes(providerId, count, SECRETS.pepper, DAY, this.city.scheduler.now()));
    }
  }

  private code(provider: string): IssuedUploadCode {
    const code = this.codes.get(provider)?.shift();
    if (code === undefined) throw new Error(`no code left for ${provider}`);
    return code;
  }

  /** A patient of `provider` uploads 14 TEKs from their own phone, now (virtual time); `sharing` puts one of another upload's keys in. */
  async upload(name: string, provider: string, sharing?: { readonly from: string; readonly index: number }): Promise<Upload> {
    const at = this.city.scheduler.now();
    const records = teks(name, at);
    if (sharing !== undefined) {
      const other = teks(sharing.from, this.get(sharing.from).at)[sharing.index];
      if (other === undefined) throw new Error('no such key');
      records[0] = other;
    }
    const client = await this.city.client(name);
    const trackingId = await client.upload(this.code(provider).text, records);
    const upload = { name, provider, at, ids: records.map((r) => recordId(nodeSuite, r)), trackingId, client };
    this.all.push(upload);
    return upload;
  }

  /** An upload under a code of a revoked provider: acknowledged like any other, then rejected. */
  async uploadRefused(name: string, provider: string): Promise<KeysStatusReply> {
    const client = await this.city.client(name);
    const trackingId = await client.upload(this.code(provider).text, teks(name, this.city.scheduler.now()));
    return client.status(trackingId);
  }

  get(name: string): Upload {
    const upload = this.all.find((u) => u.name === name);
    if (upload === undefined) throw new Error(`no upload ${name}`);
    return upload;
  }

  /** A's uploads authorized at or after T: what the retroactive revocation withdraws. */
  withdrawn(): Upload[] {
    return this.all.filter((u) => u.provider === PROVIDER_A && u.at >= T);
  }

  kept(): Upload[] {
    return this.all.filter((u) => !(u.provider === PROVIDER_A && u.at >= T));
  }

  ids(uploads: readonly Upload[]): Set<string> {
    return new Set(uploads.flatMap((u) => u.ids));
  }

  /** Records that must leave distribution: the withdrawn uploads' keys no kept upload also holds. */
  deletions(): string[] {
    const kept = this.ids(this.kept());
    return sorted([...this.ids(this.withdrawn())].filter((id) => !kept.has(id)));
  }
}

/** 21:00–22:00 of the timeline: every upload, before and after T, then the delta boundary after the last one. */
export async function uploadEverything(city: KeyCity, uploads: Uploads, between?: () => Promise<void>): Promise<void> {
  await city.run(PRE_T_UPLOADS_AT);
  for (const name of ['a1', 'a2', 'a3']) await uploads.upload(name, PROVIDER_A);
  for (const name of ['b1', 'b2', 'b3']) await uploads.upload(name, PROVIDER_B);
  await city.run(nextBoundary(PRE_T_UPLOADS_AT) + JUST_PAST);
  expectConverged(city);
  expect(city.live()).toEqual(sorted(uploads.ids(uploads.all)));
  await between?.();
  await city.run(T - 1);
  await uploads.upload('a4', PROVIDER_A); // 1 ms before T: kept
  await city.run(T);
  await uploads.upload('a5', PROVIDER_A); // at T exactly: withdrawn
  await uploads.upload('b4', PROVIDER_B);
  await city.run(T + 3 * MINUTE);
  await uploads.upload('a6', PROVIDER_A);
  await uploads.upload('b5', PROVIDER_B);
  await city.run(ALL_UPLOADED);
  await uploads.upload('a7', PROVIDER_A);
  await uploads.upload('b6', PROVIDER_B, { from: 'a6', index: 3 }); // one key B also vouches for: it must stay
  await city.run(ALL_PUBLISHED + JUST_PAST);
}

// ---------------------------------------------------------------- expectations

/** Every online phone holds exactly the server's live set. */
export function expectConverged(city: KeyCity): void {
  const live = city.live();
  const diverged = city.onlinePhones().filter((id) => city.held(id).join() !== live.join());
  expect(diverged).toEqual([]);
}

export function expectPhonesHealthy(city: KeyCity, ids: readonly string[]): void {
  for (const id of ids) {
    const c = city.phone(id);
    expect({ id, rejected: c.counters.rejected, gaveUp: c.counters.gaveUp, retries: c.counters.retries, missing: c.counters.missing, pending: c.pending }).toEqual({
      id,
      rejected: {},
      gaveUp: 0,
      retries: 0,
      missing: 0,
      pending: null,
    });
  }
}

/** Before the revocation: every phone holds every upload's keys, A's post-T ones included. */
export function expectAllHeld(city: KeyCity, uploads: Uploads): void {
  expectConverged(city);
  const everything = sorted(uploads.ids(uploads.all));
  expect(city.live()).toEqual(everything);
  for (const id of city.onlinePhones()) expect(city.held(id)).toEqual(everything);
}

/** The server's reply to the revocation, and that nothing changed on the phones yet. */
export async function revoke(city: KeyCity, operator: KeyServerClient, uploads: Uploads): Promise<AdminResult> {
  const before = new Map(city.onlinePhones().map((id) => [id, city.held(id)]));
  const result = await operator.admin('keys.provider.revoke', { providerId: PROVIDER_A, retroactive: true, since: T });
  // Out of distribution on the server at once …
  const live = new Set(city.live());
  expect(uploads.deletions().filter((id) => live.has(id))).toEqual([]);
  // … but a phone learns it only from the next delta.
  for (const [id, held] of before) expect(city.held(id)).toEqual(held);
  return result;
}

/** After the delta: every phone dropped exactly the withdrawn keys; A's pre-T keys and all of B's stay. */
export function expectWithdrawnDropped(city: KeyCity, uploads: Uploads, phones: readonly string[] = city.onlinePhones()): void {
  const kept = sorted(uploads.ids(uploads.kept()));
  const withdrawnOnly = uploads.deletions();
  expect(city.live()).toEqual(kept);
  const aPreT = uploads.ids(uploads.kept().filter((u) => u.provider === PROVIDER_A));
  const ofB = uploads.ids(uploads.all.filter((u) => u.provider === PROVIDER_B));
  for (const id of phones) {
    const held = city.held(id);
    const holding = new Set(held);
    expect({ id, held }).toEqual({ id, held: kept });
    expect(withdrawnOnly.filter((r) => holding.has(r))).toEqual([]);
    expect([...aPreT].every((r) => holding.has(r))).toBe(true);
    expect([...ofB].every((r) => holding.has(r))).toBe(true);
  }
}

/** The delta at the top of the index carries exactly the withdrawn keys as deletions, and nothing else. */
export async function expectRevocationDelta(city: KeyCity, uploads: Uploads, seqBefore: number): Promise<DistributionFile<IdentifiedRecord>> {
  const index = city.latestIndex();
  expect(index.seq).toBe(seqBefore + 1);
  const name = index.deltas[index.deltas.length - 1];
  if (name === undefined) throw new Error('the index lists no delta');
  const delta = await city.openFile(name);
  expect(delta.kind).toBe('delta');
  expect(delta.seq).toBe(seqBefore + 1);
  expect(delta.additions).toEqual([]);
  expect(sorted(delta.deletions)).toEqual(uploads.deletions());
  return delta;
}

export async function expectStatuses(uploads: Uploads): Promise<void> {
  for (const u of uploads.withdrawn()) {
    expect(await u.client.status(u.trackingId)).toEqual({ trackingId: u.trackingId, state: 'withdrawn', reason: 'provider-revoked', records: TEKS_PER_UPLOAD });
  }
  for (const u of uploads.kept()) {
    expect(await u.client.status(u.trackingId)).toEqual({ trackingId: u.trackingId, state: 'accepted', reason: '', records: TEKS_PER_UPLOAD });
  }
}

export const filesApplied = (city: KeyCity, ids: readonly string[]): Map<string, number> => new Map(ids.map((id) => [id, city.phone(id).counters.filesApplied]));

// ---------------------------------------------------------------- tests

