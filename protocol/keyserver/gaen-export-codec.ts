/**
 * export.bin and export.sig ⇄ the typed model (SPECS §1.7), with protobufjs
 * doing the protobuf work on the reflected schema (gaen-export-schema.ts).
 *
 * Decoding hostile bytes never throws; it returns a Rejection with codec
 * `gaen-export` and one of these reasons:
 *   header         export.bin does not start with the 16-byte `EK Export v1    `
 *   too-large      more keys or signatures than the caller's limits (counted
 *                  with a cheap pre-scan before any message object is built)
 *   protobuf       not decodable: truncated, bad varint or tag, invalid UTF-8,
 *                  or a known field sent with the wrong wire type
 *   missing-field  a field the reference server always writes is absent:
 *                  start/end timestamp, batch num/size; in export.sig every
 *                  field of a TEKSignature; key_data in a key
 *   bad-field      a value outside its range: key_data not 16 bytes,
 *                  transmission risk outside 0–8, rolling start negative,
 *                  rolling period outside 1–144, report type not in the enum,
 *                  start after end, batch_num outside 1..batch_size, a string
 *                  longer than 256 bytes, an over-long signature
 * Unknown field numbers are skipped (proto2 semantics; e.g. the server-only
 * `variant_of_concern`). Caller misuse on encoding throws MisuseError.
 */
import protobuf from 'protobufjs/light.js';
import { accept, ensure, reject, type Rejection, type Verdict } from '../errors.ts';
import {
  DEFAULT_ROLLING_PERIOD,
  EXPORT_BIN_HEADER,
  EXPORT_BIN_HEADER_BYTES,
  ExportSchema,
  GAEN_EXPORT_CODEC,
  MAX_INT32,
  MAX_ROLLING_PERIOD,
  MAX_TRANSMISSION_RISK,
  MIN_ROLLING_PERIOD,
  MIN_TRANSMISSION_RISK,
  REPORT_TYPES,
  TEK_BYTES,
  wireTypeOf,
  type ExportContent,
  type ExportKey,
  type ExportSignature,
  type ReportType,
  type SignatureInfo,
} from './gaen-export-schema.ts';

const { Reader } = protobuf;

/** Our cap on region and SignatureInfo strings (UTF-8 bytes); real values are a few characters. */
export const MAX_EXPORT_STRING_BYTES = 256;
/** A DER ECDSA P-256 signature is at most 72 bytes; room for other curves' encodings without unbounded blobs. */
export const MAX_SIGNATURE_BYTES = 256;
/** Smallest TemporaryExposureKey message that can hold its 16-byte key_data (tag + length + 16). */
const MIN_KEY_MESSAGE_BYTES = 2 + TEK_BYTES;

export interface DecodeLimits {
  /** keys + revised_keys in one export.bin. */
  readonly maxKeys: number;
  /** SignatureInfos in export.bin and TEKSignatures in export.sig. */
  readonly maxSignatures: number;
}

/** A decoded message: its fields by proto name, and the raw unknown fields protobufjs kept. */
type Msg = Readonly<Record<string, unknown>> & { readonly $unknowns?: readonly Uint8Array[] };

const has = (m: Msg, name: string): boolean => Object.prototype.hasOwnProperty.call(m, name);
const fail = (reason: string, detail: string, field?: string): Rejection => reject(GAEN_EXPORT_CODEC, reason, detail, field);
const utf8Length = (s: string): number => new TextEncoder().encode(s).length;

// ------------------------------------------------------------ decoding helpers

function decodeMessage(type: protobuf.Type, bytes: Uint8Array, what: string): Verdict<Msg> {
  try {
    const reader = Reader.create(bytes);
    reader.discardUnknown = false;
    return accept(type.decode(reader) as unknown as Msg);
  } catch (err) {
    return fail('protobuf', `${what} is not a valid ${type.name}: ${err instanceof Error ? err.message : String(err)}`, what);
  }
}

/**
 * protobufjs keeps a known field with the wrong wire type, and a closed-enum
 * value outside the enum, among the unknown fields: find them there.
 */
function checkUnknowns(m: Msg, type: protobuf.Type, path: string): Rejection | undefined {
  for (const raw of m.$unknowns ?? []) {
    let tag: number;
    try {
      tag = Reader.create(raw).uint32();
    } catch {
      return fail('protobuf', `${path}: unreadable field tag`, path);
    }
    const field = type.fieldsById[tag >>> 3];
    if (field === undefined) continue; // a field this schema does not know: skipped, as proto2 does
    const expected = wireTypeOf(field);
    if ((tag & 7) === expected) return fail('bad-field', `${path}.${field.name}: value not in the ${field.type} enum`, `${path}.${field.name}`);
    return fail('protobuf', `${path}.${field.name} has wire type ${tag & 7}, expected ${expected}`, `${path}.${field.name}`);
  }
  return undefined;
}

/** Count keys and signature infos of a TemporaryExposureKeyExport without building messages. */
function prescanExport(pb: Uint8Array, limits: DecodeLimits): Rejection | undefined {
  const fields = ExportSchema.TemporaryExposureKeyExport.fields;
  const keyIds = new Set([fields['keys']?.id, fields['revised_keys']?.id]);
  const infoId = fields['signature_infos']?.id;
  let keys = 0;
  let infos = 0;
  try {
    const r = Reader.create(pb);
    while (r.pos < r.len) {
      const tag = r.uint32();
      const id = tag >>> 3;
      if ((tag & 7) !== 2 || (!keyIds.has(id) && id !== infoId)) {
        r.skipType(tag & 7, 0, id);
        continue;
      }
      const length = r.uint32();
      if (id === infoId) {
        if (++infos > limits.maxSignatures) return fail('too-large', `more than ${limits.maxSignatures} signature_infos`, 'signature_infos');
      } else {
        const path = `${id === fields['keys']?.id ? 'keys' : 'revised_keys'}`;
        if (++keys > limits.maxKeys) return fail('too-large', `more than ${limits.maxKeys} keys`, path);
        if (length < MIN_KEY_MESSAGE_BYTES) return fail('bad-field', `a ${length}-byte key message cannot hold a ${TEK_BYTES}-byte key_data`, path);
      }
      r.skip(length);
    }
  } catch (err) {
    return fail('protobuf', `export.bin is not a valid TemporaryExposureKeyExport: ${err instanceof Error ? err.message : String(err)}`, 'export.bin');
  }
  return undefined;
}

function safeUint64(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'object' || value === null) return undefined;
  const { low, high } = value as { low?: unknown; high?: unknown };
  if (typeof low !== 'number' || typeof high !== 'number') return undefined;
  const hi = high >>> 0;
  return hi < 0x20_0000 ? hi * 0x1_0000_0000 + (low >>> 0) : undefined;
}

function int(m: Msg, name: string, fallback: number): number {
  const v = has(m, name) ? m[name] : fallback;
  return typeof v === 'number' ? v : Number.NaN;
}

function inRange(value: number, min: number, max: number): boolean {
  return Number.isInteger(value) && value >= min && value <= max;
}

function str(m: Msg, name: string, path: string): Verdict<string> {
  const v = has(m, name) ? m[name] : '';
  if (typeof v !== 'string') return fail('protobuf', `${path}.${name} is not a string`, `${path}.${name}`);
  if (utf8Length(v) > MAX_EXPORT_STRING_BYTES) return fail('bad-field', `${path}.${name} is longer than ${MAX_EXPORT_STRING_BYTES} bytes`, `${path}.${name}`);
  return accept(v);
}

function messages(m: Msg, name: string): readonly Msg[] {
  const v = m[name];
  return Array.isArray(v) ? (v as Msg[]) : [];
}

// ------------------------------------------------------------ decoding

function readSignatureInfo(m: Msg, path: string): Verdict<SignatureInfo> {
  const unknown = checkUnknowns(m, ExportSchema.SignatureInfo, path);
  if (unknown !== undefined) return unknown;
  const version = str(m, 'verification_key_version', path);
  if (!version.ok) return version;
  const id = str(m, 'verification_key_id', path);
  if (!id.ok) return id;
  const algorithm = str(m, 'signature_algorithm', path);
  if (!algorithm.ok) return algorithm;
  return accept({ verificationKeyVersion: version.value, verificationKeyId: id.value, signatureAlgorithm: algorithm.value });
}

function readKey(m: Msg, path: string): Verdict<ExportKey> {
  const unknown = checkUnknowns(m, ExportSchema.TemporaryExposureKey, path);
  if (unknown !== undefined) return unknown;
  const keyData = m['key_data'];
  if (!has(m, 'key_data') || !(keyData instanceof Uint8Array)) return fail('missing-field', `${path}.key_data is absent`, `${path}.key_data`);
  if (keyData.length !== TEK_BYTES) return fail('bad-field', `${path}.key_data is ${keyData.length} bytes, must be ${TEK_BYTES}`, `${path}.key_data`);
  const transmissionRiskLevel = int(m, 'transmission_risk_level', 0);
  if (!inRange(transmissionRiskLevel, MIN_TRANSMISSION_RISK, MAX_TRANSMISSION_RISK)) {
    return fail('bad-field', `${path}.transmission_risk_level ${transmissionRiskLevel} is outside ${MIN_TRANSMISSION_RISK}–${MAX_TRANSMISSION_RISK}`, `${path}.transmission_risk_level`);
  }
  const rollingStartIntervalNumber = int(m, 'rolling_start_interval_number', 0);
  if (!inRange(rollingStartIntervalNumber, 0, MAX_INT32)) {
    return fail('bad-field', `${path}.rolling_start_interval_number ${rollingStartIntervalNumber} is negative`, `${path}.rolling_start_interval_number`);
  }
  const rollingPeriod = int(m, 'rolling_period', DEFAULT_ROLLING_PERIOD);
  if (!inRange(rollingPeriod, MIN_ROLLING_PERIOD, MAX_ROLLING_PERIOD)) {
    return fail('bad-field', `${path}.rolling_period ${rollingPeriod} is outside ${MIN_ROLLING_PERIOD}–${MAX_ROLLING_PERIOD}`, `${path}.rolling_period`);
  }
  const key: { -readonly [K in keyof ExportKey]: ExportKey[K] } = {
    keyData: Uint8Array.from(keyData),
    transmissionRiskLevel,
    rollingStartIntervalNumber,
    rollingPeriod,
  };
  // Closed enum: protobufjs already moved values outside REPORT_TYPES to the unknown fields.
  if (has(m, 'report_type')) key.reportType = int(m, 'report_type', 0) as ReportType;
  if (has(m, 'days_since_onset_of_symptoms')) key.daysSinceOnsetOfSymptoms = int(m, 'days_since_onset_of_symptoms', 0);
  return accept(key);
}

function readKeys(list: readonly Msg[], name: string): Verdict<ExportKey[]> {
  const keys: ExportKey[] = [];
  for (const [i, m] of list.entries()) {
    const key = readKey(m, `${name}[${i}]`);
    if (!key.ok) return key;
    keys.push(key.value);
  }
  return accept(keys);
}

/** Decode and validate export.bin (header + TemporaryExposureKeyExport). */
export function decodeExportBin(bin: Uint8Array, limits: DecodeLimits): Verdict<ExportContent> {
  const header = bin.subarray(0, EXPORT_BIN_HEADER_BYTES);
  if (header.length !== EXPORT_BIN_HEADER_BYTES || !header.every((b, i) => b === EXPORT_BIN_HEADER.charCodeAt(i))) {
    return fail('header', `export.bin must start with the 16-byte header ${JSON.stringify(EXPORT_BIN_HEADER)}`, 'export.bin');
  }
  const pb = bin.subarray(EXPORT_BIN_HEADER_BYTES);
  const scan = prescanExport(pb, limits);
  if (scan !== undefined) return scan;
  const decoded = decodeMessage(ExportSchema.TemporaryExposureKeyExport, pb, 'export.bin');
  if (!decoded.ok) return decoded;
  const m = decoded.value;
  const unknown = checkUnknowns(m, ExportSchema.TemporaryExposureKeyExport, 'export');
  if (unknown !== undefined) return unknown;

  for (const name of ['start_timestamp', 'end_timestamp', 'batch_num', 'batch_size']) {
    if (!has(m, name)) return fail('missing-field', `export.bin has no ${name}`, name);
  }
  const startTimestamp = safeUint64(m['start_timestamp']);
  const endTimestamp = safeUint64(m['end_timestamp']);
  if (startTimestamp === undefined || endTimestamp === undefined) return fail('bad-field', 'timestamps must be at most 2^53 − 1', 'start_timestamp');
  if (startTimestamp > endTimestamp) return fail('bad-field', `start_timestamp ${startTimestamp} is after end_timestamp ${endTimestamp}`, 'start_timestamp');
  const batchNum = int(m, 'batch_num', 0);
  const batchSize = int(m, 'batch_size', 0);
  if (!inRange(batchSize, 1, MAX_INT32) || !inRange(batchNum, 1, batchSize)) {
    return fail('bad-field', `batch ${batchNum} of ${batchSize}: need 1 ≤ batch_num ≤ batch_size`, 'batch_num');
  }
  const region = str(m, 'region', 'export');
  if (!region.ok) return region;

  const signatureInfos: SignatureInfo[] = [];
  for (const [i, info] of messages(m, 'signature_infos').entries()) {
    const read = readSignatureInfo(info, `signature_infos[${i}]`);
    if (!read.ok) return read;
    signatureInfos.push(read.value);
  }
  const keys = readKeys(messages(m, 'keys'), 'keys');
  if (!keys.ok) return keys;
  const revisedKeys = readKeys(messages(m, 'revised_keys'), 'revised_keys');
  if (!revisedKeys.ok) return revisedKeys;
  return accept({
    startTimestamp,
    endTimestamp,
    region: region.value,
    batchNum,
    batchSize,
    signatureInfos,
    keys: keys.value,
    revisedKeys: revisedKeys.value,
  });
}

/** Decode and validate export.sig (TEKSignatureList). */
export function decodeExportSig(sig: Uint8Array, limits: DecodeLimits): Verdict<ExportSignature[]> {
  const decoded = decodeMessage(ExportSchema.TEKSignatureList, sig, 'export.sig');
  if (!decoded.ok) return decoded;
  const unknown = checkUnknowns(decoded.value, ExportSchema.TEKSignatureList, 'export.sig');
  if (unknown !== undefined) return unknown;
  const list = messages(decoded.value, 'signatures');
  if (list.length > limits.maxSignatures) return fail('too-large', `more than ${limits.maxSignatures} signatures`, 'signatures');
  const signatures: ExportSignature[] = [];
  for (const [i, m] of list.entries()) {
    const path = `signatures[${i}]`;
    const unknownField = checkUnknowns(m, ExportSchema.TEKSignature, path);
    if (unknownField !== undefined) return unknownField;
    for (const name of ['signature_info', 'batch_num', 'batch_size', 'signature']) {
      if (!has(m, name)) return fail('missing-field', `${path} has no ${name}`, `${path}.${name}`);
    }
    const info = readSignatureInfo(m['signature_info'] as Msg, `${path}.signature_info`);
    if (!info.ok) return info;
    const signature = m['signature'];
    if (!(signature instanceof Uint8Array) || signature.length > MAX_SIGNATURE_BYTES) {
      return fail('bad-field', `${path}.signature is longer than ${MAX_SIGNATURE_BYTES} bytes`, `${path}.signature`);
    }
    const batchNum = int(m, 'batch_num', 0);
    const batchSize = int(m, 'batch_size', 0);
    if (!inRange(batchSize, 1, MAX_INT32) || !inRange(batchNum, 1, batchSize)) {
      return fail('bad-field', `${path}: batch ${batchNum} of ${batchSize}: need 1 ≤ batch_num ≤ batch_size`, `${path}.batch_num`);
    }
    signatures.push({ signatureInfo: info.value, batchNum, batchSize, signature: Uint8Array.from(signature) });
  }
  return accept(signatures);
}

// ------------------------------------------------------------ encoding

const REPORT_TYPE_VALUES: ReadonlySet<number> = new Set(Object.values(REPORT_TYPES));

/** Throw MisuseError (field `${path}.…`) unless `key` can be written as a TemporaryExposureKey. */
export function checkKey(key: ExportKey, path: string): void {
  ensure(typeof key === 'object' && key !== null, path, 'must be an ExportKey object');
  ensure(key.keyData instanceof Uint8Array && key.keyData.length === TEK_BYTES, `${path}.keyData`, `must be ${TEK_BYTES} bytes`);
  ensure(inRange(key.transmissionRiskLevel, MIN_TRANSMISSION_RISK, MAX_TRANSMISSION_RISK), `${path}.transmissionRiskLevel`, `must be an integer in ${MIN_TRANSMISSION_RISK}–${MAX_TRANSMISSION_RISK}`);
  ensure(inRange(key.rollingStartIntervalNumber, 0, MAX_INT32), `${path}.rollingStartIntervalNumber`, `must be an integer in 0–${MAX_INT32}`);
  ensure(inRange(key.rollingPeriod, MIN_ROLLING_PERIOD, MAX_ROLLING_PERIOD), `${path}.rollingPeriod`, `must be an integer in ${MIN_ROLLING_PERIOD}–${MAX_ROLLING_PERIOD}`);
  ensure(key.reportType === undefined || REPORT_TYPE_VALUES.has(key.reportType), `${path}.reportType`, 'must be a ReportType value (0–5)');
  ensure(key.daysSinceOnsetOfSymptoms === undefined || inRange(key.daysSinceOnsetOfSymptoms, -MAX_INT32 - 1, MAX_INT32), `${path}.daysSinceOnsetOfSymptoms`, 'must be an int32');
}

function checkString(value: string, field: string): void {
  ensure(typeof value === 'string' && utf8Length(value) <= MAX_EXPORT_STRING_BYTES, field, `must be a string of at most ${MAX_EXPORT_STRING_BYTES} UTF-8 bytes`);
}

/** As EN-server `exportfile.go` writes a key: TR always, rolling start unless 0, rolling period unless 144. */
function keyMessage(key: ExportKey): Record<string, unknown> {
  const m: Record<string, unknown> = { key_data: key.keyData, transmission_risk_level: key.transmissionRiskLevel };
  if (key.rollingStartIntervalNumber !== 0) m['rolling_start_interval_number'] = key.rollingStartIntervalNumber;
  if (key.rollingPeriod !== DEFAULT_ROLLING_PERIOD) m['rolling_period'] = key.rollingPeriod;
  if (key.reportType !== undefined) m['report_type'] = key.reportType;
  if (key.daysSinceOnsetOfSymptoms !== undefined) m['days_since_onset_of_symptoms'] = key.daysSinceOnsetOfSymptoms;
  return m;
}

/** As EN-server `createSignatureInfo`: each string only when non-empty. */
function signatureInfoMessage(info: SignatureInfo, path: string): Record<string, unknown> {
  const m: Record<string, unknown> = {};
  const entries = [
    ['verification_key_version', info.verificationKeyVersion, 'verificationKeyVersion'],
    ['verification_key_id', info.verificationKeyId, 'verificationKeyId'],
    ['signature_algorithm', info.signatureAlgorithm, 'signatureAlgorithm'],
  ] as const;
  for (const [name, value, field] of entries) {
    checkString(value, `${path}.${field}`);
    if (value !== '') m[name] = value;
  }
  return m;
}

const finish = (type: protobuf.Type, message: Record<string, unknown>): Uint8Array => Uint8Array.from(type.encode(message).finish());

/** export.bin = header ‖ TemporaryExposureKeyExport, fields in number order; keys in the order given. */
export function encodeExportBin(content: ExportContent): Uint8Array {
  ensure(Number.isSafeInteger(content.startTimestamp) && content.startTimestamp >= 0, 'startTimestamp', 'must be a non-negative safe integer (Unix seconds)');
  ensure(Number.isSafeInteger(content.endTimestamp) && content.endTimestamp >= content.startTimestamp, 'endTimestamp', 'must be a safe integer ≥ startTimestamp');
  ensure(inRange(content.batchSize, 1, MAX_INT32), 'batchSize', `must be an integer in 1–${MAX_INT32}`);
  ensure(inRange(content.batchNum, 1, content.batchSize), 'batchNum', 'must be an integer in 1–batchSize');
  checkString(content.region, 'region');
  content.keys.forEach((k, i) => checkKey(k, `keys[${i}]`));
  content.revisedKeys.forEach((k, i) => checkKey(k, `revisedKeys[${i}]`));
  const pb = finish(ExportSchema.TemporaryExposureKeyExport, {
    start_timestamp: content.startTimestamp,
    end_timestamp: content.endTimestamp,
    region: content.region,
    batch_num: content.batchNum,
    batch_size: content.batchSize,
    signature_infos: content.signatureInfos.map((info, i) => signatureInfoMessage(info, `signatureInfos[${i}]`)),
    keys: content.keys.map(keyMessage),
    revised_keys: content.revisedKeys.map(keyMessage),
  });
  const out = new Uint8Array(EXPORT_BIN_HEADER_BYTES + pb.length);
  for (let i = 0; i < EXPORT_BIN_HEADER_BYTES; i++) out[i] = EXPORT_BIN_HEADER.charCodeAt(i);
  out.set(pb, EXPORT_BIN_HEADER_BYTES);
  return out;
}

/** export.sig = TEKSignatureList with every field of each TEKSignature set (as EN-server `marshalSignature`). */
export function encodeExportSig(signatures: readonly ExportSignature[]): Uint8Array {
  const list = signatures.map((s, i) => {
    ensure(inRange(s.batchSize, 1, MAX_INT32) && inRange(s.batchNum, 1, s.batchSize), `signatures[${i}].batchNum`, 'need 1 ≤ batchNum ≤ batchSize');
    ensure(s.signature instanceof Uint8Array && s.signature.length <= MAX_SIGNATURE_BYTES, `signatures[${i}].signature`, `must be at most ${MAX_SIGNATURE_BYTES} bytes`);
    return {
      signature_info: signatureInfoMessage(s.signatureInfo, `signatures[${i}].signatureInfo`),
      batch_num: s.batchNum,
      batch_size: s.batchSize,
      signature: s.signature,
    };
  });
  return finish(ExportSchema.TEKSignatureList, { signatures: list });
}
