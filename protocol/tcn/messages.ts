/**
 * Messages of the TCN backend (issue 5, TCN operating modes A and B; SPECS §3 defines reports
 * only, so these are ours). The backend is an app backend (role `app-backend`, its inbox):
 *
 *   mode A, every phone → backend   tcn.contacts.upload  { batch, log }                → tcn.contacts.ack
 *   mode A, positive → backend      tcn.report.upload    { code, reports }             → tcn.report.ack
 *   mode A, backend → phone inbox   tcn.exposure.notify  { reportId, log }  (the phone's contacts with a reported TCN)
 *   mode B, positive → backend      tcn.log.upload       { code, part, parts, log }    → tcn.log.ack
 *   mode B, backend → log topic     tcn.log.published    { logId, part, parts, log }  (every phone subscribes)
 *
 * Fields (every one checked; unknown fields are rejected, protocol/wire/body.ts):
 *   batch, reportId, logId  integers in [0, 2^32 − 1]: the sender's message number, the backend's ids
 *   log        bytes, a contact log v1 (contact-log.ts: version ‖ count ‖ 21-byte entries) of at most
 *              TCN_MAX_LOG_ENTRIES_PER_MESSAGE entries, so a message stays far below the 256 KB
 *              envelope bound; a longer log is sent in parts (part 0 … parts − 1)
 *   part, parts  0 ≤ part < parts ≤ TCN_MAX_LOG_PARTS
 *   code       string, a printed one-time code (protocol/keyserver/upload-code.ts); parsed here
 *   reports    1–30 maps { report: bytes }, each a signed TCN report whose structure parses
 *              (report.ts parseTcnReport; the signature needs crypto and is checked by the backend);
 *              30 = the key server's MAX_UPLOAD_RECORDS, so both upload paths take the same reports
 *   accepted   boolean; reason '' exactly when accepted, else one of the listed refusals
 *
 * Versioning: the envelope carries v = 1 and a log its own version byte; a different body layout
 * gets a new type name. Hostile bodies never throw: decoders return a Rejection with codec = the
 * message type and the reason of protocol/wire/body.ts (`not-a-map`, `field-type`, `field-length`,
 * `field-range`, `field-format`, `unknown-field`, `too-many`) or one of:
 *   bad-code    the code fails parseUploadCode (field `code`; detail starts with its reason)
 *   bad-log     the log is not a contact log v1 (field `log`; detail starts with the contact-log
 *               reason: too-short, bad-version, too-many, bad-length)
 *   bad-report  a report fails parseTcnReport (field `reports[i].report`; detail starts with its reason)
 *   bad-part    part ≥ parts (field `part`)
 * Encoders check the value through the decoder and throw MisuseError on a malformed one.
 */
import { reject, type Verdict } from '../errors.ts';
import { MAX_UPLOAD_RECORDS } from '../keyserver/messages.ts';
import { parseUploadCode, UPLOAD_CODE_MAX_INPUT_CHARS, type UploadCode } from '../keyserver/upload-code.ts';
import { bodyCodec, type BodyReader } from '../wire/body.ts';
import { MessageRegistry, type MessageCodec } from '../wire/messages.ts';
import { TCN_CONTACT_LOG_ENTRY_BYTES, TCN_CONTACT_LOG_HEADER_BYTES, TCN_CONTACT_LOG_VERSION } from './contact-log.ts';
import { parseTcnReport, TCN_SIGNED_REPORT_MAX_BYTES, TCN_SIGNED_REPORT_MIN_BYTES } from './report.ts';

export const TCN_MESSAGE_REJECTION_REASONS = ['bad-code', 'bad-log', 'bad-report', 'bad-part'] as const;
/** Entries per log message: 10,000 × 21 B = 210 KB, under the envelope's 256 KB (wire/envelope.ts MAX_ENVELOPE_BYTES). */
export const TCN_MAX_LOG_ENTRIES_PER_MESSAGE = 10_000;
/** Bytes of the largest log in one message. */
export const TCN_MAX_LOG_MESSAGE_BYTES = TCN_CONTACT_LOG_HEADER_BYTES + TCN_MAX_LOG_ENTRIES_PER_MESSAGE * TCN_CONTACT_LOG_ENTRY_BYTES;
/**
 * Parts of one mode-B log at most: 14 parts × 10,000 entries = 140,000 ≥ the contact log's
 * 131,072-entry bound (14 days of contacts, contact-log.ts).
 */
export const TCN_MAX_LOG_PARTS = 14;
/** Reports per upload: the key server's MAX_UPLOAD_RECORDS (30). */
export const TCN_MAX_REPORTS_PER_UPLOAD = MAX_UPLOAD_RECORDS;
const MAX_U32 = 0xffff_ffff;

/** Why a contacts upload is refused (order of the checks: actors/tcn/backend-logic.ts). */
export const TCN_CONTACTS_REFUSALS = ['not-a-phone', 'capacity'] as const;
/** Why a report upload is refused. */
export const TCN_REPORT_REFUSALS = ['unknown-code', 'used', 'expired', 'bad-signature', 'capacity'] as const;
/** Why a log part is refused. */
export const TCN_LOG_REFUSALS = ['not-a-phone', 'unknown-code', 'used', 'expired'] as const;
export type TcnContactsRefusal = (typeof TCN_CONTACTS_REFUSALS)[number];
export type TcnReportRefusal = (typeof TCN_REPORT_REFUSALS)[number];
export type TcnLogRefusal = (typeof TCN_LOG_REFUSALS)[number];

export interface TcnContactsUpload {
  readonly batch: number;
  /** Contact log v1 bytes (checked). */
  readonly log: Uint8Array;
}
export interface TcnContactsAck {
  readonly batch: number;
  readonly accepted: boolean;
  readonly reason: '' | TcnContactsRefusal;
}
export interface TcnReportUpload {
  readonly code: UploadCode;
  /** Signed reports whose structure parses (signatures unchecked). */
  readonly reports: readonly Uint8Array[];
}
export interface TcnReportAck {
  readonly accepted: boolean;
  readonly reason: '' | TcnReportRefusal;
}
export interface TcnExposureNotify {
  readonly reportId: number;
  readonly log: Uint8Array;
}
export interface TcnLogUpload {
  readonly code: UploadCode;
  readonly part: number;
  readonly parts: number;
  readonly log: Uint8Array;
}
export interface TcnLogAck {
  readonly part: number;
  readonly accepted: boolean;
  readonly reason: '' | TcnLogRefusal;
}
export interface TcnLogPublished {
  readonly logId: number;
  readonly part: number;
  readonly parts: number;
  readonly log: Uint8Array;
}

/**
 * The contact-log header checks of decodeTcnContactLog (contact-log.ts), in its order, without
 * building the entries: every 21-byte entry is valid whatever its bytes, so version, count and
 * length decide. O(1), so a phone checks a published log once, not twice.
 */
export function contactLogProblem(bytes: Uint8Array, maxEntries = TCN_MAX_LOG_ENTRIES_PER_MESSAGE): string | undefined {
  if (bytes.length < TCN_CONTACT_LOG_HEADER_BYTES) return `too-short: ${bytes.length} bytes`;
  if (bytes[0] !== TCN_CONTACT_LOG_VERSION) return `bad-version: ${bytes[0] ?? 0}`;
  const count = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(1, true);
  if (count > maxEntries) return `too-many: ${count} entries, at most ${maxEntries}`;
  const expected = TCN_CONTACT_LOG_HEADER_BYTES + count * TCN_CONTACT_LOG_ENTRY_BYTES;
  return bytes.length === expected ? undefined : `bad-length: ${count} entries need ${expected} bytes, got ${bytes.length}`;
}


const codec = bodyCodec;

const accepted = <T>(value: T): Verdict<T> => ({ ok: true, value });
const u32 = (r: BodyReader, name: string): number => r.int(name, 0, MAX_U32);
const logBytes = (r: BodyReader): Uint8Array => r.bytes('log', TCN_CONTACT_LOG_HEADER_BYTES, TCN_MAX_LOG_MESSAGE_BYTES);
const codeText = (r: BodyReader): string => r.string('code', /^[^\p{Cc}]+$/u, UPLOAD_CODE_MAX_INPUT_CHARS);
const reasonOf = <R extends string>(r: BodyReader, values: readonly R[]): '' | R => r.oneOf<'' | R>('reason', ['', ...values]);
const parts = (r: BodyReader): { part: number; parts: number } => ({ part: r.int('part', 0, TCN_MAX_LOG_PARTS - 1), parts: r.int('parts', 1, TCN_MAX_LOG_PARTS) });

function checkLog<T extends { readonly log: Uint8Array }>(type: string, fields: T): Verdict<T> {
  const problem = contactLogProblem(fields.log);
  return problem === undefined ? accepted(fields) : reject(type, 'bad-log', problem, 'log');
}

function checkPart<T extends { readonly part: number; readonly parts: number; readonly log: Uint8Array }>(type: string, fields: T): Verdict<T> {
  if (fields.part >= fields.parts) return reject(type, 'bad-part', `part ${fields.part} of ${fields.parts}`, 'part');
  return checkLog(type, fields);
}

function codeOf(type: string, text: string): Verdict<UploadCode> {
  const code = parseUploadCode(text);
  return code.ok ? code : reject(type, 'bad-code', `${code.reason}: ${code.detail}`, 'code');
}

/** Acks: reason '' exactly when accepted. */
function checkAck<T extends { readonly accepted: boolean; readonly reason: string }>(type: string, fields: T): Verdict<T> {
  return fields.accepted !== (fields.reason === '') ? reject(type, 'field-format', 'reason must be empty exactly when accepted', 'reason') : accepted(fields);
}

export const tcnContactsUploadCodec = codec<TcnContactsUpload, TcnContactsUpload>(
  'tcn.contacts.upload',
  (r) => ({ batch: u32(r, 'batch'), log: logBytes(r) }),
  (f) => checkLog('tcn.contacts.upload', f),
  (v) => ({ batch: v.batch, log: v.log }),
);

export const tcnContactsAckCodec = codec<TcnContactsAck, TcnContactsAck>(
  'tcn.contacts.ack',
  (r) => ({ batch: u32(r, 'batch'), accepted: r.bool('accepted'), reason: reasonOf(r, TCN_CONTACTS_REFUSALS) }),
  (f) => checkAck('tcn.contacts.ack', f),
  (v) => ({ batch: v.batch, accepted: v.accepted, reason: v.reason }),
);

export const tcnReportUploadCodec = codec<{ code: string; reports: Uint8Array[] }, TcnReportUpload>(
  'tcn.report.upload',
  (r) => ({
    code: codeText(r),
    reports: r.array('reports', TCN_MAX_REPORTS_PER_UPLOAD, (item) => item.bytes('report', TCN_SIGNED_REPORT_MIN_BYTES, TCN_SIGNED_REPORT_MAX_BYTES)),
  }),
  (f) => {
    const type = 'tcn.report.upload';
    const code = codeOf(type, f.code);
    if (!code.ok) return code;
    if (f.reports.length === 0) return reject(type, 'field-length', 'expected 1–30 reports', 'reports');
    for (let i = 0; i < f.reports.length; i++) {
      const parsed = parseTcnReport(f.reports[i] as Uint8Array);
      if (!parsed.ok) return reject(type, 'bad-report', `${parsed.reason}: ${parsed.detail}`, `reports[${i}].report`);
    }
    return accepted({ code: code.value, reports: f.reports });
  },
  (v) => ({ code: v.code.text, reports: v.reports.map((report) => ({ report })) }),
);

export const tcnReportAckCodec = codec<TcnReportAck, TcnReportAck>(
  'tcn.report.ack',
  (r) => ({ accepted: r.bool('accepted'), reason: reasonOf(r, TCN_REPORT_REFUSALS) }),
  (f) => checkAck('tcn.report.ack', f),
  (v) => ({ accepted: v.accepted, reason: v.reason }),
);

export const tcnExposureNotifyCodec = codec<TcnExposureNotify, TcnExposureNotify>(
  'tcn.exposure.notify',
  (r) => ({ reportId: u32(r, 'reportId'), log: logBytes(r) }),
  (f) => checkLog('tcn.exposure.notify', f),
  (v) => ({ reportId: v.reportId, log: v.log }),
);

export const tcnLogUploadCodec = codec<{ code: string; part: number; parts: number; log: Uint8Array }, TcnLogUpload>(
  'tcn.log.upload',
  (r) => ({ code: codeText(r), ...parts(r), log: logBytes(r) }),
  (f) => {
    const code = codeOf('tcn.log.upload', f.code);
    if (!code.ok) return code;
    const checked = checkPart('tcn.log.upload', f);
    return checked.ok ? accepted({ code: code.value, part: f.part, parts: f.parts, log: f.log }) : checked;
  },
  (v) => ({ code: v.code.text, part: v.part, parts: v.parts, log: v.log }),
);

export const tcnLogAckCodec = codec<TcnLogAck, TcnLogAck>(
  'tcn.log.ack',
  (r) => ({ part: r.int('part', 0, TCN_MAX_LOG_PARTS - 1), accepted: r.bool('accepted'), reason: reasonOf(r, TCN_LOG_REFUSALS) }),
  (f) => checkAck('tcn.log.ack', f),
  (v) => ({ part: v.part, accepted: v.accepted, reason: v.reason }),
);

export const tcnLogPublishedCodec = codec<TcnLogPublished, TcnLogPublished>(
  'tcn.log.published',
  (r) => ({ logId: u32(r, 'logId'), ...parts(r), log: logBytes(r) }),
  (f) => checkPart('tcn.log.published', f),
  (v) => ({ logId: v.logId, part: v.part, parts: v.parts, log: v.log }),
);

/** Inputs of the TCN backend machine. */
export const TCN_BACKEND_INPUT_CODECS = [tcnContactsUploadCodec, tcnReportUploadCodec, tcnLogUploadCodec] as const;
/** What a phone receives from the backend (the engine's exchange.messages). */
export const TCN_PHONE_INPUT_CODECS = [tcnContactsAckCodec, tcnReportAckCodec, tcnExposureNotifyCodec, tcnLogAckCodec, tcnLogPublishedCodec] as const;
/** Every TCN backend message. */
export const TCN_MESSAGE_CODECS: readonly MessageCodec<unknown>[] = [...TCN_BACKEND_INPUT_CODECS, ...TCN_PHONE_INPUT_CODECS] as readonly MessageCodec<unknown>[];

/** Registry of every TCN backend message, for hosts running the backend or phones in modes A and B. */
export function tcnMessages(registry = new MessageRegistry()): MessageRegistry {
  for (const c of TCN_MESSAGE_CODECS) registry.register(c);
  return registry;
}
