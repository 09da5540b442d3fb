/**
 * DP-3T low-cost matching (SPECS §2.1 `matches_with_key`; retention SPECS §7.11) under both crypto
 * suites: EphIDs of the key's day and of later days (ratchet) match only when heard on their own
 * UTC day and strictly before the release; the official vectors' KEY0 → KEY1 → KEY2 chain used as a
 * published key; exposure estimates; hostile published keys are skipped and counted (fast-check:
 * never a throw); retention deletion; the 16-byte table against a Map; caller misuse.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nobleSuite } from '../../protocol/crypto/noble.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import { dayKeyAfter, ephIdsForDay } from '../../protocol/dp3t/lowcost.ts';
import {
  addDp3tObservations,
  DP3T_MATCH_RETENTION_DAYS,
  DP3T_MS_PER_DAY,
  Dp3tObservationIndex,
  EMPTY_DP3T_OBSERVATION_STORE,
  matchDp3tKeys,
  pruneDp3tObservations,
  type Dp3tObservation,
  type Dp3tObservationStore,
  type PublishedDp3tKey,
} from '../../protocol/dp3t/matching.ts';
import { Id16Table } from '../../protocol/id16-table.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { misuseField } from '../support/misuse.ts';
import { seededRng } from '../support/test-rng.ts';
import vectors from '../vectors/dp3t.json' with { type: 'json' };

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
const SUITES: readonly (readonly [string, CryptoSuite])[] = [
  ['noble', nobleSuite],
  ['node', nodeSuite],
];
/** Day of the official vector's START_TIME (2020-04-25). */
const DAY0 = 1_587_772_800 / 86_400;
const MIN = 60_000;
const EPOCH_MS = 15 * MIN;
const at = (day: number, ms: number): number => day * DP3T_MS_PER_DAY + ms;
const obs = (ephId: Uint8Array, receivedAtMs: number, rssiDbm = -60, extra: Partial<Dp3tObservation> = {}): Dp3tObservation => ({ ephId, receivedAtMs, rssiDbm, ...extra });

/** A store of `noise` random EphIDs per day over `days` days from DAY0 plus the given observations. */
function storeWith(planted: readonly Dp3tObservation[], days = 3, noise = 50, seed = 1): Dp3tObservationStore {
  const rng = seededRng(seed);
  const random: Dp3tObservation[] = [];
  for (let d = 0; d < days; d++) for (let i = 0; i < noise; i++) random.push(obs(rng.bytes(16), at(DAY0 + d, rng.int(DP3T_MS_PER_DAY)), -90));
  return addDp3tObservations(EMPTY_DP3T_OBSERVATION_STORE, [...random, ...planted]);
}

describe.each(SUITES)('SPECS §2.1 matchDp3tKeys under %s', (_name, suite) => {
  const sk = new Uint8Array(32).fill(7);
  const ephDay0 = ephIdsForDay(suite, sk);
  const ephDay2 = ephIdsForDay(suite, dayKeyAfter(suite, sk, 2));
  const release = at(DAY0 + 2, 12 * 3_600_000);
  const now = at(DAY0 + 2, 18 * 3_600_000);
  const key: PublishedDp3tKey = { sk, day: DAY0, releasedAtMs: release };

  it('finds EphIDs of the key day and of later days (ratchet), with epoch, EphID index and RSSI', () => {
    const store = storeWith([obs(ephDay0[10]!, at(DAY0, 3 * EPOCH_MS + 5000), -55), obs(ephDay2[95]!, at(DAY0 + 2, 40 * EPOCH_MS), -70)]);
    const r = matchDp3tKeys(suite, [key], store, { nowMs: now });
    expect(r.matches.map((m) => [m.keyIndex, m.day - DAY0, m.ephIdIndex, m.epochOfDay, m.observation.rssiDbm])).toEqual([
      [0, 0, 10, 3, -55],
      [0, 2, 95, 40, -70],
    ]);
    expect(r.stats).toMatchObject({ keys: 1, matchedKeys: 1, daysDerived: 3, ratchets: 2 });
  });

  it('ignores an observation at or after the release time, counts one just before it', () => {
    const e = ephDay2[1]!;
    const store = storeWith([obs(e, release - 1), obs(e, release), obs(e, release + MIN)]);
    const r = matchDp3tKeys(suite, [key], store, { nowMs: now });
    expect(r.matches.map((m) => m.observation.receivedAtMs)).toEqual([release - 1]);
  });

  it('ignores an EphID heard on another UTC day than its own', () => {
    // Day 0's EphID heard one minute after midnight of day 1; day 2's EphID heard on day 1.
    const store = storeWith([obs(ephDay0[95]!, at(DAY0 + 1, MIN)), obs(ephDay2[0]!, at(DAY0 + 1, 2 * MIN))]);
    expect(matchDp3tKeys(suite, [key], store, { nowMs: now }).matches).toEqual([]);
  });

  it('derives no day after today nor after the release day; a day with only later observations costs no AES', () => {
    const store = storeWith([], 5);
    const r = matchDp3tKeys(suite, [key], store, { nowMs: now });
    expect(r.stats.daysDerived).toBe(3);
    const early = matchDp3tKeys(suite, [{ ...key, releasedAtMs: at(DAY0, 0) + 1 }], storeWith([], 3, 50, 2), { nowMs: now });
    expect(early.stats.daysDerived).toBe(0);
  });

  it('estimates exposure per (key, day): distinct scan slots × scan interval, durations covering slots', () => {
    const e = ephDay0[4]!;
    const t = at(DAY0, 4 * EPOCH_MS);
    const store = storeWith([obs(e, t, -60), obs(e, t + 10_000, -50), obs(e, t + 5 * MIN, -65), obs(ephDay0[5]!, t + EPOCH_MS, -70, { durationMs: 2 * MIN, attenuationDb: 12 })]);
    const r = matchDp3tKeys(suite, [key], store, { nowMs: now });
    expect(r.exposures).toEqual([{ keyIndex: 0, day: DAY0, observations: 4, ephIds: 2, scanSlots: 5, durationMs: 5 * MIN, maxRssiDbm: -50, minAttenuationDb: 12 }]);
    expect(matchDp3tKeys(suite, [key], store, { nowMs: now, scanIntervalMs: 1000 }).exposures[0]!.scanSlots).toBe(3 + 121);
  });

  it('a prebuilt index (any hash seed) gives the same result as the store', () => {
    const store = storeWith([obs(ephDay0[1]!, at(DAY0, 1000)), obs(ephDay2[2]!, at(DAY0 + 2, 2000))], 3, 500, 3);
    const a = matchDp3tKeys(suite, [key], store, { nowMs: now });
    const b = matchDp3tKeys(suite, [key], new Dp3tObservationIndex(store, 0xdead_beef), { nowMs: now });
    expect(b).toEqual(a);
    expect(a.matches).toHaveLength(2);
  });

  it('supports another epoch length (L = 5 min: 288 EphIDs a day)', () => {
    const eph = ephIdsForDay(suite, sk, 288);
    const store = storeWith([obs(eph[287]!, at(DAY0, DP3T_MS_PER_DAY - 1))]);
    const r = matchDp3tKeys(suite, [key], store, { nowMs: now, epochLengthMinutes: 5 });
    expect(r.matches.map((m) => [m.ephIdIndex, m.epochOfDay])).toEqual([[287, 287]]);
  });
});

describe.each(SUITES)('SPECS §2.3 official vectors as published keys under %s', (_name, suite) => {
  const lowcost = vectors.official.lowcost;
  const derived = vectors.derived_lowcost_testvectors_script_output;

  it('KEY0 published for day t finds KEY1\'s official first EphIDs on t + 1 and KEY2\'s derived EphIDs on t + 2', () => {
    const first3 = lowcost.EPHIDS_KEY1_unshuffled_first3.map(unhex);
    const key2Ephs = derived.find((d) => d.day_offset === 2)!.all_96_ephids_unshuffled.map(unhex);
    const store = storeWith([...first3.map((e, i) => obs(e, at(DAY0 + 1, i * EPOCH_MS))), obs(key2Ephs[50]!, at(DAY0 + 2, 50 * EPOCH_MS))]);
    const published = [{ sk: unhex(lowcost.KEY0), day: DAY0, releasedAtMs: at(DAY0 + 3, 0) }];
    const r = matchDp3tKeys(suite, published, store, { nowMs: at(DAY0 + 3, 1000) });
    expect(r.matches.map((m) => [m.day - DAY0, m.ephIdIndex, hex(m.observation.ephId)])).toEqual([
      [1, 0, lowcost.EPHIDS_KEY1_unshuffled_first3[0]],
      [1, 1, lowcost.EPHIDS_KEY1_unshuffled_first3[1]],
      [1, 2, lowcost.EPHIDS_KEY1_unshuffled_first3[2]],
      [2, 50, hex(key2Ephs[50]!)],
    ]);
  });

  it('KEY1 published for t + 1 does not reach back to day t; KEY2 published for t + 1 matches nothing', () => {
    const key0Ephs = derived.find((d) => d.day_offset === 0)!.all_96_ephids_unshuffled.map(unhex);
    const key1Ephs = derived.find((d) => d.day_offset === 1)!.all_96_ephids_unshuffled.map(unhex);
    const store = storeWith([obs(key0Ephs[0]!, at(DAY0, 1000)), obs(key1Ephs[0]!, at(DAY0 + 1, 1000))]);
    const opts = { nowMs: at(DAY0 + 2, 0) };
    const r1 = matchDp3tKeys(suite, [{ sk: unhex(lowcost.KEY1), day: DAY0 + 1, releasedAtMs: at(DAY0 + 2, 0) }], store, opts);
    expect(r1.matches.map((m) => m.day - DAY0)).toEqual([1]);
    const r2 = matchDp3tKeys(suite, [{ sk: unhex(lowcost.KEY2), day: DAY0 + 1, releasedAtMs: at(DAY0 + 2, 0) }], store, opts);
    expect(r2.matches).toEqual([]);
  });
});

describe('hostile published keys are skipped and counted', () => {
  const store = storeWith([]);
  const now = at(DAY0 + 2, 0);
  const sk = new Uint8Array(32);

  it('malformed, future, too old, released before its day', () => {
    const keys = [
      { sk: new Uint8Array(31), day: DAY0, releasedAtMs: now },
      { sk, day: Number.NaN, releasedAtMs: now },
      { sk, day: DAY0, releasedAtMs: Number.POSITIVE_INFINITY },
      null,
      { sk, day: DAY0 + 3, releasedAtMs: now },
      { sk, day: DAY0 + 2 - 22, releasedAtMs: now },
      { sk, day: 0, releasedAtMs: now },
      { sk, day: DAY0 + 1, releasedAtMs: at(DAY0 + 1, 0) },
      { sk, day: DAY0 + 2 - 21, releasedAtMs: now },
    ] as unknown as PublishedDp3tKey[];
    const r = matchDp3tKeys(nodeSuite, keys, store, { nowMs: now });
    expect(r.stats.skipped).toEqual({ malformed: 4, future: 1, tooOld: 2, releasedBeforeDay: 1 });
    // The 21-day-old key is accepted: 19 ratchets reach the store's first day, 1 more the day before the release.
    expect(r.stats.ratchets).toBe(20);
    expect(matchDp3tKeys(nodeSuite, keys, store, { nowMs: now, maxKeyAgeDays: 30 }).stats.skipped.tooOld).toBe(1);
  });

  it('fast-check: arbitrary key objects never throw and every key is matched or counted', () => {
    const keyArb = fc.record({
      sk: fc.oneof(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 40 })),
      day: fc.oneof(fc.integer({ min: DAY0 - 30, max: DAY0 + 5 }), fc.double(), fc.constant(-1)),
      releasedAtMs: fc.oneof(fc.integer({ min: at(DAY0 - 5, 0), max: at(DAY0 + 5, 0) }), fc.double()),
    });
    fc.assert(
      fc.property(fc.array(keyArb, { maxLength: 8 }), (keys) => {
        const r = matchDp3tKeys(nodeSuite, keys, store, { nowMs: now });
        const s = r.stats.skipped;
        expect(s.malformed + s.future + s.tooOld + s.releasedBeforeDay).toBeLessThanOrEqual(keys.length);
      }),
      { numRuns: 300 },
    );
  });
});

describe('SPECS §7.11 retention', () => {
  it('keeps today and the previous 14 days by default, 21 when configured', () => {
    const e = new Uint8Array(16);
    const today = DAY0 + 30;
    let store = EMPTY_DP3T_OBSERVATION_STORE;
    for (let d = 0; d <= 30; d++) store = addDp3tObservations(store, [obs(e, at(DAY0 + d, 1000))]);
    expect(DP3T_MATCH_RETENTION_DAYS).toBe(14);
    const pruned = pruneDp3tObservations(store, at(today, 5000));
    expect(pruned.days.map((d) => d.day)).toEqual(Array.from({ length: 15 }, (_, i) => today - 14 + i));
    expect(pruneDp3tObservations(store, at(today, 5000), 21).days[0]!.day).toBe(today - 21);
    expect(pruneDp3tObservations(pruned, at(today, 5000))).toBe(pruned);
  });

  it('addDp3tObservations groups by UTC day, keeps days ascending and copies only touched days', () => {
    const a = addDp3tObservations(EMPTY_DP3T_OBSERVATION_STORE, [obs(new Uint8Array(16), at(DAY0 + 2, 0)), obs(new Uint8Array(16), at(DAY0, 0))]);
    const b = addDp3tObservations(a, [obs(new Uint8Array(16), at(DAY0, 1))]);
    expect(b.days.map((d) => [d.day - DAY0, d.observations.length])).toEqual([[0, 2], [2, 1]]);
    expect(b.days[1]).toBe(a.days[1]);
  });
});

describe('Id16Table', () => {
  it('fast-check: insert/find agree with a Map of hex strings, across growth and seeds', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 16, maxLength: 16 }), { maxLength: 300 }), fc.nat({ max: 0xffff_ffff }), (ids, seed) => {
        const table = new Id16Table(seed);
        const map = new Map<string, number>();
        for (const id of [...ids, ...ids.slice(0, 10)]) {
          const got = table.insert(id);
          if (!map.has(hex(id))) map.set(hex(id), map.size);
          expect(got).toBe(map.get(hex(id)));
        }
        expect(table.size).toBe(map.size);
        const probe = new Uint8Array(32);
        for (const id of ids) {
          probe.set(id, 16);
          expect(table.find(probe, 16)).toBe(map.get(hex(id)));
        }
        expect(table.find(new Uint8Array(16).fill(0xee))).toBe(map.get('ee'.repeat(16)) ?? -1);
      }),
      { numRuns: 100 },
    );
  });
});

describe('caller misuse throws MisuseError naming the field', () => {
  const store = storeWith([], 1, 1);
  it.each([
    ['options.nowMs', () => matchDp3tKeys(nodeSuite, [], store, { nowMs: Number.NaN })],
    ['options.maxKeyAgeDays', () => matchDp3tKeys(nodeSuite, [], store, { nowMs: 0, maxKeyAgeDays: -1 })],
    ['options.scanIntervalMs', () => matchDp3tKeys(nodeSuite, [], store, { nowMs: 0, scanIntervalMs: 0 })],
    ['epochLengthMinutes', () => matchDp3tKeys(nodeSuite, [], store, { nowMs: 0, epochLengthMinutes: 7 })],
    ['hashSeed', () => new Dp3tObservationIndex(store, -1)],
    ['observations[0].rssiDbm', () => addDp3tObservations(store, [obs(new Uint8Array(16), 0, 50)])],
    ['observations[0].ephId', () => addDp3tObservations(store, [obs(new Uint8Array(15), 0)])],
    ['observations[0].durationMs', () => addDp3tObservations(store, [obs(new Uint8Array(16), 0, -60, { durationMs: -1 })])],
    ['store.days[0].observations[0].receivedAtMs', () => new Dp3tObservationIndex({ days: [{ day: 3, observations: [obs(new Uint8Array(16), 0)] }] })],
    ['store.days[1].day', () => new Dp3tObservationIndex({ days: [{ day: 3, observations: [] }, { day: 3, observations: [] }] })],
    ['retentionDays', () => pruneDp3tObservations(store, 0, 1.5)],
  ])('%s', (field, fn) => {
    expect(misuseField(fn)).toBe(field);
  });
});
