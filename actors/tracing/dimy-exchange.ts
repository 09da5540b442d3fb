/**
 * DIMY with its backend (actors/dimy/backend.ts; messages protocol/dimy/messages.ts): the
 * engine's `exchange`.
 *
 *   every exchangeTickMs   a CBF awaiting its ack is re-sent (at most maxCbfAttempts sends);
 *                          otherwise, once qbfPeriodMs has passed since the last QBF and no
 *                          CBF was made: QBF = OR of the DBFs → dimy.qbf.query { filter, tOld =
 *                          start of the oldest DBF } (skipped while the DBFs are empty: an empty
 *                          filter matches nothing)
 *   dimy.qbf.result        matched with more matching CBFs than the last result → one Exposure,
 *                          risk 'high'
 *   diagnosis              CBF = OR of the DBFs of the periods since infectiousFrom's →
 *                          dimy.cbf.upload { filter, code }; from then on no QBFs (the
 *                          assignments: a node that uploaded a CBF stops querying)
 *   dimy.cbf.ack           accepted → done; refused `capacity` → re-sent at the next ticks;
 *                          any other refusal (unknown-code, used, expired, too-full) is final
 *
 * What an Exposure can say: the backend answers only matched / not matched (and how many CBFs
 * matched). It knows neither the day nor the duration of the contact, nor which positive: the
 * exposure carries the query's day and time, and `minutes` is the least a reconstruction implies
 * ((k − 1) share slots, i.e. k scan windows of the same EphID), not a measurement. Every result
 * with a match is rated 'high': DIMY has no risk score (no attenuation, no duration).
 * A matching CBF that expires while another one starts matching leaves `matches` unchanged: that
 * second positive raises no new notification (the phone is already notified).
 *
 * Bytes: every QBF and CBF is the 100,001-byte encoded filter — DIMY's bandwidth cost.
 */
import { ensure } from '../../protocol/errors.ts';
import { DIMY_BLOOM_ENCODED_BYTES } from '../../protocol/dimy/bloom.ts';
import { dimyCbfAckCodec, dimyCbfUploadCodec, dimyQbfQueryCodec, dimyQbfResultCodec } from '../../protocol/dimy/messages.ts';
import { parseUploadCode } from '../../protocol/keyserver/upload-code.ts';
import { packWire, type WireValue } from '../../protocol/wire/msgpack.ts';
import { inboxTopic } from '../../protocol/wire/topics.ts';
import type { SimMillis } from '../ports.ts';
import { DAY_MS, MINUTE_MS, type DimyEngineConfig } from './dimy-config.ts';
import { periodStart, unionOf } from './dimy-filters.ts';
import { countDimy, type DimyExchangeState, type DimyState } from './dimy-state.ts';
import type { EngineDeps, EngineExchange, EngineSend, EngineStep } from './engine.ts';

/** The backend's role: the backend of a tracing app (as TCN's, actors/tcn/topics.ts). */
export const DIMY_BACKEND_ROLE = 'app-backend';

export const dimyBackendInbox = (config: DimyEngineConfig): string => inboxTopic(DIMY_BACKEND_ROLE, config.backendId);

const withExchange = (state: DimyState, patch: Partial<DimyExchangeState>): DimyState => ({ ...state, exchange: { ...state.exchange, ...patch } });

function send(config: DimyEngineConfig, msgType: string, body: WireValue): EngineSend {
  return { topic: dimyBackendInbox(config), msgType, body };
}

const timed = <T>(deps: EngineDeps, work: () => T): T => (deps.meter === undefined ? work() : deps.meter.time('match', work));

/** Re-send the pending CBF, or give up after maxCbfAttempts sends. */
function resendCbf(config: DimyEngineConfig, state: DimyState): EngineStep<DimyState> {
  const p = state.exchange.pending;
  if (p === null) return { state };
  if (p.attempts >= config.maxCbfAttempts) return { state: countDimy(withExchange(state, { pending: null }), 'cbfAbandoned') };
  const next = countDimy(withExchange(state, { pending: { ...p, attempts: p.attempts + 1 } }), 'cbfResent');
  return { state: next, sends: [send(config, dimyCbfUploadCodec.type, p.body)], bytesUp: p.bytes };
}

/** The QBF, when one is due (header). */
function query(deps: EngineDeps, config: DimyEngineConfig, state: DimyState, at: SimMillis): EngineStep<DimyState> {
  const x = state.exchange;
  if (x.reported) return { state };
  if (x.nextQueryAt === null) return { state: withExchange(state, { nextQueryAt: at + config.qbfPeriodMs }) };
  if (at < x.nextQueryAt) return { state };
  // Catch up without drifting: the next query stays on this phone's daily phase.
  const nextQueryAt = x.nextQueryAt + Math.ceil((at - x.nextQueryAt + 1) / config.qbfPeriodMs) * config.qbfPeriodMs;
  const oldest = state.dbfs[0];
  if (oldest === undefined) return { state: countDimy(withExchange(state, { nextQueryAt }), 'queriesSkipped') };
  const body = timed(deps, () => dimyQbfQueryCodec.encode({ filter: unionOf(state.dbfs), tOld: oldest.start }));
  const next = countDimy(withExchange(state, { nextQueryAt, awaiting: at }), 'queries');
  return { state: next, sends: [send(config, dimyQbfQueryCodec.type, body)], bytesUp: DIMY_BLOOM_ENCODED_BYTES };
}

function onResult(config: DimyEngineConfig, state: DimyState, body: WireValue): EngineStep<DimyState> {
  const result = dimyQbfResultCodec.decode(body);
  const bytesDown = packWire(body).length;
  if (!result.ok) return { state: countDimy(state, 'messagesIgnored'), bytesDown };
  const asked = state.exchange.awaiting;
  // A duplicate (QoS 1 redelivery) or an answer to nothing we asked.
  if (asked === null) return { state: countDimy(state, 'resultsIgnored'), bytesDown };
  const r = result.value;
  const fresh = r.matched && r.matches > state.exchange.matchesSeen;
  let next = countDimy(withExchange(state, { awaiting: null, matchesSeen: r.matches }), 'results');
  if (!fresh) return { state: next, bytesDown };
  next = countDimy(next, 'resultsMatched');
  const minutes = ((config.k - 1) * config.shareMs) / MINUTE_MS;
  const exposure = { recordId: `dimy-qbf-${asked}`, dayNumber: Math.floor(asked / DAY_MS), firstAt: asked, lastAt: asked, minutes, risk: 'high' as const };
  return { state: next, exposures: [exposure], bytesDown };
}

function onAck(state: DimyState, body: WireValue): EngineStep<DimyState> {
  const ack = dimyCbfAckCodec.decode(body);
  const bytesDown = packWire(body).length;
  if (!ack.ok) return { state: countDimy(state, 'messagesIgnored'), bytesDown };
  if (state.exchange.pending === null) return { state, bytesDown };
  if (ack.value.accepted) return { state: countDimy(withExchange(state, { pending: null }), 'cbfAccepted'), bytesDown };
  // A full backend may accept later; every other refusal stays a refusal.
  if (ack.value.reason === 'capacity') return { state, bytesDown };
  return { state: countDimy(withExchange(state, { pending: null }), 'cbfRefused'), bytesDown };
}

export const dimyExchange: EngineExchange<DimyState, DimyEngineConfig> = {
  messages: [dimyQbfResultCodec.type, dimyCbfAckCodec.type],
  // Replies come to the phone's inbox (replyTo), which the host subscribes anyway.
  subscriptions: () => [],
  periodMs: (config) => config.exchangeTickMs,

  periodic(deps, config, state, at) {
    return state.exchange.pending !== null ? resendCbf(config, state) : query(deps, config, state, at);
  },

  onMessage(deps, config, state, msgType, body) {
    // The host decoded the body with the same codec; decoding again narrows `unknown` without a cast of its fields.
    const wire = body as WireValue;
    if (msgType === dimyQbfResultCodec.type) return timed(deps, () => onResult(config, state, wire));
    if (msgType === dimyCbfAckCodec.type) return onAck(state, wire);
    return { state: countDimy(state, 'messagesIgnored') };
  },

  diagnosed(_deps, config, state, infectiousFrom, at, code) {
    ensure(infectiousFrom <= at, 'infectiousFrom', 'must not be after the diagnosis');
    const parsed = parseUploadCode(code);
    ensure(parsed.ok, 'code', 'must be a valid upload code (the phone checked it)');
    const from = periodStart(infectiousFrom, config.dbfMs);
    const dbfs = state.dbfs.filter((d) => d.start >= from);
    const body = dimyCbfUploadCodec.encode({ filter: unionOf(dbfs), code: parsed.value });
    const bytes = DIMY_BLOOM_ENCODED_BYTES + parsed.value.text.length;
    // An empty CBF holds nothing old: it ages from now.
    const pending = { body, bytes, attempts: 1, oldest: dbfs[0]?.start ?? at };
    const next = countDimy(withExchange(state, { reported: true, awaiting: null, pending }), 'cbfSent');
    return { state: next, sends: [send(config, dimyCbfUploadCodec.type, body)], bytesUp: bytes };
  },
};
