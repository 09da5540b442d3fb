/**
 * TCN contact-log codec (protocol/tcn/contact-log.ts, format v1): byte layout, round trip, every
 * rejection reason on hand-made bytes, the entry bound, caller misuse, and fast-check properties —
 * encode → decode is the identity, and random bytes (fully random, or with a valid header) only
 * ever give an accepted log or a typed rejection, never a throw.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Verdict } from '../../protocol/errors.ts';
import {
  decodeTcnContactLog,
  encodeTcnContactLog,
  TCN_CONTACT_LOG_CODEC,
  TCN_CONTACT_LOG_ENTRY_BYTES,
  TCN_CONTACT_LOG_HEADER_BYTES,
  TCN_CONTACT_LOG_MAX_ENTRIES,
  TCN_CONTACT_LOG_REJECTION_REASONS,
  tcnContactMinute,
  type TcnContact,
} from '../../protocol/tcn/contact-log.ts';
import { misuseField } from '../support/misuse.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const reasonOf = (v: Verdict<unknown>): string => (v.ok ? 'accepted' : v.reason);
const REASONS: ReadonlySet<string> = new Set(TCN_CONTACT_LOG_REJECTION_REASONS);
const contactArb = fc.record({
  tcn: fc.uint8Array({ minLength: 16, maxLength: 16 }),
  atMinute: fc.nat({ max: 0xffff_ffff }),
  rssiDbm: fc.integer({ min: -128, max: 127 }),
});
const plain = (cs: readonly TcnContact[]): unknown[] => cs.map((c) => ({ tcn: hex(c.tcn), atMinute: c.atMinute, rssiDbm: c.rssiDbm }));

describe('TCN contact log v1', () => {
  it('layout: version, LE u32 count, then tcn ‖ LE u32 minute ‖ int8 rssi per entry', () => {
    const tcn = Uint8Array.from({ length: 16 }, (_, i) => i);
    const bytes = encodeTcnContactLog([{ tcn, atMinute: 0x0102_0304, rssiDbm: -60 }]);
    expect(hex(bytes)).toBe(`0101000000${hex(tcn)}04030201c4`);
    expect(TCN_CONTACT_LOG_ENTRY_BYTES).toBe(21);
    expect(hex(encodeTcnContactLog([]))).toBe('0100000000');
  });

  it('minute buckets: ⌊ms / 60 000⌋', () => {
    expect(tcnContactMinute(0)).toBe(0);
    expect(tcnContactMinute(59_999)).toBe(0);
    expect(tcnContactMinute(1_587_772_800_000)).toBe(26_462_880);
  });

  it('rejections, in order', () => {
    const good = encodeTcnContactLog([{ tcn: new Uint8Array(16), atMinute: 1, rssiDbm: 0 }]);
    const cases: [Uint8Array, string, string | undefined][] = [
      [new Uint8Array(0), 'too-short', undefined],
      [Uint8Array.of(1, 0, 0, 0), 'too-short', undefined],
      [Uint8Array.of(2, 0, 0, 0, 0), 'bad-version', 'version'],
      [Uint8Array.of(0, 0, 0, 0, 0), 'bad-version', 'version'],
      [Uint8Array.of(1, 0xff, 0xff, 0xff, 0xff), 'too-many', 'count'],
      [good.subarray(0, good.length - 1), 'bad-length', 'count'],
      [Uint8Array.of(...good, 0), 'bad-length', 'count'],
      [Uint8Array.of(1, 2, 0, 0, 0, ...good.subarray(5)), 'bad-length', 'count'],
    ];
    for (const [bytes, reason, field] of cases) {
      const v = decodeTcnContactLog(bytes);
      expect(v.ok).toBe(false);
      if (v.ok) continue;
      expect([v.codec, v.reason, v.field]).toEqual([TCN_CONTACT_LOG_CODEC, reason, field]);
    }
  });

  it('the entry bound: default 131 072, lower when configured', () => {
    expect(TCN_CONTACT_LOG_MAX_ENTRIES).toBe(131_072);
    const three = encodeTcnContactLog(Array.from({ length: 3 }, () => ({ tcn: new Uint8Array(16), atMinute: 0, rssiDbm: 0 })));
    expect(reasonOf(decodeTcnContactLog(three, { maxEntries: 2 }))).toBe('too-many');
    expect(reasonOf(decodeTcnContactLog(three, { maxEntries: 3 }))).toBe('accepted');
    const header = Uint8Array.of(1, 0x01, 0x00, 0x02, 0x00); // 131 073 entries claimed
    expect(reasonOf(decodeTcnContactLog(header))).toBe('too-many');
  });

  it('decoded TCNs do not alias the input', () => {
    const bytes = encodeTcnContactLog([{ tcn: new Uint8Array(16).fill(9), atMinute: 5, rssiDbm: -1 }]);
    const v = decodeTcnContactLog(bytes);
    bytes.fill(0);
    if (!v.ok) throw new Error(v.reason);
    expect(v.value[0]!.tcn[0]).toBe(9);
  });

  it('fast-check: decode(encode(log)) = log', () => {
    fc.assert(
      fc.property(fc.array(contactArb, { maxLength: 50 }), (log) => {
        const v = decodeTcnContactLog(encodeTcnContactLog(log));
        if (!v.ok) throw new Error(v.reason);
        expect(plain(v.value)).toEqual(plain(log));
      }),
      { numRuns: 300 },
    );
  });

  it('fast-check: random bytes only give typed rejections (or a well-formed log)', () => {
    const check = (bytes: Uint8Array): void => {
      const v = decodeTcnContactLog(bytes);
      if (v.ok) {
        expect(bytes.length).toBe(TCN_CONTACT_LOG_HEADER_BYTES + v.value.length * TCN_CONTACT_LOG_ENTRY_BYTES);
        expect(hex(encodeTcnContactLog(v.value))).toBe(hex(bytes));
      } else {
        expect(v.codec).toBe(TCN_CONTACT_LOG_CODEC);
        expect(REASONS.has(v.reason)).toBe(true);
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), check), { numRuns: 3000 });
    // With a valid version byte and a small count, so the length check and the entries are reached.
    const headed = fc.tuple(fc.nat({ max: 6 }), fc.uint8Array({ maxLength: 130 })).map(([count, rest]) => Uint8Array.of(1, count, 0, 0, 0, ...rest));
    fc.assert(fc.property(headed, check), { numRuns: 3000 });
  });

  it.each([
    ['contacts[0].tcn', () => encodeTcnContactLog([{ tcn: new Uint8Array(15), atMinute: 0, rssiDbm: 0 }])],
    ['contacts[1].atMinute', () => encodeTcnContactLog([{ tcn: new Uint8Array(16), atMinute: 0, rssiDbm: 0 }, { tcn: new Uint8Array(16), atMinute: 2 ** 32, rssiDbm: 0 }])],
    ['contacts[0].rssiDbm', () => encodeTcnContactLog([{ tcn: new Uint8Array(16), atMinute: 0, rssiDbm: 128 }])],
    ['contacts', () => encodeTcnContactLog([{ tcn: new Uint8Array(16), atMinute: 0, rssiDbm: 0 }], { maxEntries: 0 })],
    ['options.maxEntries', () => decodeTcnContactLog(new Uint8Array(5), { maxEntries: -1 })],
    ['bytes', () => decodeTcnContactLog([1, 0, 0, 0, 0] as unknown as Uint8Array)],
    ['ms', () => tcnContactMinute(-1)],
  ])('misuse: %s', (field, fn) => {
    expect(misuseField(fn)).toBe(field);
  });
});
