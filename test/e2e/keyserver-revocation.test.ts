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
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { BlobStore, Logger } from '../../actors/ports.ts';
import { createKeyClientMachine, heldRecordIds, keyClientSubscriptions, type KeyClientContext } from '../../actors/key-client/key-client.ts';
import { indexTopic } from '../../actors/key-server/publication.ts';
import { distributionIndexCodec, type DistributionIndex } from '../../protocol/keyserver/distribution-index.ts';
import type { DistributionFile } from '../../protocol/keyserver/distribution-file.ts';
import { recordId, type GaenTekRecord, type IdentifiedRecord } from '../../protocol/keyserver/distribution-records.ts';
import { openDistributionFile } from '../../protocol/keyserver/distribution-signing.ts';
import { keyServerMessages, type AdminResult, type KeysStatusReply } from '../../protocol/keyserver/messages.ts';
import type { IssuedUploadCode } from '../../protocol/keyserver/upload-code.ts';
import { decodeEnvelope } from '../../protocol/wire/envelope.ts';
import { inboxTopic } from '../../protocol/wire/topics.ts';
import { MemoryHub, type MemoryBus } from '../../services/bus/memory.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { Host, type ActorSpec } from '../../services/host/host.ts';
import { DirectoryBlobStore } from '../../services/keyserver/blobs.ts';
import { KeyServerClient } from '../../services/keyserver/client.ts';
import type { KeyServerSecrets } from '../../services/keyserver/secrets.ts';
import { startKeyServerService, type KeyServerService } from '../../services/keyserver/service.ts';
import { MemoryStore } from '../../services/store/memory.ts';
import { openSqliteStore, type SqliteStore } from '../../services/store/sqlite.ts';
import { VirtualScheduler } from '../../services/time/virtual.ts';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** The server's default delta period (issue 4: 15 simulated minutes). */
const PERIOD = 15 * MINUTE;

const SERVER_ID = 'ks-city';
const PROVIDER_A = 'clinic-a';
const PROVIDER_B = 'clinic-b';
const PHONES = 60;
const TEKS_PER_UPLOAD = 14;

/** 2026-11-22T00:00Z: the day boundary, a full dump. */
const MIDNIGHT = Date.UTC(2026, 10, 22);
const START = MIDNIGHT - 3 * HOUR;
const PRE_T_UPLOADS_AT = START + 2 * MINUTE;
/** The revocation's `since`: 21:40, between two delta boundaries. */
const T = START + 40 * MINUTE;
const ALL_UPLOADED = T + 8 * MINUTE;
/** Every upload is in a published delta after this boundary. */
const ALL_PUBLISHED = nextBoundary(ALL_UPLOADED);
const REVOKE_AT = ALL_PUBLISHED + 5 * MINUTE;
const REVOCATION_DELTA = nextBoundary(REVOKE_AT);
/** "Just past" a boundary: everything it triggered has settled by then (time only moves when idle). */
const JUST_PAST = SECOND;

const SECRETS: KeyServerSecrets = {
  pepper: nodeSuite.sha256(new TextEncoder().encode('keyserver-revocation e2e pepper')),
  signingKey: nodeSuite.sha256(new TextEncoder().encode('keyserver-revocation e2e signing key')),
  keyId: 'ks-e2e',
};
const PUBLIC_KEYS: ReadonlyMap<string, Uint8Array> = new Map([[SECRETS.keyId, nodeSuite.p256PublicKey(SECRETS.signingKey)]]);

function nextBoundary(at: number): number {
  return (Math.floor(at / PERIOD) + 1) * PERIOD;
}

const phoneId = (i: number): string => `p${String(i).padStart(3, '0')}`;
const sorted = (ids: Iterable<string>): string[] => [...ids].sort();

// ---------------------------------------------------------------- the city

/** A BlobStore that counts its reads and writes in flight, so the scheduler can wait for the file responder. */
class TrackedBlobs implements BlobStore {
  started = 0;
  private inFlight = 0;
  private waiters: (() => void)[] = [];

  constructor(private readonly inner: BlobStore) {}

  put(name: string, bytes: Uint8Array): Promise<void> {
    return this.track(this.inner.put(name, bytes));
  }

  get(name: string): Promise<Uint8Array | undefined> {
    return this.track(this.inner.get(name));
  }

  private track<V>(op: Promise<V>): Promise<V> {
    this.started++;
    this.inFlight++;
    return op.finally(() => {
      if (--this.inFlight > 0) return;
      const waiters = this.waiters;
      this.waiters = [];
      for (const wake of waiters) wake();
    });
  }

  /** No read or write in flight, and what the reader does with the result (publish the reply) has run. */
  async idle(): Promise<void> {
    while (this.inFlight > 0) await new Promise<void>((resolve) => this.waiters.push(resolve));
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** warn/error lines of every part (expected: none). */
function collectingLogger(lines: string[]): Logger {
  const noop = (): void => undefined;
  const logger: Logger = {
    debug: noop,
    info: noop,
    warn: (msg, fields) => void lines.push(`warn ${msg} ${JSON.stringify(fields ?? {})}`),
    error: (msg, fields) => void lines.push(`error ${msg} ${JSON.stringify(fields ?? {})}`),
    child: () => logger,
  };
  return logger;
}

interface SeenIndex {
  readonly at: number;
  readonly index: DistributionIndex;
}

/** A phone in a host of its own, with a store for its snapshot: it can go offline and come back with what it held. */
interface SleeperPhone {
  readonly id: string;
  readonly store: MemoryStore;
  host: Host;
  bus: MemoryBus;
  online: boolean;
}

const keyClientMachine = createKeyClientMachine({ crypto: nodeSuite, publicKeys: PUBLIC_KEYS });

function phoneSpec(id: string): ActorSpec {
  return { role: 'phone', id, machine: keyClientMachine, input: { serverId: SERVER_ID, clientId: id }, subscribe: keyClientSubscriptions(SERVER_ID) };
}

class KeyCity {
  readonly hub: MemoryHub;
  readonly scheduler = new VirtualScheduler(START);
  readonly problems: string[] = [];
  readonly logger = collectingLogger(this.problems);
  readonly indexes: SeenIndex[] = [];
  /** Every host ever started (a stopped one is idle): the scheduler waits for all of them. */
  private readonly hosts: Host[] = [];
  private readonly phonesHost: Host;
  private readonly phonesBus: MemoryBus;
  private readonly clientsBus: MemoryBus;
  private readonly probe: MemoryBus;
  private readonly clients: KeyServerClient[] = [];
  readonly sleepers = new Map<string, SleeperPhone>();
  /** Phones in the shared phones host. */
  readonly phones: string[] = [];
  private serverBus: MemoryBus | undefined;
  private store: SqliteStore | undefined;
  private service: KeyServerService | undefined;
  restarts = 0;

  private constructor(
    readonly dir: string,
    readonly blobs: TrackedBlobs,
  ) {
    this.hub = new MemoryHub({ onError: (error, context) => void this.problems.push(`bus handler ${String(error)} ${JSON.stringify(context)}`) });
    this.phonesBus = this.hub.connect('phones');
    this.clientsBus = this.hub.connect('clients');
    this.probe = this.hub.connect('probe');
    this.phonesHost = this.newHost(this.phonesBus);
    this.scheduler.addQuiescence(
      () => this.blobs.idle(),
      () => this.blobs.started,
    );
    this.scheduler.addQuiescence(
      () => Promise.all(this.hosts.map((h) => h.idle())).then(() => undefined),
      () => this.hosts.reduce((n, h) => n + h.activity(), 0),
    );
    this.scheduler.addQuiescence(() => this.hub.idle());
  }

  static async start(phones: number): Promise<KeyCity> {
    const dir = await mkdtemp(join(tmpdir(), 'tc-ks-revocation-'));
    const city = new KeyCity(dir, new TrackedBlobs(new DirectoryBlobStore(join(dir, 'files'))));
    await city.probe.subscribe(indexTopic(SERVER_ID), (_topic, payload) => {
      const envelope = decodeEnvelope(payload);
      if (!envelope.ok) return void city.problems.push(`index envelope ${envelope.reason}`);
      const index = distributionIndexCodec.decode(envelope.value.body);
      if (!index.ok) return void city.problems.push(`index body ${index.reason}`);
      city.indexes.push({ at: city.scheduler.now(), index: index.value });
    });
    await city.startServer();
    for (let i = 0; i < phones; i++) await city.spawnPhone(phoneId(i));
    return city;
  }

  private newHost(bus: MemoryBus, store?: MemoryStore): Host {
    const host = new Host({ scheduler: this.scheduler, bus, messages: keyServerMessages().register(distributionIndexCodec), logger: this.logger, ...(store !== undefined ? { store } : {}) });
    this.hosts.push(host);
    return host;
  }

  get dbPath(): string {
    return join(this.dir, 'keys.sqlite');
  }

  server(): KeyServerService {
    if (this.service === undefined) throw new Error('the key server is down');
    return this.service;
  }

  /** Open the event log and start a key-server service on it (a restart replays the whole log). */
  async startServer(): Promise<void> {
    if (this.service !== undefined) throw new Error('the key server is already up');
    this.store = await openSqliteStore(this.dbPath);
    this.serverBus = this.hub.connect('key-server');
    this.service = await startKeyServerService({ serverId: SERVER_ID, bus: this.serverBus, store: this.store, blobs: this.blobs, scheduler: this.scheduler, logger: this.logger, secrets: SECRETS });
    this.hosts.push(this.service.host);
  }

  /** Stop the service, close its bus and its log: nothing of it survives but the SQLite file and the files directory. */
  async stopServer(): Promise<void> {
    const service = this.server();
    await service.stop();
    this.checkServerHealthy(service);
    this.service = undefined;
    await this.serverBus?.close();
    await this.store?.close();
    this.serverBus = undefined;
    this.store = undefined;
  }

  async restartServer(): Promise<void> {
    await this.stopServer();
    await this.startServer();
    this.restarts++;
  }

  async spawnPhone(id: string): Promise<void> {
    await this.phonesHost.spawn(phoneSpec(id));
    this.phones.push(id);
  }

  async spawnSleeper(id: string): Promise<void> {
    const store = new MemoryStore();
    const bus = this.hub.connect(`sleeper-${id}`);
    const host = this.newHost(bus, store);
    await host.spawn(phoneSpec(id));
    this.sleepers.set(id, { id, store, host, bus, online: true });
  }

  /** The phone's app is killed: its snapshot is persisted, its connection closed; it sees no index until it is back. */
  async sleep(id: string): Promise<void> {
    const s = this.sleeper(id);
    await s.host.stop();
    await s.bus.close();
    s.online = false;
  }

  /** Back online: a new host restores the phone from its snapshot; the broker hands it the retained index. */
  async wake(id: string): Promise<void> {
    const s = this.sleeper(id);
    s.bus = this.hub.connect(`sleeper-${id}`);
    s.host = this.newHost(s.bus, s.store);
    await s.host.spawn(phoneSpec(id));
    s.online = true;
  }

  private sleeper(id: string): SleeperPhone {
    const s = this.sleepers.get(id);
    if (s === undefined) throw new Error(`no sleeper ${id}`);
    return s;
  }

  /** Phones currently following the server. */
  onlinePhones(): string[] {
    return [...this.phones, ...[...this.sleepers.values()].filter((s) => s.online).map((s) => s.id)];
  }

  phone(id: string): KeyClientContext {
    const host = this.sleepers.get(id)?.host ?? this.phonesHost;
    return host.snapshotOf('phone', id).context as KeyClientContext;
  }

  held(id: string): string[] {
    return heldRecordIds(this.phone(id));
  }

  /** The records in distribution now (the server's live set). */
  live(): string[] {
    return sorted(this.server().context().ledger.records.keys());
  }

  async client(name: string): Promise<KeyServerClient> {
    const client = await KeyServerClient.connect(this.clientsBus, { serverId: SERVER_ID, address: `phone/${name}`, inbox: inboxTopic('phone', name) });
    this.clients.push(client);
    return client;
  }

  async operator(): Promise<KeyServerClient> {
    const client = await KeyServerClient.connect(this.clientsBus, { serverId: SERVER_ID, address: 'host/operator', inbox: inboxTopic('host', 'operator') });
    this.clients.push(client);
    return client;
  }

  async run(until: number): Promise<void> {
    await this.scheduler.runUntil(until);
  }

  /** The newest index announced (by seq). */
  latestIndex(): DistributionIndex {
    const last = this.indexes.reduce<SeenIndex | undefined>((best, seen) => (best === undefined || seen.index.seq >= best.index.seq ? seen : best), undefined);
    if (last === undefined) throw new Error('no index announced');
    return last.index;
  }

  async openFile(name: string): Promise<DistributionFile<IdentifiedRecord>> {
    const bytes = await this.blobs.get(name);
    if (bytes === undefined) throw new Error(`no file ${name}`);
    const opened = openDistributionFile(nodeSuite, PUBLIC_KEYS, name, bytes);
    if (!opened.ok) throw new Error(`${opened.reason}: ${opened.detail}`);
    return opened.value;
  }

  checkServerHealthy(service = this.server()): void {
    expect(service.host.stats.actorErrors).toBe(0);
    expect(service.host.stats.effectErrors).toBe(0);
    expect(service.host.stats.rejections).toEqual({});
    expect(service.admission.stats.refused).toEqual({});
    expect(service.files.stats.rejected).toEqual({});
    expect(service.files.stats.missing).toBe(0);
  }

  /** No host (server or phones, any incarnation) failed an actor or an effect, or refused a message. */
  checkHostsHealthy(): void {
    for (const host of this.hosts) expect(host.stats).toMatchObject({ actorErrors: 0, effectErrors: 0, rejectedEnvelopes: 0, rejectedBodies: 0, rejectedAdmissions: 0, rejections: {} });
  }

  async close(): Promise<void> {
    for (const client of this.clients) await client.close();
    if (this.service !== undefined) await this.stopServer();
    for (const host of this.hosts) await host.stop();
    for (const s of this.sleepers.values()) await s.bus.close();
    await this.phonesBus.close();
    await this.clientsBus.close();
    await this.probe.close();
    await rm(this.dir, { recursive: true, force: true });
  }
}

let running: KeyCity | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

// ---------------------------------------------------------------- uploads

/** 14 GAEN TEKs of one patient: one key per day, today back to 13 days ago (all within the 14-day retention at `at`). */
function teks(patient: string, at: number): GaenTekRecord[] {
  const today = Math.floor(at / DAY);
  return Array.from({ length: TEKS_PER_UPLOAD }, (_, i) => ({
    protocol: 'gaen-tek' as const,
    key: nodeSuite.sha256(new TextEncoder().encode(`${patient} tek ${i}`)).slice(0, 16),
    rollingStartIntervalNumber: (today - i) * 144,
    rollingPeriod: 144,
    transmissionRisk: 1 + (i % 8),
  }));
}

interface Upload {
  readonly name: string;
  readonly provider: string;
  readonly at: number;
  readonly ids: readonly string[];
  readonly trackingId: string;
  readonly client: KeyServerClient;
}

/** The scenario's uploads and what it expects of them. */
class Uploads {
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
async function uploadEverything(city: KeyCity, uploads: Uploads, between?: () => Promise<void>): Promise<void> {
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
function expectConverged(city: KeyCity): void {
  const live = city.live();
  const diverged = city.onlinePhones().filter((id) => city.held(id).join() !== live.join());
  expect(diverged).toEqual([]);
}

function expectPhonesHealthy(city: KeyCity, ids: readonly string[]): void {
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
function expectAllHeld(city: KeyCity, uploads: Uploads): void {
  expectConverged(city);
  const everything = sorted(uploads.ids(uploads.all));
  expect(city.live()).toEqual(everything);
  for (const id of city.onlinePhones()) expect(city.held(id)).toEqual(everything);
}

/** The server's reply to the revocation, and that nothing changed on the phones yet. */
async function revoke(city: KeyCity, operator: KeyServerClient, uploads: Uploads): Promise<AdminResult> {
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
function expectWithdrawnDropped(city: KeyCity, uploads: Uploads, phones: readonly string[] = city.onlinePhones()): void {
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
async function expectRevocationDelta(city: KeyCity, uploads: Uploads, seqBefore: number): Promise<DistributionFile<IdentifiedRecord>> {
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

async function expectStatuses(uploads: Uploads): Promise<void> {
  for (const u of uploads.withdrawn()) {
    expect(await u.client.status(u.trackingId)).toEqual({ trackingId: u.trackingId, state: 'withdrawn', reason: 'provider-revoked', records: TEKS_PER_UPLOAD });
  }
  for (const u of uploads.kept()) {
    expect(await u.client.status(u.trackingId)).toEqual({ trackingId: u.trackingId, state: 'accepted', reason: '', records: TEKS_PER_UPLOAD });
  }
}

const filesApplied = (city: KeyCity, ids: readonly string[]): Map<string, number> => new Map(ids.map((id) => [id, city.phone(id).counters.filesApplied]));

// ---------------------------------------------------------------- tests

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

    // A new phone starts after the full dump (it misses the retained index: see the it.fails test below),
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

  // BUG (services/host/host.ts, Host.spawn): a non-journaled actor's topics are subscribed before
  // actor.start() and `host.start`, so the retained index the broker hands out on subscribe reaches
  // the key client in its `idle` state and is dropped. A phone first started after the server's last
  // publication then holds nothing until the server publishes again (the next delta with a change, or
  // a full dump — possibly never when nothing changes). Passes while the bug is there: drop `.fails`
  // once Host.spawn holds a non-journaled actor's deliveries until host.start / host.resume was sent.
  it.fails('a phone first started after the last publication takes the retained index at once and holds the live set', async () => {
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
