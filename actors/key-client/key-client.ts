/**
 * The key client: what a simulated phone runs to follow one diagnosis-key
 * server (issue 4 "Distribution"; docs/decisions/0005, 0006). It reads the
 * retained index `keys.index` on `keys/<serverId>`, fetches the files it
 * names with `keys.file.get` on `key-server/<serverId>/files`, and keeps the
 * records they add up to — verified file by file (name = SHA-256 of the
 * bytes, P-256 signature, chain) by the pure protocol functions
 * (distribution-signing.ts, distribution-client.ts).
 *
 *   idle ──host.start──▶ running ──host.stop──▶ stopped (final)
 *   running (the fetch state lives in context, as in the other backends):
 *     waiting   pending = null
 *       ──msg.keys.index (seq ≥ last seen), plan ≠ none──▶ fetching   [bus.send keys.file.get, timer.set fetch]
 *       ──msg.keys.index, plan = none (not newer than the state)──▶ waiting
 *     fetching  pending = { name, requestId, deadline, attempts }
 *       ──msg.keys.file name = pending.name, opens and applies──▶ fetching the next name | waiting [timer.cancel]
 *       ──… found: false, or refused with gap / wrong-base──▶ re-plan (fetching) | full-dump fallback | waiting
 *       ──… bad name / container / signature / body, stale, too many records──▶ waiting (until the next index)
 *       ──timer.fetch, attempts ≤ maxRetries──▶ fetching (same name re-sent) [bus.send, timer.set]
 *       ──timer.fetch, retries used up──▶ waiting (until the next index)
 *       ──msg.keys.index──▶ fetching (index remembered; the next name is planned from it)
 *       ──host.resume──▶ fetching (request re-sent)
 *     any: msg.keys.file for no pending name → counted (unmatchedReplies), ignored
 *          msg.keys.index older than the last one seen → counted (staleIndexes), ignored
 *
 * Why it is shaped this way:
 * - One request in flight, files in chain order: each delta builds on the
 *   one before, so nothing is gained by racing them, and a phone on a bad link
 *   does not flood the server's file responder.
 * - No queue of names: after every file the next one is planned afresh from
 *   the state and the newest index, so an index that arrives mid-fetch (a new
 *   delta, or a full dump that replaced every file) is simply taken into
 *   account; a stale plan cannot be followed.
 * - Replies are matched by file name, not `corr`: the server (and its file
 *   responder) answers with corr = the *request envelope's id*, which the host
 *   assigns at send time (`<id>.<now>.<n>`) and the machine never sees. With
 *   one request in flight the name is unambiguous, and the name is a content
 *   address: the bytes are checked against it before anything else. The
 *   request still carries our own `corr` (`<clientId>.<n>`) for traces.
 * - A full-dump or from-genesis plan is built in `staging`: the records held
 *   stay in use until the rebuild is newer, then it replaces them.
 * - A file that fails its checks is not re-fetched at once: whoever tampered
 *   with it would serve it again. The next index (the server's next tick, or
 *   a re-delivery of the retained one) starts over; the content-addressed
 *   names make that retry safe. Likewise after maxRetries timeouts.
 * - gap / wrong-base (applyFile's typed rejections): re-plan from the newest
 *   index; if that asks for the same file again (the index lies, or `needs`
 *   says the chains differ) rebuild from the full dump — once per index, so
 *   a lying index cannot keep us fetching.
 * - The deadline is absolute and kept in context.timers (DESIGN.md: a
 *   restored snapshot re-arms it); the whole context is plain data.
 *
 * Observing it: counters and `lastAppliedAt` in the snapshot's context (an
 * `onApplied` hook would be a callback inside a pure machine).
 */
import { createBackendMachine } from '../quarantine/backend-machine.ts';
import { indexTopic } from '../key-server/publication.ts';
import type { HostEvent, MessageEvent, TimerEvent } from '../effects.ts';
import { ensure } from '../../protocol/errors.ts';
import type { DistributionIndex } from '../../protocol/keyserver/distribution-index.ts';
import type { FileReply } from '../../protocol/keyserver/messages.ts';
import {
  FETCH_TIMER,
  initialKeyClientContext,
  onFetchTimer,
  onFile,
  onIndex,
  onResume,
  type KeyClientContext,
  type KeyClientDeps,
  type KeyClientInput,
  type Step,
} from './key-client-logic.ts';

export {
  DEFAULT_MAX_RETRIES,
  DEFAULT_REQUEST_TIMEOUT_MS,
  FETCH_TIMER,
  heldRecordIds,
  initialKeyClientContext,
  type KeyClientContext,
  type KeyClientCounters,
  type KeyClientDeps,
  type KeyClientInput,
  type PendingFetch,
} from './key-client-logic.ts';

export type KeyClientEvent = HostEvent | TimerEvent | MessageEvent<'keys.index', DistributionIndex> | MessageEvent<'keys.file', FileReply>;

/** Topics to put in the client's ActorSpec.subscribe (replies come to its inbox, always subscribed). */
export function keyClientSubscriptions(serverId: string): string[] {
  return [indexTopic(serverId)];
}

function reduce(deps: KeyClientDeps, context: KeyClientContext, event: KeyClientEvent): Step {
  switch (event.type) {
    case 'msg.keys.index':
      return onIndex(context, event.body, event.at);
    case 'msg.keys.file':
      return onFile(deps, context, event.body, event.at);
    case 'host.resume':
      return onResume(context, event.at);
    default:
      return event.type === `timer.${FETCH_TIMER}` ? onFetchTimer(context, event.type, event.at) : { context, effects: [] };
  }
}

/** instanceof Map without the type guard (which would widen the map's types to any). */
const isMap = (value: unknown): boolean => value instanceof Map;

export const KEY_CLIENT_INPUTS = ['msg.keys.index', 'msg.keys.file', `timer.${FETCH_TIMER}`] as const;

export function createKeyClientMachine(deps: KeyClientDeps) {
  // Checked here, not on the first file: a misconfigured phone should fail at spawn, not mid-run.
  ensure(typeof deps === 'object' && deps !== null && typeof deps.crypto === 'object', 'deps.crypto', 'must be a CryptoSuite');
  ensure(isMap(deps.publicKeys), 'deps.publicKeys', 'must be a Map from key id to SEC1 P-256 public key');
  return createBackendMachine<KeyClientInput, KeyClientContext, KeyClientEvent>({
    id: 'key-client',
    initialContext: initialKeyClientContext,
    reduce: (context, event) => reduce(deps, context, event),
    handles: ['host.resume', ...KEY_CLIENT_INPUTS],
  });
}

export type KeyClientMachine = ReturnType<typeof createKeyClientMachine>;
