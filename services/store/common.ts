/**
 * What every Store adapter shares — argument checks, key ordering and the
 * closed-store error — so MemoryStore, SqliteStore (and a later PostgreSQL
 * store) reject misuse with exactly the same errors.
 */
import { MisuseError } from '../../protocol/errors.ts';

/** Longest stream name or key, in UTF-16 code units. */
export const MAX_NAME_LENGTH = 256;

/** Raised (as a rejection) by every operation on a store after close(). */
export class StoreClosedError extends Error {
  override readonly name = 'StoreClosedError';
  constructor(operation: string) {
    super(`store is closed: ${operation}() after close()`);
  }
}

// A lone surrogate cannot be encoded as UTF-8 (SQLite would store U+FFFD and the
// key would not round-trip), and PostgreSQL TEXT cannot hold NUL at all.
// eslint-disable-next-line no-control-regex
const UNPORTABLE = /[\u0000\p{Cs}]/u;

/** Check a stream name, key or key prefix; `allowEmpty` only for prefixes. */
export function checkName(value: unknown, field: string, allowEmpty = false): asserts value is string {
  if (typeof value !== 'string') throw new MisuseError(field, `must be a string, got ${typeof value}`);
  if (!allowEmpty && value.length === 0) throw new MisuseError(field, 'must not be empty');
  if (value.length > MAX_NAME_LENGTH) throw new MisuseError(field, `must be at most ${MAX_NAME_LENGTH} characters, got ${value.length}`);
  if (UNPORTABLE.test(value)) throw new MisuseError(field, 'must not contain NUL or unpaired surrogates');
}

export function checkBytes(value: unknown, field: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw new MisuseError(field, 'must be a Uint8Array');
}

/** Check a stream position (read's afterSeq, truncate's throughSeq): a non-negative safe integer. */
export function checkSeq(value: unknown, field: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new MisuseError(field, 'must be a non-negative integer');
  }
}

/** Check read()'s optional arguments; returns them with defaults applied. */
export function checkReadRange(afterSeq: unknown, limit: unknown): { afterSeq: number; limit: number | undefined } {
  const after = afterSeq ?? 0;
  checkSeq(after, 'afterSeq');
  if (limit !== undefined && (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 0)) {
    throw new MisuseError('limit', 'must be a non-negative integer');
  }
  return { afterSeq: after, limit };
}

/**
 * Order keys by Unicode code point. That is UTF-8 byte order, which is what
 * SQLite's BINARY collation and PostgreSQL's `COLLATE "C"` sort by; JS's
 * default sort uses UTF-16 code units and disagrees above U+FFFF.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i) ?? 0;
    const y = b.codePointAt(i) ?? 0;
    if (x !== y) return x - y;
    if (x > 0xffff) i++; // skip the low surrogate of a pair both strings share
  }
  return a.length - b.length;
}

/** Run `fn` and turn its result or exception into a promise (misuse → rejection). */
export function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (error) {
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }
}
