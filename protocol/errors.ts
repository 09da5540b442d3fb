/**
 * Two kinds of failure (DEVELOPERS.md style rule 3):
 * - a *caller* misusing an API (wrong length key, negative interval) throws a
 *   classed `MisuseError` naming the field — a bug to fix, not data to drop;
 * - *hostile or corrupt data* (bytes from the air, the broker, a file) never
 *   throws: decoders return a `Rejection` verdict that the actor counts and drops.
 */

export class MisuseError extends Error {
  override readonly name = 'MisuseError';
  constructor(
    /** The argument or field that was wrong, e.g. `key` or `options.intervalMs`. */
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/** Throw a MisuseError unless `condition` holds. */
export function ensure(condition: boolean, field: string, message: string): asserts condition {
  if (!condition) throw new MisuseError(field, message);
}

/** A typed verdict on hostile data: which decoder, why, and where. */
export interface Rejection {
  readonly ok: false;
  /** Decoder that rejected, e.g. `envelope`, `fragment`. */
  readonly codec: string;
  /** Machine-readable reason, e.g. `bad-version`, `field-type`, `too-long`. */
  readonly reason: string;
  /** Field path the reason refers to, when there is one. */
  readonly field?: string;
  /** Human-readable detail. */
  readonly detail: string;
}

export interface Accepted<T> {
  readonly ok: true;
  readonly value: T;
}

export type Verdict<T> = Accepted<T> | Rejection;

export function accept<T>(value: T): Accepted<T> {
  return { ok: true, value };
}

export function reject(codec: string, reason: string, detail: string, field?: string): Rejection {
  return field === undefined ? { ok: false, codec, reason, detail } : { ok: false, codec, reason, detail, field };
}
