/**
 * The distribution index: the retained bus message that names the latest
 * full dump and the deltas after it.
 *
 *   { v: 1, latestFull?: bin(32), deltas: bin(32·n), seq, publishedAt }
 *
 * - `seq` is the seq of the newest file; the deltas are consecutive, so the
 *   i-th delta has seq `seq − n + 1 + i` and the full dump has seq `seq − n`
 *   (`indexFullSeq`). Without a full dump (a young server) the deltas start
 *   at seq 1: n = seq. Seq 0 with no files is a valid, empty index.
 * - names are carried as raw 32-byte digests, concatenated; the model uses
 *   lowercase hex (FileName). At most MAX_INDEX_DELTAS deltas: a server
 *   publishes a full dump before it would list more.
 * - The index is not signed: every file it names is, and chains to the one
 *   before it, so a forged index can only make a client fetch what it cannot
 *   use (or withhold news) — never accept a wrong record.
 *
 * Decoding never throws; rejections (codec `keyserver-index`): too-large,
 * malformed, unsupported-version, too-many (more than MAX_INDEX_DELTAS),
 * inconsistent (delta count against seq, a name listed twice).
 */
import { hexToBytes } from '@noble/hashes/utils.js';
import { accept, ensure, reject, type Verdict } from '../errors.ts';
import { readBody } from '../wire/body.ts';
import type { MessageCodec } from '../wire/messages.ts';
import { isWireMap, packWire, unpackWire, type WireMap, type WireValue } from '../wire/msgpack.ts';
import { asMalformed, DISTRIBUTION_VERSION, isDigestHex, MAX_DISTRIBUTION_TIME_MS, MAX_SEQ, versionProblem, type FileName } from './distribution-file.ts';
import { DIGEST_BYTES, toHex } from './distribution-records.ts';

export const DISTRIBUTION_INDEX_CODEC = 'keyserver-index';
/** Envelope type of the index message on the bus. */
export const DISTRIBUTION_INDEX_TYPE = 'keys.index';
/** 15-minute deltas for 42 days: a daily full dump keeps the list near 96. */
export const MAX_INDEX_DELTAS = 4096;
/** Largest encoded index, bytes (fits the envelope's 256 KiB). */
export const MAX_INDEX_BYTES = MAX_INDEX_DELTAS * DIGEST_BYTES + 256;

export interface DistributionIndex {
  readonly v: typeof DISTRIBUTION_VERSION;
  /** The newest full dump, or null before the first one. */
  readonly latestFull: FileName | null;
  /** The deltas after it, in chain order. */
  readonly deltas: readonly FileName[];
  /** Seq of the newest file listed (0: nothing published yet). */
  readonly seq: number;
  /** ms since the Unix epoch. */
  readonly publishedAt: number;
}

/** Array.isArray without the type guard (which would narrow a typed array to any[]). */
const isArray = (value: unknown): boolean => Array.isArray(value);

/** Seq of the index's full dump (0 when it lists none: its deltas start at genesis). */
export function indexFullSeq(index: DistributionIndex): number {
  return index.seq - index.deltas.length;
}

function consistencyProblem(latestFull: FileName | null, deltas: readonly FileName[], seq: number): { field: string; detail: string } | undefined {
  if (latestFull === null && deltas.length !== seq) return { field: 'deltas', detail: `without a full dump the deltas run from seq 1 to seq ${seq}, so there must be ${seq} of them, not ${deltas.length}` };
  if (latestFull !== null && deltas.length >= seq) return { field: 'deltas', detail: `${deltas.length} deltas after a full dump leave no seq ≥ 1 for the full at seq ${seq}` };
  const seen = new Set<FileName>(latestFull === null ? [] : [latestFull]);
  for (const [i, name] of deltas.entries()) {
    if (seen.has(name)) return { field: `deltas[${i}]`, detail: `${name} is listed twice` };
    seen.add(name);
  }
  return undefined;
}

/** The index as a wire body (for an envelope). Throws MisuseError naming the field. */
export function distributionIndexToWire(index: DistributionIndex): WireMap {
  ensure(typeof index === 'object' && index !== null, 'index', 'must be a distribution index');
  ensure(index.v === DISTRIBUTION_VERSION, 'index.v', `must be ${DISTRIBUTION_VERSION}`);
  ensure(index.latestFull === null || isDigestHex(index.latestFull), 'index.latestFull', 'must be null or a file name (64 lowercase hex digits)');
  ensure(isArray(index.deltas) && index.deltas.length <= MAX_INDEX_DELTAS, 'index.deltas', `must be an array of at most ${MAX_INDEX_DELTAS} file names`);
  index.deltas.forEach((name, i) => ensure(isDigestHex(name), `index.deltas[${i}]`, 'must be a file name (64 lowercase hex digits)'));
  ensure(Number.isSafeInteger(index.seq) && index.seq >= 0 && index.seq <= MAX_SEQ, 'index.seq', 'must be a non-negative safe integer');
  ensure(Number.isSafeInteger(index.publishedAt) && index.publishedAt >= 0 && index.publishedAt <= MAX_DISTRIBUTION_TIME_MS, 'index.publishedAt', `must be an integer in [0, ${MAX_DISTRIBUTION_TIME_MS}] (ms)`);
  const problem = consistencyProblem(index.latestFull, index.deltas, index.seq);
  ensure(problem === undefined, `index.${problem?.field ?? ''}`, problem?.detail ?? '');
  const deltas = new Uint8Array(index.deltas.length * DIGEST_BYTES);
  index.deltas.forEach((name, i) => deltas.set(hexToBytes(name), i * DIGEST_BYTES));
  const body: Record<string, WireValue> = { v: DISTRIBUTION_VERSION };
  if (index.latestFull !== null) body['latestFull'] = hexToBytes(index.latestFull);
  return Object.assign(body, { deltas, seq: index.seq, publishedAt: index.publishedAt });
}

/** Check an index body (from an envelope or from bytes). Never throws. */
export function readDistributionIndex(body: WireValue): Verdict<DistributionIndex> {
  if (!isWireMap(body)) return reject(DISTRIBUTION_INDEX_CODEC, 'malformed', 'not-a-map: an index is a map');
  const version = versionProblem(DISTRIBUTION_INDEX_CODEC, body, 'index');
  if (version !== undefined) return version;
  const read = readBody(DISTRIBUTION_INDEX_CODEC, body, (r) => ({
    v: r.int('v', DISTRIBUTION_VERSION, DISTRIBUTION_VERSION),
    latestFull: r.has('latestFull') ? toHex(r.bytes('latestFull', DIGEST_BYTES)) : null,
    deltas: r.bytes('deltas', 0, MAX_INDEX_BYTES),
    seq: r.int('seq', 0, MAX_SEQ),
    publishedAt: r.int('publishedAt', 0, MAX_DISTRIBUTION_TIME_MS),
  }));
  if (!read.ok) return asMalformed(DISTRIBUTION_INDEX_CODEC, read);
  const { latestFull, seq, publishedAt } = read.value;
  const packed = read.value.deltas;
  if (packed.length % DIGEST_BYTES !== 0) return reject(DISTRIBUTION_INDEX_CODEC, 'malformed', `field-length: deltas must be whole ${DIGEST_BYTES}-byte names`, 'deltas');
  if (packed.length / DIGEST_BYTES > MAX_INDEX_DELTAS) return reject(DISTRIBUTION_INDEX_CODEC, 'too-many', `more than ${MAX_INDEX_DELTAS} deltas`, 'deltas');
  const deltas: FileName[] = [];
  for (let at = 0; at < packed.length; at += DIGEST_BYTES) deltas.push(toHex(packed.subarray(at, at + DIGEST_BYTES)));
  const problem = consistencyProblem(latestFull, deltas, seq);
  if (problem !== undefined) return reject(DISTRIBUTION_INDEX_CODEC, 'inconsistent', problem.detail, problem.field);
  return accept({ v: DISTRIBUTION_VERSION, latestFull, deltas, seq, publishedAt });
}

export function encodeDistributionIndex(index: DistributionIndex): Uint8Array {
  return packWire(distributionIndexToWire(index), 'index');
}

/** Decode an index from bytes (e.g. a retained message outside an envelope). Never throws. */
export function decodeDistributionIndex(bytes: Uint8Array): Verdict<DistributionIndex> {
  if (bytes.length > MAX_INDEX_BYTES) return reject(DISTRIBUTION_INDEX_CODEC, 'too-large', `${bytes.length} bytes, over the ${MAX_INDEX_BYTES}-byte cap`);
  const wire = unpackWire(bytes, DISTRIBUTION_INDEX_CODEC, '');
  return wire.ok ? readDistributionIndex(wire.value) : asMalformed(DISTRIBUTION_INDEX_CODEC, wire);
}

/** MessageCodec for envelopes of type `keys.index` (not registered here: the key-server's registry does). */
export const distributionIndexCodec: MessageCodec<DistributionIndex> = {
  type: DISTRIBUTION_INDEX_TYPE,
  decode: readDistributionIndex,
  encode: distributionIndexToWire,
};
