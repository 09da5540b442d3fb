/**
 * The key client's rules as plain functions (the chart and the reasons are in
 * key-client.ts): every reducer takes the whole context and returns the whole
 * next context plus the effects to emit, in order.
 */
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import { ensure } from '../../protocol/errors.ts';
import {
  applyFile,
  DEFAULT_CLIENT_LIMITS,
  initialDistributionClientState,
  planFetch,
  type DistributionClientState,
} from '../../protocol/keyserver/distribution-client.ts';
import type { FileName } from '../../protocol/keyserver/distribution-file.ts';
import type { DistributionIndex } from '../../protocol/keyserver/distribution-index.ts';
import { openDistributionFile } from '../../protocol/keyserver/distribution-signing.ts';
import { fileGetCodec, type FileReply } from '../../protocol/keyserver/messages.ts';
import { actorTopic, inboxTopic, isRole, SEGMENT_PATTERN, type Role } from '../../protocol/wire/topics.ts';
import { timerSet, withoutFiredTimer, withoutTimer, withTimer, type Effect, type TimedContext } from '../effects.ts';
import type { SimMillis } from '../ports.ts';

export const FETCH_TIMER = 'fetch';
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_RETRIES = 5;

export interface KeyClientDeps {
  readonly crypto: CryptoSuite;
  /** The server's signing keys by key id (SEC1 P-256 points). */
  readonly publicKeys: ReadonlyMap<string, Uint8Array>;
}

export interface KeyClientInput {
  /** The key server followed: its index is `keys/<serverId>`, its files `key-server/<serverId>/files`. */
  readonly serverId: string;
  /** This actor's id: replies come to `<role>/<clientId>/inbox`. */
  readonly clientId: string;
  readonly role?: Role;
  /** Wait this long for a `keys.file` before re-sending the request. */
  readonly requestTimeoutMs?: number;
  /** Re-sends of one request before giving up until the next index. */
  readonly maxRetries?: number;
  /** Most records held (applyFile's limit). */
  readonly maxRecords?: number;
}

/** The one request in flight. */
export interface PendingFetch {
  readonly name: FileName;
  /** `<clientId>.<n>`, sent as the request's corr — for traces only: replies are matched by name. */
  readonly requestId: string;
  readonly deadline: SimMillis;
  /** Sends of this request so far (1 + retries). */
  readonly attempts: number;
}

export interface KeyClientCounters {
  readonly indexesSeen: number;
  /** Indexes older than the last one seen (out of order or replayed), ignored. */
  readonly staleIndexes: number;
  readonly requests: number;
  readonly filesApplied: number;
  readonly retries: number;
  /** `keys.file` with found: false. */
  readonly missing: number;
  /** Re-plans after a gap, wrong-base or missing file. */
  readonly replans: number;
  /** Fetches dropped until the next index (retries exhausted, a file refused). */
  readonly gaveUp: number;
  /** `keys.file` replies for no outstanding request (late duplicates, strays). */
  readonly unmatchedReplies: number;
  /** Refused files by reason (openDistributionFile's and applyFile's). */
  readonly rejected: Readonly<Record<string, number>>;
}

export interface KeyClientContext extends TimedContext {
  readonly serverId: string;
  readonly clientId: string;
  readonly role: Role;
  readonly requestTimeoutMs: number;
  readonly maxRetries: number;
  readonly maxRecords: number;
  /** The records held: what the phone matches against. */
  readonly state: DistributionClientState;
  /** A rebuild from genesis (full dump or every delta) in progress; replaces `state` once it is newer. */
  readonly staging: DistributionClientState | null;
  /** The newest index seen. */
  readonly index: DistributionIndex | null;
  /** The full-dump fallback was taken for the current index (taken once: a lying index cannot loop us). */
  readonly fellBack: boolean;
  readonly pending: PendingFetch | null;
  readonly counters: KeyClientCounters;
  readonly lastAppliedAt: SimMillis | null;
}

export interface Step {
  readonly context: KeyClientContext;
  readonly effects: readonly Effect[];
}

const positiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;

export function initialKeyClientContext(input: KeyClientInput): KeyClientContext {
  ensure(typeof input === 'object' && input !== null, 'input', 'must be a KeyClientInput');
  ensure(typeof input.serverId === 'string' && SEGMENT_PATTERN.test(input.serverId), 'input.serverId', `must match ${String(SEGMENT_PATTERN)}`);
  ensure(typeof input.clientId === 'string' && SEGMENT_PATTERN.test(input.clientId), 'input.clientId', `must match ${String(SEGMENT_PATTERN)}`);
  const role = input.role ?? 'phone';
  ensure(isRole(role), 'input.role', 'must be a role (protocol/wire/topics.ts)');
  const requestTimeoutMs = input.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  ensure(positiveInt(requestTimeoutMs), 'input.requestTimeoutMs', 'must be a positive integer (ms)');
  const maxRetries = input.maxRetries ?? DEFAULT_MAX_RETRIES;
  ensure(Number.isSafeInteger(maxRetries) && maxRetries >= 0, 'input.maxRetries', 'must be a non-negative integer');
  const maxRecords = input.maxRecords ?? DEFAULT_CLIENT_LIMITS.maxRecords;
  ensure(positiveInt(maxRecords), 'input.maxRecords', 'must be a positive integer');
  return {
    timers: {},
    serverId: input.serverId,
    clientId: input.clientId,
    role,
    requestTimeoutMs,
    maxRetries,
    maxRecords,
    state: initialDistributionClientState(),
    staging: null,
    index: null,
    fellBack: false,
    pending: null,
    counters: { indexesSeen: 0, staleIndexes: 0, requests: 0, filesApplied: 0, retries: 0, missing: 0, replans: 0, gaveUp: 0, unmatchedReplies: 0, rejected: {} },
    lastAppliedAt: null,
  };
}

type CountField = Exclude<keyof KeyClientCounters, 'rejected'>;
const count = (c: KeyClientContext, field: CountField): KeyClientContext => ({ ...c, counters: { ...c.counters, [field]: c.counters[field] + 1 } });
const countRejected = (c: KeyClientContext, reason: string): KeyClientContext => ({
  ...c,
  counters: { ...c.counters, rejected: { ...c.counters.rejected, [reason]: (c.counters.rejected[reason] ?? 0) + 1 } },
});
const isGenesis = (s: DistributionClientState): boolean => s.seq === 0 && s.lastApplied === null;

/** Send the request for `name` (a first send or a re-send) and arm its deadline. */
function send(c: KeyClientContext, name: FileName, at: SimMillis, attempts: number): Step {
  const n = c.counters.requests + 1;
  const requestId = `${c.clientId}.${n}`;
  const deadline = at + c.requestTimeoutMs;
  const request: Effect = {
    type: 'bus.send',
    topic: actorTopic('key-server', c.serverId, 'files'),
    msgType: fileGetCodec.type,
    body: fileGetCodec.encode({ name }),
    qos: 1,
    replyTo: inboxTopic(c.role, c.clientId),
    corr: requestId,
  };
  return {
    context: { ...c, pending: { name, requestId, deadline, attempts }, timers: withTimer(c.timers, FETCH_TIMER, deadline), counters: { ...c.counters, requests: n } },
    effects: [request, timerSet(FETCH_TIMER, deadline)],
  };
}

/** Nothing in flight: forget the fetch deadline. */
function idle(c: KeyClientContext): Step {
  const next = { ...c, pending: null };
  if (c.timers[FETCH_TIMER] === undefined) return { context: next, effects: [] };
  return { context: { ...next, timers: withoutTimer(c.timers, FETCH_TIMER) }, effects: [{ type: 'timer.cancel', name: FETCH_TIMER }] };
}

/** Drop the fetch (and any rebuild) until the next index: retrying now would hit the same wall. */
function giveUp(c: KeyClientContext): Step {
  return idle({ ...count(c, 'gaveUp'), staging: null });
}

/**
 * Request the next file the latest index calls for, planned afresh from what
 * is held now (no queue to go stale when a newer index arrives mid-fetch).
 * A plan from a full dump or from genesis is built in `staging`, so the
 * records held stay usable until the rebuild overtakes them.
 */
function nextFetch(c: KeyClientContext, at: SimMillis): Step {
  if (c.index === null) return idle(c);
  let staging = c.staging;
  let plan = planFetch(staging ?? c.state, c.index);
  if ((plan.mode === 'full' || plan.mode === 'restart') && !isGenesis(staging ?? c.state)) {
    // A full dump replaces whatever is held, so building on genesis loses nothing — and, unlike
    // applying it to the state, is not refused as stale when the state sits on another, longer chain.
    staging = initialDistributionClientState();
    plan = planFetch(staging, c.index);
  }
  const name = plan.names[0];
  if (plan.mode === 'none' || name === undefined) {
    // Caught up. A rebuild that reached the index replaces the state (another chain at the same seq).
    const state = staging !== null && staging.seq >= c.state.seq && !isGenesis(staging) ? staging : c.state;
    return idle({ ...c, state, staging: null });
  }
  return send({ ...c, staging }, name, at, 1);
}

/**
 * After a gap, a wrong base or a missing file: plan again from the latest
 * index; when that asks for the same file again (the index itself is wrong,
 * or `needs` says the chains differ), rebuild from the full dump — once per
 * index — and otherwise give up until the next index.
 */
function recover(c: KeyClientContext, failed: FileName, at: SimMillis, needsFull: boolean): Step {
  const counted = count(c, 'replans');
  if (!needsFull) {
    const replanned = nextFetch(counted, at);
    if (replanned.context.pending?.name !== failed) return replanned;
  }
  if (counted.fellBack || counted.index === null) return giveUp(counted);
  const rebuilt = nextFetch({ ...counted, staging: initialDistributionClientState(), fellBack: true }, at);
  return rebuilt.context.pending?.name === failed ? giveUp(counted) : rebuilt;
}

/** `msg.keys.index`: remember the newest; start fetching when nothing is in flight. */
export function onIndex(context: KeyClientContext, index: DistributionIndex, at: SimMillis): Step {
  const c = count(context, 'indexesSeen');
  if (c.index !== null && index.seq < c.index.seq) return { context: count(c, 'staleIndexes'), effects: [] };
  // An index at the same seq counts as new too: a re-delivered retained index is the natural moment to retry.
  const next = { ...c, index, fellBack: false };
  // One request at a time: the outstanding one finishes (or times out) and the next is planned from this index.
  return next.pending !== null ? { context: next, effects: [] } : nextFetch(next, at);
}

/**
 * `msg.keys.file`. Matched by *name*, not corr: the server answers with
 * corr = the request envelope's id, which the host assigns and the machine
 * never sees — and with one request in flight the name is unambiguous.
 * The name in the reply is only a lookup key: openDistributionFile checks
 * that the bytes hash to the name we asked for.
 */
export function onFile(deps: KeyClientDeps, context: KeyClientContext, reply: FileReply, at: SimMillis): Step {
  const pending = context.pending;
  if (pending === null || reply.name !== pending.name) return { context: count(context, 'unmatchedReplies'), effects: [] };
  const c = { ...context, pending: null };
  const name = pending.name;
  if (!reply.found) return recover(count(c, 'missing'), name, at, false);
  const opened = openDistributionFile(deps.crypto, deps.publicKeys, name, reply.bytes);
  if (!opened.ok) return giveUp(countRejected(c, opened.reason));
  const applied = applyFile(c.staging ?? c.state, opened.value, name, { maxRecords: c.maxRecords });
  if (!applied.ok) {
    const refused = countRejected(c, applied.reason);
    return applied.needs === undefined ? giveUp(refused) : recover(refused, name, at, applied.needs.kind === 'full');
  }
  const done = { ...count(c, 'filesApplied'), lastAppliedAt: at };
  if (c.staging === null) return nextFetch({ ...done, state: applied.value }, at);
  // The rebuild replaces the state as soon as it is newer; the deltas after it then apply to the state.
  const overtook = applied.value.seq > c.state.seq;
  return nextFetch(overtook ? { ...done, state: applied.value, staging: null } : { ...done, staging: applied.value }, at);
}

/** `timer.fetch`: re-send the outstanding request, or give up after maxRetries re-sends. */
export function onFetchTimer(context: KeyClientContext, eventType: string, at: SimMillis): Step {
  const c = { ...context, timers: withoutFiredTimer(context.timers, eventType) };
  const pending = c.pending;
  if (pending === null) return { context: c, effects: [] };
  if (at < pending.deadline) {
    // Fired early (a deadline replaced after the host armed it): keep waiting.
    return { context: { ...c, timers: withTimer(c.timers, FETCH_TIMER, pending.deadline) }, effects: [timerSet(FETCH_TIMER, pending.deadline)] };
  }
  if (pending.attempts > c.maxRetries) return giveUp(c);
  return send(count(c, 'retries'), pending.name, at, pending.attempts + 1);
}

/** `host.resume`: the reply to a request sent before the restart may be lost with it; ask again now. */
export function onResume(c: KeyClientContext, at: SimMillis): Step {
  return c.pending === null ? { context: c, effects: [] } : send(c, c.pending.name, at, c.pending.attempts);
}

/** Ids of the records held, sorted. */
export function heldRecordIds(c: Pick<KeyClientContext, 'state'>): string[] {
  return Object.keys(c.state.records).sort();
}
