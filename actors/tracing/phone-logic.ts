/**
 * The tracing phone's rules as pure functions (the machine in phone.ts
 * routes events to them). What every protocol shares lives here; the
 * protocol questions go to the engine (engine.ts).
 *
 * Radio: identifiers are re-advertised with `newAddress: true` at every
 * rotation the engine schedules, so an address never spans two identifiers.
 * Scanning starts after a random phase within one scan interval (phones are
 * not synchronised), duty-cycled (ScanOptions) with duplicates filtered per
 * window, and frames come as one `radio.frames` batch per window.
 *
 * Retention: a daily timer asks the engine to forget what is older than its
 * retention, and ticks the health code.
 *
 * Diagnosis (`tracing.diagnosed` with the health authority's upload code):
 * the engine's report goes to the key server on the phone's own upload topic
 * (`keys.upload`, padded to the client's 1 KB bucket), re-sent every
 * `retryMs` until acked (the server answers a re-send with the same tracking
 * id, so a lost ack never duplicates keys), at most `maxAttempts` times.
 *
 * Download: the key client's pure logic (actors/key-client/key-client-logic.ts)
 * runs inside this context; whenever the records it holds change, the
 * records not matched before go to the engine, and each exposure at or above
 * `notifyRisk` not notified before raises an exposure notification (logged,
 * kept in `notifications`) and moves the health code.
 */
import { drbgDraw, drbgInit, type DrbgState } from '../../protocol/crypto/drbg.ts';
import { ensure } from '../../protocol/errors.ts';
import { canonicalRecordBytes, type DiagnosisRecord } from '../../protocol/keyserver/distribution-records.ts';
import { MAX_UPLOAD_PADDING_BYTES, MAX_UPLOAD_RECORDS } from '../../protocol/keyserver/messages.ts';
import { parseUploadCode } from '../../protocol/keyserver/upload-code.ts';
import { inboxTopic, keyServerUploadTopic } from '../../protocol/wire/topics.ts';
import { timerSet, withoutFiredTimer, withTimer, type Effect, type TimedContext } from '../effects.ts';
import { initialKeyClientContext, type KeyClientContext, type KeyClientInput, type Step as KeyStep } from '../key-client/key-client-logic.ts';
import type { ReceivedFrame, SimMillis } from '../ports.ts';
import type { EngineDeps, EngineStep, Exposure, ExposureRisk, RadioTiming, TracingEngine } from './engine.ts';
import { applyHealthEvent, DEFAULT_HEALTH_POLICY, initialHealthCode, type HealthCode, type HealthPolicy } from './health-code.ts';

export const ROTATE_TIMER = 'rotate';
export const SCAN_START_TIMER = 'scanStart';
export const RETENTION_TIMER = 'retention';
export const UPLOAD_TIMER = 'upload';
export const EXCHANGE_TIMER = 'exchange';
const DAY_MS = 86_400_000;
/** Upload size bucket, bytes (services/keyserver/client.ts UPLOAD_SIZE_BUCKET_BYTES: equal-size real and chaff uploads). */
const UPLOAD_BUCKET_BYTES = 1024;

export interface TracingPhoneInput<C> {
  readonly phoneId: string;
  /** The key server followed and uploaded to. */
  readonly serverId: string;
  /** DRBG seed (≥ 16 bytes): keys, phases. */
  readonly seed: Uint8Array;
  readonly engine: C;
  readonly timing?: Partial<RadioTiming>;
  /** Risk from which an exposure raises a notification (default 'high'). */
  readonly notifyRisk?: ExposureRisk;
  readonly upload?: { readonly retryMs?: number; readonly maxAttempts?: number };
  readonly health?: Partial<HealthPolicy>;
  readonly keyClient?: Partial<Pick<KeyClientInput, 'requestTimeoutMs' | 'maxRetries' | 'maxRecords'>>;
  /** Most exposures and notifications kept (oldest dropped, counted). Default 1000. */
  readonly maxExposures?: number;
}

export interface TracingSettings {
  readonly phoneId: string;
  readonly serverId: string;
  readonly timing: RadioTiming;
  readonly notifyRisk: ExposureRisk;
  readonly retryMs: number;
  readonly maxAttempts: number;
  readonly health: HealthPolicy;
  readonly maxExposures: number;
}

export interface PendingUpload {
  readonly code: string;
  readonly records: Uint8Array;
  readonly count: number;
  readonly attempts: number;
  readonly deadline: SimMillis;
}

export interface Notification {
  readonly at: SimMillis;
  readonly recordId: string;
  readonly dayNumber: number;
  readonly risk: ExposureRisk;
  readonly minutes: number;
}

export interface TracingCounters {
  readonly rotations: number;
  readonly framesHeard: number;
  readonly framesRefused: number;
  readonly batches: number;
  readonly uploadsSent: number;
  readonly uploadsResent: number;
  readonly uploadsAcked: number;
  readonly uploadsAbandoned: number;
  readonly badCodes: number;
  readonly bytesUp: number;
  readonly bytesDown: number;
  readonly recordsMatched: number;
  readonly exposuresDropped: number;
}

export interface TracingPhoneContext<S, C> extends TimedContext {
  readonly settings: TracingSettings;
  readonly config: C;
  readonly engine: S;
  readonly drbg: DrbgState;
  /** What is on the air now (re-emitted on host.resume). */
  readonly advertising: { readonly payloads: readonly Uint8Array[]; readonly since: SimMillis } | null;
  readonly scanning: boolean;
  readonly keys: KeyClientContext;
  /** Ids of records already given to the engine. */
  readonly matched: Readonly<Record<string, true>>;
  readonly upload: PendingUpload | null;
  readonly trackingId: string | null;
  readonly exposures: readonly Exposure[];
  readonly notifications: readonly Notification[];
  readonly health: HealthCode;
  readonly counters: TracingCounters;
}

export interface TracingDeps extends EngineDeps {
  /** The key server's signing keys by key id (SEC1 P-256 points). */
  readonly publicKeys: ReadonlyMap<string, Uint8Array>;
}

export interface Step<S, C> {
  readonly context: TracingPhoneContext<S, C>;
  readonly effects: readonly Effect[];
}

const positiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;

export function initialTracingContext<S, C>(engine: TracingEngine<S, C>, deps: TracingDeps, input: TracingPhoneInput<C>): TracingPhoneContext<S, C> {
  ensure(typeof input === 'object' && input !== null, 'input', 'must be a TracingPhoneInput');
  ensure(input.seed instanceof Uint8Array && input.seed.length >= 16, 'input.seed', 'must be ≥ 16 bytes');
  const timing = { ...engine.timing, ...input.timing };
  ensure(positiveInt(timing.advertiseIntervalMs) && timing.advertiseIntervalMs >= 20, 'input.timing.advertiseIntervalMs', 'must be an integer ≥ 20 (ms)');
  ensure(positiveInt(timing.scanIntervalMs), 'input.timing.scanIntervalMs', 'must be a positive integer (ms)');
  ensure(positiveInt(timing.scanWindowMs) && timing.scanWindowMs <= timing.scanIntervalMs, 'input.timing.scanWindowMs', 'must be an integer in (0, scanIntervalMs]');
  const retryMs = input.upload?.retryMs ?? 60_000;
  const maxAttempts = input.upload?.maxAttempts ?? 10;
  ensure(positiveInt(retryMs), 'input.upload.retryMs', 'must be a positive integer (ms)');
  ensure(positiveInt(maxAttempts), 'input.upload.maxAttempts', 'must be a positive integer');
  const maxExposures = input.maxExposures ?? 1000;
  ensure(positiveInt(maxExposures), 'input.maxExposures', 'must be a positive integer');
  const notifyRisk = input.notifyRisk ?? 'high';
  ensure(notifyRisk === 'low' || notifyRisk === 'high', 'input.notifyRisk', "must be 'low' or 'high'");
  const keys = initialKeyClientContext({ serverId: input.serverId, clientId: input.phoneId, role: 'phone', ...input.keyClient });
  const settings: TracingSettings = { phoneId: input.phoneId, serverId: input.serverId, timing, notifyRisk, retryMs, maxAttempts, health: { ...DEFAULT_HEALTH_POLICY, ...input.health }, maxExposures };
  const started = engine.init(deps, input.engine, 0, drbgInit(input.seed));
  return {
    settings, config: input.engine, engine: started.state, drbg: started.drbg, advertising: null, scanning: false, keys, matched: {},
    upload: null, trackingId: null, exposures: [], notifications: [], health: initialHealthCode(0), timers: {},
    counters: {
      rotations: 0, framesHeard: 0, framesRefused: 0, batches: 0, uploadsSent: 0, uploadsResent: 0, uploadsAcked: 0,
      uploadsAbandoned: 0, badCodes: 0, bytesUp: 0, bytesDown: 0, recordsMatched: 0, exposuresDropped: 0,
    },
  };
}

type Ctx<S, C> = TracingPhoneContext<S, C>;

function bump<S, C>(c: Ctx<S, C>, field: keyof TracingCounters, by = 1): Ctx<S, C> {
  return { ...c, counters: { ...c.counters, [field]: c.counters[field] + by } };
}

function arm<S, C>(c: Ctx<S, C>, name: string, deadline: SimMillis, effects: Effect[]): Ctx<S, C> {
  effects.push(timerSet(name, deadline));
  return { ...c, timers: withTimer(c.timers, name, deadline) };
}

const nextMidnight = (at: SimMillis): SimMillis => (Math.floor(at / DAY_MS) + 1) * DAY_MS;

/** host.start: first identifiers on the air, the scan phase, the retention timer. */
export function onStart<S, C>(engine: TracingEngine<S, C>, deps: TracingDeps, c: Ctx<S, C>, at: SimMillis): Step<S, C> {
  const effects: Effect[] = [];
  const health = initialHealthCode(at);
  const rotated = rotate(engine, deps, { ...c, health }, at, effects);
  const phase = drbgDraw(rotated.drbg, 4);
  const offset = new DataView(phase.bytes.buffer, phase.bytes.byteOffset, 4).getUint32(0) % c.settings.timing.scanIntervalMs;
  let next = arm({ ...rotated, drbg: phase.state }, SCAN_START_TIMER, at + offset, effects);
  next = arm(next, RETENTION_TIMER, nextMidnight(at), effects);
  const period = engine.exchange?.periodMs(c.config);
  if (period !== undefined) next = arm(next, EXCHANGE_TIMER, at + period - (offset % period), effects);
  return { context: next, effects };
}

/** The engine's own backend: sends (replies to our inbox), exposures, bytes. */
function applyEngineStep<S, C>(c: Ctx<S, C>, step: EngineStep<S>, at: SimMillis, effects: Effect[]): Ctx<S, C> {
  let next: Ctx<S, C> = bump(bump({ ...c, engine: step.state }, 'bytesUp', step.bytesUp ?? 0), 'bytesDown', step.bytesDown ?? 0);
  for (const send of step.sends ?? []) effects.push({ type: 'bus.send', topic: send.topic, msgType: send.msgType, body: send.body, qos: 1, replyTo: inboxTopic('phone', c.settings.phoneId) });
  for (const exposure of step.exposures ?? []) next = expose(next, exposure, at, effects);
  return next;
}

/** timer.exchange: the engine's periodic work (e.g. DIMY's QBF query), then the next one. */
export function onExchangeTimer<S, C>(engine: TracingEngine<S, C>, deps: TracingDeps, c: Ctx<S, C>, type: string, at: SimMillis): Step<S, C> {
  const exchange = engine.exchange;
  const cleared = { ...c, timers: withoutFiredTimer(c.timers, type) };
  const period = exchange?.periodMs(c.config);
  if (exchange === undefined || period === undefined) return { context: cleared, effects: [] };
  const effects: Effect[] = [];
  const next = applyEngineStep(cleared, exchange.periodic(deps, c.config, c.engine, at, c.settings.phoneId), at, effects);
  return { context: arm(next, EXCHANGE_TIMER, at + period, effects), effects };
}

/** A message for the engine (its type is one of exchange.messages). */
export function onEngineMessage<S, C>(engine: TracingEngine<S, C>, deps: TracingDeps, c: Ctx<S, C>, msgType: string, body: unknown, at: SimMillis): Step<S, C> {
  const exchange = engine.exchange;
  if (exchange === undefined || !exchange.messages.includes(msgType)) return { context: c, effects: [] };
  const effects: Effect[] = [];
  return { context: applyEngineStep(c, exchange.onMessage(deps, c.config, c.engine, msgType, body, at), at, effects), effects };
}

/** New identifiers from the engine, advertised with a new address; the next rotation armed. */
function rotate<S, C>(engine: TracingEngine<S, C>, deps: TracingDeps, c: Ctx<S, C>, at: SimMillis, effects: Effect[]): Ctx<S, C> {
  const r = engine.rotate(deps, c.config, c.engine, at, c.drbg);
  ensure(r.nextAt > at, 'engine.rotate', `nextAt ${r.nextAt} must be after ${at}`);
  effects.push({ type: 'radio.advertise', payloads: r.payloads, intervalMs: c.settings.timing.advertiseIntervalMs, newAddress: true });
  const next = bump({ ...c, engine: r.state, drbg: r.drbg, advertising: { payloads: r.payloads, since: at } }, 'rotations');
  return arm(next, ROTATE_TIMER, r.nextAt, effects);
}

export function onRotate<S, C>(engine: TracingEngine<S, C>, deps: TracingDeps, c: Ctx<S, C>, type: string, at: SimMillis): Step<S, C> {
  const effects: Effect[] = [];
  return { context: rotate(engine, deps, { ...c, timers: withoutFiredTimer(c.timers, type) }, at, effects), effects };
}

export function onScanStart<S, C>(c: Ctx<S, C>, type: string): Step<S, C> {
  const t = c.settings.timing;
  return {
    context: { ...c, scanning: true, timers: withoutFiredTimer(c.timers, type) },
    effects: [{ type: 'radio.scan', on: true, batch: true, options: { windowMs: t.scanWindowMs, intervalMs: t.scanIntervalMs, filterDuplicates: t.filterDuplicates } }],
  };
}

export function onFrames<S, C>(engine: TracingEngine<S, C>, deps: TracingDeps, c: Ctx<S, C>, frames: readonly ReceivedFrame[], at: SimMillis): Step<S, C> {
  const observed = engine.observe(deps, c.config, c.engine, frames, at);
  // One copy of the context per scan window (this runs for every phone every window).
  const n = c.counters;
  const counters = { ...n, framesHeard: n.framesHeard + frames.length - observed.refused, framesRefused: n.framesRefused + observed.refused, batches: n.batches + 1 };
  return { context: { ...c, engine: observed.state, counters }, effects: [] };
}

export function onRetention<S, C>(engine: TracingEngine<S, C>, c: Ctx<S, C>, type: string, at: SimMillis): Step<S, C> {
  const effects: Effect[] = [];
  const expired = { ...c, engine: engine.expire(c.config, c.engine, at), health: applyHealthEvent(c.health, { kind: 'tick' }, at, c.settings.health), timers: withoutFiredTimer(c.timers, type) };
  return { context: arm(expired, RETENTION_TIMER, nextMidnight(at), effects), effects };
}

/** `tracing.diagnosed`: report, upload, and start fresh identifiers (the reported ones are public now). */
export function onDiagnosed<S, C>(engine: TracingEngine<S, C>, deps: TracingDeps, c: Ctx<S, C>, code: string, infectiousFrom: SimMillis, at: SimMillis): Step<S, C> {
  const parsed = parseUploadCode(code);
  if (!parsed.ok) return { context: bump(c, 'badCodes'), effects: [] };
  const health = applyHealthEvent(c.health, { kind: 'positive' }, at, c.settings.health);
  const report = engine.report(deps, c.config, c.engine, Math.min(infectiousFrom, at), at, c.drbg);
  const records = report.records.slice(-MAX_UPLOAD_RECORDS);
  const effects: Effect[] = [];
  let next: Ctx<S, C> = { ...c, engine: report.state, drbg: report.drbg, health };
  if (engine.exchange !== undefined) next = applyEngineStep(next, engine.exchange.diagnosed(deps, c.config, next.engine, Math.min(infectiousFrom, at), at, parsed.value.text, c.settings.phoneId), at, effects);
  next = rotate(engine, deps, next, at, effects);
  if (records.length === 0) return { context: next, effects };
  const pending: PendingUpload = { code: parsed.value.text, records: pack(records), count: records.length, attempts: 0, deadline: at };
  return sendUpload({ ...next, upload: pending }, at, effects);
}

function pack(records: readonly DiagnosisRecord[]): Uint8Array {
  const parts = records.map(canonicalRecordBytes);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function sendUpload<S, C>(c: Ctx<S, C>, at: SimMillis, effects: Effect[]): Step<S, C> {
  const u = c.upload;
  if (u === null) return { context: c, effects };
  const padded = Math.ceil(u.records.length / UPLOAD_BUCKET_BYTES) * UPLOAD_BUCKET_BYTES;
  const padding = new Uint8Array(Math.min(MAX_UPLOAD_PADDING_BYTES, padded - u.records.length));
  effects.push({
    type: 'bus.send',
    topic: keyServerUploadTopic(c.settings.serverId, c.settings.phoneId),
    msgType: 'keys.upload',
    body: { code: u.code, records: u.records, chaff: false, padding },
    qos: 1,
    replyTo: inboxTopic('phone', c.settings.phoneId),
  });
  const deadline = at + c.settings.retryMs;
  let next = bump(bump({ ...c, upload: { ...u, attempts: u.attempts + 1, deadline } }, u.attempts === 0 ? 'uploadsSent' : 'uploadsResent'), 'bytesUp', u.records.length + padding.length);
  next = arm(next, UPLOAD_TIMER, deadline, effects);
  return { context: next, effects };
}

export function onUploadTimer<S, C>(c: Ctx<S, C>, type: string, at: SimMillis): Step<S, C> {
  const next = { ...c, timers: withoutFiredTimer(c.timers, type) };
  if (next.upload === null) return { context: next, effects: [] };
  if (next.upload.attempts >= c.settings.maxAttempts) return { context: bump({ ...next, upload: null }, 'uploadsAbandoned'), effects: [] };
  return sendUpload(next, at, []);
}

export function onUploadAck<S, C>(c: Ctx<S, C>, trackingId: string): Step<S, C> {
  if (c.upload === null) return { context: c, effects: [] };
  const effects: Effect[] = c.timers[UPLOAD_TIMER] === undefined ? [] : [{ type: 'timer.cancel', name: UPLOAD_TIMER }];
  const timers = { ...c.timers };
  delete timers[UPLOAD_TIMER];
  return { context: bump({ ...c, upload: null, trackingId, timers }, 'uploadsAcked'), effects };
}

/** After a key-client step: adopt it, and match the records it added. */
export function afterKeyStep<S, C>(engine: TracingEngine<S, C>, deps: TracingDeps, c: Ctx<S, C>, step: KeyStep, at: SimMillis, bytesDown = 0): Step<S, C> {
  let next: Ctx<S, C> = bump({ ...c, keys: step.context }, 'bytesDown', bytesDown);
  const fresh = Object.values(step.context.state.records).filter((r) => next.matched[r.id] === undefined);
  if (fresh.length === 0) return { context: next, effects: step.effects };
  const matched = { ...next.matched };
  for (const r of fresh) matched[r.id] = true;
  const outcome = engine.match(deps, c.config, next.engine, fresh, at);
  next = bump({ ...next, engine: outcome.state, matched }, 'recordsMatched', fresh.length);
  const effects: Effect[] = [...step.effects];
  for (const exposure of outcome.exposures) next = expose(next, exposure, at, effects);
  return { context: next, effects };
}

function expose<S, C>(c: Ctx<S, C>, exposure: Exposure, at: SimMillis, effects: Effect[]): Ctx<S, C> {
  const max = c.settings.maxExposures;
  const exposures = [...c.exposures, exposure];
  let next: Ctx<S, C> = { ...c, exposures: exposures.slice(-max), health: applyHealthEvent(c.health, { kind: 'exposure', risk: exposure.risk, contactAt: exposure.firstAt }, at, c.settings.health) };
  if (exposures.length > max) next = bump(next, 'exposuresDropped');
  const notify = exposure.risk === 'high' || c.settings.notifyRisk === 'low';
  if (!notify) return next;
  effects.push({ type: 'log', level: 'info', msg: 'exposure notification', fields: { recordId: exposure.recordId, day: exposure.dayNumber, risk: exposure.risk, minutes: exposure.minutes } });
  const notification = { at, recordId: exposure.recordId, dayNumber: exposure.dayNumber, risk: exposure.risk, minutes: exposure.minutes };
  return { ...next, notifications: [...next.notifications, notification].slice(-max) };
}

/** host.resume: what a snapshot cannot hold — the advertising set, the scan, a pending upload. */
export function onResumeRadio<S, C>(c: Ctx<S, C>, at: SimMillis): Step<S, C> {
  const effects: Effect[] = [];
  // The same identifiers again, so no new address: a new one next to an old identifier would link the two.
  if (c.advertising !== null) effects.push({ type: 'radio.advertise', payloads: c.advertising.payloads, intervalMs: c.settings.timing.advertiseIntervalMs });
  if (c.scanning) effects.push(...onScanStart(c, 'resume').effects);
  return sendUpload(c, at, effects);
}
