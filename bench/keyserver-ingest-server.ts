/**
 * Key-server durable ingest, server side only (issue 4: ≥ 5,000 uploads/s of
 * 14 keys): the same real service as keyserver-ingest.ts (SQLite log with
 * group commit, admission consulted, machine, replies), but the phones' side
 * costs nothing here — every request envelope is encoded before the clock
 * starts and acks are counted, not decoded — because in a deployment the
 * phones are other machines. A window bounds the requests in flight, as many
 * phones waiting for their acks would. An upload counts when its ack arrived
 * (sent only after the upload was journaled durably and applied).
 */
import { join } from 'node:path';
import type { KeyServerContext } from '../actors/key-server/key-server-state.ts';
import { keysUploadCodec } from '../protocol/keyserver/messages.ts';
import { parseUploadCode } from '../protocol/keyserver/upload-code.ts';
import { encodeEnvelope } from '../protocol/wire/envelope.ts';
import { inboxTopic, keyServerUploadTopic } from '../protocol/wire/topics.ts';
import { MemoryHub } from '../services/bus/memory.ts';
import { MemoryBlobStore } from '../services/keyserver/blobs.ts';
import { KeyServerClient, paddingFor } from '../services/keyserver/client.ts';
import { startKeyServerService } from '../services/keyserver/service.ts';
import { silentLogger } from '../services/log.ts';
import { openSqliteStore } from '../services/store/sqlite.ts';
import { WallScheduler } from '../services/time/wall.ts';
import { benchSecrets, configFor, cpuSeconds, DAY_MS, KEYS_PER_UPLOAD, MINUTE_MS, note, OPEN_ADMISSION, PROVIDER_ID, round, seconds, SERVER_ID, T0, uploadRecordBytes } from './keyserver-fixtures.ts';
import type { BenchRow } from './report.ts';

const TARGET_UPLOADS_PER_S = 5000;

export async function serverIngestBench(uploads: number, window: number, dir: string): Promise<BenchRow[]> {
  const group = 'keyserver/ingest-server';
  const secrets = benchSecrets();
  const store = await openSqliteStore(join(dir, 'ingest-server.db'));
  const hub = new MemoryHub({ logger: silentLogger });
  const scheduler = new WallScheduler({ t0: T0 + MINUTE_MS, wall0: Date.now(), speed: 1 });
  const serverBus = hub.connect(`key-server.${SERVER_ID}`);
  const service = await startKeyServerService({
    serverId: SERVER_ID,
    bus: serverBus,
    store,
    blobs: new MemoryBlobStore(),
    scheduler,
    logger: silentLogger,
    secrets,
    config: configFor(uploads * KEYS_PER_UPLOAD),
    admission: OPEN_ADMISSION,
    maxPending: 1_000_000,
  });
  const adminBus = hub.connect('host.bench-admin');
  const phonesBus = hub.connect('phone.bench');
  try {
    const admin = await KeyServerClient.connect(adminBus, { serverId: SERVER_ID, address: 'host/bench-admin', inbox: inboxTopic('host', 'bench-admin'), timeoutMs: 120_000 });
    await admin.admin('keys.provider.add', { providerId: PROVIDER_ID });
    const codes = await admin.issueCodes(PROVIDER_ID, uploads, secrets.pepper, 2 * DAY_MS, scheduler.now());
    await admin.close();
    const requests = codes.map((code, i) => {
      const parsed = parseUploadCode(code.text);
      if (!parsed.ok) throw new Error(parsed.detail);
      const records = uploadRecordBytes(scheduler.now());
      const body = keysUploadCodec.encode({ code: parsed.value, records, chaff: false, padding: paddingFor(records.length) });
      // 1,000 distinct phones, each on its own upload topic with its own inbox (as admission requires).
      const phone = `p${i % 1000}`;
      const bytes = encodeEnvelope({ v: 1, type: keysUploadCodec.type, id: `r${i}`, from: `phone/${phone}`, at: scheduler.now(), replyTo: inboxTopic('phone', phone), corr: `r${i}`, body });
      return { topic: keyServerUploadTopic(SERVER_ID, phone), bytes };
    });
    let acked = 0;
    let wake: (() => void) | undefined;
    await phonesBus.subscribe('tc/v1/phone/+/inbox', () => {
      acked++;
      wake?.();
    });
    note(`server-side ingest: ${uploads} pre-encoded uploads, window ${window}…`);
    const before = store.stats();
    const cpu = process.cpuUsage();
    const start = process.hrtime.bigint();
    for (let i = 0; i < requests.length; i++) {
      while (i - acked >= window) await new Promise<void>((resolve) => (wake = resolve));
      const request = requests[i];
      if (request !== undefined) void phonesBus.publish(request.topic, request.bytes, { qos: 1 });
    }
    while (acked < uploads) await new Promise<void>((resolve) => (wake = resolve));
    const elapsed = seconds(start);
    const cpuS = cpuSeconds(cpu);
    const commits = store.stats().commits - before.commits;
    const context: KeyServerContext = service.context();
    if (context.ledger.counters.uploadsAccepted !== uploads) throw new Error(`server-side ingest: ${context.ledger.counters.uploadsAccepted}/${uploads} accepted`);
    const rate = uploads / elapsed;
    note(`server-side ingest: ${Math.round(rate)} uploads/s, ${commits} commits`);
    return [
      {
        group,
        name: `acked uploads of ${KEYS_PER_UPLOAD} keys (phones' cost excluded)`,
        values: { uploadsPerS: Math.round(rate), keysPerS: Math.round(rate * KEYS_PER_UPLOAD), uploads, seconds: round(elapsed, 2), cpuMsPerUpload: round((cpuS * 1000) / uploads, 3), commits },
        unit: '',
        ratio: { label: `uploads/s ÷ ${TARGET_UPLOADS_PER_S.toLocaleString('en-US')}`, value: round(rate / TARGET_UPLOADS_PER_S, 2), target: '≥ 1.00' },
      },
    ];
  } finally {
    await service.stop();
    scheduler.cancelAll();
    for (const bus of [phonesBus, adminBus, serverBus]) await bus.close();
    await store.close();
  }
}
