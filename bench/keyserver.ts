/**
 * Key-server bench (issue 4; docs/decisions/0005, 0006), `npm run bench -- keyserver`:
 *
 * 1. durable ingest through the real service (keyserver-ingest.ts): uploads/s
 *    of 14 keys over the in-memory bus, then over an embedded aedes broker
 *    (real MQTT); target ≥ 5,000 uploads/s;
 * 2. export (keyserver-export.ts): sign and encode 96 deltas + one full dump
 *    of 1,000,000 GAEN keys; target ≤ 30 s;
 * 3. rebuild (keyserver-rebuild.ts): fold a log of 71,429 uploads × 14 keys
 *    (with a day's publication ticks) through rebuildFromJournal; target ≤ 60 s;
 * 4. GCS (keyserver-gcs.ts): filter size, bits per item and false-positive
 *    rate against 1/M, build and match throughput.
 *
 * Environment:
 *   KS_BENCH_SCALE=0.05          scale every size (default 1: the sizes)
 *   KS_BENCH_ONLY=ingest,gcs     run only these parts (ingest = ingest-memory + ingest-aedes,
 *                                export, rebuild, gcs)
 *   KS_BENCH_WINDOW=2000         requests in flight of the server-side ingest row (ingest-server)
 *   KS_BENCH_CLIENTS=500         concurrent clients over the memory bus (aedes: KS_BENCH_MQTT_CLIENTS=100)
 *   KS_BENCH_MQTT_UPLOADS=…      uploads of the aedes row (default: as the memory row)
 *   TRACECITY_BENCH_DIR=/path    where the SQLite logs go (default the OS temp dir:
 *                                fsync numbers mean something only on a real disk)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportBench } from './keyserver-export.ts';
import { envInt, note, partWanted, SCALE, scaled } from './keyserver-fixtures.ts';
import { gcsBench } from './keyserver-gcs.ts';
import { ingestBench } from './keyserver-ingest.ts';
import { serverIngestBench } from './keyserver-ingest-server.ts';
import { rebuildBench } from './keyserver-rebuild.ts';
import type { BenchModule, BenchRow } from './report.ts';

/** Issue 4's sizes at scale 1. */
const INGEST_UPLOADS = 20_000;
const EXPORT_KEYS = 1_000_000;
const EXPORT_DELTAS = 96;
const REBUILD_UPLOADS = 71_429;

export const keyserverBench: BenchModule = async () => {
  const dir = await mkdtemp(join(process.env['TRACECITY_BENCH_DIR'] ?? tmpdir(), 'tracecity-bench-keyserver-'));
  note(`scale ${SCALE}, logs in ${dir}`);
  const rows: BenchRow[] = [];
  try {
    const uploads = scaled(INGEST_UPLOADS, 100);
    if (partWanted('ingest') || partWanted('ingest-memory')) {
      rows.push(...(await ingestBench({ transport: 'memory', uploads, clients: envInt('KS_BENCH_CLIENTS', 500), dir, checkRebuild: true })));
    }
    if (partWanted('ingest') || partWanted('ingest-server')) {
      rows.push(...(await serverIngestBench(uploads, envInt('KS_BENCH_WINDOW', 2000), dir)));
    }
    if (partWanted('ingest') || partWanted('ingest-aedes')) {
      const mqttUploads = envInt('KS_BENCH_MQTT_UPLOADS', uploads);
      rows.push(...(await ingestBench({ transport: 'aedes', uploads: mqttUploads, clients: envInt('KS_BENCH_MQTT_CLIENTS', 100), dir, checkRebuild: false })));
    }
    if (partWanted('export')) rows.push(...exportBench({ keys: scaled(EXPORT_KEYS, 1000), deltas: EXPORT_DELTAS }));
    if (partWanted('rebuild')) rows.push(...(await rebuildBench({ uploads: scaled(REBUILD_UPLOADS, 100), dir })));
    if (partWanted('gcs')) rows.push(...gcsBench());
    return rows;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};
