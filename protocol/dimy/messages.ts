/**
 * Messages of the DIMY backend (SPECS §4.1 "CBF", "QBF", "Matching"; §4.2 backend tasks 9/10,
 * §7.22). The backend keeps positives' CBFs and answers phones' QBF queries; the health authority
 * registers one-time authorization codes for CBF uploads ("HA access token valid 24 h", §4.1).
 *
 *   phone → backend              dimy.qbf.query      { filter, tOld }          → dimy.qbf.result
 *   positive phone → backend     dimy.cbf.upload     { filter, code }          → dimy.cbf.ack
 *   health authority → backend   dimy.codes.register { digests, lifetimeMs }   → dimy.codes.ack
 *
 * Fields (every one checked; unknown fields are rejected, protocol/wire/body.ts):
 *   filter      bytes, an encoded Bloom filter v1 (protocol/dimy/bloom.ts: version byte 0x01, then
 *               100,000 bytes of bits = 100,001 bytes); decoded here into a BloomFilter
 *   tOld        integer ms, [0, year 9999]: start of the phone's oldest DBF (only CBFs uploaded at
 *               or after it are searched)
 *   code        string, a printed one-time code (protocol/keyserver/upload-code.ts: 80 bits,
 *               Crockford base32, Damm check symbol); parsed here, so a mistyped code never
 *               reaches the machine
 *   digests     bytes, 1–1,000 packed 32-byte HMAC-SHA-256(pepper, label ‖ code) digests
 *               (uploadCodeDigest); the backend never sees a code before its upload
 *   lifetimeMs  integer, (0, 14 days]: the codes expire this long after the backend registers them
 *   matched     boolean; searched, matches: integers ≤ DIMY_MAX_SEARCHED (CBFs compared, CBFs matched;
 *               a deployment that wants the paper's bare "matched / not matched" ignores the counts)
 *   accepted    boolean; registered: integer ≤ 1,000
 *   reason      '' or one of the listed refusals (DIMY_QUERY_REFUSALS, DIMY_UPLOAD_REFUSALS,
 *               DIMY_REGISTER_REFUSALS)
 *
 * Versioning: the envelope carries v = 1 and the filter its own version byte; a different body
 * layout gets a new type name. Hostile bodies never throw: decoders return a Rejection with
 * codec = the message type and the reason of protocol/wire/body.ts (`not-a-map`, `field-type`,
 * `field-length`, `field-range`, `field-format`, `unknown-field`) or one of:
 *   bad-filter   the filter bytes fail decodeBloom (field `filter`; detail starts with its reason)
 *   bad-code     the code fails parseUploadCode (field `code`; detail starts with its reason)
 * Encoders check the value through the decoder and throw MisuseError on a malformed one.
 */
import { MisuseError, reject, type Verdict } from '../errors.ts';
import { MAX_UPLOAD_CODE_LIFETIME_MS, parseUploadCode, UPLOAD_CODE_DIGEST_BYTES, UPLOAD_CODE_MAX_INPUT_CHARS, type UploadCode } from '../keyserver/upload-code.ts';
import { bodyCodec, type BodyReader } from '../wire/body.ts';
import { MessageRegistry, type MessageCodec } from '../wire/messages.ts';
import { decodeBloom, DIMY_BLOOM_ENCODED_BYTES, encodeBloom, type BloomFilter } from './bloom.ts';

/** Decoder-specific rejection reasons (besides protocol/wire/body.ts's). */
export const DIMY_MESSAGE_REJECTION_REASONS = ['bad-filter', 'bad-code'] as const;
/** Largest time field, ms (year 9999), as the other backends. */
export const DIMY_MAX_TIME_MS = 253_402_300_799_999;
/** Code digests per register message (a batch; larger sets are split). */
export const DIMY_MAX_CODES_PER_REGISTER = 1000;
/** Bound of the result counters (a backend never holds more CBFs). */
export const DIMY_MAX_SEARCHED = 1_000_000;
/** Why a query is not answered with a search. */
export const DIMY_QUERY_REFUSALS = ['too-full'] as const;
/** Why a CBF upload is refused (order of the checks: actors/dimy/backend-logic.ts). */
export const DIMY_UPLOAD_REFUSALS = ['too-full', 'unknown-code', 'used', 'expired', 'capacity'] as const;
/** Why codes are not (all) registered. */
export const DIMY_REGISTER_REFUSALS = ['capacity'] as const;

export interface DimyQbfQuery {
  readonly filter: BloomFilter;
  /** Start of the phone's oldest DBF, ms. */
  readonly tOld: number;
}
export interface DimyQbfResult {
  readonly matched: boolean;
  readonly searched: number;
  readonly matches: number;
  /** '' when searched, else a DIMY_QUERY_REFUSALS value. */
  readonly reason: '' | (typeof DIMY_QUERY_REFUSALS)[number];
}
export interface DimyCbfUpload {
  readonly filter: BloomFilter;
  readonly code: UploadCode;
}
export interface DimyCbfAck {
  readonly accepted: boolean;
  readonly reason: '' | (typeof DIMY_UPLOAD_REFUSALS)[number];
}
export interface DimyCodesRegister {
  /** 32-byte digests (uploadCodeDigest under the backend's pepper). */
  readonly digests: readonly Uint8Array[];
  readonly lifetimeMs: number;
}
export interface DimyCodesAck {
  readonly registered: number;
  readonly reason: '' | (typeof DIMY_REGISTER_REFUSALS)[number];
}


const codec = bodyCodec;

const accepted = <T>(value: T): Verdict<T> => ({ ok: true, value });
const time = (r: BodyReader, name: string): number => r.int(name, 0, DIMY_MAX_TIME_MS);
const filterBytes = (r: BodyReader): Uint8Array => r.bytes('filter', DIMY_BLOOM_ENCODED_BYTES);
const reasonOf = <R extends string>(r: BodyReader, values: readonly R[]): '' | R => r.oneOf<'' | R>('reason', ['', ...values]);
const count = (r: BodyReader, name: string, max: number): number => r.int(name, 0, max);

/** decodeBloom with its rejection re-labelled for message `type` (reason `bad-filter`). */
function filterOf(type: string, bytes: Uint8Array): Verdict<BloomFilter> {
  const filter = decodeBloom(bytes);
  return filter.ok ? filter : reject(type, 'bad-filter', `${filter.reason}: ${filter.detail}`, 'filter');
}

export const dimyQbfQueryCodec = codec<{ filter: Uint8Array; tOld: number }, DimyQbfQuery>(
  'dimy.qbf.query',
  (r) => ({ filter: filterBytes(r), tOld: time(r, 'tOld') }),
  (f) => {
    const filter = filterOf('dimy.qbf.query', f.filter);
    return filter.ok ? accepted({ filter: filter.value, tOld: f.tOld }) : filter;
  },
  (v) => ({ filter: encodeBloom(v.filter), tOld: v.tOld }),
);

export const dimyQbfResultCodec = codec<DimyQbfResult, DimyQbfResult>(
  'dimy.qbf.result',
  (r) => ({ matched: r.bool('matched'), searched: count(r, 'searched', DIMY_MAX_SEARCHED), matches: count(r, 'matches', DIMY_MAX_SEARCHED), reason: reasonOf(r, DIMY_QUERY_REFUSALS) }),
  (f) => (f.matches > f.searched || f.matched !== f.matches > 0 ? reject('dimy.qbf.result', 'field-range', 'matches must be ≤ searched and > 0 exactly when matched', 'matches') : accepted(f)),
  (v) => ({ matched: v.matched, searched: v.searched, matches: v.matches, reason: v.reason }),
);

export const dimyCbfUploadCodec = codec<{ filter: Uint8Array; code: string }, DimyCbfUpload>(
  'dimy.cbf.upload',
  (r) => ({ filter: filterBytes(r), code: r.string('code', /^[^\p{Cc}]+$/u, UPLOAD_CODE_MAX_INPUT_CHARS) }),
  (f) => {
    const code = parseUploadCode(f.code);
    if (!code.ok) return reject('dimy.cbf.upload', 'bad-code', `${code.reason}: ${code.detail}`, 'code');
    const filter = filterOf('dimy.cbf.upload', f.filter);
    return filter.ok ? accepted({ filter: filter.value, code: code.value }) : filter;
  },
  (v) => ({ filter: encodeBloom(v.filter), code: v.code.text }),
);

export const dimyCbfAckCodec = codec<DimyCbfAck, DimyCbfAck>(
  'dimy.cbf.ack',
  (r) => ({ accepted: r.bool('accepted'), reason: reasonOf(r, DIMY_UPLOAD_REFUSALS) }),
  (f) => (f.accepted !== (f.reason === '') ? reject('dimy.cbf.ack', 'field-format', 'reason must be empty exactly when accepted', 'reason') : accepted(f)),
  (v) => ({ accepted: v.accepted, reason: v.reason }),
);

export const dimyCodesRegisterCodec = codec<{ digests: Uint8Array; lifetimeMs: number }, DimyCodesRegister>(
  'dimy.codes.register',
  (r) => ({
    digests: r.bytes('digests', UPLOAD_CODE_DIGEST_BYTES, UPLOAD_CODE_DIGEST_BYTES * DIMY_MAX_CODES_PER_REGISTER),
    lifetimeMs: r.int('lifetimeMs', 1, MAX_UPLOAD_CODE_LIFETIME_MS),
  }),
  (f) => {
    if (f.digests.length % UPLOAD_CODE_DIGEST_BYTES !== 0) return reject('dimy.codes.register', 'field-length', `expected a multiple of ${UPLOAD_CODE_DIGEST_BYTES} bytes`, 'digests');
    const digests: Uint8Array[] = [];
    for (let at = 0; at < f.digests.length; at += UPLOAD_CODE_DIGEST_BYTES) digests.push(f.digests.slice(at, at + UPLOAD_CODE_DIGEST_BYTES));
    return accepted({ digests, lifetimeMs: f.lifetimeMs });
  },
  (v) => {
    const packed = new Uint8Array(v.digests.length * UPLOAD_CODE_DIGEST_BYTES);
    v.digests.forEach((d, i) => {
      if (!(d instanceof Uint8Array) || d.length !== UPLOAD_CODE_DIGEST_BYTES) throw new MisuseError(`value.digests[${i}]`, `must be ${UPLOAD_CODE_DIGEST_BYTES} bytes`);
      packed.set(d, i * UPLOAD_CODE_DIGEST_BYTES);
    });
    return { digests: packed, lifetimeMs: v.lifetimeMs };
  },
);

export const dimyCodesAckCodec = codec<DimyCodesAck, DimyCodesAck>(
  'dimy.codes.ack',
  (r) => ({ registered: count(r, 'registered', DIMY_MAX_CODES_PER_REGISTER), reason: reasonOf(r, DIMY_REGISTER_REFUSALS) }),
  accepted,
  (v) => ({ registered: v.registered, reason: v.reason }),
);

/** Inputs of the DIMY backend machine. */
export const DIMY_BACKEND_INPUT_CODECS = [dimyQbfQueryCodec, dimyCbfUploadCodec, dimyCodesRegisterCodec] as const;
/** Every DIMY backend message (inputs and replies). */
export const DIMY_MESSAGE_CODECS: readonly MessageCodec<unknown>[] = [...DIMY_BACKEND_INPUT_CODECS, dimyQbfResultCodec, dimyCbfAckCodec, dimyCodesAckCodec] as readonly MessageCodec<unknown>[];

/** Registry of every DIMY backend message, for hosts running the backend, phones or the health authority. */
export function dimyMessages(registry = new MessageRegistry()): MessageRegistry {
  for (const c of DIMY_MESSAGE_CODECS) registry.register(c);
  return registry;
}
