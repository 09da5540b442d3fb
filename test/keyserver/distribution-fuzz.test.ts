/**
 * Key-server distribution (issue 4): ≥ 10,000 hostile files and indexes →
 * typed rejections only, in bounded memory.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_INT32 } from '../../protocol/keyserver/gaen-export-schema.ts';
import { lowSDer } from '../../protocol/keyserver/distribution-signing.ts';
import {
  decodeDistributionIndex,
  distributionSigningMessage,
  encodeDistributionFile,
  encodeDistributionIndex,
  openDistributionFile,
  signDistributionFile,
} from '../../protocol/keyserver/distribution.ts';
import { packWire, unpackWire, type WireMap, type WireValue } from '../../protocol/wire/msgpack.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { prng } from '../support/test-rng.ts';
import {
  hex,
  concat,
  valueOf,
  SIGNING_KEY,
  KEY_ID,
  KEYS,
  OPEN_REASONS,
  INDEX_REASONS,
  tek,
  SEED,
  REPORT,
  NAME_A,
  NAME_B,
  delta,
  indexArb,
} from '../support/distribution-fixtures.ts';

describe('fuzz: hostile files and indexes → typed rejections only', () => {
  const rand = prng(20_261_122);
  const int = (n: number): number => Math.floor(rand() * n);
  const randomBytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => int(256));
  const mutate = (src: Uint8Array): Uint8Array => {
    const t = src.slice();
    const kind = int(5);
    if (kind === 0) return t.subarray(0, int(t.length + 1));
    if (kind === 1) return concat(t.subarray(0, int(t.length)), randomBytes(1 + int(8)), t.subarray(int(t.length)));
    const flips = 1 + int(kind === 4 ? 16 : 3);
    for (let i = 0; i < flips && t.length > 0; i++) t[int(t.length)] = kind === 2 ? t[int(t.length)]! ^ (1 << int(8)) : int(256);
    return t;
  };
  const randomValue = (depth = 0): WireValue => {
    switch (int(depth > 1 ? 8 : 10)) {
      case 0: return int(300) - 50;
      case 1: return [0, -1, 1.5, 2 ** 53, 144, 145, 65_536, MAX_INT32 + 1][int(8)]!;
      case 2: return ['gaen-tek', 'dp3t-seed', 'tcn-report', 'full', 'delta', 'ecdsa-p256-sha256', KEY_ID, ''][int(8)]!;
      case 3: return randomBytes([0, 15, 16, 31, 32, 33, 64, 72, 134, 389][int(10)]!);
      case 4: return null;
      case 5: return rand() < 0.5;
      case 6: return randomBytes(int(40));
      case 7: return 'x'.repeat(int(70));
      case 8: return Array.from({ length: int(4) }, () => randomValue(depth + 1));
      default: return Object.fromEntries(Array.from({ length: int(4) }, (_, i) => [['t', 'key', 'v', 'seq', 'body'][i] ?? 'k', randomValue(depth + 1)]));
    }
  };
  /** Drop, add or replace a field, or mutate the records' bytes. */
  const structMutate = (map: WireMap): WireMap => {
    const copy: Record<string, WireValue> = { ...map };
    const keys = Object.keys(copy);
    const r = int(10);
    const additions = copy['additions'];
    if (r < 2) delete copy[keys[int(keys.length)]!];
    else if (r < 3) copy[['x', 'memo', 'v2'][int(3)]!] = randomValue();
    else if (r < 6 && additions instanceof Uint8Array && additions.length > 0) copy['additions'] = mutate(additions);
    else copy[keys[int(keys.length)]!] = randomValue();
    return copy;
  };
  const named = (bytes: Uint8Array): { name: string; bytes: Uint8Array } => ({ name: hex(nodeSuite.sha256(bytes)), bytes });
  /** A canonical container with a valid signature around any body bytes: reaches the body decoder. */
  const signedAround = (body: Uint8Array): { name: string; bytes: Uint8Array } => {
    const sig = lowSDer(nodeSuite.p256Sign(SIGNING_KEY, distributionSigningMessage(KEY_ID, body)))!;
    return named(packWire({ v: 1, alg: 'ecdsa-p256-sha256', keyId: KEY_ID, body, sig }));
  };

  it('≥ 10,000 random and mutated signed files (bytes, containers, bodies, fields) give only typed rejections or a valid file, in bounded memory', () => {
    const files = [
      delta(1, [tek(1), SEED, REPORT]),
      delta(7, [tek(2), tek(3)], [NAME_A, NAME_B]),
      { ...delta(9, [SEED, tek(4)]), kind: 'full' as const },
      delta(3, [], [NAME_A]),
    ];
    const signed = files.map((f) => signDistributionFile(nodeSuite, SIGNING_KEY, KEY_ID, f));
    const bodies = files.map((f) => encodeDistributionFile(nodeSuite, f));
    const containers = signed.map((s) => valueOf(unpackWire(s.bytes, 't')) as WireMap);
    const heapBefore = process.memoryUsage().heapUsed;
    let peak = heapBefore;
    const outcomes = new Map<string, number>();
    const ITERATIONS = 12_000;
    for (let i = 0; i < ITERATIONS; i++) {
      const k = int(files.length);
      let input: { name: string; bytes: Uint8Array };
      switch (i % 6) {
        case 0: input = named(randomBytes(int(400))); break;
        case 1: input = named(mutate(signed[k]!.bytes)); break;
        case 2: input = { name: signed[k]!.name, bytes: mutate(signed[k]!.bytes) }; break;
        case 3: input = signedAround(mutate(bodies[k]!)); break;
        case 4: input = signedAround(packWire(structMutate(valueOf(unpackWire(bodies[k]!, 't')) as WireMap))); break;
        default: input = named(packWire(structMutate(containers[k]!))); break;
      }
      const v = openDistributionFile(nodeSuite, KEYS, input.name, input.bytes);
      let outcome: string;
      if (v.ok) outcome = 'opened';
      else {
        expect(v.codec).toBe('keyserver-distribution');
        expect(typeof v.detail).toBe('string');
        outcome = v.reason;
      }
      expect(OPEN_REASONS.has(outcome) || outcome === 'opened', outcome).toBe(true);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      if (i % 500 === 0) peak = Math.max(peak, process.memoryUsage().heapUsed);
    }
    if (process.env['DIST_FUZZ_REPORT'] !== undefined) console.log(JSON.stringify([...outcomes]));
    expect([...outcomes.values()].reduce((a, b) => a + b, 0)).toBe(ITERATIONS);
    for (const reason of ['name-mismatch', 'malformed', 'bad-signature', 'unsupported-version', 'inconsistent', 'bad-order']) {
      expect(outcomes.get(reason) ?? 0, `${reason} in ${JSON.stringify([...outcomes])}`).toBeGreaterThan(0);
    }
    expect(peak - heapBefore).toBeLessThan(256 * 1024 * 1024);
  });

  it('≥ 10,000 random and mutated index messages give only typed rejections or a valid index, in bounded memory', () => {
    const indexes = fc.sample(indexArb, { numRuns: 8, seed: 4 });
    const encoded = indexes.map(encodeDistributionIndex);
    const heapBefore = process.memoryUsage().heapUsed;
    let peak = heapBefore;
    const outcomes = new Map<string, number>();
    const ITERATIONS = 12_000;
    for (let i = 0; i < ITERATIONS; i++) {
      const k = int(encoded.length);
      const input =
        i % 3 === 0 ? randomBytes(int(300)) : i % 3 === 1 ? mutate(encoded[k]!) : packWire(structMutate(valueOf(unpackWire(encoded[k]!, 't')) as WireMap));
      const v = decodeDistributionIndex(input);
      const outcome = v.ok ? 'decoded' : v.reason;
      if (!v.ok) expect(v.codec).toBe('keyserver-index');
      else expect(valueOf(decodeDistributionIndex(encodeDistributionIndex(v.value)))).toEqual(v.value);
      expect(INDEX_REASONS.has(outcome) || outcome === 'decoded', outcome).toBe(true);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      if (i % 500 === 0) peak = Math.max(peak, process.memoryUsage().heapUsed);
    }
    if (process.env['DIST_FUZZ_REPORT'] !== undefined) console.log(JSON.stringify([...outcomes]));
    for (const reason of ['malformed', 'inconsistent', 'unsupported-version']) expect(outcomes.get(reason) ?? 0, reason).toBeGreaterThan(0);
    expect(peak - heapBefore).toBeLessThan(256 * 1024 * 1024);
  });
});
