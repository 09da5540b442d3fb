/**
 * MurmurHash3 (Austin Appleby, public domain; reference: aappleby/smhasher `src/MurmurHash3.cpp`),
 * pure TypeScript for DIMY's Bloom positions (protocol/dimy/bloom.ts, SPECS §4.1, §7.19).
 *
 * - murmur3X64_128: the x64 128-bit variant the paper's backend PoC hashes with (willf/bloom
 *   v2.0.3 → spaolacci/murmur3 `New128`, seed 0). Output as in the C reference: h1 then h2,
 *   each a little-endian uint64 (16 bytes). JavaScript has no uint64, so each 64-bit lane is a
 *   (hi, lo) pair of uint32 and the arithmetic is done mod 2^64 in 16/32-bit pieces.
 * - murmur3X86_32: the x86 32-bit variant (what `mmh3.hash` and most student DIMY code use,
 *   SPECS §4.3), kept for comparison profiles and because its published vectors are the most
 *   widely reproduced.
 * Both are checked against SMHasher's verification values (0xB0F57EE3, 0x6384BA69) and
 * published vectors in test/dimy/murmur3.test.ts. Not a cryptographic hash.
 */
import { ensure } from '../errors.ts';

/** Four 32-bit words of a 128-bit x64 hash: h1 = (h1Hi, h1Lo), h2 = (h2Hi, h2Lo). */
export interface Murmur128Words {
  readonly h1Hi: number;
  readonly h1Lo: number;
  readonly h2Hi: number;
  readonly h2Lo: number;
}

function checkInput(data: Uint8Array, seed: number): void {
  ensure(data instanceof Uint8Array, 'data', 'must be a Uint8Array');
  ensure(Number.isInteger(seed) && seed >= 0 && seed <= 0xffffffff, 'seed', `must be a uint32, got ${seed}`);
}

const le32 = (d: Uint8Array, at: number): number => ((d[at] ?? 0) | ((d[at + 1] ?? 0) << 8) | ((d[at + 2] ?? 0) << 16) | ((d[at + 3] ?? 0) << 24)) >>> 0;

/** MurmurHash3_x86_32 as an unsigned 32-bit integer. */
export function murmur3X86_32(data: Uint8Array, seed = 0): number {
  checkInput(data, seed);
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  const len = data.length;
  const blocksEnd = len - (len & 3);
  let h = seed | 0;
  for (let at = 0; at < blocksEnd; at += 4) {
    let k = Math.imul(le32(data, at), c1);
    k = Math.imul((k << 15) | (k >>> 17), c2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  for (let i = (len & 3) - 1; i >= 0; i--) k = (k << 8) | (data[blocksEnd + i] ?? 0);
  if ((len & 3) !== 0) {
    k = Math.imul(k, c1);
    h ^= Math.imul((k << 15) | (k >>> 17), c2);
  }
  h ^= len;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

// ---- uint64 as (hi, lo) uint32 pairs; results land in R_HI / R_LO to avoid allocation.
let R_HI = 0;
let R_LO = 0;

/** (aHi, aLo) · (bHi, bLo) mod 2^64. */
function mul64(aHi: number, aLo: number, bHi: number, bLo: number): void {
  const a0 = aLo & 0xffff;
  const a1 = aLo >>> 16;
  const b0 = bLo & 0xffff;
  const b1 = bLo >>> 16;
  const mid = a0 * b1 + a1 * b0; // < 2^33
  const low = a0 * b0 + (mid % 0x10000) * 0x10000; // < 2^33
  R_LO = low >>> 0;
  const carry = Math.floor(low / 0x100000000);
  R_HI = (a1 * b1 + Math.floor(mid / 0x10000) + carry + Math.imul(aHi, bLo) + Math.imul(aLo, bHi)) >>> 0;
}

/** (aHi, aLo) + (bHi, bLo) mod 2^64. */
function add64(aHi: number, aLo: number, bHi: number, bLo: number): void {
  const lo = aLo + bLo;
  R_LO = lo >>> 0;
  R_HI = (aHi + bHi + (lo > 0xffffffff ? 1 : 0)) >>> 0;
}

/** Rotate left by r, 0 < r < 64. */
function rotl64(hi: number, lo: number, r: number): void {
  if (r >= 32) {
    const t = hi;
    hi = lo;
    lo = t;
    r -= 32;
  }
  if (r === 0) {
    R_HI = hi >>> 0;
    R_LO = lo >>> 0;
    return;
  }
  R_HI = ((hi << r) | (lo >>> (32 - r))) >>> 0;
  R_LO = ((lo << r) | (hi >>> (32 - r))) >>> 0;
}

// c1 = 0x87c37b91114253d5, c2 = 0x4cf5ad432745937f (MurmurHash3.cpp).
const C1_HI = 0x87c37b91;
const C1_LO = 0x114253d5;
const C2_HI = 0x4cf5ad43;
const C2_LO = 0x2745937f;

/** fmix64: k ^= k >> 33; k *= 0xff51afd7ed558ccd; k ^= k >> 33; k *= 0xc4ceb9fe1a85ec53; k ^= k >> 33. */
function fmix64(hi: number, lo: number): void {
  lo = (lo ^ (hi >>> 1)) >>> 0;
  mul64(hi, lo, 0xff51afd7, 0xed558ccd);
  hi = R_HI;
  lo = (R_LO ^ (R_HI >>> 1)) >>> 0;
  mul64(hi, lo, 0xc4ceb9fe, 0x1a85ec53);
  R_LO = (R_LO ^ (R_HI >>> 1)) >>> 0;
}

/** k1 mix: k *= c1; k = rotl(k, 31); k *= c2 (result in R_HI/R_LO). */
function mixK1(hi: number, lo: number): void {
  mul64(hi, lo, C1_HI, C1_LO);
  rotl64(R_HI, R_LO, 31);
  mul64(R_HI, R_LO, C2_HI, C2_LO);
}

/** k2 mix: k *= c2; k = rotl(k, 33); k *= c1. */
function mixK2(hi: number, lo: number): void {
  mul64(hi, lo, C2_HI, C2_LO);
  rotl64(R_HI, R_LO, 33);
  mul64(R_HI, R_LO, C1_HI, C1_LO);
}

/** MurmurHash3_x64_128 as four uint32 words (h1, h2 as hi/lo halves). */
export function murmur3X64_128Words(data: Uint8Array, seed = 0): Murmur128Words {
  checkInput(data, seed);
  const len = data.length;
  const blocksEnd = len - (len & 15);
  let h1Hi = 0;
  let h1Lo = seed >>> 0;
  let h2Hi = 0;
  let h2Lo = seed >>> 0;
  for (let at = 0; at < blocksEnd; at += 16) {
    mixK1(le32(data, at + 4), le32(data, at));
    h1Hi = (h1Hi ^ R_HI) >>> 0;
    h1Lo = (h1Lo ^ R_LO) >>> 0;
    rotl64(h1Hi, h1Lo, 27);
    add64(R_HI, R_LO, h2Hi, h2Lo);
    mul64(R_HI, R_LO, 0, 5);
    add64(R_HI, R_LO, 0, 0x52dce729);
    h1Hi = R_HI;
    h1Lo = R_LO;
    mixK2(le32(data, at + 12), le32(data, at + 8));
    h2Hi = (h2Hi ^ R_HI) >>> 0;
    h2Lo = (h2Lo ^ R_LO) >>> 0;
    rotl64(h2Hi, h2Lo, 31);
    add64(R_HI, R_LO, h1Hi, h1Lo);
    mul64(R_HI, R_LO, 0, 5);
    add64(R_HI, R_LO, 0, 0x38495ab5);
    h2Hi = R_HI;
    h2Lo = R_LO;
  }
  const tail = len & 15;
  if (tail > 8) {
    const t = new Uint8Array(8);
    t.set(data.subarray(blocksEnd + 8, len));
    mixK2(le32(t, 4), le32(t, 0));
    h2Hi = (h2Hi ^ R_HI) >>> 0;
    h2Lo = (h2Lo ^ R_LO) >>> 0;
  }
  if (tail > 0) {
    const t = new Uint8Array(8);
    t.set(data.subarray(blocksEnd, blocksEnd + Math.min(tail, 8)));
    mixK1(le32(t, 4), le32(t, 0));
    h1Hi = (h1Hi ^ R_HI) >>> 0;
    h1Lo = (h1Lo ^ R_LO) >>> 0;
  }
  // h ^= len (len < 2^32: only the low word), then h1 += h2; h2 += h1; fmix; h1 += h2; h2 += h1.
  h1Lo = (h1Lo ^ len) >>> 0;
  h2Lo = (h2Lo ^ len) >>> 0;
  add64(h1Hi, h1Lo, h2Hi, h2Lo);
  h1Hi = R_HI;
  h1Lo = R_LO;
  add64(h2Hi, h2Lo, h1Hi, h1Lo);
  fmix64(R_HI, R_LO);
  h2Hi = R_HI;
  h2Lo = R_LO;
  fmix64(h1Hi, h1Lo);
  add64(R_HI, R_LO, h2Hi, h2Lo);
  h1Hi = R_HI;
  h1Lo = R_LO;
  add64(h2Hi, h2Lo, h1Hi, h1Lo);
  return { h1Hi, h1Lo, h2Hi: R_HI, h2Lo: R_LO };
}

/** MurmurHash3_x64_128 as the C reference writes it: h1 ‖ h2, each little-endian (16 bytes). */
export function murmur3X64_128(data: Uint8Array, seed = 0): Uint8Array {
  const { h1Hi, h1Lo, h2Hi, h2Lo } = murmur3X64_128Words(data, seed);
  const out = new Uint8Array(16);
  const view = new DataView(out.buffer);
  view.setUint32(0, h1Lo, true);
  view.setUint32(4, h1Hi, true);
  view.setUint32(8, h2Lo, true);
  view.setUint32(12, h2Hi, true);
  return out;
}
