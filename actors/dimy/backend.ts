/**
 * The DIMY backend (SPECS §4.1 "CBF", "QBF", "Matching"; §4.2 tasks 9/10): stores positives'
 * Contact Bloom Filters, answers phones' Query Bloom Filters with "matched" / "not matched", and
 * accepts a CBF only with a one-time code the health authority registered (the paper's "HA access
 * token valid 24 h"). Messages: protocol/dimy/messages.ts; matching rule: protocol/dimy/matching.ts.
 *
 *   idle ──host.start──▶ running ──host.stop──▶ stopped (final)
 *   running (per-CBF and per-code state lives in context, as in the other backends):
 *     (input.codes             digests registered from the start, expiry = input.codes.expiresAt)
 *     msg.dimy.codes.register  digests stored (expiry = at + lifetimeMs)     → dimy.codes.ack
 *     msg.dimy.cbf.upload      refused: too-full | unknown-code | used | expired | capacity
 *                              accepted: CBF stored (uploadedAt = at), code used → dimy.cbf.ack
 *     msg.dimy.qbf.query       refused: too-full; else CBFs with uploadedAt ≥ tOld are matched
 *                              against the QBF under config.rule               → dimy.qbf.result
 *     timer.expire             housekeeping only (below)
 *   before every event: CBFs with uploadedAt + retentionMs ≤ at and codes with expiresAt +
 *   expiredCodeMemoryMs ≤ at are dropped (until then an expired code reads `expired`); after it: the one timer `expire` is (re-)armed at the earliest remaining expiry
 *   (timer.set, deadline kept in context.timers so a restored snapshot re-arms it) or cancelled.
 *
 * Why it is shaped this way:
 * - Codes reuse protocol/keyserver/upload-code.ts (printed 80-bit codes, Damm check symbol,
 *   stored as HMAC-SHA-256(pepper, label ‖ code)): the health authority generates codes, prints
 *   them for patients and registers only their digests; the pepper is a dependency, never
 *   context. A code authorizes one CBF; re-sending that same CBF (lost ack, QoS 1 redelivery) is
 *   acknowledged again; another CBF with a used code is refused `used`.
 * - Memory is bounded: at most maxCbfs CBFs (100 KB each) and maxCodes codes; a full backend
 *   refuses new uploads (`capacity`) rather than silently dropping a positive's older CBF.
 * - Prepared search data (nonzero words, sparse positions) is a memo keyed by the stored CBF
 *   object (backend-logic.ts `SearchCache`), built once per CBF and not part of the snapshot.
 * - Replies go to the request envelope's replyTo with corr = its corr (or id); a request without
 *   replyTo is processed silently.
 * Observing it: counters in the snapshot's context.
 */
import type { HostEvent, MessageEvent, TimerEvent } from '../effects.ts';
import { withoutFiredTimer } from '../effects.ts';
import { createBackendMachine } from '../quarantine/backend-machine.ts';
import type { DimyCbfUpload, DimyCodesRegister, DimyQbfQuery } from '../../protocol/dimy/messages.ts';
import {
  checkDimyBackendDeps,
  expire,
  initialDimyBackendContext,
  query,
  registerCodes,
  schedule,
  upload,
  type DimyBackendContext,
  type DimyBackendDeps,
  type DimyBackendInput,
  type SearchCache,
  type Step,
  EXPIRE_TIMER,
  NOTHING,
} from './backend-logic.ts';

export {
  DIMY_DEFAULT_EXPIRED_CODE_MEMORY_MS,
  DIMY_DEFAULT_MAX_CBFS,
  DIMY_DEFAULT_MAX_CODES,
  DIMY_DEFAULT_MAX_SET_BITS,
  DIMY_DEFAULT_RETENTION_MS,
  EXPIRE_TIMER,
  hex,
  initialDimyBackendContext,
  nextExpiry,
  resolveDimyBackendConfig,
  storedFilters,
  type CodeRecord,
  type DimyBackendConfig,
  type DimyBackendContext,
  type DimyBackendCounters,
  type DimyBackendDeps,
  type DimyBackendInput,
  type StoredCbf,
} from './backend-logic.ts';

export type DimyBackendEvent =
  | HostEvent
  | TimerEvent
  | MessageEvent<'dimy.qbf.query', DimyQbfQuery>
  | MessageEvent<'dimy.cbf.upload', DimyCbfUpload>
  | MessageEvent<'dimy.codes.register', DimyCodesRegister>;

export const DIMY_BACKEND_INPUTS = ['msg.dimy.qbf.query', 'msg.dimy.cbf.upload', 'msg.dimy.codes.register', `timer.${EXPIRE_TIMER}`] as const;

function route(deps: DimyBackendDeps, cache: SearchCache, context: DimyBackendContext, event: DimyBackendEvent): Step {
  switch (event.type) {
    case 'msg.dimy.qbf.query':
      return query(context, cache, event.body, event.envelope);
    case 'msg.dimy.cbf.upload':
      return upload(deps, context, event.body, event.at, event.envelope);
    case 'msg.dimy.codes.register':
      return registerCodes(context, event.body, event.at, event.envelope);
    default:
      return NOTHING;
  }
}

/** Housekeeping, the event's rule, then the timer (header). */
export function reduceDimyBackend(deps: DimyBackendDeps, cache: SearchCache, context: DimyBackendContext, event: DimyBackendEvent): Step {
  const base = expire(context, event.at);
  const step = route(deps, cache, base, event);
  const timers = event.type.startsWith('timer.') ? withoutFiredTimer(base.timers, event.type) : base.timers;
  return schedule({ ...base, ...step.context, timers }, step.effects);
}

export function createDimyBackendMachine(deps: DimyBackendDeps) {
  checkDimyBackendDeps(deps);
  const cache: SearchCache = new WeakMap();
  return createBackendMachine<DimyBackendInput, DimyBackendContext, DimyBackendEvent>({
    id: 'dimy-backend',
    initialContext: initialDimyBackendContext,
    reduce: (context, event) => reduceDimyBackend(deps, cache, context, event),
    handles: [...DIMY_BACKEND_INPUTS],
  });
}

export type DimyBackendMachine = ReturnType<typeof createDimyBackendMachine>;
