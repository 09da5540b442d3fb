/**
 * Message types: every envelope `type` has a codec that checks every field of
 * its body (type, length, range). The host decodes a body with the registry
 * before a machine sees it, so machines only ever get well-formed bodies.
 */
import { MisuseError, reject, type Verdict } from '../errors.ts';
import type { WireValue } from './msgpack.ts';

export interface MessageCodec<T> {
  /** Envelope `type`, e.g. `demo.heard`. */
  readonly type: string;
  /** Check a received body; never throws. */
  decode(body: WireValue): Verdict<T>;
  /** Build the wire body; throws MisuseError on a malformed value. */
  encode(value: T): WireValue;
}

export class MessageRegistry {
  private readonly codecs = new Map<string, MessageCodec<unknown>>();

  register<T>(codec: MessageCodec<T>): this {
    if (this.codecs.has(codec.type)) throw new MisuseError('codec.type', `${codec.type} is registered twice`);
    this.codecs.set(codec.type, codec);
    return this;
  }

  has(type: string): boolean {
    return this.codecs.has(type);
  }

  /** Decode the body of a message of `type`; unknown types are rejected explicitly. */
  decodeBody(type: string, body: WireValue): Verdict<unknown> {
    const codec = this.codecs.get(type);
    if (codec === undefined) return reject('message', 'unknown-type', `no codec for message type ${JSON.stringify(type)}`, 'type');
    return codec.decode(body);
  }
}
