/**
 * GF(2^8) arithmetic for DIMY's byte-wise Shamir sharing (SPECS §4.1 shares, protocol/dimy/shamir.ts).
 *
 * Field: GF(2)[x] / (x^8 + x^4 + x^3 + x + 1), i.e. the reduction polynomial 0x11b of AES
 * (FIPS-197 §4.2). A byte b7…b0 is the polynomial b7·x^7 + … + b0; addition (and subtraction)
 * is XOR. Why 0x11b: every irreducible degree-8 polynomial gives an isomorphic field, so the
 * choice changes no security property — only the share bytes. 0x11b is the field that FIPS-197
 * publishes worked examples for ({57}·{83} = {c1}, {57}·{13} = {fe}), and the one SLIP-0039
 * (Trezor's Shamir backup) shares over, so other implementers can check our arithmetic against
 * well-known references. SPECS §4 fixes no field (§7.18–21: nothing about
 * shares is specified beyond "Shamir k-out-of-n"); pycryptodome's GF(2^128) is a different field.
 *
 * Multiplication uses log/antilog tables over the generator 0x03 (0x02 does not generate the
 * multiplicative group mod 0x11b: its order is 51). Table lookups are not constant time; that
 * is acceptable here because every secret DIMY shares (an EphID, an X25519 *public* key) is
 * broadcast in shares anyway and public once reconstructed. Do not reuse this for secret keys.
 */
import { ensure } from '../errors.ts';

/** The AES reduction polynomial x^8 + x^4 + x^3 + x + 1. FIPS-197 §4.2; see the header. */
export const GF256_POLYNOMIAL = 0x11b;
/** Generator of the multiplicative group used for the tables (order 255). */
export const GF256_GENERATOR = 0x03;
/** Size of the multiplicative group, 2^8 − 1. */
const GROUP_ORDER = 255;

/** Carry-less multiply of two bytes, reduced mod 0x11b ("Russian peasant"): builds the tables. */
function slowMul(a: number, b: number): number {
  let product = 0;
  let x = a;
  let y = b;
  while (y !== 0) {
    if (y & 1) product ^= x;
    x <<= 1;
    if (x & 0x100) x ^= GF256_POLYNOMIAL;
    y >>>= 1;
  }
  return product;
}

/** EXP[i] = g^i for i in [0, 510): doubled so EXP[log a + log b] needs no `mod 255`. */
const EXP = new Uint8Array(2 * GROUP_ORDER);
/** LOG[a] = i with g^i = a, for a ≠ 0 (LOG[0] is unused). */
const LOG = new Uint8Array(256);
{
  let value = 1;
  for (let i = 0; i < GROUP_ORDER; i++) {
    EXP[i] = value;
    EXP[i + GROUP_ORDER] = value;
    LOG[value] = i;
    value = slowMul(value, GF256_GENERATOR);
  }
}

function checkElement(a: number, field: string): void {
  ensure(Number.isInteger(a) && a >= 0 && a <= 0xff, field, `must be a byte (integer in [0, 255]), got ${a}`);
}

/** a + b = a − b = a XOR b. */
export function gfAdd(a: number, b: number): number {
  return (a ^ b) & 0xff;
}

/** a · b in GF(2^8). Inner loops call it with bytes read from Uint8Arrays, so it does not re-check. */
export function gfMul(a: number, b: number): number {
  if (a === 0 || b === 0) return 0;
  return EXP[(LOG[a] ?? 0) + (LOG[b] ?? 0)] ?? 0;
}

/** The multiplicative inverse a^−1 (a ≠ 0: zero has none, MisuseError on `a`). */
export function gfInverse(a: number): number {
  checkElement(a, 'a');
  ensure(a !== 0, 'a', 'zero has no multiplicative inverse');
  return EXP[GROUP_ORDER - (LOG[a] ?? 0)] ?? 0;
}

/** a / b = a · b^−1 (b ≠ 0, MisuseError on `b`). */
export function gfDiv(a: number, b: number): number {
  checkElement(a, 'a');
  checkElement(b, 'b');
  ensure(b !== 0, 'b', 'division by zero');
  if (a === 0) return 0;
  return EXP[(LOG[a] ?? 0) + GROUP_ORDER - (LOG[b] ?? 0)] ?? 0;
}

/** g^i for the table generator 0x03 (i taken mod 255). */
export function gfExp(i: number): number {
  ensure(Number.isInteger(i) && i >= 0, 'i', `must be a non-negative integer, got ${i}`);
  return EXP[i % GROUP_ORDER] ?? 0;
}

/** The bitwise reference multiplication the tables are built from (exported for tests and auditors). */
export function gfMulReference(a: number, b: number): number {
  checkElement(a, 'a');
  checkElement(b, 'b');
  return slowMul(a, b);
}
