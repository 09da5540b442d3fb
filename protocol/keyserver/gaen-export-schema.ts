/**
 * The proto2 schema of GAEN key export files (SPECS §1.7), built in code with
 * protobufjs reflection (ADR 0003: no codegen, no .proto file at run time),
 * and the typed model the rest of the code sees.
 *
 * Field numbers and types follow google/exposure-notifications-server
 * `internal/pb/export/export.proto` as transcribed in SPECS §1.7:
 *
 *   TemporaryExposureKeyExport  1 start_timestamp fixed64 · 2 end_timestamp fixed64 · 3 region string
 *                               4 batch_num int32 · 5 batch_size int32 · 6 signature_infos SignatureInfo*
 *                               7 keys TemporaryExposureKey* · 8 revised_keys TemporaryExposureKey*
 *   SignatureInfo               (1, 2 reserved) · 3 verification_key_version string
 *                               4 verification_key_id string · 5 signature_algorithm string
 *   TemporaryExposureKey        1 key_data bytes · 2 transmission_risk_level int32
 *                               3 rolling_start_interval_number int32 · 4 rolling_period int32 [default 144]
 *                               5 report_type ReportType · 6 days_since_onset_of_symptoms sint32
 *   TEKSignatureList            1 signatures TEKSignature*
 *   TEKSignature                1 signature_info SignatureInfo · 2 batch_num int32 · 3 batch_size int32
 *                               4 signature bytes (DER ECDSA)
 *
 * Field 8 of TemporaryExposureKey (`variant_of_concern`, server proto only)
 * is left out: SPECS gives no enum values for it, so a reader treats it as an
 * unknown field and skips it, as proto2 readers do with fields they lack.
 * One deliberate strictness over the reference readers: strings must be
 * valid UTF-8 (protobufjs `utf8_validation: VERIFY`); invalid bytes are a
 * rejection instead of U+FFFD replacement characters.
 */
import protobuf from 'protobufjs/light.js';

/** Codec name of every Rejection about export files. */
export const GAEN_EXPORT_CODEC = 'gaen-export';
/** export.bin starts with these 16 ASCII bytes: `EK Export v1` and four spaces (SPECS §1.7). */
export const EXPORT_BIN_HEADER = 'EK Export v1    ';
export const EXPORT_BIN_HEADER_BYTES = 16;
/** ecdsa-with-SHA256, the only algorithm the reference server writes (SPECS §1.7). */
export const ECDSA_P256_SHA256_OID = '1.2.840.10045.4.3.2';
/** ecdsa-with-SHA512, also accepted by EN-internals' verifier (SPECS §1.7); our crypto suite has no P-256/SHA-512. */
export const ECDSA_P256_SHA512_OID = '1.2.840.10045.4.3.4';
/** TEK length (SPECS §1.2). */
export const TEK_BYTES = 16;
/** rolling_period default (proto `[default = 144]`) and maximum: 144 ten-minute intervals = 24 h (SPECS §1.1, §1.7). */
export const DEFAULT_ROLLING_PERIOD = 144;
export const MIN_ROLLING_PERIOD = 1;
export const MAX_ROLLING_PERIOD = 144;
/** transmission_risk_level range of EN-server's publish API (`pkg/api/v1alpha1`: MinTransmissionRisk 0, MaxTransmissionRisk 8). */
export const MIN_TRANSMISSION_RISK = 0;
export const MAX_TRANSMISSION_RISK = 8;
/** rolling_start_interval_number is an int32 ENIntervalNumber: never negative. */
export const MAX_INT32 = 0x7fff_ffff;

/** report_type values (SPECS §1.7). A closed proto2 enum: other values are rejected. */
export const REPORT_TYPES = {
  UNKNOWN: 0,
  CONFIRMED_TEST: 1,
  CONFIRMED_CLINICAL_DIAGNOSIS: 2,
  SELF_REPORT: 3,
  RECURSIVE: 4,
  REVOKED: 5,
} as const;
export type ReportType = (typeof REPORT_TYPES)[keyof typeof REPORT_TYPES];

// ------------------------------------------------------------ model

/** One TemporaryExposureKey with proto2 defaults applied (absent TR → 0, start → 0, period → 144). */
export interface ExportKey {
  readonly keyData: Uint8Array;
  readonly transmissionRiskLevel: number;
  readonly rollingStartIntervalNumber: number;
  readonly rollingPeriod: number;
  readonly reportType?: ReportType;
  readonly daysSinceOnsetOfSymptoms?: number;
}

/** SignatureInfo; an absent string reads as '' (the server omits empty ids and versions). */
export interface SignatureInfo {
  readonly verificationKeyVersion: string;
  readonly verificationKeyId: string;
  readonly signatureAlgorithm: string;
}

/** One TEKSignature of export.sig. */
export interface ExportSignature {
  readonly signatureInfo: SignatureInfo;
  readonly batchNum: number;
  readonly batchSize: number;
  /** DER (X9.62) ECDSA signature over the whole export.bin. */
  readonly signature: Uint8Array;
}

/** The content of export.bin (after the header). */
export interface ExportContent {
  readonly startTimestamp: number;
  readonly endTimestamp: number;
  readonly region: string;
  readonly batchNum: number;
  readonly batchSize: number;
  readonly signatureInfos: readonly SignatureInfo[];
  readonly keys: readonly ExportKey[];
  readonly revisedKeys: readonly ExportKey[];
}

/** A parsed export.zip: the content of export.bin, its signatures, and both files' exact bytes. */
export interface ParsedExport extends ExportContent {
  /** The signed bytes: the whole export.bin, header included. */
  readonly exportBin: Uint8Array;
  readonly exportSig: Uint8Array;
  readonly signatures: readonly ExportSignature[];
}

// ------------------------------------------------------------ protobufjs reflection

const { Enum, Field, Root, Type } = protobuf;

/** Field options: proto2 semantics (explicit presence, closed enums) plus UTF-8 verification of strings. */
const VERIFY_UTF8 = { features: { utf8_validation: 'VERIFY' } };

const string = (name: string, id: number): protobuf.Field => new Field(name, id, 'string', 'optional', undefined, VERIFY_UTF8);

const signatureInfoType = new Type('SignatureInfo')
  .add(string('verification_key_version', 3))
  .add(string('verification_key_id', 4))
  .add(string('signature_algorithm', 5));
signatureInfoType.reserved = [[1, 2], 'app_bundle_id', 'android_package'];

const keyType = new Type('TemporaryExposureKey')
  .add(new Enum('ReportType', { ...REPORT_TYPES }))
  .add(new Field('key_data', 1, 'bytes', 'optional'))
  .add(new Field('transmission_risk_level', 2, 'int32', 'optional'))
  .add(new Field('rolling_start_interval_number', 3, 'int32', 'optional'))
  .add(new Field('rolling_period', 4, 'int32', 'optional', undefined, { default: DEFAULT_ROLLING_PERIOD }))
  .add(new Field('report_type', 5, 'ReportType', 'optional'))
  .add(new Field('days_since_onset_of_symptoms', 6, 'sint32', 'optional'));

const exportType = new Type('TemporaryExposureKeyExport')
  .add(new Field('start_timestamp', 1, 'fixed64', 'optional'))
  .add(new Field('end_timestamp', 2, 'fixed64', 'optional'))
  .add(string('region', 3))
  .add(new Field('batch_num', 4, 'int32', 'optional'))
  .add(new Field('batch_size', 5, 'int32', 'optional'))
  .add(new Field('signature_infos', 6, 'SignatureInfo', 'repeated'))
  .add(new Field('keys', 7, 'TemporaryExposureKey', 'repeated'))
  .add(new Field('revised_keys', 8, 'TemporaryExposureKey', 'repeated'));

const tekSignatureType = new Type('TEKSignature')
  .add(new Field('signature_info', 1, 'SignatureInfo', 'optional'))
  .add(new Field('batch_num', 2, 'int32', 'optional'))
  .add(new Field('batch_size', 3, 'int32', 'optional'))
  .add(new Field('signature', 4, 'bytes', 'optional'));

const tekSignatureListType = new Type('TEKSignatureList').add(new Field('signatures', 1, 'TEKSignature', 'repeated'));

/** A Root is proto2 unless told otherwise (protobufjs: `Root._edition = "proto2"`). */
const root = new Root().add(signatureInfoType).add(keyType).add(exportType).add(tekSignatureType).add(tekSignatureListType);
root.resolveAll();

export const ExportSchema = {
  root,
  TemporaryExposureKeyExport: exportType,
  SignatureInfo: signatureInfoType,
  TemporaryExposureKey: keyType,
  TEKSignatureList: tekSignatureListType,
  TEKSignature: tekSignatureType,
} as const;

/** Wire type protobuf uses for each scalar/message type of the schema (encoding guide, "Message Structure"). */
export function wireTypeOf(field: protobuf.Field): number {
  switch (field.type) {
    case 'fixed64':
      return 1;
    case 'int32':
    case 'sint32':
      return 0;
    case 'string':
    case 'bytes':
      return 2;
    default:
      // Enums are varints, messages are length-delimited.
      return field.resolvedType instanceof Enum ? 0 : 2;
  }
}
