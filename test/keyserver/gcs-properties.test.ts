/**
 * Golomb-coded sets (SPECS §6, BIP158): fast-check properties with fixed seeds —
 * round trips against an independent encoder, membership, the false-positive
 * rate, and random/mutated filters → typed rejections or canonical decodes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readCompactSize } from '../../protocol/keyserver/bitstream.ts';
import {
  buildGcs,
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
  type GcsParams,
} from '../../protocol/keyserver/gcs.ts';
import {
  unhex,
  hex,
  reasonOf,
  REASONS,
  BASIC_KEY,
  BASIC,
  referenceEncode,
} from '../support/gcs-fixtures.ts';

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
