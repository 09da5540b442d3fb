/**
 * GAEN matching (protocol/gaen/matching.ts) at issue 5's sizes: 100k and 1M diagnosis keys against
 * a phone's 14-day store of sightings, keys/s on one core (target ≥ 100,000 keys/s).
 *
 * Store ("typical"): 14 days × 400 distinct RPIs heard a day (≈ 17 phones in range around the
 * clock, or a few hundred passers-by), each RPI heard 4 times (a scan a minute while it lasts) →
 * 5,600 distinct RPIs, 22,400 sightings. Store ("busy"): 10× that, 56,000 RPIs / 224,000 sightings.
 * Keys: full-day keys of random TEKs (seeded DRBG) whose days are spread over the same 14 days, so
 * every key overlaps the store and costs its full crypto (no key is skipped: the worst case). 50
 * planted positives are keys whose RPIs the phone did hear; every run must find exactly them.
 * 1M keys are matched in batches of 100k (one export file each); key generation is not timed.
 *
 * Each row reports keys/s by wall time and by CPU time of this process (user + system, all threads:
 * GC helpers included), the latter less sensitive to other load on a shared machine; the ratio to
 * the target uses CPU time. The "crypto floor" row runs only what the suite costs per key in the
 * batched calls the matcher makes (hkdfSha256Batch for the RPIKs, aesEcbEncryptBatch over 144
 * blocks a key, 32 keys a call) to separate the matcher's own overhead from it; the "single calls"
 * row is the same work through rpik() and aesEcbEncrypt one key at a time, as the matcher did
 * before the batched calls (a general HKDF and a cached cipher a key).
 *
 * Every timed section starts on a settled heap (a full GC just before it, untimed): otherwise it
 * pays for collecting what the untimed setup and the previous rows left behind (the stores'
 * construction, 100k key objects a batch, the single-calls row's cached ciphers), which measured
 * as up to half of a 100k-key row. The garbage the matcher itself makes (a cipher and its output
 * per key) is still collected, and timed, inside the section.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { SeededRng } from '../protocol/crypto/drbg.ts';
import { nobleSuite } from '../protocol/crypto/noble.ts';
import type { CryptoSuite } from '../protocol/crypto/suite.ts';
import { TEK_ROLLING_PERIOD } from '../protocol/gaen/interval.ts';
import { aemk, RPIK_HKDF_INFO, rpik, rpisForTek } from '../protocol/gaen/keys.ts';
import { buildSightingIndex, EN_INTERVAL_MS, matchDiagnosisKeys, type DiagnosisKey, type SightingIndex, type Sighting } from '../protocol/gaen/matching.ts';
import { encodeEnMetadata, encryptAem } from '../protocol/gaen/metadata.ts';
import { nodeSuite } from '../services/crypto/node.ts';
import type { BenchModule, BenchRow } from './report.ts';

const GROUP = 'gaen/matching';
const TARGET_KEYS_PER_S = 100_000;
const DAYS = 14;
const RPIS_PER_DAY = 400;
const BUSY_FACTOR = 10;
const SIGHTINGS_PER_RPI = 4;
const PLANTED = 50;
const BATCH = 100_000;
const NOBLE_KEYS = 1_000;
/** Keys per batched suite call in the floor row, as protocol/gaen/matching.ts's KEYS_PER_BATCH. */
const FLOOR_KEYS_PER_CALL = 32;
/** First day of the store: 2020-04-02 (the official vector's key day), as an ENIN. */
const DAY0_ENIN = 2_642_976;

const round = (x: number, digits = 0): number => Math.round(x * 10 ** digits) / 10 ** digits;

function note(msg: string): void {
  process.stderr.write(`  gaen: ${msg}\n`);
}

interface Store {
  readonly label: string;
  readonly sightings: Sighting[];
  readonly index: SightingIndex;
  readonly indexMs: number;
  /** TEKs of the planted positives (each heard for 4 minutes on its day). */
  readonly planted: DiagnosisKey[];
}

function buildStore(rng: SeededRng, rpisPerDay: number, label: string): Store {
  const sightings: Sighting[] = [];
  const metadata = encodeEnMetadata({ versionMajor: 1, versionMinor: 0, txPowerConfidence: 0, txPowerDbm: -19 });
  for (let day = 0; day < DAYS; day++) {
    for (let r = 0; r < rpisPerDay; r++) {
      const rpi = rng.bytes(16);
      const aem = rng.bytes(4);
      const at = (DAY0_ENIN + day * TEK_ROLLING_PERIOD) * EN_INTERVAL_MS + rng.int(86_400_000 - SIGHTINGS_PER_RPI * 60_000);
      for (let k = 0; k < SIGHTINGS_PER_RPI; k++) sightings.push({ rpi, aem, receivedAtMs: at + k * 60_000, rssiDbm: -60 - rng.int(40) });
    }
  }
  const planted: DiagnosisKey[] = [];
  for (let p = 0; p < PLANTED; p++) {
    const day = p % DAYS;
    const key: DiagnosisKey = { keyData: rng.bytes(16), rollingStartIntervalNumber: DAY0_ENIN + day * TEK_ROLLING_PERIOD, rollingPeriod: TEK_ROLLING_PERIOD, transmissionRiskLevel: 0 };
    const rpis = rpisForTek(nodeSuite, key.keyData, key.rollingStartIntervalNumber, key.rollingPeriod);
    const aemkBytes = aemk(nodeSuite, key.keyData);
    const k = rng.int(TEK_ROLLING_PERIOD);
    const rpi = rpis[k] as Uint8Array;
    const at = (key.rollingStartIntervalNumber + k) * EN_INTERVAL_MS;
    for (let s = 0; s < SIGHTINGS_PER_RPI; s++) sightings.push({ rpi, aem: encryptAem(nodeSuite, aemkBytes, rpi, metadata), receivedAtMs: at + s * 60_000, rssiDbm: -65 });
    planted.push(key);
  }
  const start = process.hrtime.bigint();
  const index = buildSightingIndex(sightings, { hashSeed: rng.int(0x1_0000_0000) });
  const indexMs = Number(process.hrtime.bigint() - start) / 1e6;
  return { label, sightings, index, indexMs, planted };
}

/** `count` random full-day keys spread over the store's days, with the planted ones at fixed places. */
function keyBatch(rng: SeededRng, count: number, planted: readonly DiagnosisKey[]): DiagnosisKey[] {
  const teks = rng.bytes(16 * count);
  const keys: DiagnosisKey[] = [];
  for (let i = 0; i < count; i++) {
    keys.push({
      keyData: teks.subarray(16 * i, 16 * (i + 1)),
      rollingStartIntervalNumber: DAY0_ENIN + (i % DAYS) * TEK_ROLLING_PERIOD,
      rollingPeriod: TEK_ROLLING_PERIOD,
      transmissionRiskLevel: i % 9,
    });
  }
  planted.forEach((key, p) => {
    keys[Math.floor(((p + 0.5) * count) / planted.length)] = key;
  });
  return keys;
}

interface Timing {
  readonly wallS: number;
  readonly cpuS: number;
}

/** V8's full GC without --expose-gc (the flag set at run time; the function comes from a new context). */
function settleHeap(): void {
  setFlagsFromString('--expose-gc');
  const gc: unknown = runInNewContext('gc');
  if (typeof gc === 'function') (gc as () => unknown)();
}

function timed(fn: () => void): Timing {
  settleHeap();
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  fn();
  const wallS = Number(process.hrtime.bigint() - start) / 1e9;
  const used = process.cpuUsage(cpu);
  return { wallS, cpuS: (used.user + used.system) / 1e6 };
}

function row(name: string, keys: number, t: Timing, extra: Record<string, number> = {}): BenchRow {
  const cpuRate = keys / t.cpuS;
  return {
    group: GROUP,
    name,
    values: { wall: round(keys / t.wallS), cpu: round(cpuRate), ...extra },
    unit: 'keys/s',
    ratio: { label: `cpu keys/s ÷ ${TARGET_KEYS_PER_S.toLocaleString('en-US')}`, value: round(cpuRate / TARGET_KEYS_PER_S, 2), target: '≥ 1.00' },
  };
}

/** Match `total` keys in batches against `store`, checking the planted positives are found (and only they). */
function runMatching(crypto: CryptoSuite, store: Store, total: number, seed: string): Timing {
  const rng = new SeededRng(new TextEncoder().encode(`tracecity bench gaen keys ${seed}`));
  let wallS = 0;
  let cpuS = 0;
  let found = 0;
  for (let done = 0; done < total; done += BATCH) {
    const count = Math.min(BATCH, total - done);
    const planted = done === 0 ? store.planted : [];
    const keys = keyBatch(rng, count, planted);
    let matched = 0;
    const t = timed(() => {
      matched = matchDiagnosisKeys(crypto, keys, store.index).stats.matchedKeys;
    });
    wallS += t.wallS;
    cpuS += t.cpuS;
    found += matched;
    if (total > BATCH) note(`${store.label}: ${done + count} keys, ${round(t.wallS, 2)} s this batch`);
  }
  if (found !== store.planted.length) throw new Error(`bench/gaen-matching: found ${found} matching keys, planted ${store.planted.length}`);
  return { wallS, cpuS };
}

export const gaenBench: BenchModule = () => {
  const rng = new SeededRng(new TextEncoder().encode('tracecity bench gaen store v1'));
  const rows: BenchRow[] = [];
  note('building stores');
  const typical = buildStore(rng, RPIS_PER_DAY, 'typical');
  const busy = buildStore(rng, RPIS_PER_DAY * BUSY_FACTOR, 'busy');
  for (const s of [typical, busy]) {
    rows.push({
      group: GROUP,
      name: `index ${s.label}: ${s.index.distinctRpis.toLocaleString('en-US')} RPIs`,
      values: { sightings: s.sightings.length, ms: round(s.indexMs, 1) },
      unit: '',
    });
  }

  const describe = (s: Store): string => `${(s.sightings.length / 1000).toFixed(1)}k sightings`;
  note('crypto floor, 100k keys');
  const floorTeks = new SeededRng(new TextEncoder().encode('tracecity bench gaen floor')).bytes(16 * BATCH);
  const blocks = new Uint8Array(TEK_ROLLING_PERIOD * 16);
  const batchBlocks = new Uint8Array(FLOOR_KEYS_PER_CALL * TEK_ROLLING_PERIOD * 16);
  const counts = new Int32Array(FLOOR_KEYS_PER_CALL).fill(TEK_ROLLING_PERIOD);
  const rpiks = new Uint8Array(FLOOR_KEYS_PER_CALL * 16);
  const rpis = new Uint8Array(batchBlocks.length);
  const floor = timed(() => {
    for (let k = 0; k < BATCH; k += FLOOR_KEYS_PER_CALL) {
      nodeSuite.hkdfSha256Batch(floorTeks.subarray(16 * k, 16 * (k + FLOOR_KEYS_PER_CALL)), 16, new Uint8Array(0), RPIK_HKDF_INFO, 16, rpiks);
      nodeSuite.aesEcbEncryptBatch(rpiks, 16, batchBlocks, counts, rpis);
    }
  });
  rows.push(row('crypto floor: batched HKDF + ECB×144, node', BATCH, floor));
  const single = timed(() => {
    for (let k = 0; k < BATCH; k++) nodeSuite.aesEcbEncrypt(rpik(nodeSuite, floorTeks.subarray(16 * k, 16 * (k + 1))), blocks);
  });
  rows.push(row('single calls: rpik + aesEcbEncrypt, node', BATCH, single));

  note('100k keys, typical store');
  const t100k = runMatching(nodeSuite, typical, BATCH, '100k');
  const r100k = row(`100k keys × ${describe(typical)}, node`, BATCH, t100k);
  // floorShare: the part of the matching CPU time that the suite's HKDF + ECB alone take.
  rows.push({ ...r100k, values: { ...r100k.values, floorShare: round(floor.cpuS / t100k.cpuS, 2) } });
  note('100k keys, busy store');
  rows.push(row(`100k keys × ${describe(busy)}, node`, BATCH, runMatching(nodeSuite, busy, BATCH, '100k-busy')));
  note('1M keys, typical store');
  rows.push(row(`1M keys × ${describe(typical)}, node`, 10 * BATCH, runMatching(nodeSuite, typical, 10 * BATCH, '1m')));

  note(`noble, ${NOBLE_KEYS} keys`);
  const nobleKeys = keyBatch(new SeededRng(new TextEncoder().encode('tracecity bench gaen noble')), NOBLE_KEYS, []);
  const nobleT = timed(() => {
    matchDiagnosisKeys(nobleSuite, nobleKeys, typical.index);
  });
  rows.push(row(`${NOBLE_KEYS / 1000}k keys × ${describe(typical)}, noble`, NOBLE_KEYS, nobleT));
  return Promise.resolve(rows);
};
