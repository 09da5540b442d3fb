/**
 * Scoring the app's exposure notifications against the ground truth, per
 * phone: a phone counts once, notified or not.
 *   - notified and expected      → true positive
 *   - notified, not expected     → false positive
 *   - expected, never notified   → false negative (by the end of the run)
 * Time to notification (true positives only): the first notification at or
 * after the diagnosis of the earliest-diagnosed positive the phone was
 * exposed to, minus that diagnosis time. A notification that names a
 * positive the phone was not exposed to does not count as the timely one.
 */
import type { Exposure } from './ground-truth.ts';
import { HOUR_MS, type Positive } from './model.ts';

export interface ObservedNotification {
  readonly phoneId: string;
  /** When the phone raised it, ms. */
  readonly at: number;
  /** The positive it is about, when the protocol can tell (GAEN cannot; the harness may). */
  readonly positive?: string;
}

export interface NotificationScore {
  readonly truePositives: number;
  readonly falsePositives: number;
  readonly falseNegatives: number;
  /** TP / (TP + FP); null when no phone was notified. */
  readonly precision: number | null;
  /** TP / (TP + FN); null when no phone was expected to be. */
  readonly recall: number | null;
  readonly timeToNotification: {
    /** Hours; null when count is 0. Percentiles interpolate linearly between ranks. */
    readonly medianH: number | null;
    readonly p90H: number | null;
    /** True positives with a timely notification. */
    readonly count: number;
  };
  /** Phone ids, sorted, for drilling into mistakes. */
  readonly falsePositivePhones: readonly string[];
  readonly falseNegativePhones: readonly string[];
}

export function scoreNotifications(
  expected: ReadonlyMap<string, readonly Exposure[]>,
  observed: readonly ObservedNotification[],
  positives: readonly Positive[],
): NotificationScore {
  const diagnosedAt = new Map(positives.map((p) => [p.phoneId, p.diagnosedAt]));
  const byPhone = new Map<string, ObservedNotification[]>();
  for (const n of observed) {
    let list = byPhone.get(n.phoneId);
    if (list === undefined) byPhone.set(n.phoneId, (list = []));
    list.push(n);
  }
  const expectedPhones = [...expected].filter(([, exposures]) => exposures.length > 0).map(([phoneId]) => phoneId);
  const expectedSet = new Set(expectedPhones);
  const falsePositivePhones = [...byPhone.keys()].filter((id) => !expectedSet.has(id)).sort();
  const falseNegativePhones = expectedPhones.filter((id) => !byPhone.has(id)).sort();
  const truePositives = expectedPhones.length - falseNegativePhones.length;
  const delaysH: number[] = [];
  for (const phoneId of expectedPhones) {
    const notifications = byPhone.get(phoneId);
    if (notifications === undefined) continue;
    const relevant = new Set((expected.get(phoneId) ?? []).map((e) => e.positive));
    const diagnoses = [...relevant].flatMap((p) => {
      const at = diagnosedAt.get(p);
      return at === undefined ? [] : [at];
    });
    if (diagnoses.length === 0) continue;
    const earliest = Math.min(...diagnoses);
    const timely = notifications.filter((n) => n.at >= earliest && (n.positive === undefined || relevant.has(n.positive)));
    if (timely.length === 0) continue;
    delaysH.push((Math.min(...timely.map((n) => n.at)) - earliest) / HOUR_MS);
  }
  delaysH.sort((x, y) => x - y);
  const notified = truePositives + falsePositivePhones.length;
  return {
    truePositives,
    falsePositives: falsePositivePhones.length,
    falseNegatives: falseNegativePhones.length,
    precision: notified === 0 ? null : truePositives / notified,
    recall: expectedPhones.length === 0 ? null : truePositives / expectedPhones.length,
    timeToNotification: { medianH: percentile(delaysH, 0.5), p90H: percentile(delaysH, 0.9), count: delaysH.length },
    falsePositivePhones,
    falseNegativePhones,
  };
}

/** Linear interpolation between closest ranks of sorted values; null for none. */
export function percentile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const rank = q * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const low = sorted[lo] ?? 0;
  const high = sorted[hi] ?? low;
  return low + (high - low) * (rank - lo);
}
