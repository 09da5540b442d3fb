/**
 * The key city of the revocation end-to-end test (test/e2e/keyserver-revocation.test.ts):
 * a key-server service on SQLite and ≥ 50 key-client phones in a second host,
 * one MemoryHub, virtual time that advances only when bus, hosts and blobs are idle.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { BlobStore, Logger } from '../../actors/ports.ts';
import { createKeyClientMachine, heldRecordIds, keyClientSubscriptions, type KeyClientContext } from '../../actors/key-client/key-client.ts';
import { indexTopic } from '../../actors/key-server/publication.ts';
import { distributionIndexCodec, type DistributionIndex } from '../../protocol/keyserver/distribution-index.ts';
import type { DistributionFile } from '../../protocol/keyserver/distribution-file.ts';
import { type IdentifiedRecord } from '../../protocol/keyserver/distribution-records.ts';
import { openDistributionFile } from '../../protocol/keyserver/distribution-signing.ts';
import { keyServerMessages } from '../../protocol/keyserver/messages.ts';
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

export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;
/** The server's default delta period (issue 4: 15 simulated minutes). */
export const PERIOD = 15 * MINUTE;

export const SERVER_ID = 'ks-city';
export const PROVIDER_A = 'clinic-a';
export const PROVIDER_B = 'clinic-b';
export const PHONES = 60;
export const TEKS_PER_UPLOAD = 14;

/** 2026-11-22T00:00Z: the day boundary, a full dump. */
export const MIDNIGHT = Date.UTC(2026, 10, 22);
export const START = MIDNIGHT - 3 * HOUR;
export const PRE_T_UPLOADS_AT = START + 2 * MINUTE;
/** The revocation's `since`: 21:40, between two delta boundaries. */
export const T = START + 40 * MINUTE;
export const ALL_UPLOADED = T + 8 * MINUTE;
/** Every upload is in a published delta after this boundary. */
export const ALL_PUBLISHED = nextBoundary(ALL_UPLOADED);
export const REVOKE_AT = ALL_PUBLISHED + 5 * MINUTE;
export const REVOCATION_DELTA = nextBoundary(REVOKE_AT);
/** "Just past" a boundary: everything it triggered has settled by then (time only moves when idle). */
export const JUST_PAST = SECOND;

export const SECRETS: KeyServerSecrets = {
  pepper: nodeSuite.sha256(new TextEncoder().encode('keyserver-revocation e2e pepper')),
  signingKey: nodeSuite.sha256(new TextEncoder().encode('keyserver-revocation e2e signing key')),
  keyId: 'ks-e2e',
};
export const PUBLIC_KEYS: ReadonlyMap<string, Uint8Array> = new Map([[SECRETS.keyId, nodeSuite.p256PublicKey(SECRETS.signingKey)]]);

export function nextBoundary(at: number): number {
  return (Math.floor(at / PERIOD) + 1) * PERIOD;
}

export const phoneId = (i: number): string => `p${String(i).padStart(3, '0')}`;
export const sorted = (ids: Iterable<string>): string[] => [...ids].sort();

// ---------------------------------------------------------------- the city

/** A BlobStore that counts its reads and writes in flight, so the scheduler can wait for the file responder. */
export class TrackedBlobs implements BlobStore {
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
export function collectingLogger(lines: string[]): Logger {
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

export interface SeenIndex {
  readonly at: number;
  readonly index: DistributionIndex;
}

/** A phone in a host of its own, with a store for its snapshot: it can go offline and come back with what it held. */
export interface SleeperPhone {
  readonly id: string;
  readonly store: MemoryStore;
  host: Host;
  bus: MemoryBus;
  online: boolean;
}

export const keyClientMachine = createKeyClientMachine({ crypto: nodeSuite, publicKeys: PUBLIC_KEYS });

export function phoneSpec(id: string): ActorSpec {
  return { role: 'phone', id, machine: keyClientMachine, input: { serverId: SERVER_ID, clientId: id }, subscribe: keyClientSubscriptions(SERVER_ID) };
}

export class KeyCity {
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

