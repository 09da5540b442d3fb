/**
 * The key server's front door (issue 4 "DoS filtering"; docs/decisions/0004,
 * 0006): what it refuses is never journaled, so a flood costs neither a log
 * write nor a machine step. In order:
 *
 *   wrong-channel   an admin command on the phones' `uploads` topic or a phone
 *                   message on `admin` (an MQTT ACL sees topics, not types:
 *                   the type must match the topic it came on)
 *   locked-out      the sender is serving a brute-force lockout (the table is
 *                   the machine's, derived from the log: a restart keeps it)
 *   client-rate     token bucket per sender (`envelope.from`)
 *   source-rate     token bucket per reply inbox (`envelope.replyTo`): a
 *                   sender rotating `from` still needs an inbox it can read,
 *                   and under the secure profile only its owner reads one
 *   aggregate-rate  one bucket for all phone traffic: keyed limiters forget
 *                   (bounded memory), so an attacker with more identities
 *                   than they track is still held to the aggregate
 * The host adds the bound on inputs waiting for the journal (`queue-full`).
 * Buckets live in memory only: a restart refills them, which is harmless.
 * Admin commands are not rate-limited here (the ACL restricts who may send them).
 */
import type { KeyServerContext } from '../../actors/key-server/key-server-state.ts';
import { clientKey } from '../../actors/key-server/submissions.ts';
import { MisuseError } from '../../protocol/errors.ts';
import {
  checkTokenBucketConfig,
  createKeyedLimiter,
  fullBucket,
  limiterTake,
  lockoutStatus,
  take,
  type KeyedLimiter,
  type TokenBucket,
  type TokenBucketConfig,
} from '../../protocol/keyserver/rate-limit.ts';
import type { Envelope } from '../../protocol/wire/envelope.ts';

export interface AdmissionConfig {
  readonly perClient: TokenBucketConfig;
  readonly perSource: TokenBucketConfig;
  readonly aggregate: TokenBucketConfig;
  /** Senders and inboxes each limiter tracks (least recently seen forgotten first). */
  readonly trackedKeys: number;
}

/** A phone uploads once and asks its status a few times: a burst of 10, then one every 5 s. */
export const DEFAULT_ADMISSION_CONFIG: AdmissionConfig = {
  perClient: { capacity: 10, refillPerSecond: 0.2 },
  perSource: { capacity: 10, refillPerSecond: 0.2 },
  aggregate: { capacity: 20_000, refillPerSecond: 10_000 },
  trackedKeys: 100_000,
};

export const PHONE_MESSAGE_TYPES: readonly string[] = ['keys.upload', 'keys.status'];

export interface AdmissionStats {
  readonly refused: Record<string, number>;
  admitted: number;
}

export interface AdmitEvent {
  readonly type: string;
  readonly at: number;
  readonly envelope: Envelope;
}

export class Admission {
  readonly stats: AdmissionStats = { refused: {}, admitted: 0 };
  private clients: KeyedLimiter;
  private sources: KeyedLimiter;
  private aggregate: TokenBucket | undefined;

  constructor(
    private readonly uploadsTopic: string,
    private readonly adminTopic: string,
    readonly config: AdmissionConfig = DEFAULT_ADMISSION_CONFIG,
  ) {
    checkTokenBucketConfig(config.perClient, 'config.perClient');
    checkTokenBucketConfig(config.perSource, 'config.perSource');
    checkTokenBucketConfig(config.aggregate, 'config.aggregate');
    if (!Number.isSafeInteger(config.trackedKeys) || config.trackedKeys < 1) throw new MisuseError('config.trackedKeys', 'must be a positive integer');
    this.clients = createKeyedLimiter(config.trackedKeys);
    this.sources = createKeyedLimiter(config.trackedKeys);
  }

  /** undefined to admit, or the reason to refuse (module header). */
  admit(event: AdmitEvent, topic: string, context: KeyServerContext): string | undefined {
    const reason = this.judge(event, topic, context);
    if (reason === undefined) this.stats.admitted++;
    else this.stats.refused[reason] = (this.stats.refused[reason] ?? 0) + 1;
    return reason;
  }

  private judge(event: AdmitEvent, topic: string, context: KeyServerContext): string | undefined {
    const type = event.type.startsWith('msg.') ? event.type.slice(4) : event.type;
    const phone = PHONE_MESSAGE_TYPES.includes(type);
    if (phone !== (topic === this.uploadsTopic) || (!phone && topic !== this.adminTopic)) return 'wrong-channel';
    if (!phone) return undefined;
    const client = clientKey(event.envelope.from);
    if (lockoutStatus(context.ledger.lockouts, context.config.lockout, client, event.at).locked) return 'locked-out';
    const byClient = limiterTake(this.clients, this.config.perClient, client, event.at);
    this.clients = byClient.state;
    if (!byClient.allowed) return 'client-rate';
    const bySource = limiterTake(this.sources, this.config.perSource, clientKey(event.envelope.replyTo ?? '-'), event.at);
    this.sources = bySource.state;
    if (!bySource.allowed) return 'source-rate';
    const all = take(this.aggregate ?? fullBucket(this.config.aggregate, event.at), this.config.aggregate, event.at);
    this.aggregate = all.bucket;
    return all.allowed ? undefined : 'aggregate-rate';
  }
}
