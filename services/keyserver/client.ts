/**
 * A key-server client over the bus (request/reply, services/bus/rpc.ts):
 * what a phone, a provider's tool and the CLI use. Uploads are padded to a
 * size bucket (records + padding = a multiple of UPLOAD_SIZE_BUCKET_BYTES),
 * real and chaff alike, so their size says nothing; chaff carries random
 * records and a random well-formed code.
 */
import { randomBytes } from 'node:crypto';
import type { Bus } from '../../actors/ports.ts';
import { nodeSuite } from '../crypto/node.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import { canonicalRecordBytes, type DiagnosisRecord } from '../../protocol/keyserver/distribution-records.ts';
import {
  adminResultCodec,
  fileGetCodec,
  fileReplyCodec,
  keysStatusCodec,
  keysStatusReplyCodec,
  keysUploadAckCodec,
  keysUploadCodec,
  MAX_CODES_PER_REGISTER,
  MAX_UPLOAD_PADDING_BYTES,
  type AdminResult,
  type FileReply,
  type KeysStatusReply,
} from '../../protocol/keyserver/messages.ts';
import { formatUploadCode, issueUploadCode, parseUploadCode, UPLOAD_CODE_BYTES, type IssuedUploadCode } from '../../protocol/keyserver/upload-code.ts';
import type { MessageCodec } from '../../protocol/wire/messages.ts';
import type { WireValue } from '../../protocol/wire/msgpack.ts';
import { actorTopic, keyServerUploadTopic, parseActorAddress } from '../../protocol/wire/topics.ts';
import { MisuseError } from '../../protocol/errors.ts';
import { createRpc, type Rpc } from '../bus/rpc.ts';
import { adminTopic } from './service.ts';

/** Uploads are padded to a multiple of this many bytes (records + padding). */
export const UPLOAD_SIZE_BUCKET_BYTES = 1024;

export class KeyServerReplyError extends Error {
  override readonly name = 'KeyServerReplyError';
}

export function packRecords(records: readonly DiagnosisRecord[]): Uint8Array {
  return concat(records.map(canonicalRecordBytes));
}

export function paddingFor(recordBytes: number): Uint8Array {
  const padded = Math.ceil(recordBytes / UPLOAD_SIZE_BUCKET_BYTES) * UPLOAD_SIZE_BUCKET_BYTES;
  return new Uint8Array(Math.min(MAX_UPLOAD_PADDING_BYTES, padded - recordBytes));
}

export interface KeyServerClientOptions {
  readonly serverId: string;
  /** `<role>/<id>` of this client, e.g. `phone/p17`. */
  readonly address: string;
  /** Topic replies come back on (its inbox). */
  readonly inbox: string;
  readonly timeoutMs?: number;
}

export class KeyServerClient {
  private constructor(
    private readonly rpc: Rpc,
    private readonly options: KeyServerClientOptions,
  ) {}

  static async connect(bus: Bus, options: KeyServerClientOptions): Promise<KeyServerClient> {
    const rpc = await createRpc(bus, { address: options.address, inbox: options.inbox, timeoutMs: options.timeoutMs ?? 10_000 });
    return new KeyServerClient(rpc, options);
  }

  private n = 0;

  /** Uploads and status queries go to this phone's own topic (keyServerUploadTopic). */
  private uploadTopic(): string {
    const actor = parseActorAddress(this.options.address);
    if (actor?.role !== 'phone') throw new MisuseError('options.address', 'only a phone (phone/<id>) uploads or asks an upload status');
    return keyServerUploadTopic(this.options.serverId, actor.actorId);
  }

  private async call<T>(topic: string, type: string, body: WireValue, replyCodec: MessageCodec<T>): Promise<T> {
    const reply = await this.rpc.request(topic, { type, id: `${this.options.address}.${++this.n}`, at: Date.now(), body });
    if (reply.type !== replyCodec.type) throw new KeyServerReplyError(`expected ${replyCodec.type}, got ${reply.type}`);
    const decoded = replyCodec.decode(reply.body);
    if (!decoded.ok) throw new KeyServerReplyError(`${decoded.reason}: ${decoded.detail}`);
    return decoded.value;
  }

  /** Upload records under a printed code; resolves with the tracking id (the request is durable). */
  upload(code: string, records: readonly DiagnosisRecord[] | Uint8Array, chaff = false): Promise<string> {
    const parsed = parseUploadCode(code);
    if (!parsed.ok) throw new KeyServerReplyError(`bad code: ${parsed.detail}`);
    const bytes = records instanceof Uint8Array ? records : packRecords(records);
    const body = keysUploadCodec.encode({ code: parsed.value, records: bytes, chaff, padding: paddingFor(bytes.length) });
    return this.call(this.uploadTopic(), keysUploadCodec.type, body, keysUploadAckCodec).then((ack) => ack.trackingId);
  }

  /** A chaff upload shaped like `records` (same count and size), with a random code and random bytes. */
  chaff(like: readonly DiagnosisRecord[]): Promise<string> {
    const fake = like.map((r): DiagnosisRecord => (r.protocol === 'gaen-tek' ? { ...r, key: Uint8Array.from(randomBytes(16)) } : r.protocol === 'dp3t-seed' ? { ...r, seed: Uint8Array.from(randomBytes(32)) } : { ...r, report: Uint8Array.from(randomBytes(r.report.length)) }));
    return this.upload(formatUploadCode(Uint8Array.from(randomBytes(UPLOAD_CODE_BYTES))), fake, true);
  }

  status(trackingId: string): Promise<KeysStatusReply> {
    return this.call(this.uploadTopic(), keysStatusCodec.type, keysStatusCodec.encode({ trackingId }), keysStatusReplyCodec);
  }

  /** An admin command (`keys.provider.add`, …) with its wire body. */
  admin(type: string, body: WireValue): Promise<AdminResult> {
    return this.call(adminTopic(this.options.serverId), type, body, adminResultCodec);
  }

  /**
   * Issue `count` codes for a provider: CSPRNG codes, peppered digests
   * registered (in batches) before any text is returned — a printed code is
   * always one the server knows.
   */
  async issueCodes(providerId: string, count: number, pepper: Uint8Array, lifetimeMs: number, now: number, crypto: CryptoSuite = nodeSuite): Promise<IssuedUploadCode[]> {
    const issued: IssuedUploadCode[] = [];
    for (let start = 0; start < count; start += MAX_CODES_PER_REGISTER) {
      const batch = Array.from({ length: Math.min(MAX_CODES_PER_REGISTER, count - start) }, () =>
        issueUploadCode(crypto, { providerId, randomBytes: Uint8Array.from(randomBytes(UPLOAD_CODE_BYTES)), pepper, issuedAt: now, lifetimeMs }),
      );
      const result = await this.admin('keys.codes.register', { providerId, digests: concat(batch.map((c) => c.record.digest)), lifetimeMs });
      if (!result.ok) throw new KeyServerReplyError(`${result.reason}: ${result.detail}`);
      issued.push(...batch);
    }
    return issued;
  }

  fetchFile(name: string): Promise<FileReply> {
    return this.call(actorTopic('key-server', this.options.serverId, 'files'), fileGetCodec.type, fileGetCodec.encode({ name }), fileReplyCodec);
  }

  close(): Promise<void> {
    return this.rpc.close();
  }
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
