/**
 * SqliteStore's schema and connection setup (services/store/sqlite.ts):
 * versioned migrations (user_version = steps applied) and the durability
 * pragmas every connection needs.
 */
import type Database from 'better-sqlite3';

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
  {
    description: 'high-water seq per truncated stream, so numbering survives truncation and reopen',
    statements: [
      // A row only for streams that were truncated; its seq is the stream's last
      // seq at the time, which the events table may no longer hold.
      `CREATE TABLE stream_high_water (
         stream TEXT NOT NULL PRIMARY KEY,
         seq BIGINT NOT NULL
       )`,
    ],
  },
];

/** The database file was written by a newer build (more schema steps than we know). */
export class StoreSchemaError extends Error {
  override readonly name = 'StoreSchemaError';
}

export function configure(db: Database.Database, path: string, busyTimeoutMs: number): void {
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

export function migrate(db: Database.Database, migrations: readonly Migration[]): void {
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
