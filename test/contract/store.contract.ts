/**
 * The Store contract (actors/ports.ts) every adapter must pass: call
 * `storeContract(name, open)` from a test file. `open` returns a fresh, empty
 * store; with `reopen`, the store is also checked for durability across close.
 */
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Store, StoredRecord } from '../../actors/ports.ts';
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

    describe('truncate', () => {
      const text = (r: StoredRecord): string => new TextDecoder().decode(r.record);

      it('forgets exactly the records with seq ≤ throughSeq, in that stream only', async () => {
        for (let i = 1; i <= 10; i++) await store.append('t', bytes(`t${i}`));
        for (let i = 1; i <= 5; i++) await store.append('u', bytes(`u${i}`));
        await store.truncate('t', 4);
        const left = await store.read('t');
        expect(left.map((r) => r.seq)).toEqual([5, 6, 7, 8, 9, 10]);
        expect(left.map(text)).toEqual(['t5', 't6', 't7', 't8', 't9', 't10']);
        expect((await store.read('u')).map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
        // Already forgotten, nothing, or a stream never written: no-ops.
        await store.truncate('t', 2);
        await store.truncate('t', 4);
        await store.truncate('t', 0);
        await store.truncate('never-written', 7);
        expect((await store.read('t')).map((r) => r.seq)).toEqual([5, 6, 7, 8, 9, 10]);
        expect(await store.read('never-written')).toEqual([]);
        expect(await store.append('never-written', bytes('x'))).toBe(1); // truncating it reserved no seqs
        await store.truncate('t', 9);
        expect((await store.read('t')).map(text)).toEqual(['t10']);
      });

      it('read after a truncate returns only the remaining records, whatever afterSeq', async () => {
        for (let i = 1; i <= 10; i++) await store.append('r', bytes(`r${i}`));
        await store.truncate('r', 4);
        expect((await store.read('r', 0)).map((r) => r.seq)).toEqual([5, 6, 7, 8, 9, 10]);
        expect((await store.read('r', 2)).map((r) => r.seq)).toEqual([5, 6, 7, 8, 9, 10]);
        expect((await store.read('r', 4)).map((r) => r.seq)).toEqual([5, 6, 7, 8, 9, 10]);
        expect((await store.read('r', 7)).map((r) => r.seq)).toEqual([8, 9, 10]);
        // limit counts returned records, not forgotten ones.
        expect((await store.read('r', 0, 2)).map((r) => r.seq)).toEqual([5, 6]);
        expect((await store.read('r', 3, 2)).map((r) => r.seq)).toEqual([5, 6]);
        expect((await store.read('r', 0, 2)).map(text)).toEqual(['r5', 'r6']);
        expect(await store.read('r', 10)).toEqual([]);
      });

      it('numbering continues after every record was forgotten (throughSeq at or past the last seq)', async () => {
        for (let i = 1; i <= 3; i++) await store.append('all', bytes(`a${i}`));
        await store.truncate('all', 3);
        expect(await store.read('all')).toEqual([]);
        expect(await store.append('all', bytes('a4'))).toBe(4);
        await store.truncate('all', 1_000_000);
        expect(await store.read('all')).toEqual([]);
        expect(await store.read('all', 2)).toEqual([]);
        // Past the end forgets what exists, not records appended later.
        expect(await store.append('all', bytes('a5'))).toBe(5);
        expect((await store.read('all')).map((r) => [r.seq, text(r)])).toEqual([[5, 'a5']]);
        await store.truncate('all', Number.MAX_SAFE_INTEGER);
        expect(await store.append('all', bytes('a6'))).toBe(6);
      });

      it('takes effect in call order with un-awaited appends issued before and after it', async () => {
        const before = Array.from({ length: 5 }, (_, i) => store.append('o', bytes(`o${i + 1}`)));
        const cut = store.truncate('o', 3);
        const after = Array.from({ length: 3 }, (_, i) => store.append('o', bytes(`o${i + 6}`)));
        const seen = store.read('o');
        const whole = store.truncate('o', 8);
        const next = store.append('o', bytes('o9'));
        const last = store.read('o');
        expect(await Promise.all(before)).toEqual([1, 2, 3, 4, 5]);
        await cut;
        expect(await Promise.all(after)).toEqual([6, 7, 8]);
        expect((await seen).map(text)).toEqual(['o4', 'o5', 'o6', 'o7', 'o8']);
        await whole;
        expect(await next).toBe(9);
        expect((await last).map((r) => [r.seq, text(r)])).toEqual([[9, 'o9']]);
      });

      it('a snapshot put issued after the truncate cannot land without it (call order across streams and keys)', async () => {
        await Promise.all([store.append('j', bytes('e1')), store.append('j', bytes('e2'))]);
        const writes = [store.truncate('j', 1), store.put('snap', bytes('through 1')), store.append('j', bytes('e3'))];
        const log = store.read('j');
        const snap = store.get('snap');
        await Promise.all(writes);
        expect((await log).map((r) => r.seq)).toEqual([2, 3]);
        expect(await snap).toEqual(bytes('through 1'));
      });

      it('matches a model under random appends, truncations and reads, issued un-awaited', async () => {
        let run = 0;
        const op = fc.oneof(
          fc.record({ kind: fc.constant('append' as const), size: fc.nat(40) }),
          fc.record({ kind: fc.constant('truncate' as const), back: fc.integer({ min: -3, max: 12 }) }),
          fc.record({ kind: fc.constant('read' as const), after: fc.nat(30), limit: fc.option(fc.nat(8), { nil: undefined }) }),
        );
        await fc.assert(
          fc.asyncProperty(fc.array(op, { maxLength: 60 }), async (ops) => {
            const stream = `model-${run++}`;
            let last = 0;
            const model = new Map<number, string>(); // seq → payload of the records not forgotten
            // All issued at once (one group commit per read on SQLite): call order must decide.
            const checks: Promise<void>[] = [];
            for (const o of ops) {
              if (o.kind === 'append') {
                const payload = 'x'.repeat(o.size) + String(last + 1);
                const seq = ++last;
                model.set(seq, payload);
                checks.push(store.append(stream, bytes(payload)).then((got) => void expect(got).toBe(seq)));
              } else if (o.kind === 'truncate') {
                const through = Math.max(0, last - o.back);
                for (const seq of [...model.keys()]) if (seq <= through) model.delete(seq);
                checks.push(store.truncate(stream, through));
              } else {
                const expected = [...model.entries()].filter(([seq]) => seq > o.after).slice(0, o.limit);
                checks.push(store.read(stream, o.after, o.limit).then((got) => void expect(got.map((r) => [r.seq, text(r)])).toEqual(expected)));
              }
            }
            await Promise.all(checks);
            expect((await store.read(stream)).map((r) => [r.seq, text(r)])).toEqual([...model.entries()]);
          }),
          { numRuns: 60 },
        );
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
        ['empty stream (truncate)', (s) => s.truncate('', 1), 'stream'],
        ['non-string stream (truncate)', (s) => s.truncate(null as unknown as string, 1), 'stream'],
        ['negative throughSeq', (s) => s.truncate('s', -1), 'throughSeq'],
        ['fractional throughSeq', (s) => s.truncate('s', 2.5), 'throughSeq'],
        ['NaN throughSeq', (s) => s.truncate('s', Number.NaN), 'throughSeq'],
        ['unsafe throughSeq', (s) => s.truncate('s', 2 ** 53), 'throughSeq'],
        ['missing throughSeq', (s) => s.truncate('s', undefined as unknown as number), 'throughSeq'],
        ['string throughSeq', (s) => s.truncate('s', '3' as unknown as number), 'throughSeq'],
      ];
      it.each(cases)('%s rejects with MisuseError naming the field', async (_label, call, field) => {
        const p = call(store);
        await expect(p).rejects.toBeInstanceOf(MisuseError);
        await expect(p).rejects.toMatchObject({ field });
      });

      it('a misused truncate forgets nothing', async () => {
        await store.append('kept', bytes('x'));
        await expect(store.truncate('kept', -1)).rejects.toBeInstanceOf(MisuseError);
        expect((await store.read('kept')).map((r) => r.seq)).toEqual([1]);
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
          () => store.truncate('s', 1),
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

      it('acknowledges a truncate issued just before close', async () => {
        const appends = Array.from({ length: 5 }, (_, i) => store.append('late', bytes(`${i}`)));
        const cut = store.truncate('late', 3);
        await store.close();
        expect(await Promise.all(appends)).toEqual([1, 2, 3, 4, 5]);
        await expect(cut).resolves.toBeUndefined();
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

      it('keeps truncations and the continued numbering across reopen', async () => {
        if (fx.reopen === undefined) throw new Error(`${name} is declared durable but its fixture has no reopen()`);
        for (let i = 1; i <= 10; i++) await store.append('part', bytes(`p${i}`));
        for (let i = 1; i <= 5; i++) await store.append('whole', bytes(`w${i}`));
        for (let i = 1; i <= 4; i++) await store.append('late', bytes(`l${i}`));
        await store.truncate('part', 4);
        await store.truncate('whole', 99);
        const late = store.truncate('late', 4); // not awaited before close
        await store.close();
        await late;

        const again = await fx.reopen();
        expect((await again.read('part')).map((r) => r.seq)).toEqual([5, 6, 7, 8, 9, 10]);
        expect((await again.read('part', 0, 1))[0]?.record).toEqual(bytes('p5'));
        expect(await again.read('whole')).toEqual([]);
        expect(await again.read('late')).toEqual([]);
        expect(await again.append('part', bytes('p11'))).toBe(11);
        expect(await again.append('whole', bytes('w6'))).toBe(6);
        expect(await again.append('late', bytes('l5'))).toBe(5);

        // Truncating everything again after the reopen still remembers the numbering.
        await again.truncate('whole', 6);
        await again.close();
        const third = await fx.reopen();
        expect(await third.append('whole', bytes('w7'))).toBe(7);
        expect((await third.read('whole')).map((r) => r.seq)).toEqual([7]);
        await third.close();
      });
    });
  });
}
