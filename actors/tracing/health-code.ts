/**
 * The phone's health code (issue 5, GAEN): green — no relevant exposure;
 * yellow — an exposure below the high-risk threshold, or awaiting a test;
 * red — tested positive, or a high-risk exposure. Every change is logged
 * with its time and reason. Venues may check the code at entry
 * (`venueAdmits`).
 *
 * Rules (pure; the phone machine feeds them its events):
 *   exposure low   green → yellow ('exposure-low')             stays yellow/red otherwise
 *   exposure high  green/yellow → red ('exposure-high')
 *   awaiting test  green → yellow ('awaiting-test')
 *   positive       any → red ('positive'), and it stays red (a positive does not expire here)
 *   negative test  yellow/red from an exposure or a pending test → green ('negative-test')
 *   expiry         an exposure-driven yellow/red returns to green `exposureHoldDays` after the
 *                  latest exposure's contact day ('expired'): the quarantine a code stands for ends
 * Repeated events that change nothing are not logged. The log is bounded
 * (oldest entries dropped, counted) so a flood of events cannot grow it.
 */
import type { SimMillis } from '../ports.ts';

export const HEALTH_COLORS = ['green', 'yellow', 'red'] as const;
export type HealthColor = (typeof HEALTH_COLORS)[number];

export type HealthReason = 'initial' | 'exposure-low' | 'exposure-high' | 'awaiting-test' | 'positive' | 'negative-test' | 'expired';

export interface HealthChange {
  readonly at: SimMillis;
  readonly from: HealthColor;
  readonly to: HealthColor;
  readonly reason: HealthReason;
}

export interface HealthCode {
  readonly color: HealthColor;
  readonly reason: HealthReason;
  readonly since: SimMillis;
  /** End of an exposure-driven yellow/red (ms), null otherwise. */
  readonly holdUntil: SimMillis | null;
  readonly log: readonly HealthChange[];
  /** Log entries dropped to keep the log bounded. */
  readonly logDropped: number;
}

export interface HealthPolicy {
  /** Days after the latest exposure's contact day an exposure-driven code lasts (default 14, the GAEN retention). */
  readonly exposureHoldDays: number;
  /** Most log entries kept (default 256). */
  readonly maxLog: number;
}

export const DEFAULT_HEALTH_POLICY: HealthPolicy = Object.freeze({ exposureHoldDays: 14, maxLog: 256 });

export type HealthEvent =
  | { readonly kind: 'exposure'; readonly risk: 'low' | 'high'; readonly contactAt: SimMillis }
  | { readonly kind: 'awaiting-test' }
  | { readonly kind: 'positive' }
  | { readonly kind: 'negative-test' }
  | { readonly kind: 'tick' };

const DAY_MS = 86_400_000;

export function initialHealthCode(at: SimMillis): HealthCode {
  return { color: 'green', reason: 'initial', since: at, holdUntil: null, log: [], logDropped: 0 };
}

/** Move to `to` (logged), or — same colour — only move the hold. */
function change(code: HealthCode, to: HealthColor, reason: HealthReason, at: SimMillis, holdUntil: SimMillis | null, policy: HealthPolicy): HealthCode {
  if (code.color === to) return code.holdUntil === holdUntil ? code : { ...code, holdUntil };
  const log = [...code.log, { at, from: code.color, to, reason }];
  const over = Math.max(0, log.length - policy.maxLog);
  return { color: to, reason, since: at, holdUntil, log: over > 0 ? log.slice(over) : log, logDropped: code.logDropped + over };
}

/** The code after `event` at `at`. */
export function applyHealthEvent(code: HealthCode, event: HealthEvent, at: SimMillis, policy: HealthPolicy = DEFAULT_HEALTH_POLICY): HealthCode {
  const positive = code.color === 'red' && code.reason === 'positive';
  switch (event.kind) {
    case 'positive':
      return change(code, 'red', 'positive', at, null, policy);
    case 'exposure': {
      if (positive) return code;
      const hold = (Math.floor(event.contactAt / DAY_MS) + 1 + policy.exposureHoldDays) * DAY_MS;
      const holdUntil = Math.max(hold, code.holdUntil ?? 0);
      if (event.risk === 'high') return change(code, 'red', 'exposure-high', at, holdUntil, policy);
      return change(code, code.color === 'green' ? 'yellow' : code.color, 'exposure-low', at, holdUntil, policy);
    }
    case 'awaiting-test':
      return code.color === 'green' ? change(code, 'yellow', 'awaiting-test', at, null, policy) : code;
    case 'negative-test':
      return positive || code.color === 'green' ? code : change(code, 'green', 'negative-test', at, null, policy);
    case 'tick':
      return !positive && code.holdUntil !== null && at >= code.holdUntil ? change(code, 'green', 'expired', at, null, policy) : code;
  }
}

/** Colours a venue lets in (default: green only). */
export interface VenuePolicy {
  readonly admit: readonly HealthColor[];
}

export const DEFAULT_VENUE_POLICY: VenuePolicy = Object.freeze({ admit: Object.freeze(['green'] as const) });

export function venueAdmits(code: Pick<HealthCode, 'color'>, policy: VenuePolicy = DEFAULT_VENUE_POLICY): boolean {
  return policy.admit.includes(code.color);
}
