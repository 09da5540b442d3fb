/**
 * Signed, content-addressed distribution files.
 *
 *   container = msgpack { v: 1, alg: 'ecdsa-p256-sha256', keyId, body: bin, sig: bin }
 *   name      = lowercase hex SHA-256(container bytes)
 *   sig       = ECDSA P-256 / SHA-256, strict DER with low s, over
 *               "tracecity/keyserver/distribution/v1" ‖ 0x00 ‖ keyId ‖ 0x00 ‖ body
 *
 * `body` is the encoded file (distribution-file.ts). The signed message is
 * domain-separated (the same P-256 key may also sign GAEN export.bin) and
 * binds the key id. The container is canonical: the signer normalizes s to
 * the lower half of the group order (node:crypto and noble may produce
 * either), the reader refuses a high s and any msgpack encoding other than
 * the one our encoder writes — so one content has exactly one name, and a
 * relay cannot mint a second valid name for a file (which would break the
 * basedOn chain of the clients that took it).
 *
 * openDistributionFile checks, in this order, before the body is decoded
 * (codec `keyserver-distribution`):
 *   too-large              more bytes than limits.maxFileBytes
 *   name-mismatch          SHA-256 of the bytes is not the name asked for
 *   malformed              not a dialect msgpack map with exactly the container's fields
 *   unsupported-version    container `v` is not 1
 *   unsupported-algorithm  `alg` is not ecdsa-p256-sha256
 *   non-canonical          the bytes are not our encoding of the decoded container
 *   unknown-key            no public key for `keyId`
 *   signature-encoding     not a strict DER P-256 signature with low s
 *   bad-signature          the signature does not verify
 * then the body's own reasons (distribution-file.ts).
 */
import { isSec1PointShape } from '../crypto/args.ts';
import type { CryptoSuite } from '../crypto/suite.ts';
import { ensure, MisuseError, reject, type Rejection, type Verdict } from '../errors.ts';
import { readBody } from '../wire/body.ts';
import { isWireMap, packWire, unpackWire } from '../wire/msgpack.ts';
import {
  asMalformed,
  decodeDistributionFile,
  DISTRIBUTION_CODEC,
  DISTRIBUTION_VERSION,
  encodeDistributionFile,
  isDigestHex,
  resolveDistributionLimits,
  versionProblem,
  type DistributionFile,
  type DistributionLimits,
  type FileName,
} from './distribution-file.ts';
import { toHex, type IdentifiedRecord } from './distribution-records.ts';
import { compactToDer, derToCompact } from './gaen-export-signature.ts';

export const DISTRIBUTION_SIGNATURE_ALG = 'ecdsa-p256-sha256';
/** Signing key ids: 1–64 of [A-Za-z0-9_.-]. */
export const KEY_ID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
const ALG_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
/** DER ECDSA P-256 signatures are 8–72 bytes; a little slack lets the strict parser name the problem. */
const MAX_SIG_BYTES = 80;
const SIGNING_CONTEXT = new TextEncoder().encode('tracecity/keyserver/distribution/v1');
const P256_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const HALF_ORDER = P256_ORDER >> 1n;

export interface SignedDistributionFile {
  /** Content address: lowercase hex SHA-256 of `bytes`. */
  readonly name: FileName;
  /** The signed container, as served and fetched. */
  readonly bytes: Uint8Array;
}

/**
 * The bytes the signature covers (module header). `context` separates what
 * the same key signs: distribution files, and sighting filters
 * (sighting-filter.ts) under their own context.
 */
export function distributionSigningMessage(keyId: string, body: Uint8Array, context: Uint8Array = SIGNING_CONTEXT): Uint8Array {
  const id = new TextEncoder().encode(keyId);
  const out = new Uint8Array(context.length + 1 + id.length + 1 + body.length);
  out.set(context, 0);
  out.set(id, context.length + 1);
  out.set(body, context.length + 2 + id.length);
  return out;
}

/** The content address of a file's bytes. */
export function distributionFileName(crypto: Pick<CryptoSuite, 'sha256'>, bytes: Uint8Array): FileName {
  return toHex(crypto.sha256(bytes));
}

function scalar(bytes: Uint8Array): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

/** The low-s form of a strict DER signature (s ↦ n − s when s > n/2), or undefined when the DER is not strict. */
export function lowSDer(der: Uint8Array): Uint8Array | undefined {
  const compact = derToCompact(der);
  if (compact === undefined) return undefined;
  const s = scalar(compact.subarray(32));
  if (s <= HALF_ORDER) return der;
  let flipped = P256_ORDER - s;
  for (let i = 63; i >= 32; i--) {
    compact[i] = Number(flipped & 0xffn);
    flipped >>= 8n;
  }
  return compactToDer(compact);
}

/** The container map, fields in the canonical order. */
function containerWire(keyId: string, body: Uint8Array, sig: Uint8Array): { v: number; alg: string; keyId: string; body: Uint8Array; sig: Uint8Array } {
  return { v: DISTRIBUTION_VERSION, alg: DISTRIBUTION_SIGNATURE_ALG, keyId, body, sig };
}

/**
 * Sign `body` under `context` and wrap it in the canonical container (module
 * header); throws MisuseError naming the field. Deterministic for a
 * deterministic ECDSA (noble, RFC 6979).
 */
export function signContainer(crypto: CryptoSuite, signingKey: Uint8Array, keyId: string, body: Uint8Array, context: Uint8Array = SIGNING_CONTEXT): SignedDistributionFile {
  ensure(signingKey instanceof Uint8Array && signingKey.length === 32, 'signingKey', 'must be a 32-byte P-256 private key');
  ensure(typeof keyId === 'string' && KEY_ID_PATTERN.test(keyId), 'keyId', `must match ${String(KEY_ID_PATTERN)}`);
  let der: Uint8Array;
  try {
    der = crypto.p256Sign(signingKey, distributionSigningMessage(keyId, body, context));
  } catch (err) {
    if (err instanceof MisuseError) throw new MisuseError('signingKey', err.message);
    throw err;
  }
  const sig = lowSDer(der);
  ensure(sig !== undefined, 'crypto', 'p256Sign returned a signature that is not strict DER');
  const bytes = packWire(containerWire(keyId, body, sig), 'container');
  return { name: distributionFileName(crypto, bytes), bytes };
}

/**
 * Encode, sign and name a file. Deterministic for a deterministic ECDSA
 * (noble, RFC 6979); node:crypto's signatures are randomized, so its names
 * differ from one signing to the next. Throws MisuseError naming the field.
 */
export function signDistributionFile(
  crypto: CryptoSuite,
  signingKey: Uint8Array,
  keyId: string,
  file: DistributionFile,
  limits: Partial<DistributionLimits> = {},
): SignedDistributionFile {
  const caps = resolveDistributionLimits(limits);
  ensure(signingKey instanceof Uint8Array && signingKey.length === 32, 'signingKey', 'must be a 32-byte P-256 private key');
  ensure(typeof keyId === 'string' && KEY_ID_PATTERN.test(keyId), 'keyId', `must match ${String(KEY_ID_PATTERN)}`);
  const signed = signContainer(crypto, signingKey, keyId, encodeDistributionFile(crypto, file, caps));
  ensure(signed.bytes.length <= caps.maxFileBytes, 'file', `signs to ${signed.bytes.length} bytes, over limits.maxFileBytes = ${caps.maxFileBytes}`);
  return signed;
}

/** instanceof Map without the type guard (which would widen the map's types to any). */
const isMap = (value: unknown): boolean => value instanceof Map;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export interface OpenedContainer {
  readonly keyId: string;
  /** The signed body, not yet decoded. */
  readonly body: Uint8Array;
}

/**
 * Check a fetched container's name, encoding, key and signature under
 * `context` (the module header's order, rejections of `codec`); returns the
 * body bytes. Never throws on hostile bytes or names.
 */
export function openContainer(
  crypto: CryptoSuite,
  publicKeys: ReadonlyMap<string, Uint8Array>,
  name: string,
  bytes: Uint8Array,
  maxBytes: number,
  codec: string = DISTRIBUTION_CODEC,
  context: Uint8Array = SIGNING_CONTEXT,
): Verdict<OpenedContainer> {
  ensure(isMap(publicKeys), 'publicKeys', 'must be a Map from key id to public key');
  ensure(bytes instanceof Uint8Array, 'bytes', 'must be a Uint8Array');
  const fail = (reason: string, detail: string, field?: string): Rejection => reject(codec, reason, detail, field);
  if (bytes.length > maxBytes) return fail('too-large', `${bytes.length} bytes, over the ${maxBytes}-byte cap`);
  const actual = distributionFileName(crypto, bytes);
  if (!isDigestHex(name) || actual !== name) {
    const asked = typeof name === 'string' ? JSON.stringify(name.slice(0, 80)) : typeof name;
    return fail('name-mismatch', `content hashes to ${actual}, not the name asked for (${asked})`);
  }

  const wire = unpackWire(bytes, codec, '');
  if (!wire.ok) return asMalformed(codec, wire);
  if (!isWireMap(wire.value)) return fail('malformed', 'not-a-map: a signed container is a map');
  const version = versionProblem(codec, wire.value, 'signed container');
  if (version !== undefined) return version;
  const read = readBody(codec, wire.value, (r) => ({
    v: r.int('v', DISTRIBUTION_VERSION, DISTRIBUTION_VERSION),
    alg: r.string('alg', ALG_PATTERN, 64),
    keyId: r.string('keyId', KEY_ID_PATTERN, 64),
    body: r.bytes('body', 0, maxBytes),
    sig: r.bytes('sig', 1, MAX_SIG_BYTES),
  }));
  if (!read.ok) return asMalformed(codec, read);
  const { alg, keyId, body, sig } = read.value;
  if (alg !== DISTRIBUTION_SIGNATURE_ALG) return fail('unsupported-algorithm', `algorithm ${JSON.stringify(alg)}; only ${DISTRIBUTION_SIGNATURE_ALG}`, 'alg');
  if (!sameBytes(packWire(containerWire(keyId, body, sig), 'container'), bytes)) {
    return fail('non-canonical', 'the container is not in its canonical encoding (field order and shortest msgpack forms)');
  }

  const publicKey = publicKeys.get(keyId);
  if (publicKey === undefined) return fail('unknown-key', `no public key for key id ${JSON.stringify(keyId)}`, 'keyId');
  ensure(publicKey instanceof Uint8Array && isSec1PointShape(publicKey), `publicKeys.${keyId}`, 'must be a SEC1 P-256 point (33 or 65 bytes)');
  const compact = derToCompact(sig);
  if (compact === undefined || scalar(compact.subarray(32)) > HALF_ORDER) {
    return fail('signature-encoding', 'not a strict DER ECDSA P-256 signature with low s', 'sig');
  }
  if (!crypto.p256Verify(publicKey, distributionSigningMessage(keyId, body, context), sig)) {
    return fail('bad-signature', `the signature does not verify under key ${JSON.stringify(keyId)}`, 'sig');
  }
  return { ok: true, value: { keyId, body } };
}

/**
 * Open a fetched file: check its name, container, key and signature, then
 * decode the body (module header for the order of checks). Never throws on
 * hostile bytes or names; `publicKeys` maps key ids to SEC1 P-256 points
 * (caller data: a malformed key is MisuseError).
 */
export function openDistributionFile(
  crypto: CryptoSuite,
  publicKeys: ReadonlyMap<string, Uint8Array>,
  name: string,
  bytes: Uint8Array,
  limits: Partial<DistributionLimits> = {},
): Verdict<DistributionFile<IdentifiedRecord>> {
  const caps = resolveDistributionLimits(limits);
  const opened = openContainer(crypto, publicKeys, name, bytes, caps.maxFileBytes);
  if (!opened.ok) return opened;
  return decodeDistributionFile(crypto, opened.value.body, caps);
}
