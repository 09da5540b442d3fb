/**
 * TCN keys (SPECS §3): the u16 ratchet boundary (typed `exhausted`, never a throw), the report
 * boundary at index 65535, caller misuse (MisuseError naming the field), and fast-check properties
 * that both suites agree and that tcnsFromReport equals the ratchet's own TCNs.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nobleSuite } from '../../protocol/crypto/noble.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import { H_TCK_DOMAIN, H_TCN_DOMAIN, hTck, hTcn, initialTck, ratchetTck, TCN_MAX_INDEX, tckAt, tckZero, tcnOf, tcnRvk, type TemporaryContactKey } from '../../protocol/tcn/keys.ts';
import { createTcnReport, TCN_MEMO_TYPES, tcnsFromReport, verifyTcnReport } from '../../protocol/tcn/report.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { misuseField } from '../support/misuse.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const SUITES: readonly (readonly [string, CryptoSuite])[] = [
  ['noble', nobleSuite],
  ['node', nodeSuite],
];
const key32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
const EMPTY_MEMO = { type: TCN_MEMO_TYPES.coEpiV1, data: new Uint8Array(0) };

/** tcn_from..tcn_to by ratcheting tck_1 step by step (the phone's broadcast sequence). */
function broadcastTcns(suite: CryptoSuite, rak: Uint8Array, from: number, to: number): string[] {
  const out: string[] = [];
  let tck: TemporaryContactKey = initialTck(suite, rak);
  for (;;) {
    if (tck.index >= from) out.push(hex(tcnOf(suite, tck)));
    if (tck.index === to) return out;
    const next = ratchetTck(suite, tck);
    if (!next.ok) throw new Error('exhausted');
    tck = next.tck;
  }
}

describe('SPECS §3 hash domains', () => {
  it('H_TCK and H_TCN are the 5 ASCII bytes of their names', () => {
    expect(Buffer.from(H_TCK_DOMAIN).toString('latin1')).toBe('H_TCK');
    expect(Buffer.from(H_TCN_DOMAIN).toString('latin1')).toBe('H_TCN');
  });

  it.each(SUITES)('H_tck is 32 bytes of SHA-256, H_tcn its first 16 bytes, over distinct domains (%s)', (_n, suite) => {
    const x = Uint8Array.of(1, 2, 3);
    expect(hex(hTck(suite, x))).toBe(hex(suite.sha256(Uint8Array.from([...Buffer.from('H_TCK'), 1, 2, 3]))));
    expect(hex(hTcn(suite, x))).toBe(hex(suite.sha256(Uint8Array.from([...Buffer.from('H_TCN'), 1, 2, 3])).subarray(0, 16)));
  });
});

describe('SPECS §3 tck ratchet', () => {
  const rvk = new Uint8Array(32).fill(7);
  const bytes = new Uint8Array(32).fill(9);

  it.each(SUITES)('ratchets 65534 → 65535, then returns exhausted instead of throwing (%s)', (_n, suite) => {
    const last = ratchetTck(suite, { index: TCN_MAX_INDEX - 1, rvk, bytes });
    expect(last.ok && last.tck.index).toBe(TCN_MAX_INDEX);
    if (!last.ok) return;
    expect(tcnOf(suite, last.tck)).toHaveLength(16);
    expect(ratchetTck(suite, last.tck)).toEqual({ ok: false, reason: 'exhausted', index: 65535 });
  });

  it('tck_i binds rvk for i ≥ 1: the same tck under another rvk ratchets elsewhere', () => {
    const a = ratchetTck(nodeSuite, { index: 4, rvk, bytes });
    const b = ratchetTck(nodeSuite, { index: 4, rvk: new Uint8Array(32).fill(8), bytes });
    expect(a.ok && b.ok && hex(a.tck.bytes) !== hex(b.tck.bytes)).toBe(true);
  });

  it('the report boundary: j1 = j2 = 65535 discloses tck_65534 and regenerates exactly tcn_65535', () => {
    const rak = new Uint8Array(32).fill(0x42);
    const tck65535 = tckAt(nodeSuite, rak, TCN_MAX_INDEX);
    const signed = createTcnReport(nodeSuite, rak, TCN_MAX_INDEX, TCN_MAX_INDEX, EMPTY_MEMO, tckAt(nodeSuite, rak, 65_000));
    const v = verifyTcnReport(nodeSuite, signed);
    if (!v.ok) throw new Error(v.reason);
    expect(tcnsFromReport(nodeSuite, v.value).map(hex)).toEqual([hex(tcnOf(nodeSuite, tck65535))]);
    // A report from j1 = 1 runs the whole ratchet without passing 65535.
    const all = verifyTcnReport(nodeSuite, createTcnReport(nodeSuite, rak, 1, TCN_MAX_INDEX, EMPTY_MEMO));
    if (!all.ok) throw new Error(all.reason);
    const tcns = tcnsFromReport(nodeSuite, all.value);
    expect(tcns).toHaveLength(TCN_MAX_INDEX);
    expect(hex(tcns.at(-1)!)).toBe(hex(tcnOf(nodeSuite, tck65535)));
  });

  it('j1 = 1 discloses tck_0, and createTcnReport coerces j1 = 0 to 1 like the reference', () => {
    const rak = new Uint8Array(32).fill(0x11);
    const one = createTcnReport(nodeSuite, rak, 1, 3, EMPTY_MEMO);
    expect(hex(createTcnReport(nodeSuite, rak, 0, 3, EMPTY_MEMO))).toBe(hex(one));
    const v = verifyTcnReport(nodeSuite, one);
    if (!v.ok) throw new Error(v.reason);
    expect(v.value.j1).toBe(1);
    expect(hex(v.value.tckBytes)).toBe(hex(tckZero(nodeSuite, rak).bytes));
    expect(tcnsFromReport(nodeSuite, v.value).map(hex)).toEqual(broadcastTcns(nodeSuite, rak, 1, 3));
  });
});

describe('SPECS §3 keys: caller misuse throws MisuseError naming the field', () => {
  const rak = new Uint8Array(32).fill(3);
  const tck: TemporaryContactKey = { index: 1, rvk: new Uint8Array(32), bytes: new Uint8Array(32) };
  it.each([
    ['rak', () => tcnRvk(nodeSuite, new Uint8Array(31))],
    ['rak', () => tckZero(nodeSuite, new Uint8Array(33))],
    ['tck.bytes', () => ratchetTck(nodeSuite, { ...tck, bytes: new Uint8Array(16) })],
    ['tck.rvk', () => ratchetTck(nodeSuite, { ...tck, rvk: new Uint8Array(0) })],
    ['tck.index', () => ratchetTck(nodeSuite, { ...tck, index: 65_536 })],
    ['tck.index', () => ratchetTck(nodeSuite, { ...tck, index: -1 })],
    ['tck.index', () => tcnOf(nodeSuite, { ...tck, index: 0 })],
    ['tck.index', () => tcnOf(nodeSuite, { ...tck, index: 1.5 })],
    ['index', () => tckAt(nodeSuite, rak, 65_536)],
    ['from.index', () => tckAt(nodeSuite, rak, 2, { ...tck, index: 3 })],
    ['from.rvk', () => tckAt(nodeSuite, rak, 2, tck)],
  ])('%s', (field, fn) => {
    expect(misuseField(fn)).toBe(field);
  });
});

describe('SPECS §3 properties (fast-check)', () => {
  it('tcnsFromReport equals the TCNs the ratchet broadcast, under both suites', () => {
    const arb = fc.record({ rak: key32, j1: fc.integer({ min: 0, max: 40 }), span: fc.integer({ min: 0, max: 40 }) });
    fc.assert(
      fc.property(arb, ({ rak, j1, span }) => {
        const first = Math.max(j1, 1);
        const expected = broadcastTcns(nodeSuite, rak, first, first + span);
        for (const [, suite] of SUITES) {
          const v = verifyTcnReport(suite, createTcnReport(suite, rak, j1, first + span, EMPTY_MEMO));
          if (!v.ok) return false;
          if (tcnsFromReport(suite, v.value).map(hex).join() !== expected.join()) return false;
        }
        return true;
      }),
      { numRuns: 100 },
    );
  });

  it('noble and node agree on rvk, tck and tcn for random keys', () => {
    const arb = fc.record({ rak: key32, rvk: key32, bytes: key32, index: fc.integer({ min: 1, max: TCN_MAX_INDEX }) });
    fc.assert(
      fc.property(arb, ({ rak, rvk, bytes, index }) => {
        const t = { index, rvk, bytes };
        const [a, b] = [ratchetTck(nobleSuite, t), ratchetTck(nodeSuite, t)];
        return (
          hex(tcnRvk(nobleSuite, rak)) === hex(tcnRvk(nodeSuite, rak)) &&
          hex(tcnOf(nobleSuite, t)) === hex(tcnOf(nodeSuite, t)) &&
          a.ok === b.ok &&
          (!a.ok || !b.ok || hex(a.tck.bytes) === hex(b.tck.bytes))
        );
      }),
      { numRuns: 300 },
    );
  });
});
