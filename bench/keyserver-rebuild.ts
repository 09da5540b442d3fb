/**
 * Key-server rebuild (issue 4: a log of 1M keys folds in ≤ 60 s; the seed's
 * bar was 5 min): the log is written straight into a SqliteStore in the
 * host's journal format — each message event built as Host.deliver builds it
 * (envelope encoded, decoded, body decoded by the key-server registry) and
 * appended through ActorJournal (encodeVersioned), group-committed:
 *
 *   host.start, keys.provider.add, keys.codes.register × ⌈uploads/1000⌉,
 *   uploads × keys.upload (14 GAEN keys each, one code each) spread over a
 *   day, with the day's 96 timer.publish ticks between them (the last, at
 *   the day boundary, also signs the full dump of every key).
 *
 * Then rebuildFromJournal folds it from a freshly opened store, exactly as
 * `tracecity keyserver rebuild` does. The same log without the ticks is
 * written alongside and folded too: the fold of the uploads alone, so the
 * difference is what re-signing the day's files costs inside a rebuild.
 * KS_BENCH_REBUILD_TICKS=1 folds only the log with ticks, =0 only the other.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createKeyServerMachine } from '../actors/key-server/key-server.ts';
import type { KeyServerConfig, KeyServerContext } from '../actors/key-server/key-server-state.ts';
import type { Ledger } from '../actors/key-server/ledger.ts';
import { codesRegisterCodec, keyServerMessages, keysUploadCodec, MAX_CODES_PER_REGISTER } from '../protocol/keyserver/messages.ts';
import { issueUploadCode, parseUploadCode, UPLOAD_CODE_BYTES, type IssuedUploadCode } from '../protocol/keyserver/upload-code.ts';
import { decodeEnvelope, encodeEnvelope, ENVELOPE_VERSION } from '../protocol/wire/envelope.ts';
import type { WireValue } from '../protocol/wire/msgpack.ts';
import { actorAddress, inboxTopic } from '../protocol/wire/topics.ts';
import { nodeSuite } from '../services/crypto/node.ts';
import { ActorJournal, type JournaledEvent } from '../services/host/journal.ts';
import { rebuildFromJournal } from '../services/host/rebuild.ts';
import { encodeVersioned } from '../services/host/snapshots.ts';
import { paddingFor } from '../services/keyserver/client.ts';
import { keyServerDeps } from '../services/keyserver/service.ts';
import type { KeyServerSecrets } from '../services/keyserver/secrets.ts';
import { openSqliteStore, type SqliteStore } from '../services/store/sqlite.ts';
import { benchSecrets, configFor, cpuSeconds, DAY_MS, KEYS_PER_UPLOAD, mb, MINUTE_MS, note, PROVIDER_ID, round, rssMb, seconds, SERVER_ID, sqliteBytes, T0, uploadRecordBytes } from './keyserver-fixtures.ts';
import type { BenchRow } from './report.ts';

const TARGET_S = 60;
const SEED_BAR_S = 300;
const PERIOD_MS = 15 * MINUTE_MS;
const APPEND_BURST = 2000;
const GROUP = 'keyserver/rebuild';

export interface RebuildRun {
  readonly uploads: number;
  readonly dir: string;
}

const messages = keyServerMessages();

/** The journal event Host.deliver makes of a bus message (encode, decode, body decoded). */
function messageEvent(type: string, body: WireValue, at: number, from: string, n: number): JournaledEvent {
  const [role, id] = from.split('/') as ['phone' | 'host', string];
  const bytes = encodeEnvelope({ v: ENVELOPE_VERSION, type, id: `${from}.${n}`, from, at, replyTo: inboxTopic(role, id), corr: `benchcorr${n}.1`, body });
  const envelope = decodeEnvelope(bytes);
  if (!envelope.ok) throw new Error(`bench/keyserver rebuild: ${envelope.detail}`);
  const decoded = messages.decodeBody(type, envelope.value.body);
  if (!decoded.ok) throw new Error(`bench/keyserver rebuild: ${decoded.detail}`);
  // As Host.deliver journals it: the decoded body only (the envelope's raw body is left out).
  return { type: `msg.${type}`, at, envelope: { ...envelope.value, body: null }, body: decoded.value };
}

function uploadEvent(code: IssuedUploadCode, at: number, n: number): JournaledEvent {
  const parsed = parseUploadCode(code.text);
  if (!parsed.ok) throw new Error(parsed.detail);
  const records = uploadRecordBytes(at);
  const body = keysUploadCodec.encode({ code: parsed.value, records, chaff: false, padding: paddingFor(records.length) });
  return messageEvent('keys.upload', body, at, `phone/p${n}`, n);
}

/** A log being written: a store, its journal and the appends in flight (group-committed bursts). */
class LogWriter {
  events = 0;
  private pending: Promise<number>[] = [];

  private constructor(
    readonly path: string,
    private readonly store: SqliteStore,
    private readonly journal: ActorJournal,
  ) {}

  static async open(path: string, address: string): Promise<LogWriter> {
    const store = await openSqliteStore(path);
    return new LogWriter(path, store, new ActorJournal(store, address, { snapshots: false }));
  }

  async append(event: JournaledEvent): Promise<void> {
    this.pending.push(this.journal.append(event));
    this.events++;
    if (this.pending.length >= APPEND_BURST) {
      await Promise.all(this.pending);
      this.pending = [];
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.pending);
    await this.store.close();
  }
}

interface Written {
  readonly ticks: number;
  /** Journal bytes of one upload event, and how many of them are the envelope's copy of the body. */
  readonly uploadBytes: number;
  readonly duplicateBodyBytes: number;
  readonly seconds: number;
}

/**
 * Write the module header's log into `withTicks` and, without the ticks, into
 * `plain` (either may be absent): the same events otherwise.
 */
async function writeLogs(run: RebuildRun, secrets: KeyServerSecrets, withTicks: LogWriter | undefined, plain: LogWriter | undefined): Promise<Written> {
  const began = process.hrtime.bigint();
  const all = [withTicks, plain].filter((w): w is LogWriter => w !== undefined);
  const append = async (event: JournaledEvent): Promise<void> => {
    for (const w of all) await w.append(event);
  };
  const start = T0 + MINUTE_MS;
  await append({ type: 'host.start', at: start });
  await append(messageEvent('keys.provider.add', { providerId: PROVIDER_ID }, start, 'host/bench-admin', 0));
  const codes: IssuedUploadCode[] = [];
  for (let i = 0; i < run.uploads; i += MAX_CODES_PER_REGISTER) {
    const batch = Array.from({ length: Math.min(MAX_CODES_PER_REGISTER, run.uploads - i) }, () =>
      issueUploadCode(nodeSuite, { providerId: PROVIDER_ID, randomBytes: Uint8Array.from(randomBytes(UPLOAD_CODE_BYTES)), pepper: secrets.pepper, issuedAt: start, lifetimeMs: 2 * DAY_MS }),
    );
    codes.push(...batch);
    const body = codesRegisterCodec.encode({ providerId: PROVIDER_ID, digests: batch.map((c) => c.record.digest), lifetimeMs: 2 * DAY_MS });
    await append(messageEvent('keys.codes.register', body, start, 'host/bench-admin', 1 + i / MAX_CODES_PER_REGISTER));
  }
  // Uploads spread over (start, T0 + day − 1 min); ticks at every 15-min boundary, the last at T0 + day.
  const span = DAY_MS - 2 * MINUTE_MS;
  let nextTick = T0 + PERIOD_MS;
  let ticks = 0;
  let uploadBytes = 0;
  let duplicateBodyBytes = 0;
  for (let i = 0; i < run.uploads; i++) {
    const at = start + Math.floor((i * span) / run.uploads);
    for (; nextTick <= at; nextTick += PERIOD_MS, ticks++) await withTicks?.append({ type: 'timer.publish', at: nextTick });
    const event = uploadEvent(codes[i] as IssuedUploadCode, at, i);
    if (i === 0) {
      uploadBytes = encodeVersioned(event).length;
      duplicateBodyBytes = uploadBytes - encodeVersioned({ ...event, envelope: { ...(event['envelope'] as object), body: null } }).length;
    }
    await append(event);
  }
  for (; nextTick <= T0 + DAY_MS; nextTick += PERIOD_MS, ticks++) await withTicks?.append({ type: 'timer.publish', at: nextTick });
  for (const w of all) await w.close();
  return { ticks: withTicks === undefined ? 0 : ticks, uploadBytes, duplicateBodyBytes, seconds: seconds(began) };
}

interface Folded {
  readonly ledger: Ledger;
  readonly events: number;
  readonly seconds: number;
  readonly cpuS: number;
}

/** rebuildFromJournal on a freshly opened store, as `tracecity keyserver rebuild` does. */
async function fold(path: string, secrets: KeyServerSecrets, config: Partial<KeyServerConfig>, label: string): Promise<Folded> {
  const store = await openSqliteStore(path);
  try {
    const cpu = process.cpuUsage();
    const began = process.hrtime.bigint();
    const rebuilt = await rebuildFromJournal(createKeyServerMachine(keyServerDeps(secrets)), { serverId: SERVER_ID, config }, store, actorAddress('key-server', SERVER_ID), {
      progressEvery: 20_000,
      onProgress: (n) => note(`rebuild ${label}: ${n} events, ${round(seconds(began), 1)} s`),
    });
    return { ledger: (rebuilt.context as KeyServerContext).ledger, events: rebuilt.events, seconds: rebuilt.ms / 1000, cpuS: cpuSeconds(cpu) };
  } finally {
    await store.close();
  }
}

function check(ledger: Ledger, uploads: number, published: boolean): void {
  const keys = uploads * KEYS_PER_UPLOAD;
  const { counters } = ledger;
  if (counters.uploadsAccepted !== uploads || Object.keys(counters.rejected).length !== 0 || counters.recordsAccepted !== keys || ledger.records.size !== keys || published !== (ledger.publisher.latestFull !== null)) {
    throw new Error(`bench/keyserver rebuild: accepted ${counters.uploadsAccepted}/${uploads} uploads, ${counters.recordsAccepted}/${keys} keys, rejected ${JSON.stringify(counters.rejected)}, full dump ${String(ledger.publisher.latestFull)}`);
  }
}

export async function rebuildBench(run: RebuildRun): Promise<BenchRow[]> {
  const mode = process.env['KS_BENCH_REBUILD_TICKS'] ?? 'both';
  const secrets = benchSecrets();
  const config = configFor(run.uploads * KEYS_PER_UPLOAD);
  const address = actorAddress('key-server', SERVER_ID);
  const keys = run.uploads * KEYS_PER_UPLOAD;
  const keysText = keys.toLocaleString('en-US');
  const withTicks = mode === '0' ? undefined : await LogWriter.open(join(run.dir, 'rebuild.db'), address);
  const plain = mode === '1' ? undefined : await LogWriter.open(join(run.dir, 'rebuild-uploads-only.db'), address);
  const written = await writeLogs(run, secrets, withTicks, plain);
  const main = withTicks ?? plain;
  if (main === undefined) throw new Error('unreachable');
  const logBytes = await sqliteBytes(main.path);
  note(`rebuild: ${[withTicks, plain].filter((w) => w !== undefined).length} log(s) of ${main.events} events (${run.uploads} uploads, ${written.ticks} ticks) written in ${round(written.seconds, 2)} s, ${mb(logBytes)} MB; folding…`);
  const rows: BenchRow[] = [
    {
      group: GROUP,
      name: `log: ${run.uploads.toLocaleString('en-US')} uploads × ${KEYS_PER_UPLOAD}${withTicks !== undefined ? `, ${written.ticks} ticks` : ''}`,
      values: { events: main.events, MB: mb(logBytes), bytesPerUpload: written.uploadBytes, writeS: round(written.seconds, 2) },
      unit: '',
    },
  ];
  const target = (s: number): NonNullable<BenchRow['ratio']> => ({ label: `seconds ÷ ${TARGET_S}`, value: round(s / TARGET_S, 2), target: '≤ 1.00' });
  let withTicksS: number | undefined;
  if (withTicks !== undefined) {
    const rssBefore = rssMb();
    const folded = await fold(withTicks.path, secrets, config, 'with ticks');
    check(folded.ledger, run.uploads, true);
    const rssAfter = rssMb();
    withTicksS = folded.seconds;
    const { ledger } = folded;
    note(`rebuild: ${folded.events} events in ${round(folded.seconds, 2)} s; ${ledger.records.size} records, seq ${ledger.publisher.seq}, ${ledger.counters.filesPublished} files; RSS ${rssAfter} MB`);
    rows.push(
      {
        group: GROUP,
        name: `rebuildFromJournal, ${keysText} keys + a day's files`,
        values: { seconds: round(folded.seconds, 2), events: folded.events, eventsPerS: Math.round(folded.events / folded.seconds), records: ledger.records.size, files: ledger.counters.filesPublished, cpuS: round(folded.cpuS, 2), vs5min: round(folded.seconds / SEED_BAR_S, 3) },
        unit: 's',
        ratio: target(folded.seconds),
      },
      { group: GROUP, name: 'memory after rebuild', values: { rssMB: rssAfter, rssBeforeMB: rssBefore, heapUsedMB: mb(process.memoryUsage().heapUsed), bytesPerKey: Math.round(((rssAfter - rssBefore) * 1e6) / keys) }, unit: 'MB' },
    );
  }
  if (plain !== undefined) {
    const folded = await fold(plain.path, secrets, config, 'uploads only');
    check(folded.ledger, run.uploads, false);
    note(`rebuild (uploads only): ${folded.events} events in ${round(folded.seconds, 2)} s`);
    rows.push({
      group: GROUP,
      name: `rebuildFromJournal, ${keysText} keys, no ticks`,
      values: {
        seconds: round(folded.seconds, 2),
        events: folded.events,
        uploadsPerS: Math.round(run.uploads / folded.seconds),
        cpuS: round(folded.cpuS, 2),
        ...(withTicksS !== undefined ? { publicationS: round(withTicksS - folded.seconds, 2) } : {}),
      },
      unit: 's',
      ratio: target(folded.seconds),
    });
  }
  return rows;
}
