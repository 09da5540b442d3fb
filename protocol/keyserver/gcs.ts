/**
 * Golomb-coded sets, BIP158 construction (SPECS §6, §7.26), for the key
 * server's compact distribution: the server publishes P, M and a SipHash key
 * with a filter of key hashes; a phone tests its sightings against the filter
 * (false-positive rate 1/M) and confirms candidate matches with a follow-up
 * request.
 *
 *   serialized filter = CompactSize(N) ‖ Golomb-Rice bitstream, zero-padded to a byte
 *
 * Pure: SipHash-2-4 comes from the pinned `siphash` package (ADR 0003); all
 * 64-bit and 128-bit arithmetic is BigInt, so `hash_to_range` is exact.
 *
 * Decoding hostile bytes never throws: it returns a Rejection with codec
 * `gcs` and one of these reasons, checked in this order:
 *   truncated-varint      CompactSize(N) cut short (or the input is empty)
 *   non-canonical-varint  CompactSize(N) not in its shortest form (as Core's ReadCompactSize)
 *   n-too-large           N ≥ 2^32 (SPECS §6; Core "N must be <2^32") or N above the caller's `maxN`
 *   n-exceeds-blob        N·(P+1) > the bits present: every element costs ≥ P+1 bits, so the
 *                         filter is certainly truncated; rejected before anything is allocated
 *   bits-exhausted        the bitstream ends inside an element (Core: ios_base::failure)
 *   value-out-of-range    a running sum reaches F = N·M (no encoder can produce it; Core does not check)
 *   nonzero-padding       the pad bits of the final byte are not zero (BIP158 pads with zeros; Core
 *                         does not check — we do, so an accepted filter has exactly one encoding)
 *   trailing-bytes        whole bytes after the final element (Core "encoded_filter contains excess data")
 * Caller misuse (bad P, M, key, items or limits) throws MisuseError naming the field.
 *
 * Choices where BIP158 / SPECS §6 leave room (documented in the tests too):
 * - Canonical CompactSize only, and N < 2^32, as Core; Core's extra 2^25 cap
 *   (serialize.h MAX_SIZE) is not adopted — N is bounded by the blob length
 *   instead, plus an optional caller `maxN`.
 * - Stricter than Core on pad bits and on values ≥ F (see above), so every
 *   accepted filter re-encodes to the same bytes.
 * - Matching stops comparing early as BIP158 says, but always walks and
 *   validates the whole filter (the verdict never depends on where a
 *   corruption lies); cost stays linear in the filter length.
 * - Distinct items that hash to the same value both count in N (a zero delta),
 *   as Core; duplicate items count once (SPECS §7.26).
 * - P ∈ [1, 32] and M ≤ 2^(P+8): our bounds (BIP158 fixes only the basic filter's P and M).
 */
import SipHash from 'siphash';
import { accept, ensure, reject, type Verdict } from '../errors.ts';
import { BitReader, BitWriter, compactSizeLength, readCompactSize, writeCompactSize } from './bitstream.ts';

export const GCS_CODEC = 'gcs';
export const GCS_REJECTION_REASONS = [
  'truncated-varint',
  'non-canonical-varint',
  'n-too-large',
  'n-exceeds-blob',
  'bits-exhausted',
  'value-out-of-range',
  'nonzero-padding',
  'trailing-bytes',
] as const;

/** BIP158 basic filter parameters (SPECS §6): P = 19, M = 784931 (≈ 1.497137 · 2^19). */
export const BIP158_BASIC_P = 19;
export const BIP158_BASIC_M = 784_931;
/** The basic filter's key is the first 16 bytes of the 32-byte block hash, internal byte order (SPECS §6). */
export const BIP158_BLOCK_HASH_BYTES = 32;
/** SipHash-2-4 takes a 128-bit key k (SPECS §6). */
export const GCS_KEY_BYTES = 16;
/** N < 2^32 and M < 2^32 (SPECS §6), so F = N·M < 2^64. */
export const GCS_MAX_N = 0xffff_ffff;
export const GCS_MAX_M = 0xffff_ffff;
/**
 * Our bounds on P (BIP158 only says uint8): at least one remainder bit, at
 * most 32 so a remainder is an exact number.
 */
export const GCS_MIN_P = 1;
export const GCS_MAX_P = 32;
/**
 * Our bound M ≤ 2^(P + 8): an element's unary quotient averages ≈ M / 2^P
 * bits, so this caps it at 256 (BIP158's basic filter: ≈ 1.5) and bounds the
 * encoder's output for any published parameters.
 */
export const GCS_MAX_M_OVER_2P_LOG2 = 8;

/** hash_to_range keeps the top 64 bits of the 128-bit product (SPECS §6). */
const RANGE_SHIFT = 64n;
const UINT32_RANGE = 0x1_0000_0000n;

/** The published parameters of a filter (SPECS §6: the project chooses and publishes P, M and the key). */
export interface GcsParams {
  /** Golomb-Rice remainder bits. */
  readonly p: number;
  /** Inverse false-positive rate: a non-member matches with probability ≈ 1/M. */
  readonly m: number;
  /** 16-byte SipHash-2-4 key. */
  readonly key: Uint8Array;
}

/** Optional local policy for decoding and matching hostile filters. */
export interface GcsLimits {
  /** Largest N accepted (default GCS_MAX_N); the blob-length bound applies in any case. */
  readonly maxN?: number;
}

/** A decoded filter: N and the sorted hashed values, each in [0, N·M). */
export interface GcsSet {
  readonly n: number;
  readonly values: readonly bigint[];
}

interface Prepared {
  readonly p: number;
  readonly bigP: bigint;
  readonly remainderMask: bigint;
  readonly m: bigint;
  /** The key as the four little-endian uint32 words the siphash package takes. */
  readonly keyWords: Uint32Array;
}

/** Throw MisuseError naming the field unless P, M and the key are valid (see the GCS_* bounds). */
export function checkGcsParams(params: GcsParams, field = 'params'): void {
  ensure(typeof params === 'object' && params !== null, field, 'must be { p, m, key }');
  const { p, m, key } = params;
  ensure(Number.isInteger(p) && p >= GCS_MIN_P && p <= GCS_MAX_P, `${field}.p`, `must be an integer in [${GCS_MIN_P}, ${GCS_MAX_P}]`);
  ensure(Number.isInteger(m) && m >= 1 && m <= GCS_MAX_M, `${field}.m`, 'must be an integer in [1, 2^32)');
  ensure(m <= 2 ** (p + GCS_MAX_M_OVER_2P_LOG2), `${field}.m`, `must be at most 2^(p + ${GCS_MAX_M_OVER_2P_LOG2})`);
  ensure(key instanceof Uint8Array && key.length === GCS_KEY_BYTES, `${field}.key`, `must be ${GCS_KEY_BYTES} bytes`);
}

/** BIP158 basic filter parameters for a block (SPECS §6): key = first 16 bytes of the block hash, internal order. */
export function bip158BasicParams(blockHashInternal: Uint8Array): GcsParams {
  ensure(blockHashInternal instanceof Uint8Array && blockHashInternal.length === BIP158_BLOCK_HASH_BYTES, 'blockHash', 'must be 32 bytes');
  return { p: BIP158_BASIC_P, m: BIP158_BASIC_M, key: blockHashInternal.slice(0, GCS_KEY_BYTES) };
}

function prepare(params: GcsParams): Prepared {
  checkGcsParams(params);
  const bigP = BigInt(params.p);
  return { p: params.p, bigP, remainderMask: (1n << bigP) - 1n, m: BigInt(params.m), keyWords: keyWords(params.key) };
}

/** k0 = key[0..8) and k1 = key[8..16) read little-endian (SipHash reference), as four uint32 words. */
function keyWords(key: Uint8Array): Uint32Array {
  const words = new Uint32Array(4);
  for (let i = 0; i < 4; i++) {
    words[i] = ((key[4 * i] ?? 0) | ((key[4 * i + 1] ?? 0) << 8) | ((key[4 * i + 2] ?? 0) << 16) | ((key[4 * i + 3] ?? 0) << 24)) >>> 0;
  }
  return words;
}

function sipHashWords(words: Uint32Array, message: Uint8Array): bigint {
  const { h, l } = SipHash.hash(words, message);
  return BigInt(h) * UINT32_RANGE + BigInt(l);
}

/** SipHash-2-4 (c = 2, d = 4) of `message` under a 16-byte key, as a uint64 (SPECS §6). */
export function gcsSipHash(key: Uint8Array, message: Uint8Array): bigint {
  ensure(key instanceof Uint8Array && key.length === GCS_KEY_BYTES, 'key', `must be ${GCS_KEY_BYTES} bytes`);
  ensure(message instanceof Uint8Array, 'message', 'must be a Uint8Array');
  return sipHashWords(keyWords(key), message);
}

/** hash_to_range(x) = (siphash(k, x) · F) >> 64, F = N·M (SPECS §6; BIP158 "Hashing Data Objects"). */
function hashToRange(prepared: Prepared, f: bigint, item: Uint8Array): bigint {
  return (sipHashWords(prepared.keyWords, item) * f) >> RANGE_SHIFT;
}

/** hash_to_range of one item for a filter of `n` elements. */
export function gcsHashToRange(params: GcsParams, n: number, item: Uint8Array): bigint {
  const prepared = prepare(params);
  ensure(Number.isInteger(n) && n >= 0 && n <= GCS_MAX_N, 'n', 'must be an integer in [0, 2^32)');
  ensure(item instanceof Uint8Array, 'item', 'must be a Uint8Array');
  return hashToRange(prepared, BigInt(n) * prepared.m, item);
}

/** Array.isArray without its type guard (which would widen a readonly typed array to any[]). */
const isArray = (value: unknown): boolean => Array.isArray(value);

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function checkItems(items: readonly Uint8Array[], field: string): void {
  ensure(isArray(items), field, 'must be an array of Uint8Array');
  items.forEach((item, i) => ensure(item instanceof Uint8Array, `${field}[${i}]`, 'must be a Uint8Array'));
}

/** The item set is a set: duplicates are removed before N is counted (SPECS §6, §7.26; block 926485). */
function uniqueItems(items: readonly Uint8Array[]): Uint8Array[] {
  const seen = new Set<string>();
  const unique: Uint8Array[] = [];
  for (const item of items) {
    let id = '';
    for (const byte of item) id += HEX[byte] ?? '';
    if (seen.has(id)) continue;
    seen.add(id);
    unique.push(item);
  }
  return unique;
}

const ascending = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * SPECS §6 "Construction", first half: hash all N unique items to [0, N·M)
 * and sort ascending. Distinct items may collide; both values stay (N counts items).
 */
export function gcsHashedSet(params: GcsParams, items: readonly Uint8Array[]): GcsSet {
  const prepared = prepare(params);
  checkItems(items, 'items');
  const unique = uniqueItems(items);
  ensure(unique.length <= GCS_MAX_N, 'items', 'N must be < 2^32');
  const f = BigInt(unique.length) * prepared.m;
  const values = unique.map((item) => hashToRange(prepared, f, item)).sort(ascending);
  return { n: unique.length, values };
}

/**
 * SPECS §6 "Construction", second half, and "Serialization": CompactSize(N),
 * then each successive difference (the first against 0) Golomb-Rice coded —
 * quotient d >> P in unary (q one-bits, then a zero-bit), then the low P bits
 * of d, MSB first — and the final byte padded with zero bits. N = 0 is the
 * single byte 0x00.
 */
export function encodeGcsSet(params: GcsParams, set: GcsSet): Uint8Array {
  const prepared = prepare(params);
  const { n, values } = set;
  ensure(Number.isInteger(n) && n >= 0 && n <= GCS_MAX_N, 'set.n', 'must be an integer in [0, 2^32)');
  ensure(isArray(values) && values.length === n, 'set.values', 'must hold exactly n values');
  const f = BigInt(n) * prepared.m;
  // Pass 1: validate and size the bitstream exactly (q + 1 + P bits per element).
  let bits = 0;
  let last = 0n;
  for (const value of values) {
    ensure(typeof value === 'bigint' && value >= last && value < f, 'set.values', 'must be sorted ascending, each in [0, n·m)');
    bits += Number((value - last) >> prepared.bigP) + 1 + prepared.p;
    last = value;
  }
  const out = new Uint8Array(compactSizeLength(n) + Math.ceil(bits / 8)); // zero-filled: padding is zero
  const writer = new BitWriter(out, writeCompactSize(out, 0, n));
  // Pass 2: write the Golomb-Rice codes of the deltas.
  last = 0n;
  for (const value of values) {
    const delta = value - last;
    writer.writeOnes(Number(delta >> prepared.bigP)); // quotient in unary…
    writer.writeBit(0); // …terminated by a zero-bit
    writer.writeBits(Number(delta & prepared.remainderMask), prepared.p); // remainder, P bits, MSB first
    last = value;
  }
  return out;
}

/** Build the serialized filter of a set of items (SPECS §6; BIP158 "Set Construction" + "Serialization"). */
export function buildGcs(params: GcsParams, items: readonly Uint8Array[]): Uint8Array {
  return encodeGcsSet(params, gcsHashedSet(params, items));
}

interface GcsVisitor {
  /** Called once N is known and plausible, before any element is read. */
  start(n: number, f: bigint): void;
  /** Called with each cumulative value, in ascending order. */
  value(value: bigint): void;
}

/**
 * The one streaming decoder behind decode and match: validates the whole
 * filter (time O(filter length), memory O(1)) and hands each cumulative
 * value to the visitor.
 */
function walkGcs(params: GcsParams, filter: Uint8Array, limits: GcsLimits | undefined, visitor: GcsVisitor): Verdict<{ n: number }> {
  const prepared = prepare(params);
  ensure(filter instanceof Uint8Array, 'filter', 'must be a Uint8Array');
  const maxN = limits?.maxN ?? GCS_MAX_N;
  ensure(Number.isInteger(maxN) && maxN >= 0 && maxN <= GCS_MAX_N, 'limits.maxN', 'must be an integer in [0, 2^32)');

  const header = readCompactSize(filter, 0, GCS_CODEC);
  if (!header.ok) return header;
  if (header.value.value > BigInt(GCS_MAX_N)) return reject(GCS_CODEC, 'n-too-large', `N = ${header.value.value} is not < 2^32`, 'n');
  const n = Number(header.value.value);
  if (n > maxN) return reject(GCS_CODEC, 'n-too-large', `N = ${n} exceeds the limit ${maxN}`, 'n');
  const reader = new BitReader(filter, header.value.next);
  if (n * (prepared.p + 1) > reader.remainingBits) {
    return reject(GCS_CODEC, 'n-exceeds-blob', `N = ${n} needs ≥ ${n * (prepared.p + 1)} bits, ${reader.remainingBits} present`, 'n');
  }

  const f = BigInt(n) * prepared.m;
  visitor.start(n, f);
  let value = 0n;
  for (let i = 0; i < n; i++) {
    const quotient = reader.readUnary();
    const remainder = quotient < 0 ? -1 : reader.readBits(prepared.p);
    if (remainder < 0) return reject(GCS_CODEC, 'bits-exhausted', `bitstream ends inside element ${i} of ${n}`, `values[${i}]`);
    value += (BigInt(quotient) << prepared.bigP) + BigInt(remainder); // delta = q·2^P + r, cumulative sum
    if (value >= f) return reject(GCS_CODEC, 'value-out-of-range', `element ${i} sums to ${value} ≥ F = ${f}`, `values[${i}]`);
    visitor.value(value);
  }
  if (!reader.paddingIsZero()) return reject(GCS_CODEC, 'nonzero-padding', 'the final byte is not padded with zero bits', 'padding');
  if (reader.end() !== filter.length) {
    return reject(GCS_CODEC, 'trailing-bytes', `${filter.length - reader.end()} bytes after the last element`, 'filter');
  }
  return accept({ n });
}

/** Decode a serialized filter into N and its sorted hashed values (SPECS §6), or a typed rejection. */
export function decodeGcs(params: GcsParams, filter: Uint8Array, limits?: GcsLimits): Verdict<GcsSet> {
  const values: bigint[] = [];
  const walked = walkGcs(params, filter, limits, { start: () => undefined, value: (v) => void values.push(v) });
  return walked.ok ? accept({ n: walked.value.n, values }) : walked;
}

/**
 * Does any item possibly belong to the set? BIP158 Appendix B / Core
 * `MatchInternal`: hash the queries to [0, F), sort them, and merge with the
 * filter's ascending values. Comparisons stop at the first match or once the
 * queries run out (BIP158's early stop), but the rest of the filter is still
 * walked and validated, so a corrupt filter is always a rejection, wherever the
 * corruption lies. Cost: O(filter length + q log q) time, O(q) memory for q items.
 */
export function gcsMatchAny(params: GcsParams, filter: Uint8Array, items: readonly Uint8Array[], limits?: GcsLimits): Verdict<boolean> {
  const prepared = prepare(params);
  checkItems(items, 'items');
  let queries: bigint[] = [];
  let index = 0;
  let found = false;
  let done = false;
  const walked = walkGcs(params, filter, limits, {
    start: (_n, f) => {
      queries = items.map((item) => hashToRange(prepared, f, item)).sort(ascending);
    },
    value: (value) => {
      while (!done) {
        const query = queries[index];
        if (query === undefined || query === value) {
          found = query === value; // queries exhausted (no match), or a match
          done = true;
        } else if (query > value) {
          return; // next filter value
        } else {
          index++;
        }
      }
    },
  });
  return walked.ok ? accept(found) : walked;
}

/** Does one item possibly belong to the set (SPECS §6 "Query")? False positives at rate ≈ 1/M. */
export function gcsMatch(params: GcsParams, filter: Uint8Array, item: Uint8Array, limits?: GcsLimits): Verdict<boolean> {
  ensure(item instanceof Uint8Array, 'item', 'must be a Uint8Array');
  return gcsMatchAny(params, filter, [item], limits);
}

/**
 * Which items possibly belong to the set: their indices in `items`, ascending —
 * the candidates a phone confirms with a follow-up request. Same merge and
 * bounds as gcsMatchAny, without the early stop.
 */
export function gcsCandidates(params: GcsParams, filter: Uint8Array, items: readonly Uint8Array[], limits?: GcsLimits): Verdict<number[]> {
  const prepared = prepare(params);
  checkItems(items, 'items');
  let queries: { readonly hash: bigint; readonly index: number }[] = [];
  let next = 0;
  const matched: number[] = [];
  const walked = walkGcs(params, filter, limits, {
    start: (_n, f) => {
      queries = items.map((item, index) => ({ hash: hashToRange(prepared, f, item), index })).sort((a, b) => ascending(a.hash, b.hash));
    },
    value: (value) => {
      for (let query = queries[next]; query !== undefined && query.hash <= value; query = queries[++next]) {
        if (query.hash === value) matched.push(query.index);
      }
    },
  });
  return walked.ok ? accept(matched.sort((a, b) => a - b)) : walked;
}
