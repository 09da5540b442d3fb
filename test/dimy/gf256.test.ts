/**
 * SPECS §4.1 shares: the GF(2^8) field under DIMY's Shamir sharing (protocol/dimy/gf256.ts, AES
 * polynomial 0x11b). Exhaustive checks: the table multiplication equals the bitwise reference on
 * all 65,536 pairs, every non-zero element has a two-sided inverse, 0x03 generates the group;
 * FIPS-197 §4.2 worked examples; fast-check for associativity and distributivity.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GF256_GENERATOR, GF256_POLYNOMIAL, gfAdd, gfDiv, gfExp, gfInverse, gfMul, gfMulReference } from '../../protocol/dimy/gf256.ts';
import { misuseField } from '../support/misuse.ts';

const byte = fc.integer({ min: 0, max: 255 });
const nonZero = fc.integer({ min: 1, max: 255 });

describe('SPECS §4.1 shares: GF(2^8) mod x^8 + x^4 + x^3 + x + 1', () => {
  it('uses the AES polynomial 0x11b and generator 0x03', () => {
    expect(GF256_POLYNOMIAL).toBe(0x11b);
    expect(GF256_GENERATOR).toBe(0x03);
  });

  it('FIPS-197 §4.2 examples: {57}·{83} = {c1}, {57}·{13} = {fe}; {53}^−1 = {ca}', () => {
    expect(gfMul(0x57, 0x83)).toBe(0xc1);
    expect(gfMul(0x57, 0x13)).toBe(0xfe);
    expect(gfInverse(0x53)).toBe(0xca);
    expect(gfMulReference(0x57, 0x83)).toBe(0xc1);
  });

  it('table multiplication equals the bitwise reference on all 65,536 pairs, and commutes', () => {
    for (let a = 0; a < 256; a++) {
      for (let b = 0; b < 256; b++) {
        const p = gfMul(a, b);
        if (p !== gfMulReference(a, b) || p !== gfMul(b, a)) throw new Error(`${a}·${b}`);
      }
    }
  });

  it('inverse table: a · a^−1 = a^−1 · a = 1 for all 255 non-zero a, and inversion is a bijection', () => {
    const inverses = new Set<number>();
    for (let a = 1; a < 256; a++) {
      const inv = gfInverse(a);
      expect(gfMulReference(a, inv)).toBe(1);
      expect(gfMul(inv, a)).toBe(1);
      expect(gfInverse(inv)).toBe(a);
      inverses.add(inv);
    }
    expect(inverses.size).toBe(255);
    expect(inverses.has(0)).toBe(false);
  });

  it('identities: 0 is additive, 1 multiplicative; a + a = 0; a · 0 = 0', () => {
    for (let a = 0; a < 256; a++) {
      expect(gfAdd(a, 0)).toBe(a);
      expect(gfAdd(a, a)).toBe(0);
      expect(gfMul(a, 1)).toBe(a);
      expect(gfMul(a, 0)).toBe(0);
    }
  });

  it('0x03 generates all 255 non-zero elements; 0x02 has order 51 (why it is not the generator)', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 255; i++) seen.add(gfExp(i));
    expect(seen.size).toBe(255);
    expect(gfExp(255)).toBe(1);
    let x = 0x02;
    let order = 1;
    while (x !== 1) {
      x = gfMul(x, 0x02);
      order++;
    }
    expect(order).toBe(51);
  });

  it('associativity and distributivity (fast-check)', () => {
    fc.assert(
      fc.property(byte, byte, byte, (a, b, c) => {
        expect(gfMul(gfMul(a, b), c)).toBe(gfMul(a, gfMul(b, c)));
        expect(gfMul(a, gfAdd(b, c))).toBe(gfAdd(gfMul(a, b), gfMul(a, c)));
        expect(gfAdd(gfAdd(a, b), c)).toBe(gfAdd(a, gfAdd(b, c)));
      }),
      { numRuns: 20_000 },
    );
  });

  it('division inverts multiplication (fast-check)', () => {
    fc.assert(
      fc.property(byte, nonZero, (a, b) => {
        expect(gfDiv(gfMul(a, b), b)).toBe(a);
        expect(gfMul(gfDiv(a, b), b)).toBe(a);
      }),
      { numRuns: 5_000 },
    );
  });

  it.each([
    ['a', () => gfInverse(0)],
    ['a', () => gfInverse(256)],
    ['b', () => gfDiv(1, 0)],
    ['a', () => gfDiv(1.5, 1)],
    ['b', () => gfMulReference(1, -1)],
    ['i', () => gfExp(-1)],
  ])('caller misuse names the field: %s', (field, fn) => {
    expect(misuseField(fn)).toBe(field);
  });
});
