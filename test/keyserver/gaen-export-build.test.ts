/**
 * GAEN key export (SPECS §1.7): building exports (round trip, well-formed
 * protobuf), padding with fake keys, and misuse.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nobleSuite } from '../../protocol/crypto/noble.ts';
import { ExportSchema } from '../../protocol/keyserver/gaen-export-schema.ts';
import { writeExportZip } from '../../protocol/keyserver/gaen-export-zip.ts';
import { buildExportZip, compactToDer, parseExportZip, verifyExport, type ExportKey } from '../../protocol/keyserver/gaen-export.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { misuseField } from '../support/misuse.ts';
import { seededRng } from '../support/test-rng.ts';
import {
  hex,
  SUITES,
  CASES,
  parsed,
  PUBLIC_KEY,
  keyArb,
  options,
  Reader,
} from '../support/gaen-export-fixtures.ts';

/** Top-level (field number, wire type, bytes) of a protobuf message, read with protobufjs' Reader. */
function wire(bytes: Uint8Array): { id: number; type: number; body?: Uint8Array }[] {
  const r = Reader.create(bytes);
  const out: { id: number; type: number; body?: Uint8Array }[] = [];
  while (r.pos < r.len) {
    const tag = r.uint32();
    if ((tag & 7) === 2) {
      const length = r.uint32();
      out.push({ id: tag >>> 3, type: 2, body: bytes.subarray(r.pos, r.pos + length) });
      r.skip(length);
    } else {
      out.push({ id: tag >>> 3, type: tag & 7 });
      r.skipType(tag & 7);
    }
  }
  return out;
}

const ids = (fields: { id: number; type: number }[]): string[] => fields.map((f) => `${f.id}/${f.type}`);

describe('buildExportZip (SPECS §1.7, EN-server exportfile.go)', () => {
  it.each(SUITES)('build → parse → verify round-trips any key set (fast-check, %s)', (name, suite) => {
    fc.assert(
      fc.property(fc.array(keyArb, { maxLength: 24 }), fc.array(keyArb, { maxLength: 3 }), fc.string({ maxLength: 8 }), (keys, revisedKeys, region) => {
        const built = buildExportZip(suite, options(keys, { revisedKeys, region }));
        const p = parseExportZip(built.zip);
        expect(p.ok).toBe(true);
        if (!p.ok) return;
        expect(p.value.keys).toEqual(built.keys);
        expect(p.value.revisedKeys).toEqual(built.revisedKeys);
        expect(p.value.region).toBe(region);
        expect(verifyExport(suite, p.value, PUBLIC_KEY).ok).toBe(true);
        expect(hex(p.value.exportBin)).toBe(hex(built.exportBin));
      }),
      { numRuns: name === 'noble' ? 40 : 100 },
    );
  });

  it('export.bin is well-formed protobuf with exactly the fields the reference sets, in field order', () => {
    fc.assert(
      fc.property(fc.array(keyArb, { minLength: 1, maxLength: 10 }), (keys) => {
        const built = buildExportZip(nodeSuite, options(keys));
        expect(new TextDecoder().decode(built.exportBin.subarray(0, 16))).toBe('EK Export v1    ');
        const top = wire(built.exportBin.subarray(16));
        expect(ids(top)).toEqual(['1/1', '2/1', '3/2', '4/0', '5/0', '6/2', ...keys.map(() => '7/2')]);
        expect(ids(wire(top[5]!.body!))).toEqual(['3/2', '4/2', '5/2']);
        for (const [i, k] of built.keys.entries()) {
          const expected = ['1/2', '2/0'];
          if (k.rollingStartIntervalNumber !== 0) expected.push('3/0');
          if (k.rollingPeriod !== 144) expected.push('4/0');
          if (k.reportType !== undefined) expected.push('5/0');
          if (k.daysSinceOnsetOfSymptoms !== undefined) expected.push('6/0');
          expect(ids(wire(top[6 + i]!.body!))).toEqual(expected);
        }
        const sig = wire(built.exportSig);
        expect(ids(sig)).toEqual(['1/2']);
        expect(ids(wire(sig[0]!.body!))).toEqual(['1/2', '2/0', '3/0', '4/2']);
        // and protobufjs decodes it with nothing left over
        const r = Reader.create(built.exportBin.subarray(16));
        r.discardUnknown = false;
        expect(ExportSchema.TemporaryExposureKeyExport.decode(r).$unknowns).toBeUndefined();
      }),
      { numRuns: 60 },
    );
  });

  it('keys are written sorted by key_data (EN-server marshalContents)', () => {
    const keys = [0x90, 0x10, 0xff, 0x00].map((b) => ({ keyData: new Uint8Array(16).fill(b), transmissionRiskLevel: 1, rollingStartIntervalNumber: 2_650_000, rollingPeriod: 144 }));
    expect(parsed(buildExportZip(nodeSuite, options(keys)).zip).keys.map((k) => k.keyData[0])).toEqual([0x00, 0x10, 0x90, 0xff]);
  });

  it('rebuilds the sample export.bin from its decoded content byte for byte', () => {
    const c = CASES[0]!;
    const p = parsed(writeExportZip(c.bin, c.sig));
    const built = buildExportZip(nobleSuite, options(p.keys, { signatureInfo: { verificationKeyId: 'some_id', verificationKeyVersion: '1' }, startTimestamp: p.startTimestamp, endTimestamp: p.endTimestamp }));
    expect(hex(built.exportBin)).toBe(hex(c.bin));
  });

  it('is byte-for-byte deterministic with a deterministic signer (noble, RFC 6979) and fixed zip mtime', () => {
    const keys = fc.sample(keyArb, { numRuns: 5, seed: 7 });
    const a = buildExportZip(nobleSuite, options(keys, { padding: { minKeys: 50, jitter: 10, rng: seededRng(3) } }));
    const b = buildExportZip(nobleSuite, options(keys, { padding: { minKeys: 50, jitter: 10, rng: seededRng(3) } }));
    expect(hex(b.zip)).toBe(hex(a.zip));
    const other = buildExportZip(nobleSuite, options(keys, { padding: { minKeys: 50, jitter: 10, rng: seededRng(4) } }));
    expect(hex(other.exportBin)).not.toBe(hex(a.exportBin));
  });
});

describe('padding with fake keys (EN-server worker.go ensureMinNumExposures)', () => {
  const real: ExportKey[] = [
    { keyData: new Uint8Array(16).fill(1), transmissionRiskLevel: 2, rollingStartIntervalNumber: 2_650_032, rollingPeriod: 144, reportType: 1, daysSinceOnsetOfSymptoms: -3 },
    { keyData: new Uint8Array(16).fill(2), transmissionRiskLevel: 5, rollingStartIntervalNumber: 2_650_176, rollingPeriod: 60 },
    { keyData: new Uint8Array(16).fill(3), transmissionRiskLevel: 8, rollingStartIntervalNumber: 2_650_320, rollingPeriod: 1, reportType: 2 },
  ];

  it('reaches minKeys + uniform [0, jitter], exactly, and the file holds that many keys', () => {
    const totals = new Set<number>();
    for (let seed = 0; seed < 200; seed++) {
      const built = buildExportZip(nodeSuite, options(real, { padding: { minKeys: 20, jitter: 4, rng: seededRng(seed) } }));
      const total = built.keys.length;
      expect(total).toBeGreaterThanOrEqual(20);
      expect(total).toBeLessThanOrEqual(24);
      expect(built.fakeKeys).toBe(total - real.length);
      expect(parsed(built.zip).keys).toHaveLength(total);
      totals.add(total);
    }
    expect([...totals].sort()).toEqual([20, 21, 22, 23, 24]);
  });

  it('fakes are random 16-byte keys copying risk, rolling start/period, report type and onset from the real keys in turn', () => {
    const built = buildExportZip(nodeSuite, options(real, { padding: { minKeys: 9, jitter: 0, rng: seededRng(1) } }));
    const realHex = new Set(real.map((k) => hex(k.keyData)));
    const fakes = built.keys.filter((k) => !realHex.has(hex(k.keyData)));
    expect(fakes).toHaveLength(6);
    const shape = ({ keyData: _k, ...rest }: ExportKey): object => rest;
    const count = (k: ExportKey): number => fakes.filter((f) => JSON.stringify(shape(f)) === JSON.stringify(shape(k))).length;
    expect(real.map(count)).toEqual([2, 2, 2]);
    expect(new Set(fakes.map((f) => hex(f.keyData))).size).toBe(6);
  });

  it('pads nothing when there are no real keys or already enough (as the reference)', () => {
    expect(buildExportZip(nodeSuite, options([], { padding: { minKeys: 100, jitter: 10, rng: seededRng(1) } })).keys).toHaveLength(0);
    expect(buildExportZip(nodeSuite, options(real, { padding: { minKeys: 2, jitter: 1, rng: seededRng(1) } })).fakeKeys).toBe(0);
  });

  it('the same seed gives the same fake keys; different seeds different ones', () => {
    const run = (seed: number): string => hex(buildExportZip(nodeSuite, options(real, { padding: { minKeys: 30, jitter: 5, rng: seededRng(seed) } })).exportBin);
    expect(run(11)).toBe(run(11));
    expect(run(11)).not.toBe(run(12));
  });
});

describe('misuse throws MisuseError naming the field', () => {
  const key: ExportKey = { keyData: new Uint8Array(16), transmissionRiskLevel: 0, rollingStartIntervalNumber: 0, rollingPeriod: 144 };
  it.each([
    ['keys[0].keyData', () => buildExportZip(nodeSuite, options([{ ...key, keyData: new Uint8Array(15) }]))],
    ['keys[0].rollingPeriod', () => buildExportZip(nodeSuite, options([{ ...key, rollingPeriod: 145 }]))],
    ['keys[1].keyData', () => buildExportZip(nodeSuite, options([{ ...key, keyData: new Uint8Array(16).fill(9) }, { ...key, keyData: new Uint8Array(3) }]))],
    ['revisedKeys[0].daysSinceOnsetOfSymptoms', () => buildExportZip(nodeSuite, options([key], { revisedKeys: [{ ...key, daysSinceOnsetOfSymptoms: 2 ** 31 }] }))],
    ['keys[0].transmissionRiskLevel', () => buildExportZip(nodeSuite, options([{ ...key, transmissionRiskLevel: 9 }]))],
    ['keys[0].rollingStartIntervalNumber', () => buildExportZip(nodeSuite, options([{ ...key, rollingStartIntervalNumber: -1 }]))],
    ['startTimestamp', () => buildExportZip(nodeSuite, options([key], { startTimestamp: -1 }))],
    ['endTimestamp', () => buildExportZip(nodeSuite, options([key], { endTimestamp: 1 }))],
    ['batchNum', () => buildExportZip(nodeSuite, options([key], { batchNum: 2 }))],
    ['signingKey', () => buildExportZip(nodeSuite, options([key], { signingKey: new Uint8Array(31) }))],
    ['signingKey', () => buildExportZip(nobleSuite, options([key], { signingKey: new Uint8Array(32) }))],
    ['signatureInfo.signatureAlgorithm', () => buildExportZip(nodeSuite, options([key], { signatureInfo: { verificationKeyId: 'a', verificationKeyVersion: 'b', signatureAlgorithm: '1.2.840.10045.4.3.4' } }))],
    ['padding.minKeys', () => buildExportZip(nodeSuite, options([key], { padding: { minKeys: -1, jitter: 0, rng: seededRng(1) } }))],
    ['padding.rng', () => buildExportZip(nodeSuite, options([key], { padding: { minKeys: 5, jitter: 0, rng: undefined as never } }))],
    ['publicKey', () => verifyExport(nodeSuite, parsed(writeExportZip(CASES[0]!.bin, CASES[0]!.sig)), new Uint8Array(64))],
    ['limits.maxKeys', () => parseExportZip(new Uint8Array(0), { maxKeys: 0 })],
    ['compact', () => compactToDer(new Uint8Array(63))],
  ] as const)('%s', (field, fn) => {
    expect(misuseField(fn)).toBe(field);
  });
});

// ------------------------------------------------------------ hostile content
