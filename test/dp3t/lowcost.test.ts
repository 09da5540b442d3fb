/**
 * DP-3T low-cost (SPECS §2.1, ambiguities §7.8, §7.9, §7.12): epoch arithmetic, the PRG
 * construction (AES-256-CTR from a zero counter), caller misuse (MisuseError naming the field) and
 * fast-check properties — ratchet composition H^(a+b) = H^b ∘ H^a, fewer EphIDs are a prefix of
 * more, ephIdsForDays equals ratchet-then-generate, noble and node agree, the broadcast shuffle is a
 * permutation, and every second maps to an epoch in [0, n).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nobleSuite } from '../../protocol/crypto/noble.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import {
  broadcastStreamKey,
  DP3T_EPHIDS_PER_DAY,
  DP3T_EPOCH_LENGTH_MINUTES,
  DP3T_SECONDS_PER_DAY,
  dayKeyAfter,
  dp3tDayNumber,
  dp3tEphIdsPerDay,
  dp3tEpochOfDay,
  ephIdsForDay,
  ephIdsForDays,
  nextDayKey,
  shuffleEphIds,
} from '../../protocol/dp3t/lowcost.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { misuseField } from '../support/misuse.ts';
import { seededRng } from '../support/test-rng.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const SUITES: readonly (readonly [string, CryptoSuite])[] = [
  ['noble', nobleSuite],
  ['node', nodeSuite],
];
const key32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
const DIVISORS_OF_1440 = [1, 2, 3, 4, 5, 6, 8, 9, 10, 12, 15, 16, 18, 20, 24, 30, 32, 36, 40, 45, 48, 60, 72, 80, 90, 96, 120, 144, 160, 180, 240, 288, 360, 480, 720, 1440];

describe('SPECS §2.1 epochs', () => {
  it('n = 1440 / L: 96 EphIDs for the reference 15-minute epoch, 288 for the early SDK 5 minutes (SPECS §7.12)', () => {
    expect(DP3T_EPHIDS_PER_DAY).toBe(96);
    expect(dp3tEphIdsPerDay(DP3T_EPOCH_LENGTH_MINUTES)).toBe(96);
    expect(dp3tEphIdsPerDay(5)).toBe(288);
    expect(dp3tEphIdsPerDay(1440)).toBe(1);
  });

  it('days are UTC days; the epoch index counts L-minute slots from midnight', () => {
    const midnight = 1_587_772_800;
    expect(dp3tDayNumber(midnight - 1)).toBe(midnight / DP3T_SECONDS_PER_DAY - 1);
    expect(dp3tDayNumber(midnight)).toBe(midnight / DP3T_SECONDS_PER_DAY);
    expect(dp3tEpochOfDay(midnight)).toBe(0);
    expect(dp3tEpochOfDay(midnight + 15 * 60 - 1)).toBe(0);
    expect(dp3tEpochOfDay(midnight + 15 * 60)).toBe(1);
    expect(dp3tEpochOfDay(midnight + DP3T_SECONDS_PER_DAY - 1)).toBe(95);
    expect(dp3tEpochOfDay(midnight + 3600, 5)).toBe(12);
  });
});

describe('SPECS §2.1 PRG (SPECS §7.9)', () => {
  it.each(SUITES)('EphIDs are the AES-256-CTR keystream under the HMAC stream key, counter from zero (%s)', (_n, suite) => {
    const sk = new Uint8Array(32).fill(0xab);
    const streamKey = broadcastStreamKey(suite, sk);
    expect(streamKey).toHaveLength(32);
    // Keystream block i = AES-256-ECB(stream_key, BE128(i)).
    const counters = new Uint8Array(3 * 16);
    counters[15] = 0;
    counters[31] = 1;
    counters[47] = 2;
    const blocks = suite.aesEcbEncrypt(streamKey, counters);
    expect(ephIdsForDay(suite, sk, 3).map(hex)).toEqual([0, 1, 2].map((i) => hex(blocks.subarray(16 * i, 16 * i + 16))));
  });

  it('every EphID owns its 16 bytes', () => {
    const ephIds = ephIdsForDay(nodeSuite, new Uint8Array(32));
    expect(ephIds.every((e) => e.byteLength === 16 && e.buffer.byteLength === 16)).toBe(true);
  });

  it('dayKeyAfter(sk, 0) is a copy of sk, not the same array', () => {
    const sk = new Uint8Array(32).fill(1);
    const same = dayKeyAfter(nodeSuite, sk, 0);
    expect(hex(same)).toBe(hex(sk));
    expect(same).not.toBe(sk);
  });
});

describe('SPECS §2.1 caller misuse throws MisuseError naming the field', () => {
  const sk = new Uint8Array(32);
  it.each([
    ['sk', () => nextDayKey(nodeSuite, new Uint8Array(16))],
    ['sk', () => dayKeyAfter(nodeSuite, new Uint8Array(33), 1)],
    ['sk', () => broadcastStreamKey(nodeSuite, new Uint8Array(0))],
    ['sk', () => ephIdsForDay(nobleSuite, new Uint8Array(31))],
    ['sk', () => ephIdsForDays(nobleSuite, new Uint8Array(31), 1)],
    ['days', () => dayKeyAfter(nodeSuite, sk, -1)],
    ['days', () => dayKeyAfter(nodeSuite, sk, 1.5)],
    ['days', () => ephIdsForDays(nodeSuite, sk, -1)],
    ['count', () => ephIdsForDay(nodeSuite, sk, 0)],
    ['count', () => ephIdsForDay(nodeSuite, sk, 1441)],
    ['count', () => ephIdsForDays(nodeSuite, sk, 1, 2.5)],
    ['epochLengthMinutes', () => dp3tEphIdsPerDay(0)],
    ['epochLengthMinutes', () => dp3tEphIdsPerDay(7)],
    ['epochLengthMinutes', () => dp3tEpochOfDay(0, 2880)],
    ['unixSeconds', () => dp3tDayNumber(-1)],
    ['unixSeconds', () => dp3tEpochOfDay(Number.NaN)],
    ['rng', () => shuffleEphIds([sk, sk], { int: () => 2 })],
    ['rng', () => shuffleEphIds([sk, sk], { int: () => 0.5 })],
  ])('%s', (field, fn) => {
    expect(misuseField(fn)).toBe(field);
  });
});

describe('SPECS §2.1 properties (fast-check)', () => {
  it('ratchet composition: dayKeyAfter(sk, a + b) = dayKeyAfter(dayKeyAfter(sk, a), b), and each step is nextDayKey', () => {
    fc.assert(
      fc.property(key32, fc.nat(20), fc.nat(20), (sk, a, b) => {
        const mid = dayKeyAfter(nodeSuite, sk, a);
        return (
          hex(dayKeyAfter(nodeSuite, sk, a + b)) === hex(dayKeyAfter(nodeSuite, mid, b)) &&
          hex(dayKeyAfter(nodeSuite, sk, a + 1)) === hex(nextDayKey(nodeSuite, mid))
        );
      }),
      { numRuns: 200 },
    );
  });

  it('fewer EphIDs are a prefix of more (one keystream per day)', () => {
    fc.assert(
      fc.property(key32, fc.integer({ min: 1, max: 1440 }), (sk, count) => {
        const all = ephIdsForDay(nodeSuite, sk, 1440).map(hex);
        return ephIdsForDay(nodeSuite, sk, count).map(hex).join() === all.slice(0, count).join();
      }),
      { numRuns: 100 },
    );
  });

  it('ephIdsForDays(sk, d)[i] = ephIdsForDay(dayKeyAfter(sk, i))', () => {
    fc.assert(
      fc.property(key32, fc.integer({ min: 0, max: 6 }), fc.constantFrom(...DIVISORS_OF_1440), (sk, days, l) => {
        const n = dp3tEphIdsPerDay(l);
        const got = ephIdsForDays(nodeSuite, sk, days, n);
        return got.length === days && got.every((day, i) => day.map(hex).join() === ephIdsForDay(nodeSuite, dayKeyAfter(nodeSuite, sk, i), n).map(hex).join());
      }),
      { numRuns: 100 },
    );
  });

  it('noble and node agree on the next key, the stream key and the 96 EphIDs', () => {
    fc.assert(
      fc.property(key32, (sk) => {
        const [a, b] = [nobleSuite, nodeSuite].map((s) => [hex(nextDayKey(s, sk)), hex(broadcastStreamKey(s, sk)), ...ephIdsForDay(s, sk).map(hex)].join());
        return a === b;
      }),
      { numRuns: 150 },
    );
  });

  it('the broadcast shuffle is a permutation and leaves its input alone', () => {
    fc.assert(
      fc.property(key32, fc.integer({ min: 0, max: 2 ** 31 }), (sk, seed) => {
        const ephIds = ephIdsForDay(nodeSuite, sk);
        const before = ephIds.map(hex);
        const shuffled = shuffleEphIds(ephIds, seededRng(seed));
        return ephIds.map(hex).join() === before.join() && shuffled.map(hex).sort().join() === [...before].sort().join();
      }),
      { numRuns: 100 },
    );
  });

  it('every second maps to epoch ⌊(t − midnight) / 60L⌋ in [0, 1440 / L)', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 4e9, noNaN: true }), fc.constantFrom(...DIVISORS_OF_1440), (t, l) => {
        const e = dp3tEpochOfDay(t, l);
        const midnight = dp3tDayNumber(t) * DP3T_SECONDS_PER_DAY;
        return Number.isInteger(e) && e >= 0 && e < dp3tEphIdsPerDay(l) && midnight + e * l * 60 <= t && t < midnight + (e + 1) * l * 60;
      }),
      { numRuns: 500 },
    );
  });
});
