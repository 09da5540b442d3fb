/**
 * Golomb-coded sets, BIP158 construction (SPECS §6, §7.26):
 * - SipHash-2-4 from the pinned `siphash` package against the reference vectors;
 * - every row of both vector files (test/vectors/bip158-*.json): exact filter
 *   bytes, decoded values, membership of every element, BIP157 filter headers
 *   (for bip158-testnet-19.json the raw blocks are parsed here to extract the
 *   basic-filter element sets);
 * - the typed rejections of the decoder, one hostile blob per reason;
 * - caller misuse (MisuseError naming the field);
 * - fast-check properties: round trip against an independent bit-string
 *   encoder, every inserted item matches, the false-positive rate ≈ 1/M, and
 *   random / mutated blobs only ever give a typed rejection or a canonical decode.
 *
 * Vector fields not used: the header row of bip158-testnet-19.json (column
 * names only, checked for layout); `source`, `notes` and `params.siphash` of
 * bip158-gcs-derived.json (free text; each case's own P and M are used, and its
 * `notes` names the test).
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Verdict } from '../../protocol/errors.ts';
import { readCompactSize } from '../../protocol/keyserver/bitstream.ts';
import {
  BIP158_BASIC_M,
  BIP158_BASIC_P,
  bip158BasicParams,
  buildGcs,
  checkGcsParams,
  decodeGcs,
  encodeGcsSet,
  GCS_CODEC,
  GCS_MAX_M,
  GCS_MAX_M_OVER_2P_LOG2,
  GCS_MAX_P,
  GCS_MIN_P,
  GCS_REJECTION_REASONS,
  gcsCandidates,
  gcsHashedSet,
  gcsHashToRange,
  gcsMatch,
  gcsMatchAny,
  gcsSipHash,
  type GcsParams,
} from '../../protocol/keyserver/gcs.ts';
import { misuseField } from '../support/misuse.ts';
import derived from '../vectors/bip158-gcs-derived.json' with { type: 'json' };
import testnet19 from '../vectors/bip158-testnet-19.json' with { type: 'json' };

const unhex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const reversed = (b: Uint8Array): Uint8Array => b.slice().reverse();
const sha256d = (b: Uint8Array): Uint8Array => {
  const once = createHash('sha256').update(b).digest();
  return new Uint8Array(createHash('sha256').update(once).digest());
};
/** BIP157: header = dSHA256(dSHA256(filter) ‖ prev_header); both hashes shown byte-reversed. */
const filterHeaderDisplay = (filter: Uint8Array, prevDisplay: string): string =>
  hex(reversed(sha256d(new Uint8Array([...sha256d(filter), ...reversed(unhex(prevDisplay))]))));

const reasonOf = (v: Verdict<unknown>): string => (v.ok ? 'accepted' : v.reason);
const REASONS = new Set<string>(GCS_REJECTION_REASONS);
const BASIC_KEY = unhex('43497fd7f826957108f4a30fd9cec3ae');
const BASIC: GcsParams = { p: BIP158_BASIC_P, m: BIP158_BASIC_M, key: BASIC_KEY };

// ---------------------------------------------------------------------------------------------
// A minimal Bitcoin block parser (test-only), enough to extract the BIP158 basic-filter elements.

/** Output scripts of every transaction in a raw block (BIP144 witness serialization understood). */
function blockOutputScripts(block: Uint8Array): Uint8Array[] {
  let at = 80; // block header
  const varint = (): number => {
    const v = readCompactSize(block, at, 'block');
    if (!v.ok) throw new Error(`bad block varint at ${at}`);
    at = v.value.next;
    return Number(v.value.value);
  };
  const take = (length: number): Uint8Array => {
    if (at + length > block.length) throw new Error('block truncated');
    at += length;
    return block.subarray(at - length, at);
  };
  const scripts: Uint8Array[] = [];
  const txCount = varint();
  for (let t = 0; t < txCount; t++) {
    take(4); // version
    const segwit = block[at] === 0x00 && block[at + 1] === 0x01; // BIP144 marker + flag
    if (segwit) take(2);
    const inputs = varint();
    for (let i = 0; i < inputs; i++) {
      take(36); // prevout
      take(varint()); // scriptSig
      take(4); // sequence
    }
    const outputs = varint();
    for (let o = 0; o < outputs; o++) {
      take(8); // value
      scripts.push(take(varint()));
    }
    if (segwit) for (let i = 0; i < inputs; i++) for (let w = varint(); w > 0; w--) take(varint());
    take(4); // lock time
  }
  expect(at).toBe(block.length);
  return scripts;
}

const OP_RETURN = 0x6a;

/** BIP158 basic filter elements, before de-duplication: output scripts (not empty, not OP_RETURN) + spent scripts (not empty). */
function basicFilterElements(block: Uint8Array, prevScriptsHex: readonly string[]): Uint8Array[] {
  const outputs = blockOutputScripts(block).filter((s) => s.length > 0 && s[0] !== OP_RETURN);
  return [...outputs, ...prevScriptsHex.map(unhex).filter((s) => s.length > 0)];
}

// ---------------------------------------------------------------------------------------------

describe('SPECS §6 SipHash-2-4 (siphash@1.2.0, ADR 0003)', () => {
  const key = Uint8Array.from({ length: 16 }, (_, i) => i);
  const message = (length: number): Uint8Array => Uint8Array.from({ length }, (_, i) => i & 0xff);
  it('matches the SipHash reference vectors (paper appendix A; vectors.h, first and last)', () => {
    expect(gcsSipHash(key, message(15))).toBe(0xa129ca6149be45e5n);
    expect(gcsSipHash(key, message(0))).toBe(0x726fdb47dd0e0e31n);
    expect(gcsSipHash(key, message(63))).toBe(0x958a324ceb064572n);
  });
  it('encodes the length mod 256 (a 300-byte message; value recomputed with an independent Python SipHash)', () => {
    expect(gcsSipHash(key, message(300))).toBe(0x4b0b710db6117839n);
  });
  it('hash_to_range is the top 64 bits of siphash · F (exact at the extremes of F)', () => {
    const item = message(7);
    const h = gcsSipHash(BASIC_KEY, item);
    expect(gcsHashToRange(BASIC, 0, item)).toBe(0n);
    expect(gcsHashToRange(BASIC, 1, item)).toBe((h * BigInt(BIP158_BASIC_M)) >> 64n);
    const wide: GcsParams = { p: 32, m: GCS_MAX_M, key: BASIC_KEY };
    const fMax = 0xffff_ffffn * 0xffff_ffffn;
    expect(gcsHashToRange(wide, 0xffff_ffff, item)).toBe((h * fMax) >> 64n);
  });
});

describe('BIP158 vectors: bip158-gcs-derived.json (element sets → filters)', () => {
  it('has the 10 documented cases, all with the basic-filter parameters', () => {
    expect(derived.cases).toHaveLength(10);
    expect(derived.params).toMatchObject({ P: BIP158_BASIC_P, M: BIP158_BASIC_M });
  });

  it.each(derived.cases.map((c) => [`${c.block_height} ${c.notes}`, c] as const))('block %s', (_name, c) => {
    const params: GcsParams = { p: c.P, m: c.M, key: unhex(c.siphash_key_hex) };
    // SPECS §6: the key is the first 16 bytes of the block hash in internal (little-endian) order.
    expect(bip158BasicParams(reversed(unhex(c.block_hash)))).toEqual(params);
    const items = c.elements_hex.map(unhex);
    const filter = buildGcs(params, items);
    expect(hex(filter)).toBe(c.expected_filter_hex);

    const decoded = decodeGcs(params, filter);
    expect(decoded).toEqual({ ok: true, value: gcsHashedSet(params, items) });
    expect(decoded.ok && decoded.value.n).toBe(c.N);

    for (const item of items) expect(gcsMatch(params, filter, item)).toEqual({ ok: true, value: true });
    expect(gcsMatchAny(params, filter, items)).toEqual({ ok: true, value: items.length > 0 });
    expect(gcsCandidates(params, filter, items)).toEqual({ ok: true, value: items.map((_, i) => i) });
    expect(filterHeaderDisplay(filter, c.previous_filter_header)).toBe(c.expected_filter_header);
  });
});

describe('BIP158 vectors: bip158-testnet-19.json (raw blocks → basic filters and headers)', () => {
  const [header, ...rows] = testnet19;
  const derivedByHeight = new Map(derived.cases.map((c) => [c.block_height, c]));

  it('has the header row and 10 blocks', () => {
    expect(header).toEqual(['Block Height,Block Hash,Block,[Prev Output Scripts for Block],Previous Basic Header,Basic Filter,Basic Header,Notes']);
    expect(rows).toHaveLength(10);
  });

  it.each(rows.map((row) => [`${String(row[0])} ${String(row[7])}`, row] as const))('block %s', (_name, row) => {
    const [height, blockHash, block, prevScripts, prevHeader, basicFilter, basicHeader] = row as [
      number,
      string,
      string,
      string[],
      string,
      string,
      string,
      string,
    ];
    const params = bip158BasicParams(reversed(unhex(blockHash)));
    const elements = basicFilterElements(unhex(block), prevScripts);
    const filter = buildGcs(params, elements);
    expect(hex(filter)).toBe(basicFilter);
    expect(filterHeaderDisplay(filter, prevHeader)).toBe(basicHeader);

    // The element set extracted here is the one bip158-gcs-derived.json lists.
    const unique = [...new Set(elements.map(hex))].sort();
    expect(unique).toEqual(derivedByHeight.get(height)?.elements_hex);
    const decoded = decodeGcs(params, unhex(basicFilter));
    expect(decoded.ok && decoded.value.n).toBe(unique.length);
    for (const element of elements) expect(gcsMatch(params, filter, element)).toEqual({ ok: true, value: true });
  });

  it('SPECS §6/§7.26: duplicates are removed before N is counted (block 926485: 17 scripts, N = 9)', () => {
    const row = rows.find((r) => r[0] === 926485)!;
    const elements = basicFilterElements(unhex(row[2] as string), row[3] as string[]);
    expect(elements).toHaveLength(17);
    const params = bip158BasicParams(reversed(unhex(row[1] as string)));
    expect(gcsHashedSet(params, elements).n).toBe(9);
    expect(hex(buildGcs(params, elements))).toBe(row[5]);
  });
});

describe('SPECS §6 serialization edge cases and typed rejections', () => {
  const small: GcsParams = { p: 2, m: 4, key: BASIC_KEY }; // F = 4·N, elements of ≥ 3 bits
  const wide: GcsParams = { p: 2, m: 64, key: BASIC_KEY }; // room for long unary runs below F
  const decode = (bytes: readonly number[], params: GcsParams = small): Verdict<unknown> => decodeGcs(params, Uint8Array.from(bytes));

  it('a zero-element filter is the single byte 0x00 and matches nothing', () => {
    expect(hex(buildGcs(BASIC, []))).toBe('00');
    expect(decodeGcs(BASIC, Uint8Array.of(0))).toEqual({ ok: true, value: { n: 0, values: [] } });
    expect(gcsMatch(BASIC, Uint8Array.of(0), new Uint8Array(0))).toEqual({ ok: true, value: false });
    expect(gcsMatchAny(BASIC, Uint8Array.of(0), [])).toEqual({ ok: true, value: false });
  });

  it('hand-assembled bitstreams: q in unary then P remainder bits, MSB first, zero padding', () => {
    expect(decode([0x01, 0x60])).toEqual({ ok: true, value: { n: 1, values: [3n] } }); // 0|11|00000
    expect(decode([0x02, 0x34])).toEqual({ ok: true, value: { n: 2, values: [1n, 7n] } }); // 0|01 10|10 0
    expect(encodeGcsSet(small, { n: 2, values: [1n, 7n] })).toEqual(Uint8Array.of(0x02, 0x34));
    expect(decode([0x03, 0x00, 0x00])).toEqual({ ok: true, value: { n: 3, values: [0n, 0n, 0n] } }); // collisions are legal
  });

  it('CompactSize(N) at its boundaries: 252, 253, 65535, 65536 (zero deltas, no hashing needed)', () => {
    for (const [n, prefix] of [
      [252, 'fc'],
      [253, 'fdfd00'],
      [65_535, 'fdffff'],
      [65_536, 'fe00000100'],
    ] as const) {
      const set = { n, values: new Array<bigint>(n).fill(0n) };
      const filter = encodeGcsSet(small, set);
      expect(hex(filter.subarray(0, prefix.length / 2))).toBe(prefix);
      expect(filter).toEqual(referenceEncode(n, set.values, small.p));
      expect(decodeGcs(small, filter)).toEqual({ ok: true, value: set });
    }
  });

  it.each([
    ['empty input', [], 'truncated-varint'],
    ['0xfd with one byte', [0xfd, 0x01], 'truncated-varint'],
    ['0xfe with three bytes', [0xfe, 1, 2, 3], 'truncated-varint'],
    ['0xff with seven bytes', [0xff, 1, 2, 3, 4, 5, 6, 7], 'truncated-varint'],
    ['252 in the 3-byte form', [0xfd, 0xfc, 0x00], 'non-canonical-varint'],
    ['65535 in the 5-byte form', [0xfe, 0xff, 0xff, 0x00, 0x00], 'non-canonical-varint'],
    ['2^32 − 1 in the 9-byte form', [0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0], 'non-canonical-varint'],
    ['N = 2^60 (rejected before allocating)', [0xff, 0, 0, 0, 0, 0, 0, 0, 0x10], 'n-too-large'],
    ['N = 2^32', [0xff, 0, 0, 0, 0, 1, 0, 0, 0], 'n-too-large'],
    ['N = 2^32 − 1 with 16 bytes (rejected before allocating)', [0xfe, 0xff, 0xff, 0xff, 0xff, ...new Array<number>(16).fill(0)], 'n-exceeds-blob'],
    ['N = 253, canonical, no bits', [0xfd, 0xfd, 0x00], 'n-exceeds-blob'],
    ['N = 3 in 8 bits (< 3·(P+1))', [0x03, 0x00], 'n-exceeds-blob'],
    ['N = 3, all ones: the unary run never ends', [0x03, 0xff, 0xff], 'bits-exhausted'],
    ['N = 2 (M = 64), the stream ends inside the second remainder', [0x02, 0xf0], 'bits-exhausted', wide], // 11110|00 0|…
    ['N = 1, delta 4 = F', [0x01, 0x80], 'value-out-of-range'], // 10|00
    ['N = 2, running sum 7 + 1 = F', [0x02, 0xb2], 'value-out-of-range'], // 10|11 0|01
    ['N = 1, a one in the padding', [0x01, 0x61], 'nonzero-padding'],
    ['N = 1, a trailing byte', [0x01, 0x60, 0x00], 'trailing-bytes'],
    ['N = 0, a trailing byte', [0x00, 0x00], 'trailing-bytes'],
  ] as const)('%s → %s', (_name, bytes, reason, params: GcsParams = small) => {
    const verdict = decode(bytes, params);
    expect(reasonOf(verdict)).toBe(reason);
    if (!verdict.ok) expect(verdict.codec).toBe(GCS_CODEC);
    // Matching walks the same decoder: same verdict, never an exception.
    expect(reasonOf(gcsMatch(params, Uint8Array.from(bytes), Uint8Array.of(1)))).toBe(reason);
  });

  it('limits.maxN caps N before the blob is read', () => {
    const filter = buildGcs(small, [Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(3)]);
    expect(reasonOf(decodeGcs(small, filter, { maxN: 2 }))).toBe('n-too-large');
    expect(decodeGcs(small, filter, { maxN: 3 }).ok).toBe(true);
  });

  it('a corrupt tail is rejected even when a match was already found (the whole filter is validated)', () => {
    const items = Array.from({ length: 50 }, (_, i) => Uint8Array.of(i));
    const filter = buildGcs(BASIC, items);
    const corrupt = Uint8Array.from([...filter, 0x00]);
    expect(gcsMatch(BASIC, filter, items[0]!)).toEqual({ ok: true, value: true });
    expect(reasonOf(gcsMatch(BASIC, corrupt, items[0]!))).toBe('trailing-bytes');
    expect(reasonOf(gcsMatchAny(BASIC, corrupt, items))).toBe('trailing-bytes');
    expect(reasonOf(gcsCandidates(BASIC, corrupt, items))).toBe('trailing-bytes');
  });

  it('1 MiB of 0xff after N = 1 is one long unary run: bits-exhausted, scanned a byte at a time', () => {
    const blob = new Uint8Array(1 << 20).fill(0xff);
    blob[0] = 0x01;
    expect(reasonOf(decodeGcs(BASIC, blob))).toBe('bits-exhausted');
  });
});

describe('caller misuse throws MisuseError naming the field', () => {
  const key = BASIC_KEY;
  const bad = (params: unknown): string | undefined => misuseField(() => checkGcsParams(params as GcsParams));
  it('P, M and the key (SPECS §6 bounds + ours)', () => {
    expect(bad(BASIC)).toBeUndefined();
    expect(bad(null)).toBe('params');
    expect(bad({ p: GCS_MIN_P - 1, m: 1, key })).toBe('params.p');
    expect(bad({ p: GCS_MAX_P + 1, m: 1, key })).toBe('params.p');
    expect(bad({ p: 1.5, m: 1, key })).toBe('params.p');
    expect(bad({ p: 19, m: 0, key })).toBe('params.m');
    expect(bad({ p: 32, m: GCS_MAX_M + 1, key })).toBe('params.m');
    expect(bad({ p: 19, m: 2.5, key })).toBe('params.m');
    expect(bad({ p: 1, m: 2 ** (1 + GCS_MAX_M_OVER_2P_LOG2), key })).toBeUndefined();
    expect(bad({ p: 1, m: 2 ** (1 + GCS_MAX_M_OVER_2P_LOG2) + 1, key })).toBe('params.m');
    expect(bad({ p: 19, m: 1, key: new Uint8Array(15) })).toBe('params.key');
    expect(bad({ p: 19, m: 1, key: [...key] })).toBe('params.key');
  });
  it('items, filter, limits, sets, block hash, SipHash key', () => {
    const items = [Uint8Array.of(1), 'x' as unknown as Uint8Array];
    expect(misuseField(() => buildGcs(BASIC, items))).toBe('items[1]');
    expect(misuseField(() => gcsMatchAny(BASIC, Uint8Array.of(0xff), items))).toBe('items[1]'); // before the filter is read
    expect(misuseField(() => gcsCandidates(BASIC, Uint8Array.of(0), items))).toBe('items[1]');
    expect(misuseField(() => gcsMatch(BASIC, Uint8Array.of(0), 'x' as unknown as Uint8Array))).toBe('item');
    expect(misuseField(() => decodeGcs(BASIC, [0] as unknown as Uint8Array))).toBe('filter');
    expect(misuseField(() => decodeGcs(BASIC, Uint8Array.of(0), { maxN: -1 }))).toBe('limits.maxN');
    expect(misuseField(() => decodeGcs(BASIC, Uint8Array.of(0), { maxN: 2 ** 32 }))).toBe('limits.maxN');
    expect(misuseField(() => encodeGcsSet(BASIC, { n: 2, values: [5n, 3n] }))).toBe('set.values');
    expect(misuseField(() => encodeGcsSet(BASIC, { n: 2, values: [5n] }))).toBe('set.values');
    expect(misuseField(() => encodeGcsSet(BASIC, { n: 1, values: [BigInt(BIP158_BASIC_M)] }))).toBe('set.values');
    expect(misuseField(() => bip158BasicParams(new Uint8Array(31)))).toBe('blockHash');
    expect(misuseField(() => gcsSipHash(new Uint8Array(8), new Uint8Array(0)))).toBe('key');
    expect(misuseField(() => gcsHashToRange(BASIC, -1, new Uint8Array(0)))).toBe('n');
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

/** Independent reference encoder (bit strings): CompactSize(N) ‖ Golomb-Rice(P) deltas ‖ zero padding. */
function referenceEncode(n: number, values: readonly bigint[], p: number): Uint8Array {
  const prefix = n < 0xfd ? [n] : n <= 0xffff ? [0xfd, n & 0xff, n >>> 8] : [0xfe, n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24];
  let bits = '';
  let last = 0n;
  for (const value of values) {
    const delta = value - last;
    bits += '1'.repeat(Number(delta / 2n ** BigInt(p))) + '0' + (delta % 2n ** BigInt(p)).toString(2).padStart(p, '0');
    last = value;
  }
  bits = bits.padEnd(Math.ceil(bits.length / 8) * 8, '0');
  const body = Array.from({ length: bits.length / 8 }, (_, i) => parseInt(bits.slice(8 * i, 8 * i + 8), 2));
  return Uint8Array.from([...prefix, ...body]);
}

const paramsArb: fc.Arbitrary<GcsParams> = fc
  .integer({ min: GCS_MIN_P, max: GCS_MAX_P })
  .chain((p) =>
    fc.record({
      p: fc.constant(p),
      m: fc.integer({ min: 1, max: Math.min(GCS_MAX_M, 2 ** (p + GCS_MAX_M_OVER_2P_LOG2)) }),
      key: fc.uint8Array({ minLength: 16, maxLength: 16 }),
    }),
  );
/** Item lists with deliberate duplicates. */
const itemsArb = fc
  .array(fc.uint8Array({ maxLength: 24 }), { maxLength: 60 })
  .chain((items) => fc.tuple(fc.constant(items), fc.subarray(items)).map(([a, b]) => [...a, ...b]));

/** The invariant every blob must satisfy: a typed `gcs` rejection, or a decode whose re-encoding is the blob itself. */
function typedOrCanonical(params: GcsParams, blob: Uint8Array, probe: Uint8Array, seen?: Map<string, number>): boolean {
  const decoded = decodeGcs(params, blob);
  seen?.set(reasonOf(decoded), (seen.get(reasonOf(decoded)) ?? 0) + 1);
  const match = gcsMatch(params, blob, probe);
  const any = gcsMatchAny(params, blob, [probe, blob]);
  const candidates = gcsCandidates(params, blob, [probe]);
  if (!decoded.ok) {
    expect(decoded.codec).toBe(GCS_CODEC);
    expect(REASONS.has(decoded.reason)).toBe(true);
    for (const v of [match, any, candidates]) expect(reasonOf(v)).toBe(decoded.reason);
    return true;
  }
  const f = BigInt(decoded.value.n) * BigInt(params.m);
  expect(decoded.value.values.every((v, i, all) => v < f && (i === 0 || all[i - 1]! <= v))).toBe(true);
  expect(encodeGcsSet(params, decoded.value)).toEqual(blob);
  const probeHash = gcsHashToRange(params, decoded.value.n, probe);
  expect(match).toEqual({ ok: true, value: decoded.value.values.includes(probeHash) });
  expect(candidates).toEqual({ ok: true, value: decoded.value.values.includes(probeHash) ? [0] : [] });
  expect(any.ok).toBe(true);
  return true;
}

describe('properties (fast-check, fixed seeds)', () => {
  it('decode(build(items)) is the sorted hashed set of the unique items, and build = the reference encoder', () => {
    fc.assert(
      fc.property(paramsArb, itemsArb, (params, items) => {
        const set = gcsHashedSet(params, items);
        expect(set.n).toBe(new Set(items.map(hex)).size);
        const filter = buildGcs(params, items);
        expect(filter).toEqual(referenceEncode(set.n, set.values, params.p));
        expect(decodeGcs(params, filter)).toEqual({ ok: true, value: set });
      }),
      { numRuns: 400, seed: 158 },
    );
  });

  it('every inserted item matches (gcsMatch, gcsMatchAny, gcsCandidates)', () => {
    fc.assert(
      fc.property(paramsArb, itemsArb, (params, items) => {
        const filter = buildGcs(params, items);
        for (const item of items) expect(gcsMatch(params, filter, item)).toEqual({ ok: true, value: true });
        expect(gcsMatchAny(params, filter, items)).toEqual({ ok: true, value: items.length > 0 });
        expect(gcsCandidates(params, filter, items)).toEqual({ ok: true, value: items.map((_, i) => i) });
      }),
      { numRuns: 300, seed: 159 },
    );
  });

  it('false-positive rate of non-members ≈ 1/M (M = 97, N = 1000, 200,000 queries, within 5σ)', () => {
    // With the key fixed, hash_to_range of the 200,000 non-members (distinct from every member by their
    // first byte) behaves as independent uniform draws from [0, F) (SipHash is a PRF), so the number of
    // false positives is Binomial(Q, D/F), D = the number of distinct values in the filter
    // (≈ N − N²/2F, hash collisions merge a few). We check it within 5σ (σ ≈ 45, failure chance for a
    // random key ≈ 6·10⁻⁷), and D/F within 1 % of 1/M. Deterministic: fixed key and items.
    const params: GcsParams = { p: 6, m: 97, key: unhex('000102030405060708090a0b0c0d0e0f') };
    const item = (tag: number, i: number): Uint8Array => {
      const b = new Uint8Array(9);
      b[0] = tag;
      new DataView(b.buffer).setUint32(5, i);
      return b;
    };
    const members = Array.from({ length: 1000 }, (_, i) => item(0, i));
    const queries = Array.from({ length: 200_000 }, (_, i) => item(1, i));
    const filter = buildGcs(params, members);
    const decoded = decodeGcs(params, filter);
    if (!decoded.ok) throw new Error(decoded.detail);
    const distinct = new Set(decoded.value.values).size;
    const p = distinct / (1000 * params.m);
    expect(Math.abs(p * params.m - 1)).toBeLessThan(0.01);
    const candidates = gcsCandidates(params, filter, queries);
    if (!candidates.ok) throw new Error(candidates.detail);
    const expected = queries.length * p;
    const sigma = Math.sqrt(queries.length * p * (1 - p));
    expect(Math.abs(candidates.value.length - expected)).toBeLessThan(5 * sigma);
  });

  const fuzzParams: readonly GcsParams[] = [BASIC, { p: 2, m: 4, key: BASIC_KEY }, { p: 1, m: 3, key: BASIC_KEY }, { p: 32, m: 5, key: BASIC_KEY }];
  const varintHead = fc.oneof(
    fc.integer({ min: 0, max: 0xfc }).map((n) => [n]),
    fc.uint8Array({ minLength: 2, maxLength: 2 }).map((b) => [0xfd, ...b]),
    fc.uint8Array({ minLength: 4, maxLength: 4 }).map((b) => [0xfe, ...b]),
    fc.uint8Array({ minLength: 8, maxLength: 8 }).map((b) => [0xff, ...b]),
  );
  const randomBlob = fc.oneof(
    fc.uint8Array({ maxLength: 64 }),
    fc.tuple(varintHead, fc.uint8Array({ maxLength: 48 })).map(([head, tail]) => Uint8Array.from([...head, ...tail])),
    fc.tuple(fc.integer({ min: 0, max: 12 }), fc.uint8Array({ maxLength: 12 })).map(([n, tail]) => Uint8Array.from([n, ...tail])),
  );

  it('random bytes: a typed rejection or a canonical decode, never an exception (10,000 cases)', () => {
    const seen = new Map<string, number>();
    fc.assert(
      fc.property(fc.constantFrom(...fuzzParams), randomBlob, fc.uint8Array({ maxLength: 8 }), (params, blob, probe) =>
        typedOrCanonical(params, blob, probe, seen),
      ),
      { numRuns: 10_000, seed: 4 },
    );
    // The generator reaches every outcome, valid decodes included.
    expect([...seen.keys()].sort()).toEqual([...GCS_REJECTION_REASONS, 'accepted'].sort());
  });

  const mutation = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
    fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.nat(255) }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 4 }) }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), byte: fc.nat(255) }),
    fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('head' as const), head: varintHead }),
  );
  type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;
  function mutate(filter: Uint8Array, m: Mutation): Uint8Array {
    const bytes = [...filter];
    if (bytes.length === 0 && (m.kind === 'flip' || m.kind === 'set' || m.kind === 'delete')) return filter;
    const at = 'at' in m ? m.at % Math.max(1, bytes.length) : 0;
    switch (m.kind) {
      case 'flip':
        bytes[at] = bytes[at]! ^ (1 << m.bit);
        break;
      case 'set':
        bytes[at] = m.byte;
        break;
      case 'truncate':
        bytes.length = at;
        break;
      case 'append':
        bytes.push(...m.bytes);
        break;
      case 'insert':
        bytes.splice(at, 0, m.byte);
        break;
      case 'delete':
        bytes.splice(at, 1);
        break;
      case 'head': {
        const old = readCompactSize(filter, 0, 'test');
        return Uint8Array.from([...m.head, ...bytes.slice(old.ok ? old.value.next : 1)]);
      }
    }
    return Uint8Array.from(bytes);
  }

  it('mutated valid filters: a typed rejection or a canonical decode, never an exception (10,000 cases)', () => {
    const seen = new Map<string, number>();
    const params = fc.oneof(fc.constantFrom(...fuzzParams), paramsArb);
    fc.assert(
      fc.property(params, fc.array(fc.uint8Array({ maxLength: 12 }), { maxLength: 30 }), fc.array(mutation, { minLength: 1, maxLength: 3 }), (p, items, mutations) => {
        const blob = mutations.reduce(mutate, buildGcs(p, items));
        return typedOrCanonical(p, blob, items[0] ?? new Uint8Array(0), seen);
      }),
      { numRuns: 10_000, seed: 5 },
    );
    expect([...seen.keys()].sort()).toEqual([...GCS_REJECTION_REASONS, 'accepted'].sort());
  });
});
