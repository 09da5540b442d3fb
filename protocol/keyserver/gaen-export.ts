/**
 * GAEN key export files (SPECS §1.7): export.zip = export.bin + export.sig.
 *
 *   parseExportZip(bytes, limits?)                    → Verdict<ParsedExport>
 *   verifyExport(crypto, parsed, publicKey, options?) → Verdict<VerifiedExport>
 *   buildExportZip(crypto, options)                   → BuiltExport (zip + both files + final key list)
 *
 * Layout of the module family:
 *   gaen-export-schema.ts     proto2 schema (protobufjs reflection), constants, model types
 *   gaen-export-codec.ts      export.bin / export.sig ⇄ model, field and range validation
 *   gaen-export-zip.ts        the zip container: bounded reader, deterministic writer (fflate)
 *   gaen-export-signature.ts  DER ⇄ r‖s, signing, verification against a public key
 *   gaen-export-padding.ts    fake-key padding to a minimum count with jitter (EN-server's rule)
 *
 * Parsing never throws on hostile bytes: every problem is a Rejection with
 * codec `gaen-export` and a reason — `too-large` or `zip` (container),
 * `header`, `protobuf`, `missing-field`, `bad-field` (content) — and
 * verification adds its own (gaen-export-signature.ts). Caller misuse
 * (bad options, wrong key sizes) throws MisuseError naming the field.
 */
import type { CryptoSuite } from '../crypto/suite.ts';
import { accept, ensure, type Verdict } from '../errors.ts';
import { checkKey, decodeExportBin, decodeExportSig, encodeExportBin, encodeExportSig, type DecodeLimits } from './gaen-export-codec.ts';
import { padWithFakeKeys, type PaddingOptions } from './gaen-export-padding.ts';
import { ECDSA_P256_SHA256_OID, type ExportKey, type ExportSignature, type ParsedExport, type SignatureInfo } from './gaen-export-schema.ts';
import { signExportBin } from './gaen-export-signature.ts';
import { readExportZip, writeExportZip, type ZipLimits } from './gaen-export-zip.ts';

export type { ExportContent, ExportKey, ExportSignature, ParsedExport, ReportType, SignatureInfo } from './gaen-export-schema.ts';
export { ECDSA_P256_SHA256_OID, EXPORT_BIN_HEADER, GAEN_EXPORT_CODEC, REPORT_TYPES, TEK_BYTES } from './gaen-export-schema.ts';
export { compactToDer, derToCompact, verifyExport, type VerifiedExport, type VerifyExportOptions } from './gaen-export-signature.ts';
export type { PaddingOptions, PaddingRng } from './gaen-export-padding.ts';
export { EXPORT_BIN_NAME, EXPORT_SIG_NAME } from './gaen-export-zip.ts';

export interface ExportLimits extends ZipLimits, DecodeLimits {}

/**
 * Default caps. The reference server writes up to EXPORT_FILE_MAX_RECORDS =
 * 500,000 keys per file (`internal/export/config.go`), ~28 bytes each
 * (≈ 14 MB): 16 MiB for the archive and export.bin leaves room for that; a
 * signature list is a few hundred bytes.
 */
export const DEFAULT_EXPORT_LIMITS: ExportLimits = {
  maxZipBytes: 16 * 1024 * 1024,
  maxExportBinBytes: 16 * 1024 * 1024,
  maxExportSigBytes: 64 * 1024,
  maxKeys: 500_000,
  maxSignatures: 64,
};

function resolveLimits(limits: Partial<ExportLimits>): ExportLimits {
  const resolved = { ...DEFAULT_EXPORT_LIMITS, ...limits };
  for (const [name, value] of Object.entries(resolved)) {
    ensure(Number.isSafeInteger(value) && value > 0, `limits.${name}`, 'must be a positive integer');
  }
  return resolved;
}

/** Unzip, check and decode an export.zip (no signature check: see verifyExport). */
export function parseExportZip(bytes: Uint8Array, limits: Partial<ExportLimits> = {}): Verdict<ParsedExport> {
  ensure(bytes instanceof Uint8Array, 'bytes', 'must be a Uint8Array');
  const caps = resolveLimits(limits);
  const files = readExportZip(bytes, caps);
  if (!files.ok) return files;
  const { exportBin, exportSig } = files.value;
  const content = decodeExportBin(exportBin, caps);
  if (!content.ok) return content;
  const signatures = decodeExportSig(exportSig, caps);
  if (!signatures.ok) return signatures;
  return accept({ ...content.value, exportBin, exportSig, signatures: signatures.value });
}

// ------------------------------------------------------------ building

export interface BuildExportOptions {
  readonly keys: readonly ExportKey[];
  readonly revisedKeys?: readonly ExportKey[];
  /** Window of the keys' arrival at the server, Unix seconds. */
  readonly startTimestamp: number;
  readonly endTimestamp: number;
  readonly region: string;
  readonly batchNum: number;
  readonly batchSize: number;
  /** Written in export.bin's signature_infos and in the TEKSignature; the algorithm defaults to ecdsa-with-SHA256. */
  readonly signatureInfo: Omit<SignatureInfo, 'signatureAlgorithm'> & { readonly signatureAlgorithm?: string };
  /** P-256 private key, 32 bytes. */
  readonly signingKey: Uint8Array;
  /** Pad with fake keys to a minimum count (gaen-export-padding.ts); none when absent. */
  readonly padding?: PaddingOptions;
}

export interface BuiltExport {
  readonly zip: Uint8Array;
  readonly exportBin: Uint8Array;
  readonly exportSig: Uint8Array;
  /** The keys as written: real and fake, sorted by key_data. */
  readonly keys: readonly ExportKey[];
  readonly revisedKeys: readonly ExportKey[];
  readonly fakeKeys: number;
}

/** Array.isArray without the type guard (which would narrow a typed array parameter to any[]). */
const isArray = (value: unknown): boolean => Array.isArray(value);

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** Keys ascending by key_data bytes, as EN-server `marshalContents` ("scramble keys to ensure no associations"). */
export function sortKeys(keys: readonly ExportKey[]): ExportKey[] {
  return [...keys].sort((a, b) => compareBytes(a.keyData, b.keyData));
}

/**
 * Build a signed export.zip. export.bin is a pure function of the options
 * (and of the rng's output when padding); the zip has a fixed mtime, so it is
 * byte-for-byte deterministic whenever the suite's ECDSA is (noble signs per
 * RFC 6979; node:crypto's ECDSA signatures are randomized).
 */
export function buildExportZip(crypto: CryptoSuite, options: BuildExportOptions): BuiltExport {
  ensure(typeof options === 'object' && options !== null, 'options', 'must be an object');
  const { keys, revisedKeys = [], signatureInfo, padding } = options;
  ensure(isArray(keys), 'keys', 'must be an array of keys');
  ensure(isArray(revisedKeys), 'revisedKeys', 'must be an array of keys');
  ensure(typeof signatureInfo === 'object' && signatureInfo !== null, 'signatureInfo', 'must be an object');
  const algorithm = signatureInfo.signatureAlgorithm ?? ECDSA_P256_SHA256_OID;
  ensure(algorithm === ECDSA_P256_SHA256_OID, 'signatureInfo.signatureAlgorithm', `must be ${ECDSA_P256_SHA256_OID} (we sign with ECDSA P-256 / SHA-256)`);
  const info: SignatureInfo = {
    verificationKeyVersion: signatureInfo.verificationKeyVersion,
    verificationKeyId: signatureInfo.verificationKeyId,
    signatureAlgorithm: algorithm,
  };

  // Checked in the caller's order, before padding and sorting, so a MisuseError names the caller's index.
  keys.forEach((k, i) => checkKey(k, `keys[${i}]`));
  revisedKeys.forEach((k, i) => checkKey(k, `revisedKeys[${i}]`));
  const padded = padding === undefined ? { keys, fakeKeys: 0 } : padWithFakeKeys(keys, padding);
  const { maxKeys, maxExportBinBytes, maxExportSigBytes } = DEFAULT_EXPORT_LIMITS;
  ensure(padded.keys.length + revisedKeys.length <= maxKeys, 'keys', `at most ${maxKeys} keys (with padding and revised keys) fit one export`);
  const sortedKeys = sortKeys(padded.keys);
  const sortedRevised = sortKeys(revisedKeys);

  const exportBin = encodeExportBin({
    startTimestamp: options.startTimestamp,
    endTimestamp: options.endTimestamp,
    region: options.region,
    batchNum: options.batchNum,
    batchSize: options.batchSize,
    signatureInfos: [info],
    keys: sortedKeys,
    revisedKeys: sortedRevised,
  });
  ensure(exportBin.length <= maxExportBinBytes, 'keys', `export.bin would exceed ${maxExportBinBytes} bytes`);
  const signature: ExportSignature = {
    signatureInfo: info,
    batchNum: options.batchNum,
    batchSize: options.batchSize,
    signature: signExportBin(crypto, options.signingKey, exportBin),
  };
  const exportSig = encodeExportSig([signature]);
  ensure(exportSig.length <= maxExportSigBytes, 'signatureInfo', `export.sig would exceed ${maxExportSigBytes} bytes`);
  return {
    zip: writeExportZip(exportBin, exportSig),
    exportBin,
    exportSig,
    keys: sortedKeys,
    revisedKeys: sortedRevised,
    fakeKeys: padded.fakeKeys,
  };
}
