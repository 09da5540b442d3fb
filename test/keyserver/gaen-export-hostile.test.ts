/**
 * GAEN key export (SPECS §1.7): hostile export.bin content and zip containers
 * → typed rejections only, bounded work.
 */
import fc from 'fast-check';
import { zipSync } from 'fflate';
import type protobuf from 'protobufjs/light.js';
import { describe, expect, it } from 'vitest';
import type { Verdict } from '../../protocol/errors.ts';
import { ExportSchema } from '../../protocol/keyserver/gaen-export-schema.ts';
import { crc32, writeExportZip } from '../../protocol/keyserver/gaen-export-zip.ts';
import { buildExportZip, derToCompact, parseExportZip, verifyExport, type ParsedExport } from '../../protocol/keyserver/gaen-export.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { prng } from '../support/test-rng.ts';
import {
  centralDirectoryTotal,
  reasonOf,
  REASONS,
  CASES,
  goStyleZip,
  parsed,
  check,
  PUBLIC_KEY,
  keyArb,
  options,
  Writer,
} from '../support/gaen-export-fixtures.ts';

/** export.bin = header ‖ protobuf written field by field (to break rules the encoder refuses to break). */
function rawBin(write: (w: protobuf.Writer) => void): Uint8Array {
  const w = Writer.create();
  write(w);
  return Uint8Array.from([...new TextEncoder().encode('EK Export v1    '), ...w.finish()]);
}

function header(w: protobuf.Writer, batch: [number, number] = [1, 1]): protobuf.Writer {
  return w.uint32(9).fixed64(1).uint32(17).fixed64(2).uint32(26).string('US').uint32(32).int32(batch[0]).uint32(40).int32(batch[1]);
}

function key(w: protobuf.Writer, body: (k: protobuf.Writer) => void, field = 7): void {
  w.uint32((field << 3) | 2).fork();
  body(w);
  w.ldelim();
}

const goodKey = (k: protobuf.Writer): protobuf.Writer => k.uint32(10).bytes(new Uint8Array(16).fill(7));
const SIG = CASES[0]!.sig;
const contentVerdict = (bin: Uint8Array): Verdict<ParsedExport> => parseExportZip(writeExportZip(bin, SIG));

describe('hostile export.bin content → typed rejections (SPECS §1.7 ranges)', () => {
  it.each([
    ['header', 'header', () => Uint8Array.from([...new TextEncoder().encode('EK Export v2    '), 0x09])],
    ['header', 'short file', () => new TextEncoder().encode('EK Export')],
    ['protobuf', 'truncated varint', () => rawBin((w) => header(w).raw(Uint8Array.of(0x20, 0x80)))],
    ['protobuf', 'known field with the wrong wire type (batch_num as bytes)', () => rawBin((w) => header(w).uint32(34).bytes(new Uint8Array(2)))],
    ['protobuf', 'invalid UTF-8 in region', () => rawBin((w) => header(w).uint32(26).bytes(Uint8Array.from([0xc3, 0x28])))],
    ['missing-field', 'no start_timestamp', () => rawBin((w) => w.uint32(17).fixed64(2).uint32(32).int32(1).uint32(40).int32(1))],
    ['missing-field', 'a key without key_data', () => rawBin((w) => key(header(w), (k) => k.uint32(16).int32(1).uint32(74).bytes(new Uint8Array(16))))],
    ['bad-field', 'key_data of 15 bytes', () => rawBin((w) => key(header(w), (k) => k.uint32(10).bytes(new Uint8Array(15)).uint32(16).int32(1)))],
    ['bad-field', 'key_data of 17 bytes', () => rawBin((w) => key(header(w), (k) => k.uint32(10).bytes(new Uint8Array(17))))],
    ['bad-field', 'transmission risk 9', () => rawBin((w) => key(header(w), (k) => goodKey(k).uint32(16).int32(9)))],
    ['bad-field', 'negative rolling start', () => rawBin((w) => key(header(w), (k) => goodKey(k).uint32(24).int32(-5)))],
    ['bad-field', 'rolling period 0', () => rawBin((w) => key(header(w), (k) => goodKey(k).uint32(32).int32(0)))],
    ['bad-field', 'rolling period 145', () => rawBin((w) => key(header(w), (k) => goodKey(k).uint32(32).int32(145)))],
    ['bad-field', 'report type 6 (closed enum)', () => rawBin((w) => key(header(w), (k) => goodKey(k).uint32(40).int32(6)))],
    ['bad-field', 'batch 2 of 1', () => rawBin((w) => header(w, [2, 1]))],
    ['bad-field', 'start after end', () => rawBin((w) => w.uint32(9).fixed64(5).uint32(17).fixed64(4).uint32(32).int32(1).uint32(40).int32(1))],
    ['bad-field', 'a bad revised key', () => rawBin((w) => key(header(w), (k) => goodKey(k).uint32(32).int32(200), 8))],
  ] as const)('%s: %s', (reason, _what, make) => {
    expect(reasonOf(contentVerdict(make()))).toBe(reason);
  });

  it('unknown fields are skipped (proto2), e.g. the server-only variant_of_concern (8) and a future top-level field', () => {
    const v = contentVerdict(rawBin((w) => key(header(w).uint32(72).int32(3), (k) => goodKey(k).uint32(64).int32(2))));
    expect(v.ok && v.value.keys).toEqual([{ keyData: new Uint8Array(16).fill(7), transmissionRiskLevel: 0, rollingStartIntervalNumber: 0, rollingPeriod: 144 }]);
  });

  it('report type and days since onset (sint32) are read when present', () => {
    const v = contentVerdict(rawBin((w) => key(header(w), (k) => goodKey(k).uint32(40).int32(5).uint32(48).sint32(-7))));
    expect(v.ok && v.value.keys[0]).toMatchObject({ reportType: 5, daysSinceOnsetOfSymptoms: -7 });
  });

  it('more keys than limits.maxKeys is too-large before any key is decoded', () => {
    const bin = rawBin((w) => {
      header(w);
      for (let i = 0; i < 5; i++) key(w, goodKey);
    });
    expect(parseExportZip(writeExportZip(bin, SIG), { maxKeys: 4 })).toMatchObject({ ok: false, reason: 'too-large', field: 'keys' });
    expect(parseExportZip(writeExportZip(bin, SIG), { maxKeys: 5 }).ok).toBe(true);
  });

  it('export.sig: missing fields, bad strings and non-DER signatures', () => {
    const c = CASES[0]!;
    const p = parsed(writeExportZip(c.bin, c.sig));
    const sigWith = (patch: object): Uint8Array => {
      const s = { ...p.signatures[0]!, ...patch };
      return Uint8Array.from(ExportSchema.TEKSignatureList.encode({ signatures: [{ signature_info: { verification_key_version: s.signatureInfo.verificationKeyVersion, verification_key_id: s.signatureInfo.verificationKeyId, signature_algorithm: s.signatureInfo.signatureAlgorithm }, batch_num: s.batchNum, batch_size: s.batchSize, ...('signature' in patch && patch.signature === undefined ? {} : { signature: s.signature }) }] }).finish());
    };
    const verdict = (sig: Uint8Array): Verdict<unknown> => check(writeExportZip(c.bin, sig), c.publicKey);
    expect(reasonOf(verdict(sigWith({ signature: undefined })))).toBe('missing-field');
    expect(reasonOf(verdict(sigWith({ batchNum: 1, batchSize: 2 })))).toBe('batch-mismatch');
    expect(reasonOf(verdict(sigWith({ signatureInfo: { ...p.signatures[0]!.signatureInfo, signatureAlgorithm: '1.2.840.10045.4.3.4' } })))).toBe('unsupported-algorithm');
    // Non-canonical DER (a padding zero before a positive r) is refused the same way by both suites.
    const der = c.der;
    const padded = Uint8Array.from([0x30, der[1]! + 1, 0x02, der[3]! + 1, 0x00, ...der.subarray(4)]);
    expect(reasonOf(verdict(sigWith({ signature: padded })))).toBe('signature-encoding');
    expect(derToCompact(padded)).toBeUndefined();
    expect(reasonOf(verdict(new Uint8Array(0)))).toBe('no-signature-for-key');
  });
});

// ------------------------------------------------------------ hostile containers, fuzz


describe('hostile zip containers → typed rejections, bounded work', () => {
  const c = CASES[0]!;
  it.each([
    ['three entries', () => zipSync({ 'export.bin': c.bin, 'export.sig': c.sig, 'extra.txt': new Uint8Array(1) }), 'zip', /exactly 2 entries/],
    ['export.sig missing', () => zipSync({ 'export.bin': c.bin, 'other.sig': c.sig }), 'zip', /unexpected entry "other\.sig"/],
    ['a directory name', () => zipSync({ 'a/export.bin': c.bin, 'export.sig': c.sig }), 'zip', /unexpected entry/],
    ['a duplicate entry', () => {
      const z = writeExportZip(c.bin, c.bin);
      return Uint8Array.from(Buffer.from(z).toString('latin1').replaceAll('export.sig', 'export.bin'), (ch) => ch.charCodeAt(0));
    }, 'zip', /duplicate entry export\.bin/],
    ['an encrypted flag', () => {
      const z = writeExportZip(c.bin, c.sig);
      z[6]! |= 1;
      return z;
    }, 'zip', /encrypted/],
    ['zip64 markers', () => centralDirectoryTotal(writeExportZip(c.bin, c.sig), 0xffff), 'zip', /zip64/],
    ['a declared 20 MiB export.bin', () => zipSync({ 'export.bin': new Uint8Array(20 * 1024 * 1024), 'export.sig': c.sig }), 'too-large', /more than the 16777216-byte cap/],
    ['an empty file', () => new Uint8Array(0), 'zip', /no end-of-central-directory/],
  ] as const)('%s', (_what, make, reason, detail) => {
    const v = parseExportZip(make());
    expect(v.ok).toBe(false);
    expect(!v.ok && v.reason).toBe(reason);
    expect(!v.ok && v.detail).toMatch(detail);
  });

  it('a deflate bomb under a small declared size stops after the declared bytes (not the 32 MiB it holds)', () => {
    const bomb = zipSync({ 'export.bin': new Uint8Array(32 * 1024 * 1024), 'export.sig': c.sig });
    const small = writeExportZip(new Uint8Array(1000), c.sig);
    // Give the bomb entry the declared size (and CRC) of a 1000-byte file, in both headers.
    const central = Buffer.from(bomb).indexOf(Buffer.from('504b0102', 'hex'));
    const smallCentral = Buffer.from(small).indexOf(Buffer.from('504b0102', 'hex'));
    bomb.set(small.subarray(smallCentral + 16, smallCentral + 20), central + 16);
    bomb.set(small.subarray(smallCentral + 24, smallCentral + 28), central + 24);
    bomb.set(small.subarray(14, 18), 14);
    bomb.set(small.subarray(22, 26), 22);
    const started = performance.now();
    const v = parseExportZip(bomb);
    expect(performance.now() - started).toBeLessThan(2000);
    expect(v).toMatchObject({ ok: false, reason: 'zip' });
    expect(!v.ok && v.detail).toMatch(/inflates to more bytes than its header declares/);
  });

  it('CRC-32 gives the standard check value ("123456789" → cbf43926)', () => {
    expect(crc32(new TextEncoder().encode('123456789')).toString(16)).toBe('cbf43926');
  });

  it('fuzz: ≥ 10,000 random and mutated archives give only typed rejections or a valid parse, in bounded memory', () => {
    const rand = prng(20_240_404);
    const int = (n: number): number => Math.floor(rand() * n);
    const built = buildExportZip(nodeSuite, options(fc.sample(keyArb, { numRuns: 6, seed: 1 })));
    const seeds: Uint8Array[] = [
      writeExportZip(c.bin, c.sig),
      goStyleZip(c.bin, c.sig),
      goStyleZip(CASES[1]!.bin, CASES[1]!.sig, true),
      built.zip,
    ];
    const files: [Uint8Array, Uint8Array][] = [[c.bin, c.sig], [CASES[1]!.bin, CASES[1]!.sig], [built.exportBin, built.exportSig]];
    const mutate = (src: Uint8Array): Uint8Array => {
      const t = src.slice();
      const kind = int(5);
      if (kind === 0) return t.subarray(0, int(t.length + 1)); // truncate
      if (kind === 1) return Uint8Array.from([...t.subarray(0, int(t.length)), ...Array.from({ length: 1 + int(8) }, () => int(256)), ...t.subarray(int(t.length))]); // insert / splice
      const flips = 1 + int(kind === 4 ? 16 : 3);
      for (let i = 0; i < flips; i++) t[int(t.length)] = kind === 2 ? t[int(t.length)]! ^ (1 << int(8)) : int(256);
      return t;
    };
    const heapBefore = process.memoryUsage().heapUsed;
    let peak = heapBefore;
    const outcomes = new Map<string, number>();
    const ITERATIONS = 12_000;
    for (let i = 0; i < ITERATIONS; i++) {
      let input: Uint8Array;
      const which = i % 4;
      if (which === 0) input = Uint8Array.from({ length: int(600) }, () => int(256)); // random bytes
      else if (which === 1) input = mutate(seeds[int(seeds.length)]!); // mutated container
      else {
        // a valid container around mutated content: fuzzes the protobuf layer, not just the CRC
        const [bin, sig] = files[int(files.length)]!;
        input = which === 2 ? writeExportZip(mutate(bin), sig) : writeExportZip(bin, mutate(sig));
      }
      const v = parseExportZip(input);
      let outcome: string;
      if (v.ok) {
        const verified = verifyExport(nodeSuite, v.value, PUBLIC_KEY);
        outcome = verified.ok ? 'verified' : verified.reason;
      } else {
        expect(v.codec).toBe('gaen-export');
        expect(typeof v.detail).toBe('string');
        outcome = v.reason;
      }
      expect(REASONS.has(outcome) || outcome === 'verified', outcome).toBe(true);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      if (i % 500 === 0) peak = Math.max(peak, process.memoryUsage().heapUsed);
    }
    expect([...outcomes.values()].reduce((a, b) => a + b, 0)).toBe(ITERATIONS);
    for (const reason of ['zip', 'protobuf', 'bad-signature', 'header']) expect(outcomes.get(reason) ?? 0).toBeGreaterThan(0);
    expect(peak - heapBefore).toBeLessThan(256 * 1024 * 1024);
  });
});
