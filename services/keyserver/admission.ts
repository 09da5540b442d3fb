/**
 * The key server's front door (issue 4 "DoS filtering"; docs/decisions/0004,
 * 0006): what it refuses is never journaled, so a flood costs neither a log
 * write nor a machine step. In order:
 *
 *   wrong-channel   a phone message anywhere but a phone's upload topic
 *                   (`key-server/<id>/uploads/<phoneId>`), an admin command
 *                   anywhere but `key-server/<id>/admin` (an MQTT ACL sees
 *                   topics, not types: the type must match the topic)
 *   foreign-sender  `envelope.from` is not `phone/<phoneId>` of the topic
 *   foreign-inbox   `replyTo` is not that phone's own inbox
 *                   — under the secure profile the ACL lets a phone publish
 *                   only to its own upload topic, so with these two checks
 *                   no one can act (or be locked out, or be rate-limited) as
 *                   another phone, nor aim replies at another's inbox
 *   locked-out      the phone is serving a brute-force lockout (the table is
 *                   the machine's, derived from the log: a restart keeps it)
 *   client-rate     token bucket per phone
 *   aggregate-rate  one bucket for all phone traffic: the keyed limiter
 *                   forgets (bounded memory), so an attacker with more
 *                   identities than it tracks is still held to the aggregate
 * Both buckets are checked before either is spent: a refused message costs
 * the phone no token. The host adds the bound on inputs waiting for the
 * journal (`queue-full`). Buckets live in memory only: a restart refills
 * them, which is harmless. Admin commands are not rate-limited here (the ACL
 * restricts who may send them).
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
import { inboxTopic } from '../../protocol/wire/topics.ts';

export interface AdmissionConfig {
  readonly perClient: TokenBucketConfig;
  readonly aggregate: TokenBucketConfig;
  /** Phones the per-phone limiter tracks (least recently seen forgotten first). */
  readonly trackedKeys: number;
}

/** A phone uploads once and asks its status a few times: a burst of 10, then one every 5 s. */
export const DEFAULT_ADMISSION_CONFIG: AdmissionConfig = {
  perClient: { capacity: 10, refillPerSecond: 0.2 },
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
  private aggregate: TokenBucket | undefined;
  private readonly uploadsPrefix: string;

  constructor(
    uploadsTopic: string,
    private readonly adminTopic: string,
    readonly config: AdmissionConfig = DEFAULT_ADMISSION_CONFIG,
  ) {
    checkTokenBucketConfig(config.perClient, 'config.perClient');
    checkTokenBucketConfig(config.aggregate, 'config.aggregate');
    if (!Number.isSafeInteger(config.trackedKeys) || config.trackedKeys < 1) throw new MisuseError('config.trackedKeys', 'must be a positive integer');
    this.clients = createKeyedLimiter(config.trackedKeys);
    this.uploadsPrefix = `${uploadsTopic}/`;
  }

  /** Phones the per-phone limiter holds now (bounded by config.trackedKeys). */
  get trackedClients(): number {
    return this.clients.size;
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
    const phoneId = topic.startsWith(this.uploadsPrefix) ? topic.slice(this.uploadsPrefix.length) : undefined;
    if (!PHONE_MESSAGE_TYPES.includes(type)) return topic === this.adminTopic ? undefined : 'wrong-channel';
    if (phoneId === undefined) return 'wrong-channel';
    if (event.envelope.from !== `phone/${phoneId}`) return 'foreign-sender';
    if (event.envelope.replyTo !== undefined && event.envelope.replyTo !== inboxTopic('phone', phoneId)) return 'foreign-inbox';
    const client = clientKey(event.envelope.from);
    if (lockoutStatus(context.ledger.lockouts, context.config.lockout, client, event.at).locked) return 'locked-out';
    const byClient = limiterTake(this.clients, this.config.perClient, client, event.at);
    const all = take(this.aggregate ?? fullBucket(this.config.aggregate, event.at), this.config.aggregate, event.at);
    if (!byClient.allowed) return 'client-rate';
    if (!all.allowed) return 'aggregate-rate';
    this.clients = byClient.state;
    this.aggregate = all.bucket;
    return undefined;
  }
}
