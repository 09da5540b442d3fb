/**
 * export.sig signatures (SPECS §1.7): ECDSA P-256 with SHA-256 over the whole
 * export.bin (header included), DER-encoded (X9.62 `SEQUENCE { r INTEGER,
 * s INTEGER }`) in TEKSignature.signature, algorithm OID
 * `1.2.840.10045.4.3.2`.
 *
 * The crypto suite's p256Sign returns DER and p256Verify takes DER
 * (protocol/crypto/suite.ts), like the file, so no conversion is needed on
 * the way to the suite. The DER is still parsed here, strictly (minimal
 * lengths, no padding zeros, no negative or zero integers, r and s below the
 * group order, nothing trailing), so that both suites refuse exactly the same
 * encodings with the same reason — noble and OpenSSL differ in how lenient
 * their DER readers are — and `derToCompact` / `compactToDer` convert to and
 * from the 64-byte r ‖ s form other APIs (WebCrypto, JOSE) use.
 *
 * Verification rejections (codec `gaen-export`), per candidate TEKSignature,
 * in this order; with several candidates the one that got furthest is reported:
 *   no-signature-for-key     no TEKSignature matches the requested key id / version
 *   unsupported-algorithm    the entry's OID is not ecdsa-with-SHA256
 *   batch-mismatch           the entry's batch_num / batch_size differ from export.bin's
 *   signature-info-mismatch  the entry's SignatureInfo is not among export.bin's
 *                            signature_infos (the reference server writes the
 *                            same one in both; export.bin's copy is the signed one)
 *   signature-encoding       not a strict DER ECDSA P-256 signature
 *   bad-signature            the signature does not verify under the public key
 */
import { isSec1PointShape } from '../crypto/args.ts';
import type { CryptoSuite } from '../crypto/suite.ts';
import { accept, ensure, MisuseError, reject, type Rejection, type Verdict } from '../errors.ts';
import { ECDSA_P256_SHA256_OID, GAEN_EXPORT_CODEC, type ExportSignature, type ParsedExport, type SignatureInfo } from './gaen-export-schema.ts';

/** r ‖ s, 32 bytes each. */
export const P256_COMPACT_SIGNATURE_BYTES = 64;
const SCALAR_BYTES = 32;
/** Order n of the P-256 group (FIPS 186-4 D.1.2.3): r and s are in [1, n − 1]. */
const P256_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const DER_SEQUENCE = 0x30;
const DER_INTEGER = 0x02;

function toBigInt(bytes: Uint8Array): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

/** Read one strict DER INTEGER at `at`; returns its unsigned big-endian magnitude and the next offset. */
function readInteger(der: Uint8Array, at: number): { value: Uint8Array; next: number } | undefined {
  if (der[at] !== DER_INTEGER) return undefined;
  const length = der[at + 1];
  // P-256 integers take at most 33 bytes: short-form lengths only (< 128).
  if (length === undefined || length === 0 || length > SCALAR_BYTES + 1) return undefined;
  const value = der.subarray(at + 2, at + 2 + length);
  if (value.length !== length) return undefined;
  const first = value[0] ?? 0;
  if (first & 0x80) return undefined; // negative
  if (first === 0 && length > 1 && ((value[1] ?? 0) & 0x80) === 0) return undefined; // unnecessary leading zero
  const magnitude = first === 0 && length > 1 ? value.subarray(1) : value;
  if (magnitude.length > SCALAR_BYTES) return undefined;
  return { value: magnitude, next: at + 2 + length };
}

/** Strict DER ECDSA P-256 signature → 64-byte r ‖ s, or undefined when the encoding or values are not canonical. */
export function derToCompact(der: Uint8Array): Uint8Array | undefined {
  if (der.length < 8 || der[0] !== DER_SEQUENCE || der[1] !== der.length - 2) return undefined;
  const r = readInteger(der, 2);
  if (r === undefined) return undefined;
  const s = readInteger(der, r.next);
  if (s === undefined || s.next !== der.length) return undefined;
  const out = new Uint8Array(P256_COMPACT_SIGNATURE_BYTES);
  for (const [i, part] of [r.value, s.value].entries()) {
    const n = toBigInt(part);
    if (n === 0n || n >= P256_ORDER) return undefined;
    out.set(part, i * SCALAR_BYTES + SCALAR_BYTES - part.length);
  }
  return out;
}

function derInteger(scalar: Uint8Array): Uint8Array {
  let start = 0;
  while (start < scalar.length - 1 && scalar[start] === 0) start++;
  const magnitude = scalar.subarray(start);
  const pad = (magnitude[0] ?? 0) & 0x80 ? 1 : 0;
  const out = new Uint8Array(2 + pad + magnitude.length);
  out[0] = DER_INTEGER;
  out[1] = pad + magnitude.length;
  out.set(magnitude, 2 + pad);
  return out;
}

/** 64-byte r ‖ s → DER `SEQUENCE { r INTEGER, s INTEGER }` (minimal encoding). */
export function compactToDer(compact: Uint8Array): Uint8Array {
  ensure(compact instanceof Uint8Array && compact.length === P256_COMPACT_SIGNATURE_BYTES, 'compact', `must be ${P256_COMPACT_SIGNATURE_BYTES} bytes (r ‖ s)`);
  const r = derInteger(compact.subarray(0, SCALAR_BYTES));
  const s = derInteger(compact.subarray(SCALAR_BYTES));
  const out = new Uint8Array(2 + r.length + s.length);
  out[0] = DER_SEQUENCE;
  out[1] = r.length + s.length;
  out.set(r, 2);
  out.set(s, 2 + r.length);
  return out;
}

/** DER ECDSA P-256 / SHA-256 signature over export.bin, as the reference server's `generateSignature`. */
export function signExportBin(crypto: CryptoSuite, signingKey: Uint8Array, exportBin: Uint8Array): Uint8Array {
  ensure(signingKey instanceof Uint8Array && signingKey.length === SCALAR_BYTES, 'signingKey', `must be a ${SCALAR_BYTES}-byte P-256 private key`);
  try {
    return crypto.p256Sign(signingKey, exportBin);
  } catch (err) {
    if (err instanceof MisuseError) throw new MisuseError('signingKey', err.message);
    throw err;
  }
}

// ------------------------------------------------------------ verification

export interface VerifyExportOptions {
  /** Only consider TEKSignatures whose verification_key_id is this (e.g. `310`). */
  readonly keyId?: string;
  /** Only consider TEKSignatures whose verification_key_version is this (e.g. `v1`). */
  readonly keyVersion?: string;
}

export interface VerifiedExport {
  readonly parsed: ParsedExport;
  /** The TEKSignature that verified. */
  readonly signature: ExportSignature;
}

const STAGES = ['unsupported-algorithm', 'batch-mismatch', 'signature-info-mismatch', 'signature-encoding', 'bad-signature'] as const;

const sameInfo = (a: SignatureInfo, b: SignatureInfo): boolean =>
  a.verificationKeyId === b.verificationKeyId && a.verificationKeyVersion === b.verificationKeyVersion && a.signatureAlgorithm === b.signatureAlgorithm;

const describeKey = (info: SignatureInfo): string => JSON.stringify(`${info.verificationKeyId}-${info.verificationKeyVersion}`);

/** Why `entry` does not verify export.bin under `publicKey`, or undefined when it does. */
function checkEntry(crypto: CryptoSuite, parsed: ParsedExport, entry: ExportSignature, publicKey: Uint8Array, path: string): Rejection | undefined {
  const fail = (reason: (typeof STAGES)[number], detail: string, field = path): Rejection => reject(GAEN_EXPORT_CODEC, reason, detail, field);
  const info = entry.signatureInfo;
  if (info.signatureAlgorithm !== ECDSA_P256_SHA256_OID) {
    return fail('unsupported-algorithm', `${path} uses algorithm ${JSON.stringify(info.signatureAlgorithm)}; only ${ECDSA_P256_SHA256_OID} (ECDSA P-256 / SHA-256)`, `${path}.signature_info.signature_algorithm`);
  }
  if (entry.batchNum !== parsed.batchNum || entry.batchSize !== parsed.batchSize) {
    return fail('batch-mismatch', `${path} is for batch ${entry.batchNum} of ${entry.batchSize}, export.bin is batch ${parsed.batchNum} of ${parsed.batchSize}`);
  }
  if (!parsed.signatureInfos.some((i) => sameInfo(i, info))) {
    return fail('signature-info-mismatch', `${path}'s signature_info (key ${describeKey(info)}) is not among export.bin's signature_infos`, `${path}.signature_info`);
  }
  if (derToCompact(entry.signature) === undefined) {
    return fail('signature-encoding', `${path}.signature is not a strict DER ECDSA P-256 signature`, `${path}.signature`);
  }
  if (!crypto.p256Verify(publicKey, parsed.exportBin, entry.signature)) {
    return fail('bad-signature', `${path} (key ${describeKey(info)}) does not verify export.bin under the given public key`, `${path}.signature`);
  }
  return undefined;
}

/**
 * Verify a parsed export against one P-256 public key (SEC1, 33 or 65 bytes).
 * Accepts when any candidate TEKSignature verifies the whole export.bin.
 */
export function verifyExport(crypto: CryptoSuite, parsed: ParsedExport, publicKey: Uint8Array, options: VerifyExportOptions = {}): Verdict<VerifiedExport> {
  ensure(publicKey instanceof Uint8Array && isSec1PointShape(publicKey), 'publicKey', 'must be a SEC1 P-256 point: 65 bytes (04 ‖ x ‖ y) or 33 bytes (02/03 ‖ x)');
  const { keyId, keyVersion } = options;
  const candidates = parsed.signatures
    .map((entry, i) => ({ entry, path: `signatures[${i}]` }))
    .filter(({ entry }) => (keyId === undefined || entry.signatureInfo.verificationKeyId === keyId) && (keyVersion === undefined || entry.signatureInfo.verificationKeyVersion === keyVersion));
  if (candidates.length === 0) {
    const wanted = keyId === undefined && keyVersion === undefined ? 'any key' : `key id ${JSON.stringify(keyId ?? '*')} version ${JSON.stringify(keyVersion ?? '*')}`;
    const present = parsed.signatures.map((s) => describeKey(s.signatureInfo)).join(', ');
    return reject(GAEN_EXPORT_CODEC, 'no-signature-for-key', `export.sig has no signature for ${wanted} (present: ${present === '' ? 'none' : present})`, 'signatures');
  }
  let furthest: Rejection | undefined;
  for (const { entry, path } of candidates) {
    const problem = checkEntry(crypto, parsed, entry, publicKey, path);
    if (problem === undefined) return accept({ parsed, signature: entry });
    const stage = (r: Rejection): number => STAGES.indexOf(r.reason as (typeof STAGES)[number]);
    if (furthest === undefined || stage(problem) > stage(furthest)) furthest = problem;
  }
  return furthest ?? reject(GAEN_EXPORT_CODEC, 'bad-signature', 'no signature verifies', 'signatures');
}
