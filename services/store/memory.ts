/**
 * In-memory Store (DESIGN.md "Storage") for tests and fast simulations: same
 * contract as SqliteStore (test/contract/store.contract.ts), nothing durable.
 *
 * This module also holds what every Store adapter shares — argument checks,
 * key ordering and the closed-store error — so that SqliteStore (and a later
 * PostgreSQL store) reject misuse with exactly the same errors.
 */
import type { Store, StoredRecord } from '../../actors/ports.ts';
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

/** Check read()'s optional arguments; returns them with defaults applied. */
export function checkReadRange(afterSeq: unknown, limit: unknown): { afterSeq: number; limit: number | undefined } {
  const after = afterSeq ?? 0;
  if (typeof after !== 'number' || !Number.isSafeInteger(after) || after < 0) {
    throw new MisuseError('afterSeq', 'must be a non-negative integer');
  }
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

/**
 * Every operation takes effect synchronously, in call order, so a read issued
 * right after an un-awaited write sees it (as SqliteStore does). Bytes are
 * copied in and out: callers may reuse their buffers.
 */
export class MemoryStore implements Store {
  private readonly streams = new Map<string, Uint8Array[]>();
  private readonly kv = new Map<string, Uint8Array>();
  private closed = false;

  append(stream: string, record: Uint8Array): Promise<number> {
    return settle(() => {
      this.ensureOpen('append');
      checkName(stream, 'stream');
      checkBytes(record, 'record');
      let log = this.streams.get(stream);
      if (log === undefined) {
        log = [];
        this.streams.set(stream, log);
      }
      log.push(new Uint8Array(record));
      return log.length;
    });
  }

  read(stream: string, afterSeq?: number, limit?: number): Promise<readonly StoredRecord[]> {
    return settle(() => {
      this.ensureOpen('read');
      checkName(stream, 'stream');
      const range = checkReadRange(afterSeq, limit);
      const log = this.streams.get(stream) ?? [];
      const end = range.limit === undefined ? log.length : Math.min(log.length, range.afterSeq + range.limit);
      const out: StoredRecord[] = [];
      for (let i = range.afterSeq; i < end; i++) {
        const record = log[i];
        if (record !== undefined) out.push({ seq: i + 1, record: new Uint8Array(record) });
      }
      return out;
    });
  }

  put(key: string, value: Uint8Array): Promise<void> {
    return settle(() => {
      this.ensureOpen('put');
      checkName(key, 'key');
      checkBytes(value, 'value');
      this.kv.set(key, new Uint8Array(value));
    });
  }

  get(key: string): Promise<Uint8Array | undefined> {
    return settle(() => {
      this.ensureOpen('get');
      checkName(key, 'key');
      const value = this.kv.get(key);
      return value === undefined ? undefined : new Uint8Array(value);
    });
  }

  delete(key: string): Promise<void> {
    return settle(() => {
      this.ensureOpen('delete');
      checkName(key, 'key');
      this.kv.delete(key);
    });
  }

  keys(prefix: string): Promise<readonly string[]> {
    return settle(() => {
      this.ensureOpen('keys');
      checkName(prefix, 'prefix', true);
      return [...this.kv.keys()].filter((k) => k.startsWith(prefix)).sort(compareCodePoints);
    });
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  private ensureOpen(operation: string): void {
    if (this.closed) throw new StoreClosedError(operation);
  }
}
