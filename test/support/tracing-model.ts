/**
 * Model-based testing of the tracing phone (actors/tracing/phone.ts) for any
 * engine: random runs that play the host (timers fire at their deadlines,
 * scan windows deliver frames, diagnoses with good and bad codes, acks,
 * restarts) and check the invariants after every step —
 *   - identifiers rotate with the address: every new advertising set asks for
 *     a new address, carries identifiers never advertised before, and comes
 *     with the next rotation armed;
 *   - nothing older than the retention is kept (right after the retention
 *     timer; at most one timer period more in between);
 *   - a report never reveals identifiers outside its range: everything the
 *     uploaded records let anyone derive was broadcast by this phone inside
 *     [earliest revealable time of infectiousFrom, diagnosis], and nothing it
 *     broadcasts after the diagnosis is derivable from them — for engines
 *     whose report goes to a backend of their own (EngineModel.ownReport,
 *     e.g. DIMY's CBF), the same check on what that upload reveals;
 *   - the chart and the context agree (uploading ⇔ an upload pending).
 */
import { expect } from 'vitest';
import { createActor } from 'xstate';
import type { Effect } from '../../actors/effects.ts';
import type { TracingEngine } from '../../actors/tracing/engine.ts';
import { createTracingPhoneMachine, type TracingPhoneEvent } from '../../actors/tracing/phone.ts';
import { RETENTION_TIMER, type TracingPhoneContext } from '../../actors/tracing/phone-logic.ts';
import type { ReceivedFrame } from '../../actors/ports.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import { readRecords, type DiagnosisRecord } from '../../protocol/keyserver/distribution-records.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { freshCode, KS_PUBLIC_KEYS } from './key-server-fixtures.ts';
import { exploreModel } from './model.ts';
import { seededRng } from './test-rng.ts';

const DAY = 86_400_000;

export interface EngineModel<S, C> {
  readonly engine: TracingEngine<S, C>;
  readonly config: C;
  readonly retentionMs: number;
  /** The identifier a payload broadcasts (hex), as reports reveal it. */
  idOf(payload: Uint8Array): string;
  /** Identifiers (hex) anyone can derive from uploaded records. */
  revealed(crypto: CryptoSuite, records: readonly DiagnosisRecord[]): ReadonlySet<string>;
  /** The earliest broadcast time a report for `infectiousFrom` may reveal (key granularity). */
  earliestRevealable(infectiousFrom: number): number;
  /** A frame another phone of this protocol could send. */
  foreignPayload(rng: ReturnType<typeof seededRng>): Uint8Array;
  /**
   * Engines that report to a backend of their own (exchange.diagnosed) rather than the key
   * server: the message type of that upload, and the identifiers (as idOf) anyone can derive
   * from its body, given every advertising set the phone emitted so far (oldest first).
   */
  readonly ownReport?: {
    readonly msgType: string;
    revealed(crypto: CryptoSuite, body: unknown, advertised: readonly (readonly Uint8Array[])[]): ReadonlySet<string>;
  };
  /** A message from the engine's own backend (one of exchange.messages) to deliver now and then. */
  engineMessage?(rng: ReturnType<typeof seededRng>): { readonly type: string; readonly body: unknown };
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

interface Broadcast {
  readonly id: string;
  readonly at: number;
}

/** One random run of `steps` host actions from T0; returns what it saw, for coverage checks. */
export function runTracingModel<S, C>(model: EngineModel<S, C>, seed: number, steps: number, t0: number): { states: Set<string>; uploads: number } {
  const rng = seededRng(seed);
  const machine = createTracingPhoneMachine(model.engine, { crypto: nodeSuite, publicKeys: KS_PUBLIC_KEYS });
  const actor = createActor(machine, { input: { phoneId: 'p1', serverId: 'ks1', seed: rng.bytes(32), engine: model.config } });
  const effects: Effect[] = [];
  actor.on('*', (e: Effect) => effects.push(e));
  actor.start();
  const timers = new Map<string, number>();
  const broadcasts: Broadcast[] = [];
  const everAdvertised = new Set<string>();
  /** Every advertising set emitted (not the re-sends of host.resume), oldest first. */
  const advertised: (readonly Uint8Array[])[] = [];
  const reports: { revealed: ReadonlySet<string>; infectiousFrom: number; at: number }[] = [];
  const states = new Set<string>();
  /** Upload bodies already checked (a re-send carries the same bytes). */
  const reported = new Set<unknown>();
  let now = t0;
  let frames = 0;
  let diagnosed: { infectiousFrom: number; at: number } | undefined;

  const send = (event: { type: string; at: number; [k: string]: unknown }): void => {
    effects.length = 0;
    actor.send(event as Parameters<typeof actor.send>[0]);
    check(event);
  };
  const context = (): TracingPhoneContext<S, C> => actor.getSnapshot().context;

  const check = (event: { type: string; at: number }): void => {
    const newSets = effects.filter((e) => e.type === 'radio.advertise');
    for (const set of newSets) {
      if (set.type !== 'radio.advertise') continue;
      const ids = set.payloads.map((p) => model.idOf(p));
      if (event.type === 'host.resume') {
        expect(set.newAddress === true).toBe(false); // the same identifiers again: a new address would link the two
        continue;
      }
      expect(set.newAddress).toBe(true);
      advertised.push(set.payloads);
      for (const id of ids) {
        expect(everAdvertised.has(id), `identifier ${id} advertised twice`).toBe(false);
        everAdvertised.add(id);
        broadcasts.push({ id, at: event.at });
      }
      expect(effects.some((e) => e.type === 'timer.set' && e.name === 'rotate' && e.deadline > event.at)).toBe(true);
    }
    for (const e of effects) {
      if (e.type === 'timer.set') timers.set(e.name, e.deadline);
      if (e.type === 'timer.cancel') timers.delete(e.name);
      if (e.type === 'bus.send' && e.msgType === 'keys.upload') {
        const body = e.body as { records: Uint8Array };
        const parsed = readRecords(nodeSuite, body.records, 30, 'keys.upload', 'records');
        expect(parsed.ok).toBe(true);
        if (parsed.ok && diagnosed !== undefined && !reported.has(body.records)) {
          reported.add(body.records);
          reports.push({ revealed: model.revealed(nodeSuite, parsed.value), infectiousFrom: diagnosed.infectiousFrom, at: diagnosed.at });
          checkReport(reports[reports.length - 1] as (typeof reports)[number]);
        }
      }
      const own = model.ownReport;
      if (e.type === 'bus.send' && own !== undefined && e.msgType === own.msgType && diagnosed !== undefined && !reported.has(e.body)) {
        reported.add(e.body);
        reports.push({ revealed: own.revealed(nodeSuite, e.body, advertised), infectiousFrom: diagnosed.infectiousFrom, at: diagnosed.at });
        checkReport(reports[reports.length - 1] as (typeof reports)[number]);
      }
    }
    const c = context();
    const snap = actor.getSnapshot();
    const state = String(snap.value);
    states.add(state);
    if (state === 'uploading') expect(c.upload).not.toBeNull();
    if (state === 'reported') expect(c.upload).toBeNull();
    const oldest = model.engine.oldestHeld(c.engine);
    if (oldest !== undefined) {
      const slack = event.type === `timer.${RETENTION_TIMER}` ? 0 : DAY;
      expect(oldest, `${event.type} at ${event.at}: data from ${oldest} kept`).toBeGreaterThanOrEqual(event.at - model.retentionMs - slack);
    }
    expect(c.counters.framesHeard + c.counters.framesRefused).toBe(frames);
  };

  /** Every derivable identifier this phone broadcast lies inside the report's range (checked when it is uploaded). */
  const checkReport = (r: (typeof reports)[number]): void => {
    const revealed = r.revealed;
    const earliest = model.earliestRevealable(r.infectiousFrom);
    const outside = broadcasts.filter((b) => revealed.has(b.id) && (b.at < earliest || b.at > r.at));
    expect(outside, `report of ${r.at} (infectious from ${r.infectiousFrom}) reveals identifiers broadcast outside its range`).toEqual([]);
  };

  const fireNext = (until: number): boolean => {
    const next = [...timers.entries()].sort((a, b) => a[1] - b[1])[0];
    if (next === undefined || next[1] > until) return false;
    timers.delete(next[0]);
    now = Math.max(now, next[1]);
    send({ type: `timer.${next[0]}`, at: now });
    return true;
  };
  /** Time moves as in a host: every timer due on the way fires first. */
  const advance = (by: number): void => {
    const target = now + by;
    for (let fired = 0; fireNext(target); fired++) if (fired > 100_000) throw new Error(`timers keep firing: ${JSON.stringify([...timers])} now ${now}`);
    now = target;
  };

  send({ type: 'host.start', at: now });
  for (let i = 0; i < steps && actor.getSnapshot().status === 'active'; i++) {
    const roll = rng.float();
    if (roll < 0.55) {
      fireNext(Number.POSITIVE_INFINITY);
    } else if (roll < 0.8) {
      advance(rng.int(120_000));
      const batch: ReceivedFrame[] = [];
      for (let k = rng.int(6); k > 0; k--) {
        const kind = rng.float();
        const payload = kind < 0.7 ? model.foreignPayload(rng) : kind < 0.85 ? rng.bytes(rng.int(40)) : (broadcasts.length > 0 ? Buffer.from(broadcasts[rng.int(broadcasts.length)]?.id ?? '', 'hex') : rng.bytes(16));
        batch.push({ payload, rssi: -40 - rng.int(60), at: now - rng.int(4000), address: 'AA:BB:CC:DD:EE:FF' });
      }
      frames += batch.length;
      send({ type: 'radio.frames', at: now, frames: batch });
    } else if (roll < 0.86) {
      advance(rng.int(3_600_000));
      const good = rng.float() < 0.8;
      const infectiousFrom = now - rng.int(6 * DAY);
      if (good && diagnosed === undefined) diagnosed = { infectiousFrom, at: now };
      const code = good ? freshCode('clinic', now).text : 'NOT-A-CODE';
      send({ type: 'tracing.diagnosed', at: now, code, infectiousFrom });
    } else if (roll < 0.9) {
      // Engines with a backend of their own get its messages in half of these steps (no extra draw for the others).
      const message = model.engineMessage !== undefined && rng.float() < 0.5 ? model.engineMessage(rng) : undefined;
      if (message !== undefined) {
        send({ type: `msg.${message.type}`, at: now, envelope: { v: 1, type: message.type, id: 'x', from: 'app-backend/b1', at: now, body: null }, body: message.body });
        continue;
      }
      send({ type: 'msg.keys.upload.ack', at: now, envelope: { v: 1, type: 'keys.upload.ack', id: 'x', from: 'key-server/ks1', at: now, body: null }, body: { trackingId: '0'.repeat(32) } });
    } else if (roll < 0.95) {
      send({ type: 'host.resume', at: now });
    } else if (roll < 0.98) {
      send({ type: 'tracing.test', at: now, result: rng.float() < 0.5 ? 'awaiting' : 'negative' });
    } else {
      advance(rng.int(3 * DAY));
    }
  }
  // Nothing broadcast after a diagnosis is derivable from its report.
  for (const r of reports) {
    expect(broadcasts.filter((b) => b.at > r.at && r.revealed.has(b.id)), 'broadcast after the report yet derivable from it').toEqual([]);
  }
  send({ type: 'host.stop', at: now });
  states.add(String(actor.getSnapshot().value));
  actor.stop();
  return { states, uploads: reports.length };
}

export { hex };

/** States the random runs reached and reports they checked, over seeds 1..runs. */
export function runTracingModels<S, C>(model: EngineModel<S, C>, runs: number, steps: number, t0: number): { states: string[]; uploads: number } {
  const states = new Set<string>();
  let uploads = 0;
  for (let seed = 1; seed <= runs; seed++) {
    const run = runTracingModel(model, seed, steps, t0);
    run.states.forEach((s) => states.add(s));
    uploads += run.uploads;
  }
  return { states: [...states].sort(), uploads };
}

export interface ChartOptions<S, C> {
  readonly engine: TracingEngine<S, C>;
  readonly config: C;
  readonly t0: number;
  /** A scan window's frames the engine accepts. */
  readonly frames: readonly ReceivedFrame[];
  /** When the first rotation falls due. */
  readonly rotateAt: number;
  /** Events of the engine's own (its backend's replies, its timers). */
  readonly extraEvents?: readonly { readonly type: string; readonly at: number }[];
  /** Abstract state beyond the chart's (default: whether a key-server upload is pending). */
  readonly detail?: (context: TracingPhoneContext<S, C>) => string;
  /** More invariants, after the shared ones. */
  readonly invariant?: (step: { state: unknown; context: TracingPhoneContext<S, C>; effects: readonly Effect[] }) => void;
}

/**
 * xstate/graph paths through the tracing phone's chart with the events every
 * engine shares (test/support/model.ts: persist → restore after each step):
 * new advertising sets ask for a new address, uploading ⇔ an upload pending,
 * stopped ⇒ nothing on the air. Returns the chart states reached.
 */
export function exploreTracingChart<S, C>(o: ChartOptions<S, C>): string[] {
  const machine = createTracingPhoneMachine(o.engine, { crypto: nodeSuite, publicKeys: KS_PUBLIC_KEYS });
  const { t0 } = o;
  const code = freshCode('clinic', t0).text;
  const ack = { type: 'msg.keys.upload.ack', at: t0 + 3000, envelope: { v: 1, type: 'keys.upload.ack', id: 'a', from: 'key-server/ks1', at: t0, body: null }, body: { trackingId: '0'.repeat(32) } };
  const events = [
    { type: 'host.start', at: t0 },
    { type: 'timer.rotate', at: o.rotateAt },
    { type: 'timer.scanStart', at: t0 + 500 },
    { type: 'radio.frames', at: t0 + 4000, frames: o.frames },
    { type: 'timer.retention', at: t0 + 15 * DAY },
    { type: 'tracing.diagnosed', at: t0 + 2000, code, infectiousFrom: t0 - 2 * DAY },
    { type: 'tracing.diagnosed', at: t0 + 2000, code: 'bad', infectiousFrom: t0 },
    ack,
    { type: 'timer.upload', at: t0 + 11 * 60_000 },
    { type: 'tracing.test', at: t0 + 5000, result: 'awaiting' },
    { type: 'host.resume', at: t0 + 6000 },
    { type: 'host.stop', at: t0 + 7000 },
    ...(o.extraEvents ?? []),
  ] as unknown as TracingPhoneEvent[];
  const detail = o.detail ?? ((c: TracingPhoneContext<S, C>): string => `upload:${c.upload === null ? 'none' : 'pending'}`);
  const reached = exploreModel<TracingPhoneContext<S, C>>(machine, {
    input: { phoneId: 'p1', serverId: 'ks1', seed: new Uint8Array(32).fill(3), engine: o.config },
    events,
    serialize: (value, c) => `${JSON.stringify(value)}|${detail(c)}`,
    everyEvent: true,
    invariant: ({ state, context, effects, event }) => {
      for (const e of effects) if (e.type === 'radio.advertise' && event.type !== 'host.resume') expect(e.newAddress).toBe(true);
      if (state === 'uploading') expect(context.upload).not.toBeNull();
      if (state === 'reported') expect(context.upload).toBeNull();
      if (state === 'stopped') expect(context.advertising).toBeNull();
      o.invariant?.({ state, context, effects });
    },
  });
  return [...new Set([...reached].map((k) => JSON.parse(k.split('|')[0] ?? '""') as string))].sort();
}
