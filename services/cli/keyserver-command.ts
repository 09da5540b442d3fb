/**
 * `tracecity keyserver …` (issue 4; docs/decisions/0006):
 *
 *   init                                    create the log, its secrets and its fixed configuration
 *   serve                                   run the server (embedded aedes on --port, or --broker)
 *   provider add <id> | provider revoke <id> [--retroactive --since T]
 *   codes issue --provider P --count N [--lifetime-h H]   prints the codes, one per line (JSON)
 *   upload withdraw --provider P --tracking-id T
 *   state                                   the server's state digest and counts
 *   rebuild                                 fold the log offline; prints how long it took and the digest
 *   export --out DIR                        GAEN export.zip files of the keys in distribution
 *
 * Admin commands talk to a running server with --broker, otherwise they open
 * the log in this process (session.ts). Every command prints one JSON value on
 * stdout; logs go to stderr.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { createKeyServerMachine } from '../../actors/key-server/key-server.ts';
import type { KeyServerContext } from '../../actors/key-server/key-server-state.ts';
import { stateDigest } from '../../actors/key-server/ledger.ts';
import { nobleSuite } from '../../protocol/crypto/noble.ts';
import { buildExportZip, type ExportKey } from '../../protocol/keyserver/gaen-export.ts';
import type { AdminResult } from '../../protocol/keyserver/messages.ts';
import { actorAddress } from '../../protocol/wire/topics.ts';
import { openBus } from '../bus/open.ts';
import { nodeSuite } from '../crypto/node.ts';
import { rebuildFromJournal } from '../host/rebuild.ts';
import { createLogger } from '../log.ts';
import { DirectoryBlobStore } from '../keyserver/blobs.ts';
import { lockLog } from '../keyserver/lock.ts';
import { loadOrCreateSecrets, loadSecrets, publicKeyPath } from '../keyserver/secrets.ts';
import { keyServerDeps, startKeyServerService } from '../keyserver/service.ts';
import { keyServerPaths, loadServerConfig, realTime, requireLog, withKeyServer, type KeyServerPaths } from '../keyserver/session.ts';
import { openSqliteStore } from '../store/sqlite.ts';
import { brokerUrlFlag, ConfigError, intFlag, logLevelFlag, type LogLevel } from './options.ts';
import { onShutdown } from './shutdown.ts';

interface CommonFlags {
  db: string;
  secrets?: string;
  files?: string;
  id: string;
  broker?: string;
  logLevel: LogLevel;
}

const MS = { second: 1000, hour: 3_600_000, day: 86_400_000 } as const;
const print = (value: unknown): void => void process.stdout.write(`${JSON.stringify(value)}\n`);

function common(command: Command): Command {
  return command
    .option('--db <path>', 'the event log (SQLite)', 'keyserver.sqlite')
    .option('--secrets <path>', 'pepper and signing key (default <db>.secrets.json, created on first use)')
    .option('--files <dir>', 'distribution directory (default <db>.files)')
    .option('--id <serverId>', 'the server id (its topics: tc/v1/key-server/<id>/…, index tc/v1/keys/<id>)', 'ks1')
    .option('--broker <url>', 'talk to a running server through this broker', brokerUrlFlag)
    .option('--log-level <level>', 'debug | info | warn | error', logLevelFlag, 'warn' as LogLevel);
}

const paths = (flags: CommonFlags): KeyServerPaths => keyServerPaths(flags.db, { secrets: flags.secrets, files: flags.files });
const loggerFor = (flags: CommonFlags) => createLogger({ name: 'keyserver', level: flags.logLevel });

function sinceFlag(value: string): number {
  const asNumber = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isSafeInteger(asNumber) || asNumber < 0) throw new InvalidArgumentError(`--since must be an ISO date or ms since the epoch, got ${JSON.stringify(value)}`);
  return asNumber;
}

function admin(flags: CommonFlags, type: string, body: Record<string, unknown>): Promise<void> {
  return withKeyServer(paths(flags), flags.id, flags.broker, loggerFor(flags), async (client) => {
    const result: AdminResult = await client.admin(type, body as never);
    print(result);
    if (!result.ok) process.exitCode = 1;
  });
}

async function rebuild(flags: CommonFlags): Promise<{ context: KeyServerContext; events: number; ms: number }> {
  const where = paths(flags);
  requireLog(where);
  const secrets = loadSecrets(where.secrets);
  const config = loadServerConfig(where.config);
  const store = await openSqliteStore(where.db);
  try {
    const rebuilt = await rebuildFromJournal(createKeyServerMachine(keyServerDeps(secrets)), { serverId: flags.id, config }, store, actorAddress('key-server', flags.id));
    return { context: rebuilt.context as KeyServerContext, events: rebuilt.events, ms: rebuilt.ms };
  } finally {
    await store.close();
  }
}

function summary(context: KeyServerContext): Record<string, unknown> {
  const { ledger } = context;
  return {
    stateDigest: stateDigest(nodeSuite, ledger),
    records: ledger.records.size,
    uploads: ledger.uploads.size,
    providers: ledger.providers.size,
    seq: ledger.publisher.seq,
    latestFull: ledger.publisher.latestFull,
    counters: ledger.counters,
  };
}

interface ConfigFlags {
  periodS?: number;
  fullEveryS?: number;
  retentionDays?: number;
  maxRecords?: number;
  sightingFilters?: true;
}

/** The machine's configuration from serve/init flags (only those given: the rest are the log's or the defaults). */
function configOverrides(flags: ConfigFlags): Parameters<typeof loadServerConfig>[1] {
  return {
    ...(flags.periodS !== undefined ? { periodMs: flags.periodS * MS.second } : {}),
    ...(flags.fullEveryS !== undefined ? { fullEveryMs: flags.fullEveryS * MS.second } : {}),
    ...(flags.retentionDays !== undefined ? { retentionMs: flags.retentionDays * MS.day } : {}),
    ...(flags.maxRecords !== undefined ? { maxRecords: flags.maxRecords } : {}),
    ...(flags.sightingFilters === true ? { sightingFilters: true } : {}),
  };
}

/** `init`: the log, its secrets and its fixed configuration, nothing else. */
async function init(flags: CommonFlags & ConfigFlags): Promise<void> {
  const where = paths(flags);
  if (existsSync(where.db)) throw new ConfigError([`${where.db} exists already (its configuration is fixed: see ${where.config})`]);
  const release = lockLog(where.db);
  try {
    loadOrCreateSecrets(where.secrets);
    const config = loadServerConfig(where.config, configOverrides(flags));
    await (await openSqliteStore(where.db)).close();
    print({ db: where.db, secrets: where.secrets, publicKey: publicKeyPath(where.secrets), files: where.files, config: { periodMs: config.periodMs, fullEveryMs: config.fullEveryMs, retentionMs: config.retentionMs, maxRecords: config.maxRecords, sightingFilters: config.sightingFilters } });
  } finally {
    release();
  }
}

function configOptions(command: Command): Command {
  return command
    .option('--period-s <s>', 'delta period, seconds (default 900; fixed when the log is created)', intFlag('--period-s', 1))
    .option('--full-every-s <s>', 'full dump period, seconds (default 86400)', intFlag('--full-every-s', 1))
    .option('--retention-days <d>', 'key retention, days (default 14)', intFlag('--retention-days', 1, 365))
    .option('--max-records <n>', 'records in distribution at most (default 1000000)', intFlag('--max-records', 1, 1_000_000))
    .option('--sighting-filters', 'also publish a Golomb-coded sighting filter per delta (retained index tc/v1/keys/<id>.filters)');
}

interface ServeFlags extends CommonFlags, ConfigFlags {
  port: number;
}

async function serve(flags: ServeFlags): Promise<void> {
  const logger = loggerFor(flags);
  const where = paths(flags);
  const release = lockLog(where.db);
  try {
    const secrets = loadOrCreateSecrets(where.secrets);
    const config = loadServerConfig(where.config, configOverrides(flags));
    const store = await openSqliteStore(where.db);
    const blobs = new DirectoryBlobStore(where.files);
    const leftovers = await blobs.removeTemporaries();
    if (leftovers > 0) logger.warn('removed temporary files a killed server left in the distribution directory', { count: leftovers });
    const opened = await openBus(flags.broker !== undefined ? { kind: 'url', url: flags.broker } : { kind: 'embedded', port: flags.port }, `key-server.${flags.id}`, logger);
    const scheduler = realTime();
    const started = performance.now();
    const service = await startKeyServerService({ serverId: flags.id, bus: opened.bus, store, blobs, scheduler, logger, secrets, config });
    print({ ready: true, serverId: flags.id, bus: opened.description, db: where.db, files: where.files, publicKey: publicKeyPath(where.secrets), startMs: Math.round(performance.now() - started) });
    await onShutdown(logger, async () => {
      await service.stop();
      scheduler.cancelAll();
      const context = service.context();
      print({ stopped: true, stateDigest: stateDigest(nodeSuite, context.ledger), records: context.ledger.records.size, counters: context.ledger.counters, admission: service.admission.stats, files: service.files.stats, host: service.host.stats });
      await opened.close();
      await store.close();
    });
  } finally {
    release();
  }
}

async function exportZips(flags: CommonFlags & { out: string; region: string }): Promise<void> {
  const { context } = await rebuild(flags);
  const secrets = loadSecrets(paths(flags).secrets);
  const keys: ExportKey[] = [];
  for (const { record } of context.ledger.records.values()) {
    if (record.protocol === 'gaen-tek') keys.push({ keyData: record.key, rollingStartIntervalNumber: record.rollingStartIntervalNumber, rollingPeriod: record.rollingPeriod, transmissionRiskLevel: record.transmissionRisk });
  }
  mkdirSync(flags.out, { recursive: true });
  // EN-server's defaults: at least 1,000 keys per file plus up to 100 more (jitter).
  const perFile = 400_000;
  const batches = Math.max(1, Math.ceil(keys.length / perFile));
  const now = Math.floor(Date.now() / 1000);
  const rng = { bytes: (n: number) => Uint8Array.from(randomBytes(n)), int: (max: number) => randomBytes(4).readUInt32BE() % max };
  const files: string[] = [];
  for (let b = 0; b < batches; b++) {
    const built = buildExportZip(nobleSuite, {
      keys: keys.slice(b * perFile, (b + 1) * perFile),
      startTimestamp: now - Math.floor(context.config.retentionMs / 1000),
      endTimestamp: now,
      region: flags.region,
      batchNum: b + 1,
      batchSize: batches,
      signatureInfo: { verificationKeyId: secrets.keyId, verificationKeyVersion: 'v1' },
      signingKey: secrets.signingKey,
      padding: { minKeys: 1000, jitter: 100, rng },
    });
    const file = join(flags.out, `export-${b + 1}-of-${batches}.zip`);
    writeFileSync(file, built.zip);
    files.push(file);
  }
  print({ keys: keys.length, files, publicKey: publicKeyPath(paths(flags).secrets) });
}

export function registerKeyserver(program: Command): void {
  const ks = program.command('keyserver').description('Diagnosis-key server: serve, providers, codes, withdrawals, state, rebuild, export');
  configOptions(common(ks.command('init').description('create the event log, its secrets and its (fixed) configuration'))).action((flags: CommonFlags & ConfigFlags) => init(flags));
  configOptions(common(ks.command('serve').description('run the key server until SIGINT/SIGTERM (creates the log when there is none)')))
    .option('--port <n>', 'embedded broker port when no --broker is given (0: any free port)', intFlag('--port', 0, 65535), 1883)
    .action((flags: ServeFlags) => serve(flags));
  const provider = ks.command('provider').description('healthcare provider accounts');
  common(provider.command('add').argument('<providerId>').description('add a provider')).action((id: string, flags: CommonFlags) => admin(flags, 'keys.provider.add', { providerId: id }));
  common(provider.command('revoke').argument('<providerId>').description('revoke a provider (prospective, or --retroactive)'))
    .option('--retroactive', 'also withdraw every upload it authorized since --since')
    .option('--since <time>', 'ISO date or ms since the epoch (with --retroactive)', sinceFlag)
    .action((id: string, flags: CommonFlags & { retroactive?: true; since?: number }) => {
      if (flags.retroactive === true && flags.since === undefined) throw new ConfigError(['--retroactive needs --since <time>']);
      return admin(flags, 'keys.provider.revoke', { providerId: id, retroactive: flags.retroactive === true, since: flags.since ?? 0 });
    });
  common(ks.command('codes').command('issue').description('issue one-time upload codes for a provider (printed once)'))
    .requiredOption('--provider <id>', 'the issuing provider')
    .requiredOption('--count <n>', 'how many codes', intFlag('--count', 1, 100_000))
    .option('--lifetime-h <h>', 'hours until the codes expire (default 24, at most the retention)', intFlag('--lifetime-h', 1, 24 * 365), 24)
    .action((flags: CommonFlags & { provider: string; count: number; lifetimeH: number }) =>
      withKeyServer(paths(flags), flags.id, flags.broker, loggerFor(flags), async (client, secrets) => {
        const codes = await client.issueCodes(flags.provider, flags.count, secrets().pepper, flags.lifetimeH * MS.hour, Date.now());
        print({ provider: flags.provider, codes: codes.map((c) => c.text) });
      }),
    );
  common(ks.command('upload').command('withdraw').description("withdraw one upload by its tracking id (its provider's request)"))
    .requiredOption('--provider <id>', 'the provider that authorized the upload')
    .requiredOption('--tracking-id <id>', 'the upload tracking id')
    .action((flags: CommonFlags & { provider: string; trackingId: string }) => admin(flags, 'keys.upload.withdraw', { providerId: flags.provider, trackingId: flags.trackingId }));
  common(ks.command('state').description("the server's state digest and counts")).action((flags: CommonFlags) => admin(flags, 'keys.server.state', {}));
  common(ks.command('rebuild').description('recreate the state from the log alone; prints how long it took and the state digest')).action(async (flags: CommonFlags) => {
    const { context, events, ms } = await rebuild(flags);
    print({ events, ms: Math.round(ms), ...summary(context) });
  });
  common(ks.command('export').description('write GAEN export.zip files of the keys in distribution'))
    .requiredOption('--out <dir>', 'output directory')
    .option('--region <code>', 'export region', 'TC')
    .action((flags: CommonFlags & { out: string; region: string }) => exportZips(flags));
}

