/**
 * Messages of the diagnosis-key server (issue 4; topics and flows in
 * docs/decisions/0006). Every body is checked field by field (protocol/wire/
 * body.ts); hostile bodies become typed rejections before a machine sees them.
 *
 * Phones → `key-server/<id>/uploads`:
 *   keys.upload  { code, records, chaff, padding } → keys.upload.ack { trackingId }
 *   keys.status  { trackingId }                    → keys.status.reply { trackingId, state, reason, records }
 * Providers and operators → `key-server/<id>/admin` (reply keys.admin.result):
 *   keys.provider.add { providerId }, keys.provider.revoke { providerId, retroactive, since },
 *   keys.codes.register { providerId, digests, lifetimeMs }, keys.upload.withdraw { providerId, trackingId },
 *   keys.server.state {}
 * Anyone → `key-server/<id>/files` (answered by the file responder, not the machine):
 *   keys.file.get { name } → keys.file { name, found, bytes }
 *
 * Replies go to the request envelope's `replyTo` with `corr` = its id.
 *
 * The upload's `code` is parsed here (check symbol included), so a mistyped
 * or random code never reaches the event log; `records` stay raw canonical
 * bytes (distribution-records.ts) until the machine reads them. `chaff`
 * marks a fake upload (accepted and discarded; same size and path as a real
 * one: the client pads both with `padding` to one size bucket).
 */
import { MisuseError, reject, type Verdict } from '../errors.ts';
import { readBody, type BodyReader } from '../wire/body.ts';
import { MessageRegistry, type MessageCodec } from '../wire/messages.ts';
import type { WireValue } from '../wire/msgpack.ts';
import { SEGMENT_PATTERN } from '../wire/topics.ts';
import { DIGEST_HEX_PATTERN, MAX_RECORD_BYTES } from './distribution-records.ts';
import { MAX_PROVIDER_ID_CHARS, MAX_UPLOAD_CODE_LIFETIME_MS, parseUploadCode, UPLOAD_CODE_DIGEST_BYTES, UPLOAD_CODE_MAX_INPUT_CHARS, type UploadCode } from './upload-code.ts';

/** Records per upload: 14 days of daily keys plus today's and slack (Google's EN server allows 30 per publish). */
export const MAX_UPLOAD_RECORDS = 30;
/** Bytes of `records` in one upload: MAX_UPLOAD_RECORDS of the largest record. */
export const MAX_UPLOAD_RECORD_BYTES = MAX_UPLOAD_RECORDS * MAX_RECORD_BYTES;
/** Padding a client may add to reach its size bucket, bytes. */
export const MAX_UPLOAD_PADDING_BYTES = 4096;
/** Code digests registered per message (a provider's batch; the CLI splits larger counts). */
export const MAX_CODES_PER_REGISTER = 1000;
/** Tracking id: 16 bytes as 32 lowercase hex digits (HMAC-derived, unguessable). */
export const TRACKING_ID_PATTERN = /^[0-9a-f]{32}$/;
/** Largest time field, ms (year 9999). */
export const MAX_KEYSERVER_TIME_MS = 253_402_300_799_999;
/** A file in a `keys.file` reply, bytes (a full dump of 1 M GAEN keys is ~23 MB). */
export const MAX_FILE_MESSAGE_BYTES = 64 * 1024 * 1024;
const PROVIDER_ID_PATTERN = new RegExp(SEGMENT_PATTERN.source);
const REASON_PATTERN = /^[a-z0-9-]{0,48}$/;
const DETAIL_PATTERN = /^[^\p{Cc}]{0,512}$/u;

export const UPLOAD_STATES = ['accepted', 'rejected', 'withdrawn', 'expired', 'unknown'] as const;
export type UploadState = (typeof UPLOAD_STATES)[number];

const NO_PADDING = new Uint8Array(0);

export interface KeysUpload {
  readonly code: UploadCode;
  /** Canonical record bytes, concatenated (distribution-records.ts), 1..MAX_UPLOAD_RECORDS records. */
  readonly records: Uint8Array;
  readonly chaff: boolean;
  /** Ignored filler (decoded as empty): the client pads real and chaff uploads to one size bucket. */
  readonly padding: Uint8Array;
}
export interface TrackingRef {
  readonly trackingId: string;
}
export interface KeysStatusReply {
  readonly trackingId: string;
  readonly state: UploadState;
  /** Why it was rejected or withdrawn ('' otherwise). */
  readonly reason: string;
  /** Records the upload put into distribution. */
  readonly records: number;
}
export interface ProviderRef {
  readonly providerId: string;
}
export interface ProviderRevoke {
  readonly providerId: string;
  /** Also withdraw every upload the provider authorized at or after `since`. */
  readonly retroactive: boolean;
  /** ms; ignored (0) when not retroactive. */
  readonly since: number;
}
export interface CodesRegister {
  readonly providerId: string;
  /** uploadCodeDigest of each code, 32 bytes each (the server never sees a code before its upload). */
  readonly digests: readonly Uint8Array[];
  /** The codes expire this long after the server registers them (its clock, which the log records). */
  readonly lifetimeMs: number;
}
export interface UploadWithdraw {
  readonly providerId: string;
  readonly trackingId: string;
}
export interface AdminResult {
  readonly ok: boolean;
  /** Machine-readable reason when !ok ('' when ok). */
  readonly reason: string;
  readonly detail: string;
  /** Uploads, records or codes the command affected. */
  readonly count: number;
  /** keys.server.state: hex SHA-256 of the server's canonical state ('' otherwise). */
  readonly stateDigest: string;
}
export interface FileGet {
  readonly name: string;
}
export interface FileReply {
  readonly name: string;
  readonly found: boolean;
  readonly bytes: Uint8Array;
}

const providerId = (r: BodyReader): string => r.string('providerId', PROVIDER_ID_PATTERN, MAX_PROVIDER_ID_CHARS);
const trackingId = (r: BodyReader): string => r.string('trackingId', TRACKING_ID_PATTERN, 32);
const time = (r: BodyReader, name: string): number => r.int(name, 0, MAX_KEYSERVER_TIME_MS);

function codec<T>(type: string, read: (r: BodyReader) => T, write: (value: T) => WireValue): MessageCodec<T> {
  return {
    type,
    decode: (body) => readBody(type, body, read),
    encode: (value) => {
      const wire = write(value);
      const check = readBody(type, wire, read);
      if (!check.ok) throw new MisuseError(`value.${check.field ?? ''}`, `${type}: ${check.detail}`);
      return wire;
    },
  };
}

/** Decode an upload: fields, then the code's syntax and check symbol (reason `bad-code`, field `code`). */
function decodeUpload(body: WireValue): Verdict<KeysUpload> {
  const fields = readBody('keys.upload', body, (r) => ({
    code: r.string('code', /^[^\p{Cc}]+$/u, UPLOAD_CODE_MAX_INPUT_CHARS),
    records: r.bytes('records', 1, MAX_UPLOAD_RECORD_BYTES),
    chaff: r.bool('chaff'),
    padding: r.bytes('padding', 0, MAX_UPLOAD_PADDING_BYTES),
  }));
  if (!fields.ok) return fields;
  const code = parseUploadCode(fields.value.code);
  if (!code.ok) return reject('keys.upload', 'bad-code', `${code.reason}: ${code.detail}`, 'code');
  // Padding only shapes the wire size; dropping it here keeps it out of the event log.
  return { ok: true, value: { ...fields.value, code: code.value, padding: NO_PADDING } };
}

export const keysUploadCodec: MessageCodec<KeysUpload> = {
  type: 'keys.upload',
  decode: decodeUpload,
  encode: (value) => {
    const wire = { code: value.code.text, records: value.records, chaff: value.chaff, padding: value.padding };
    const check = decodeUpload(wire);
    if (!check.ok) throw new MisuseError(`value.${check.field ?? ''}`, `keys.upload: ${check.detail}`);
    return wire;
  },
};

export const keysUploadAckCodec = codec<TrackingRef>('keys.upload.ack', (r) => ({ trackingId: trackingId(r) }), (v) => ({ trackingId: v.trackingId }));
export const keysStatusCodec = codec<TrackingRef>('keys.status', (r) => ({ trackingId: trackingId(r) }), (v) => ({ trackingId: v.trackingId }));
export const keysStatusReplyCodec = codec<KeysStatusReply>(
  'keys.status.reply',
  (r) => ({ trackingId: trackingId(r), state: r.oneOf('state', UPLOAD_STATES), reason: r.string('reason', REASON_PATTERN, 48), records: r.int('records', 0, MAX_UPLOAD_RECORDS) }),
  (v) => ({ trackingId: v.trackingId, state: v.state, reason: v.reason, records: v.records }),
);
export const providerAddCodec = codec<ProviderRef>('keys.provider.add', (r) => ({ providerId: providerId(r) }), (v) => ({ providerId: v.providerId }));
export const providerRevokeCodec = codec<ProviderRevoke>(
  'keys.provider.revoke',
  (r) => ({ providerId: providerId(r), retroactive: r.bool('retroactive'), since: time(r, 'since') }),
  (v) => ({ providerId: v.providerId, retroactive: v.retroactive, since: v.since }),
);
function decodeCodesRegister(body: WireValue): Verdict<CodesRegister> {
  const fields = readBody('keys.codes.register', body, (r) => ({
    providerId: providerId(r),
    digests: r.bytes('digests', UPLOAD_CODE_DIGEST_BYTES, UPLOAD_CODE_DIGEST_BYTES * MAX_CODES_PER_REGISTER),
    lifetimeMs: r.int('lifetimeMs', 1, MAX_UPLOAD_CODE_LIFETIME_MS),
  }));
  if (!fields.ok) return fields;
  const packed = fields.value.digests;
  if (packed.length % UPLOAD_CODE_DIGEST_BYTES !== 0) return reject('keys.codes.register', 'field-length', `expected a multiple of ${UPLOAD_CODE_DIGEST_BYTES} bytes`, 'digests');
  const digests: Uint8Array[] = [];
  for (let at = 0; at < packed.length; at += UPLOAD_CODE_DIGEST_BYTES) digests.push(packed.slice(at, at + UPLOAD_CODE_DIGEST_BYTES));
  return { ok: true, value: { providerId: fields.value.providerId, digests, lifetimeMs: fields.value.lifetimeMs } };
}

export const codesRegisterCodec: MessageCodec<CodesRegister> = {
  type: 'keys.codes.register',
  decode: decodeCodesRegister,
  encode: (value) => {
    const packed = new Uint8Array(value.digests.length * UPLOAD_CODE_DIGEST_BYTES);
    value.digests.forEach((d, i) => packed.set(d, i * UPLOAD_CODE_DIGEST_BYTES));
    const wire = { providerId: value.providerId, digests: packed, lifetimeMs: value.lifetimeMs };
    const check = decodeCodesRegister(wire);
    if (!check.ok) throw new MisuseError(`value.${check.field ?? ''}`, `keys.codes.register: ${check.detail}`);
    if (check.value.digests.length !== value.digests.length) throw new MisuseError('value.digests', `must be ${UPLOAD_CODE_DIGEST_BYTES}-byte digests`);
    return wire;
  },
};
export const uploadWithdrawCodec = codec<UploadWithdraw>(
  'keys.upload.withdraw',
  (r) => ({ providerId: providerId(r), trackingId: trackingId(r) }),
  (v) => ({ providerId: v.providerId, trackingId: v.trackingId }),
);
export const serverStateCodec = codec<Record<string, never>>('keys.server.state', () => ({}), () => ({}));
export const adminResultCodec = codec<AdminResult>(
  'keys.admin.result',
  (r) => ({
    ok: r.bool('ok'),
    reason: r.string('reason', REASON_PATTERN, 48),
    detail: r.string('detail', DETAIL_PATTERN, 512),
    count: r.int('count', 0, Number.MAX_SAFE_INTEGER),
    stateDigest: r.string('stateDigest', /^(?:[0-9a-f]{64})?$/, 64),
  }),
  (v) => ({ ok: v.ok, reason: v.reason, detail: v.detail, count: v.count, stateDigest: v.stateDigest }),
);
export const fileGetCodec = codec<FileGet>('keys.file.get', (r) => ({ name: r.string('name', DIGEST_HEX_PATTERN, 64) }), (v) => ({ name: v.name }));
export const fileReplyCodec = codec<FileReply>(
  'keys.file',
  (r) => ({ name: r.string('name', DIGEST_HEX_PATTERN, 64), found: r.bool('found'), bytes: r.bytes('bytes', 0, MAX_FILE_MESSAGE_BYTES) }),
  (v) => ({ name: v.name, found: v.found, bytes: v.bytes }),
);

/** Inputs of the key-server machine (bodies it may receive). */
export const KEY_SERVER_INPUT_CODECS = [keysUploadCodec, keysStatusCodec, providerAddCodec, providerRevokeCodec, codesRegisterCodec, uploadWithdrawCodec, serverStateCodec] as const;

/** Registry of every key-server message (inputs and replies). */
export function keyServerMessages(registry = new MessageRegistry()): MessageRegistry {
  const codecs: readonly MessageCodec<unknown>[] = [...KEY_SERVER_INPUT_CODECS, keysUploadAckCodec, keysStatusReplyCodec, adminResultCodec, fileGetCodec, fileReplyCodec];
  for (const c of codecs) registry.register(c);
  return registry;
}
