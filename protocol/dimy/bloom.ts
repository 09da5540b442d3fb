/**
 * DIMY Bloom filters: the Daily (DBF), Query (QBF = OR of the DBFs) and Contact (CBF = OR of the
 * last DBFs of a positive user) filters (SPECS §4.1, §4.2, §7.19–20).
 *
 *   m = 800,000 bits (100,000 bytes): "100 KB", the size the paper's FPR figures imply (§4.1)
 *   k = 3 positions per item
 *   positions: exactly the paper's backend PoC, willf/bloom v2.0.3 (`bloom.go`, SPECS §4.1):
 *     (h0, h1) = MurmurHash3_x64_128(item, seed 0), (h2, h3) = MurmurHash3_x64_128(item ‖ 0x01, seed 0)
 *     location_i = (h[i mod 2] + i · h[2 + ((i + (i mod 2)) mod 4) / 2]) mod 2^64 mod m
 *   (for k = 3: h0, h1 + h3, h0 + 2·h3 — the Kirsch–Mitzenmacher double-hashing family),
 *   so an EncID sets the same bits here as in the authors' Go code.
 *   bit p lives in byte ⌊p / 8⌋ at mask 1 << (p mod 8) (LSB first).
 *
 * Filters are plain data ({ bits }); bloomInsert mutates its filter in place (a phone inserts
 * ~1,000 EncIDs a day into one 100 KB filter, copying per insert would be wasteful), every other
 * function returns new filters. Statistics for the matching rule: bloom-stats.ts.
 *
 * Encoded filter (QBF upload, CBF upload and download), version 1, 100,001 bytes:
 *
 *   offset   len      field
 *        0     1      version = 0x01
 *        1  100000    the bits, layout above
 *
 * decodeBloom never throws on hostile bytes; it rejects with codec `dimy-bloom`:
 *   too-short / too-long   length ≠ 100,001
 *   bad-version            byte 0 ≠ 0x01 (field `version`)
 *   too-full               more set bits than `options.maxSetBits` (field `bits`): an all-ones
 *                          CBF would "match" every query; the caller sets the bound its profile
 *                          allows (e.g. 3 · items per day · days kept)
 */
import { accept, ensure, reject, type Verdict } from '../errors.ts';
import { murmur3X64_128Words } from './murmur3.ts';

export const DIMY_BLOOM_CODEC = 'dimy-bloom';
export const DIMY_BLOOM_REJECTION_REASONS = ['too-short', 'too-long', 'bad-version', 'too-full'] as const;

/** Filter size, bits: "100 KB" = 800,000 bits (the paper's FPR figures). SPECS §4.1, §7.19. */
export const DIMY_BLOOM_BITS = 800_000;
/** Filter size, bytes. SPECS §4.1, §4.2 ("all 100 KB"). */
export const DIMY_BLOOM_BYTES = DIMY_BLOOM_BITS / 8;
/** Positions (hash functions) per item. SPECS §4.1, §4.2 ("3 hashes"). */
export const DIMY_BLOOM_HASHES = 3;
/** Encoded filter version byte (this file's layout). */
export const DIMY_BLOOM_VERSION = 0x01;
/** Encoded filter length, bytes: version + bits. */
export const DIMY_BLOOM_ENCODED_BYTES = 1 + DIMY_BLOOM_BYTES;
/** The byte appended for the second base hash (`baseHashes`: `a1 := []byte{1}`). SPECS §4.1. */
const SECOND_HASH_SUFFIX = 0x01;
/** 2^32 mod m, to reduce a uint64 (hi, lo) mod m with doubles. */
const TWO_POW_32_MOD_M = 2 ** 32 % DIMY_BLOOM_BITS;

/** A DIMY Bloom filter: exactly 100,000 bytes of bits. */
export interface BloomFilter {
  readonly bits: Uint8Array;
}

export interface BloomDecodeOptions {
  /** Reject (`too-full`) a filter with more set bits than this. */
  readonly maxSetBits?: number;
}

/** An empty filter. */
export function createBloom(): BloomFilter {
  return { bits: new Uint8Array(DIMY_BLOOM_BYTES) };
}

export function checkBloom(filter: BloomFilter, field: string): void {
  ensure(filter !== null && typeof filter === 'object' && filter.bits instanceof Uint8Array, field, 'must be a BloomFilter { bits: Uint8Array }');
  ensure(filter.bits.length === DIMY_BLOOM_BYTES, `${field}.bits`, `must be ${DIMY_BLOOM_BYTES} bytes, got ${filter.bits.length}`);
}

/** (hi · 2^32 + lo) mod m, exact with doubles: (hi mod m) · (2^32 mod m) < 2^40. */
const mod64 = (hi: number, lo: number): number => (((hi % DIMY_BLOOM_BITS) * TWO_POW_32_MOD_M) + lo) % DIMY_BLOOM_BITS;

/** The k = 3 bit positions of an item (willf/bloom v2.0.3 `location`, header). SPECS §4.1. */
export function bloomPositions(item: Uint8Array): number[] {
  ensure(item instanceof Uint8Array, 'item', 'must be a Uint8Array');
  const first = murmur3X64_128Words(item, 0);
  const extended = new Uint8Array(item.length + 1);
  extended.set(item);
  extended[item.length] = SECOND_HASH_SUFFIX;
  const second = murmur3X64_128Words(extended, 0);
  const h = [
    [first.h1Hi, first.h1Lo],
    [first.h2Hi, first.h2Lo],
    [second.h1Hi, second.h1Lo],
    [second.h2Hi, second.h2Lo],
  ] as const;
  const positions: number[] = [];
  for (let i = 0; i < DIMY_BLOOM_HASHES; i++) {
    const [aHi, aLo] = h[i % 2] ?? [0, 0];
    const [bHi, bLo] = h[2 + ((i + (i % 2)) % 4) / 2] ?? [0, 0];
    // a + i·b mod 2^64 with i < 3: i·bLo < 2^34 is exact, its carry goes to the high word.
    const lo = aLo + i * bLo;
    const hi = (aHi + Math.imul(i, bHi) + Math.floor(lo / 2 ** 32)) >>> 0;
    positions.push(mod64(hi, lo >>> 0));
  }
  return positions;
}

const isSet = (bits: Uint8Array, p: number): boolean => ((bits[p >>> 3] ?? 0) & (1 << (p & 7))) !== 0;

/** Set the item's 3 bits in `filter` (mutates it, see the header). */
export function bloomInsert(filter: BloomFilter, item: Uint8Array): void {
  checkBloom(filter, 'filter');
  for (const p of bloomPositions(item)) filter.bits[p >>> 3] = (filter.bits[p >>> 3] ?? 0) | (1 << (p & 7));
}

/** True if all 3 of the item's bits are set: no false negatives, false positives at rate ≈ (1 − e^(−kn/m))^k. */
export function bloomContains(filter: BloomFilter, item: Uint8Array): boolean {
  checkBloom(filter, 'filter');
  return bloomPositions(item).every((p) => isSet(filter.bits, p));
}

/** A new filter, the bitwise OR of `filters`: QBF = OR of the DBFs, CBF = OR of the last DBFs. SPECS §4.1. */
export function bloomUnion(filters: readonly BloomFilter[]): BloomFilter {
  const out = createBloom();
  const target = new Uint32Array(out.bits.buffer);
  for (const [i, filter] of filters.entries()) {
    checkBloom(filter, `filters[${i}]`);
    const source = words(filter.bits);
    if (source !== undefined) {
      for (let w = 0; w < target.length; w++) target[w] = (target[w] ?? 0) | (source[w] ?? 0);
    } else {
      for (let b = 0; b < out.bits.length; b++) out.bits[b] = (out.bits[b] ?? 0) | (filter.bits[b] ?? 0);
    }
  }
  return out;
}

/** A Uint32Array view of the bits when aligned (fast path), else undefined. Word order is irrelevant to OR/AND/popcount. */
export function words(bits: Uint8Array): Uint32Array | undefined {
  return bits.byteOffset % 4 === 0 && bits.length % 4 === 0 ? new Uint32Array(bits.buffer, bits.byteOffset, bits.length / 4) : undefined;
}

/** Set bits in a 32-bit word. */
export function popcount32(x: number): number {
  let v = x - ((x >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  v = (v + (v >>> 4)) & 0x0f0f0f0f;
  return Math.imul(v, 0x01010101) >>> 24;
}

/** Number of set bits in the filter. */
export function bloomPopcount(filter: BloomFilter): number {
  checkBloom(filter, 'filter');
  return popcountBytes(filter.bits);
}

function popcountBytes(bits: Uint8Array): number {
  let count = 0;
  const w = words(bits);
  if (w !== undefined) for (const v of w) count += popcount32(v);
  else for (const b of bits) count += popcount32(b);
  return count;
}

/** The 100,001-byte version-1 encoding (header layout). */
export function encodeBloom(filter: BloomFilter): Uint8Array {
  checkBloom(filter, 'filter');
  const out = new Uint8Array(DIMY_BLOOM_ENCODED_BYTES);
  out[0] = DIMY_BLOOM_VERSION;
  out.set(filter.bits, 1);
  return out;
}

/** Parse an encoded filter. Never throws on hostile bytes; the bits are a copy. Reasons: the header. */
export function decodeBloom(bytes: Uint8Array, options: BloomDecodeOptions = {}): Verdict<BloomFilter> {
  ensure(bytes instanceof Uint8Array, 'bytes', 'must be a Uint8Array');
  const { maxSetBits } = options;
  ensure(maxSetBits === undefined || (Number.isInteger(maxSetBits) && maxSetBits >= 0), 'options.maxSetBits', `must be a non-negative integer, got ${maxSetBits}`);
  const n = bytes.length;
  if (n < DIMY_BLOOM_ENCODED_BYTES) return reject(DIMY_BLOOM_CODEC, 'too-short', `${n} bytes, an encoded filter has ${DIMY_BLOOM_ENCODED_BYTES}`);
  if (n > DIMY_BLOOM_ENCODED_BYTES) return reject(DIMY_BLOOM_CODEC, 'too-long', `${n} bytes, an encoded filter has ${DIMY_BLOOM_ENCODED_BYTES}`);
  const version = bytes[0] ?? 0;
  if (version !== DIMY_BLOOM_VERSION) return reject(DIMY_BLOOM_CODEC, 'bad-version', `version ${version}, only ${DIMY_BLOOM_VERSION} is known`, 'version');
  const bits = bytes.slice(1);
  if (maxSetBits !== undefined) {
    const set = popcountBytes(bits);
    if (set > maxSetBits) return reject(DIMY_BLOOM_CODEC, 'too-full', `${set} set bits, at most ${maxSetBits} allowed`, 'bits');
  }
  return accept({ bits });
}
