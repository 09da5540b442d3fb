/**
 * The TCN backend (issue 5, TCN modes A and B; messages protocol/tcn/messages.ts; the phone's side
 * actors/tracing/tcn-exchange.ts): an app backend that stores phones' contact logs and matches
 * positives' reports against them (A), and publishes positives' contact logs (B).
 *
 *   idle ──host.start──▶ running ──host.stop──▶ stopped (final)
 *   running (per-upload and per-code state lives in context, as in the other backends):
 *     msg.tcn.contacts.upload  refused: not-a-phone | capacity
 *                              accepted: stored (uploader, at, log); its entries with a stored
 *                              reported TCN → tcn.exposure.notify to the uploader     → tcn.contacts.ack
 *     msg.tcn.report.upload    refused: unknown-code | used | expired | bad-signature | capacity
 *                              accepted: reports regenerated and stored, code used; every stored
 *                              upload scanned → tcn.exposure.notify per (uploader, report) → tcn.report.ack
 *     msg.tcn.log.upload       refused: not-a-phone | unknown-code | used | expired
 *                              accepted: the part published on the backend's events topic
 *                              (tcn.log.published, every phone subscribes)           → tcn.log.ack
 *     timer.expire             housekeeping only (below)
 *   before every event: uploads and reports older than retentionMs are dropped; after it the one
 *   timer `expire` is (re-)armed at the earliest remaining expiry (deadline in context.timers, so a
 *   restored snapshot re-arms it) or cancelled.
 *
 * Why it is shaped this way:
 * - Codes (backend-codes.ts): the health authority's printed codes are given at start and only
 *   their peppered digests kept, compared in constant time. A code authorizes one upload; the same
 *   upload re-sent (lost ack, QoS 1 redelivery) is acknowledged again, anything else with a used
 *   code is refused `used`. Only an accepted upload consumes the code (a refused one — bad
 *   signature, capacity — leaves it usable).
 * - Uploaders are phones: a contacts upload or a log from an envelope whose `from` is not
 *   `phone/<id>` is refused (`not-a-phone`); notifications go only to `phone/<id>` inboxes, never to
 *   an address an envelope names, so hostile input cannot make the backend write elsewhere.
 * - Memory is bounded: at most maxContacts stored entries and maxReports reports (a full backend
 *   refuses rather than silently dropping what it holds); reports are hostile-j2-bounded
 *   (maxTcnsPerReport); everything expires after retentionMs. Bodies are checked by their codecs
 *   before the machine sees them (the host counts and drops rejections); what only the machine can
 *   check (signatures, codes, senders) is counted per reason in context.counters.
 * - The reported-TCN index is a cache keyed by the reports array (ReportIndexCache), not state.
 * - Replies go to the request's replyTo with corr = its corr (or id); without replyTo an upload is
 *   processed silently.
 */
import { createBackendMachine } from '../quarantine/backend-machine.ts';
import type { HostEvent, MessageEvent, TimerEvent } from '../effects.ts';
import { withoutFiredTimer, type Effect } from '../effects.ts';
import type { SimMillis } from '../ports.ts';
import {
  tcnContactsAckCodec,
  tcnLogAckCodec,
  tcnLogPublishedCodec,
  tcnReportAckCodec,
  type TcnContactsRefusal,
  type TcnContactsUpload,
  type TcnLogRefusal,
  type TcnLogUpload,
  type TcnReportRefusal,
  type TcnReportUpload,
} from '../../protocol/tcn/messages.ts';
import { TCN_CONTACT_LOG_ENTRY_BYTES, TCN_CONTACT_LOG_HEADER_BYTES } from '../../protocol/tcn/contact-log.ts';
import type { Envelope } from '../../protocol/wire/envelope.ts';
import { checkTcnBackendDeps, findCode, hex, type CodeEntry, type TcnBackendDeps } from './backend-codes.ts';
import {
  bumpReason,
  EXPIRE_TIMER,
  expire,
  initialTcnBackendContext,
  NOTHING,
  phoneOf,
  reply,
  schedule,
  storeContacts,
  storeReports,
  verifyAll,
  type ReportIndexCache,
  type Step,
  type TcnBackendContext,
  type TcnBackendInput,
} from './backend-logic.ts';
import { tcnLogTopic } from './topics.ts';

export { checkTcnBackendDeps, type TcnBackendDeps } from './backend-codes.ts';
export {
  EXPIRE_TIMER,
  initialTcnBackendContext,
  nextExpiry,
  resolveTcnBackendConfig,
  TCN_BACKEND_MAX_CONTACTS,
  TCN_BACKEND_MAX_REPORTS,
  TCN_BACKEND_RETENTION_MS,
  type StoredReport,
  type StoredUpload,
  type UploadHour,
  type TcnBackendConfig,
  type TcnBackendContext,
  type TcnBackendCounters,
  type TcnBackendInput,
} from './backend-logic.ts';

export type TcnBackendEvent =
  | HostEvent
  | TimerEvent
  | MessageEvent<'tcn.contacts.upload', TcnContactsUpload>
  | MessageEvent<'tcn.report.upload', TcnReportUpload>
  | MessageEvent<'tcn.log.upload', TcnLogUpload>;

export const TCN_BACKEND_INPUTS = ['msg.tcn.contacts.upload', 'msg.tcn.report.upload', 'msg.tcn.log.upload', `timer.${EXPIRE_TIMER}`] as const;

const entries = (log: Uint8Array): number => (log.length - TCN_CONTACT_LOG_HEADER_BYTES) / TCN_CONTACT_LOG_ENTRY_BYTES;

/** `tcn.contacts.upload`: checks in order not-a-phone, capacity; then stored and matched. */
export function contactsUpload(context: TcnBackendContext, cache: ReportIndexCache, body: TcnContactsUpload, at: SimMillis, envelope: Envelope): Step {
  const ack = (accepted: boolean, reason: '' | TcnContactsRefusal): Effect[] => reply(envelope, tcnContactsAckCodec.type, tcnContactsAckCodec.encode({ batch: body.batch, accepted, reason }));
  const refuse = (reason: TcnContactsRefusal): Step => ({ context: { counters: { ...context.counters, contactsRefused: bumpReason(context.counters.contactsRefused, reason) } }, effects: ack(false, reason) });
  const uploader = phoneOf(envelope);
  if (uploader === undefined) return refuse('not-a-phone');
  if (context.contactCount + entries(body.log) > context.config.maxContacts) return refuse('capacity');
  const stored = storeContacts(context, cache, uploader, body.log, at);
  return { context: stored.context, effects: [...stored.effects, ...ack(true, '')] };
}

/**
 * `tcn.report.upload`: checks in order unknown-code, used (the same reports re-sent are
 * acknowledged again), expired, bad-signature (any report), capacity; then stored and matched.
 */
export function reportUpload(deps: TcnBackendDeps, context: TcnBackendContext, body: TcnReportUpload, at: SimMillis, envelope: Envelope): Step {
  const { counters } = context;
  const ack = (accepted: boolean, reason: '' | TcnReportRefusal): Effect[] => reply(envelope, tcnReportAckCodec.type, tcnReportAckCodec.encode({ accepted, reason }));
  const refuse = (reason: TcnReportRefusal): Step => ({ context: { counters: { ...counters, reportUploads: counters.reportUploads + 1, reportsRefused: bumpReason(counters.reportsRefused, reason) } }, effects: ack(false, reason) });
  const i = findCode(deps, context.codes, body.code);
  const code = context.codes[i];
  if (code === undefined) return refuse('unknown-code');
  const all = new Uint8Array(body.reports.reduce((n, r) => n + r.length + 2, 0));
  let o = 0;
  for (const r of body.reports) {
    // Length-prefixed, so two different lists never concatenate to the same bytes.
    all[o] = r.length >>> 8;
    all[o + 1] = r.length & 0xff;
    all.set(r, o + 2);
    o += r.length + 2;
  }
  const reportsHash = hex(deps.crypto.sha256(all));
  if (code.usedAt !== null) {
    if (code.reportsHash !== reportsHash) return refuse('used');
    return { context: { counters: { ...counters, reportUploads: counters.reportUploads + 1, reportRetries: counters.reportRetries + 1 } }, effects: ack(true, '') };
  }
  if (at >= context.codesExpireAt) return refuse('expired');
  const reports = verifyAll(deps.crypto, body.reports);
  if (reports === undefined) return refuse('bad-signature');
  if (context.reports.length + reports.length > context.config.maxReports) return refuse('capacity');
  const stored = storeReports(deps.crypto, context, reports, at);
  const used: CodeEntry = { ...code, usedAt: at, reportsHash };
  const storedCounters = stored.context.counters ?? counters;
  return {
    context: { ...stored.context, codes: context.codes.map((c, k) => (k === i ? used : c)), counters: { ...storedCounters, reportUploads: storedCounters.reportUploads + 1 } },
    effects: [...stored.effects, ...ack(true, '')],
  };
}

/**
 * `tcn.log.upload`: checks in order not-a-phone, unknown-code, then for a fresh code expired (the
 * code is bound to this phone and part count), for a used one `used` unless it is this phone's log
 * with the same part count; a part already published is acknowledged again, a new one published.
 */
export function logUpload(deps: TcnBackendDeps, context: TcnBackendContext, body: TcnLogUpload, at: SimMillis, envelope: Envelope): Step {
  const { counters } = context;
  const ack = (accepted: boolean, reason: '' | TcnLogRefusal): Effect[] => reply(envelope, tcnLogAckCodec.type, tcnLogAckCodec.encode({ part: body.part, accepted, reason }));
  const refuse = (reason: TcnLogRefusal): Step => ({ context: { counters: { ...counters, logPartsRefused: bumpReason(counters.logPartsRefused, reason) } }, effects: ack(false, reason) });
  const uploader = phoneOf(envelope);
  if (uploader === undefined) return refuse('not-a-phone');
  const i = findCode(deps, context.codes, body.code);
  const code = context.codes[i];
  if (code === undefined) return refuse('unknown-code');
  let nextId = context.nextId;
  let log = code.log;
  if (code.usedAt === null) {
    if (at >= context.codesExpireAt) return refuse('expired');
    log = { logId: nextId, uploader, parts: body.parts, received: new Array<boolean>(body.parts).fill(false) };
    nextId = (nextId + 1) % 0x1_0000_0000;
  } else if (log === null || log.uploader !== uploader || log.parts !== body.parts) return refuse('used');
  if (log.received[body.part] === true) return { context: { counters: { ...counters, logPartRetries: counters.logPartRetries + 1 } }, effects: ack(true, '') };
  const bound: CodeEntry = { ...code, usedAt: code.usedAt ?? at, log: { ...log, received: log.received.map((r, k) => r || k === body.part) } };
  const publish: Effect = {
    type: 'bus.send',
    topic: tcnLogTopic(context.id),
    msgType: tcnLogPublishedCodec.type,
    body: tcnLogPublishedCodec.encode({ logId: log.logId, part: body.part, parts: body.parts, log: body.log }),
    qos: 1,
  };
  return {
    context: { codes: context.codes.map((c, k) => (k === i ? bound : c)), nextId, counters: { ...counters, logPartsPublished: counters.logPartsPublished + 1 } },
    effects: [publish, ...ack(true, '')],
  };
}

function route(deps: TcnBackendDeps, cache: ReportIndexCache, context: TcnBackendContext, event: TcnBackendEvent): Step {
  switch (event.type) {
    case 'msg.tcn.contacts.upload':
      return contactsUpload(context, cache, event.body, event.at, event.envelope);
    case 'msg.tcn.report.upload':
      return reportUpload(deps, context, event.body, event.at, event.envelope);
    case 'msg.tcn.log.upload':
      return logUpload(deps, context, event.body, event.at, event.envelope);
    default:
      return NOTHING;
  }
}

/** Housekeeping, the event's rule, then the timer (header). */
export function reduceTcnBackend(deps: TcnBackendDeps, cache: ReportIndexCache, context: TcnBackendContext, event: TcnBackendEvent): Step {
  const base = expire(context, event.at);
  const step = route(deps, cache, base, event);
  const timers = event.type.startsWith('timer.') ? withoutFiredTimer(base.timers, event.type) : base.timers;
  return schedule({ ...base, ...step.context, timers }, step.effects);
}

export function createTcnBackendMachine(deps: TcnBackendDeps) {
  checkTcnBackendDeps(deps);
  const cache: ReportIndexCache = new WeakMap();
  return createBackendMachine<TcnBackendInput, TcnBackendContext, TcnBackendEvent>({
    id: 'tcn-backend',
    initialContext: (input) => initialTcnBackendContext(deps, input),
    reduce: (context, event) => reduceTcnBackend(deps, cache, context, event),
    handles: [...TCN_BACKEND_INPUTS],
  });
}

export type TcnBackendMachine = ReturnType<typeof createTcnBackendMachine>;
