/**
 * GAEN metadata, AEM and service data (SPECS §1.4, §1.5): the metadata byte layout, hostile bytes
 * giving typed rejections (never a throw), caller misuse (MisuseError naming the field), and
 * fast-check properties — AEM decryption inverts encryption, AEM is CTR with the RPI as the
 * initial counter block (first 4 bytes of AES-ECB(AEMK, RPI) ⊕ metadata), noble and node agree,
 * metadata and service data round-trip.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nobleSuite } from '../../protocol/crypto/noble.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import {
  decryptAem,
  EN_METADATA_CODEC,
  EN_METADATA_VERSION_1_0,
  EN_METADATA_VERSION_1_1,
  EN_SERVICE_DATA_CODEC,
  EN_SERVICE_UUID16,
  encodeEnMetadata,
  encodeEnServiceData,
  encryptAem,
  parseEnMetadata,
  parseEnServiceData,
  type EnMetadata,
} from '../../protocol/gaen/metadata.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { misuseField } from '../support/misuse.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const SUITES: readonly (readonly [string, CryptoSuite])[] = [
  ['noble', nobleSuite],
  ['node', nodeSuite],
];
const bytes = (n: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: n, maxLength: n });
const twoBits = fc.integer({ min: 0, max: 3 });
const metadataArb: fc.Arbitrary<EnMetadata> = fc.record({
  versionMajor: twoBits,
  versionMinor: twoBits,
  txPowerConfidence: twoBits,
  txPowerDbm: fc.integer({ min: -128, max: 127 }),
});
const V1_0: EnMetadata = { versionMajor: 1, versionMinor: 0, txPowerConfidence: 0, txPowerDbm: 8 };

describe('SPECS §1.4 metadata layout', () => {
  it('version byte: major bits 7:6, minor 5:4, confidence 3:2; TX power a signed int8; bytes 2–3 zero', () => {
    expect(hex(encodeEnMetadata(V1_0))).toBe('40080000');
    expect(encodeEnMetadata({ ...V1_0, versionMinor: 1 })[0]).toBe(EN_METADATA_VERSION_1_1);
    expect(encodeEnMetadata(V1_0)[0]).toBe(EN_METADATA_VERSION_1_0);
    expect(hex(encodeEnMetadata({ versionMajor: 1, versionMinor: 1, txPowerConfidence: 2, txPowerDbm: -20 }))).toBe('58ec0000');
    expect(hex(encodeEnMetadata({ versionMajor: 3, versionMinor: 3, txPowerConfidence: 3, txPowerDbm: -128 }))).toBe('fc800000');
  });

  it('the parser reads v1.1 with confidence and negative power, and ignores reserved bits and bytes', () => {
    expect(parseEnMetadata(Uint8Array.of(0x5b, 0xec, 0xaa, 0x55))).toEqual({
      ok: true,
      value: { versionMajor: 1, versionMinor: 1, txPowerConfidence: 2, txPowerDbm: -20 },
    });
  });

  it('SPECS §1.5 the service UUID is 0xFD6F', () => {
    expect(EN_SERVICE_UUID16).toBe(0xfd6f);
  });
});

describe('SPECS §1.4–1.5 hostile bytes give typed rejections', () => {
  it.each([0, 3, 5, 20])('metadata of %i bytes is bad-length', (n) => {
    expect(parseEnMetadata(new Uint8Array(n))).toMatchObject({ ok: false, codec: EN_METADATA_CODEC, reason: 'bad-length' });
  });

  it.each([0, 16, 19, 21, 31])('service data of %i bytes is bad-length', (n) => {
    expect(parseEnServiceData(new Uint8Array(n))).toMatchObject({ ok: false, codec: EN_SERVICE_DATA_CODEC, reason: 'bad-length' });
  });

  it('no byte string makes either parser throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (b) => {
        const m = parseEnMetadata(b);
        const s = parseEnServiceData(b);
        return m.ok === (b.length === 4) && s.ok === (b.length === 20);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('SPECS §1.4–1.5 caller misuse throws MisuseError naming the field', () => {
  const k = new Uint8Array(16);
  const m = new Uint8Array(4);
  it.each([
    ['aemk', () => encryptAem(nodeSuite, new Uint8Array(32), k, m)],
    ['rpi', () => encryptAem(nodeSuite, k, new Uint8Array(15), m)],
    ['metadata', () => encryptAem(nodeSuite, k, k, new Uint8Array(5))],
    ['aemk', () => decryptAem(nobleSuite, new Uint8Array(0), k, m)],
    ['rpi', () => decryptAem(nobleSuite, k, new Uint8Array(20), m)],
    ['aem', () => decryptAem(nobleSuite, k, k, new Uint8Array(3))],
    ['rpi', () => encodeEnServiceData(new Uint8Array(20), m)],
    ['aem', () => encodeEnServiceData(k, new Uint8Array(16))],
    ['metadata.versionMajor', () => encodeEnMetadata({ ...V1_0, versionMajor: 4 })],
    ['metadata.versionMinor', () => encodeEnMetadata({ ...V1_0, versionMinor: -1 })],
    ['metadata.txPowerConfidence', () => encodeEnMetadata({ ...V1_0, txPowerConfidence: 1.5 })],
    ['metadata.txPowerDbm', () => encodeEnMetadata({ ...V1_0, txPowerDbm: 128 })],
    ['metadata.txPowerDbm', () => encodeEnMetadata({ ...V1_0, txPowerDbm: -129 })],
  ])('%s', (field, fn) => {
    expect(misuseField(fn)).toBe(field);
  });
});

describe('SPECS §1.4–1.5 properties (fast-check)', () => {
  it.each(SUITES)('decryptAem inverts encryptAem, and AEM = AES-ECB(AEMK, RPI)[0:4] ⊕ metadata (%s)', (_n, suite) => {
    fc.assert(
      fc.property(bytes(16), bytes(16), bytes(4), (key, rpi, metadata) => {
        const aem = encryptAem(suite, key, rpi, metadata);
        const block = suite.aesEcbEncrypt(key, rpi);
        return (
          hex(decryptAem(suite, key, rpi, aem)) === hex(metadata) &&
          aem.every((byte, i) => byte === ((block[i] ?? 0) ^ (metadata[i] ?? 0)))
        );
      }),
      { numRuns: 300 },
    );
  });

  it('noble and node agree on the AEM', () => {
    fc.assert(
      fc.property(bytes(16), bytes(16), bytes(4), (key, rpi, metadata) => {
        return hex(encryptAem(nobleSuite, key, rpi, metadata)) === hex(encryptAem(nodeSuite, key, rpi, metadata));
      }),
      { numRuns: 300 },
    );
  });

  it('metadata encode → parse is the identity on the fields', () => {
    fc.assert(
      fc.property(metadataArb, (m) => {
        const parsed = parseEnMetadata(encodeEnMetadata(m));
        return parsed.ok && JSON.stringify(parsed.value) === JSON.stringify(m);
      }),
      { numRuns: 500 },
    );
  });

  it('service data encode → parse gives back RPI and AEM', () => {
    fc.assert(
      fc.property(bytes(16), bytes(4), (rpi, aem) => {
        const parsed = parseEnServiceData(encodeEnServiceData(rpi, aem));
        return parsed.ok && hex(parsed.value.rpi) === hex(rpi) && hex(parsed.value.aem) === hex(aem);
      }),
      { numRuns: 300 },
    );
  });
});
