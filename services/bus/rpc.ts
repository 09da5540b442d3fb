/**
 * Request/reply over any Bus with envelope v1's `replyTo`/`corr` (MQTT 3.1.1
 * has no response topic). The requester subscribes one inbox topic; each
 * request carries `replyTo: inbox` and a fresh `corr`; the responder answers
 * with `replyTo(bus, request, reply)`, which copies `corr` into the reply.
 *
 * Hostile or stray replies never throw: undecodable bytes are counted as
 * `malformed`, replies without a pending `corr` (late after a timeout,
 * duplicated, or forged) as `unmatched`; both are dropped.
 */
import { randomUUID } from 'node:crypto';
import type { Bus, PublishOptions, Qos, Subscription } from '../../actors/ports.ts';
import { MisuseError, type Rejection } from '../../protocol/errors.ts';
import { ENVELOPE_VERSION, decodeEnvelope, encodeEnvelope, type Envelope } from '../../protocol/wire/envelope.ts';
import { validateTopic } from './shared.ts';

/** A request timed out: no reply with its `corr` arrived within `timeoutMs`. */
export class RpcTimeoutError extends Error {
  override readonly name = 'RpcTimeoutError';
  constructor(
    readonly topic: string,
    readonly corr: string,
    readonly timeoutMs: number,
  ) {
    super(`no reply to ${corr} on ${topic} within ${timeoutMs} ms`);
  }
}

/** The Rpc was closed while the request was pending. */
export class RpcClosedError extends Error {
  override readonly name = 'RpcClosedError';
  constructor(readonly corr: string) {
    super(`rpc closed while ${corr} was pending`);
  }
}

export interface RpcOptions {
  /** The requester's actor address, e.g. `host/h1`: the default `from` of requests. */
  readonly address: string;
  /** Topic replies come back on (subscribed by createRpc). */
  readonly inbox: string;
  /** Default 5000. */
  readonly timeoutMs?: number;
  /** Random prefix of correlation ids (called once; default: 12 hex digits of a UUID). */
  readonly idFactory?: () => string;
  /** QoS of requests and of the inbox subscription (default 1: backend traffic). */
  readonly qos?: Qos;
  /** Called for every dropped reply (malformed or unmatched). */
  readonly onDropped?: (reason: 'malformed' | 'unmatched', detail: Rejection | Envelope) => void;
}

/** A request: an envelope without `replyTo`/`corr` (added here); `v` and `from` are optional. */
export type RpcRequest = Omit<Envelope, 'v' | 'from' | 'replyTo' | 'corr'> & { readonly v?: 1; readonly from?: string };

export interface RpcStats {
  /** Requests sent. */
  sent: number;
  replied: number;
  timedOut: number;
  /** Inbox messages that were not a valid envelope. */
  malformed: number;
  /** Valid envelopes without a pending `corr` (late, duplicate, forged). */
  unmatched: number;
}

export interface Rpc {
  readonly stats: Readonly<RpcStats>;
  /** Publish `envelope` to `topic`; resolves with the reply or rejects with RpcTimeoutError. */
  request(topic: string, envelope: RpcRequest, options?: { readonly timeoutMs?: number }): Promise<Envelope>;
  /** Unsubscribe the inbox; pending requests reject with RpcClosedError. Idempotent. */
  close(): Promise<void>;
}

interface Pending {
  readonly resolve: (reply: Envelope) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export async function createRpc(bus: Bus, options: RpcOptions): Promise<Rpc> {
  validateTopic(options.inbox, 'options.inbox');
  const timeoutMs = options.timeoutMs ?? 5000;
  if (!(timeoutMs > 0)) throw new MisuseError('options.timeoutMs', 'must be positive');
  const qos = options.qos ?? 1;
  const prefix = (options.idFactory ?? (() => randomUUID().replaceAll('-', '').slice(0, 12)))();
  const pending = new Map<string, Pending>();
  const stats: RpcStats = { sent: 0, replied: 0, timedOut: 0, malformed: 0, unmatched: 0 };
  let counter = 0;
  let closed = false;

  const onReply = (_topic: string, payload: Uint8Array): void => {
    const verdict = decodeEnvelope(payload);
    if (!verdict.ok) {
      stats.malformed++;
      options.onDropped?.('malformed', verdict);
      return;
    }
    const reply = verdict.value;
    const waiting = reply.corr === undefined ? undefined : pending.get(reply.corr);
    if (reply.corr === undefined || waiting === undefined) {
      stats.unmatched++;
      options.onDropped?.('unmatched', reply);
      return;
    }
    pending.delete(reply.corr);
    clearTimeout(waiting.timer);
    stats.replied++;
    waiting.resolve(reply);
  };
  const subscription: Subscription = await bus.subscribe(options.inbox, onReply, { qos });

  const request = (topic: string, envelope: RpcRequest, opts: { readonly timeoutMs?: number } = {}): Promise<Envelope> => {
    if (closed) return Promise.reject(new MisuseError('rpc', 'closed'));
    const corr = `${prefix}.${(++counter).toString(36)}`;
    const { type, id, at, body } = envelope;
    // explicit fields, not a spread: this is the hot path of every request
    const bytes = encodeEnvelope({ v: ENVELOPE_VERSION, type, id, from: envelope.from ?? options.address, at, replyTo: options.inbox, corr, body });
    const wait = opts.timeoutMs ?? timeoutMs;
    const reply = new Promise<Envelope>((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(corr);
        stats.timedOut++;
        reject(new RpcTimeoutError(topic, corr, wait));
      }, wait);
      pending.set(corr, { resolve, reject, timer });
    });
    stats.sent++;
    // not awaited: the reply may overtake the PUBACK; a failed publish rejects the request
    bus.publish(topic, bytes, { qos }).catch((error: unknown) => {
      const entry = pending.get(corr);
      pending.delete(corr);
      if (entry === undefined) return;
      clearTimeout(entry.timer);
      entry.reject(error instanceof Error ? error : new Error(String(error)));
    });
    return reply;
  };

  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    for (const [corr, entry] of pending) {
      clearTimeout(entry.timer);
      entry.reject(new RpcClosedError(corr));
    }
    pending.clear();
    await subscription.unsubscribe();
  };

  return { stats, request, close };
}

/** A reply: the envelope fields the responder chooses (`corr` comes from the request). */
export type RpcReply = Omit<Envelope, 'v' | 'replyTo' | 'corr'> & { readonly v?: 1 };

/**
 * Answer `request` on its `replyTo` topic, carrying its `corr`. Returns false
 * (publishes nothing) when the request has no usable `replyTo`/`corr` — hostile
 * input is dropped, never thrown. Default QoS 1.
 */
export function replyTo(bus: Bus, request: Envelope, reply: RpcReply, options: PublishOptions = { qos: 1 }): Promise<boolean> {
  const { replyTo: topic, corr } = request;
  if (topic === undefined || corr === undefined) return Promise.resolve(false);
  const { type, id, from, at, body } = reply;
  const bytes = encodeEnvelope({ v: ENVELOPE_VERSION, type, id, from, at, corr, body });
  try {
    validateTopic(topic, 'replyTo');
  } catch {
    return Promise.resolve(false);
  }
  // a MisuseError here means replyTo named something we may not publish to (e.g. a bus control topic)
  return bus.publish(topic, bytes, options).then(
    () => true,
    (error: unknown) => (error instanceof MisuseError ? false : Promise.reject(error instanceof Error ? error : new Error(String(error)))),
  );
}
