/**
 * Where a `tracecity keyserver` command finds its server (docs/decisions/0006):
 *
 * - files beside the event log `--db X.sqlite`: `X.sqlite.secrets.json`
 *   (pepper + signing key, secrets.ts), `X.sqlite.config.json` (the machine's
 *   configuration: it shapes the fold, so it is fixed when the log is created
 *   and every later serve/rebuild uses the same), `X.sqlite.files/` (the
 *   distribution directory).
 * - an admin session: with `--broker`, a bus client to the running server;
 *   without, the server itself in this process on the log (taking its lock),
 *   an in-memory bus, the command, a clean stop.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import type { Logger } from '../../actors/ports.ts';
import { resolveKeyServerConfig, type KeyServerConfig } from '../../actors/key-server/key-server-state.ts';
import { inboxTopic } from '../../protocol/wire/topics.ts';
import { MemoryHub } from '../bus/memory.ts';
import { openBus } from '../bus/open.ts';
import { ConfigError } from '../cli/options.ts';
import { openSqliteStore } from '../store/sqlite.ts';
import { WallScheduler } from '../time/wall.ts';
import { DirectoryBlobStore } from './blobs.ts';
import { KeyServerClient } from './client.ts';
import { lockLog } from './lock.ts';
import { loadSecrets, type KeyServerSecrets } from './secrets.ts';
import { startKeyServerService, type KeyServerService } from './service.ts';

export interface KeyServerPaths {
  readonly db: string;
  readonly secrets: string;
  readonly config: string;
  readonly files: string;
}

export function keyServerPaths(db: string, overrides: { secrets?: string | undefined; files?: string | undefined } = {}): KeyServerPaths {
  return { db, secrets: overrides.secrets ?? `${db}.secrets.json`, config: `${db}.config.json`, files: overrides.files ?? `${db}.files` };
}

const storedConfigSchema = z.strictObject({
  v: z.literal(1),
  periodMs: z.number().int().positive(),
  fullEveryMs: z.number().int().positive(),
  retentionMs: z.number().int().positive(),
  maxRecords: z.number().int().positive(),
  sightingFilters: z.boolean().default(false),
});

type Overrides = Partial<Pick<KeyServerConfig, 'periodMs' | 'fullEveryMs' | 'retentionMs' | 'maxRecords' | 'sightingFilters'>>;

/**
 * The configuration stored beside the log, created from `overrides` on first
 * use; later overrides must agree with it (ConfigError listing each conflict).
 */
export function loadServerConfig(path: string, overrides: Overrides = {}): KeyServerConfig {
  if (!existsSync(path)) {
    const config = resolveKeyServerConfig(overrides);
    const stored = { v: 1, periodMs: config.periodMs, fullEveryMs: config.fullEveryMs, retentionMs: config.retentionMs, maxRecords: config.maxRecords, sightingFilters: config.sightingFilters };
    writeFileSync(path, `${JSON.stringify(stored, null, 2)}\n`, { flag: 'wx' });
    return config;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError([`${path}: not JSON (${err instanceof Error ? err.message : String(err)})`]);
  }
  const parsed = storedConfigSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map((i) => `${path}: ${i.path.join('.') || '(file)'}: ${i.message}`));
  const { v: _v, ...stored } = parsed.data;
  const conflicts = Object.entries(overrides)
    .filter(([key, value]) => value !== undefined && stored[key as keyof typeof stored] !== value)
    .map(([key, value]) => `${key}: the log was built with ${stored[key as keyof typeof stored]}, not ${String(value)} (it shapes the fold; start a new --db to change it)`);
  if (conflicts.length > 0) throw new ConfigError(conflicts);
  return resolveKeyServerConfig(stored);
}

/** ConfigError unless the log exists: only `init` and `serve` create one (their flags fix its configuration). */
export function requireLog(paths: KeyServerPaths): void {
  if (!existsSync(paths.db)) {
    throw new ConfigError([`no key-server log at ${paths.db}: create it with \`tracecity keyserver init --db ${paths.db}\` (or \`serve\`), whose flags fix its configuration`]);
  }
}

/** A wall-clock scheduler at speed 1 (a key server runs in real time; periods are configuration). */
export function realTime(): WallScheduler {
  const now = Date.now();
  return new WallScheduler({ t0: now, wall0: now, speed: 1 });
}

export interface OfflineServer {
  readonly service: KeyServerService;
  readonly secrets: KeyServerSecrets;
  readonly hub: MemoryHub;
  close(): Promise<void>;
}

/** The server on its log in this process, with an in-memory bus (offline admin commands, rebuild checks). */
export async function openOfflineServer(paths: KeyServerPaths, serverId: string, logger: Logger): Promise<OfflineServer> {
  requireLog(paths);
  const release = lockLog(paths.db);
  try {
    const secrets = loadSecrets(paths.secrets);
    const config = loadServerConfig(paths.config);
    const store = await openSqliteStore(paths.db);
    const hub = new MemoryHub();
    const bus = hub.connect(`key-server.${serverId}`);
    const scheduler = realTime();
    const service = await startKeyServerService({ serverId, bus, store, blobs: new DirectoryBlobStore(paths.files), scheduler, logger, secrets, config });
    return {
      service,
      secrets,
      hub,
      close: async () => {
        await service.stop();
        scheduler.cancelAll();
        await bus.close();
        await store.close();
        release();
      },
    };
  } catch (err) {
    release();
    throw err;
  }
}

/**
 * Run `command` with a client of the server: over `broker` when given, else
 * against the server opened in this process. The secrets file is needed in
 * both cases by commands that compute code digests (the pepper).
 */
export async function withKeyServer<T>(paths: KeyServerPaths, serverId: string, broker: string | undefined, logger: Logger, command: (client: KeyServerClient, secrets: () => KeyServerSecrets) => Promise<T>): Promise<T> {
  const address = { address: `host/cli-${process.pid}`, inbox: inboxTopic('host', `cli-${process.pid}`) };
  const secrets = (): KeyServerSecrets => loadSecrets(paths.secrets);
  if (broker !== undefined) {
    const opened = await openBus({ kind: 'url', url: broker }, `host.cli-${process.pid}`, logger);
    try {
      const client = await KeyServerClient.connect(opened.bus, { serverId, ...address });
      try {
        return await command(client, secrets);
      } finally {
        await client.close();
      }
    } finally {
      await opened.close();
    }
  }
  const server = await openOfflineServer(paths, serverId, logger);
  try {
    const client = await KeyServerClient.connect(server.hub.connect(`host.cli-${process.pid}`), { serverId, ...address });
    try {
      return await command(client, () => server.secrets);
    } finally {
      await client.close();
    }
  } finally {
    await server.close();
  }
}
