/**
 * Uploads and status queries (issue 4 "Submission"; docs/decisions/0006).
 *
 * The host journals a `keys.upload` durably before this runs, so the ack the
 * step emits is an acknowledgement of a durable request. Validation follows
 * in the same step, in this order (first failure wins, status `rejected`):
 *   chaff           accepted and discarded (no code touched, no lockout)
 *   locked-out      the client is serving a brute-force lockout
 *   malformed       records do not parse (the code is NOT spent: fix and retry)
 *   unknown-code    no such code (a lockout failure)
 *   used / expired  code already redeemed by other content, or past expiry (a failure)
 *   provider-revoked  the issuing provider is revoked (or gone)
 *   future-key      a key starting later than now + futureSlack
 *   bad-tcn-signature  a TCN report whose signature does not verify (SPECS §3)
 *   capacity        distribution would exceed config.maxRecords
 * A retry of an accepted upload (same code, same records) is answered with the
 * original tracking id and changes nothing: a lost ack never duplicates keys.
 * The ack says only the tracking id, so it reveals nothing of the outcome;
 * the uploader asks `keys.status` for it.
 */
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import { readRecords, toHex, type DiagnosisRecord, type IdentifiedRecord } from '../../protocol/keyserver/distribution-records.ts';
import {
  keysStatusReplyCodec,
  keysUploadAckCodec,
  MAX_UPLOAD_RECORDS,
  type KeysStatusReply,
  type KeysUpload,
} from '../../protocol/keyserver/messages.ts';
import { lockoutStatus, MAX_KEY_CHARS, recordFailure, recordSuccess } from '../../protocol/keyserver/rate-limit.ts';
import { uploadCodeDigest } from '../../protocol/keyserver/upload-code.ts';
import type { WireValue } from '../../protocol/wire/msgpack.ts';
import type { Effect } from '../effects.ts';
import type { SimMillis } from '../ports.ts';
import type { Ledger } from './ledger.ts';
import { NOTHING, type KeyServerConfig, type KeyServerContext, type KeyServerDeps, type Step } from './key-server-state.ts';

/** GAEN interval length, ms (SPECS §1.1: 10 minutes). */
const GAEN_INTERVAL_MS = 600_000;
/** DP-3T day, ms (SPECS §2.1). */
const DP3T_DAY_MS = 86_400_000;
const TRACKING_LABEL = new TextEncoder().encode('tracecity/keyserver/tracking/v1\u0000');
const TRACKING_ID_BYTES = 16;
const CONTENT_LABEL = new TextEncoder().encode('tracecity/keyserver/upload-content/v1\u0000');

export interface Requester {
  /** envelope.from: the client the lockout is keyed by. */
  readonly from: string;
  readonly replyTo: string | undefined;
  readonly corr: string;
}

export function reply(to: Requester, msgType: string, body: WireValue): Effect[] {
  return to.replyTo === undefined ? [] : [{ type: 'bus.send', topic: to.replyTo, msgType, body, qos: 1, corr: to.corr }];
}

/** Lockout key of a client (bounded length: envelope.from is hostile data). */
export function clientKey(from: string): string {
  return from.length === 0 ? '-' : from.slice(0, MAX_KEY_CHARS);
}

/** Unguessable and deterministic: HMAC(pepper, label ‖ upload number), 16 bytes hex. */
function trackingIdFor(deps: KeyServerDeps, seq: number): string {
  const message = new Uint8Array(TRACKING_LABEL.length + 8);
  message.set(TRACKING_LABEL);
  new DataView(message.buffer).setBigUint64(TRACKING_LABEL.length, BigInt(seq));
  return toHex(deps.crypto.hmacSha256(deps.pepper, message).subarray(0, TRACKING_ID_BYTES));
}

function contentHash(crypto: Pick<CryptoSuite, 'sha256'>, records: Uint8Array): string {
  const message = new Uint8Array(CONTENT_LABEL.length + records.length);
  message.set(CONTENT_LABEL);
  message.set(records, CONTENT_LABEL.length);
  return toHex(crypto.sha256(message));
}

/** First instant the record is past retention (its own time + retention; TCN reports carry none: upload time). */
export function recordExpiry(record: DiagnosisRecord, uploadedAt: SimMillis, retentionMs: number): SimMillis {
  switch (record.protocol) {
    case 'gaen-tek':
      return (record.rollingStartIntervalNumber + record.rollingPeriod) * GAEN_INTERVAL_MS + retentionMs;
    case 'dp3t-seed':
      return (record.day + 1) * DP3T_DAY_MS + retentionMs;
    case 'tcn-report':
      return uploadedAt + retentionMs;
  }
}

function startsInFuture(record: DiagnosisRecord, at: SimMillis, config: KeyServerConfig): boolean {
  const latest = at + config.futureSlackMs;
  if (record.protocol === 'gaen-tek') return record.rollingStartIntervalNumber * GAEN_INTERVAL_MS > latest;
  if (record.protocol === 'dp3t-seed') return record.day * DP3T_DAY_MS > latest;
  return false;
}

interface Outcome {
  readonly reason: string;
  /** A lockout failure (a wrong or replayed code), as opposed to a malformed or refused upload. */
  readonly failure: boolean;
}

function rejectUpload(ledger: Ledger, trackingId: string, to: Requester, at: SimMillis, config: KeyServerConfig, outcome: Outcome): Step {
  ledger.countRejection(outcome.reason);
  ledger.remember(trackingId, { state: 'rejected', reason: outcome.reason, records: 0 });
  if (outcome.failure) ledger.lockouts = recordFailure(ledger.lockouts, config.lockout, clientKey(to.from), at).state;
  return { context: {}, effects: reply(to, keysUploadAckCodec.type, keysUploadAckCodec.encode({ trackingId })) };
}

/** The checks that need the records (module header order). */
function refuseRecords(deps: KeyServerDeps, ledger: Ledger, config: KeyServerConfig, records: readonly IdentifiedRecord[], at: SimMillis): string | undefined {
  if (records.some((r) => startsInFuture(r, at, config))) return 'future-key';
  for (const r of records) if (r.protocol === 'tcn-report' && !deps.verifyTcnReport(r.report)) return 'bad-tcn-signature';
  if (ledger.records.size + records.length <= config.maxRecords) return undefined; // far from capacity: no need to count
  // Distinct ids that would enter distribution: not stale, not live already.
  const fresh = new Set<string>();
  for (const r of records) if (!ledger.records.has(r.id) && recordExpiry(r, at, config.retentionMs) > at) fresh.add(r.id);
  if (ledger.records.size + fresh.size > config.maxRecords) return 'capacity';
  return undefined;
}

/** `keys.upload` (module header). */
export function upload(deps: KeyServerDeps, context: KeyServerContext, body: KeysUpload, at: SimMillis, to: Requester): Step {
  const { ledger, config } = context;
  ledger.counters.uploadsReceived++;
  const trackingId = trackingIdFor(deps, ++ledger.uploadSeq);
  const ack = (id: string): Step => ({ context: {}, effects: reply(to, keysUploadAckCodec.type, keysUploadAckCodec.encode({ trackingId: id })) });
  if (body.chaff) {
    // The same work as a real upload up to the decision (parse, code digest), so the ack's timing says nothing.
    readRecords(deps.crypto, body.records, MAX_UPLOAD_RECORDS, 'keys.upload', 'records');
    uploadCodeDigest(deps.crypto, body.code, deps.pepper);
    ledger.counters.chaff++;
    ledger.remember(trackingId, { state: 'accepted', reason: '', records: 0 });
    return ack(trackingId);
  }
  if (lockoutStatus(ledger.lockouts, config.lockout, clientKey(to.from), at).locked) {
    return rejectUpload(ledger, trackingId, to, at, config, { reason: 'locked-out', failure: false });
  }
  const parsed = readRecords(deps.crypto, body.records, MAX_UPLOAD_RECORDS, 'keys.upload', 'records');
  if (!parsed.ok) return rejectUpload(ledger, trackingId, to, at, config, { reason: 'malformed', failure: false });
  const digest = toHex(uploadCodeDigest(deps.crypto, body.code, deps.pepper));
  const code = ledger.codes.get(digest);
  if (code === undefined) return rejectUpload(ledger, trackingId, to, at, config, { reason: 'unknown-code', failure: true });
  const content = contentHash(deps.crypto, body.records);
  if (code.usedAt !== null) {
    if (code.contentHash === content && code.trackingId !== null) {
      ledger.counters.uploadRetries++;
      return ack(code.trackingId);
    }
    return rejectUpload(ledger, trackingId, to, at, config, { reason: 'used', failure: true });
  }
  if (at >= code.expiresAt) return rejectUpload(ledger, trackingId, to, at, config, { reason: 'expired', failure: true });
  const provider = ledger.providers.get(code.providerId);
  if (provider === undefined || (provider.revokedAt !== null && provider.revokedAt <= at)) {
    return rejectUpload(ledger, trackingId, to, at, config, { reason: 'provider-revoked', failure: false });
  }
  const refused = refuseRecords(deps, ledger, config, parsed.value, at);
  if (refused !== undefined) return rejectUpload(ledger, trackingId, to, at, config, { reason: refused, failure: false });

  code.usedAt = at;
  code.trackingId = trackingId;
  code.contentHash = content;
  ledger.lockouts = recordSuccess(ledger.lockouts, config.lockout, clientKey(to.from), at);
  const recordIds: string[] = [];
  for (const record of parsed.value) {
    const expiresAt = recordExpiry(record, at, config.retentionMs);
    if (expiresAt <= at) {
      ledger.counters.recordsStale++;
      continue;
    }
    // The record keeps its `id` field: copying 14 objects per upload without it cost more than it saves.
    ledger.addRecord(record.id, record, expiresAt, at);
    recordIds.push(record.id);
  }
  ledger.addUpload({ trackingId, providerId: code.providerId, at, recordIds, state: 'accepted', reason: '' });
  ledger.counters.uploadsAccepted++;
  ledger.counters.recordsAccepted += recordIds.length;
  return ack(trackingId);
}

/** What `keys.status` answers for `trackingId`. */
export function uploadStatus(context: KeyServerContext, trackingId: string): KeysStatusReply {
  const { ledger } = context;
  const accepted = ledger.uploads.get(trackingId);
  if (accepted !== undefined) {
    const live = accepted.recordIds.filter((id) => ledger.records.has(id)).length;
    const state = accepted.state === 'accepted' && live === 0 && accepted.recordIds.length > 0 ? 'expired' : accepted.state;
    return { trackingId, state, reason: accepted.reason, records: accepted.recordIds.length };
  }
  const remembered = ledger.statuses.get(trackingId);
  if (remembered !== undefined) return { trackingId, ...remembered };
  return { trackingId, state: 'unknown', reason: '', records: 0 };
}

export function status(context: KeyServerContext, trackingId: string, to: Requester): Step {
  const effects = reply(to, keysStatusReplyCodec.type, keysStatusReplyCodec.encode(uploadStatus(context, trackingId)));
  return effects.length === 0 ? NOTHING : { context: {}, effects };
}
