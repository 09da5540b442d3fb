/**
 * The DP-3T low-cost engine (actors/tracing/dp3t-engine.ts; SPECS §2.1, §7.11):
 * pure engine calls — rotation per 15-minute epoch through the day's 96 EphIDs
 * in a DRBG-shuffled order, the SK ratchet across days, the report of the first
 * infectious day's SK followed by a fresh chain, observation refusals, retention,
 * matching of planted encounters — and the phone machine driven with xstate
 * (every new advertising set with a new address and the next epoch's rotation;
 * a diagnosis uploaded through a key-server machine and matched by another phone).
 */
import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import type { Effect } from '../../actors/effects.ts';
import type { ReceivedFrame } from '../../actors/ports.ts';
import { dp3tEngine, dp3tEngineConfig, DP3T_TIMING, type Dp3tState } from '../../actors/tracing/dp3t-engine.ts';
import type { EngineDeps } from '../../actors/tracing/engine.ts';
import { createTracingPhoneMachine, type TracingPhoneEvent } from '../../actors/tracing/phone.ts';
import type { TracingPhoneContext } from '../../actors/tracing/phone-logic.ts';
import { drbgDraw, drbgInit, type DrbgState } from '../../protocol/crypto/drbg.ts';
import { dayKeyAfter, ephIdsForDay, ephIdsForDays } from '../../protocol/dp3t/lowcost.ts';
import type { Dp3tSeedRecord, IdentifiedRecord } from '../../protocol/keyserver/distribution-records.ts';
import { recordId } from '../../protocol/keyserver/distribution-records.ts';
import { keysUploadCodec } from '../../protocol/keyserver/messages.ts';
import type { WireValue } from '../../protocol/wire/msgpack.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { mustAnnounce, requestedNames, serve, server } from '../support/key-client-fixtures.ts';
import { freshCode, KS_PUBLIC_KEYS, registerBody, replyBody } from '../support/key-server-fixtures.ts';
import { misuseField } from '../support/misuse.ts';

const MIN = 60_000;
const EPOCH = 15 * MIN;
const DAY = 86_400_000;
/** 2026-11-23T00:00Z: a day after the key-server fixtures' T0, so uploads are not in its future. */
const D0 = Date.UTC(2026, 10, 23);
const DAY0 = D0 / DAY;
const deps: EngineDeps = { crypto: nodeSuite };
const config = dp3tEngineConfig();
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const seedOf = (n: number): DrbgState => drbgInit(new Uint8Array(32).fill(n));

interface Run {
  state: Dp3tState;
  drbg: DrbgState;
  /** (time, payload) of every rotation. */
  readonly aired: { at: number; payload: Uint8Array; nextAt: number }[];
}

function start(seed = 1): Run {
  const init = dp3tEngine.init(deps, config, 0, seedOf(seed));
  return { state: init.state, drbg: init.drbg, aired: [] };
}

/** Rotate at `at`, then at every boundary the engine asks for, until `until` (exclusive). */
function rotateUntil(run: Run, at: number, until: number): Run {
  let t = at;
  while (t < until) {
    const r = dp3tEngine.rotate(deps, config, run.state, t, run.drbg);
    run.state = r.state;
    run.drbg = r.drbg;
    expect(r.payloads).toHaveLength(1);
    run.aired.push({ at: t, payload: r.payloads[0] as Uint8Array, nextAt: r.nextAt });
    t = r.nextAt;
  }
  return run;
}

const frame = (payload: Uint8Array, at: number, rssi = -60): ReceivedFrame => ({ payload, rssi, at, address: 'AA:BB:CC:DD:EE:01' });

/** A receiver that heard `payload` in one 4 s scan window per 5 min over [from, to), 16 frames a window. */
function hear(state: Dp3tState, payloadAt: (t: number) => Uint8Array, from: number, to: number, rssi = -60): Dp3tState {
  let s = state;
  for (let t = from; t < to; t += DP3T_TIMING.scanIntervalMs) {
    const frames = Array.from({ length: 16 }, (_, k) => frame(payloadAt(t), t + 250 * k, rssi + (k % 2 === 0 ? 2 : -2)));
    s = dp3tEngine.observe(deps, config, s, frames, t + 4000).state;
  }
  return s;
}

const asRecord = (r: Dp3tSeedRecord): IdentifiedRecord => ({ ...r, id: recordId(nodeSuite, r) });

describe('DP-3T engine: rotation and keys (SPECS §2.1)', () => {
  it('rotates every 15 min through 96 distinct EphIDs a day, the set of ephIdsForDay(SK_t), SK_t the DRBG\'s first 32 bytes', () => {
    const run = rotateUntil(start(), D0, D0 + DAY);
    expect(run.aired).toHaveLength(96);
    run.aired.forEach((a, i) => {
      expect(a.at).toBe(D0 + i * EPOCH);
      expect(a.nextAt).toBe(D0 + (i + 1) * EPOCH);
      expect(a.payload).toHaveLength(16);
    });
    const sk = drbgDraw(seedOf(1), 32).bytes;
    expect(run.state.keys).toEqual([{ day: DAY0, sk }]);
    const expected = ephIdsForDay(nodeSuite, sk).map(hex);
    const aired = run.aired.map((a) => hex(a.payload));
    expect(new Set(aired).size).toBe(96);
    expect([...aired].sort()).toEqual([...expected].sort());
    expect(aired).not.toEqual(expected); // shuffled, not in generation order
  });

  it('a rotation inside an epoch keeps its EphID and asks for the next boundary', () => {
    const run = start();
    const at = D0 + 7 * 3_600_000 + 13 * MIN + 5_000;
    const r = dp3tEngine.rotate(deps, config, run.state, at, run.drbg);
    expect(r.nextAt).toBe(D0 + 7 * 3_600_000 + 15 * MIN);
    const again = dp3tEngine.rotate(deps, config, r.state, at + 60_000, r.drbg);
    expect(again.payloads).toEqual(r.payloads);
    expect(again.drbg).toEqual(r.drbg); // no new day, no draw
  });

  it('the broadcast order is deterministic per seed and differs between seeds and days', () => {
    const order = (seed: number): string[] => rotateUntil(start(seed), D0, D0 + DAY).aired.map((a) => hex(a.payload));
    expect(order(1)).toEqual(order(1));
    const a = rotateUntil(start(1), D0, D0 + 2 * DAY);
    const b = rotateUntil(start(2), D0, D0 + DAY);
    expect(b.aired.map((x) => hex(x.payload))).not.toEqual(order(1));
    // Generation positions of each day's broadcast order: a fresh shuffle per day.
    const positions = (day: number, sk: Uint8Array): number[] => {
      const ids = ephIdsForDay(nodeSuite, sk).map(hex);
      return a.aired.filter((x) => Math.floor(x.at / DAY) === day).map((x) => ids.indexOf(hex(x.payload)));
    };
    const [k0, k1] = a.state.keys;
    expect(positions(DAY0, k0?.sk ?? new Uint8Array(32))).not.toEqual(positions(DAY0 + 1, k1?.sk ?? new Uint8Array(32)));
  });

  it('ratchets SK_{t+1} = H(SK_t) across days, skipping days the phone was off (H^k)', () => {
    const run = rotateUntil(start(), D0 + 23 * 3_600_000, D0 + DAY + EPOCH);
    rotateUntil(run, D0 + 4 * DAY + 3_600_000, D0 + 4 * DAY + 3_600_000 + 1);
    const [k0, k1, k4] = run.state.keys;
    expect(run.state.keys.map((k) => k.day)).toEqual([DAY0, DAY0 + 1, DAY0 + 4]);
    expect(k1?.sk).toEqual(nodeSuite.sha256(k0?.sk ?? new Uint8Array(0)));
    expect(k4?.sk).toEqual(dayKeyAfter(nodeSuite, k1?.sk ?? new Uint8Array(32), 3));
    const day4 = new Set(ephIdsForDay(nodeSuite, k4?.sk ?? new Uint8Array(32)).map(hex));
    expect(day4.has(hex(run.aired[run.aired.length - 1]?.payload ?? new Uint8Array(0)))).toBe(true);
  });

  it('rejects an epoch length that does not divide the day and other bad configuration', () => {
    expect(misuseField(() => dp3tEngineConfig({ epochLengthMinutes: 7 }))).toBe('epochLengthMinutes');
    expect(misuseField(() => dp3tEngineConfig({ retentionDays: -1 }))).toBe('retentionDays');
    expect(misuseField(() => dp3tEngineConfig({ lowRiskMinutes: 20 }))).toBe('highRiskMinutes');
    expect(dp3tEngineConfig().retentionDays).toBe(14); // SPECS §7.11: the white paper's 14
  });
});

describe('DP-3T engine: report (SPECS §2.1 upload on diagnosis)', () => {
  it('reveals exactly SK of the first infectious day; the chain restarts with a fresh SK whose EphIDs are not derivable', () => {
    const run = rotateUntil(start(), D0, D0 + 3 * DAY + 12 * 3_600_000);
    const [, k1] = run.state.keys;
    const diagnosedAt = D0 + 3 * DAY + 12 * 3_600_000;
    const report = dp3tEngine.report(deps, config, run.state, D0 + DAY + 6 * 3_600_000, diagnosedAt, run.drbg);
    expect(report.records).toEqual([{ protocol: 'dp3t-seed', seed: k1?.sk, day: DAY0 + 1 }]);
    // What the record lets anyone derive: every EphID of day 1 on, none of day 0.
    const revealed = new Set(ephIdsForDays(nodeSuite, k1?.sk ?? new Uint8Array(32), 30).flat().map(hex));
    for (const a of run.aired) expect(revealed.has(hex(a.payload))).toBe(a.at >= D0 + DAY);
    // After the report: one fresh key for today, not on the reported chain; its EphIDs (today's rest, later days) not derivable.
    expect(report.state.keys).toHaveLength(1);
    expect(report.state.keys[0]?.day).toBe(DAY0 + 3);
    expect(hex(report.state.keys[0]?.sk ?? new Uint8Array(0))).not.toBe(hex(dayKeyAfter(nodeSuite, k1?.sk ?? new Uint8Array(32), 2)));
    expect(report.drbg.counter).toBeGreaterThan(run.drbg.counter);
    const after = rotateUntil({ state: report.state, drbg: report.drbg, aired: [] }, diagnosedAt, diagnosedAt + 3 * DAY);
    expect(after.aired).toHaveLength(3 * 96);
    for (const a of after.aired) expect(revealed.has(hex(a.payload))).toBe(false);
  });

  it('an infectious period before the first key reports the first key; none before any rotation', () => {
    const run = rotateUntil(start(), D0 + 20 * 3_600_000, D0 + DAY + EPOCH);
    const report = dp3tEngine.report(deps, config, run.state, D0 - 5 * DAY, D0 + DAY + EPOCH, run.drbg);
    expect(report.records).toEqual([{ protocol: 'dp3t-seed', seed: run.state.keys[0]?.sk, day: DAY0 }]);
    const none = dp3tEngine.report(deps, config, start().state, D0, D0 + 1, seedOf(1));
    expect(none.records).toEqual([]);
  });
});

describe('DP-3T engine: observations and retention (SPECS §2.1, §7.11)', () => {
  it('refuses payloads of the wrong length and impossible RSSI, counts them, and averages one observation per EphID per window', () => {
    const id = new Uint8Array(16).fill(9);
    const frames = [frame(id, D0 + 1000, -60), frame(id, D0 + 1250, -64), frame(new Uint8Array(20), D0 + 1300), frame(new Uint8Array(15), D0 + 1400), frame(id, D0 + 1500, 99), frame(new Uint8Array(16).fill(3), D0 + 1600, -80)];
    const out = dp3tEngine.observe(deps, config, start().state, frames, D0 + 4000);
    expect(out.refused).toBe(3);
    expect(out.state.store.days).toHaveLength(1);
    expect(out.state.store.days[0]?.observations).toEqual([
      { ephId: id, receivedAtMs: D0 + 1000, rssiDbm: -62 },
      { ephId: new Uint8Array(16).fill(3), receivedAtMs: D0 + 1600, rssiDbm: -80 },
    ]);
    expect(dp3tEngine.observe(deps, config, out.state, [frame(new Uint8Array(0), D0)], D0).state).toBe(out.state);
  });

  it('expire drops observations and keys older than the retention (14 days) to the millisecond', () => {
    let run = rotateUntil(start(), D0, D0 + 20 * DAY);
    for (let d = 0; d < 20; d++) run.state = dp3tEngine.observe(deps, config, run.state, [frame(new Uint8Array(16).fill(d), D0 + d * DAY + 6 * 3_600_000)], D0 + d * DAY + 6 * 3_600_000).state;
    const at = D0 + 19 * DAY + 7 * 3_600_000;
    const before = dp3tEngine.storageBytes(run.state);
    const kept = dp3tEngine.expire(config, run.state, at);
    const oldest = dp3tEngine.oldestHeld(kept);
    expect(oldest).toBeGreaterThanOrEqual(at - 14 * DAY);
    // Day 5's observation (at 06:00) is 14 days and 1 h old: gone; day 6's stays. Keys whose day ended before the horizon go.
    expect(kept.store.days.map((d) => d.day - DAY0)).toEqual([6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    expect(kept.keys.map((k) => k.day - DAY0)).toEqual([5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    expect(kept.keys[kept.keys.length - 1]).toBe(run.state.keys[run.state.keys.length - 1]);
    expect(dp3tEngine.storageBytes(kept)).toBeLessThan(before);
    expect(dp3tEngine.expire(config, kept, at)).toBe(kept);
    run = { ...run, state: kept };
    expect(dp3tEngine.storageBytes(run.state)).toBe(15 * 34 + 96 + 14 * 25);
  });
});

describe('DP-3T engine: matching (SPECS §2.1 matches_with_key)', () => {
  // The positive broadcast for two days; its report names day 0.
  const positive = rotateUntil(start(7), D0, D0 + 2 * DAY);
  const airedAt = (t: number): Uint8Array => positive.aired.find((a) => a.at <= t && t < a.nextAt)?.payload ?? new Uint8Array(16);
  const record = asRecord({ protocol: 'dp3t-seed', seed: positive.state.keys[0]?.sk ?? new Uint8Array(32), day: DAY0 });
  const releasedAt = D0 + 2 * DAY + 3_600_000;

  it('finds planted encounters: 30 min close on day 1 is high, 10 min low, 30 min far nothing', () => {
    let s = start(8).state;
    s = hear(s, airedAt, D0 + DAY + 9 * 3_600_000, D0 + DAY + 9 * 3_600_000 + 30 * MIN);
    s = hear(s, airedAt, D0 + 10 * 3_600_000, D0 + 10 * 3_600_000 + 10 * MIN);
    s = hear(s, airedAt, D0 + 14 * 3_600_000, D0 + 14 * 3_600_000 + 30 * MIN, -75);
    const out = dp3tEngine.match(deps, config, s, [record], releasedAt);
    expect(out.exposures).toEqual([
      { recordId: record.id, dayNumber: DAY0, firstAt: D0 + 10 * 3_600_000, lastAt: D0 + 10 * 3_600_000 + 5 * MIN, minutes: 10, risk: 'low' },
      { recordId: record.id, dayNumber: DAY0 + 1, firstAt: D0 + DAY + 9 * 3_600_000, lastAt: D0 + DAY + 9 * 3_600_000 + 25 * MIN, minutes: 30, risk: 'high' },
    ]);
    // Other protocols' records and observations after the download are not matched.
    expect(dp3tEngine.match(deps, config, s, [record], D0 + 10 * 3_600_000).exposures).toEqual([]);
    expect(dp3tEngine.match(deps, config, s, [{ protocol: 'gaen-tek', key: new Uint8Array(16), rollingStartIntervalNumber: 0, rollingPeriod: 144, transmissionRisk: 1, id: 'x' }], releasedAt).exposures).toEqual([]);
  });

  it('a window across an epoch boundary hears two EphIDs of the key and counts once', () => {
    let s = start(8).state;
    const boundary = D0 + 9 * 3_600_000;
    for (let k = 0; k < 3; k++) {
      const from = boundary - 2000 + k * DP3T_TIMING.scanIntervalMs;
      const frames = Array.from({ length: 16 }, (_, i) => frame(airedAt(from + 250 * i), from + 250 * i, -60));
      s = dp3tEngine.observe(deps, config, s, frames, from + 4000).state;
    }
    expect(s.store.days[0]?.observations).toHaveLength(4);
    expect(dp3tEngine.match(deps, config, s, [record], releasedAt).exposures.map((e) => [e.minutes, e.risk])).toEqual([[15, 'high']]);
  });

  it('ignores observations of the EphID on a different day', () => {
    // Day 0's EphIDs replayed on day 1 (a relay or a wrong clock): no match.
    const s = hear(start(8).state, (t) => airedAt(t - DAY), D0 + DAY + 9 * 3_600_000, D0 + DAY + 11 * 3_600_000);
    expect(s.store.days.map((d) => d.day)).toEqual([DAY0 + 1]);
    expect(dp3tEngine.match(deps, config, s, [record], releasedAt).exposures).toEqual([]);
  });

  it('averages a run of windows: one noisy window over the threshold among far ones does not count', () => {
    let s = hear(start(8).state, airedAt, D0 + 9 * 3_600_000, D0 + 11 * 3_600_000, -70);
    s = hear(s, airedAt, D0 + 11 * 3_600_000, D0 + 11 * 3_600_000 + 10 * MIN, -66); // same run: mean stays under −68
    expect(dp3tEngine.match(deps, config, s, [record], releasedAt).exposures).toEqual([]);
    const perWindow = dp3tEngineConfig({ rssiAveraging: 'window' });
    expect(dp3tEngine.match(deps, perWindow, s, [record], releasedAt).exposures.map((e) => [e.minutes, e.risk])).toEqual([[10, 'low']]);
  });
});

describe('DP-3T on the tracing phone machine', () => {
  const machine = createTracingPhoneMachine(dp3tEngine, { crypto: nodeSuite, publicKeys: KS_PUBLIC_KEYS });
  const envelope = (type: string, at: number): { v: 1; type: string; id: string; from: string; at: number; body: WireValue } => ({ v: 1, type, id: `ks1.${type}.${at}`, from: 'key-server/ks1', at, body: {} });

  function phone(id: string, seed: number) {
    const actor = createActor(machine, { input: { phoneId: id, serverId: 'ks1', seed: new Uint8Array(32).fill(seed), engine: config } });
    const effects: Effect[] = [];
    actor.on('*', (e: Effect) => effects.push(e));
    actor.start();
    const send = (event: TracingPhoneEvent): Effect[] => {
      const from = effects.length;
      actor.send(event);
      return effects.slice(from);
    };
    return { actor, effects, send, context: (): TracingPhoneContext<Dp3tState, typeof config> => actor.getSnapshot().context };
  }

  it('every advertising set asks for a new address and comes with the rotate timer at the next epoch', () => {
    const p = phone('p1', 1);
    let now = D0 + 7 * 3_600_000 + 13 * MIN;
    const sets: [number, Effect[]][] = [[now, p.send({ type: 'host.start', at: now })]];
    for (let i = 0; i < 100; i++) {
      now = p.context().timers.rotate ?? 0;
      sets.push([now, p.send({ type: 'timer.rotate', at: now })]);
    }
    const seen = new Set<string>();
    for (const [at, step] of sets) {
      const ad = step.filter((e) => e.type === 'radio.advertise');
      expect(ad).toHaveLength(1);
      const set = ad[0];
      if (set?.type !== 'radio.advertise') throw new Error('unreachable');
      expect(set.newAddress).toBe(true);
      expect(set.payloads).toHaveLength(1);
      seen.add(hex(set.payloads[0] ?? new Uint8Array(0)));
      const timer = step.find((e) => e.type === 'timer.set' && e.name === 'rotate');
      expect(timer?.type === 'timer.set' ? timer.deadline : -1).toBe((Math.floor(at / EPOCH) + 1) * EPOCH);
    }
    expect(seen.size).toBe(101);
    expect(p.context().counters.rotations).toBe(101);
  });

  it('a diagnosis uploads the dp3t-seed record through the key server, and a phone that met the positive is notified', () => {
    const ks = server();
    const positive = phone('pos', 1);
    const contact = phone('con', 2);
    let now = D0 + 8 * 3_600_000;
    positive.send({ type: 'host.start', at: now });
    contact.send({ type: 'host.start', at: now });
    // 40 minutes side by side: the contact's windows hear the positive's current EphID.
    for (let t = now; t < now + 40 * MIN; t += DP3T_TIMING.scanIntervalMs) {
      const on = positive.context().advertising?.payloads[0] ?? new Uint8Array(0);
      contact.send({ type: 'radio.frames', at: t + 4000, frames: Array.from({ length: 16 }, (_, k) => frame(on, t + 250 * k, -61)) });
      if ((positive.context().timers.rotate ?? Infinity) <= t + DP3T_TIMING.scanIntervalMs) positive.send({ type: 'timer.rotate', at: positive.context().timers.rotate ?? 0 });
    }
    now += 2 * 3_600_000;
    const code = freshCode('clinic-a', now);
    expect(replyBody<{ ok: boolean }>(ks.msg('keys.codes.register', registerBody(code), now, 'operator/op'), 'keys.admin.result').ok).toBe(true);
    const sent = positive.send({ type: 'tracing.diagnosed', at: now, code: code.text, infectiousFrom: D0 });
    const upload = sent.find((e) => e.type === 'bus.send' && e.msgType === 'keys.upload');
    if (upload?.type !== 'bus.send') throw new Error('no upload');
    expect(sent.some((e) => e.type === 'radio.advertise' && e.newAddress === true)).toBe(true);
    const body = keysUploadCodec.decode(upload.body);
    if (!body.ok) throw new Error(body.detail);
    const ack = replyBody<{ trackingId: string }>(ks.msg('keys.upload', body.value, now + 100, 'phone/pos'), 'keys.upload.ack');
    positive.send({ type: 'msg.keys.upload.ack', at: now + 200, envelope: envelope('keys.upload.ack', now + 200), body: ack });
    expect(positive.actor.getSnapshot().value).toBe('reported');
    expect([...ks.context.ledger.records.values()].length).toBe(1);

    const index = mustAnnounce(ks.tick(now + 15 * MIN));
    let at = now + 15 * MIN + 1;
    const queue = requestedNames(contact.send({ type: 'msg.keys.index', at, envelope: envelope('keys.index', at), body: index }));
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
      at += 10;
      queue.push(...requestedNames(contact.send({ type: 'msg.keys.file', at, envelope: envelope('keys.file', at), body: serve(ks, name) })));
    }
    const c = contact.context();
    expect(c.counters.recordsMatched).toBe(1);
    expect(c.notifications).toEqual([expect.objectContaining({ dayNumber: DAY0, risk: 'high', minutes: 40 })]);
    expect(c.health.color).not.toBe('green');
  });
});
