/**
 * Shared setup of the key-server benches (bench/keyserver.ts): sizes scaled
 * by KS_BENCH_SCALE, fixed secrets, GAEN uploads of 14 keys, a machine
 * configuration whose caps fit the run, and small helpers.
 */
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import type { KeyServerConfig } from '../actors/key-server/key-server-state.ts';
import { writeRecord, type GaenTekRecord } from '../protocol/keyserver/distribution-records.ts';
import type { AdmissionConfig } from '../services/keyserver/admission.ts';
import type { KeyServerSecrets } from '../services/keyserver/secrets.ts';
import { nodeSuite } from '../services/crypto/node.ts';

/** KS_BENCH_SCALE (default 1: the sizes issue 4 names), e.g. 0.05 for a quick check. */
export const SCALE = ((): number => {
  const raw = process.env['KS_BENCH_SCALE'];
  const value = raw === undefined || raw === '' ? 1 : Number(raw);
  if (!(value > 0 && value <= 10)) throw new Error(`KS_BENCH_SCALE must be a number in (0, 10], got ${String(raw)}`);
  return value;
})();

/** KS_BENCH_ONLY=ingest,export,rebuild,gcs runs only these parts (default all). */
export function partWanted(part: string): boolean {
  const raw = process.env['KS_BENCH_ONLY'];
  return raw === undefined || raw === '' || raw.split(',').map((s) => s.trim()).includes(part);
}

export const scaled = (n: number, min = 1): number => Math.max(min, Math.round(n * SCALE));

/** An env var as a positive integer, else `fallback`. */
export function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${raw}`);
  return value;
}

export const SERVER_ID = 'ksbench';
export const PROVIDER_ID = 'bench-provider';
export const KEYS_PER_UPLOAD = 14;
export const MINUTE_MS = 60_000;
export const DAY_MS = 24 * 60 * MINUTE_MS;
/** 2026-11-22T00:00Z: a day (and so a 15-min period) boundary. */
export const T0 = Date.UTC(2026, 10, 22);
const GAEN_RECORD_BYTES = 23;

/** Fixed secrets (deterministic signing key, so file names repeat run to run). */
export function benchSecrets(): KeyServerSecrets {
  const label = (s: string): Uint8Array => nodeSuite.sha256(new TextEncoder().encode(`tracecity bench keyserver ${s}`));
  return { pepper: label('pepper'), signingKey: label('signing key'), keyId: 'bench-ks' };
}

/** Machine config whose caps admit `records` records in distribution and in one full dump. */
export function configFor(records: number): Partial<KeyServerConfig> {
  const cap = Math.max(1_000_000, records + 1000);
  return { maxRecords: cap, limits: { maxFileBytes: 256 * 1024 * 1024, maxAdditions: cap, maxDeletions: cap } };
}

/** Admission that never throttles the bench (the front door's cost is still paid). */
export const OPEN_ADMISSION: AdmissionConfig = {
  perClient: { capacity: 1e12, refillPerSecond: 1e12 },
  aggregate: { capacity: 1e12, refillPerSecond: 1e12 },
  trackedKeys: 100_000,
};

/** The 14 keys of one upload at `at`: one per day, today and the 13 days before, random TEKs. */
export function uploadKeys(at: number, keys: Uint8Array): GaenTekRecord[] {
  const today = Math.floor(at / DAY_MS);
  return Array.from({ length: KEYS_PER_UPLOAD }, (_, k) => ({
    protocol: 'gaen-tek' as const,
    key: keys.subarray(16 * k, 16 * k + 16),
    rollingStartIntervalNumber: (today - k) * 144,
    rollingPeriod: 144,
    transmissionRisk: k % 8,
  }));
}

/** Random TEK bytes for `uploads` uploads, drawn in one call (many small randomBytes calls cost ~40 µs each under load). */
export class KeyBytes {
  private pool = new Uint8Array(0);
  private at = 0;

  /** 16 × 14 fresh random bytes. */
  next(): Uint8Array {
    const size = 16 * KEYS_PER_UPLOAD;
    if (this.at + size > this.pool.length) {
      this.pool = randomBytes(size * 4096);
      this.at = 0;
    }
    this.at += size;
    return this.pool.subarray(this.at - size, this.at);
  }
}

const sharedKeyBytes = new KeyBytes();

/** Canonical bytes of one upload's records (what KeyServerClient.upload sends). */
export function uploadRecordBytes(at: number): Uint8Array {
  const out = new Uint8Array(KEYS_PER_UPLOAD * GAEN_RECORD_BYTES);
  let offset = 0;
  for (const record of uploadKeys(at, sharedKeyBytes.next())) offset = writeRecord(record, out, offset);
  return out;
}

export const seconds = (startNs: bigint): number => Number(process.hrtime.bigint() - startNs) / 1e9;
/** CPU seconds (user + system, all threads) since `start` (process.cpuUsage()): less sensitive than wall time to other load. */
export function cpuSeconds(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1e6;
}
export const round = (x: number, digits = 3): number => Math.round(x * 10 ** digits) / 10 ** digits;
export const mb = (bytes: number): number => round(bytes / 1e6, 2);

/** Resident set size now (after a GC when node runs with --expose-gc), MB. */
export function rssMb(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return mb(process.memoryUsage().rss);
}

/** Bytes of a SQLite database with its WAL (and shm) files. */
export async function sqliteBytes(path: string): Promise<number> {
  let total = 0;
  for (const suffix of ['', '-wal', '-shm']) {
    try {
      total += (await stat(`${path}${suffix}`)).size;
    } catch {
      // absent: 0
    }
  }
  return total;
}

/** Progress on stderr (the table goes to stdout). */
export function note(msg: string): void {
  process.stderr.write(`  keyserver: ${msg}\n`);
}
