/**
 * GAEN time and keys (SPECS §1.1–1.3, §1.6): ENIntervalNumber boundaries, the LE32 ENIN in
 * PaddedData (SPECS §7.2), the uint32 end of the interval range, caller misuse (MisuseError naming
 * the field), and fast-check properties — rpisForTek equals rpi() per interval, noble and node
 * agree, a partial key's RPIs are a slice of the full day's.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nobleSuite } from '../../protocol/crypto/noble.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import {
  EN_INTERVAL_NUMBER_MAX,
  EN_INTERVAL_SECONDS,
  embargoEndSeconds,
  enIntervalNumber,
  enIntervalStartSeconds,
  isIntervalOfKey,
  rollingEndIntervalNumber,
  rollingStartIntervalNumber,
  TEK_MATCHING_CLOCK_DRIFT_INTERVALS,
  TEK_ROLLING_PERIOD,
} from '../../protocol/gaen/interval.ts';
import { aemk, rpi, rpik, rpiPaddedData, rpisForRpik, rpisForTek } from '../../protocol/gaen/keys.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { misuseField } from '../support/misuse.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const SUITES: readonly (readonly [string, CryptoSuite])[] = [
  ['noble', nobleSuite],
  ['node', nodeSuite],
];
const key16 = fc.uint8Array({ minLength: 16, maxLength: 16 });
const enin = fc.integer({ min: 0, max: EN_INTERVAL_NUMBER_MAX });
/** A key's (start, period) with every interval a uint32. */
const range = fc
  .record({ start: enin, period: fc.integer({ min: 1, max: TEK_ROLLING_PERIOD }) })
  .map(({ start, period }) => ({ start: Math.min(start, EN_INTERVAL_NUMBER_MAX - period + 1), period }));

describe('SPECS §1.1 time', () => {
  it('ENIntervalNumber = floor(unix seconds / 600), fractional seconds floored', () => {
    expect(enIntervalNumber(0)).toBe(0);
    expect(enIntervalNumber(599.999)).toBe(0);
    expect(enIntervalNumber(600)).toBe(1);
    expect(enIntervalNumber(1_585_785_600)).toBe(2_642_976);
    expect(enIntervalNumber(1_585_785_600 + 144 * 600 - 1)).toBe(2_642_976 + 143);
  });

  it('the last representable interval is 2^32 − 1 (ENIN is a UInt32)', () => {
    const last = EN_INTERVAL_NUMBER_MAX * EN_INTERVAL_SECONDS;
    expect(enIntervalNumber(last + 599)).toBe(EN_INTERVAL_NUMBER_MAX);
    expect(misuseField(() => enIntervalNumber(last + 600))).toBe('unixSeconds');
    expect(enIntervalStartSeconds(EN_INTERVAL_NUMBER_MAX)).toBe(last);
  });

  it('SPECS §1.2 rolling start of a full-day key is the multiple of 144 at or below the ENIN; end is exclusive', () => {
    expect(rollingStartIntervalNumber(2_642_976 + 143)).toBe(2_642_976);
    expect(rollingStartIntervalNumber(2_642_976 + 144)).toBe(2_642_976 + 144);
    expect(rollingEndIntervalNumber(2_642_976, 144)).toBe(2_643_120);
    expect(isIntervalOfKey(2_643_119, 2_642_976, 144)).toBe(true);
    expect(isIntervalOfKey(2_643_120, 2_642_976, 144)).toBe(false);
    expect(isIntervalOfKey(2_642_975, 2_642_976, 144)).toBe(false);
  });

  it('SPECS §1.6 a published key is embargoed until (start + period + 12) · 600 s (2 h of clock drift)', () => {
    expect(TEK_MATCHING_CLOCK_DRIFT_INTERVALS * EN_INTERVAL_SECONDS).toBe(2 * 3600);
    expect(embargoEndSeconds(2_642_976, 144)).toBe(1_585_785_600 + 26 * 3600);
    expect(embargoEndSeconds(2_642_976, 1)).toBe((2_642_976 + 13) * 600);
  });
});

describe('SPECS §1.3 PaddedData and the uint32 boundary', () => {
  it('ENIN is LE32 at offset 12, not big-endian (SPECS §7.2)', () => {
    expect(hex(rpiPaddedData(0x01020304))).toBe('454e2d52504900000000000004030201');
    expect(hex(rpiPaddedData(EN_INTERVAL_NUMBER_MAX))).toBe('454e2d525049000000000000ffffffff');
  });

  it.each(SUITES)('a key ending exactly at ENIN 2^32 − 1 is fine; one interval more is misuse (%s)', (_n, suite) => {
    const tek = new Uint8Array(16).fill(5);
    const rpis = rpisForTek(suite, tek, EN_INTERVAL_NUMBER_MAX - 143, 144);
    expect(hex(rpis.at(-1)!)).toBe(hex(rpi(suite, rpik(suite, tek), EN_INTERVAL_NUMBER_MAX)));
    expect(misuseField(() => rpisForTek(suite, tek, EN_INTERVAL_NUMBER_MAX - 142, 144))).toBe('rollingPeriod');
  });

  it('RPIK and AEMK of one TEK differ (distinct HKDF infos)', () => {
    const tek = new Uint8Array(16).fill(1);
    expect(hex(rpik(nodeSuite, tek))).not.toBe(hex(aemk(nodeSuite, tek)));
  });
});

describe('SPECS §1.1–1.3 caller misuse throws MisuseError naming the field', () => {
  const tek = new Uint8Array(16);
  it.each([
    ['unixSeconds', () => enIntervalNumber(-1)],
    ['unixSeconds', () => enIntervalNumber(Number.NaN)],
    ['unixSeconds', () => enIntervalNumber(Number.POSITIVE_INFINITY)],
    ['enin', () => enIntervalStartSeconds(2 ** 32)],
    ['enin', () => rollingStartIntervalNumber(-1)],
    ['enin', () => rpiPaddedData(1.5)],
    ['enin', () => rpi(nodeSuite, tek, -1)],
    ['enin', () => isIntervalOfKey(2 ** 32, 0, 144)],
    ['rollingStartIntervalNumber', () => rollingEndIntervalNumber(-144, 144)],
    ['rollingStartIntervalNumber', () => rpisForTek(nodeSuite, tek, 0.5, 144)],
    ['rollingPeriod', () => rpisForTek(nodeSuite, tek, 0, 0)],
    ['rollingPeriod', () => rpisForTek(nodeSuite, tek, 0, 145)],
    ['rollingPeriod', () => embargoEndSeconds(0, 2.5)],
    ['tek', () => rpik(nodeSuite, new Uint8Array(15))],
    ['tek', () => aemk(nodeSuite, new Uint8Array(32))],
    ['tek', () => rpisForTek(nodeSuite, new Uint8Array(0), 0, 144)],
    ['rpik', () => rpi(nodeSuite, new Uint8Array(32), 0)],
    ['rpik', () => rpisForRpik(nobleSuite, new Uint8Array(17), 0, 1)],
  ])('%s', (field, fn) => {
    expect(misuseField(fn)).toBe(field);
  });
});

describe('SPECS §1.3 properties (fast-check)', () => {
  it('rpisForTek equals rpi(RPIK, start + k) for every interval, under both suites', () => {
    fc.assert(
      fc.property(key16, range, (tek, { start, period }) => {
        for (const [, suite] of SUITES) {
          const key = rpik(suite, tek);
          const batch = rpisForTek(suite, tek, start, period).map(hex);
          if (batch.length !== period) return false;
          for (let k = 0; k < period; k++) if (batch[k] !== hex(rpi(suite, key, start + k))) return false;
        }
        return true;
      }),
      { numRuns: 60 },
    );
  });

  it('noble and node agree on RPIK, AEMK and the RPIs of random keys', () => {
    fc.assert(
      fc.property(key16, range, (tek, { start, period }) => {
        return (
          hex(rpik(nobleSuite, tek)) === hex(rpik(nodeSuite, tek)) &&
          hex(aemk(nobleSuite, tek)) === hex(aemk(nodeSuite, tek)) &&
          rpisForTek(nobleSuite, tek, start, period).map(hex).join() === rpisForTek(nodeSuite, tek, start, period).map(hex).join()
        );
      }),
      { numRuns: 200 },
    );
  });

  it("a partial key's RPIs are the matching slice of its full day's RPIs", () => {
    const arb = fc.record({ tek: key16, day: fc.integer({ min: 0, max: 2 ** 24 }), from: fc.nat(143), period: fc.integer({ min: 1, max: 144 }) });
    fc.assert(
      fc.property(arb, ({ tek, day, from, period }) => {
        const start = day * TEK_ROLLING_PERIOD;
        const len = Math.min(period, TEK_ROLLING_PERIOD - from);
        const full = rpisForTek(nodeSuite, tek, start, TEK_ROLLING_PERIOD).map(hex);
        return rpisForTek(nodeSuite, tek, start + from, len).map(hex).join() === full.slice(from, from + len).join();
      }),
      { numRuns: 200 },
    );
  });

  it('every Unix second falls in the interval whose start ≤ it < start + 600', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: EN_INTERVAL_NUMBER_MAX * 600, noNaN: true }), (t) => {
        const n = enIntervalNumber(t);
        const s = enIntervalStartSeconds(n);
        return s <= t && t < s + EN_INTERVAL_SECONDS && rollingStartIntervalNumber(n) % TEK_ROLLING_PERIOD === 0;
      }),
      { numRuns: 500 },
    );
  });
});
