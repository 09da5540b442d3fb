/**
 * The body of a distribution file (a full dump or a delta), in the strict
 * msgpack dialect of protocol/wire/msgpack.ts:
 *
 *   { v: 1, kind: 'full' | 'delta', seq, basedOn?: bin(32), createdAt, periodStart, periodEnd,
 *     additions: bin (records' canonical bytes, concatenated), deletions: bin(32·n) }
 *
 * - records: tag ‖ fields, distribution-records.ts (23 bytes for a GAEN TEK);
 * - `additions` strictly ascending by record id, `deletions` the concatenated
 *   32-byte ids, strictly ascending: one content has one encoding, duplicates
 *   are impossible, and the order reveals nothing about which records were
 *   uploaded together (as EN-server sorts its export keys);
 * - an id is never both added and deleted in one file (a delta is the net
 *   change between two published states); a full dump has no deletions;
 * - times are ms since the Unix epoch; periodStart ≤ periodEnd;
 * - chaining (distribution.ts): a delta at seq 1 has no `basedOn` (it applies
 *   to the empty genesis state), every other delta names the delta at seq − 1;
 *   a full dump at seq k names the delta at seq k whose resulting state it
 *   holds.
 *
 * Decoding never throws; rejections (codec `keyserver-distribution`):
 *   too-large            more bytes than limits.maxFileBytes
 *   malformed            not dialect msgpack, a missing/unknown field, a wrong type, length or range,
 *                        a record with an unknown tag, cut short or with a field out of range
 *                        (the field is named, e.g. `additions[3]`)
 *   unsupported-version  `v` is not 1
 *   too-many             more additions or deletions than the limits
 *   bad-order            additions or deletions not strictly ascending by id (includes duplicates)
 *   inconsistent         chaining fields against kind/seq, a full with deletions, an id both
 *                        added and deleted, periodStart > periodEnd
 * Encoding validates and throws MisuseError naming the field.
 */
import { hexToBytes } from '@noble/hashes/utils.js';
import type { CryptoSuite } from '../crypto/suite.ts';
import { accept, ensure, MisuseError, reject, type Rejection, type Verdict } from '../errors.ts';
import { readBody } from '../wire/body.ts';
import { isWireMap, packWire, unpackWire, type WireMap, type WireValue } from '../wire/msgpack.ts';
import {
  DIGEST_BYTES,
  DIGEST_HEX_PATTERN,
  readRecords,
  RecordHasher,
  recordBytesLength,
  recordProblem,
  toHex,
  writeRecord,
  type DiagnosisRecord,
  type IdentifiedRecord,
  type RecordId,
} from './distribution-records.ts';

export const DISTRIBUTION_CODEC = 'keyserver-distribution';
export const DISTRIBUTION_VERSION = 1;
export const FILE_KINDS = ['full', 'delta'] as const;
export type FileKind = (typeof FILE_KINDS)[number];
/** Largest time field, ms (year 9999). */
export const MAX_DISTRIBUTION_TIME_MS = 253_402_300_799_999;
export const MAX_SEQ = Number.MAX_SAFE_INTEGER;

/** A file's name: lowercase hex SHA-256 of its signed container bytes (distribution-signing.ts). */
export type FileName = string;

export interface DistributionFile<R extends DiagnosisRecord = DiagnosisRecord> {
  readonly v: typeof DISTRIBUTION_VERSION;
  readonly kind: FileKind;
  /** Position in the server's chain, from 1; a full dump shares the seq of the delta it snapshots. */
  readonly seq: number;
  /** Delta: the delta at seq − 1 (null only at seq 1). Full: the delta at the same seq. */
  readonly basedOn: FileName | null;
  readonly createdAt: number;
  /** Window of server events the file covers, ms. */
  readonly periodStart: number;
  readonly periodEnd: number;
  readonly additions: readonly R[];
  /** Always empty in a full dump. */
  readonly deletions: readonly RecordId[];
}

export interface DistributionLimits {
  /** Largest signed file (and body), bytes. */
  readonly maxFileBytes: number;
  readonly maxAdditions: number;
  readonly maxDeletions: number;
}

/**
 * Default caps: a full dump of a million GAEN keys is ≈ 45 MB, so 64 MiB
 * holds it; the counts bound decoding work and the client's memory.
 */
export const DEFAULT_DISTRIBUTION_LIMITS: DistributionLimits = {
  maxFileBytes: 64 * 1024 * 1024,
  maxAdditions: 1_000_000,
  maxDeletions: 1_000_000,
};

export function resolveDistributionLimits(limits: Partial<DistributionLimits>): DistributionLimits {
  const resolved = { ...DEFAULT_DISTRIBUTION_LIMITS, ...limits };
  for (const [name, value] of Object.entries(resolved)) {
    ensure(Number.isSafeInteger(value) && value > 0, `limits.${name}`, 'must be a positive integer');
  }
  return resolved;
}

export const isDigestHex = (value: unknown): value is string => typeof value === 'string' && DIGEST_HEX_PATTERN.test(value);
/** Array.isArray without the type guard (which would narrow a typed array to any[]). */
const isArray = (value: unknown): boolean => Array.isArray(value);
const isInt = (v: unknown, min: number, max: number): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max;

/** The chaining rule of the module header, as a problem description (undefined when it holds). */
export function chainProblem(kind: FileKind, seq: number, basedOn: FileName | null, deletions: number): { field: string; detail: string } | undefined {
  if (kind === 'delta' && seq === 1 && basedOn !== null) return { field: 'basedOn', detail: 'the delta at seq 1 applies to the empty state: no basedOn' };
  if (kind === 'delta' && seq > 1 && basedOn === null) return { field: 'basedOn', detail: 'a delta after seq 1 names the delta before it' };
  if (kind === 'full' && basedOn === null) return { field: 'basedOn', detail: 'a full dump names the delta whose state it holds' };
  if (kind === 'full' && deletions > 0) return { field: 'deletions', detail: 'a full dump has no deletions' };
  return undefined;
}

/** Ids in `a` and `b` (both strictly ascending) that are in both; undefined when disjoint. */
function firstCommon(a: readonly string[], b: readonly string[]): string | undefined {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a[i] ?? '';
    const y = b[j] ?? '';
    if (x === y) return x;
    if (x < y) i++;
    else j++;
  }
  return undefined;
}

/** Code-unit order, as `<` (a comparator beats the default sort's string conversions on V8). */
const compareIds = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Index of the first element not strictly above its predecessor, or -1. */
function firstUnordered(ids: readonly string[]): number {
  for (let i = 1; i < ids.length; i++) if ((ids[i] ?? '') <= (ids[i - 1] ?? '')) return i;
  return -1;
}

// ------------------------------------------------------------ encoding

/**
 * Encode a file body. Additions are sorted by id and deletions ascending, so
 * the same content always gives the same bytes. An addition with an `id`
 * field must carry its true record id (it is trusted, not recomputed). Throws MisuseError naming the
 * field on an invalid file, duplicate records or ids, an id both added and
 * deleted, or a body over limits.maxFileBytes.
 */
export function encodeDistributionFile(crypto: Pick<CryptoSuite, 'sha256'>, file: DistributionFile, limits: Partial<DistributionLimits> = {}): Uint8Array {
  const caps = resolveDistributionLimits(limits);
  ensure(typeof file === 'object' && file !== null, 'file', 'must be a distribution file');
  ensure(file.v === DISTRIBUTION_VERSION, 'file.v', `must be ${DISTRIBUTION_VERSION}`);
  ensure((FILE_KINDS as readonly string[]).includes(file.kind), 'file.kind', `must be one of ${FILE_KINDS.join(', ')}`);
  ensure(isInt(file.seq, 1, MAX_SEQ), 'file.seq', 'must be a positive safe integer');
  ensure(file.basedOn === null || isDigestHex(file.basedOn), 'file.basedOn', 'must be null or a file name (64 lowercase hex digits)');
  for (const field of ['createdAt', 'periodStart', 'periodEnd'] as const) {
    ensure(isInt(file[field], 0, MAX_DISTRIBUTION_TIME_MS), `file.${field}`, `must be an integer in [0, ${MAX_DISTRIBUTION_TIME_MS}] (ms)`);
  }
  ensure(file.periodStart <= file.periodEnd, 'file.periodEnd', 'must not be before periodStart');
  ensure(isArray(file.additions) && file.additions.length <= caps.maxAdditions, 'file.additions', `must be an array of at most ${caps.maxAdditions} records`);
  ensure(isArray(file.deletions) && file.deletions.length <= caps.maxDeletions, 'file.deletions', `must be an array of at most ${caps.maxDeletions} record ids`);
  const chain = chainProblem(file.kind, file.seq, file.basedOn, file.deletions.length);
  ensure(chain === undefined, `file.${chain?.field ?? ''}`, chain?.detail ?? '');

  const hasher = new RecordHasher(crypto);
  const byId = new Map<RecordId, DiagnosisRecord>();
  file.additions.forEach((record, i) => {
    const problem = recordProblem(record);
    if (problem !== undefined) throw new MisuseError(`file.additions[${i}]${problem.field === '' ? '' : `.${problem.field}`}`, problem.detail);
    // An addition that carries its id (IdentifiedRecord: readRecords, the server's ledger) is not hashed again:
    // at a million keys that was a third of a full dump. Clients recompute every id when they decode.
    const carried = (record as { id?: unknown }).id;
    const id = typeof carried === 'string' && isDigestHex(carried) ? carried : hasher.idOf(record);
    ensure(!byId.has(id), `file.additions[${i}]`, 'is a duplicate of another addition (same record id)');
    byId.set(id, record);
  });
  const addIds = [...byId.keys()].sort(compareIds);
  file.deletions.forEach((id, i) => ensure(isDigestHex(id), `file.deletions[${i}]`, 'must be a record id (64 lowercase hex digits)'));
  const deletions = [...file.deletions].sort(compareIds);
  const dupDel = firstUnordered(deletions);
  ensure(dupDel < 0, 'file.deletions', `lists ${deletions[dupDel] ?? ''} twice`);
  const common = firstCommon(addIds, deletions);
  ensure(common === undefined, 'file.deletions', `record ${common ?? ''} is both added and deleted`);

  let size = 0;
  for (const record of byId.values()) size += recordBytesLength(record);
  const records = new Uint8Array(size);
  let at = 0;
  for (const id of addIds) at = writeRecord(byId.get(id) as DiagnosisRecord, records, at);
  const packed = new Uint8Array(deletions.length * DIGEST_BYTES);
  deletions.forEach((id, i) => packed.set(hexToBytes(id), i * DIGEST_BYTES));
  const body: Record<string, WireValue> = { v: DISTRIBUTION_VERSION, kind: file.kind, seq: file.seq };
  if (file.basedOn !== null) body['basedOn'] = hexToBytes(file.basedOn);
  Object.assign(body, {
    createdAt: file.createdAt,
    periodStart: file.periodStart,
    periodEnd: file.periodEnd,
    additions: records,
    deletions: packed,
  });
  const bytes = packWire(body, 'file');
  ensure(bytes.length <= caps.maxFileBytes, 'file', `encodes to ${bytes.length} bytes, over limits.maxFileBytes = ${caps.maxFileBytes}`);
  return bytes;
}

// ------------------------------------------------------------ decoding

const fail = (reason: string, detail: string, field?: string): Rejection => reject(DISTRIBUTION_CODEC, reason, detail, field);

/** A dialect or BodyReader rejection as `malformed` (keeping `too-many`), detail prefixed with the original reason. */
export function asMalformed(codec: string, r: Rejection): Rejection {
  const reason = r.reason === 'too-many' ? 'too-many' : 'malformed';
  return reject(codec, reason, `${r.reason}: ${r.detail}`, r.field);
}

/** `v` of a decoded map, checked before anything else so a later version is named as such. */
export function versionProblem(codec: string, value: WireMap, what: string): Rejection | undefined {
  if (!Object.hasOwn(value, 'v')) return reject(codec, 'malformed', `missing-field: ${what} has no version`, 'v');
  const v = value['v'];
  if (v === DISTRIBUTION_VERSION) return undefined;
  // Never echo hostile data at length: a number as itself, anything else by its kind.
  const shown = typeof v === 'number' ? String(v) : v instanceof Uint8Array ? `${v.length} bytes` : Array.isArray(v) ? 'a list' : v === null ? 'null' : typeof v;
  return reject(codec, 'unsupported-version', `${what} version ${shown}; only ${DISTRIBUTION_VERSION} is supported`, 'v');
}

/** Decode a file body: every field checked, record ids derived, order and chaining rules enforced. Never throws. */
export function decodeDistributionFile(
  crypto: Pick<CryptoSuite, 'sha256'>,
  bytes: Uint8Array,
  limits: Partial<DistributionLimits> = {},
): Verdict<DistributionFile<IdentifiedRecord>> {
  const caps = resolveDistributionLimits(limits);
  if (bytes.length > caps.maxFileBytes) return fail('too-large', `${bytes.length} bytes, over the ${caps.maxFileBytes}-byte cap`);
  const wire = unpackWire(bytes, DISTRIBUTION_CODEC, '');
  if (!wire.ok) return asMalformed(DISTRIBUTION_CODEC, wire);
  if (!isWireMap(wire.value)) return fail('malformed', 'not-a-map: a distribution file is a map');
  const version = versionProblem(DISTRIBUTION_CODEC, wire.value, 'distribution file');
  if (version !== undefined) return version;
  const read = readBody(DISTRIBUTION_CODEC, wire.value, (r) => {
    r.int('v', DISTRIBUTION_VERSION, DISTRIBUTION_VERSION);
    const kind = r.oneOf('kind', FILE_KINDS);
    const seq = r.int('seq', 1, MAX_SEQ);
    const basedOn = r.has('basedOn') ? toHex(r.bytes('basedOn', DIGEST_BYTES)) : null;
    return {
      kind,
      seq,
      basedOn,
      createdAt: r.int('createdAt', 0, MAX_DISTRIBUTION_TIME_MS),
      periodStart: r.int('periodStart', 0, MAX_DISTRIBUTION_TIME_MS),
      periodEnd: r.int('periodEnd', 0, MAX_DISTRIBUTION_TIME_MS),
      additions: r.bytes('additions', 0, Number.MAX_SAFE_INTEGER),
      deletions: r.bytes('deletions', 0, Number.MAX_SAFE_INTEGER),
    };
  });
  if (!read.ok) return asMalformed(DISTRIBUTION_CODEC, read);
  const raw = read.value;

  if (raw.deletions.length % DIGEST_BYTES !== 0) return fail('malformed', `field-length: deletions must be whole ${DIGEST_BYTES}-byte ids`, 'deletions');
  const deletionCount = raw.deletions.length / DIGEST_BYTES;
  if (deletionCount > caps.maxDeletions) return fail('too-many', `more than ${caps.maxDeletions} deletions`, 'deletions');
  if (raw.periodStart > raw.periodEnd) return fail('inconsistent', 'periodStart is after periodEnd', 'periodEnd');
  const chain = chainProblem(raw.kind, raw.seq, raw.basedOn, deletionCount);
  if (chain !== undefined) return fail('inconsistent', chain.detail, chain.field);

  const records = readRecords(crypto, raw.additions, caps.maxAdditions, DISTRIBUTION_CODEC, 'additions');
  if (!records.ok) return records;
  const additions = records.value;
  const addIds = additions.map((a) => a.id);
  const unorderedAdd = firstUnordered(addIds);
  if (unorderedAdd >= 0) return fail('bad-order', 'additions must be strictly ascending by record id', `additions[${unorderedAdd}]`);
  const deletions: RecordId[] = new Array<RecordId>(deletionCount);
  for (let i = 0; i < deletionCount; i++) deletions[i] = toHex(raw.deletions.subarray(i * DIGEST_BYTES, (i + 1) * DIGEST_BYTES));
  const unorderedDel = firstUnordered(deletions);
  if (unorderedDel >= 0) return fail('bad-order', `deletions must be strictly ascending (id ${unorderedDel})`, 'deletions');
  const common = firstCommon(addIds, deletions);
  if (common !== undefined) return fail('inconsistent', `record ${common} is both added and deleted`, 'deletions');

  return accept({
    v: DISTRIBUTION_VERSION,
    kind: raw.kind,
    seq: raw.seq,
    basedOn: raw.basedOn,
    createdAt: raw.createdAt,
    periodStart: raw.periodStart,
    periodEnd: raw.periodEnd,
    additions,
    deletions,
  });
}
