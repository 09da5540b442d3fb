/**
 * The TCN backend's rules as plain functions (the chart and the reasons are in backend.ts): each
 * handler takes the whole context and returns the context update plus the effects to emit, in
 * order. Context is plain data (arrays, records, Uint8Array): snapshots need no codec.
 */
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import { ensure } from '../../protocol/errors.ts';
import { Id16Table } from '../../protocol/id16-table.ts';
import { TCN_CONTACT_LOG_ENTRY_BYTES, TCN_CONTACT_LOG_HEADER_BYTES, TCN_CONTACT_LOG_VERSION } from '../../protocol/tcn/contact-log.ts';
import { TCN_BYTES } from '../../protocol/tcn/keys.ts';
import { forEachReportTcn, TCN_MAX_TCNS_PER_REPORT, TCN_RETENTION_DAYS } from '../../protocol/tcn/matching.ts';
import {
  tcnExposureNotifyCodec,
  TCN_CONTACTS_REFUSALS,
  TCN_LOG_REFUSALS,
  TCN_MAX_LOG_ENTRIES_PER_MESSAGE,
  TCN_REPORT_REFUSALS,
} from '../../protocol/tcn/messages.ts';
import { verifyTcnReport, type TcnReport } from '../../protocol/tcn/report.ts';
import type { Envelope } from '../../protocol/wire/envelope.ts';
import type { WireValue } from '../../protocol/wire/msgpack.ts';
import { inboxTopic, parseActorAddress, SEGMENT_PATTERN } from '../../protocol/wire/topics.ts';
import { withoutTimer, withTimer, type Effect, type TimedContext } from '../effects.ts';
import type { SimMillis } from '../ports.ts';
import { codeEntries, type CodeEntry, type TcnBackendDeps } from './backend-codes.ts';

const DAY_MS = 86_400_000;
/** Uploaded contacts and reports are kept as long as phones keep theirs (protocol/tcn/matching.ts: 14 days). */
export const TCN_BACKEND_RETENTION_MS = TCN_RETENTION_DAYS * DAY_MS;
/** Stored contact entries at most (mode A): 10 M × 21 B = 210 MB, ~7,000 phones' 14 days at the city's ~100 contacts an hour. */
export const TCN_BACKEND_MAX_CONTACTS = 10_000_000;
/** Stored reports at most: one per positive and rak day, ≤ 32 KB each (2,016 TCNs). */
export const TCN_BACKEND_MAX_REPORTS = 10_000;
/** The one timer: at the earliest upload or report expiry. */
export const EXPIRE_TIMER = 'expire';

export interface TcnBackendConfig {
  readonly retentionMs: number;
  readonly maxContacts: number;
  readonly maxReports: number;
  /** TCNs regenerated per report at most (a report is signed by whoever made it: hostile j2). */
  readonly maxTcnsPerReport: number;
}

export interface TcnBackendInput {
  /** This backend's actor id. */
  readonly id: string;
  /** The health authority's codes, printed form (only their digests are kept). */
  readonly codes: readonly string[];
  /** First instant the codes are refused, ms. */
  readonly codesExpireAt: SimMillis;
  readonly config?: Partial<TcnBackendConfig>;
}

/** One contacts upload (mode A): the uploader's actor id and the contact log as received. */
export interface StoredUpload {
  readonly uploader: string;
  readonly at: SimMillis;
  readonly log: Uint8Array;
}

/**
 * The uploads of one UTC hour. Grouped so that storing an upload copies only the current hour's
 * list (phones upload every 15 minutes: a city's uploads are tens of thousands a day).
 */
export interface UploadHour {
  readonly start: SimMillis;
  /** Ascending `at`. */
  readonly uploads: readonly StoredUpload[];
}

/** Uploads are grouped by this, ms. */
const UPLOAD_HOUR_MS = 3_600_000;

/** A verified report's regenerated TCNs (16 bytes each, packed). */
export interface StoredReport {
  readonly reportId: number;
  readonly at: SimMillis;
  readonly tcns: Uint8Array;
}

export interface TcnBackendCounters {
  readonly contactUploads: number;
  readonly contactsStored: number;
  readonly contactsRefused: Readonly<Record<string, number>>;
  readonly reportUploads: number;
  readonly reportsStored: number;
  readonly reportRetries: number;
  readonly reportsRefused: Readonly<Record<string, number>>;
  readonly logPartsPublished: number;
  readonly logPartRetries: number;
  readonly logPartsRefused: Readonly<Record<string, number>>;
  readonly notifications: number;
  readonly contactsNotified: number;
  readonly tcnsDerived: number;
  /** Stored contact entries compared with a new report's TCNs. */
  readonly entriesScanned: number;
  readonly uploadsExpired: number;
  readonly reportsExpired: number;
}

export interface TcnBackendContext extends TimedContext {
  readonly id: string;
  readonly config: TcnBackendConfig;
  readonly codes: readonly CodeEntry[];
  readonly codesExpireAt: SimMillis;
  /** Ascending `start`. */
  readonly uploads: readonly UploadHour[];
  readonly contactCount: number;
  /** Ascending `at`. */
  readonly reports: readonly StoredReport[];
  /** Next report or log id. */
  readonly nextId: number;
  readonly counters: TcnBackendCounters;
}

export interface Step {
  readonly context: Partial<TcnBackendContext>;
  readonly effects: readonly Effect[];
}

export const NOTHING: Step = { context: {}, effects: [] };

const positiveInt = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
const zeros = (reasons: readonly string[]): Record<string, number> => Object.fromEntries(reasons.map((r) => [r, 0]));

export function resolveTcnBackendConfig(partial: Partial<TcnBackendConfig> = {}): TcnBackendConfig {
  const config: TcnBackendConfig = { retentionMs: TCN_BACKEND_RETENTION_MS, maxContacts: TCN_BACKEND_MAX_CONTACTS, maxReports: TCN_BACKEND_MAX_REPORTS, maxTcnsPerReport: TCN_MAX_TCNS_PER_REPORT, ...partial };
  for (const field of ['retentionMs', 'maxContacts', 'maxReports', 'maxTcnsPerReport'] as const) ensure(positiveInt(config[field]), `config.${field}`, 'must be a positive integer');
  ensure(config.maxTcnsPerReport <= 0xffff, 'config.maxTcnsPerReport', 'must be ≤ 65535');
  return config;
}

export function initialTcnBackendContext(deps: TcnBackendDeps, input: TcnBackendInput): TcnBackendContext {
  ensure(typeof input === 'object' && input !== null, 'input', 'must be a TcnBackendInput');
  ensure(typeof input.id === 'string' && SEGMENT_PATTERN.test(input.id), 'input.id', `must match ${String(SEGMENT_PATTERN)}`);
  ensure(Number.isSafeInteger(input.codesExpireAt) && input.codesExpireAt >= 0, 'input.codesExpireAt', 'must be a time in ms');
  return {
    timers: {},
    id: input.id,
    config: resolveTcnBackendConfig(input.config),
    codes: codeEntries(deps, input.codes),
    codesExpireAt: input.codesExpireAt,
    uploads: [],
    contactCount: 0,
    reports: [],
    nextId: 0,
    counters: {
      contactUploads: 0,
      contactsStored: 0,
      contactsRefused: zeros(TCN_CONTACTS_REFUSALS),
      reportUploads: 0,
      reportsStored: 0,
      reportRetries: 0,
      reportsRefused: zeros(TCN_REPORT_REFUSALS),
      logPartsPublished: 0,
      logPartRetries: 0,
      logPartsRefused: zeros(TCN_LOG_REFUSALS),
      notifications: 0,
      contactsNotified: 0,
      tcnsDerived: 0,
      entriesScanned: 0,
      uploadsExpired: 0,
      reportsExpired: 0,
    },
  };
}

/** The reply to a request: its replyTo, corr = its corr or id; none without replyTo. */
export function reply(envelope: Envelope, msgType: string, body: WireValue): Effect[] {
  return envelope.replyTo === undefined ? [] : [{ type: 'bus.send', topic: envelope.replyTo, msgType, body, qos: 1, corr: envelope.corr ?? envelope.id }];
}

/** The uploading phone's actor id, from the envelope (the secure profile's ACL binds it to the login); undefined: not a phone. */
export function phoneOf(envelope: Envelope): string | undefined {
  const from = parseActorAddress(envelope.from);
  return from?.role === 'phone' ? from.actorId : undefined;
}

export function bumpReason(counts: Readonly<Record<string, number>>, reason: string): Record<string, number> {
  return { ...counts, [reason]: (counts[reason] ?? 0) + 1 };
}

const entriesIn = (log: Uint8Array): number => (log.length - TCN_CONTACT_LOG_HEADER_BYTES) / TCN_CONTACT_LOG_ENTRY_BYTES;

/** Notices to phones: their matched entries (raw contact-log entries) per report, ≤ 10,000 a message. */
function notices(matched: Map<string, Map<number, Uint8Array[]>>): { effects: Effect[]; contacts: number } {
  const effects: Effect[] = [];
  let contacts = 0;
  for (const [uploader, byReport] of matched) {
    for (const [reportId, entries] of byReport) {
      for (let from = 0; from < entries.length; from += TCN_MAX_LOG_ENTRIES_PER_MESSAGE) {
        const part = entries.slice(from, from + TCN_MAX_LOG_ENTRIES_PER_MESSAGE);
        const log = new Uint8Array(TCN_CONTACT_LOG_HEADER_BYTES + part.length * TCN_CONTACT_LOG_ENTRY_BYTES);
        log[0] = TCN_CONTACT_LOG_VERSION;
        new DataView(log.buffer).setUint32(1, part.length, true);
        part.forEach((e, i) => log.set(e, TCN_CONTACT_LOG_HEADER_BYTES + i * TCN_CONTACT_LOG_ENTRY_BYTES));
        effects.push({ type: 'bus.send', topic: inboxTopic('phone', uploader), msgType: tcnExposureNotifyCodec.type, body: tcnExposureNotifyCodec.encode({ reportId, log }), qos: 1 });
        contacts += part.length;
      }
    }
  }
  return { effects, contacts };
}

function addMatch(matched: Map<string, Map<number, Uint8Array[]>>, uploader: string, reportId: number, entry: Uint8Array): void {
  let byReport = matched.get(uploader);
  if (byReport === undefined) matched.set(uploader, (byReport = new Map<number, Uint8Array[]>()));
  const list = byReport.get(reportId);
  if (list === undefined) byReport.set(reportId, [entry]);
  else list.push(entry);
}

/** Reported TCNs by id (owners: the reports holding each), derived from the context's reports. */
export interface ReportIndex {
  readonly table: Id16Table;
  readonly owners: number[][];
}

/** A cache, not state: the same reports always index the same way, and a restored snapshot rebuilds it. */
export type ReportIndexCache = WeakMap<readonly StoredReport[], ReportIndex>;

export function reportIndexOf(cache: ReportIndexCache, reports: readonly StoredReport[]): ReportIndex {
  let index = cache.get(reports);
  if (index === undefined) {
    index = { table: new Id16Table(), owners: [] };
    for (const r of reports) {
      for (let o = 0; o < r.tcns.length; o += TCN_BYTES) {
        const id = index.table.insert(r.tcns, o);
        if (id === index.owners.length) index.owners.push([]);
        (index.owners[id] as number[]).push(r.reportId);
      }
    }
    cache.set(reports, index);
  }
  return index;
}

/** `tcn.contacts.upload` accepted (checks in backend.ts): stored, and matched against the stored reports. */
export function storeContacts(context: TcnBackendContext, cache: ReportIndexCache, uploader: string, log: Uint8Array, at: SimMillis): { context: Partial<TcnBackendContext>; effects: Effect[] } {
  const n = entriesIn(log);
  const index = reportIndexOf(cache, context.reports);
  const matched = new Map<string, Map<number, Uint8Array[]>>();
  if (index.owners.length > 0) {
    for (let o = TCN_CONTACT_LOG_HEADER_BYTES; o < log.length; o += TCN_CONTACT_LOG_ENTRY_BYTES) {
      const id = index.table.find(log, o);
      if (id >= 0) for (const reportId of index.owners[id] as number[]) addMatch(matched, uploader, reportId, log.slice(o, o + TCN_CONTACT_LOG_ENTRY_BYTES));
    }
  }
  const sent = notices(matched);
  const { counters } = context;
  return {
    context: {
      uploads: appendUpload(context.uploads, { uploader, at, log }),
      contactCount: context.contactCount + n,
      counters: { ...counters, contactUploads: counters.contactUploads + 1, contactsStored: counters.contactsStored + n, notifications: counters.notifications + sent.effects.length, contactsNotified: counters.contactsNotified + sent.contacts },
    },
    effects: sent.effects,
  };
}

/** Verified reports: regenerated, stored, and matched against every stored upload. */
export function storeReports(crypto: CryptoSuite, context: TcnBackendContext, reports: readonly TcnReport[], at: SimMillis): { context: Partial<TcnBackendContext>; effects: Effect[] } {
  const table = new Id16Table();
  const owner: number[] = [];
  const stored: StoredReport[] = [];
  let nextId = context.nextId;
  let derived = 0;
  for (const report of reports) {
    const reportId = nextId;
    nextId = (nextId + 1) % 0x1_0000_0000;
    const tcns: Uint8Array[] = [];
    derived += forEachReportTcn(crypto, report, context.config.maxTcnsPerReport, (hash) => {
      const tcn = hash.slice(0, TCN_BYTES);
      tcns.push(tcn);
      if (table.insert(tcn) === owner.length) owner.push(reportId);
    });
    const packed = new Uint8Array(tcns.length * TCN_BYTES);
    tcns.forEach((t, i) => packed.set(t, i * TCN_BYTES));
    stored.push({ reportId, at, tcns: packed });
  }
  const matched = new Map<string, Map<number, Uint8Array[]>>();
  let scanned = 0;
  for (const upload of context.uploads.flatMap((h) => h.uploads)) {
    const { log } = upload;
    for (let o = TCN_CONTACT_LOG_HEADER_BYTES; o < log.length; o += TCN_CONTACT_LOG_ENTRY_BYTES) {
      const id = table.find(log, o);
      if (id >= 0) addMatch(matched, upload.uploader, owner[id] as number, log.slice(o, o + TCN_CONTACT_LOG_ENTRY_BYTES));
    }
    scanned += entriesIn(log);
  }
  const sent = notices(matched);
  const { counters } = context;
  return {
    context: {
      reports: [...context.reports, ...stored],
      nextId,
      counters: {
        ...counters,
        reportsStored: counters.reportsStored + stored.length,
        tcnsDerived: counters.tcnsDerived + derived,
        entriesScanned: counters.entriesScanned + scanned,
        notifications: counters.notifications + sent.effects.length,
        contactsNotified: counters.contactsNotified + sent.contacts,
      },
    },
    effects: sent.effects,
  };
}

/** Verify every report of an upload; the first that fails refuses the whole upload. */
export function verifyAll(crypto: CryptoSuite, reports: readonly Uint8Array[]): TcnReport[] | undefined {
  const out: TcnReport[] = [];
  for (const bytes of reports) {
    const verdict = verifyTcnReport(crypto, bytes);
    if (!verdict.ok) return undefined;
    out.push(verdict.value);
  }
  return out;
}

/** The hours with `upload` appended (to its hour, or a new last hour; a late `at` joins the last hour). */
function appendUpload(hours: readonly UploadHour[], upload: StoredUpload): readonly UploadHour[] {
  const start = Math.floor(upload.at / UPLOAD_HOUR_MS) * UPLOAD_HOUR_MS;
  const last = hours[hours.length - 1];
  if (last === undefined || last.start < start) return [...hours, { start, uploads: [upload] }];
  return [...hours.slice(0, -1), { start: last.start, uploads: [...last.uploads, { ...upload, at: Math.max(upload.at, last.uploads[last.uploads.length - 1]?.at ?? 0) }] }];
}

/** The context with expired uploads and reports dropped (housekeeping before every event). */
export function expire(context: TcnBackendContext, at: SimMillis): TcnBackendContext {
  const { retentionMs } = context.config;
  // Hours are in time order: drop whole hours, then the expired head of the first one kept.
  let dropped = 0;
  let uploadsExpired = 0;
  let hours: readonly UploadHour[] = [];
  for (let h = 0; h < context.uploads.length; h++) {
    const hour = context.uploads[h] as UploadHour;
    const firstKept = hour.uploads.findIndex((u) => u.at + retentionMs > at);
    const gone = firstKept < 0 ? hour.uploads : hour.uploads.slice(0, firstKept);
    for (const u of gone) dropped += entriesIn(u.log);
    uploadsExpired += gone.length;
    if (firstKept < 0) continue;
    hours = firstKept === 0 ? context.uploads.slice(h) : [{ start: hour.start, uploads: hour.uploads.slice(firstKept) }, ...context.uploads.slice(h + 1)];
    break;
  }
  let r = 0;
  while (r < context.reports.length && (context.reports[r]?.at ?? 0) + retentionMs <= at) r++;
  if (uploadsExpired === 0 && r === 0) return context;
  const { counters } = context;
  return {
    ...context,
    uploads: uploadsExpired === 0 ? context.uploads : hours,
    contactCount: context.contactCount - dropped,
    reports: r === 0 ? context.reports : context.reports.slice(r),
    counters: { ...counters, uploadsExpired: counters.uploadsExpired + uploadsExpired, reportsExpired: counters.reportsExpired + r },
  };
}

/** When the next upload or report expires, or null. */
export function nextExpiry(context: TcnBackendContext): SimMillis | null {
  const times = [context.uploads[0]?.uploads[0]?.at, context.reports[0]?.at].filter((t): t is number => t !== undefined);
  return times.length === 0 ? null : Math.min(...times) + context.config.retentionMs;
}

/** Re-arm (or cancel) EXPIRE_TIMER when the earliest expiry moved. */
export function schedule(context: TcnBackendContext, effects: readonly Effect[]): Step {
  const deadline = nextExpiry(context);
  const armed = context.timers[EXPIRE_TIMER];
  if (deadline === (armed ?? null)) return { context, effects };
  if (deadline === null) return { context: { ...context, timers: withoutTimer(context.timers, EXPIRE_TIMER) }, effects: [...effects, { type: 'timer.cancel', name: EXPIRE_TIMER }] };
  return { context: { ...context, timers: withTimer(context.timers, EXPIRE_TIMER, deadline) }, effects: [...effects, { type: 'timer.set', name: EXPIRE_TIMER, deadline }] };
}
