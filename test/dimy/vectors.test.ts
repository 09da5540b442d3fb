/**
 * tracecity's DIMY vectors (test/vectors/dimy.json, NOT official; docs/dimy-vectors.md): (a)
 * scripts/dimy-vectors.ts regenerates the committed file byte for byte, under either crypto
 * suite; (b) every value is re-derived from the file's inputs with the library under both suites:
 * EphID, tag, shares and payloads from the secret and coefficients, reconstruction from each
 * listed k-subset, the corrupted-share rejection, EncID from both sides, Bloom positions, the
 * QBF/CBF set bits, overlap statistics and every rule's verdict, and the threshold table.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { nobleSuite } from '../../protocol/crypto/noble.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import { bloomInsert, bloomPositions, createBloom, DIMY_BLOOM_BITS, DIMY_BLOOM_BYTES, DIMY_BLOOM_HASHES, type BloomFilter } from '../../protocol/dimy/bloom.ts';
import { expectedRandomOverlap } from '../../protocol/dimy/bloom-stats.ts';
import { decodeDimyShare, DIMY_SHARE_PAYLOAD_BYTES, dimyEncId, dimyEphId, encodeDimyShare, ephIdTag, reconstructEphId, splitEphId, type DimyShare } from '../../protocol/dimy/ephid.ts';
import { DEFAULT_DIMY_MATCH_RULE, hypergeometricUpperTail, matchFilters, matchThreshold, resolveMatchRule, type DimyMatchRuleName } from '../../protocol/dimy/matching.ts';
import { DIMY_DEFAULT_K, DIMY_DEFAULT_N } from '../../protocol/dimy/shamir.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { DIMY_VECTORS_PATH, dimyVectorsText } from '../../scripts/dimy-vectors.ts';
import vectors from '../vectors/dimy.json' with { type: 'json' };

const SUITES: readonly (readonly [string, CryptoSuite])[] = [
  ['noble', nobleSuite],
  ['node', nodeSuite],
];
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
/** Floats in the file carry 10 significant digits. */
const close = (got: number, want: number | null): void => {
  if (want === null) expect(got).toBe(Infinity);
  else expect(Math.abs(got - want)).toBeLessThanOrEqual(1e-9 * Math.abs(want) + 1e-300);
};

function filterOf(items: readonly string[]): BloomFilter {
  const filter = createBloom();
  for (const item of items) bloomInsert(filter, unhex(item));
  return filter;
}
const positionsOf = (filter: BloomFilter): number[] => {
  const out: number[] = [];
  filter.bits.forEach((v, byte) => {
    for (let bit = 0; bit < 8; bit++) if ((v >>> bit) & 1) out.push(byte * 8 + bit);
  });
  return out;
};

describe('test/vectors/dimy.json is reproducible', () => {
  it.each(SUITES)('regenerating with the %s suite gives the committed bytes', (_name, suite) => {
    expect(dimyVectorsText(suite) === readFileSync(DIMY_VECTORS_PATH, 'utf8')).toBe(true);
  });

  it('the parameters are the library\u2019s', () => {
    const p = vectors.parameters;
    expect([p.shamir.k, p.shamir.n, p.sharePayload.bytes, p.bloom.bits, p.bloom.bytes, p.bloom.hashes]).toEqual([DIMY_DEFAULT_K, DIMY_DEFAULT_N, DIMY_SHARE_PAYLOAD_BYTES, DIMY_BLOOM_BITS, DIMY_BLOOM_BYTES, DIMY_BLOOM_HASHES]);
    expect({ name: p.matching.defaultRule, minCommonBits: p.matching.minCommonBits, alpha: p.matching.alpha, z: p.matching.z }).toEqual(DEFAULT_DIMY_MATCH_RULE);
  });
});

describe.each(SUITES)('DIMY vectors re-derived (%s)', (_name, suite) => {
  type Party = (typeof vectors.cases)[number]['a'];
  function checkParty(p: Party): void {
    const ephId = dimyEphId(suite, unhex(p.secret));
    expect(hex(ephId)).toBe(p.ephId);
    expect(hex(ephIdTag(suite, ephId))).toBe(p.tag);
    const shares = splitEphId(suite, ephId, unhex(p.coefficients));
    expect(shares.map((s) => ({ index: s.index, bytes: hex(s.bytes), payload: hex(encodeDimyShare(s)) }))).toEqual(p.shares);
    const decoded = p.shares.map((s) => {
      const v = decodeDimyShare(unhex(s.payload));
      if (!v.ok) throw new Error(v.detail);
      return v.value;
    });
    for (const r of p.reconstructions) {
      const v = reconstructEphId(suite, r.indices.map((i) => decoded[i - 1] as DimyShare));
      expect(v.ok && hex(v.value)).toBe(r.ephId);
    }
    const corrupt = decodeDimyShare(unhex(p.corrupted.payload));
    expect(corrupt.ok && corrupt.value.index).toBe(p.corrupted.flipped.share);
    if (!corrupt.ok) return;
    expect(corrupt.value.bytes[0]).toBe((decoded[1]?.bytes[0] ?? 0) ^ p.corrupted.flipped.mask);
    const used = p.corrupted.indices.map((i) => (i === p.corrupted.flipped.share ? corrupt.value : (decoded[i - 1] as DimyShare)));
    const bad = reconstructEphId(suite, used);
    expect(bad.ok ? 'accepted' : bad.reason).toBe(p.corrupted.expected);
  }

  it.each(vectors.cases.map((c) => [c.name, c] as const))('%s: EphIDs, tags, shares, reconstructions, EncID both ways, Bloom positions', (_case, c) => {
    checkParty(c.a);
    checkParty(c.b);
    const ab = dimyEncId(suite, unhex(c.a.secret), unhex(c.b.ephId));
    const ba = dimyEncId(suite, unhex(c.b.secret), unhex(c.a.ephId));
    expect(ab.ok && hex(ab.value)).toBe(c.encIdAB);
    expect(ba.ok && hex(ba.value)).toBe(c.encIdBA);
    expect(c.encIdAB).toBe(c.encIdBA);
    expect(bloomPositions(unhex(c.encIdAB))).toEqual(c.bloomPositions);
  });

  it.each(vectors.matching.cases.map((c) => [c.name, c] as const))('matching %s: filters, overlap and every rule', (_case, c) => {
    expect(c.sharedEncIds.every((e) => vectors.cases.some((k) => k.encIdAB === e))).toBe(true);
    const qbf = filterOf([...vectors.matching.qbfPrivateItems, ...c.sharedEncIds]);
    const cbf = filterOf([...vectors.matching.cbfPrivateItems, ...c.sharedEncIds]);
    expect(positionsOf(qbf)).toEqual(c.qbf.positions);
    expect(positionsOf(cbf)).toEqual(c.cbf.positions);
    const v = matchFilters(qbf, cbf);
    expect([v.setQuery, v.setContact, v.common]).toEqual([c.qbf.setBits, c.cbf.setBits, c.common]);
    expect(c.commonPositions).toHaveLength(c.common);
    close(v.expected, c.expected);
    close(v.sigma, c.sigma);
    close(v.z, c.z);
    close(v.pValue, c.pValue);
    for (const [name, want] of Object.entries(c.rules)) {
      const r = matchFilters(qbf, cbf, resolveMatchRule({ name: name as DimyMatchRuleName }));
      expect({ threshold: r.threshold, matched: r.matched }).toEqual(want);
    }
  });

  it('threshold table', () => {
    for (const t of vectors.thresholds) {
      const { expected, sigma } = expectedRandomOverlap(t.setQuery, t.setContact);
      close(expected, t.expected);
      close(sigma, t.sigma);
      expect(matchThreshold(t.setQuery, t.setContact)).toBe(t.tail.threshold);
      expect(matchThreshold(t.setQuery, t.setContact, resolveMatchRule({ name: 'z-score' }))).toBe(t.zScore.threshold);
      close(hypergeometricUpperTail(t.tail.threshold, t.setQuery, t.setContact), t.tail.pValue);
      close(hypergeometricUpperTail(t.tail.threshold - 1, t.setQuery, t.setContact), t.tail.pValueBelow);
      close(hypergeometricUpperTail(t.zScore.threshold, t.setQuery, t.setContact), t.zScore.pValue);
    }
  });
});
