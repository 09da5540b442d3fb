/**
 * In-memory Store (DESIGN.md "Storage") for tests and fast simulations: same
 * contract as SqliteStore (test/contract/store.contract.ts), nothing durable.
 */
import type { Store, StoredRecord } from '../../actors/ports.ts';
import { StoreClosedError, checkBytes, checkName, checkReadRange, compareCodePoints, settle } from './common.ts';

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
