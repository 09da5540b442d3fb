/**
 * Diagnosis records of the key server's distribution files, tagged per
 * protocol, their canonical bytes (which are also their wire form) and their
 * stable ids.
 *
 *   gaen-tek    GAEN TEK: 16-byte key, rolling start interval number (≤ 2^31 − 1), rolling
 *               period 1–144, transmission risk 0–8 (SPECS §1.1, §1.7; EN-server's API ranges)
 *   dp3t-seed   DP-3T low-cost upload: 32-byte SK_t and its day t (UTC days since the Unix
 *               epoch; the backend's 2-byte day counter, SPECS §2.1)
 *   tcn-report  TCN signed report, opaque here: 134–389 bytes (SPECS §3; verified on arrival
 *               by the collector, not by the distribution format)
 *
 * Canonical bytes (big-endian):
 *
 *   gaen-tek    0x01 ‖ key (16) ‖ u32 rollingStartIntervalNumber ‖ u8 rollingPeriod ‖ u8 transmissionRisk   23 bytes
 *   dp3t-seed   0x02 ‖ seed (32) ‖ u16 day                                                                 35 bytes
 *   tcn-report  0x03 ‖ u16 length ‖ report (length)                                                   137–392 bytes
 *
 * A file's `additions` is the concatenation of its records' canonical bytes
 * (self-delimiting: the tag fixes the length or a length follows), so a
 * million TEKs take 23 MB and decode without a msgpack map per record.
 *
 * Record id (RecordId) = lowercase hex of
 *
 *   SHA-256( "tracecity/keyserver/record/v1" ‖ 0x00 ‖ canonical bytes )
 *
 * The id is a pure function of the record's content — every field, not only
 * the key — and independent of msgpack: a file never carries ids for its
 * additions (the reader derives them), and a deletion names exactly one
 * content. Identical records from two uploads share one id: clients hold a
 * *set*, so the server emits a deletion only once no live upload still holds
 * that content (it reference-counts), and a revision of a record (e.g. a new
 * transmission risk) is a deletion of the old id plus an addition.
 */
import type { CryptoSuite } from '../crypto/suite.ts';
import { accept, MisuseError, reject, type Verdict } from '../errors.ts';
import { MAX_INT32, MAX_ROLLING_PERIOD, MAX_TRANSMISSION_RISK, MIN_ROLLING_PERIOD, MIN_TRANSMISSION_RISK, TEK_BYTES } from './gaen-export-schema.ts';

export const RECORD_PROTOCOLS = ['gaen-tek', 'dp3t-seed', 'tcn-report'] as const;
export type RecordProtocol = (typeof RECORD_PROTOCOLS)[number];

/** DP-3T low-cost SK_t, bytes (SPECS §2.1). */
export const DP3T_SEED_BYTES = 32;
/** DP-3T day counter: 2 bytes (SPECS §2.1), UTC days since the Unix epoch. */
export const MAX_DP3T_DAY = 0xffff;
/** TCN signed report = report (70–325 bytes) ‖ Ed25519 signature (64): SPECS §3. */
export const MIN_TCN_REPORT_BYTES = 134;
export const MAX_TCN_REPORT_BYTES = 389;
/** SHA-256 output, bytes: record ids and file names. */
export const DIGEST_BYTES = 32;
/** A RecordId or a file name: 64 lowercase hex digits. */
export const DIGEST_HEX_PATTERN = /^[0-9a-f]{64}$/;

export interface GaenTekRecord {
  readonly protocol: 'gaen-tek';
  /** Temporary exposure key, 16 bytes. */
  readonly key: Uint8Array;
  readonly rollingStartIntervalNumber: number;
  /** 1–144 ten-minute intervals. */
  readonly rollingPeriod: number;
  /** 0–8. */
  readonly transmissionRisk: number;
}
export interface Dp3tSeedRecord {
  readonly protocol: 'dp3t-seed';
  /** SK_t, 32 bytes. */
  readonly seed: Uint8Array;
  /** t: UTC days since the Unix epoch, 0–65535. */
  readonly day: number;
}
export interface TcnReportRecord {
  readonly protocol: 'tcn-report';
  /** Signed report bytes (opaque here). */
  readonly report: Uint8Array;
}
export type DiagnosisRecord = GaenTekRecord | Dp3tSeedRecord | TcnReportRecord;

/** 64 lowercase hex digits: SHA-256 over the record's canonical bytes (module header). */
export type RecordId = string;
/** A decoded record with its id, as distribution files are read. */
export type IdentifiedRecord = DiagnosisRecord & { readonly id: RecordId };

const HEX_DIGITS = new TextEncoder().encode('0123456789abcdef');
const ASCII = new TextDecoder();

/**
 * Lowercase hex of `bytes` as one flat string. (A string built by `+=`, as
 * noble's bytesToHex does without Uint8Array.prototype.toHex, is a rope that
 * V8 flattens again on every Map lookup and comparison: at a million ids that
 * is most of the time spent.)
 */
export function toHex(bytes: Uint8Array): string {
  const out = new Uint8Array(bytes.length * 2);
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] ?? 0;
    out[2 * i] = HEX_DIGITS[b >> 4] ?? 0;
    out[2 * i + 1] = HEX_DIGITS[b & 15] ?? 0;
  }
  return ASCII.decode(out);
}

const RECORD_ID_CONTEXT = new TextEncoder().encode('tracecity/keyserver/record/v1\u0000');
const CONTEXT = RECORD_ID_CONTEXT.length;
const TAG_GAEN = 0x01;
const TAG_DP3T = 0x02;
const TAG_TCN = 0x03;
const GAEN_BYTES = 1 + TEK_BYTES + 4 + 1 + 1;
const DP3T_BYTES = 1 + DP3T_SEED_BYTES + 2;
/** Largest canonical record: a TCN report of the maximum length. */
export const MAX_RECORD_BYTES = 3 + MAX_TCN_REPORT_BYTES;

/** Length of the record's canonical bytes. */
export function recordBytesLength(record: DiagnosisRecord): number {
  switch (record.protocol) {
    case 'gaen-tek':
      return GAEN_BYTES;
    case 'dp3t-seed':
      return DP3T_BYTES;
    case 'tcn-report':
      return 3 + record.report.length;
  }
}

/** Write the record's canonical bytes into `out` at `at`; returns the offset after them. */
export function writeRecord(record: DiagnosisRecord, out: Uint8Array, at: number): number {
  switch (record.protocol) {
    case 'gaen-tek': {
      const start = record.rollingStartIntervalNumber;
      out[at] = TAG_GAEN;
      out.set(record.key, at + 1);
      out[at + 1 + TEK_BYTES] = start >>> 24;
      out[at + 2 + TEK_BYTES] = (start >>> 16) & 0xff;
      out[at + 3 + TEK_BYTES] = (start >>> 8) & 0xff;
      out[at + 4 + TEK_BYTES] = start & 0xff;
      out[at + 5 + TEK_BYTES] = record.rollingPeriod;
      out[at + 6 + TEK_BYTES] = record.transmissionRisk;
      return at + GAEN_BYTES;
    }
    case 'dp3t-seed':
      out[at] = TAG_DP3T;
      out.set(record.seed, at + 1);
      out[at + 1 + DP3T_SEED_BYTES] = record.day >>> 8;
      out[at + 2 + DP3T_SEED_BYTES] = record.day & 0xff;
      return at + DP3T_BYTES;
    case 'tcn-report':
      out[at] = TAG_TCN;
      out[at + 1] = record.report.length >>> 8;
      out[at + 2] = record.report.length & 0xff;
      out.set(record.report, at + 3);
      return at + 3 + record.report.length;
  }
}

/** The record's canonical bytes (module header). The record must be valid (checkRecord). */
export function canonicalRecordBytes(record: DiagnosisRecord): Uint8Array {
  const out = new Uint8Array(recordBytesLength(record));
  writeRecord(record, out, 0);
  return out;
}

/** Hashes record ids through one scratch buffer holding the context, then each record's bytes. */
export class RecordHasher {
  private readonly scratch = new Uint8Array(CONTEXT + MAX_RECORD_BYTES);
  constructor(private readonly crypto: Pick<CryptoSuite, 'sha256'>) {
    this.scratch.set(RECORD_ID_CONTEXT, 0);
  }

  /** Id of the record whose canonical bytes are `bytes` (at most MAX_RECORD_BYTES). */
  idOfBytes(bytes: Uint8Array): RecordId {
    this.scratch.set(bytes, CONTEXT);
    return toHex(this.crypto.sha256(this.scratch.subarray(0, CONTEXT + bytes.length)));
  }

  idOf(record: DiagnosisRecord): RecordId {
    const end = writeRecord(record, this.scratch, CONTEXT);
    return toHex(this.crypto.sha256(this.scratch.subarray(0, end)));
  }
}

/** The record's id (module header). The record must be valid (checkRecord). */
export function recordId(crypto: Pick<CryptoSuite, 'sha256'>, record: DiagnosisRecord): RecordId {
  return new RecordHasher(crypto).idOf(record);
}

const isInt = (v: unknown, min: number, max: number): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max;
const isBytes = (v: unknown, min: number, max: number): boolean => v instanceof Uint8Array && v.length >= min && v.length <= max;

/** Which field of `record` is invalid and why (undefined for a valid DiagnosisRecord); cheap on the valid path. */
export function recordProblem(record: DiagnosisRecord): { readonly field: string; readonly detail: string } | undefined {
  if (typeof record !== 'object' || record === null) return { field: '', detail: 'must be a diagnosis record' };
  switch (record.protocol) {
    case 'gaen-tek':
      if (!isBytes(record.key, TEK_BYTES, TEK_BYTES)) return { field: 'key', detail: `must be ${TEK_BYTES} bytes` };
      if (!isInt(record.rollingStartIntervalNumber, 0, MAX_INT32)) return { field: 'rollingStartIntervalNumber', detail: `must be an integer in [0, ${MAX_INT32}]` };
      if (!isInt(record.rollingPeriod, MIN_ROLLING_PERIOD, MAX_ROLLING_PERIOD)) return { field: 'rollingPeriod', detail: `must be an integer in [${MIN_ROLLING_PERIOD}, ${MAX_ROLLING_PERIOD}]` };
      if (!isInt(record.transmissionRisk, MIN_TRANSMISSION_RISK, MAX_TRANSMISSION_RISK)) return { field: 'transmissionRisk', detail: `must be an integer in [${MIN_TRANSMISSION_RISK}, ${MAX_TRANSMISSION_RISK}]` };
      return undefined;
    case 'dp3t-seed':
      if (!isBytes(record.seed, DP3T_SEED_BYTES, DP3T_SEED_BYTES)) return { field: 'seed', detail: `must be ${DP3T_SEED_BYTES} bytes` };
      if (!isInt(record.day, 0, MAX_DP3T_DAY)) return { field: 'day', detail: `must be an integer in [0, ${MAX_DP3T_DAY}]` };
      return undefined;
    case 'tcn-report':
      if (!isBytes(record.report, MIN_TCN_REPORT_BYTES, MAX_TCN_REPORT_BYTES)) return { field: 'report', detail: `must be ${MIN_TCN_REPORT_BYTES}–${MAX_TCN_REPORT_BYTES} bytes` };
      return undefined;
    default:
      return { field: 'protocol', detail: `must be one of ${RECORD_PROTOCOLS.join(', ')}` };
  }
}

/** Throw MisuseError naming the field (under `path`) unless `record` is a valid DiagnosisRecord. */
export function checkRecord(record: DiagnosisRecord, path: string): void {
  const problem = recordProblem(record);
  if (problem !== undefined) throw new MisuseError(problem.field === '' ? path : `${path}.${problem.field}`, problem.detail);
}

// ------------------------------------------------------------ reading

/**
 * Split concatenated canonical records, check every field and derive the
 * ids. Never throws: a rejection of `codec` names `field[i]` with reason
 * `malformed` (unknown tag, truncated record, a value out of range) or
 * `too-many` (more than `maxCount` records).
 */
export function readRecords(crypto: Pick<CryptoSuite, 'sha256'>, bytes: Uint8Array, maxCount: number, codec: string, field: string): Verdict<IdentifiedRecord[]> {
  const hasher = new RecordHasher(crypto);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: IdentifiedRecord[] = [];
  const bad = (detail: string): Verdict<never> => reject(codec, 'malformed', detail, `${field}[${records.length}]`);
  let at = 0;
  while (at < bytes.length) {
    if (records.length >= maxCount) return reject(codec, 'too-many', `more than ${maxCount} records`, field);
    const tag = bytes[at];
    const length = tag === TAG_GAEN ? GAEN_BYTES : tag === TAG_DP3T ? DP3T_BYTES : tag === TAG_TCN && at + 3 <= bytes.length ? 3 + view.getUint16(at + 1) : undefined;
    if (length === undefined) return bad(tag === TAG_TCN ? 'truncated record: no length' : `unknown record tag 0x${(tag ?? 0).toString(16).padStart(2, '0')}`);
    if (at + length > bytes.length) return bad(`truncated record: ${length} bytes declared, ${bytes.length - at} left`);
    let record: DiagnosisRecord;
    if (tag === TAG_GAEN) {
      const start = view.getUint32(at + 1 + TEK_BYTES);
      const period = bytes[at + 5 + TEK_BYTES] ?? 0;
      const risk = bytes[at + 6 + TEK_BYTES] ?? 0;
      if (start > MAX_INT32) return bad(`rolling start interval number ${start} above ${MAX_INT32}`);
      if (period < MIN_ROLLING_PERIOD || period > MAX_ROLLING_PERIOD) return bad(`rolling period ${period} outside [${MIN_ROLLING_PERIOD}, ${MAX_ROLLING_PERIOD}]`);
      if (risk < MIN_TRANSMISSION_RISK || risk > MAX_TRANSMISSION_RISK) return bad(`transmission risk ${risk} outside [${MIN_TRANSMISSION_RISK}, ${MAX_TRANSMISSION_RISK}]`);
      record = { protocol: 'gaen-tek', key: bytes.slice(at + 1, at + 1 + TEK_BYTES), rollingStartIntervalNumber: start, rollingPeriod: period, transmissionRisk: risk };
    } else if (tag === TAG_DP3T) {
      record = { protocol: 'dp3t-seed', seed: bytes.slice(at + 1, at + 1 + DP3T_SEED_BYTES), day: view.getUint16(at + 1 + DP3T_SEED_BYTES) };
    } else {
      const n = length - 3;
      if (n < MIN_TCN_REPORT_BYTES || n > MAX_TCN_REPORT_BYTES) return bad(`TCN report of ${n} bytes, outside [${MIN_TCN_REPORT_BYTES}, ${MAX_TCN_REPORT_BYTES}]`);
      record = { protocol: 'tcn-report', report: bytes.slice(at + 3, at + length) };
    }
    // Every length is now at most MAX_RECORD_BYTES, which the hasher's scratch buffer holds.
    const id = hasher.idOfBytes(bytes.subarray(at, at + length));
    records.push(Object.assign(record, { id }));
    at += length;
  }
  return accept(records);
}
