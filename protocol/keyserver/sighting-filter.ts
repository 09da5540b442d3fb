/**
 * Sighting filters: Golomb-coded sets (gcs.ts, BIP158 style) as an
 * alternative distribution (issue 4). For each delta the server publishes a
 * compact set of the *sighting identifiers* its added records produce — the
 * values phones actually hear: GAEN RPIs, TCNs, DP-3T EphIDs, 16 bytes each —
 * so a phone tests its own sightings against a few hundred KB per day instead
 * of downloading every key, and confirms a candidate with a follow-up request:
 * the delta the filter names (signed; full matching on its records). As in
 * BIP157, a filter only says "maybe" (false positives at ≈ 1/M per sighting)
 * or "certainly not".
 *
 *   body      = msgpack { v: 1, delta: bin(32), seq, n, p, m, filter: bin }
 *   container = the distribution container (distribution-signing.ts), signed
 *               under the context "tracecity/keyserver/sighting-filter/v1",
 *               named by its SHA-256
 *   params    = P = 19, M = 784931 (BIP158's basic filter: published, SPECS §6);
 *               SipHash key = the first 16 bytes of the delta's name, so a filter
 *               is bound to one delta, as BIP158 binds a filter to its block
 *
 * A forged filter cannot pass the signature check; a filter for another
 * delta fails the binding check (`wrong-delta`). Opening never throws on
 * hostile bytes (codec `keyserver-sighting-filter`): the container's reasons,
 * then `malformed`, `unsupported-version`, `wrong-delta`, and gcs.ts's own.
 */
import { hexToBytes } from '@noble/hashes/utils.js';
import type { CryptoSuite } from '../crypto/suite.ts';
import { ensure, reject, type Verdict } from '../errors.ts';
import { readBody } from '../wire/body.ts';
import type { MessageCodec } from '../wire/messages.ts';
import { packWire, unpackWire, type WireValue } from '../wire/msgpack.ts';
import { asMalformed, isDigestHex, type FileName } from './distribution-file.ts';
import type { DistributionSigner } from './distribution-publisher.ts';
import { toHex } from './distribution-records.ts';
import { openContainer, signContainer, type SignedDistributionFile } from './distribution-signing.ts';
import { BIP158_BASIC_M, BIP158_BASIC_P, buildGcs, gcsCandidates, GCS_KEY_BYTES, GCS_MAX_N, type GcsParams } from './gcs.ts';

export const SIGHTING_FILTER_CODEC = 'keyserver-sighting-filter';
export const SIGHTING_FILTER_VERSION = 1;
/** Sighting identifiers are 16 bytes (GAEN RPI SPECS §1.3, TCN SPECS §3, DP-3T EphID SPECS §2.1). */
export const SIGHTING_ID_BYTES = 16;
/** Largest filter file accepted, bytes: ~2.6 bytes per item at P = 19, for up to 10 M items. */
export const MAX_SIGHTING_FILTER_BYTES = 32 * 1024 * 1024;
const CONTEXT = new TextEncoder().encode('tracecity/keyserver/sighting-filter/v1');

export interface SightingFilter {
  /** The delta whose additions it summarizes. */
  readonly delta: FileName;
  readonly seq: number;
  readonly n: number;
  readonly p: number;
  readonly m: number;
  readonly filter: Uint8Array;
}

/** The filter parameters for a delta (module header). */
export function sightingFilterParams(delta: FileName, p = BIP158_BASIC_P, m = BIP158_BASIC_M): GcsParams {
  ensure(isDigestHex(delta), 'delta', 'must be a file name (64 lowercase hex digits)');
  return { p, m, key: hexToBytes(delta).slice(0, GCS_KEY_BYTES) };
}

/** Build and sign the filter of `delta` over `items` (16-byte sighting ids). Throws MisuseError naming the field. */
export function signSightingFilter(signer: DistributionSigner, delta: FileName, seq: number, items: readonly Uint8Array[]): SignedDistributionFile {
  ensure(Number.isSafeInteger(seq) && seq >= 1, 'seq', 'must be the delta seq (≥ 1)');
  ensure(items.length <= GCS_MAX_N, 'items', `at most ${GCS_MAX_N} items`);
  items.forEach((item, i) => ensure(item instanceof Uint8Array && item.length === SIGHTING_ID_BYTES, `items[${i}]`, `must be ${SIGHTING_ID_BYTES} bytes`));
  const params = sightingFilterParams(delta);
  const filter = buildGcs(params, items);
  const body = packWire({ v: SIGHTING_FILTER_VERSION, delta: hexToBytes(delta), seq, n: items.length, p: params.p, m: params.m, filter }, 'sighting-filter');
  return signContainer(signer.crypto, signer.signingKey, signer.keyId, body, CONTEXT);
}

/** Open a fetched filter expected to summarize `delta`: name, signature, body, binding. Never throws on hostile bytes. */
export function openSightingFilter(crypto: CryptoSuite, publicKeys: ReadonlyMap<string, Uint8Array>, name: string, bytes: Uint8Array, delta: FileName): Verdict<SightingFilter> {
  const opened = openContainer(crypto, publicKeys, name, bytes, MAX_SIGHTING_FILTER_BYTES, SIGHTING_FILTER_CODEC, CONTEXT);
  if (!opened.ok) return opened;
  const wire = unpackWire(opened.value.body, SIGHTING_FILTER_CODEC, 'body');
  if (!wire.ok) return asMalformed(SIGHTING_FILTER_CODEC, wire);
  const read = readBody(SIGHTING_FILTER_CODEC, wire.value, (r) => ({
    v: r.int('v', 0, 255),
    delta: r.bytes('delta', 32),
    seq: r.int('seq', 1, Number.MAX_SAFE_INTEGER),
    n: r.int('n', 0, GCS_MAX_N),
    p: r.int('p', BIP158_BASIC_P, BIP158_BASIC_P),
    m: r.int('m', BIP158_BASIC_M, BIP158_BASIC_M),
    filter: r.bytes('filter', 0, MAX_SIGHTING_FILTER_BYTES),
  }));
  if (!read.ok) return read.reason === 'field-range' && read.field === 'v' ? read : asMalformed(SIGHTING_FILTER_CODEC, read);
  const body = read.value;
  if (body.v !== SIGHTING_FILTER_VERSION) return reject(SIGHTING_FILTER_CODEC, 'unsupported-version', `version ${body.v}, expected ${SIGHTING_FILTER_VERSION}`, 'v');
  const summarized = toHex(body.delta);
  if (summarized !== delta) return reject(SIGHTING_FILTER_CODEC, 'wrong-delta', `the filter summarizes ${summarized.slice(0, 12)}…, not ${delta.slice(0, 12)}…`, 'delta');
  return { ok: true, value: { delta: summarized, seq: body.seq, n: body.n, p: body.p, m: body.m, filter: body.filter } };
}

/**
 * Indices of `sightings` that may be in the filter (candidates to confirm
 * against the delta's records); a filter that does not decode is a typed
 * rejection of gcs.ts.
 */
export function screenSightings(filter: SightingFilter, sightings: readonly Uint8Array[]): Verdict<number[]> {
  const params: GcsParams = { ...sightingFilterParams(filter.delta, filter.p, filter.m) };
  return gcsCandidates(params, filter.filter, sightings, { maxN: filter.n });
}

// ------------------------------------------------------------ the filter index

/** Filters an index lists at most: 14 days of 15-minute deltas is 1,344. */
export const MAX_FILTER_INDEX_ENTRIES = 8192;
export const SIGHTING_FILTER_INDEX_TYPE = 'keys.filters';

export interface FilterIndexEntry {
  readonly delta: FileName;
  readonly filter: FileName;
}

/**
 * The retained list of filters within retention, oldest first:
 * `{ v: 1, seq, entries: bin(64·k) }` (delta name ‖ filter name). Not signed,
 * like the distribution index: every filter it names is signed and bound to
 * its delta, so a forged index can withhold or waste fetches, never make a
 * phone accept a wrong filter.
 */
export interface FilterIndex {
  readonly seq: number;
  readonly entries: readonly FilterIndexEntry[];
}

function readFilterIndex(body: WireValue): Verdict<FilterIndex> {
  const read = readBody(SIGHTING_FILTER_INDEX_TYPE, body, (r) => ({
    v: r.int('v', SIGHTING_FILTER_VERSION, SIGHTING_FILTER_VERSION),
    seq: r.int('seq', 0, Number.MAX_SAFE_INTEGER),
    entries: r.bytes('entries', 0, 64 * MAX_FILTER_INDEX_ENTRIES),
  }));
  if (!read.ok) return read;
  const packed = read.value.entries;
  if (packed.length % 64 !== 0) return reject(SIGHTING_FILTER_INDEX_TYPE, 'field-length', 'entries must be pairs of 32-byte names', 'entries');
  const entries: FilterIndexEntry[] = [];
  for (let at = 0; at < packed.length; at += 64) entries.push({ delta: toHex(packed.subarray(at, at + 32)), filter: toHex(packed.subarray(at + 32, at + 64)) });
  return { ok: true, value: { seq: read.value.seq, entries } };
}

export const filterIndexCodec: MessageCodec<FilterIndex> = {
  type: SIGHTING_FILTER_INDEX_TYPE,
  decode: readFilterIndex,
  encode: (index) => {
    ensure(index.entries.length <= MAX_FILTER_INDEX_ENTRIES, 'index.entries', `at most ${MAX_FILTER_INDEX_ENTRIES}`);
    const packed = new Uint8Array(64 * index.entries.length);
    index.entries.forEach((e, i) => {
      ensure(isDigestHex(e.delta) && isDigestHex(e.filter), `index.entries[${i}]`, 'must be two file names');
      packed.set(hexToBytes(e.delta), 64 * i);
      packed.set(hexToBytes(e.filter), 64 * i + 32);
    });
    return { v: SIGHTING_FILTER_VERSION, seq: index.seq, entries: packed };
  },
};
