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
 * A `truncate` is a write like the others: queued, in the same transaction.
 *
 * Numbering: the next seq of a stream is 1 + the larger of MAX(seq) in
 * `events` and its row in `stream_high_water`. A truncate records the
 * stream's last seq there before deleting, so numbering continues after the
 * records are gone, across reopens too; appends pay nothing for it.
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
import { StoreClosedError, checkBytes, checkName, checkReadRange, checkSeq, settle } from './common.ts';
import { MIGRATIONS, configure, migrate, type Migration } from './sqlite-schema.ts';

export { MIGRATIONS, StoreSchemaError, type Migration } from './sqlite-schema.ts';

export interface SqliteStoreOptions {
  /** How long a write waits for another connection's lock (ms). Default 5000. */
  readonly busyTimeoutMs?: number;
  /** Schema steps; defaults to MIGRATIONS (tests pass longer lists). */
  readonly migrations?: readonly Migration[];
}


/** Counters for tests and benches. */
export interface SqliteStoreStats {
  /** Write transactions committed (one per group-commit batch). */
  readonly commits: number;
  /** Writes (append/truncate/put/delete) acknowledged. */
  readonly writes: number;
}

type Write =
  | { readonly kind: 'append'; readonly stream: string; readonly record: Uint8Array; readonly done: Settle<number> }
  | { readonly kind: 'truncate'; readonly stream: string; readonly throughSeq: number; readonly done: Settle<void> }
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
  /**
   * Last committed seq per stream.
   * Valid while no other connection commits: every write transaction checks
   * `PRAGMA data_version` under the write lock and clears it when another
   * connection wrote in between (checkDataVersion).
   */
  private readonly lastSeq = new Map<string, number>();
  /** `PRAGMA data_version` seen by our last write transaction; undefined before the first. */
  private dataVersion: number | undefined;
  private closed = false;
  private commits = 0;
  private writes = 0;

  private readonly stmt: {
    dataVersion: Database.Statement<[], unknown>;
    maxSeq: Database.Statement<[string], { seq: number | null }>;
    highWater: Database.Statement<[string], { seq: number }>;
    setHighWater: Database.Statement<[string, number]>;
    insertEvent: Database.Statement<[string, number, Uint8Array]>;
    deleteEvents: Database.Statement<[string, number]>;
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
      dataVersion: db.prepare<[], unknown>('PRAGMA data_version').pluck(),
      maxSeq: db.prepare('SELECT MAX(seq) AS seq FROM events WHERE stream = ?'),
      highWater: db.prepare('SELECT seq FROM stream_high_water WHERE stream = ?'),
      setHighWater: db.prepare(
        'INSERT INTO stream_high_water (stream, seq) VALUES (?, ?) ON CONFLICT (stream) DO UPDATE SET seq = excluded.seq',
      ),
      insertEvent: db.prepare('INSERT INTO events (stream, seq, record) VALUES (?, ?, ?)'),
      deleteEvents: db.prepare('DELETE FROM events WHERE stream = ? AND seq <= ?'),
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
      this.checkDataVersion();
      const seqs: number[] = [];
      const last = (stream: string): number => assigned.get(stream) ?? this.lastSeq.get(stream) ?? this.storedLastSeq(stream);
      for (const w of batch) {
        if (w.kind === 'append') {
          const seq = last(w.stream) + 1;
          this.stmt.insertEvent.run(w.stream, seq, w.record);
          assigned.set(w.stream, seq);
          seqs.push(seq);
        } else if (w.kind === 'truncate') {
          const top = last(w.stream);
          if (top === 0) continue; // never written: nothing to forget, nothing to remember
          // Remember the last seq first: the delete may remove the record holding it.
          if (w.throughSeq >= top) this.stmt.setHighWater.run(w.stream, top);
          this.stmt.deleteEvents.run(w.stream, w.throughSeq);
          assigned.set(w.stream, top);
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

  truncate(stream: string, throughSeq: number): Promise<void> {
    return this.enqueue<void>('truncate', (done) => {
      checkName(stream, 'stream');
      checkSeq(throughSeq, 'throughSeq');
      return { kind: 'truncate', stream, throughSeq, done };
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
    // IMMEDIATE takes the write lock before reading the last seqs, so no other
    // connection can append or truncate between our read and our write.
    const seqs = this.writeBatch.immediate(batch, assigned);
    for (const [stream, seq] of assigned) this.lastSeq.set(stream, seq);
    this.commits++;
    this.writes += batch.length;
    return seqs;
  }

  /**
   * Called first inside every write transaction (under the write lock): if
   * another connection committed since our previous write transaction, our
   * cached seqs may be stale. A stale append would clash on the primary key
   * (flush retries), but after the other connection's truncate the stale seq
   * would be silently reused; so forget the cache. data_version does not
   * change for this connection's own commits. SQLite-only.
   */
  private checkDataVersion(): void {
    const version = Number(this.stmt.dataVersion.get());
    if (version !== this.dataVersion) this.lastSeq.clear();
    this.dataVersion = version;
  }

  /** Last seq ever assigned in `stream` according to the database (0 for none). */
  private storedLastSeq(stream: string): number {
    return Math.max(this.stmt.maxSeq.get(stream)?.seq ?? 0, this.stmt.highWater.get(stream)?.seq ?? 0);
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
