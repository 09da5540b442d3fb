/**
 * Durable ingest on SQLite (WAL, synchronous=FULL): group commit (appends of
 * one tick share a transaction and its fsync) vs one transaction per append
 * (sequential awaits, the rate a naive write-then-ack loop gets).
 *
 * The database goes to the OS temp dir (or TRACECITY_BENCH_DIR): the numbers
 * mean something only on a real disk, not on tmpfs where fsync is free.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../services/store/sqlite.ts';
import type { BenchModule, BenchRow } from './report.ts';

const RECORD_BYTES = 200;
const GROUP_TOTAL = 20_000;
const GROUP_BURST = 500;
/** Per-append runs until this many appends or this much time, whichever first (fsync-bound). */
const PER_APPEND_MAX = 5_000;
const PER_APPEND_BUDGET_MS = 3_000;

function record(i: number): Uint8Array {
  const r = new Uint8Array(RECORD_BYTES);
  new DataView(r.buffer).setUint32(0, i);
  return r;
}

async function groupCommitRate(path: string): Promise<{ rate: number; commits: number }> {
  const store = await openSqliteStore(path);
  const start = process.hrtime.bigint();
  for (let done = 0; done < GROUP_TOTAL; done += GROUP_BURST) {
    await Promise.all(Array.from({ length: GROUP_BURST }, (_, k) => store.append('bench', record(done + k))));
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const { commits } = store.stats();
  await store.close();
  return { rate: GROUP_TOTAL / seconds, commits };
}

async function perAppendRate(path: string): Promise<number> {
  const store = await openSqliteStore(path);
  const start = process.hrtime.bigint();
  const budget = BigInt(PER_APPEND_BUDGET_MS) * 1_000_000n;
  let n = 0;
  while (n < PER_APPEND_MAX && process.hrtime.bigint() - start < budget) {
    await store.append('bench', record(n));
    n++;
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await store.close();
  return n / seconds;
}

export const storeBench: BenchModule = async (): Promise<readonly BenchRow[]> => {
  const dir = await mkdtemp(join(process.env['TRACECITY_BENCH_DIR'] ?? tmpdir(), 'tracecity-bench-store-'));
  try {
    const group = await groupCommitRate(join(dir, 'group.db'));
    const perAppend = await perAppendRate(join(dir, 'single.db'));
    return [
      {
        group: 'store/sqlite',
        name: `durable append ${RECORD_BYTES}B (${GROUP_BURST}/burst, ${group.commits} commits)`,
        values: { groupCommit: Math.round(group.rate), perAppend: Math.round(perAppend) },
        unit: 'appends/s',
        ratio: { label: 'groupCommit / perAppend', value: group.rate / perAppend, target: '≥ 10' },
      },
    ];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};
