/**
 * Helpers for end-to-end tests of `tracecity keyserver` processes (issue 4):
 * waiting for a process's output (a server's `ready` line, its `stopped` line
 * after SIGTERM), running a one-shot command that prints one JSON value,
 * retrying an rpc until a restarted server answers, folding a server's log in
 * this process, and a distribution follower — a client that takes every
 * retained index the server announces and follows the signed files in the
 * distribution directory (as a CDN would serve them), checking the chain.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'vitest';
import { createActor } from 'xstate';
import { createKeyServerMachine, type KeyServerEvent } from '../../actors/key-server/key-server.ts';
import { stateDigest } from '../../actors/key-server/ledger.ts';
import type { Bus, Subscription } from '../../actors/ports.ts';
import type { DistributionFile } from '../../protocol/keyserver/distribution-file.ts';
import { distributionIndexCodec, type DistributionIndex } from '../../protocol/keyserver/distribution-index.ts';
import type { IdentifiedRecord, RecordId } from '../../protocol/keyserver/distribution-records.ts';
import { openDistributionFile } from '../../protocol/keyserver/distribution-signing.ts';
import { decodeEnvelope, type Envelope } from '../../protocol/wire/envelope.ts';
import { keysTopic } from '../../protocol/wire/topics.ts';
import { RpcTimeoutError } from '../../services/bus/rpc.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { ActorJournal } from '../../services/host/journal.ts';
import { loadOrCreateSecrets } from '../../services/keyserver/secrets.ts';
import { keyServerDeps } from '../../services/keyserver/service.ts';
import { keyServerPaths, loadServerConfig } from '../../services/keyserver/session.ts';
import { openSqliteStore } from '../../services/store/sqlite.ts';
import { exited, runTracecity, type Proc } from './processes.ts';

/** The first match of `pattern` in the process's stdout (or stderr); throws when it exits or the time is up. */
export async function waitForOutput(p: Proc, pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const m = pattern.exec(p.stdout()) ?? pattern.exec(p.stderr());
    if (m !== null) return m;
    if (p.child.exitCode !== null || p.child.signalCode !== null || Date.now() > until) {
      throw new Error(`no ${String(pattern)} (exit ${String(p.child.exitCode ?? p.child.signalCode)}): ${p.stderr()}`);
    }
    await sleep(20);
  }
}

/** The JSON lines a process printed on stdout (others skipped). */
export function jsonLines(p: Proc): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of p.stdout().split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // a line cut by a kill
    }
  }
  return out;
}

/** Run `tracecity <args>` to completion; its last stdout line parsed as JSON. Throws on a non-zero exit. */
export async function runJson<T>(args: readonly string[], timeoutMs = 60_000): Promise<T> {
  const result = await runTracecity(args, timeoutMs);
  if (result.code !== 0) throw new Error(`tracecity ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  const line = result.stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as T;
}

export interface Ready {
  ready: true;
  startMs: number;
}

/** The `ready` line of a `keyserver serve` process, once it printed one. */
export async function ready(p: Proc): Promise<Ready> {
  await waitForOutput(p, /"ready":true/, 30_000);
  return jsonLines(p).find((l) => l['ready'] === true) as unknown as Ready;
}

/** SIGTERM a server, expect a clean exit; its `stopped` line. */
export async function sigterm(p: Proc): Promise<Record<string, unknown>> {
  p.child.kill('SIGTERM');
  expect(await exited(p, 20_000), p.stderr()).toBe(0);
  return jsonLines(p).find((l) => l['stopped'] === true) ?? {};
}

/** What `tracecity keyserver rebuild` prints. */
export interface Rebuild {
  events: number;
  ms: number;
  stateDigest: string;
  records: number;
  uploads: number;
  providers: number;
  seq: number;
  counters: { uploadsReceived: number; uploadsAccepted: number; uploadRetries: number; chaff: number; recordsAccepted: number; rejected: Record<string, number> };
}

/** One request's retries give up after this (the test fails): a restarted server is never down that long. */
const ANSWER_DEADLINE_MS = 45_000;

/** `call` again on every rpc timeout (same request: same code, same records) until it is answered. */
export async function untilAnswered<T>(call: () => Promise<T>, onTimeout: () => void): Promise<T> {
  const until = Date.now() + ANSWER_DEADLINE_MS;
  for (;;) {
    try {
      return await call();
    } catch (err) {
      if (!(err instanceof RpcTimeoutError) || Date.now() > until) throw err;
      onTimeout();
    }
  }
}

/** Fold the log of server `serverId` in this process: the digest right after the event `isQuery` picks (and what followed it), and at the end. */
export async function foldLog(
  db: string,
  serverId: string,
  isQuery: (envelope: Envelope | undefined, type: string) => boolean,
): Promise<{ atQuery: string | undefined; after: string[]; end: string; events: number }> {
  const paths = keyServerPaths(db);
  const machine = createKeyServerMachine(keyServerDeps(loadOrCreateSecrets(paths.secrets)));
  const actor = createActor(machine, { input: { serverId, config: loadServerConfig(paths.config) } });
  actor.start();
  const digest = (): string => stateDigest(nodeSuite, actor.getSnapshot().context.ledger);
  const store = await openSqliteStore(db);
  let atQuery: string | undefined;
  const after: string[] = [];
  try {
    const { events } = await new ActorJournal(store, `key-server/${serverId}`, { snapshots: false }).replayInto(0, (event) => {
      actor.send(event as unknown as KeyServerEvent);
      if (atQuery !== undefined) after.push(event.type);
      else if (isQuery(event['envelope'] as Envelope | undefined, event.type)) atQuery = digest();
    });
    return { atQuery, after, end: digest(), events };
  } finally {
    actor.stop();
    await store.close();
  }
}

export interface FollowerStats {
  /** Index messages taken. */
  indexes: number;
  /** Distinct files opened (signature, name and chain checked). */
  filesOpened: number;
  deltasApplied: number;
  /** Full dumps compared against the follower's own state at their seq. */
  fullsChecked: number;
}

/**
 * Follows a key server's retained index (`tc/v1/keys/<id>`) and the files in
 * its distribution directory, from seq 0, one index at a time. From its chain
 * tip it walks back from the newest delta the index implies (the last listed
 * delta, or the full dump's `basedOn`) by `basedOn` links, reading each file
 * from the directory, so a delta the index no longer lists (a full dump
 * replaced it) is still applied — and a fork (a restarted server signing a
 * different file at a seq already published) shows as a link that misses the
 * tip. Every file must exist when an index names it (files are written before
 * the index), open under the public key, and have the kind and seq its place
 * implies; a full dump must hold exactly the follower's records at its seq.
 * Problems are collected, never thrown.
 */
export class DistributionFollower {
  seq = 0;
  tip: string | null = null;
  readonly live = new Set<RecordId>();
  readonly problems: string[] = [];
  readonly stats: FollowerStats = { indexes: 0, filesOpened: 0, deltasApplied: 0, fullsChecked: 0 };
  private chain: Promise<void> = Promise.resolve();
  private subscription: Subscription | undefined;
  private readonly opened = new Map<string, DistributionFile<IdentifiedRecord>>();

  constructor(
    private readonly dir: string,
    private readonly publicKeys: ReadonlyMap<string, Uint8Array>,
  ) {}

  async start(bus: Bus, serverId: string): Promise<void> {
    this.subscription = await bus.subscribe(keysTopic(serverId), (_topic, payload) => this.take(payload), { qos: 1 });
  }

  async stop(): Promise<void> {
    await this.subscription?.unsubscribe();
    await this.chain;
  }

  /** Resolves when every index received so far has been followed. */
  idle(): Promise<void> {
    return this.chain;
  }

  private take(payload: Uint8Array): void {
    const envelope = decodeEnvelope(payload);
    if (!envelope.ok) return void this.problems.push(`index envelope: ${envelope.reason} ${envelope.detail}`);
    const index = distributionIndexCodec.decode(envelope.value.body);
    if (!index.ok) return void this.problems.push(`index body: ${index.reason} ${index.detail}`);
    this.chain = this.chain.then(() => this.follow(index.value)).catch((err: unknown) => void this.problems.push(`follow: ${String(err)}`));
  }

  private async open(name: string): Promise<DistributionFile<IdentifiedRecord>> {
    const known = this.opened.get(name);
    if (known !== undefined) return known;
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await readFile(join(this.dir, name)));
    } catch (err) {
      throw new Error(`file ${name} named by an index is not in the directory (${String(err)})`, { cause: err });
    }
    const verdict = openDistributionFile(nodeSuite, this.publicKeys, name, bytes);
    if (!verdict.ok) throw new Error(`file ${name}: ${verdict.reason}: ${verdict.detail}`);
    this.stats.filesOpened++;
    this.opened.set(name, verdict.value);
    return verdict.value;
  }

  private checkFull(full: DistributionFile<IdentifiedRecord>, name: string): void {
    this.stats.fullsChecked++;
    const ids = new Set(full.additions.map((r) => r.id));
    const missing = [...this.live].filter((id) => !ids.has(id)).length;
    const extra = [...ids].filter((id) => !this.live.has(id)).length;
    if (missing + extra > 0) this.problems.push(`full dump ${name} at seq ${full.seq}: ${missing} records missing, ${extra} extra against the deltas`);
  }

  private async follow(index: DistributionIndex): Promise<void> {
    this.stats.indexes++;
    if (index.seq < this.seq) return void this.problems.push(`index went back from seq ${this.seq} to ${index.seq}`);
    const fullSeq = index.seq - index.deltas.length;
    const full = index.latestFull === null ? undefined : await this.open(index.latestFull);
    if (full !== undefined && (full.kind !== 'full' || full.seq !== fullSeq)) {
      return void this.problems.push(`latestFull ${index.latestFull ?? ''} is a ${full.kind} at seq ${full.seq}, not the full at ${fullSeq}`);
    }
    const newest = index.deltas.at(-1) ?? full?.basedOn ?? null;
    if (index.seq === this.seq) {
      if (newest !== this.tip) this.problems.push(`fork at seq ${index.seq}: the index implies ${String(newest)}, the follower holds ${String(this.tip)}`);
      return;
    }
    const pending: { name: string; file: DistributionFile<IdentifiedRecord> }[] = [];
    let name = newest;
    for (let seq = index.seq; seq > this.seq; seq--) {
      if (name === null) return void this.problems.push(`chain ends at seq ${seq}, above the follower's ${this.seq}`);
      const file = await this.open(name);
      if (file.kind !== 'delta' || file.seq !== seq) return void this.problems.push(`${name}: a ${file.kind} at seq ${file.seq} where the delta at ${seq} belongs`);
      pending.push({ name, file });
      name = file.basedOn;
    }
    if (name !== this.tip) return void this.problems.push(`fork: the chain to seq ${index.seq} passes ${String(name)} at seq ${this.seq}, the follower holds ${String(this.tip)}`);
    if (full !== undefined && this.seq === fullSeq) this.checkFull(full, index.latestFull ?? '');
    for (const { name: fileName, file } of pending.reverse()) {
      for (const id of file.deletions) if (!this.live.delete(id)) this.problems.push(`${fileName} deletes ${id}, which is not live`);
      for (const record of file.additions) {
        if (this.live.has(record.id)) this.problems.push(`${fileName} adds ${record.id} again`);
        this.live.add(record.id);
      }
      this.seq = file.seq;
      this.tip = fileName;
      this.stats.deltasApplied++;
      if (full !== undefined && this.seq === fullSeq) this.checkFull(full, index.latestFull ?? '');
    }
  }
}
