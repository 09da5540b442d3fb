/**
 * The suites' batched primitives (protocol/crypto/batch.ts): hkdfSha256Batch and aesEcbEncryptBatch
 * under both suites against the RFC 5869 and SP 800-38A vectors, against each suite's own single
 * calls and the other suite (fast-check), layout misuse, and the GAEN RPIK. The GAEN RPIs through
 * RpiBatch (both batched calls together) are in test/gaen/vectors.test.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nobleSuite } from '../../protocol/crypto/noble.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import { MisuseError } from '../../protocol/errors.ts';
import { RPIK_HKDF_INFO } from '../../protocol/gaen/keys.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import vectors from '../vectors/crypto-rfc.json' with { type: 'json' };
import gaen from '../vectors/gaen.json' with { type: 'json' };

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const concat = (parts: readonly Uint8Array[]): Uint8Array => Uint8Array.from(parts.flatMap((p) => [...p]));

function expectMisuse(fn: () => unknown, field: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(MisuseError);
  expect((thrown as MisuseError).field).toBe(field);
}

const SUITES: readonly CryptoSuite[] = [nobleSuite, nodeSuite];
const ECB_CASES = vectors.aes.cases.filter((c) => c.mode === 'ecb');

describe.each(SUITES)('$name suite: batched primitives', (suite) => {
  it.each(vectors.hkdfSha256.cases)('hkdfSha256Batch: $name, alone and three times over in one batch', (c) => {
    const ikm = hex(c.ikm);
    expect(toHex(suite.hkdfSha256Batch(ikm, ikm.length, hex(c.salt), hex(c.info), c.length))).toBe(c.okm);
    expect(toHex(suite.hkdfSha256Batch(concat([ikm, ikm, ikm]), ikm.length, hex(c.salt), hex(c.info), c.length))).toBe(c.okm.repeat(3));
  });

  it('hkdfSha256Batch: the GAEN RPIK (SPECS §1.3, NULL salt as empty or as 32 zero bytes), into a given `out`', () => {
    const tek = hex(gaen.TEMPORARY_TRACING_KEY);
    const out = new Uint8Array(40).fill(0xee);
    expect(suite.hkdfSha256Batch(concat([tek, tek]), 16, new Uint8Array(0), RPIK_HKDF_INFO, 16, out)).toBe(out);
    expect(toHex(out)).toBe(gaen.RPIK.repeat(2) + 'ee'.repeat(8));
    expect(toHex(suite.hkdfSha256Batch(tek, 16, new Uint8Array(32), RPIK_HKDF_INFO, 16))).toBe(gaen.RPIK);
  });

  it('hkdfSha256Batch: empty batches, and layout misuse', () => {
    expect(suite.hkdfSha256Batch(new Uint8Array(0), 16, new Uint8Array(0), RPIK_HKDF_INFO, 16)).toHaveLength(0);
    expect(suite.hkdfSha256Batch(new Uint8Array(0), 0, new Uint8Array(0), RPIK_HKDF_INFO, 16)).toHaveLength(0);
    expectMisuse(() => suite.hkdfSha256Batch(new Uint8Array(20), 16, new Uint8Array(0), RPIK_HKDF_INFO, 16), 'ikms');
    expectMisuse(() => suite.hkdfSha256Batch(new Uint8Array(16), -1, new Uint8Array(0), RPIK_HKDF_INFO, 16), 'ikmLength');
    expectMisuse(() => suite.hkdfSha256Batch(new Uint8Array(16), 16, new Uint8Array(0), RPIK_HKDF_INFO, 255 * 32 + 1), 'length');
    expectMisuse(() => suite.hkdfSha256Batch(new Uint8Array(32), 16, new Uint8Array(0), RPIK_HKDF_INFO, 16, new Uint8Array(31)), 'out');
  });

  it.each(ECB_CASES)('aesEcbEncryptBatch: $name, split over keys in every way', (c) => {
    const key = hex(c.key);
    const plaintext = hex(c.plaintext);
    const blocks = plaintext.length / 16;
    expect(toHex(suite.aesEcbEncryptBatch(key, key.length, plaintext, [blocks]))).toBe(c.ciphertext);
    // The same key twice over two segments (1 + rest), and empty segments in between.
    const twice = concat([key, key, key]);
    expect(toHex(suite.aesEcbEncryptBatch(twice, key.length, plaintext, [1, 0, blocks - 1]))).toBe(c.ciphertext);
    const out = new Uint8Array(plaintext.length + 16);
    expect(suite.aesEcbEncryptBatch(twice, key.length, plaintext, [0, blocks, 0], out)).toBe(out);
    expect(toHex(out.subarray(0, plaintext.length))).toBe(c.ciphertext);
  });

  it('aesEcbEncryptBatch: layout misuse names the argument', () => {
    const k = new Uint8Array(32);
    expectMisuse(() => suite.aesEcbEncryptBatch(k, 24, new Uint8Array(16), [1]), 'keyLength');
    expectMisuse(() => suite.aesEcbEncryptBatch(k, 16, new Uint8Array(16), [1]), 'keys');
    expectMisuse(() => suite.aesEcbEncryptBatch(k, 16, new Uint8Array(17), [1, 0]), 'data');
    expectMisuse(() => suite.aesEcbEncryptBatch(k, 16, new Uint8Array(32), [1, 0]), 'data');
    expectMisuse(() => suite.aesEcbEncryptBatch(k, 16, new Uint8Array(16), [2, -1]), 'blockCounts[1]');
    expectMisuse(() => suite.aesEcbEncryptBatch(k, 16, new Uint8Array(16), [0.5, 0.5]), 'blockCounts[0]');
    expectMisuse(() => suite.aesEcbEncryptBatch(k, 16, new Uint8Array(32), [1, 1], new Uint8Array(16)), 'out');
    expect(suite.aesEcbEncryptBatch(new Uint8Array(0), 16, new Uint8Array(0), [])).toHaveLength(0);
  });
});

describe('batched primitives: each suite against its own single calls and the other suite (fast-check)', () => {
  const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });
  const runs = { numRuns: 60 };

  it('hkdfSha256Batch = n × hkdfSha256 (IKMs, salts and info across block boundaries, multi-block OKM)', () =>
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 1, max: 130 }), bytes(0, 140), bytes(0, 140), fc.integer({ min: 0, max: 100 }), (n, ikmLength, salt, info, length) => {
        const ikms = Uint8Array.from({ length: n * ikmLength }, (_, i) => (i * 131 + ikmLength) & 0xff);
        const expected = toHex(concat(Array.from({ length: n }, (_, i) => nobleSuite.hkdfSha256(ikms.subarray(i * ikmLength, (i + 1) * ikmLength), salt, info, length))));
        for (const suite of SUITES) expect(toHex(suite.hkdfSha256Batch(ikms, ikmLength, salt, info, length))).toBe(expected);
      }),
      runs,
    ));

  it('aesEcbEncryptBatch = one aesEcbEncrypt per segment, noble and node alike (AES-128 and -256)', () =>
    fc.assert(
      fc.property(fc.constantFrom(16, 32), fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 5 }), (keyLength, counts) => {
        const keys = Uint8Array.from({ length: counts.length * keyLength }, (_, i) => (i * 37 + keyLength) & 0xff);
        const blocks = counts.reduce((a, b) => a + b, 0);
        const data = Uint8Array.from({ length: 16 * blocks }, (_, i) => (i * 59) & 0xff);
        let at = 0;
        const expected = counts.map((count, i) => {
          const segment = data.subarray(at, at + 16 * count);
          at += 16 * count;
          return nodeSuite.aesEcbEncrypt(keys.subarray(i * keyLength, (i + 1) * keyLength), segment);
        });
        for (const suite of SUITES) expect(toHex(suite.aesEcbEncryptBatch(keys, keyLength, data, counts))).toBe(toHex(concat(expected)));
      }),
      runs,
    ));
});
