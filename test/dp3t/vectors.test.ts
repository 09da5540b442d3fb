/**
 * DP-3T low-cost (SPECS §2.1) against test/vectors/dp3t.json under both crypto suites: the official
 * KEY0 → KEY1 → KEY2 ratchet and first three unshuffled EphIDs of KEY1 (DP3T-ref test_lowcost.py),
 * the three pre-GAEN DP3T-android SDK key/token cases, the derived stream keys and full 96-EphID
 * lists of KEY0..KEY2, the vector's day start, and the non-official PRF labels of SPECS §7.8 —
 * which must NOT come out of ephIdsForDay. The unlinkable section (SPECS §2.2) is not implemented
 * here and is not exercised.
 */
import { describe, expect, it } from 'vitest';
import { nobleSuite } from '../../protocol/crypto/noble.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import {
  broadcastStreamKey,
  DP3T_BROADCAST_KEY_LABEL,
  DP3T_EPHIDS_PER_DAY,
  DP3T_SECONDS_PER_DAY,
  dayKeyAfter,
  dp3tDayNumber,
  dp3tEpochOfDay,
  ephIdsForDay,
  ephIdsForDays,
  nextDayKey,
} from '../../protocol/dp3t/lowcost.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import vectors from '../vectors/dp3t.json' with { type: 'json' };

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
const unb64 = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'base64'));

const SUITES: readonly (readonly [string, CryptoSuite])[] = [
  ['noble', nobleSuite],
  ['node', nodeSuite],
];

const lowcost = vectors.official.lowcost;
const SDK_CASES = vectors.official.dp3t_sdk_android_CryptoTest.cases;
const DERIVED = vectors.derived_lowcost_testvectors_script_output;
const VARIANTS = vectors.non_official_variants_do_not_use;
const KEY0 = unhex(lowcost.KEY0);

describe('test/vectors/dp3t.json', () => {
  it('keeps its provenance and holds 3 low-cost keys, 3 EphIDs, 3 SDK cases and 3 derived days of 96 EphIDs', () => {
    expect(vectors.source).toContain('DP-3T/reference_implementation@fa2aafc192ff1f42153301633c72fe6a9c63ed30');
    expect(vectors.source).toContain('DP-3T/dp3t-sdk-android@583ebf4ae0db61449617f1b1e238fd318adca3a7');
    expect(lowcost.EPHIDS_KEY1_unshuffled_first3).toHaveLength(3);
    expect(SDK_CASES.map((c) => c.name)).toEqual(['testTokenToday', 'testWrongTokenToday', 'testTokenTodayWithYesterdaysKey']);
    expect(DERIVED.map((d) => [d.day_offset, d.all_96_ephids_unshuffled.length])).toEqual([
      [0, DP3T_EPHIDS_PER_DAY],
      [1, DP3T_EPHIDS_PER_DAY],
      [2, DP3T_EPHIDS_PER_DAY],
    ]);
  });

  it('SPECS §2.1 the PRF label is the 13 ASCII bytes "broadcast key" (lowercase, SPECS §7.8)', () => {
    expect(Buffer.from(DP3T_BROADCAST_KEY_LABEL).toString('latin1')).toBe('broadcast key');
  });

  it('SPECS §2.1 time: START_TIME 2020-04-25T15:17:00Z lies on the day starting at 1587772800 s, in epoch 61', () => {
    const t = Date.parse(lowcost.START_TIME) / 1000;
    // The vector's "_IN_EPOCHS" name is misleading: the value is Unix seconds of UTC midnight.
    expect(dp3tDayNumber(t) * DP3T_SECONDS_PER_DAY).toBe(lowcost.START_TIME_DAY_START_IN_EPOCHS);
    expect(dp3tEpochOfDay(t)).toBe(61); // 15:17 = minute 917 of the day, 917 / 15 = 61.1
  });
});

describe.each(SUITES)('SPECS §2.1 official vectors under %s', (_name, suite) => {
  it('SPECS §2.1 SK ratchet: KEY1 = SHA-256(KEY0), KEY2 = SHA-256(KEY1)', () => {
    const key1 = nextDayKey(suite, KEY0);
    expect(hex(key1)).toBe(lowcost.KEY1);
    expect(hex(nextDayKey(suite, key1))).toBe(lowcost.KEY2);
    expect(hex(dayKeyAfter(suite, KEY0, 2))).toBe(lowcost.KEY2);
  });

  it('SPECS §2.1 EphIDs: the first three unshuffled EphIDs of KEY1', () => {
    const ephIds = ephIdsForDay(suite, unhex(lowcost.KEY1));
    expect(ephIds.slice(0, 3).map(hex)).toEqual(lowcost.EPHIDS_KEY1_unshuffled_first3);
    expect(ephIdsForDay(suite, unhex(lowcost.KEY1), 3).map(hex)).toEqual(lowcost.EPHIDS_KEY1_unshuffled_first3);
  });

  it.each(SDK_CASES)('SPECS §2.1 DP3T-android CryptoTest.$name', (c) => {
    const key = dayKeyAfter(suite, unb64(c.key_b64), c.days_ratcheted);
    const ephIds = ephIdsForDay(suite, key).map(hex);
    const token = hex(unb64(c.token_b64));
    expect(ephIds).toHaveLength(DP3T_EPHIDS_PER_DAY);
    expect(ephIds.filter((e) => e === token)).toHaveLength(c.expected_match_count);
    if ('derived_unshuffled_index' in c) expect(ephIds.indexOf(token)).toBe(c.derived_unshuffled_index);
  });

  it('SPECS §2.1 derived: stream keys and all 96 unshuffled EphIDs of KEY0, KEY1, KEY2', () => {
    for (const day of DERIVED) {
      const sk = unhex(day.SK);
      expect(hex(dayKeyAfter(suite, KEY0, day.day_offset))).toBe(day.SK);
      expect(hex(broadcastStreamKey(suite, sk))).toBe(day.stream_key_hmac);
      const ephIds = ephIdsForDay(suite, sk).map(hex);
      expect(ephIds).toEqual(day.all_96_ephids_unshuffled);
      for (const [i, e] of Object.entries(day.ephid)) expect(ephIds[Number(i)]).toBe(e);
    }
  });

  it('SPECS §2.1 matching: ephIdsForDays(KEY0, 3) regenerates the three derived days in order', () => {
    const days = ephIdsForDays(suite, KEY0, 3);
    expect(days.map((d) => d.map(hex))).toEqual(DERIVED.map((d) => d.all_96_ephids_unshuffled));
  });

  it('SPECS §7.8 non-official labels: "Broadcast key" reproduces its stream key via HMAC, and neither variant is what ephIdsForDay gives', () => {
    const capital = VARIANTS.label_Broadcast_key_capital_B;
    const sk = unhex(capital.SK);
    expect(hex(suite.hmacSha256(sk, new TextEncoder().encode('Broadcast key')))).toBe(capital.stream_key);
    const ours = ephIdsForDay(suite, sk, 3).map(hex);
    expect(ours).toEqual(DERIVED[0]!.all_96_ephids_unshuffled.slice(0, 3));
    expect(ours).not.toEqual(capital.ephid_0_1_2);
    expect(ours).not.toEqual(VARIANTS['label_Decentralized_Privacy-Preserving_Proximity_Tracing'].ephid_0_1_2);
    // The capital-B EphIDs are the same PRG keyed by the other label: only the label differs.
    const keystream = suite.aesCtr(unhex(capital.stream_key), new Uint8Array(16), new Uint8Array(48));
    expect([0, 1, 2].map((i) => hex(keystream.subarray(16 * i, 16 * i + 16)))).toEqual(capital.ephid_0_1_2);
  });
});
