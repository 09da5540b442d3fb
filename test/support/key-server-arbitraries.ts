/**
 * fast-check arbitraries and checks shared by the key-server fuzz and model
 * tests (test/keyserver/key-server-codec-fuzz.test.ts,
 * key-server-machine-fuzz.test.ts, key-server-model.test.ts): wire-dialect
 * bodies biased towards the key server's field names, valid and hostile
 * diagnosis records, code-text mutations, the sets of reasons the decoders
 * and the machine may give, and the ledger's invariants.
 */
import fc from 'fast-check';
import type { KeyServerConfig } from '../../actors/key-server/key-server-state.ts';
import type { Ledger } from '../../actors/key-server/ledger.ts';
import { MAX_DP3T_DAY, type DiagnosisRecord } from '../../protocol/keyserver/distribution-records.ts';
import { MAX_INT32 } from '../../protocol/keyserver/gaen-export-schema.ts';
import {
  KEY_SERVER_INPUT_CODECS,
  MAX_CODES_PER_REGISTER,
  MAX_KEYSERVER_TIME_MS,
  MAX_UPLOAD_PADDING_BYTES,
  MAX_UPLOAD_RECORD_BYTES,
} from '../../protocol/keyserver/messages.ts';
import { CROCKFORD_ALPHABET, formatUploadCode, MAX_UPLOAD_CODE_LIFETIME_MS, UPLOAD_CODE_DIGEST_BYTES, UPLOAD_CODE_MAX_INPUT_CHARS } from '../../protocol/keyserver/upload-code.ts';
import type { WireMap, WireValue } from '../../protocol/wire/msgpack.ts';
import { packRecords } from './key-server-fixtures.ts';

/** Envelope types the key-server machine takes (protocol/keyserver/messages.ts KEY_SERVER_INPUT_CODECS). */
export const KEY_SERVER_INPUT_TYPES: readonly string[] = KEY_SERVER_INPUT_CODECS.map((c) => c.type);

/**
 * Every reason a key-server body decoder may give, derived by reading the code:
 * - protocol/wire/body.ts `readBody` / `BodyReader`: not-a-map, field-type,
 *   field-length, field-range, field-format, too-many (arrays; no key-server
 *   codec reads one), unknown-field;
 * - protocol/keyserver/messages.ts: bad-code (keys.upload's code fails
 *   parseUploadCode), field-length (keys.codes.register digests not a
 *   multiple of 32 bytes);
 * - protocol/wire/messages.ts `MessageRegistry.decodeBody`: unknown-type.
 */
export const DECODE_REJECTION_REASONS: readonly string[] = [
  'not-a-map',
  'field-type',
  'field-length',
  'field-range',
  'field-format',
  'too-many',
  'unknown-field',
  'bad-code',
  'unknown-type',
];

/**
 * Reasons a `keys.status.reply` may carry for an upload, from the headers of
 * actors/key-server/submissions.ts ('' for accepted and chaff uploads) and
 * actors/key-server/admin.ts (a withdrawn upload: `provider-revoked` after a
 * retroactive revocation, `withdrawn-by-provider`).
 */
export const UPLOAD_REJECTION_REASONS: readonly string[] = [
  'locked-out',
  'malformed',
  'unknown-code',
  'used',
  'expired',
  'provider-revoked',
  'future-key',
  'bad-tcn-signature',
  'capacity',
];
export const UPLOAD_STATUS_REASONS: readonly string[] = ['', ...UPLOAD_REJECTION_REASONS, 'withdrawn-by-provider'];

/** Field names of every key-server message: random maps use them so decoding gets past `unknown-field`. */
export const KEY_SERVER_FIELD_NAMES = [
  'code',
  'records',
  'chaff',
  'padding',
  'trackingId',
  'providerId',
  'retroactive',
  'since',
  'digests',
  'lifetimeMs',
  'expiresAt',
  'state',
  'reason',
  'ok',
  'detail',
  'count',
  'stateDigest',
  'name',
  'found',
  'bytes',
] as const;

/** The printed code for 10 bytes. */
export const codeText = (bytes: Uint8Array): string => formatUploadCode(bytes);

/** `text` (a canonical printed code) with its check symbol replaced by the `shift`-th other symbol (a wrong check symbol). */
export function withWrongCheck(text: string, shift: number): string {
  const check = CROCKFORD_ALPHABET.indexOf(text.charAt(text.length - 1));
  const other = CROCKFORD_ALPHABET.charAt((check + 1 + (shift % (CROCKFORD_ALPHABET.length - 1))) % CROCKFORD_ALPHABET.length);
  return text.slice(0, -1) + other;
}

/** Bytes of length `n`, all `fill`. */
export const filled = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);

/** Byte strings of the lengths the key-server codecs care about (bounds ± 1), and small random ones. */
export const edgeBytesArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 48 }),
  fc
    .record({
      n: fc.constantFrom(
        0,
        1,
        10,
        16,
        22,
        23,
        31,
        32,
        33,
        35,
        64,
        137,
        392,
        MAX_UPLOAD_PADDING_BYTES,
        MAX_UPLOAD_PADDING_BYTES + 1,
        MAX_UPLOAD_RECORD_BYTES,
        MAX_UPLOAD_RECORD_BYTES + 1,
        UPLOAD_CODE_DIGEST_BYTES * MAX_CODES_PER_REGISTER,
        UPLOAD_CODE_DIGEST_BYTES * MAX_CODES_PER_REGISTER + 32,
      ),
      fill: fc.integer({ min: 0, max: 255 }),
    })
    .map(({ n, fill }) => filled(n, fill)),
);

/** Strings: random ones, near-codes, tracking ids, provider ids, reasons, control characters, over-long ones. */
export const edgeStringArb: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'grapheme', maxLength: 12 }),
  fc.string({ unit: fc.constantFrom(...`${CROCKFORD_ALPHABET}-oOiIlLu* `), maxLength: UPLOAD_CODE_MAX_INPUT_CHARS + 4 }),
  fc.uint8Array({ minLength: 10, maxLength: 10 }).map(codeText),
  fc.record({ bytes: fc.uint8Array({ minLength: 10, maxLength: 10 }), shift: fc.nat() }).map(({ bytes, shift }) => withWrongCheck(codeText(bytes), shift)),
  fc.stringMatching(/^[0-9a-f]{32}$/),
  fc.stringMatching(/^[0-9a-f]{64}$/),
  fc.constantFrom('', 'clinic-a', 'accepted', 'rejected', 'unknown', 'x'.repeat(65), 'a\u0000b', 'line\nbreak', 'A'.repeat(300), '\u{1F600}'),
);

/** Numbers: small and large integers, bounds ± 1, fractions, -0 (all finite: the dialect has no NaN or ∞). */
export const edgeNumberArb: fc.Arbitrary<number> = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(0, -0, -1, 1, 0.5, 30, 31, 2 ** 31, 2 ** 53, -(2 ** 53), Number.MAX_SAFE_INTEGER, MAX_KEYSERVER_TIME_MS, MAX_KEYSERVER_TIME_MS + 1, MAX_INT32 + 1, Number.MAX_VALUE),
);

/** Keys of random maps: the real field names mostly, some strangers. */
const keyArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...KEY_SERVER_FIELD_NAMES) },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }).filter((k) => k !== '__proto__' && k.isWellFormed()) },
  { weight: 1, arbitrary: fc.constantFrom('constructor', 'toString', 'hasOwnProperty', 'valueOf', '', 'x') },
);

/** Any value of the wire dialect (protocol/wire/msgpack.ts), maps biased to key-server field names. */
export const wireValueArb: fc.Arbitrary<WireValue> = fc.letrec<{ v: WireValue }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    edgeNumberArb,
    edgeStringArb,
    edgeBytesArb,
    fc.array(tie('v'), { maxLength: 4 }),
    fc.array(fc.tuple(keyArb, tie('v')), { maxLength: 6 }).map((entries): WireMap => Object.fromEntries(entries)),
  ),
})).v;

/** Values each key-server field accepts (records: bytes in keys.upload, a count in keys.status.reply). */
function fieldValueArbs(): Record<string, Record<string, fc.Arbitrary<WireValue>>> {
  const hex = (n: number): fc.Arbitrary<string> => fc.stringMatching(new RegExp(`^[0-9a-f]{${n}}$`));
  const time = fc.integer({ min: 0, max: MAX_KEYSERVER_TIME_MS });
  const providerId = fc.constantFrom('clinic-a', 'p1', 'x'.repeat(64));
  const code = fc.oneof(
    fc.uint8Array({ minLength: 10, maxLength: 10 }).map(codeText),
    fc.record({ bytes: fc.uint8Array({ minLength: 10, maxLength: 10 }), shift: fc.nat() }).map(({ bytes, shift }) => withWrongCheck(codeText(bytes), shift)),
  );
  const digests = fc.integer({ min: 1, max: 4 }).map((n) => filled(n * UPLOAD_CODE_DIGEST_BYTES, n));
  return {
    'keys.upload': { code, records: fc.uint8Array({ minLength: 1, maxLength: 64 }), chaff: fc.boolean(), padding: fc.uint8Array({ maxLength: 16 }) },
    'keys.status': { trackingId: hex(32) },
    'keys.provider.add': { providerId },
    'keys.provider.revoke': { providerId, retroactive: fc.boolean(), since: time },
    'keys.codes.register': { providerId, digests, lifetimeMs: fc.oneof(fc.integer({ min: 1, max: MAX_UPLOAD_CODE_LIFETIME_MS }), fc.constantFrom(0, MAX_UPLOAD_CODE_LIFETIME_MS + 1)) },
    'keys.upload.withdraw': { providerId, trackingId: hex(32) },
    'keys.server.state': {},
    'keys.upload.ack': { trackingId: hex(32) },
    'keys.status.reply': {
      trackingId: hex(32),
      state: fc.constantFrom('accepted', 'rejected', 'withdrawn', 'expired', 'unknown'),
      reason: fc.constantFrom('', 'used', 'capacity'),
      records: fc.integer({ min: 0, max: 30 }),
    },
    'keys.admin.result': { ok: fc.boolean(), reason: fc.constantFrom('', 'unknown-provider'), detail: fc.constantFrom('', 'withdrew 2 uploads'), count: fc.nat(), stateDigest: fc.oneof(fc.constant(''), hex(64)) },
    'keys.file.get': { name: hex(64) },
    'keys.file': { name: hex(64), found: fc.boolean(), bytes: fc.uint8Array({ maxLength: 32 }) },
  };
}

/**
 * Bodies shaped like one of the key-server messages: every field present with
 * a valid value, except that each is replaced by a random value with
 * probability 1/4, dropped with 1/16, and a stranger field is sometimes added.
 */
export const shapedBodyArb: fc.Arbitrary<WireValue> = fc.constantFrom(...Object.entries(fieldValueArbs())).chain(([, fields]) =>
  fc
    .record({
      values: fc.record(fields),
      fate: fc.array(fc.nat(15), { minLength: Object.keys(fields).length, maxLength: Object.keys(fields).length }),
      random: fc.array(wireValueArb, { minLength: Object.keys(fields).length, maxLength: Object.keys(fields).length }),
      extra: fc.oneof({ weight: 7, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.tuple(keyArb, wireValueArb) }),
    })
    .map(({ values, fate, random, extra }): WireMap => {
      const out: Record<string, WireValue> = {};
      Object.keys(fields).forEach((name, i) => {
        const f = fate[i] ?? 0;
        if (f === 0) return;
        out[name] = f <= 4 ? (random[i] ?? null) : (values[name] ?? null);
      });
      if (extra !== null) out[extra[0]] = extra[1];
      return out;
    }),
);

/** A message body: random maps, maps shaped like the real messages, and any value. */
export const wireBodyArb: fc.Arbitrary<WireValue> = fc.oneof(
  { weight: 3, arbitrary: fc.array(fc.tuple(keyArb, wireValueArb), { maxLength: 7 }).map((entries): WireMap => Object.fromEntries(entries)) },
  { weight: 5, arbitrary: shapedBodyArb },
  { weight: 1, arbitrary: wireValueArb },
  { weight: 1, arbitrary: fc.constant({}) },
);

// ------------------------------------------------------------ records

/** A valid GAEN TEK of day `day` (UTC days since the epoch). */
export const gaenOfDay = (key: Uint8Array, day: number, rollingPeriod = 144, transmissionRisk = 3): DiagnosisRecord => ({
  protocol: 'gaen-tek',
  key,
  rollingStartIntervalNumber: day * 144,
  rollingPeriod,
  transmissionRisk,
});

/** Valid diagnosis records of any protocol around day `today` (some stale, some ahead). */
export function recordArb(today: number): fc.Arbitrary<DiagnosisRecord> {
  return fc.oneof(
    fc
      .record({
        key: fc.uint8Array({ minLength: 16, maxLength: 16 }),
        daysAgo: fc.integer({ min: -3, max: 20 }),
        period: fc.integer({ min: 1, max: 144 }),
        risk: fc.integer({ min: 0, max: 8 }),
      })
      .map(({ key, daysAgo, period, risk }) => gaenOfDay(key, Math.max(0, today - daysAgo), period, risk)),
    fc
      .record({ seed: fc.uint8Array({ minLength: 32, maxLength: 32 }), daysAgo: fc.integer({ min: -3, max: 20 }) })
      .map(({ seed, daysAgo }): DiagnosisRecord => ({ protocol: 'dp3t-seed', seed, day: Math.min(MAX_DP3T_DAY, Math.max(0, today - daysAgo)) })),
    fc.uint8Array({ minLength: 134, maxLength: 389 }).map((report): DiagnosisRecord => ({ protocol: 'tcn-report', report })),
  );
}

/** Packed valid records (1..max) around day `today`. */
export const packedRecordsArb = (today: number, max = 30): fc.Arbitrary<Uint8Array> => fc.array(recordArb(today), { minLength: 1, maxLength: max }).map(packRecords);

/** Random edits of a byte string: truncate, insert, flip bits, overwrite bytes. `rand` in [0, 1). */
export function mutateBytes(src: Uint8Array, rand: () => number): Uint8Array {
  const int = (n: number): number => Math.floor(rand() * n);
  const t = src.slice();
  switch (int(5)) {
    case 0:
      return t.subarray(0, int(t.length + 1));
    case 1: {
      const at = int(t.length + 1);
      const extra = Uint8Array.from({ length: 1 + int(24) }, () => int(256));
      const out = new Uint8Array(t.length + extra.length);
      out.set(t.subarray(0, at));
      out.set(extra, at);
      out.set(t.subarray(at), at + extra.length);
      return out;
    }
    case 2:
      for (let i = 0, n = 1 + int(3); i < n && t.length > 0; i++) {
        const at = int(t.length);
        t[at] = (t[at] ?? 0) ^ (1 << int(8));
      }
      return t;
    case 3:
      for (let i = 0, n = 1 + int(8); i < n && t.length > 0; i++) t[int(t.length)] = int(256);
      return t;
    default:
      // A record tag byte somewhere (0x01 GAEN, 0x02 DP-3T, 0x03 TCN) or an unknown one.
      if (t.length > 0) t[int(t.length)] = [0x00, 0x01, 0x02, 0x03, 0x04, 0xff][int(6)] ?? 0;
      return t;
  }
}

// ------------------------------------------------------------ ledger invariants

/**
 * What is wrong with the ledger (empty when nothing): the bounds and the
 * bookkeeping of ledger.ts's header.
 */
export function ledgerProblems(ledger: Ledger, config: KeyServerConfig): string[] {
  const problems: string[] = [];
  if (ledger.records.size > config.maxRecords) problems.push(`records.size ${ledger.records.size} > maxRecords ${config.maxRecords}`);
  if (ledger.statuses.size > config.statusMemory) problems.push(`statuses.size ${ledger.statuses.size} > statusMemory ${config.statusMemory}`);
  if (ledger.lockouts.size > config.lockoutKeys) problems.push(`lockouts.size ${ledger.lockouts.size} > lockoutKeys ${config.lockoutKeys}`);
  for (const [id, live] of ledger.records) {
    if (!(Number.isSafeInteger(live.refs) && live.refs >= 1)) problems.push(`record ${id} is live with refs ${live.refs}`);
    if (ledger.removed.has(id)) problems.push(`record ${id} is live and pending deletion`);
    if (ledger.added.has(id) === live.published) problems.push(`record ${id}: published ${String(live.published)} but in added ${String(ledger.added.has(id))}`);
  }
  for (const id of ledger.added) {
    if (ledger.removed.has(id)) problems.push(`record ${id} is both in added and removed`);
    if (!ledger.records.has(id)) problems.push(`record ${id} is in added but not live`);
  }
  for (const [id, gone] of ledger.removed) if (!gone.published) problems.push(`record ${id} pending deletion was never published`);
  for (const [trackingId, upload] of ledger.uploads) {
    if (ledger.statuses.has(trackingId)) problems.push(`upload ${trackingId} is both accepted and remembered as rejected/chaff`);
    if (!ledger.providerUploads(upload.providerId).includes(trackingId)) problems.push(`upload ${trackingId} missing from its provider's list`);
  }
  return problems;
}
