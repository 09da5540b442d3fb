/**
 * GAEN (SPECS §1.1–1.5) against every value of the official v1.2 vectors (test/vectors/gaen.json,
 * transcribed from EN-internals TestVectors.java) under both crypto suites: the key's ENIN from its
 * generation time, RPIK, AEMK, all 144 padded blocks (derived), all 144 RPIs — one by one and from
 * rpisForTek, and through RpiBatch's batched suite calls — and all 144 AEMs, decrypted back to the v1.0 / +8 dBm metadata.
 */
import { describe, expect, it } from 'vitest';
import { nobleSuite } from '../../protocol/crypto/noble.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import { EN_INTERVAL_SECONDS, enIntervalNumber, rollingStartIntervalNumber, TEK_ROLLING_PERIOD } from '../../protocol/gaen/interval.ts';
import { AEMK_HKDF_INFO, aemk, RPI_PADDED_PREFIX, rpi, RpiBatch, RPIK_HKDF_INFO, rpik, rpiPaddedData, rpisForRpik, rpisForTek } from '../../protocol/gaen/keys.ts';
import { decryptAem, EN_METADATA_VERSION_1_0, encodeEnMetadata, encodeEnServiceData, encryptAem, parseEnMetadata, parseEnServiceData } from '../../protocol/gaen/metadata.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { misuseField } from '../support/misuse.ts';
import vectors from '../vectors/gaen.json' with { type: 'json' };

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
const latin1 = (b: Uint8Array): string => Buffer.from(b).toString('latin1');

const SUITES: readonly (readonly [string, CryptoSuite])[] = [
  ['noble', nobleSuite],
  ['node', nodeSuite],
];

const tek = unhex(vectors.TEMPORARY_TRACING_KEY);
const START = vectors.CTINTERVAL_NUMBER_OF_GENERATED_KEY;
const PAIRS = vectors.ADVERTISED_DATA;
const METADATA = unhex(vectors.BLE_METADATA);

describe('test/vectors/gaen.json', () => {
  it('keeps its provenance and holds 144 consecutive (ENIN, RPI, AEM) entries from the key start', () => {
    expect(vectors.source).toContain('google/exposure-notifications-internals@aaada6ce5cad0ea1493930591557f8053ef4f113');
    expect(PAIRS).toHaveLength(TEK_ROLLING_PERIOD);
    expect(PAIRS.map((p) => p.i)).toEqual([...Array(144).keys()]);
    expect(PAIRS.every((p) => p.en_interval_number === START + p.i)).toBe(true);
  });

  it('its constants are the labels and periods of protocol/gaen (SPECS §1.1, §1.3, §1.4)', () => {
    expect(latin1(RPIK_HKDF_INFO)).toBe(vectors.RPIK_HKDF_INFO_STRING);
    expect(latin1(AEMK_HKDF_INFO)).toBe(vectors.AEMK_HKDF_INFO_STRING);
    expect(latin1(RPI_PADDED_PREFIX)).toBe(vectors.RPI_AES_PADDED_STRING);
    expect(vectors.ID_ROLLING_PERIOD_MINUTES * 60).toBe(EN_INTERVAL_SECONDS);
    expect(vectors.KEY_ROLLING_PERIOD_MULTIPLE_OF_ID_PERIOD).toBe(TEK_ROLLING_PERIOD);
  });
});

describe('SPECS §1.1 time: the vector key', () => {
  it('KEY_GENERATION_NSECONDS is Unix seconds (SPECS §7.4): ENIN 2642976, a full-day key start', () => {
    expect(enIntervalNumber(vectors.KEY_GENERATION_NSECONDS)).toBe(START);
    expect(rollingStartIntervalNumber(START)).toBe(START);
    expect(rollingStartIntervalNumber(START + 143)).toBe(START);
  });

  it('SPECS §1.3 PaddedData: "EN-RPI" ‖ 6 zero bytes ‖ LE32(ENIN) for all 144 intervals (derived)', () => {
    for (const p of PAIRS) expect(hex(rpiPaddedData(p.en_interval_number))).toBe(p.padded_data);
  });
});

describe.each(SUITES)('SPECS §1.3–1.5 official vectors under %s', (_name, suite) => {
  it('SPECS §1.3 RPIK = HKDF(TEK, NULL, "EN-RPIK", 16)', () => {
    expect(hex(rpik(suite, tek))).toBe(vectors.RPIK);
  });

  it('SPECS §1.4 AEMK = HKDF(TEK, NULL, "EN-AEMK", 16)', () => {
    expect(hex(aemk(suite, tek))).toBe(vectors.AEMK);
  });

  it('SPECS §1.3 RPI: all 144 RPIs one interval at a time', () => {
    const key = rpik(suite, tek);
    for (const p of PAIRS) expect(hex(rpi(suite, key, p.en_interval_number)), `i=${p.i}`).toBe(p.rpi);
  });

  it('SPECS §1.3 rpisForTek: the 144 RPIs of the full-day key in interval order', () => {
    const rpis = rpisForTek(suite, tek, START, TEK_ROLLING_PERIOD);
    expect(rpis.map(hex)).toEqual(PAIRS.map((p) => p.rpi));
    expect(rpis.every((r) => r.byteLength === 16 && r.buffer.byteLength === 16)).toBe(true);
    expect(rpisForRpik(suite, unhex(vectors.RPIK), START, TEK_ROLLING_PERIOD).map(hex)).toEqual(PAIRS.map((p) => p.rpi));
  });

  it('SPECS §1.3 rpisForTek: a partial key (start + 100, period 44) gives the matching tail of the vectors', () => {
    expect(rpisForTek(suite, tek, START + 100, 44).map(hex)).toEqual(PAIRS.slice(100).map((p) => p.rpi));
  });

  it('SPECS §1.3 RpiBatch (batched HKDF + ECB): the 144 RPIs, a tail and a single interval in one batch', () => {
    const rpis = PAIRS.map((p) => p.rpi);
    const batch = new RpiBatch(3);
    for (let round = 0; round < 2; round++) {
      batch.clear();
      batch.add(tek, START, TEK_ROLLING_PERIOD);
      batch.add(tek, START + 100, 44);
      batch.add(tek, START + 7, 1);
      batch.derive(suite);
      const rpisOf = (k: number): string => hex(batch.rpiBytes.subarray(16 * batch.blockOf(k), 16 * batch.blockOf(k + 1)));
      expect([batch.size, batch.blockOf(3)]).toEqual([3, 144 + 44 + 1]);
      expect(rpisOf(0)).toBe(rpis.join(''));
      expect(rpisOf(1)).toBe(rpis.slice(100).join(''));
      expect(rpisOf(2)).toBe(rpis[7]);
    }
    expect(misuseField(() => batch.add(tek, START, 1))).toBe('tek');
    batch.clear();
    expect(misuseField(() => batch.add(tek, START, 145))).toBe('rollingPeriod');
    expect(misuseField(() => batch.add(tek.subarray(1), START, 1))).toBe('tek');
  });

  it('SPECS §1.4 AEM: all 144 AEMs = AES-128-CTR(AEMK, IV = RPI, 40 08 00 00), and decryption inverts them', () => {
    const key = aemk(suite, tek);
    for (const p of PAIRS) {
      expect(hex(encryptAem(suite, key, unhex(p.rpi), METADATA)), `i=${p.i}`).toBe(p.aem);
      expect(hex(decryptAem(suite, key, unhex(p.rpi), unhex(p.aem))), `i=${p.i}`).toBe(vectors.BLE_METADATA);
    }
  });

  it('SPECS §1.5 service data: RPI ‖ AEM for every interval, split back by the parser', () => {
    for (const p of PAIRS) {
      const data = encodeEnServiceData(unhex(p.rpi), unhex(p.aem));
      expect(hex(data)).toBe(p.rpi + p.aem);
      const parsed = parseEnServiceData(data);
      expect(parsed.ok && [hex(parsed.value.rpi), hex(parsed.value.aem)]).toEqual([p.rpi, p.aem]);
    }
  });
});

describe('SPECS §1.4 metadata of the vectors', () => {
  it('40 08 00 00 is metadata v1.0 at +8 dBm, and encodes back byte for byte', () => {
    const parsed = parseEnMetadata(METADATA);
    expect(parsed).toEqual({ ok: true, value: { versionMajor: 1, versionMinor: 0, txPowerConfidence: 0, txPowerDbm: 8 } });
    if (!parsed.ok) return;
    expect(hex(encodeEnMetadata(parsed.value))).toBe(vectors.BLE_METADATA);
    expect(METADATA[0]).toBe(EN_METADATA_VERSION_1_0);
  });
});
