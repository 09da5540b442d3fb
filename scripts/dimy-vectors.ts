/**
 * Generates test/vectors/dimy.json: tracecity's DIMY test vectors (NOT official — no official
 * DIMY vectors exist, SPECS §4; format in docs/dimy-vectors.md).
 *
 *   npx tsx scripts/dimy-vectors.ts [--out test/vectors/dimy.json]      (npm run vectors:dimy)
 *
 * Everything follows from the seed through the project's DRBG (protocol/crypto/drbg.ts v1), in a
 * fixed draw order: per EphID case, A's secret (32 B), A's Shamir coefficients (64 B), B's secret,
 * B's coefficients; then the QBF's private items, then the CBF's private items (32 B each). The
 * file is written with a fixed key order, lowercase hex, arrays of numbers on one line and floats
 * rounded to 10 significant digits, so regenerating is byte-identical (test/dimy/vectors.test.ts).
 * Generation uses the @noble suite; the test checks the node:crypto suite gives the same file.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { SeededRng } from '../protocol/crypto/drbg.ts';
import { nobleSuite } from '../protocol/crypto/noble.ts';
import type { CryptoSuite } from '../protocol/crypto/suite.ts';
import { bloomInsert, bloomPositions, createBloom, DIMY_BLOOM_BITS, DIMY_BLOOM_BYTES, DIMY_BLOOM_HASHES, type BloomFilter } from '../protocol/dimy/bloom.ts';
import { DIMY_EPHID_BYTES, DIMY_SHARE_PAYLOAD_BYTES, dimyEncId, dimyEphId, encodeDimyShare, ephIdTag, reconstructEphId, splitEphId, type DimyShare } from '../protocol/dimy/ephid.ts';
import { GF256_POLYNOMIAL } from '../protocol/dimy/gf256.ts';
import { DEFAULT_DIMY_MATCH_RULE, matchFilters, matchThreshold, hypergeometricUpperTail, resolveMatchRule, DIMY_MATCH_RULES } from '../protocol/dimy/matching.ts';
import { DIMY_DEFAULT_K, DIMY_DEFAULT_N } from '../protocol/dimy/shamir.ts';
import { expectedRandomOverlap } from '../protocol/dimy/bloom-stats.ts';

export const DIMY_VECTORS_SEED = 'tracecity dimy vectors v1';
export const DIMY_VECTORS_PATH = fileURLToPath(new URL('../test/vectors/dimy.json', import.meta.url));
/** EphID cases (A/B pairs), k-subsets reconstructed per party, matching sizes. */
const EPHID_CASES = 3;
const SUBSETS: readonly (readonly number[])[] = [
  [1, 2, 3],
  [5, 3, 1],
  [2, 4, 5],
];
const QBF_PRIVATE_ITEMS = 37;
const CBF_PRIVATE_ITEMS = 117;
/** Fills of the threshold table (set bits: 40/120, 100/300, 1,000 and 21,000 items; matching.ts header). */
const THRESHOLD_FILLS: readonly (readonly [number, number])[] = [
  [120, 360],
  [300, 899],
  [2994, 2994],
  [60583, 60583],
];

type Json = string | number | boolean | null | readonly Json[] | { readonly [key: string]: Json };

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
/**
 * 10 significant digits: the tails are accurate to ~1e-9 relative (ln n! of n ≈ 800,000 carries
 * ~2e-9 of rounding), and the file stays stable across last-ulp differences of Math.log/exp.
 */
const round = (x: number): number => Number(x.toPrecision(10));
const num = (x: number): Json => (Number.isFinite(x) ? round(x) : null);

function expectOk<T>(v: { ok: true; value: T } | { ok: false; reason: string }, what: string): T {
  if (!v.ok) throw new Error(`dimy-vectors: ${what} rejected (${v.reason})`);
  return v.value;
}

function party(crypto: CryptoSuite, rng: SeededRng): { json: Json; secret: Uint8Array; ephId: Uint8Array; shares: DimyShare[] } {
  const secret = rng.bytes(32);
  const coefficients = rng.bytes((DIMY_DEFAULT_K - 1) * DIMY_EPHID_BYTES);
  const ephId = dimyEphId(crypto, secret);
  const shares = splitEphId(crypto, ephId, coefficients);
  const reconstructions = SUBSETS.map((indices) => {
    const picked = indices.map((i) => shares[i - 1] as DimyShare);
    const got = expectOk(reconstructEphId(crypto, picked), `reconstruction ${indices.join(',')}`);
    if (hex(got) !== hex(ephId)) throw new Error('dimy-vectors: reconstruction differs');
    return { indices: [...indices], ephId: hex(got) };
  });
  // A corrupted share (one bit of share 2's first byte) must fail the tag check.
  const corrupt = shares.map((s, i) => (i === 1 ? { ...s, bytes: Uint8Array.from(s.bytes, (b, j) => (j === 0 ? b ^ 1 : b)) } : s));
  const bad = reconstructEphId(crypto, corrupt.slice(0, 3));
  if (bad.ok || bad.reason !== 'tag-mismatch') throw new Error('dimy-vectors: corrupted share not detected');
  const json: Json = {
    secret: hex(secret),
    ephId: hex(ephId),
    tag: hex(ephIdTag(crypto, ephId)),
    coefficients: hex(coefficients),
    shares: shares.map((s) => ({ index: s.index, bytes: hex(s.bytes), payload: hex(encodeDimyShare(s)) })),
    reconstructions,
    corrupted: { indices: [1, 2, 3], flipped: { share: 2, byte: 0, mask: 1 }, payload: hex(encodeDimyShare(corrupt[1] as DimyShare)), expected: 'tag-mismatch' },
  };
  return { json, secret, ephId, shares };
}

function setBitPositions(filter: BloomFilter): number[] {
  const out: number[] = [];
  filter.bits.forEach((v, byte) => {
    for (let bit = 0; bit < 8; bit++) if ((v >>> bit) & 1) out.push(byte * 8 + bit);
  });
  return out;
}

function filterOf(items: readonly Uint8Array[]): BloomFilter {
  const filter = createBloom();
  for (const item of items) bloomInsert(filter, item);
  return filter;
}

function matchCase(name: string, shared: readonly Uint8Array[], qPrivate: readonly Uint8Array[], cPrivate: readonly Uint8Array[]): Json {
  const qbf = filterOf([...qPrivate, ...shared]);
  const cbf = filterOf([...cPrivate, ...shared]);
  const v = matchFilters(qbf, cbf);
  const qSet = setBitPositions(qbf);
  const cSet = new Set(setBitPositions(cbf));
  const rules: Record<string, Json> = {};
  for (const rule of DIMY_MATCH_RULES) {
    const r = matchFilters(qbf, cbf, resolveMatchRule({ name: rule }));
    rules[rule] = { threshold: num(r.threshold), matched: r.matched };
  }
  return {
    name,
    sharedEncIds: shared.map(hex),
    qbf: { setBits: v.setQuery, positions: qSet },
    cbf: { setBits: v.setContact, positions: [...cSet] },
    commonPositions: qSet.filter((p) => cSet.has(p)),
    common: v.common,
    expected: num(v.expected),
    sigma: num(v.sigma),
    z: num(v.z),
    pValue: num(v.pValue),
    rules,
  };
}

export function generateDimyVectors(crypto: CryptoSuite): Json {
  const rng = new SeededRng(new TextEncoder().encode(DIMY_VECTORS_SEED));
  const cases: Json[] = [];
  const encIds: Uint8Array[] = [];
  for (let c = 0; c < EPHID_CASES; c++) {
    const a = party(crypto, rng);
    const b = party(crypto, rng);
    const ab = expectOk(dimyEncId(crypto, a.secret, b.ephId), 'EncID AB');
    const ba = expectOk(dimyEncId(crypto, b.secret, a.ephId), 'EncID BA');
    if (hex(ab) !== hex(ba)) throw new Error('dimy-vectors: EncID differs between the two sides');
    encIds.push(ab);
    cases.push({ name: `encounter-${c + 1}`, a: a.json, b: b.json, encIdAB: hex(ab), encIdBA: hex(ba), bloomPositions: bloomPositions(ab) });
  }
  const qPrivate = Array.from({ length: QBF_PRIVATE_ITEMS }, () => rng.bytes(32));
  const cPrivate = Array.from({ length: CBF_PRIVATE_ITEMS }, () => rng.bytes(32));
  const rule = DEFAULT_DIMY_MATCH_RULE;
  return {
    description: 'tracecity-generated DIMY test vectors: NOT official (no official DIMY vectors exist, SPECS §4). Format: docs/dimy-vectors.md.',
    generator: { script: 'scripts/dimy-vectors.ts', seed: DIMY_VECTORS_SEED, drbg: 'protocol/crypto/drbg.ts v1: ChaCha20 keystream under SHA-256("tracecity-drbg-v1" || 0x00 || UTF-8 seed)' },
    parameters: {
      curve: 'X25519 (RFC 7748)',
      secretBytes: 32,
      ephId: 'X25519 public key of the secret, 32 bytes',
      tag: 'SHA-256(EphID)[0:3]',
      encId: 'X25519(own secret, peer EphID), 32 bytes, used raw (no KDF)',
      shamir: {
        field: `GF(2^8) mod 0x${GF256_POLYNOMIAL.toString(16)} (x^8 + x^4 + x^3 + x + 1), byte-wise`,
        k: DIMY_DEFAULT_K,
        n: DIMY_DEFAULT_N,
        indices: '1..n',
        coefficients: '(k - 1) * 32 bytes, coefficient-major: coefficients[(c - 1) * 32 + j] = a_c of byte j; share(x)[j] = EphID[j] + a_1 x + a_2 x^2',
      },
      sharePayload: {
        version: 1,
        bytes: DIMY_SHARE_PAYLOAD_BYTES,
        layout: [
          { offset: 0, length: 1, field: 'version = 0x01' },
          { offset: 1, length: 3, field: 'tag' },
          { offset: 4, length: 1, field: 'share index x' },
          { offset: 5, length: 32, field: 'share bytes' },
        ],
      },
      bloom: {
        bits: DIMY_BLOOM_BITS,
        bytes: DIMY_BLOOM_BYTES,
        hashes: DIMY_BLOOM_HASHES,
        positions: 'willf/bloom v2.0.3: (h0,h1) = MurmurHash3_x64_128(item, 0), (h2,h3) = MurmurHash3_x64_128(item || 0x01, 0); location_i = (h[i mod 2] + i * h[2 + ((i + (i mod 2)) mod 4) / 2]) mod 2^64 mod m',
        bitOrder: 'bit p is byte floor(p / 8), mask 1 << (p mod 8)',
        encoding: '0x01 || 100,000 bytes of bits',
      },
      matching: {
        defaultRule: rule.name,
        minCommonBits: rule.minCommonBits,
        alpha: rule.alpha,
        z: rule.z,
        rule: 'matched iff c >= minCommonBits and P(C >= c) <= alpha, C ~ Hypergeometric(m, setBits(QBF), setBits(CBF)); threshold = smallest such c',
      },
    },
    cases,
    matching: {
      qbfPrivateItems: qPrivate.map(hex),
      cbfPrivateItems: cPrivate.map(hex),
      cases: [
        matchCase('three-shared-encounters', encIds, qPrivate, cPrivate),
        matchCase('one-shared-encounter', encIds.slice(0, 1), qPrivate, cPrivate),
        matchCase('no-shared-encounter', [], qPrivate, cPrivate),
      ],
    },
    thresholds: THRESHOLD_FILLS.map(([q, c]) => {
      const { expected, sigma } = expectedRandomOverlap(q, c);
      const t = matchThreshold(q, c);
      const tz = matchThreshold(q, c, resolveMatchRule({ name: 'z-score' }));
      return {
        setQuery: q,
        setContact: c,
        expected: num(expected),
        sigma: num(sigma),
        tail: { threshold: t, pValue: num(hypergeometricUpperTail(t, q, c)), pValueBelow: num(hypergeometricUpperTail(t - 1, q, c)) },
        zScore: { threshold: tz, pValue: num(hypergeometricUpperTail(tz, q, c)) },
      };
    }),
  };
}

/** Deterministic JSON: keys in insertion order, 2-space indent, arrays of scalars on one line. */
export function renderDimyVectors(value: Json, indent = ''): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    const list = value as readonly Json[];
    if (list.every((v) => v === null || typeof v !== 'object')) return `[${list.map((v) => JSON.stringify(v)).join(', ')}]`;
    return `[\n${list.map((v) => inner + renderDimyVectors(v, inner)).join(',\n')}\n${indent}]`;
  }
  const entries = Object.entries(value as { readonly [key: string]: Json });
  if (entries.length === 0) return '{}';
  return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${renderDimyVectors(v, inner)}`).join(',\n')}\n${indent}}`;
}

export function dimyVectorsText(crypto: CryptoSuite = nobleSuite): string {
  return `${renderDimyVectors(generateDimyVectors(crypto))}\n`;
}

function main(argv: readonly string[]): void {
  const at = argv.indexOf('--out');
  const out = at >= 0 ? argv[at + 1] : undefined;
  if (at >= 0 && out === undefined) throw new Error('usage: npx tsx scripts/dimy-vectors.ts [--out FILE]');
  const path = out === undefined ? DIMY_VECTORS_PATH : resolve(out);
  writeFileSync(path, dimyVectorsText());
  process.stdout.write(`wrote ${path}\n`);
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(resolve(entry)).href) main(process.argv.slice(2));
