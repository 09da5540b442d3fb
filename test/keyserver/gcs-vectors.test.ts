/**
 * Golomb-coded sets (SPECS §6, BIP158): SipHash-2-4 and both vector files —
 * element sets → filters byte for byte, raw testnet blocks → basic filters and
 * filter headers.
 */
import { describe, expect, it } from 'vitest';
import {
  BIP158_BASIC_M,
  BIP158_BASIC_P,
  bip158BasicParams,
  buildGcs,
  decodeGcs,
  GCS_MAX_M,
  gcsCandidates,
  gcsHashedSet,
  gcsHashToRange,
  gcsMatch,
  gcsMatchAny,
  gcsSipHash,
  type GcsParams,
} from '../../protocol/keyserver/gcs.ts';
import derived from '../vectors/bip158-gcs-derived.json' with { type: 'json' };
import testnet19 from '../vectors/bip158-testnet-19.json' with { type: 'json' };
import {
  unhex,
  hex,
  reversed,
  filterHeaderDisplay,
  BASIC_KEY,
  BASIC,
  basicFilterElements,
} from '../support/gcs-fixtures.ts';

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
