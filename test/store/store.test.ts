import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../actors/ports.ts';
import { MisuseError } from '../../protocol/errors.ts';
import { MemoryStore, StoreClosedError, openStore } from '../../services/store/index.ts';
import { MIGRATIONS, SqliteStore, StoreSchemaError, openSqliteStore, prefixUpperBound } from '../../services/store/sqlite.ts';
import { storeContract } from '../contract/store.contract.ts';
import { recordFor } from './fixtures/records.ts';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tracecity-store-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

let dbCounter = 0;
const freshPath = (): string => join(root, `db-${process.pid}-${dbCounter++}`, 'store.db');

storeContract('MemoryStore', () => {
  const store = new MemoryStore();
  return Promise.resolve({ store, teardown: () => store.close() });
}, { durable: false });

storeContract('SqliteStore (file, WAL)', async () => {
  const path = freshPath();
  const opened: Store[] = [await openSqliteStore(path)];
  return {
    store: opened[0]!,
    reopen: async () => {
      const s = await openSqliteStore(path);
      opened.push(s);
      return s;
    },
    teardown: async () => {
      for (const s of opened) await s.close();
    },
  };
}, { durable: true });

storeContract('SqliteStore (:memory:)', async () => {
  const store = await openSqliteStore(':memory:');
  return { store, teardown: () => store.close() };
}, { durable: false });

describe('SqliteStore specifics', () => {
  it('sets WAL, synchronous=FULL, busy_timeout and the schema version', async () => {
    const store = await openSqliteStore(freshPath(), { busyTimeoutMs: 1234 });
    expect(store.pragma('journal_mode')).toBe('wal');
    expect(store.pragma('synchronous')).toBe(2); // 2 = FULL
    expect(store.pragma('busy_timeout')).toBe(1234);
    expect(store.pragma('user_version')).toBe(MIGRATIONS.length);
    await store.close();
    expect(() => store.pragma('journal_mode')).toThrow(StoreClosedError);
  });

  it('puts concurrent writes of one tick in one transaction (group commit)', async () => {
    const store = await openSqliteStore(freshPath());
    const before = store.stats();
    const seqs = await Promise.all([
      ...Array.from({ length: 1000 }, (_, i) => store.append('g', new Uint8Array([i & 0xff]))),
      store.put('snapshot', new Uint8Array([1])),
    ]);
    expect(seqs.slice(0, 1000)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    expect(store.stats().commits - before.commits).toBe(1);
    expect(store.stats().writes - before.writes).toBe(1001);

    // Sequential awaits cannot share a commit: one transaction each.
    for (let i = 0; i < 5; i++) await store.append('g', new Uint8Array([i]));
    expect(store.stats().commits - before.commits).toBe(6);
    await store.close();
  });

  it('continues numbering when another connection appended (stale seq cache)', async () => {
    const path = freshPath();
    const a = await openSqliteStore(path);
    const b = await openSqliteStore(path);
    expect(await a.append('shared', new Uint8Array([1]))).toBe(1);
    expect(await b.append('shared', new Uint8Array([2]))).toBe(2);
    expect(await a.append('shared', new Uint8Array([3]))).toBe(3); // a's cache said 1: retried
    expect((await b.read('shared')).map((r) => r.record[0])).toEqual([1, 2, 3]);
    await a.close();
    await b.close();
  });

  it('rejects a whole failed batch and keeps numbering gap-free', async () => {
    const path = freshPath();
    const store = await openSqliteStore(path);
    expect(await store.append('ok', new Uint8Array([1]))).toBe(1);
    const raw = new Database(path);
    raw.exec("CREATE TRIGGER fail BEFORE INSERT ON events WHEN NEW.stream = 'bad' BEGIN SELECT RAISE(ABORT, 'injected'); END");
    const batch = [store.append('ok', new Uint8Array([2])), store.put('k', new Uint8Array([2])), store.append('bad', new Uint8Array([3]))];
    const results = await Promise.allSettled(batch);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(await store.get('k')).toBeUndefined(); // rolled back with the rest
    raw.exec('DROP TRIGGER fail');
    raw.close();
    expect(await store.append('ok', new Uint8Array([4]))).toBe(2);
    expect((await store.read('ok')).map((r) => r.record[0])).toEqual([1, 4]);
    await store.close();
  });

  it('migrates an existing database forward and refuses a newer one', async () => {
    const path = freshPath();
    const v1 = await openSqliteStore(path);
    await v1.append('s', new Uint8Array([7]));
    await v1.close();

    const extra = { description: 'test table', statements: ['CREATE TABLE extra (id BIGINT PRIMARY KEY)'] };
    const v2 = await openSqliteStore(path, { migrations: [...MIGRATIONS, extra] });
    expect(v2.pragma('user_version')).toBe(MIGRATIONS.length + 1);
    expect((await v2.read('s'))[0]?.record).toEqual(new Uint8Array([7]));
    await v2.close();

    const raw = new Database(path);
    expect(raw.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'extra'").get()).toBeDefined();
    raw.close();
    await expect(openSqliteStore(path)).rejects.toBeInstanceOf(StoreSchemaError);
  });

  it('opens a database created with only the first schema step, adds the high-water step, and numbering survives truncation', async () => {
    // What the previous build left: schema step 1 only, with data in it.
    const path = freshPath();
    mkdirSync(dirname(path), { recursive: true });
    const v1 = new Database(path);
    v1.pragma('journal_mode = WAL');
    for (const sql of MIGRATIONS[0]!.statements) v1.exec(sql);
    v1.pragma('user_version = 1');
    const insert = v1.prepare('INSERT INTO events (stream, seq, record) VALUES (?, ?, ?)');
    for (let i = 1; i <= 5; i++) insert.run('old', i, Buffer.from([i]));
    v1.close();

    const v2 = await openSqliteStore(path);
    expect(v2.pragma('user_version')).toBe(MIGRATIONS.length);
    expect((await v2.read('old')).map((r) => r.record[0])).toEqual([1, 2, 3, 4, 5]);
    await v2.truncate('old', 5);
    await v2.close();

    const v3 = await openSqliteStore(path);
    expect(await v3.read('old')).toEqual([]);
    expect(await v3.append('old', new Uint8Array([6]))).toBe(6);
    expect((await v3.read('old')).map((r) => r.record[0])).toEqual([6]);
    await v3.close();
    const raw = new Database(path, { readonly: true });
    expect(raw.prepare('SELECT stream, seq FROM stream_high_water').all()).toEqual([{ stream: 'old', seq: 5 }]);
    raw.close();
  });

  it('deletes truncated rows from the events table (the file stops growing)', async () => {
    const path = freshPath();
    const store = await openSqliteStore(path);
    await Promise.all(Array.from({ length: 100 }, (_, i) => store.append('j', new Uint8Array(100).fill(i))));
    await store.append('other', new Uint8Array([1]));
    await store.truncate('j', 90);
    const raw = new Database(path, { readonly: true });
    const count = (stream: string): unknown => raw.prepare('SELECT COUNT(*) AS n FROM events WHERE stream = ?').get(stream);
    expect(count('j')).toEqual({ n: 10 });
    expect(count('other')).toEqual({ n: 1 });
    // A partial truncate leaves the last record in place: no high-water row needed yet.
    expect(raw.prepare('SELECT COUNT(*) AS n FROM stream_high_water').get()).toEqual({ n: 0 });
    raw.close();
    await store.close();
  });

  it('puts a truncate in the same group commit as the appends and put around it', async () => {
    const store = await openSqliteStore(freshPath());
    await store.append('g', new Uint8Array([0]));
    const before = store.stats();
    const writes = [
      ...Array.from({ length: 10 }, (_, i) => store.append('g', new Uint8Array([i]))),
      store.put('snapshot', new Uint8Array([1])),
      store.truncate('g', 11),
      store.append('g', new Uint8Array([99])),
    ];
    const results = await Promise.all(writes);
    expect(results.at(-1)).toBe(12);
    expect(store.stats().commits - before.commits).toBe(1);
    expect(store.stats().writes - before.writes).toBe(13);
    expect((await store.read('g')).map((r) => r.seq)).toEqual([12]);
    await store.close();
  });

  it('continues numbering when another connection appended and truncated everything (stale seq cache)', async () => {
    const path = freshPath();
    const a = await openSqliteStore(path);
    const b = await openSqliteStore(path);
    expect(await a.append('shared', new Uint8Array([1]))).toBe(1);
    expect(await b.append('shared', new Uint8Array([2]))).toBe(2);
    await b.truncate('shared', 2);
    // a's cache says 1, and seq 2 no longer exists to clash with: a must not reuse it.
    expect(await a.append('shared', new Uint8Array([3]))).toBe(3);
    expect(await b.append('shared', new Uint8Array([4]))).toBe(4);
    await a.truncate('shared', 3);
    expect((await b.read('shared')).map((r) => [r.seq, r.record[0]])).toEqual([[4, 4]]);
    await a.close();
    await b.close();
  });

  it('computes exact upper bounds for prefix scans', () => {
    expect(prefixUpperBound('ab')).toBe('ac');
    expect(prefixUpperBound('a\uD7FF')).toBe('a\uE000');
    expect(prefixUpperBound('a\u{10FFFF}')).toBe('b');
    expect(prefixUpperBound('\u{10FFFF}\u{10FFFF}')).toBeUndefined();
  });

  it('rejects misuse at open', async () => {
    await expect(openSqliteStore('')).rejects.toBeInstanceOf(MisuseError);
    await expect(openSqliteStore(':memory:', { busyTimeoutMs: -1 })).rejects.toMatchObject({ field: 'options.busyTimeoutMs' });
  });
});

describe('MemoryStore specifics', () => {
  it('releases the bytes of truncated records', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const collect = async (): Promise<number> => {
      for (let i = 0; i < 3; i++) {
        gc();
        await new Promise((resolve) => setImmediate(resolve));
      }
      return process.memoryUsage().arrayBuffers;
    };
    const MiB = 1 << 20;
    const store = new MemoryStore();
    const record = new Uint8Array(MiB);
    const base = await collect();
    for (let i = 0; i < 64; i++) await store.append('big', record);
    expect(await collect()).toBeGreaterThan(base + 60 * MiB);
    await store.truncate('big', 60); // 4 MiB left
    expect(await collect()).toBeLessThan(base + 16 * MiB);
    expect((await store.read('big')).map((r) => r.seq)).toEqual([61, 62, 63, 64]);
    expect(await store.append('big', new Uint8Array(1))).toBe(65);
    await store.close();
  });

  it('keeps numbering and reads right across many small truncations (journal-like use)', async () => {
    const store = new MemoryStore();
    for (let seq = 1; seq <= 10_000; seq++) {
      expect(await store.append('j', new Uint8Array([seq & 0xff]))).toBe(seq);
      if (seq % 7 === 0) await store.truncate('j', seq - 3);
    }
    // The last truncate was at seq 9996, through 9993.
    const expected = Array.from({ length: 7 }, (_, i) => 9994 + i);
    const left = await store.read('j');
    expect(left.map((r) => r.seq)).toEqual(expected);
    expect(left.map((r) => r.record[0])).toEqual(expected.map((s) => s & 0xff));
    expect((await store.read('j', 9997, 2)).map((r) => r.seq)).toEqual([9998, 9999]);
    expect((await store.read('j', 100, 2)).map((r) => r.seq)).toEqual([9994, 9995]);
    await store.close();
  });
});

describe('openStore', () => {
  it('opens memory and SQLite stores from URLs', async () => {
    const mem = await openStore('memory:');
    expect(mem).toBeInstanceOf(MemoryStore);
    const viaScheme = await openStore(`sqlite:${freshPath()}`);
    expect(viaScheme).toBeInstanceOf(SqliteStore);
    const viaExt = await openStore(join(root, 'plain.sqlite'));
    expect(viaExt).toBeInstanceOf(SqliteStore);
    const inMemory = await openStore('sqlite::memory:');
    expect(await inMemory.append('s', new Uint8Array(1))).toBe(1);
    for (const s of [mem, viaScheme, viaExt, inMemory]) await s.close();
  });

  it('lists the accepted forms for anything else', async () => {
    await expect(openStore('postgres://x')).rejects.toThrow(/memory:.*sqlite:<path>.*\.db or \.sqlite/);
    await expect(openStore('sqlite:')).rejects.toBeInstanceOf(MisuseError);
  });
});

// ---------------------------------------------------------------- crash test

const FIXTURE = fileURLToPath(new URL('./fixtures/append-loop.ts', import.meta.url));

interface ChildRun {
  readonly acked: Map<number, number>; // seq → append index i
  readonly progress: number; // last acknowledged put('progress') value
}

/** Run the appender, SIGKILL it `delayMs` after its first acknowledged write. */
function runAndKill(path: string, run: string, delayMs: number): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, path, run], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let armed = false;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      if (!armed && /^[AP] /m.test(out)) {
        armed = true;
        setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    child.on('error', reject);
    child.on('close', (_code, signal) => {
      if (signal !== 'SIGKILL') return reject(new Error(`child exited without being killed (${String(signal)}): ${err}`));
      const acked = new Map<number, number>();
      let progress = 0;
      // Only complete lines: a line cut by the kill was never fully reported.
      for (const line of out.split('\n').slice(0, -1)) {
        const [kind, a, b] = line.split(' ');
        if (kind === 'A') acked.set(Number(a), Number(b));
        else if (kind === 'P') progress = Math.max(progress, Number(a));
      }
      resolve({ acked, progress });
    });
  });
}

describe('SqliteStore crash safety', () => {
  it('keeps every acknowledged append after SIGKILL at random moments', async () => {
    const path = freshPath();
    const delays = [0, 5, 15, 30, 50, 80, 120, 170, 230, 300].map((d) => d + Math.floor(Math.random() * 20));
    let total = 0;
    for (const [k, delay] of delays.entries()) {
      const run = `run${k}`;
      const { acked, progress } = await runAndKill(path, run, delay);
      const store = await openSqliteStore(path);
      const all = await store.read('crash');
      // No holes, whatever the kill interrupted.
      expect(all.map((r) => r.seq), `run ${k} (delay ${delay} ms)`).toEqual(all.map((_, i) => i + 1));
      for (const [seq, i] of acked) {
        const got = all[seq - 1];
        expect(got, `run ${k} (delay ${delay} ms): acknowledged seq ${seq} missing`).toBeDefined();
        expect(Buffer.from(got!.record).equals(recordFor(run, i)), `run ${k}: seq ${seq} bytes`).toBe(true);
      }
      const stored = Number(new TextDecoder().decode((await store.get('progress')) ?? new Uint8Array()));
      expect(stored).toBeGreaterThanOrEqual(progress);
      total += acked.size;
      await store.close();
    }
    expect(total).toBeGreaterThan(0);
  }, 60_000);
});
