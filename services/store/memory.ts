/**
 * In-memory Store (DESIGN.md "Storage") for tests and fast simulations: same
 * contract as SqliteStore (test/contract/store.contract.ts), nothing durable.
 */
import type { Store, StoredRecord } from '../../actors/ports.ts';
import { StoreClosedError, checkBytes, checkName, checkReadRange, checkSeq, compareCodePoints, settle } from './common.ts';

/**
 * One stream: `records[i]` has seq `base + i + 1`; the live records are
 * `records[head..]`, the slots before `head` were truncated (emptied, so the
 * bytes can be collected). The last seq ever assigned is `base + records.length`,
 * which keeps numbering going after a truncate.
 */
interface Log {
  records: (Uint8Array | undefined)[];
  base: number;
  head: number;
}

/**
 * Every operation takes effect synchronously, in call order, so a read issued
 * right after an un-awaited write sees it (as SqliteStore does). Bytes are
 * copied in and out: callers may reuse their buffers. Appends are amortised
 * O(1), a truncate is amortised O(records it forgets): the emptied prefix is
 * dropped (copying the rest) once it is at least half of the array.
 */
export class MemoryStore implements Store {
  private readonly streams = new Map<string, Log>();
  private readonly kv = new Map<string, Uint8Array>();
  private closed = false;

  append(stream: string, record: Uint8Array): Promise<number> {
    return settle(() => {
      this.ensureOpen('append');
      checkName(stream, 'stream');
      checkBytes(record, 'record');
      let log = this.streams.get(stream);
      if (log === undefined) {
        log = { records: [], base: 0, head: 0 };
        this.streams.set(stream, log);
      }
      log.records.push(new Uint8Array(record));
      return log.base + log.records.length;
    });
  }

  read(stream: string, afterSeq?: number, limit?: number): Promise<readonly StoredRecord[]> {
    return settle(() => {
      this.ensureOpen('read');
      checkName(stream, 'stream');
      const range = checkReadRange(afterSeq, limit);
      const log = this.streams.get(stream);
      if (log === undefined) return [];
      const { records, base } = log;
      const start = Math.max(log.head, range.afterSeq - base);
      const end = range.limit === undefined ? records.length : Math.min(records.length, start + range.limit);
      const out: StoredRecord[] = [];
      for (let i = start; i < end; i++) {
        const record = records[i];
        if (record !== undefined) out.push({ seq: base + i + 1, record: new Uint8Array(record) });
      }
      return out;
    });
  }

  truncate(stream: string, throughSeq: number): Promise<void> {
    return settle(() => {
      this.ensureOpen('truncate');
      checkName(stream, 'stream');
      checkSeq(throughSeq, 'throughSeq');
      const log = this.streams.get(stream);
      if (log === undefined) return;
      const cut = Math.min(log.records.length, throughSeq - log.base);
      if (cut <= log.head) return;
      log.records.fill(undefined, log.head, cut);
      log.head = cut;
      if (2 * log.head >= log.records.length) {
        log.records = log.records.slice(log.head);
        log.base += log.head;
        log.head = 0;
      }
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
