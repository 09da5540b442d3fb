/**
 * The Store contract (actors/ports.ts) every adapter must pass: call
 * `storeContract(name, open)` from a test file. `open` returns a fresh, empty
 * store; with `reopen`, the store is also checked for durability across close.
 */
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Store } from '../../actors/ports.ts';
import { MisuseError } from '../../protocol/errors.ts';
import { StoreClosedError } from '../../services/store/common.ts';

export interface StoreFixture {
  readonly store: Store;
  /** Open the same storage again (call after store.close()). */
  readonly reopen?: () => Promise<Store>;
  /** Close everything opened and delete files. */
  teardown(): Promise<void>;
}

const enc = new TextEncoder();
const bytes = (s: string): Uint8Array => enc.encode(s);

/** `durable`: the adapter keeps data across close/reopen (its fixture must provide `reopen`). */
export function storeContract(name: string, open: () => Promise<StoreFixture>, options: { readonly durable: boolean }): void {
  describe(`Store contract: ${name}`, () => {
    let fx: StoreFixture;
    let store: Store;
    beforeEach(async () => {
      fx = await open();
      store = fx.store;
    });
    afterEach(async () => {
      await fx.teardown();
    });

    describe('append/read', () => {
      it('numbers each stream 1, 2, 3… independently', async () => {
        expect(await store.append('a', bytes('a1'))).toBe(1);
        expect(await store.append('a', bytes('a2'))).toBe(2);
        expect(await store.append('b', bytes('b1'))).toBe(1);
        expect(await store.append('a', bytes('a3'))).toBe(3);
        expect(await store.append('b', bytes('b2'))).toBe(2);
        const a = await store.read('a');
        expect(a.map((r) => r.seq)).toEqual([1, 2, 3]);
        expect(a.map((r) => new TextDecoder().decode(r.record))).toEqual(['a1', 'a2', 'a3']);
        expect((await store.read('b')).map((r) => r.seq)).toEqual([1, 2]);
      });

      it('reads after a seq, at most limit records', async () => {
        for (let i = 1; i <= 10; i++) await store.append('s', bytes(`r${i}`));
        expect((await store.read('s', 3, 4)).map((r) => r.seq)).toEqual([4, 5, 6, 7]);
        expect((await store.read('s', 8)).map((r) => r.seq)).toEqual([9, 10]);
        expect((await store.read('s', 8, 100)).map((r) => r.seq)).toEqual([9, 10]);
        expect(await store.read('s', 10)).toEqual([]);
        expect(await store.read('s', 0, 0)).toEqual([]);
        expect(await store.read('never-written')).toEqual([]);
      });

      it('keeps records byte-identical (0..64 KiB)', async () => {
        await fc.assert(
          fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 64 * 1024, size: 'max' }), async (record) => {
            const seq = await store.append('bytes', record);
            const [got] = await store.read('bytes', seq - 1, 1);
            expect(got?.seq).toBe(seq);
            expect(Array.from(got?.record ?? [])).toEqual(Array.from(record));
            expect(got?.record).toBeInstanceOf(Uint8Array);
          }),
          { numRuns: 40 },
        );
      });

      it('copies bytes in and out (callers may reuse buffers)', async () => {
        const buf = bytes('original');
        const pending = store.append('copy', buf);
        buf.fill(0); // mutate before the append is acknowledged
        await pending;
        const [first] = await store.read('copy');
        expect(new TextDecoder().decode(first!.record)).toBe('original');
        first!.record.fill(0);
        const [again] = await store.read('copy');
        expect(new TextDecoder().decode(again!.record)).toBe('original');
      });

      it('gives 1,000 concurrent appends unique consecutive seqs in call order', async () => {
        await store.append('c', bytes('before'));
        const calls = Array.from({ length: 1000 }, (_, i) => store.append(i % 3 === 0 ? 'other' : 'c', bytes(`#${i}`)));
        const seqs = await Promise.all(calls);
        const inC = seqs.filter((_, i) => i % 3 !== 0);
        const inOther = seqs.filter((_, i) => i % 3 === 0);
        expect(inC).toEqual(Array.from({ length: inC.length }, (_, i) => i + 2));
        expect(inOther).toEqual(Array.from({ length: inOther.length }, (_, i) => i + 1));
        const stored = await store.read('c');
        expect(stored.map((r) => new TextDecoder().decode(r.record))).toEqual([
          'before',
          ...Array.from({ length: 1000 }, (_, i) => i).filter((i) => i % 3 !== 0).map((i) => `#${i}`),
        ]);
      });
    });

    describe('key/value', () => {
      it('puts, gets, overwrites and deletes', async () => {
        expect(await store.get('k')).toBeUndefined();
        await store.put('k', bytes('v1'));
        expect(await store.get('k')).toEqual(bytes('v1'));
        await store.put('k', bytes('v2'));
        expect(await store.get('k')).toEqual(bytes('v2'));
        await store.put('empty', new Uint8Array(0));
        expect((await store.get('empty'))?.length).toBe(0);
        await store.delete('k');
        expect(await store.get('k')).toBeUndefined();
        await store.delete('k'); // deleting a missing key is fine
      });

      it('lists keys by prefix, sorted by code point', async () => {
        for (const k of ['a/2', 'b/1', 'a/1', 'a', 'ab', 'z', 'é', '\u{1F600}', '\uFFFD']) await store.put(k, bytes(k));
        expect(await store.keys('a')).toEqual(['a', 'a/1', 'a/2', 'ab']);
        expect(await store.keys('a/')).toEqual(['a/1', 'a/2']);
        expect(await store.keys('nope')).toEqual([]);
        // Code-point (UTF-8 byte) order: U+FFFD before U+1F600, unlike JS's default sort.
        expect(await store.keys('')).toEqual(['a', 'a/1', 'a/2', 'ab', 'b/1', 'z', 'é', '\uFFFD', '\u{1F600}']);
        await store.append('a-stream', bytes('x'));
        expect(await store.keys('a-')).toEqual([]); // streams are not keys
      });

      it('handles prefixes ending in the highest code points', async () => {
        for (const k of ['\u{10FFFF}', '\u{10FFFF}a', 'x\uD7FF', 'x\uD7FFy', 'x\uE000']) await store.put(k, bytes(k));
        expect(await store.keys('\u{10FFFF}')).toEqual(['\u{10FFFF}', '\u{10FFFF}a']);
        expect(await store.keys('x\uD7FF')).toEqual(['x\uD7FF', 'x\uD7FFy']);
      });

      it('applies operations in call order, even un-awaited', async () => {
        const writes = [store.put('order', bytes('1')), store.append('log', bytes('x')), store.put('order', bytes('2'))];
        const read = store.get('order');
        const log = store.read('log');
        await Promise.all(writes);
        expect(await read).toEqual(bytes('2'));
        expect((await log).length).toBe(1);
      });
    });

    describe('misuse', () => {
      const long = 'x'.repeat(257);
      const cases: [string, (s: Store) => Promise<unknown>, string][] = [
        ['empty stream', (s) => s.append('', bytes('x')), 'stream'],
        ['long stream', (s) => s.append(long, bytes('x')), 'stream'],
        ['non-string stream', (s) => s.append(42 as unknown as string, bytes('x')), 'stream'],
        ['NUL in stream', (s) => s.append('a\u0000b', bytes('x')), 'stream'],
        ['lone surrogate key', (s) => s.put('a\uD800', bytes('x')), 'key'],
        ['string record', (s) => s.append('s', 'x' as unknown as Uint8Array), 'record'],
        ['array record', (s) => s.append('s', [1, 2] as unknown as Uint8Array), 'record'],
        ['empty key (put)', (s) => s.put('', bytes('x')), 'key'],
        ['long key (get)', (s) => s.get(long), 'key'],
        ['empty key (delete)', (s) => s.delete(''), 'key'],
        ['value not bytes', (s) => s.put('k', null as unknown as Uint8Array), 'value'],
        ['negative afterSeq', (s) => s.read('s', -1), 'afterSeq'],
        ['fractional afterSeq', (s) => s.read('s', 1.5), 'afterSeq'],
        ['negative limit', (s) => s.read('s', 0, -1), 'limit'],
        ['read empty stream', (s) => s.read(''), 'stream'],
        ['long prefix', (s) => s.keys(long), 'prefix'],
      ];
      it.each(cases)('%s rejects with MisuseError naming the field', async (_label, call, field) => {
        const p = call(store);
        await expect(p).rejects.toBeInstanceOf(MisuseError);
        await expect(p).rejects.toMatchObject({ field });
      });

      it('accepts names of exactly 256 characters', async () => {
        const name = 'n'.repeat(256);
        expect(await store.append(name, bytes('x'))).toBe(1);
        await store.put(name, bytes('y'));
        expect(await store.keys('n')).toEqual([name]);
      });
    });

    describe('close', () => {
      it('is idempotent and rejects every operation afterwards', async () => {
        await Promise.all([store.close(), store.close()]);
        await store.close();
        const ops: (() => Promise<unknown>)[] = [
          () => store.append('s', bytes('x')),
          () => store.read('s'),
          () => store.put('k', bytes('x')),
          () => store.get('k'),
          () => store.delete('k'),
          () => store.keys(''),
        ];
        for (const op of ops) await expect(op()).rejects.toBeInstanceOf(StoreClosedError);
      });

      it('acknowledges appends issued just before close', async () => {
        const pending = Array.from({ length: 20 }, (_, i) => store.append('late', bytes(`${i}`)));
        await store.close();
        expect(await Promise.all(pending)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      });
    });

    // Registered only for durable adapters: an in-memory store has nothing to reopen.
    if (options.durable) describe('durability across reopen', () => {
      it('keeps everything acknowledged before close', async () => {
        if (fx.reopen === undefined) throw new Error(`${name} is declared durable but its fixture has no reopen()`);
        const records = Array.from({ length: 300 }, (_, i) => bytes(`record ${i} `.repeat(i % 7)));
        const acked = await Promise.all(records.map((r, i) => store.append(`s${i % 3}`, r)));
        await store.put('snap', bytes('snapshot'));
        await store.put('gone', bytes('x'));
        await store.delete('gone');
        const late = store.append('s0', bytes('late')); // not awaited before close
        await store.close();
        const lateSeq = await late;

        const again = await fx.reopen();
        for (let s = 0; s < 3; s++) {
          const got = await again.read(`s${s}`);
          const expected = records.map((r, i) => ({ r, i })).filter(({ i }) => i % 3 === s);
          expect(got.slice(0, expected.length).map((g) => g.seq)).toEqual(expected.map(({ i }) => acked[i]));
          expect(got.slice(0, expected.length).map((g) => Array.from(g.record))).toEqual(expected.map(({ r }) => Array.from(r)));
        }
        const [lateRecord] = await again.read('s0', lateSeq - 1);
        expect(lateRecord?.record).toEqual(bytes('late'));
        expect(await again.get('snap')).toEqual(bytes('snapshot'));
        expect(await again.get('gone')).toBeUndefined();
        // Numbering continues where it stopped.
        expect(await again.append('s1', bytes('next'))).toBe(101);
        await again.close();
      });
    });
  });
}
