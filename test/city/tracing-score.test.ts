import { describe, expect, it } from 'vitest';
import type { Exposure } from '../../services/city/tracing/ground-truth.ts';
import type { Positive } from '../../services/city/tracing/model.ts';
import { percentile, scoreNotifications } from '../../services/city/tracing/score.ts';

const H = 3_600_000;
const T0 = Date.UTC(2026, 0, 1);

const positives: Positive[] = [
  { phoneId: 'p1', diagnosedAt: T0 + 50 * H, infectiousFrom: T0 },
  { phoneId: 'p2', diagnosedAt: T0 + 80 * H, infectiousFrom: T0 + 24 * H },
];
const exposure = (positive: string): Exposure => ({ positive, day: 0, durationMs: 20 * 60_000, firstAt: T0, lastAt: T0 + H });

describe('notification scoring', () => {
  it('counts each phone once: TP, FP, FN, precision and recall', () => {
    const expected = new Map([
      ['x', [exposure('p1')]],
      ['y', [exposure('p2')]],
      ['w', [exposure('p1'), exposure('p2')]],
    ]);
    const score = scoreNotifications(
      expected,
      [
        { phoneId: 'x', at: T0 + 52 * H },
        { phoneId: 'x', at: T0 + 60 * H }, // a second notification changes nothing
        { phoneId: 'w', at: T0 + 56 * H },
        { phoneId: 'z', at: T0 + 70 * H },
      ],
      positives,
    );
    expect(score).toMatchObject({ truePositives: 2, falsePositives: 1, falseNegatives: 1, precision: 2 / 3, recall: 2 / 3 });
    expect(score.falsePositivePhones).toEqual(['z']);
    expect(score.falseNegativePhones).toEqual(['y']);
    // x: 52 − 50 = 2 h; w: earliest relevant diagnosis is p1's → 6 h.
    expect(score.timeToNotification).toEqual({ medianH: 4, p90H: 5.6, count: 2 });
  });

  it('reports null, not NaN, when nobody was notified or expected', () => {
    const empty = scoreNotifications(new Map(), [], positives);
    expect(empty).toMatchObject({ truePositives: 0, falsePositives: 0, falseNegatives: 0, precision: null, recall: null });
    expect(empty.timeToNotification).toEqual({ medianH: null, p90H: null, count: 0 });
    const missedAll = scoreNotifications(new Map([['x', [exposure('p1')]]]), [], positives);
    expect(missedAll).toMatchObject({ falseNegatives: 1, precision: null, recall: 0 });
    const onlyFalse = scoreNotifications(new Map(), [{ phoneId: 'z', at: T0 }], positives);
    expect(onlyFalse).toMatchObject({ falsePositives: 1, precision: 0, recall: null });
  });

  it('times only notifications after the diagnosis that name no positive or a relevant one', () => {
    const expected = new Map([['x', [exposure('p2')]]]);
    const score = scoreNotifications(
      expected,
      [
        { phoneId: 'x', at: T0 + 60 * H }, // before p2's diagnosis (about someone else)
        { phoneId: 'x', at: T0 + 81 * H, positive: 'p1' }, // names a positive x never met
        { phoneId: 'x', at: T0 + 83 * H, positive: 'p2' },
      ],
      positives,
    );
    expect(score.truePositives).toBe(1);
    expect(score.timeToNotification).toEqual({ medianH: 3, p90H: 3, count: 1 });
    // Still a true positive without a timely notification, but not timed.
    const untimed = scoreNotifications(expected, [{ phoneId: 'x', at: T0 + 60 * H }], positives);
    expect(untimed).toMatchObject({ truePositives: 1, timeToNotification: { medianH: null, p90H: null, count: 0 } });
  });

  it('interpolates percentiles between ranks', () => {
    expect(percentile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(percentile([1, 2, 3, 4], 0.9)).toBeCloseTo(3.7, 10);
    expect(percentile([7], 0.9)).toBe(7);
    expect(percentile([], 0.5)).toBeNull();
  });
});
