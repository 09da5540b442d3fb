/**
 * RSSI → distance (protocol/tcn/distance.ts): d = 10^((TxPower − RSSI) / (10·n)) with the stated
 * defaults (−59 dBm at 1 m, n = 2), its inverse, the radio duty-cycle constants, agreement
 * with the simulated air's path loss, and caller misuse (MisuseError naming the field).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  estimateDistanceM,
  expectedRssiDbm,
  TCN_ADVERTISE_INTERVAL_MS,
  TCN_DEFAULT_PATH_LOSS_EXPONENT,
  TCN_DEFAULT_TX_POWER_DBM,
  TCN_SCAN_PERIOD_MS,
  TCN_SCAN_WINDOW_MS,
} from '../../protocol/tcn/distance.ts';
import { misuseField } from '../support/misuse.ts';

describe('distance from RSSI', () => {
  it('defaults: −59 dBm at 1 m, n = 2 (free space); 20 dB more loss is 10× the distance', () => {
    expect(TCN_DEFAULT_TX_POWER_DBM).toBe(-59);
    expect(TCN_DEFAULT_PATH_LOSS_EXPONENT).toBe(2);
    expect(estimateDistanceM(-59)).toBe(1);
    expect(estimateDistanceM(-79)).toBeCloseTo(10, 10);
    expect(estimateDistanceM(-65)).toBeCloseTo(1.9953, 4);
    expect(estimateDistanceM(-39)).toBeCloseTo(0.1, 10);
  });

  it('TxPower and n are configurable', () => {
    expect(estimateDistanceM(-70, { txPowerDbm: -70 })).toBe(1);
    expect(estimateDistanceM(-89, { pathLossExponent: 3 })).toBeCloseTo(10, 10);
    expect(estimateDistanceM(-79, { txPowerDbm: -49, pathLossExponent: 3 })).toBeCloseTo(10, 10);
  });

  it('fast-check: expectedRssiDbm is the inverse of estimateDistanceM', () => {
    fc.assert(
      fc.property(fc.double({ min: 0.01, max: 200, noNaN: true }), fc.integer({ min: -100, max: -30 }), fc.double({ min: 1, max: 5, noNaN: true }), (d, tx, n) => {
        const options = { txPowerDbm: tx, pathLossExponent: n };
        expect(estimateDistanceM(expectedRssiDbm(d, options), options)).toBeCloseTo(d, 6);
      }),
    );
  });

  it('inverts the simulated air model RSSI = TxPower − 10·n·log10(d) (DESIGN.md "Radio")', () => {
    for (const d of [0.5, 1, 2, 5, 20]) expect(estimateDistanceM(-59 - 20 * Math.log10(d))).toBeCloseTo(d, 10);
  });

  it('radio duty cycle: advertise ~1 Hz, scan 1 s per minute', () => {
    expect([TCN_ADVERTISE_INTERVAL_MS, TCN_SCAN_WINDOW_MS, TCN_SCAN_PERIOD_MS]).toEqual([1000, 1000, 60_000]);
  });

  it.each([
    ['rssiDbm', () => estimateDistanceM(Number.NaN)],
    ['rssiDbm', () => estimateDistanceM(Number.NEGATIVE_INFINITY)],
    ['options.txPowerDbm', () => estimateDistanceM(-60, { txPowerDbm: Number.POSITIVE_INFINITY })],
    ['options.pathLossExponent', () => estimateDistanceM(-60, { pathLossExponent: 0 })],
    ['options.pathLossExponent', () => estimateDistanceM(-60, { pathLossExponent: -2 })],
    ['options.pathLossExponent', () => estimateDistanceM(-60, { pathLossExponent: Number.NaN })],
    ['distanceM', () => expectedRssiDbm(0)],
    ['options.pathLossExponent', () => expectedRssiDbm(1, { pathLossExponent: 0 })],
  ])('misuse: %s', (field, fn) => {
    expect(misuseField(fn)).toBe(field);
  });
});
