/**
 * TCN modes A and B on the phone: the engine's `exchange` with the TCN backend (actors/tcn/,
 * messages protocol/tcn/messages.ts). Mode C has no backend of its own (the key server carries
 * its reports), so every function here is a no-op for it.
 *
 *   A  every exchange period: the observations not yet acknowledged, as contact logs
 *      (tcn.contacts.upload, ≤ 10,000 entries each); an ack drops the blocks it covers, so the
 *      phone keeps only what the backend has not confirmed. On diagnosis: the signed reports of
 *      the infectious period (tcn.report.upload with the health authority's code). The backend
 *      sends tcn.exposure.notify with this phone's contacts that carry a reported TCN.
 *   B  on diagnosis (the health authority's request = the diagnosis with its code): the observed
 *      contacts since infectiousFrom (tcn.log.upload, in parts); the backend publishes each part
 *      (tcn.log.published) and every phone looks for its own sent TCNs in it
 *      (matchPublishedContactLogs).
 *
 * Both: a diagnosis upload is re-sent every exchange period until every message is acknowledged,
 * at most MAX_DIAGNOSIS_ATTEMPTS times; a refusal that cannot change (not a phone, bad code, used,
 * expired, bad signature) ends it. Sightings the backend reports are kept per source, so a positive's
 * contacts learnt later add to the same (source, day) exposure.
 */
import { ensure } from '../../protocol/errors.ts';
import { parseUploadCode } from '../../protocol/keyserver/upload-code.ts';
import { decodeTcnContactLog, encodeTcnContactLog, TCN_CONTACT_MINUTE_MS, type TcnContact } from '../../protocol/tcn/contact-log.ts';
import { matchPublishedContactLogs } from '../../protocol/tcn/matching.ts';
import {
  tcnContactsAckCodec,
  tcnContactsUploadCodec,
  tcnExposureNotifyCodec,
  tcnLogAckCodec,
  tcnLogPublishedCodec,
  tcnLogUploadCodec,
  tcnReportAckCodec,
  tcnReportUploadCodec,
  TCN_MAX_LOG_ENTRIES_PER_MESSAGE,
  TCN_MAX_LOG_PARTS,
  TCN_MAX_REPORTS_PER_UPLOAD,
  TCN_PHONE_INPUT_CODECS,
} from '../../protocol/tcn/messages.ts';
import type { WireValue } from '../../protocol/wire/msgpack.ts';
import type { SimMillis } from '../ports.ts';
import { tcnBackendInbox, tcnLogTopic } from '../tcn/topics.ts';
import type { EngineDeps, EngineExchange, EngineSend, EngineStep } from './engine.ts';
import type { TcnEngineConfig } from './tcn-config.ts';
import { freshExposures, tcnExposures, type TcnSighting } from './tcn-exposure.ts';
import { reportKeys } from './tcn-keys.ts';
import { contactsOf, sealLast } from './tcn-observations.ts';
import { countTcn, type TcnPendingUpload, type TcnState } from './tcn-state.ts';

/** Diagnosis upload attempts at most (the first send and nine re-sends, as the phone's key-server upload). */
export const MAX_DIAGNOSIS_ATTEMPTS = 10;
/** Contact uploads awaiting an ack that are remembered (older acks are ignored; their entries are re-sent). */
const MAX_IN_FLIGHT = 64;
/** Refusals a re-send cannot change. */
const FINAL_REFUSALS: ReadonlySet<string> = new Set(['not-a-phone', 'unknown-code', 'used', 'expired', 'bad-signature']);

const nothing = (state: TcnState): EngineStep<TcnState> => ({ state });

function send(config: TcnEngineConfig, msgType: string, body: WireValue): EngineSend {
  return { topic: tcnBackendInbox(config.backendId), msgType, body };
}

/**
 * Mode A: upload every unacknowledged entry, ≤ TCN_MAX_LOG_ENTRIES_PER_MESSAGE a message. A
 * message acknowledges the blocks it completes (lastSeq); a block split over messages is
 * completed by the one with its last entry. The last block is sealed so that later windows start
 * a new one.
 */
function uploadContacts(config: TcnEngineConfig, state: TcnState): EngineStep<TcnState> {
  const sends: EngineSend[] = [];
  let { nextBatch } = state.exchange;
  const inFlight = [...state.exchange.inFlight];
  let bytesUp = 0;
  let entries = 0;
  let chunk: TcnContact[] = [];
  let completed = -1;
  const flush = (): void => {
    if (chunk.length === 0) return;
    const log = encodeTcnContactLog(chunk);
    sends.push(send(config, tcnContactsUploadCodec.type, tcnContactsUploadCodec.encode({ batch: nextBatch, log })));
    inFlight.push({ batch: nextBatch, lastSeq: completed });
    nextBatch = (nextBatch + 1) % 0x1_0000_0000;
    bytesUp += log.length;
    entries += chunk.length;
    chunk = [];
  };
  for (const block of state.blocks) {
    for (const contact of contactsOf([block])) {
      // Flushing before adding (not after) lets a block that ends exactly at the bound complete in this message's successor.
      if (chunk.length === TCN_MAX_LOG_ENTRIES_PER_MESSAGE) flush();
      chunk.push(contact);
    }
    completed = block.lastSeq;
  }
  flush();
  const exchange = { ...state.exchange, nextBatch, inFlight: inFlight.slice(-MAX_IN_FLIGHT) };
  return { state: countTcn({ ...state, blocks: sealLast(state.blocks), exchange }, 'contactsUploaded', entries), sends, bytesUp };
}

/** Re-send the unacknowledged parts of a pending diagnosis upload (or give up). */
function resendPending(config: TcnEngineConfig, state: TcnState): EngineStep<TcnState> {
  const p = state.exchange.pending;
  if (p === null) return nothing(state);
  if (p.attempts >= MAX_DIAGNOSIS_ATTEMPTS) return { state: countTcn({ ...state, exchange: { ...state.exchange, pending: null } }, 'diagnosisAbandoned') };
  const sends: EngineSend[] = [];
  let bytesUp = 0;
  p.bodies.forEach((body, i) => {
    if (p.acked[i] === true) return;
    sends.push(send(config, p.msgType, body));
    bytesUp += p.sizes[i] ?? 0;
  });
  return { state: { ...state, exchange: { ...state.exchange, pending: { ...p, attempts: p.attempts + 1 } } }, sends, bytesUp };
}

function merge(a: EngineStep<TcnState>, b: (state: TcnState) => EngineStep<TcnState>): EngineStep<TcnState> {
  const second = b(a.state);
  return {
    state: second.state,
    sends: [...(a.sends ?? []), ...(second.sends ?? [])],
    exposures: [...(a.exposures ?? []), ...(second.exposures ?? [])],
    bytesUp: (a.bytesUp ?? 0) + (second.bytesUp ?? 0),
    bytesDown: (a.bytesDown ?? 0) + (second.bytesDown ?? 0),
  };
}

/** New sightings of a source: remembered, and the (source, day) exposures whose risk rose. */
function learn(config: TcnEngineConfig, state: TcnState, source: string, sightings: readonly TcnSighting[], bytesDown: number): EngineStep<TcnState> {
  if (sightings.length === 0) return { state, bytesDown };
  const seen = new Set((state.exchange.matched[source] ?? []).map((s) => `${s.atMs}/${s.rssiDbm}`));
  const added = sightings.filter((s) => !seen.has(`${s.atMs}/${s.rssiDbm}`));
  const all = [...(state.exchange.matched[source] ?? []), ...added];
  const fresh = freshExposures(state.notified, tcnExposures(config, source, all));
  const exchange = { ...state.exchange, matched: { ...state.exchange.matched, [source]: all } };
  return { state: { ...state, exchange, notified: fresh.notified }, exposures: fresh.fresh, bytesDown };
}

const sightingsOf = (contacts: readonly TcnContact[]): TcnSighting[] => contacts.map((c) => ({ atMs: c.atMinute * TCN_CONTACT_MINUTE_MS, rssiDbm: c.rssiDbm }));

function onAck(state: TcnState, msgType: string, body: WireValue): EngineStep<TcnState> {
  const ignored = (): EngineStep<TcnState> => ({ state: countTcn(state, 'messagesIgnored') });
  if (msgType === tcnContactsAckCodec.type) {
    const ack = tcnContactsAckCodec.decode(body);
    if (!ack.ok) return ignored();
    const entry = state.exchange.inFlight.find((f) => f.batch === ack.value.batch);
    if (entry === undefined) return nothing(state);
    const inFlight = state.exchange.inFlight.filter((f) => f !== entry);
    if (!ack.value.accepted) return { state: countTcn({ ...state, exchange: { ...state.exchange, inFlight } }, 'uploadsRefused') };
    return { state: { ...state, blocks: state.blocks.filter((b) => b.lastSeq > entry.lastSeq), exchange: { ...state.exchange, inFlight } } };
  }
  const pending = state.exchange.pending;
  const ack = msgType === tcnReportAckCodec.type ? tcnReportAckCodec.decode(body) : tcnLogAckCodec.decode(body);
  if (!ack.ok) return ignored();
  if (pending === null || pending.msgType !== (msgType === tcnReportAckCodec.type ? tcnReportUploadCodec.type : tcnLogUploadCodec.type)) return nothing(state);
  if (!ack.value.accepted) {
    if (!FINAL_REFUSALS.has(ack.value.reason)) return nothing(state);
    return { state: countTcn({ ...state, exchange: { ...state.exchange, pending: null } }, 'diagnosisRefused') };
  }
  const part = 'part' in ack.value ? ack.value.part : 0;
  const acked = pending.acked.map((a, i) => a || i === part);
  const done = acked.every((a) => a);
  return { state: { ...state, exchange: { ...state.exchange, pending: done ? null : { ...pending, acked } } } };
}

function onNotice(config: TcnEngineConfig, state: TcnState, msgType: string, body: WireValue): EngineStep<TcnState> {
  if (msgType === tcnExposureNotifyCodec.type && config.mode === 'A') {
    const notice = tcnExposureNotifyCodec.decode(body);
    const log = notice.ok ? decodeTcnContactLog(notice.value.log) : notice;
    if (!notice.ok || !log.ok) return { state: countTcn(state, 'messagesIgnored') };
    return learn(config, state, `tcn-a-${notice.value.reportId}`, sightingsOf(log.value), notice.value.log.length);
  }
  if (msgType === tcnLogPublishedCodec.type && config.mode === 'B') {
    const published = tcnLogPublishedCodec.decode(body);
    const log = published.ok ? decodeTcnContactLog(published.value.log) : published;
    if (!published.ok || !log.ok) return { state: countTcn(state, 'messagesIgnored') };
    const { matches } = matchPublishedContactLogs(state.sent, [log.value]);
    return learn(config, state, `tcn-b-${published.value.logId}`, sightingsOf(matches.map((m) => m.contact)), published.value.log.length);
  }
  return { state: countTcn(state, 'messagesIgnored') };
}

/** Mode A: the reports of the infectious period, as one upload (the latest 30 raks). */
function reportUpload(deps: EngineDeps, config: TcnEngineConfig, state: TcnState, infectiousFrom: SimMillis, at: SimMillis, code: string): { state: TcnState; upload: TcnPendingUpload | null } {
  const parsed = parseUploadCode(code);
  const made = reportKeys(deps.crypto, config, state.raks, infectiousFrom, at);
  const next = { ...state, raks: made.raks };
  const reports = made.reports.slice(-TCN_MAX_REPORTS_PER_UPLOAD);
  if (!parsed.ok || reports.length === 0) return { state: next, upload: null };
  const body = tcnReportUploadCodec.encode({ code: parsed.value, reports });
  return { state: next, upload: { msgType: tcnReportUploadCodec.type, bodies: [body], acked: [false], attempts: 0, sizes: [reports.reduce((n, r) => n + r.length, 0)] } };
}

/** Mode B: the contacts observed since infectiousFrom, in parts (the latest TCN_MAX_LOG_PARTS × 10,000 entries). */
function logUpload(state: TcnState, infectiousFrom: SimMillis, code: string): { state: TcnState; upload: TcnPendingUpload | null } {
  const parsed = parseUploadCode(code);
  const all = contactsOf(state.blocks, infectiousFrom);
  const max = TCN_MAX_LOG_PARTS * TCN_MAX_LOG_ENTRIES_PER_MESSAGE;
  const contacts = all.slice(-max);
  const counted = countTcn(state, 'logEntriesDropped', all.length - contacts.length);
  if (!parsed.ok) return { state: counted, upload: null };
  const parts = Math.max(1, Math.ceil(contacts.length / TCN_MAX_LOG_ENTRIES_PER_MESSAGE));
  const bodies: WireValue[] = [];
  const sizes: number[] = [];
  for (let part = 0; part < parts; part++) {
    const log = encodeTcnContactLog(contacts.slice(part * TCN_MAX_LOG_ENTRIES_PER_MESSAGE, (part + 1) * TCN_MAX_LOG_ENTRIES_PER_MESSAGE));
    bodies.push(tcnLogUploadCodec.encode({ code: parsed.value, part, parts, log }));
    sizes.push(log.length);
  }
  return { state: counted, upload: { msgType: tcnLogUploadCodec.type, bodies, acked: bodies.map(() => false), attempts: 0, sizes } };
}

export const tcnExchange: EngineExchange<TcnState, TcnEngineConfig> = {
  messages: TCN_PHONE_INPUT_CODECS.map((c) => c.type),

  subscriptions: (config) => (config.mode === 'B' ? [tcnLogTopic(config.backendId)] : []),

  periodMs: (config) => (config.mode === 'C' ? undefined : config.exchangePeriodMs),

  periodic(_deps, config, state) {
    if (config.mode === 'C') return nothing(state);
    const first = config.mode === 'A' ? uploadContacts(config, state) : nothing(state);
    return merge(first, (s) => resendPending(config, s));
  },

  onMessage(deps, config, state, msgType, body) {
    // The host decoded the body with the same codec; decoding again narrows `unknown` without a cast of its fields.
    const wire = body as WireValue;
    if (msgType === tcnContactsAckCodec.type || msgType === tcnReportAckCodec.type || msgType === tcnLogAckCodec.type) return onAck(state, msgType, wire);
    // Matching a published log (B) or a notice (A) is this phone's matching work.
    const work = (): EngineStep<TcnState> => onNotice(config, state, msgType, wire);
    return deps.meter === undefined ? work() : deps.meter.time('match', work);
  },

  diagnosed(deps, config, state, infectiousFrom, at, code) {
    if (config.mode === 'C') return nothing(state);
    ensure(infectiousFrom <= at, 'infectiousFrom', 'must not be after the diagnosis');
    const made = config.mode === 'A' ? reportUpload(deps, config, state, infectiousFrom, at, code) : logUpload(state, infectiousFrom, code);
    if (made.upload === null) return { state: made.state };
    return resendPending(config, { ...made.state, exchange: { ...made.state.exchange, pending: made.upload } });
  },
};
