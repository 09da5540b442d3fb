/**
 * Key-server durable ingest (issue 4: ≥ 5,000 uploads/s of 14 keys): the real
 * service end to end — startKeyServerService on a SqliteStore file (WAL,
 * synchronous = FULL, group commit), admission in front (buckets raised so
 * they never refuse, but still consulted), maxPending raised — and many
 * concurrent KeyServerClients, each uploading in turn with its own
 * registered code. An upload counts when its ack arrived: the ack is sent
 * only after the upload was journaled and applied (docs/decisions/0006).
 *
 * Clients and server share this process (and its cores): the client side's
 * encode/decode is inside the measured time. After the run the ledger must
 * hold every upload as accepted, and a rebuild of the log (rebuildFromJournal)
 * must reproduce the live state digest.
 */
import { join } from 'node:path';
import type { Bus } from '../actors/ports.ts';
import { createKeyServerMachine } from '../actors/key-server/key-server.ts';
import type { KeyServerContext } from '../actors/key-server/key-server-state.ts';
import { stateDigest } from '../actors/key-server/ledger.ts';
import { actorAddress, inboxTopic } from '../protocol/wire/topics.ts';
import { startEmbeddedBroker } from '../services/broker/aedes.ts';
import { MemoryHub } from '../services/bus/memory.ts';
import { connectMqttBus } from '../services/bus/mqtt.ts';
import { nodeSuite } from '../services/crypto/node.ts';
import { rebuildFromJournal } from '../services/host/rebuild.ts';
import { MemoryBlobStore } from '../services/keyserver/blobs.ts';
import { KeyServerClient } from '../services/keyserver/client.ts';
import { keyServerDeps, startKeyServerService } from '../services/keyserver/service.ts';
import { silentLogger } from '../services/log.ts';
import { openSqliteStore } from '../services/store/sqlite.ts';
import { WallScheduler } from '../services/time/wall.ts';
import {
  benchSecrets,
  configFor,
  cpuSeconds,
  DAY_MS,
  KEYS_PER_UPLOAD,
  MINUTE_MS,
  note,
  OPEN_ADMISSION,
  PROVIDER_ID,
  round,
  seconds,
  SERVER_ID,
  T0,
  uploadRecordBytes,
} from './keyserver-fixtures.ts';
import { percentile, type BenchRow } from './report.ts';

/** Issue 4's ingest target. */
const TARGET_UPLOADS_PER_S = 5000;

export interface IngestRun {
  readonly transport: 'memory' | 'aedes';
  readonly uploads: number;
  readonly clients: number;
  /** Directory for the SQLite log. */
  readonly dir: string;
  /** Also rebuild the log and compare digests. */
  readonly checkRebuild: boolean;
}

interface Transport {
  connect(clientId: string): Promise<Bus>;
  close(): Promise<void>;
}

async function transport(kind: IngestRun['transport']): Promise<Transport> {
  if (kind === 'memory') {
    const hub = new MemoryHub({ logger: silentLogger });
    return { connect: (id) => Promise.resolve(hub.connect(id)), close: () => Promise.resolve() };
  }
  const broker = await startEmbeddedBroker();
  return { connect: (id) => connectMqttBus({ url: broker.url, clientId: id }), close: () => broker.close() };
}

export async function ingestBench(run: IngestRun): Promise<BenchRow[]> {
  const group = `keyserver/ingest-${run.transport}`;
  const secrets = benchSecrets();
  const config = configFor(run.uploads * KEYS_PER_UPLOAD);
  const path = join(run.dir, `ingest-${run.transport}.db`);
  const store = await openSqliteStore(path);
  const net = await transport(run.transport);
  // Simulated time starts just after a period boundary at wall speed: no publication tick fires during the run.
  const scheduler = new WallScheduler({ t0: T0 + MINUTE_MS, wall0: Date.now(), speed: 1 });
  const buses: Bus[] = [];
  const connect = async (id: string): Promise<Bus> => {
    const bus = await net.connect(id);
    buses.push(bus);
    return bus;
  };
  const serverBus = await connect(`key-server.${SERVER_ID}`);
  const service = await startKeyServerService({
    serverId: SERVER_ID,
    bus: serverBus,
    store,
    blobs: new MemoryBlobStore(),
    scheduler,
    logger: silentLogger,
    secrets,
    config,
    admission: OPEN_ADMISSION,
    maxPending: 1_000_000,
  });
  const clients: KeyServerClient[] = [];
  try {
    const admin = await KeyServerClient.connect(await connect('host.bench-admin'), { serverId: SERVER_ID, address: 'host/bench-admin', inbox: inboxTopic('host', 'bench-admin'), timeoutMs: 120_000 });
    clients.push(admin);
    const added = await admin.admin('keys.provider.add', { providerId: PROVIDER_ID });
    if (!added.ok) throw new Error(`provider.add: ${added.reason}`);
    const registerStart = process.hrtime.bigint();
    const codes = await admin.issueCodes(PROVIDER_ID, run.uploads, secrets.pepper, 2 * DAY_MS, scheduler.now());
    const registerS = seconds(registerStart);
    for (let i = 0; i < run.clients; i++) {
      clients.push(await KeyServerClient.connect(await connect(`phone.p${i}`), { serverId: SERVER_ID, address: `phone/p${i}`, inbox: inboxTopic('phone', `p${i}`), timeoutMs: 120_000 }));
    }
    const phones = clients.slice(1);
    const records = Array.from({ length: run.uploads }, () => uploadRecordBytes(scheduler.now()));
    note(`${run.transport}: ${run.uploads} codes registered in ${round(registerS, 2)} s; ${run.uploads} uploads from ${run.clients} clients…`);

    const before = store.stats();
    const latencies: number[] = [];
    let next = 0;
    const cpu = process.cpuUsage();
    const start = process.hrtime.bigint();
    await Promise.all(
      phones.map(async (client) => {
        for (let i = next++; i < run.uploads; i = next++) {
          const sent = process.hrtime.bigint();
          await client.upload(codes[i]?.text ?? '', records[i] ?? new Uint8Array(0));
          latencies.push(Number(process.hrtime.bigint() - sent) / 1e6);
        }
      }),
    );
    const elapsed = seconds(start);
    const cpuS = cpuSeconds(cpu);
    const after = store.stats();
    const context: KeyServerContext = service.context();
    const { counters } = context.ledger;
    const rejected = Object.values(counters.rejected).reduce((a, b) => a + b, 0);
    const refused = service.host.stats.rejectedAdmissions + service.host.stats.rejectedBodies + service.host.stats.rejectedEnvelopes;
    if (counters.uploadsAccepted !== run.uploads || rejected !== 0 || refused !== 0) {
      throw new Error(`bench/keyserver ingest: accepted ${counters.uploadsAccepted}/${run.uploads}, rejected ${JSON.stringify(counters.rejected)}, refused ${JSON.stringify(service.host.stats.rejections)}`);
    }
    const liveDigest = stateDigest(nodeSuite, context.ledger);
    const inDistribution = context.ledger.records.size;
    latencies.sort((a, b) => a - b);
    const rate = run.uploads / elapsed;
    const commits = after.commits - before.commits;
    const rows: BenchRow[] = [
      {
        group,
        name: `acked uploads of ${KEYS_PER_UPLOAD} keys, ${run.clients} clients`,
        values: { uploadsPerS: Math.round(rate), keysPerS: Math.round(rate * KEYS_PER_UPLOAD), uploads: run.uploads, seconds: round(elapsed, 2), cpuMsPerUpload: round((cpuS * 1000) / run.uploads, 3) },
        unit: '',
        ratio: { label: `uploads/s ÷ ${TARGET_UPLOADS_PER_S.toLocaleString('en-US')}`, value: round(rate / TARGET_UPLOADS_PER_S, 2), target: '≥ 1.00' },
      },
      {
        group,
        name: 'group commit (SQLite WAL, sync FULL)',
        values: { commits, writes: after.writes - before.writes, uploadsPerCommit: round(run.uploads / Math.max(1, commits), 1), commitsPerS: Math.round(commits / elapsed) },
        unit: '',
      },
      {
        group,
        name: 'ack latency under load',
        values: { p50: round(percentile(latencies, 50), 2), p99: round(percentile(latencies, 99), 2), max: round(latencies.at(-1) ?? Number.NaN, 2) },
        unit: 'ms',
      },
    ];
    note(`${run.transport}: ${Math.round(rate)} uploads/s, ${commits} commits, ${inDistribution} records in distribution; codes registered at ${Math.round(run.uploads / registerS)} codes/s`);
    for (const client of clients) await client.close();
    clients.length = 0;
    await service.stop();
    if (run.checkRebuild) {
      const rebuilt = await rebuildFromJournal(createKeyServerMachine(keyServerDeps(secrets)), { serverId: SERVER_ID, config }, store, actorAddress('key-server', SERVER_ID));
      const digest = stateDigest(nodeSuite, (rebuilt.context as KeyServerContext).ledger);
      if (digest !== liveDigest) throw new Error('bench/keyserver ingest: the rebuilt state digest differs from the live one');
      rows.push({
        group,
        name: 'rebuild of this log (digest equal)',
        values: { events: rebuilt.events, seconds: round(rebuilt.ms / 1000, 2), eventsPerS: Math.round(rebuilt.events / (rebuilt.ms / 1000)), records: inDistribution },
        unit: '',
      });
    }
    return rows;
  } finally {
    for (const client of clients) await client.close();
    await service.stop();
    scheduler.cancelAll();
    for (const bus of buses) await bus.close();
    await net.close();
    await store.close();
  }
}
