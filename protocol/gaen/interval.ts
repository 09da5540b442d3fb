/**
 * GAEN time (SPECS §1.1, §1.2, §1.6; EN-internals @ aaada6ce `CRYPTO.md`,
 * `ContactTracingFeature`, `TemporaryExposureKeySupport`):
 *
 *   ENIntervalNumber(t)          floor(unix_seconds / 600)            10-minute windows, uint32
 *   rolling_start_interval_number  an ENIN; dayNumber · 144 for a full-day key
 *   rolling_period               1–144 intervals (default 144 = 24 h)
 *   rolling end (exclusive)      start + rolling_period
 *   embargo end                  (start + rolling_period + 12) · 600 s  (2 h clock drift)
 *
 * The ENIN goes on the air as LE32 inside the RPI's padded block (keys.ts),
 * so every interval a key covers must fit in a uint32: start + period − 1 ≤ 2^32 − 1.
 * Keys may be partial (SPECS §7.5: sample exports hold rolling_period 1 and
 * 114), so the start is *not* required to be a multiple of 144.
 * Time is an argument (DESIGN.md "Layers"); caller misuse throws MisuseError naming the field.
 */
import { ensure } from '../errors.ts';

/** Length of one ENIntervalNumber window, seconds (10 min). SPECS §1.1 (`idRollingPeriodMinutes() = 10`). */
export const EN_INTERVAL_SECONDS = 600;
/** Largest ENIntervalNumber: Apple's type is UInt32, and it is encoded LE32. SPECS §1.1. */
export const EN_INTERVAL_NUMBER_MAX = 0xffff_ffff;
/** TEKRollingPeriod, intervals per full-day key (24 h). SPECS §1.1 (`tkRollingPeriodMultipleOfIdRollingPeriod() = 144`). */
export const TEK_ROLLING_PERIOD = 144;
/** Shortest rolling_period a key may have, intervals. SPECS §1.7 (publish validation: interval count 1–144). */
export const TEK_MIN_ROLLING_PERIOD = 1;
/** Longest rolling_period a key may have, intervals (= TEK_ROLLING_PERIOD). SPECS §1.7. */
export const TEK_MAX_ROLLING_PERIOD = TEK_ROLLING_PERIOD;
/** Days keys and sightings are kept. SPECS §1.2 (`contactRecordDaysToKeep() = 14`). */
export const TEK_RETENTION_DAYS = 14;
/** Embargo after a key's rolling end against clock drift, intervals (2 h). SPECS §1.6 (`tkMatchingClockDriftRollingPeriods() = 12`). */
export const TEK_MATCHING_CLOCK_DRIFT_INTERVALS = 12;

/** Throw MisuseError(field) unless `enin` is an integer in [0, 2^32 − 1]. */
export function checkEnIntervalNumber(enin: number, field: string): void {
  ensure(
    Number.isInteger(enin) && enin >= 0 && enin <= EN_INTERVAL_NUMBER_MAX,
    field,
    `must be an ENIntervalNumber, an integer in [0, ${EN_INTERVAL_NUMBER_MAX}], got ${enin}`,
  );
}

/**
 * Throw MisuseError unless (start, period) is a key's interval range: start a
 * uint32, period an integer in [1, 144], and start + period − 1 still a uint32.
 */
export function checkRollingRange(rollingStartIntervalNumber: number, rollingPeriod: number): void {
  checkEnIntervalNumber(rollingStartIntervalNumber, 'rollingStartIntervalNumber');
  ensure(
    Number.isInteger(rollingPeriod) && rollingPeriod >= TEK_MIN_ROLLING_PERIOD && rollingPeriod <= TEK_MAX_ROLLING_PERIOD,
    'rollingPeriod',
    `must be an integer in [${TEK_MIN_ROLLING_PERIOD}, ${TEK_MAX_ROLLING_PERIOD}], got ${rollingPeriod}`,
  );
  ensure(
    rollingStartIntervalNumber + rollingPeriod - 1 <= EN_INTERVAL_NUMBER_MAX,
    'rollingPeriod',
    `start ${rollingStartIntervalNumber} + period ${rollingPeriod} runs past ENIntervalNumber ${EN_INTERVAL_NUMBER_MAX}`,
  );
}

/**
 * ENIntervalNumber(t) = floor(unixSeconds / 600). SPECS §1.1. Fractional
 * seconds are allowed (floored); negative, non-finite or post-2^32-interval
 * times (after about year 83 600) are misuse.
 */
export function enIntervalNumber(unixSeconds: number): number {
  ensure(Number.isFinite(unixSeconds) && unixSeconds >= 0, 'unixSeconds', `must be a finite number ≥ 0, got ${unixSeconds}`);
  const enin = Math.floor(unixSeconds / EN_INTERVAL_SECONDS);
  ensure(enin <= EN_INTERVAL_NUMBER_MAX, 'unixSeconds', `ENIntervalNumber ${enin} exceeds ${EN_INTERVAL_NUMBER_MAX}`);
  return enin;
}

/** First Unix second of interval `enin` (enin · 600). SPECS §1.1. */
export function enIntervalStartSeconds(enin: number): number {
  checkEnIntervalNumber(enin, 'enin');
  return enin * EN_INTERVAL_SECONDS;
}

/**
 * rolling_start_interval_number of the full-day key covering `enin`: the
 * largest multiple of 144 ≤ enin (`getRollingStartIntervalNumber(dayNumber) = dayNumber · 144`). SPECS §1.2.
 */
export function rollingStartIntervalNumber(enin: number): number {
  checkEnIntervalNumber(enin, 'enin');
  return enin - (enin % TEK_ROLLING_PERIOD);
}

/** Rolling end, exclusive: start + rolling_period (`getRollingEndIntervalNumber`). SPECS §1.2. */
export function rollingEndIntervalNumber(rollingStartIntervalNumber: number, rollingPeriod: number): number {
  checkRollingRange(rollingStartIntervalNumber, rollingPeriod);
  return rollingStartIntervalNumber + rollingPeriod;
}

/** Whether a key with this range broadcast during interval `enin` (start ≤ enin < end). SPECS §1.2, §1.6. */
export function isIntervalOfKey(enin: number, rollingStartIntervalNumber: number, rollingPeriod: number): boolean {
  checkEnIntervalNumber(enin, 'enin');
  const end = rollingEndIntervalNumber(rollingStartIntervalNumber, rollingPeriod);
  return enin >= rollingStartIntervalNumber && enin < end;
}

/**
 * Unix second from which a published key may be used for matching:
 * (start + period + 12) · 600 (`getEmbargoEndTimeInMillis`, "to protect against clock drift"). SPECS §1.6.
 */
export function embargoEndSeconds(rollingStartIntervalNumber: number, rollingPeriod: number): number {
  const end = rollingEndIntervalNumber(rollingStartIntervalNumber, rollingPeriod);
  return (end + TEK_MATCHING_CLOCK_DRIFT_INTERVALS) * EN_INTERVAL_SECONDS;
}
