/**
 * Golomb-coded sets (SPECS §6, BIP158): serialization edge cases, typed
 * rejections for hostile filters, and caller misuse.
 */
import { describe, expect, it } from 'vitest';
import type { Verdict } from '../../protocol/errors.ts';
import {
  BIP158_BASIC_M,
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
  gcsCandidates,
  gcsHashToRange,
  gcsMatch,
  gcsMatchAny,
  gcsSipHash,
  type GcsParams,
} from '../../protocol/keyserver/gcs.ts';
import { misuseField } from '../support/misuse.ts';
import {
  hex,
  reasonOf,
  BASIC_KEY,
  BASIC,
  referenceEncode,
} from '../support/gcs-fixtures.ts';

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
