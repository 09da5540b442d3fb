/**
 * Outgoing messages of the host: a `bus.send` effect becomes an envelope
 * (DESIGN.md "Wire and topics") with a per-actor unique id, and a
 * `blob.publish` writes its blobs before its announcement goes out.
 */
import type { BlobPublishEffect, BusSendEffect } from '../../actors/effects.ts';
import type { BlobStore } from '../../actors/ports.ts';
import { MisuseError } from '../../protocol/errors.ts';
import { encodeEnvelope, ENVELOPE_VERSION } from '../../protocol/wire/envelope.ts';

export interface Origin {
  /** The actor id: first part of its envelope ids. */
  readonly id: string;
  /** `<role>/<actorId>`, the envelope's `from`. */
  readonly from: string;
  /** The actor's count of messages sent: makes ids unique within one instant. */
  readonly seq: number;
  readonly now: number;
}

export function outgoingEnvelope(effect: BusSendEffect, origin: Origin): Uint8Array {
  return encodeEnvelope({
    v: ENVELOPE_VERSION,
    type: effect.msgType,
    id: `${origin.id}.${origin.now}.${origin.seq}`,
    from: origin.from,
    at: origin.now,
    ...(effect.replyTo !== undefined ? { replyTo: effect.replyTo } : {}),
    ...(effect.corr !== undefined ? { corr: effect.corr } : {}),
    body: effect.body,
  });
}

/** Write every blob (in parallel), then — only once all are durable — send the announcement. */
export async function publishBlobs(blobs: BlobStore | undefined, effect: BlobPublishEffect, announce: (send: BusSendEffect) => Promise<void>, address: string): Promise<void> {
  if (blobs === undefined) throw new MisuseError('blobs', `${address} published blobs but the host has no blob store`);
  await Promise.all(effect.blobs.map((blob) => blobs.put(blob.name, blob.bytes)));
  await announce(effect.announce);
}
