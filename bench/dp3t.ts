/**
 * DP-3T low-cost matching (protocol/dp3t/matching.ts, SPECS §2.1) at issue 5's sizes: 1,000 and
 * 10,000 published keys against a phone's 14-day store of ~20k observations.
 *
 * Store: 14 UTC days × 360 distinct EphIDs heard a day (≈ 4 phones in range around the clock),
 * each heard 4 times a minute apart → 20,160 observations, plus the planted ones. Keys: random
 * SK_t whose days t are spread over the 14 days, all released "now" (end of the last day), so a
 * key of day t costs 14 − (t − first day) day derivations (7.5 on average, up to 14). 20 planted
 * positives are keys one of whose later-day EphIDs the phone heard; every run must find exactly
 * them. Key generation and store indexing are not timed (the index row shows the latter).
 *
 * Rows: keys/s and days derived/s (each = one SHA-256 ratchet step + HMAC + AES-256-CTR over
 * 96 blocks + 96 table probes), by wall and by process CPU time. The "crypto floor" row runs only
 * the suite's SHA-256 + HMAC + AES-CTR per day, to separate the matcher's own overhead.
 */
import { SeededRng } from '../protocol/crypto/drbg.ts';
import { nobleSuite } from '../protocol/crypto/noble.ts';
import type { CryptoSuite } from '../protocol/crypto/suite.ts';
import { broadcastStreamKey, dayKeyAfter, ephIdsForDay } from '../protocol/dp3t/lowcost.ts';
import { addDp3tObservations, DP3T_MS_PER_DAY, Dp3tObservationIndex, EMPTY_DP3T_OBSERVATION_STORE, matchDp3tKeys, type Dp3tObservation, type PublishedDp3tKey } from '../protocol/dp3t/matching.ts';
import { nodeSuite } from '../services/crypto/node.ts';
import type { BenchModule, BenchRow } from './report.ts';

const GROUP = 'dp3t/matching';
const DAYS = 14;
const EPHIDS_PER_DAY_HEARD = 360;
const SIGHTINGS_PER_EPHID = 4;
const PLANTED = 20;
const NOBLE_KEYS = 1_000;
/** First store day: 2020-04-25 (the official vector's day). */
const DAY0 = 18_377;
const NOW_MS = (DAY0 + DAYS) * DP3T_MS_PER_DAY - 1;

const round = (x: number, digits = 0): number => Math.round(x * 10 ** digits) / 10 ** digits;
const note = (msg: string): void => void process.stderr.write(`  dp3t: ${msg}\n`);

interface Timing {
  readonly wallS: number;
  readonly cpuS: number;
}

function timed(fn: () => void): Timing {
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  fn();
  const wallS = Number(process.hrtime.bigint() - start) / 1e9;
  const used = process.cpuUsage(cpu);
  return { wallS, cpuS: (used.user + used.system) / 1e6 };
}

interface Fixture {
  readonly index: Dp3tObservationIndex;
  readonly observations: number;
  readonly indexMs: number;
  readonly planted: PublishedDp3tKey[];
}

function buildFixture(rng: SeededRng): Fixture {
  const obs: Dp3tObservation[] = [];
  for (let d = 0; d < DAYS; d++) {
    for (let e = 0; e < EPHIDS_PER_DAY_HEARD; e++) {
      const ephId = rng.bytes(16);
      const t = (DAY0 + d) * DP3T_MS_PER_DAY + rng.int(DP3T_MS_PER_DAY - SIGHTINGS_PER_EPHID * 60_000);
      for (let s = 0; s < SIGHTINGS_PER_EPHID; s++) obs.push({ ephId, receivedAtMs: t + s * 60_000, rssiDbm: -60 - rng.int(40) });
    }
  }
  const planted: PublishedDp3tKey[] = [];
  for (let p = 0; p < PLANTED; p++) {
    const sk = rng.bytes(32);
    const day = p % DAYS;
    const heardDay = day + rng.int(DAYS - day);
    const eph = ephIdsForDay(nodeSuite, dayKeyAfter(nodeSuite, sk, heardDay - day));
    const i = rng.int(eph.length);
    obs.push({ ephId: eph[i] as Uint8Array, receivedAtMs: (DAY0 + heardDay) * DP3T_MS_PER_DAY + i * 15 * 60_000, rssiDbm: -55 });
    planted.push({ sk, day: DAY0 + day, releasedAtMs: NOW_MS });
  }
  const store = addDp3tObservations(EMPTY_DP3T_OBSERVATION_STORE, obs);
  let index: Dp3tObservationIndex | undefined;
  const t = timed(() => {
    index = new Dp3tObservationIndex(store, rng.int(0x1_0000_0000));
  });
  if (index === undefined) throw new Error('unreachable');
  return { index, observations: obs.length, indexMs: t.wallS * 1000, planted };
}

function keyBatch(rng: SeededRng, count: number, planted: readonly PublishedDp3tKey[]): PublishedDp3tKey[] {
  const sks = rng.bytes(32 * count);
  const keys: PublishedDp3tKey[] = [];
  for (let i = 0; i < count; i++) keys.push({ sk: sks.subarray(32 * i, 32 * (i + 1)), day: DAY0 + (i % DAYS), releasedAtMs: NOW_MS });
  planted.forEach((key, p) => {
    keys[Math.floor(((p + 0.5) * count) / planted.length)] = key;
  });
  return keys;
}

function run(crypto: CryptoSuite, fx: Fixture, count: number, seed: string): BenchRow {
  const keys = keyBatch(new SeededRng(new TextEncoder().encode(`tracecity bench dp3t keys ${seed}`)), count, fx.planted);
  let stats: ReturnType<typeof matchDp3tKeys>['stats'] | undefined;
  const t = timed(() => {
    stats = matchDp3tKeys(crypto, keys, fx.index, { nowMs: NOW_MS }).stats;
  });
  if (stats === undefined) throw new Error('unreachable');
  if (stats.matchedKeys !== fx.planted.length) throw new Error(`bench/dp3t: found ${stats.matchedKeys} matching keys, planted ${fx.planted.length}`);
  return {
    group: GROUP,
    name: `${count.toLocaleString('en-US')} keys × ${(fx.observations / 1000).toFixed(1)}k obs, ${crypto.name}`,
    values: {
      keysWall: round(count / t.wallS),
      keysCpu: round(count / t.cpuS),
      daysCpu: round(stats.daysDerived / t.cpuS),
      daysPerKey: round(stats.daysDerived / count, 2),
      ms: round(t.wallS * 1000, 1),
    },
    unit: 'keys/s, days/s',
  };
}

export const dp3tBench: BenchModule = () => {
  const rng = new SeededRng(new TextEncoder().encode('tracecity bench dp3t store v1'));
  note('building store');
  const fx = buildFixture(rng);
  const rows: BenchRow[] = [
    { group: GROUP, name: `index ${DAYS} days: ${fx.observations.toLocaleString('en-US')} observations`, values: { ms: round(fx.indexMs, 1) }, unit: 'ms' },
  ];

  note('crypto floor');
  const floorKeys = keyBatch(new SeededRng(new TextEncoder().encode('tracecity bench dp3t floor')), 10_000, []);
  const zeros = new Uint8Array(96 * 16);
  const counter = new Uint8Array(16);
  const floor = timed(() => {
    for (const k of floorKeys) nodeSuite.aesCtr(broadcastStreamKey(nodeSuite, nodeSuite.sha256(k.sk)), counter, zeros);
  });
  rows.push({ group: GROUP, name: 'crypto floor: SHA-256 + HMAC + AES-CTR×96 per day, node', values: { daysCpu: round(floorKeys.length / floor.cpuS) }, unit: 'days/s' });

  for (const count of [1_000, 10_000]) {
    note(`${count} keys, node`);
    rows.push(run(nodeSuite, fx, count, String(count)));
  }
  note(`${NOBLE_KEYS} keys, noble`);
  rows.push(run(nobleSuite, fx, NOBLE_KEYS, 'noble'));
  return Promise.resolve(rows);
};
