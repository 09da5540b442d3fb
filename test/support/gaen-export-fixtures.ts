/**
 * Shared fixtures of the GAEN export tests (test/keyserver/gaen-export-*.test.ts).
 */
import fc from 'fast-check';
import { Zip, ZipDeflate, ZipPassThrough } from 'fflate';
import protobuf from 'protobufjs/light.js';
import { nobleSuite } from '../../protocol/crypto/noble.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import type { Verdict } from '../../protocol/errors.ts';
import { MAX_INT32 } from '../../protocol/keyserver/gaen-export-schema.ts';
import {
  parseExportZip,
  verifyExport,
  type BuildExportOptions,
  type ExportKey,
  type ParsedExport,
  type ReportType,
} from '../../protocol/keyserver/gaen-export.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { p256PublicKeyFromPem } from '../../services/cli/proto-command.ts';
import vectors from '../vectors/gaen-export.json' with { type: 'json' };

export const { Reader, Writer } = protobuf;

/** Set both entry counts of the end-of-central-directory record (uint16 LE). */
export function centralDirectoryTotal(zip: Uint8Array, total: number): Uint8Array {
  const t = zip.slice();
  const eocd = Buffer.from(t).lastIndexOf(Buffer.from('504b0506', 'hex'));
  for (const at of [eocd + 8, eocd + 10]) {
    t[at] = total & 0xff;
    t[at + 1] = total >>> 8;
  }
  return t;
}
export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
export const unhex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
export const reasonOf = (v: Verdict<unknown>): string => (v.ok ? 'accepted' : v.reason);

export const SUITES: readonly (readonly [string, CryptoSuite])[] = [
  ['noble', nobleSuite],
  ['node', nodeSuite],
];

/** Every reason parse and verify may give (the modules' headers). */
export const REASONS = new Set([
  'too-large', 'zip', 'header', 'protobuf', 'missing-field', 'bad-field',
  'no-signature-for-key', 'unsupported-algorithm', 'batch-mismatch', 'signature-info-mismatch', 'signature-encoding', 'bad-signature',
]);

// ------------------------------------------------------------ the vectors

export interface VectorKey {
  readonly key_data: string;
  readonly transmission_risk_level: number;
  readonly rolling_start_interval_number: number;
  readonly rolling_period?: number;
}

export function pemOf(c: (typeof vectors.cases)[number]): string {
  if ('public_key_pem' in c) return c.public_key_pem;
  const b64 = c.public_key_spki_b64.match(/.{1,64}/g)?.join('\n') ?? '';
  return `-----BEGIN PUBLIC KEY-----\n${b64}\n-----END PUBLIC KEY-----\n`;
}

export const CASES = vectors.cases.map((c) => ({
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
export function goStyleZip(bin: Uint8Array, sig: Uint8Array, store = false): Uint8Array {
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

export function parsed(zip: Uint8Array): ParsedExport {
  const v = parseExportZip(zip);
  if (!v.ok) throw new Error(`${v.reason}: ${v.detail}`);
  return v.value;
}

/** parse + verify, the way a phone takes a downloaded file. */
export function check(zip: Uint8Array, publicKey: Uint8Array, suite: CryptoSuite = nodeSuite): Verdict<unknown> {
  const p = parseExportZip(zip);
  return p.ok ? verifyExport(suite, p.value, publicKey) : p;
}

export const SIGNING_KEY = unhex('c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721');
export const PUBLIC_KEY = nobleSuite.p256PublicKey(SIGNING_KEY);

export const keyArb: fc.Arbitrary<ExportKey> = fc.record(
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

export function options(keys: readonly ExportKey[], extra: Partial<BuildExportOptions> = {}): BuildExportOptions {
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
