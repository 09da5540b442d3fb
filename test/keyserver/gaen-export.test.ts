/**
 * GAEN key export files (SPECS §1.7, §7.5–7.7): the two upstream sample
 * exports (test/vectors/gaen-export.json) parse, verify under both crypto
 * suites and re-encode byte for byte; tampering with export.bin, export.sig or
 * the zip container is caught with a clear reason; build → parse → verify
 * round-trips (fast-check); produced files are well-formed protobuf with
 * exactly the reference's fields; padding follows EN-server's rule; misuse
 * throws MisuseError naming the field; ≥ 10,000 hostile archives give only
 * typed rejections, in bounded memory.
 */
import fc from 'fast-check';
import { Zip, ZipDeflate, ZipPassThrough, zipSync } from 'fflate';
import protobuf from 'protobufjs/light.js';
import { describe, expect, it } from 'vitest';
import { nobleSuite } from '../../protocol/crypto/noble.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import type { Verdict } from '../../protocol/errors.ts';
import { encodeExportBin, encodeExportSig } from '../../protocol/keyserver/gaen-export-codec.ts';
import { ExportSchema, MAX_INT32 } from '../../protocol/keyserver/gaen-export-schema.ts';
import { crc32, writeExportZip } from '../../protocol/keyserver/gaen-export-zip.ts';
import {
  buildExportZip,
  compactToDer,
  derToCompact,
  ECDSA_P256_SHA256_OID,
  parseExportZip,
  verifyExport,
  type BuildExportOptions,
  type ExportKey,
  type ParsedExport,
  type ReportType,
} from '../../protocol/keyserver/gaen-export.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { p256PublicKeyFromPem } from '../../services/cli/proto-command.ts';
import { misuseField } from '../support/misuse.ts';
import { prng, seededRng } from '../support/test-rng.ts';
import vectors from '../vectors/gaen-export.json' with { type: 'json' };

const { Reader, Writer } = protobuf;

/** Set both entry counts of the end-of-central-directory record (uint16 LE). */
function centralDirectoryTotal(zip: Uint8Array, total: number): Uint8Array {
  const t = zip.slice();
  const eocd = Buffer.from(t).lastIndexOf(Buffer.from('504b0506', 'hex'));
  for (const at of [eocd + 8, eocd + 10]) {
    t[at] = total & 0xff;
    t[at + 1] = total >>> 8;
  }
  return t;
}
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
const reasonOf = (v: Verdict<unknown>): string => (v.ok ? 'accepted' : v.reason);

const SUITES: readonly (readonly [string, CryptoSuite])[] = [
  ['noble', nobleSuite],
  ['node', nodeSuite],
];

/** Every reason parse and verify may give (the modules' headers). */
const REASONS = new Set([
  'too-large', 'zip', 'header', 'protobuf', 'missing-field', 'bad-field',
  'no-signature-for-key', 'unsupported-algorithm', 'batch-mismatch', 'signature-info-mismatch', 'signature-encoding', 'bad-signature',
]);

// ------------------------------------------------------------ the vectors

interface VectorKey {
  readonly key_data: string;
  readonly transmission_risk_level: number;
  readonly rolling_start_interval_number: number;
  readonly rolling_period?: number;
}

function pemOf(c: (typeof vectors.cases)[number]): string {
  if ('public_key_pem' in c) return c.public_key_pem;
  const b64 = c.public_key_spki_b64.match(/.{1,64}/g)?.join('\n') ?? '';
  return `-----BEGIN PUBLIC KEY-----\n${b64}\n-----END PUBLIC KEY-----\n`;
}

const CASES = vectors.cases.map((c) => ({
  name: c.name.split(' ')[0] ?? c.name,
  bin: unhex(c.export_bin_hex),
  sig: unhex(c.export_sig_hex),
  publicKey: p256PublicKeyFromPem(pemOf(c)),
  decoded: c.decoded_export_bin,
  der: unhex(c.decoded_export_sig[0]?.signature_der_hex ?? ''),
  keyId: c.decoded_export_sig[0]?.signature_info.verification_key_id ?? '',
  keyVersion: c.decoded_export_sig[0]?.signature_info.verification_key_version ?? '',
}));

/** A zip like Go's archive/zip writes (EN-server): deflated, CRC and sizes in data descriptors (flag bit 3). */
function goStyleZip(bin: Uint8Array, sig: Uint8Array, store = false): Uint8Array {
  const chunks: Uint8Array[] = [];
  const zip = new Zip((err, chunk) => {
    if (err) throw err;
    chunks.push(chunk);
  });
  for (const [name, data] of [['export.bin', bin], ['export.sig', sig]] as const) {
    const entry = store ? new ZipPassThrough(name) : new ZipDeflate(name, { level: 6 });
    zip.add(entry);
    entry.push(data, true);
  }
  zip.end();
  return Uint8Array.from(Buffer.concat(chunks));
}

function parsed(zip: Uint8Array): ParsedExport {
  const v = parseExportZip(zip);
  if (!v.ok) throw new Error(`${v.reason}: ${v.detail}`);
  return v.value;
}

/** parse + verify, the way a phone takes a downloaded file. */
function check(zip: Uint8Array, publicKey: Uint8Array, suite: CryptoSuite = nodeSuite): Verdict<unknown> {
  const p = parseExportZip(zip);
  return p.ok ? verifyExport(suite, p.value, publicKey) : p;
}

describe('SPECS §1.7 sample exports (test/vectors/gaen-export.json)', () => {
  it('the PEM keys load as the vector file\'s uncompressed points (services/cli p256PublicKeyFromPem)', () => {
    expect(hex(CASES[0]!.publicKey)).toBe(vectors.cases[0]!.public_key_uncompressed_hex);
    expect(CASES[1]!.publicKey).toHaveLength(65);
  });

  describe.each(CASES)('$name', (c) => {
    it.each(SUITES)('parses and verifies under %s, in our zip and in a Go-style zip with data descriptors', (_name, suite) => {
      for (const zip of [writeExportZip(c.bin, c.sig), goStyleZip(c.bin, c.sig), goStyleZip(c.bin, c.sig, true)]) {
        const v = verifyExport(suite, parsed(zip), c.publicKey);
        expect(v.ok && v.value.signature.signatureInfo).toEqual({ verificationKeyId: c.keyId, verificationKeyVersion: c.keyVersion, signatureAlgorithm: ECDSA_P256_SHA256_OID });
      }
    });

    it('gives the decoded keys of the vector file (absent rolling_period = 144, SPECS §7.5)', () => {
      const p = parsed(writeExportZip(c.bin, c.sig));
      const expected = (c.decoded.keys as readonly VectorKey[]).map((k) => ({
        keyData: unhex(k.key_data),
        transmissionRiskLevel: k.transmission_risk_level,
        rollingStartIntervalNumber: k.rolling_start_interval_number,
        rollingPeriod: k.rolling_period ?? 144,
      }));
      expect(p.keys).toEqual(expected);
      expect(p.revisedKeys).toEqual([]);
      expect(p).toMatchObject({ startTimestamp: c.decoded.start_timestamp, endTimestamp: c.decoded.end_timestamp, region: c.decoded.region, batchNum: c.decoded.batch_num, batchSize: c.decoded.batch_size });
      expect(p.signatureInfos).toEqual(c.decoded.signature_infos.map((i) => ({ verificationKeyVersion: i.verification_key_version, verificationKeyId: i.verification_key_id, signatureAlgorithm: i.signature_algorithm })));
      expect(p.signatures.map((s) => hex(s.signature))).toEqual([hex(c.der)]);
      expect(p.exportBin).toEqual(c.bin);
    });

    it('re-encodes export.bin and export.sig byte for byte (EN-server field presence: TR always, start unless 0, period unless 144)', () => {
      const p = parsed(writeExportZip(c.bin, c.sig));
      expect(hex(encodeExportBin(p))).toBe(hex(c.bin));
      expect(hex(encodeExportSig(p.signatures))).toBe(hex(c.sig));
    });

    it('DER ⇄ r‖s round-trips the sample signature', () => {
      const compact = derToCompact(c.der);
      expect(compact).toHaveLength(64);
      expect(hex(compactToDer(compact!))).toBe(hex(c.der));
    });

    it('selects signatures by key id and version; another key is no-signature-for-key', () => {
      const p = parsed(writeExportZip(c.bin, c.sig));
      expect(verifyExport(nodeSuite, p, c.publicKey, { keyId: c.keyId, keyVersion: c.keyVersion }).ok).toBe(true);
      expect(reasonOf(verifyExport(nodeSuite, p, c.publicKey, { keyId: 'other' }))).toBe('no-signature-for-key');
      expect(reasonOf(verifyExport(nodeSuite, p, c.publicKey, { keyVersion: 'v999' }))).toBe('no-signature-for-key');
    });
  });

  it.each(SUITES)('a sample verified with the other sample\'s key is bad-signature (%s)', (_name, suite) => {
    const [a, b] = CASES as [(typeof CASES)[number], (typeof CASES)[number]];
    expect(reasonOf(verifyExport(suite, parsed(writeExportZip(a.bin, a.sig)), b.publicKey))).toBe('bad-signature');
  });
});

// ------------------------------------------------------------ tampering

describe('tampering (SPECS §1.7: the signature covers all of export.bin)', () => {
  const c = CASES[0]!;

  it('a changed byte anywhere in export.bin is rejected; inside key_data it is bad-signature', () => {
    const seen = new Set<string>();
    for (let i = 0; i < c.bin.length; i++) {
      for (const x of [0x01, 0x80, 0xff]) {
        const bin = c.bin.slice();
        bin[i]! ^= x;
        const v = check(writeExportZip(bin, c.sig), c.publicKey);
        expect(v.ok, `byte ${i} ^ ${x}`).toBe(false);
        seen.add(reasonOf(v));
      }
    }
    const keyByte = hex(c.bin).indexOf('172fc480') / 2 + 3;
    const bin = c.bin.slice();
    bin[keyByte]! ^= 0x01;
    expect(check(writeExportZip(bin, c.sig), c.publicKey)).toMatchObject({ ok: false, reason: 'bad-signature', field: 'signatures[0].signature' });
    expect([...seen].every((r) => REASONS.has(r))).toBe(true);
    expect(seen).toContain('header');
  });

  it('a sample of changed bytes in the 140-key export.bin is rejected too', () => {
    const big = CASES[1]!;
    for (let i = 0; i < big.bin.length; i += 13) {
      const bin = big.bin.slice();
      bin[i]! ^= 0x20;
      expect(check(writeExportZip(bin, big.sig), big.publicKey).ok, `byte ${i}`).toBe(false);
    }
  });

  it('a changed byte anywhere in export.sig is rejected (DER → signature-encoding or bad-signature, key id → signature-info-mismatch)', () => {
    const derAt = hex(c.sig).indexOf(hex(c.der)) / 2;
    for (let i = 0; i < c.sig.length; i++) {
      for (const x of [0x01, 0x80, 0xff]) {
        const sig = c.sig.slice();
        sig[i]! ^= x;
        const v = check(writeExportZip(c.bin, sig), c.publicKey);
        expect(v.ok, `byte ${i} ^ ${x}`).toBe(false);
        if (i >= derAt) expect(['signature-encoding', 'bad-signature']).toContain(reasonOf(v));
      }
    }
    const sig = c.sig.slice();
    sig[hex(c.sig).indexOf(hex(new TextEncoder().encode('some_id'))) / 2]! ^= 0x01;
    expect(check(writeExportZip(c.bin, sig), c.publicKey)).toMatchObject({ reason: 'signature-info-mismatch' });
    const last = c.sig.slice();
    last[last.length - 1]! ^= 0x01;
    expect(check(writeExportZip(c.bin, last), c.publicKey)).toMatchObject({ reason: 'bad-signature' });
  });

  const zip = writeExportZip(c.bin, c.sig);
  const at = (needle: Uint8Array | string, from = 0): number => Buffer.from(zip).indexOf(typeof needle === 'string' ? Buffer.from(needle) : Buffer.from(needle), from);
  const eocd = at(unhex('504b0506'));
  const central = at(unhex('504b0102'));
  const flip = (i: number, x = 0x01): Uint8Array => {
    const t = zip.slice();
    t[i]! ^= x;
    return t;
  };
  it.each([
    ['the end-of-central-directory signature', () => flip(eocd), /no end-of-central-directory/],
    ['the entry count', () => centralDirectoryTotal(zip, 3), /expected exactly 2 entries/],
    ['a central directory entry name', () => flip(at('export.bin', central)), /unexpected entry "dxport\.bin"/],
    ['the central CRC-32 of export.bin', () => flip(central + 16), /local and central CRC or sizes differ/],
    ['the local header signature', () => flip(0), /no local header/],
    ['export.bin\'s deflated data', () => flip(30 + 10 + 20), /export\.bin:? (corrupt deflate data|inflates to|CRC-32 mismatch)/],
    ['export.bin\'s declared size (central and local)', () => {
      const t = zip.slice();
      t[central + 24]! += 1;
      t[22]! += 1;
      return t;
    }, /inflates to 135 bytes, its header declares 136/],
  ] as const)('a changed byte in %s is a zip rejection naming it', (_what, make, detail) => {
    const v = check(make(), c.publicKey);
    expect(v.ok).toBe(false);
    expect(!v.ok && v.reason).toBe('zip');
    expect(!v.ok && v.detail).toMatch(detail);
  });

  it('any changed byte of the container is rejected or leaves export.bin and export.sig unchanged (only unsigned metadata: times, versions)', () => {
    for (let i = 0; i < zip.length; i++) {
      for (const x of [0x01, 0x80, 0xff]) {
        const p = parseExportZip(flip(i, x));
        if (!p.ok) {
          expect(['zip', 'too-large']).toContain(p.reason);
          continue;
        }
        expect(hex(p.value.exportBin), `byte ${i}`).toBe(hex(c.bin));
        expect(hex(p.value.exportSig), `byte ${i}`).toBe(hex(c.sig));
      }
    }
  });
});

// ------------------------------------------------------------ build → parse → verify

const SIGNING_KEY = unhex('c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721');
const PUBLIC_KEY = nobleSuite.p256PublicKey(SIGNING_KEY);

const keyArb: fc.Arbitrary<ExportKey> = fc.record(
  {
    keyData: fc.uint8Array({ minLength: 16, maxLength: 16 }),
    transmissionRiskLevel: fc.integer({ min: 0, max: 8 }),
    rollingStartIntervalNumber: fc.oneof(fc.constant(0), fc.integer({ min: 2_600_000, max: 2_800_000 }), fc.integer({ min: 0, max: MAX_INT32 })),
    rollingPeriod: fc.oneof(fc.constant(144), fc.integer({ min: 1, max: 144 })),
    reportType: fc.constantFrom<ReportType>(0, 1, 2, 3, 4, 5),
    daysSinceOnsetOfSymptoms: fc.integer({ min: -14, max: 14 }),
  },
  { requiredKeys: ['keyData', 'transmissionRiskLevel', 'rollingStartIntervalNumber', 'rollingPeriod'] },
);

function options(keys: readonly ExportKey[], extra: Partial<BuildExportOptions> = {}): BuildExportOptions {
  return {
    keys,
    startTimestamp: 1_590_159_600,
    endTimestamp: 1_590_246_000,
    region: 'US',
    batchNum: 1,
    batchSize: 1,
    signatureInfo: { verificationKeyId: '310', verificationKeyVersion: 'v1' },
    signingKey: SIGNING_KEY,
    ...extra,
  };
}

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
