/**
 * The read side of distribution (issue 4: "reads must stay up"): answers
 * `keys.file.get { name }` on `key-server/<id>/files` with `keys.file` from
 * the BlobStore — the same directory a static web server or CDN serves. It
 * is not the key-server machine: reads are never journaled and keep working
 * while the writer is busy, replaying or restarting.
 *
 * Bounded: a per-sender token bucket and at most `maxInFlight` reads at once;
 * what exceeds either is dropped and counted (the client's fetch timer
 * retries). Hostile envelopes and bodies are typed rejections, counted.
 */
import type { BlobStore, Bus, Logger, Scheduler, Subscription } from '../../actors/ports.ts';
import { fileGetCodec, fileReplyCodec } from '../../protocol/keyserver/messages.ts';
import { createKeyedLimiter, limiterTake, type KeyedLimiter, type TokenBucketConfig } from '../../protocol/keyserver/rate-limit.ts';
import { decodeEnvelope, encodeEnvelope, ENVELOPE_VERSION } from '../../protocol/wire/envelope.ts';
import { actorAddress, actorTopic, isTopicName } from '../../protocol/wire/topics.ts';

export interface FileResponderOptions {
  readonly serverId: string;
  readonly bus: Bus;
  readonly blobs: BlobStore;
  readonly scheduler: Scheduler;
  readonly logger: Logger;
  /** Per sender; default a burst of 200 files, then 20/s (a client catching up fetches a full dump and ~96 deltas). */
  readonly perClient?: TokenBucketConfig;
  readonly maxInFlight?: number;
  readonly trackedKeys?: number;
}

export interface FileResponderStats {
  served: number;
  missing: number;
  readonly rejected: Record<string, number>;
}

export class FileResponder {
  readonly stats: FileResponderStats = { served: 0, missing: 0, rejected: {} };
  private limiter: KeyedLimiter;
  private inFlight = 0;
  private sent = 0;
  private subscription: Subscription | undefined;
  private readonly pending = new Set<Promise<void>>();
  private readonly perClient: TokenBucketConfig;
  private readonly maxInFlight: number;
  private readonly address: string;

  constructor(private readonly options: FileResponderOptions) {
    this.perClient = options.perClient ?? { capacity: 200, refillPerSecond: 20 };
    this.maxInFlight = options.maxInFlight ?? 64;
    this.limiter = createKeyedLimiter(options.trackedKeys ?? 100_000);
    this.address = actorAddress('key-server', options.serverId);
  }

  get topic(): string {
    return actorTopic('key-server', this.options.serverId, 'files');
  }

  async start(): Promise<void> {
    this.subscription = await this.options.bus.subscribe(this.topic, (_t, payload) => this.handle(payload), { qos: 1 });
  }

  async stop(): Promise<void> {
    await this.subscription?.unsubscribe();
    await Promise.all([...this.pending]);
  }

  private refuse(reason: string): void {
    this.stats.rejected[reason] = (this.stats.rejected[reason] ?? 0) + 1;
  }

  private handle(payload: Uint8Array): void {
    const envelope = decodeEnvelope(payload);
    if (!envelope.ok) return this.refuse(`envelope.${envelope.reason}`);
    const { replyTo, type, from, id, corr } = envelope.value;
    if (type !== fileGetCodec.type) return this.refuse('unknown-type');
    const body = fileGetCodec.decode(envelope.value.body);
    if (!body.ok) return this.refuse(`body.${body.reason}`);
    if (replyTo === undefined || !isTopicName(replyTo)) return this.refuse('no-reply-to');
    const now = this.options.scheduler.now();
    const taken = limiterTake(this.limiter, this.perClient, from.slice(0, 256) || '-', now);
    this.limiter = taken.state;
    if (!taken.allowed) return this.refuse('client-rate');
    if (this.inFlight >= this.maxInFlight) return this.refuse('busy');
    this.inFlight++;
    const work = this.serve(body.value.name, replyTo, corr ?? id).finally(() => {
      this.inFlight--;
      this.pending.delete(work);
    });
    this.pending.add(work);
  }

  private async serve(name: string, replyTo: string, corr: string): Promise<void> {
    try {
      const bytes = await this.options.blobs.get(name);
      if (bytes === undefined) this.stats.missing++;
      else this.stats.served++;
      const now = this.options.scheduler.now();
      const reply = encodeEnvelope({
        v: ENVELOPE_VERSION,
        type: fileReplyCodec.type,
        id: `${this.options.serverId}.files.${now}.${this.sent++}`,
        from: this.address,
        at: now,
        corr,
        body: fileReplyCodec.encode({ name, found: bytes !== undefined, bytes: bytes ?? new Uint8Array(0) }),
      });
      await this.options.bus.publish(replyTo, reply, { qos: 1 });
    } catch (err) {
      this.refuse('io');
      this.options.logger.warn('file request failed', { name, error: err instanceof Error ? err.message : String(err) });
    }
  }
}
