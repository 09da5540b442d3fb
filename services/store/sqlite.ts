/**
 * Durable Store on SQLite (better-sqlite3), DESIGN.md "Storage".
 *
 * Durability: WAL journal + `synchronous = FULL`, so every COMMIT fsyncs the
 * WAL before it returns. A write (append/put/delete) resolves only after the
 * transaction holding it has committed; a rejected write was rolled back.
 *
 * Group commit: an fsync costs milliseconds, so one transaction per append
 * caps ingest at a few hundred appends/s. Writes are queued and flushed once
 * per event-loop turn (setImmediate) in ONE transaction; every promise of the
 * batch resolves after that single commit. setImmediate rather than a
 * microtask so that writes issued from several promise chains of the same
 * turn (e.g. one socket read delivering many messages) share the fsync.
 *
 * Order: every operation takes effect in call order. Reads first flush queued
 * writes (synchronously), so `put(k, v); get(k)` sees v even un-awaited, and a
 * snapshot `put` can never become durable before an `append` issued earlier.
 *
 * Portability to PostgreSQL: types are TEXT, BIGINT and BLOB (PG: BYTEA);
 * upsert is `INSERT … ON CONFLICT … DO UPDATE`; prefix scans are key ranges
 * (no LIKE), which need `COLLATE "C"` on PG to match SQLite's BINARY order.
 * `PRAGMA`s and `user_version` are SQLite-only and live in this adapter only.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Store, StoredRecord } from '../../actors/ports.ts';
import { MisuseError } from '../../protocol/errors.ts';
import { StoreClosedError, checkBytes, checkName, checkReadRange, settle } from './common.ts';

/** One schema step. Steps only ever get appended; user_version = steps applied. */
export interface Migration {
  readonly description: string;
  /** Portable DDL/DML (no SQLite-only syntax), run in one transaction. */
  readonly statements: readonly string[];
}

export const MIGRATIONS: readonly Migration[] = [
  {
    description: 'append-only events log (source of truth) and kv for derived state',
    statements: [
      // seq is BIGINT (SQLite: a 64-bit INTEGER; PG INTEGER would be 32-bit).
      `CREATE TABLE events (
         stream TEXT NOT NULL,
         seq BIGINT NOT NULL,
         record BLOB NOT NULL,
         PRIMARY KEY (stream, seq)
       )`,
      `CREATE TABLE kv (
         key TEXT NOT NULL PRIMARY KEY,
         value BLOB NOT NULL
       )`,
    ],
  },
];

export interface SqliteStoreOptions {
  /** How long a write waits for another connection's lock (ms). Default 5000. */
  readonly busyTimeoutMs?: number;
  /** Schema steps; defaults to MIGRATIONS (tests pass longer lists). */
  readonly migrations?: readonly Migration[];
}

/** The database file was written by a newer build (more schema steps than we know). */
export class StoreSchemaError extends Error {
  override readonly name = 'StoreSchemaError';
}

/** Counters for tests and benches. */
export interface SqliteStoreStats {
  /** Write transactions committed (one per group-commit batch). */
  readonly commits: number;
  /** Writes (append/put/delete) acknowledged. */
  readonly writes: number;
}

type Write =
  | { readonly kind: 'append'; readonly stream: string; readonly record: Uint8Array; readonly done: Settle<number> }
  | { readonly kind: 'put'; readonly key: string; readonly value: Uint8Array; readonly done: Settle<void> }
  | { readonly kind: 'delete'; readonly key: string; readonly done: Settle<void> };

interface Settle<T> {
  resolve(value: T): void;
  reject(error: Error): void;
}

export async function openSqliteStore(path: string, options: SqliteStoreOptions = {}): Promise<SqliteStore> {
  await Promise.resolve(); // keep an async signature: a PostgreSQL store will need one
  return new SqliteStore(path, options);
}

export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private queue: Write[] = [];
  private flushTimer: NodeJS.Immediate | undefined;
  /** Last committed seq per stream; valid because we hold the write lock to commit. */
  private readonly lastSeq = new Map<string, number>();
  private closed = false;
  private commits = 0;
  private writes = 0;

  private readonly stmt: {
    maxSeq: Database.Statement<[string], { seq: number | null }>;
    insertEvent: Database.Statement<[string, number, Uint8Array]>;
    readAll: Database.Statement<[string, number], { seq: number; record: Buffer }>;
    readLimit: Database.Statement<[string, number, number], { seq: number; record: Buffer }>;
    put: Database.Statement<[string, Uint8Array]>;
    get: Database.Statement<[string], { value: Buffer }>;
    delete: Database.Statement<[string]>;
    keysAll: Database.Statement<[], { key: string }>;
    keysFrom: Database.Statement<[string], { key: string }>;
    keysRange: Database.Statement<[string, string], { key: string }>;
  };
  private readonly writeBatch: Database.Transaction<(batch: readonly Write[], assigned: Map<string, number>) => number[]>;

  constructor(path: string, options: SqliteStoreOptions = {}) {
    if (typeof path !== 'string' || path.length === 0) throw new MisuseError('path', "must be a file path or ':memory:'");
    const busy = options.busyTimeoutMs ?? 5000;
    if (!Number.isSafeInteger(busy) || busy < 0) throw new MisuseError('options.busyTimeoutMs', 'must be a non-negative integer');
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });

    this.db = new Database(path);
    try {
      configure(this.db, path, busy);
      migrate(this.db, options.migrations ?? MIGRATIONS);
    } catch (error) {
      this.db.close();
      throw error;
    }

    const db = this.db;
    this.stmt = {
      maxSeq: db.prepare('SELECT MAX(seq) AS seq FROM events WHERE stream = ?'),
      insertEvent: db.prepare('INSERT INTO events (stream, seq, record) VALUES (?, ?, ?)'),
      readAll: db.prepare('SELECT seq, record FROM events WHERE stream = ? AND seq > ? ORDER BY seq'),
      readLimit: db.prepare('SELECT seq, record FROM events WHERE stream = ? AND seq > ? ORDER BY seq LIMIT ?'),
      put: db.prepare('INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
      get: db.prepare('SELECT value FROM kv WHERE key = ?'),
      delete: db.prepare('DELETE FROM kv WHERE key = ?'),
      keysAll: db.prepare('SELECT key FROM kv ORDER BY key'),
      keysFrom: db.prepare('SELECT key FROM kv WHERE key >= ? ORDER BY key'),
      keysRange: db.prepare('SELECT key FROM kv WHERE key >= ? AND key < ? ORDER BY key'),
    };
    this.writeBatch = db.transaction((batch: readonly Write[], assigned: Map<string, number>): number[] => {
      const seqs: number[] = [];
      for (const w of batch) {
        if (w.kind === 'append') {
          const last = assigned.get(w.stream) ?? this.lastSeq.get(w.stream) ?? this.stmt.maxSeq.get(w.stream)?.seq ?? 0;
          this.stmt.insertEvent.run(w.stream, last + 1, w.record);
          assigned.set(w.stream, last + 1);
          seqs.push(last + 1);
        } else if (w.kind === 'put') {
          this.stmt.put.run(w.key, w.value);
        } else {
          this.stmt.delete.run(w.key);
        }
      }
      return seqs;
    });
  }

  append(stream: string, record: Uint8Array): Promise<number> {
    return this.enqueue<number>('append', (done) => {
      checkName(stream, 'stream');
      checkBytes(record, 'record');
      // Copy now: the caller may reuse its buffer before the batch is flushed.
      return { kind: 'append', stream, record: new Uint8Array(record), done };
    });
  }

  put(key: string, value: Uint8Array): Promise<void> {
    return this.enqueue<void>('put', (done) => {
      checkName(key, 'key');
      checkBytes(value, 'value');
      return { kind: 'put', key, value: new Uint8Array(value), done };
    });
  }

  delete(key: string): Promise<void> {
    return this.enqueue<void>('delete', (done) => {
      checkName(key, 'key');
      return { kind: 'delete', key, done };
    });
  }

  read(stream: string, afterSeq?: number, limit?: number): Promise<readonly StoredRecord[]> {
    return settle(() => {
      this.beforeRead('read');
      checkName(stream, 'stream');
      const range = checkReadRange(afterSeq, limit);
      const rows =
        range.limit === undefined
          ? this.stmt.readAll.all(stream, range.afterSeq)
          : this.stmt.readLimit.all(stream, range.afterSeq, range.limit);
      return rows.map((row) => ({ seq: row.seq, record: bytes(row.record) }));
    });
  }

  get(key: string): Promise<Uint8Array | undefined> {
    return settle(() => {
      this.beforeRead('get');
      checkName(key, 'key');
      const row = this.stmt.get.get(key);
      return row === undefined ? undefined : bytes(row.value);
    });
  }

  keys(prefix: string): Promise<readonly string[]> {
    return settle(() => {
      this.beforeRead('keys');
      checkName(prefix, 'prefix', true);
      if (prefix === '') return this.stmt.keysAll.all().map((r) => r.key);
      const upper = prefixUpperBound(prefix);
      const rows = upper === undefined ? this.stmt.keysFrom.all(prefix) : this.stmt.keysRange.all(prefix, upper);
      // The range is exact; the filter only guards the bound computation.
      return rows.map((r) => r.key).filter((k) => k.startsWith(prefix));
    });
  }

  /** Commit queued writes, then close. Idempotent; later calls reject with StoreClosedError. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.flush();
    this.closed = true;
    return settle(() => {
      this.db.close();
    });
  }

  /** Commit counters (group commit is observable: one commit per batch). */
  stats(): SqliteStoreStats {
    return { commits: this.commits, writes: this.writes };
  }

  /** A pragma's current value, for tests (e.g. `journal_mode`, `synchronous`). */
  pragma(name: 'journal_mode' | 'synchronous' | 'busy_timeout' | 'user_version'): unknown {
    if (this.closed) throw new StoreClosedError('pragma');
    return this.db.pragma(name, { simple: true });
  }

  private enqueue<T>(operation: string, make: (done: Settle<T>) => Write): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.closed) throw new StoreClosedError(operation);
      this.queue.push(make({ resolve, reject }));
      this.flushTimer ??= setImmediate(() => this.flush());
    });
  }

  private beforeRead(operation: string): void {
    if (this.closed) throw new StoreClosedError(operation);
    this.flush();
  }

  /** Write every queued operation in one transaction, then settle their promises. */
  private flush(): void {
    if (this.flushTimer !== undefined) clearImmediate(this.flushTimer);
    this.flushTimer = undefined;
    if (this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    let seqs: number[];
    try {
      seqs = this.commit(batch);
    } catch (first) {
      // A primary-key clash means another connection appended to one of our
      // streams, so our cached seqs are stale: forget them and retry once.
      if (!isPrimaryKeyClash(first)) return rejectAll(batch, first);
      this.lastSeq.clear();
      try {
        seqs = this.commit(batch);
      } catch (second) {
        return rejectAll(batch, second);
      }
    }
    let i = 0;
    for (const w of batch) {
      if (w.kind === 'append') w.done.resolve(seqs[i++] ?? Number.NaN);
      else w.done.resolve();
    }
  }

  private commit(batch: readonly Write[]): number[] {
    const assigned = new Map<string, number>();
    // IMMEDIATE takes the write lock before reading MAX(seq), so no other
    // connection can append between our read and our insert.
    const seqs = this.writeBatch.immediate(batch, assigned);
    for (const [stream, seq] of assigned) this.lastSeq.set(stream, seq);
    this.commits++;
    this.writes += batch.length;
    return seqs;
  }
}

function configure(db: Database.Database, path: string, busyTimeoutMs: number): void {
  db.pragma(`busy_timeout = ${busyTimeoutMs}`);
  const mode = db.pragma('journal_mode = WAL', { simple: true });
  // ':memory:' databases cannot use WAL (they report 'memory'); files must.
  if (path !== ':memory:' && mode !== 'wal') throw new Error(`SQLite refused WAL mode for ${path} (got ${String(mode)})`);
  // FULL: fsync the WAL at every commit, so a commit survives power loss and
  // not only a process crash (NORMAL would only fsync at checkpoints).
  db.pragma('synchronous = FULL');
  // macOS fsync() does not flush the drive cache; F_FULLFSYNC does (no-op elsewhere).
  db.pragma('fullfsync = ON');
}

function migrate(db: Database.Database, migrations: readonly Migration[]): void {
  const version = (): number => Number(db.pragma('user_version', { simple: true }));
  const known = migrations.length;
  for (;;) {
    const done = db
      .transaction((): boolean => {
        // Re-read inside the write lock: another process may have migrated meanwhile.
        const current = version();
        if (current > known) {
          throw new StoreSchemaError(`database schema version ${current} is newer than this build supports (${known})`);
        }
        const step = migrations[current];
        if (step === undefined) return true;
        for (const sql of step.statements) db.exec(sql);
        db.pragma(`user_version = ${current + 1}`);
        return false;
      })
      .immediate();
    if (done) return;
  }
}

/** A view on the Buffer better-sqlite3 returns (it allocates one per value, unpooled). */
function bytes(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/**
 * The smallest string greater than every string starting with `prefix`, in
 * code-point order: bump the last code point that can be bumped (skipping
 * the surrogate range) and cut after it. Undefined when there is none.
 */
export function prefixUpperBound(prefix: string): string | undefined {
  const points = Array.from(prefix, (c) => c.codePointAt(0) ?? 0);
  while (points.length > 0) {
    const last = points.pop() ?? 0;
    if (last < 0x10ffff) {
      points.push(last === 0xd7ff ? 0xe000 : last + 1);
      return String.fromCodePoint(...points);
    }
  }
  return undefined;
}

function isPrimaryKeyClash(error: unknown): boolean {
  return error instanceof Database.SqliteError && error.code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

function rejectAll(batch: readonly Write[], error: unknown): void {
  const e = error instanceof Error ? error : new Error(String(error));
  for (const w of batch) w.done.reject(e);
}
