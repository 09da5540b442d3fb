import { startMachine } from '../support/harness.ts';
import type { AnyStateMachine } from 'xstate';
import { describe, expect, it } from 'vitest';
import type { Effect } from '../../actors/effects.ts';
import { createAppBackendMachine, hex, liveRecords, nextDeadline, recordBySk, windowDeadline, type AppBackendContext, type AppBackendEvent, type AppBackendInput } from '../../actors/quarantine/app-backend.ts';
import { parseFernetKey } from '../../protocol/beacon/fernet.ts';
import { createPresenceToken } from '../../protocol/beacon/presence-token.ts';
import { nobleSuite } from '../../protocol/crypto/noble.ts';
import { alertRaiseCodec, tokensAckCodec, type AlertRaise, type TokensAck } from '../../protocol/quarantine/messages.ts';
import type { WireValue } from '../../protocol/wire/msgpack.ts';
import { exploreModel } from '../support/model.ts';

const T0 = 1_767_225_600_000;
const W = 6 * 60_000;
const TOL = 60_000;
const RETRY = 30_000;
const POLICE = 'tc/v1/police-backend/p1/alerts';
const PHONE_INBOX = 'tc/v1/phone/ph1/inbox';
const HA_INBOX = 'tc/v1/health-authority/ha/inbox';
const AB_INBOX = 'tc/v1/app-backend/ab1/inbox';
const input: AppBackendInput = { id: 'ab1', policeAlertsTopic: POLICE, inboxTopic: AB_INBOX, windowMs: W, toleranceMs: TOL, alertRetryMs: RETRY };
const machine = createAppBackendMachine({ crypto: nobleSuite });

const SK = new Uint8Array(32).fill(0x11);
const BEACON_KEY = new Uint8Array(32).map((_, i) => i + 1);
const OTHER_KEY = new Uint8Array(32).fill(0x42);
const BEACON = 'beacon-7';
const ENDS = T0 + 14 * 24 * 3600_000;
/** Monitoring starts here. */
const E = T0 + 60_000;

let ivCounter = 0;
function token(atMs: number, key: Uint8Array = BEACON_KEY): Uint8Array {
  const iv = new Uint8Array(16).fill(++ivCounter & 0xff);
  return createPresenceToken(nobleSuite, parseFernetKey(key), Math.floor(atMs / 1000), iv);
}

let msgId = 0;
function msg<T extends string, B>(type: T, body: B, at: number, replyTo?: string) {
  const envelope = { v: 1 as const, type, id: `m${++msgId}`, from: 'phone/ph1', at, body: null, ...(replyTo === undefined ? {} : { replyTo }) };
  return { type: `msg.${type}` as const, at, envelope, body };
}

const register = (at = T0) => msg('quarantine.register', { sk: SK, tPast: T0 - 3600_000, beaconId: BEACON, beaconKey: BEACON_KEY, endsAt: ENDS }, at, HA_INBOX);
const enable = (at = E) => msg('monitoring.enable', { beaconId: BEACON }, at);
const forward = (batch: number, tokens: readonly { token: Uint8Array; receivedAt: number }[], at: number, sk: Uint8Array = SK) =>
  msg('tokens.forward', { sk, batch, tuples: tokens }, at, PHONE_INBOX);
const tuple = (t: Uint8Array, receivedAt: number) => ({ token: t, receivedAt });
/** The backend's single timer firing at `at`. */
const due = (at: number) => ({ type: 'timer.due' as const, at });
const armDue = (deadline: number) => ({ type: 'timer.set', name: 'due', deadline });
/** A window is checked 1 ms after its deadline (WINDOW_CHECK_AFTER_MS): a token arriving at the deadline still counts. */
const CHECK = 1;

function start() {
  return startMachine<AppBackendContext, AppBackendEvent>(machine as AnyStateMachine, input, T0);
}

function monitored() {
  const h = start();
  h.send(register());
  h.send(enable());
  return h;
}

const busSends = (effects: readonly Effect[]) => effects.filter((e): e is Extract<Effect, { type: 'bus.send' }> => e.type === 'bus.send');
const alerts = (effects: readonly Effect[]): AlertRaise[] =>
  busSends(effects)
    .filter((e) => e.msgType === 'alert.raise')
    .map((e) => {
      const v = alertRaiseCodec.decode(e.body);
      if (!v.ok) throw new Error(v.detail);
      return v.value;
    });
function ackOf(effects: readonly Effect[]): TokensAck {
  const sends = busSends(effects).filter((e) => e.msgType === 'tokens.ack');
  expect(sends).toHaveLength(1);
  expect(sends[0]!.topic).toBe(PHONE_INBOX);
  const v = tokensAckCodec.decode(sends[0]!.body);
  if (!v.ok) throw new Error(v.detail);
  return v.value;
}

describe('app backend: registration and monitoring', () => {
  it('register replies to replyTo and arms the due timer at the end; enable moves it to the window deadline', () => {
    const h = start();
    const reg = h.send(register());
    expect(reg).toContainEqual(armDue(ENDS));
    expect(busSends(reg)).toEqual([expect.objectContaining({ topic: HA_INBOX, msgType: 'quarantine.registered', body: { beaconId: BEACON } })]);
    expect(recordBySk(h.ctx(), hex(SK))?.monitoring).toBe(false);
    expect(h.send(register())).toHaveLength(1); // redelivery: re-acknowledged only
    const en = h.send(enable());
    expect(en).toEqual([armDue(E + W + TOL + CHECK)]);
    expect(recordBySk(h.ctx(), hex(SK))?.monitoring).toBe(true);
  });

  it('no window deadline and no alert before monitoring.enable or after monitoring.disable', () => {
    const h = start();
    h.send(register());
    expect(h.send(due(E + W + TOL))).toEqual([]); // stale: the only deadline is the end
    h.send(enable());
    expect(h.send(msg('monitoring.disable', { beaconId: BEACON }, E + 1))).toEqual([armDue(ENDS)]);
    expect(h.send(due(E + W + TOL + CHECK))).toEqual([]);
    expect(h.ctx().counters.alertsRaised).toBe(0);
  });
});

describe('app backend: tokens', () => {
  it('valid tokens keep a record compliant and update lastValidTokenAt and the delay score', () => {
    const h = monitored();
    let ts = E;
    for (let batch = 1; batch <= 5; batch++) {
      ts += 5 * 60_000;
      const fx = h.send(forward(batch, [tuple(token(ts), ts + 1000)], ts + 4000));
      expect(ackOf(fx)).toEqual({ batch, accepted: 1, rejected: 0 });
      // The window restarts at the batch's arrival (ts + 4 s), not at the token's timestamp.
      expect(fx).toContainEqual(armDue(ts + 4000 + W + TOL + CHECK));
      // the previous deadline passes: the host replaced it, a stale firing changes nothing
      expect(h.send(due(ts - 5 * 60_000 + 4000 + W + TOL + CHECK))).toEqual([]);
    }
    const rec = recordBySk(h.ctx(), hex(SK))!;
    expect(rec.lastValidTokenAt).toBe(ts);
    expect(rec.delay).toEqual({ samples: 5, meanMs: 4000, ewmaMs: 4000 });
    expect(h.ctx().counters).toMatchObject({ tokensValid: 5, alertsRaised: 0, batchesApplied: 5 });
  });

  it('a replayed token never counts, in the same batch or a later one', () => {
    const h = monitored();
    const t = token(E + 60_000);
    expect(ackOf(h.send(forward(1, [tuple(t, E + 60_000), tuple(t, E + 60_000)], E + 61_000)))).toEqual({ batch: 1, accepted: 1, rejected: 1 });
    expect(ackOf(h.send(forward(2, [tuple(t, E + 60_000)], E + 62_000)))).toEqual({ batch: 2, accepted: 0, rejected: 1 });
    expect(h.ctx().counters).toMatchObject({ tokensValid: 1, replays: 2 });
  });

  it('a forged token (wrong key) is rejected by reason and does not move the window', () => {
    const h = monitored();
    const fx = h.send(forward(1, [tuple(token(E + 60_000, OTHER_KEY), E + 60_000)], E + 61_000));
    expect(ackOf(fx)).toEqual({ batch: 1, accepted: 0, rejected: 1 });
    expect(fx.filter((e) => e.type === 'timer.set')).toEqual([]);
    expect(h.ctx().counters.tokensInvalid).toEqual({ 'bad-hmac': 1 });
    expect(recordBySk(h.ctx(), hex(SK))?.lastValidTokenAt).toBeNull();
  });

  it('a token older than window + tolerance is rejected as expired', () => {
    const h = monitored();
    ackOf(h.send(forward(1, [tuple(token(E + 60_000), E + 60_000)], E + 60_000 + W + TOL + 1000)));
    expect(h.ctx().counters.tokensInvalid).toEqual({ expired: 1 });
  });

  it('a token forwarded 5 minutes after it was heard (the forwarding period) still counts', () => {
    const h = monitored();
    ackOf(h.send(forward(1, [tuple(token(E + 60_000), E + 60_000)], E + 60_000 + 5 * 60_000)));
    expect(h.ctx().counters.tokensInvalid).toEqual({});
    expect(h.ctx().counters.tokensValid).toBe(1);
  });

  it('a re-sent batch is re-acknowledged with the same numbers, not recounted', () => {
    const h = monitored();
    const batch = forward(7, [tuple(token(E + 60_000), E + 60_000), tuple(token(E + 60_000, OTHER_KEY), E + 60_000)], E + 61_000);
    const first = ackOf(h.send(batch));
    const before = h.ctx().counters;
    const again = h.send({ ...batch, at: E + 90_000 });
    expect(ackOf(again)).toEqual(first);
    expect(again.filter((e) => e.type !== 'bus.send')).toEqual([]);
    expect(h.ctx().counters).toEqual({ ...before, batchesReacked: 1 });
    expect(h.ctx().counters.replays).toBe(0);
  });

  it('an unknown sk is acknowledged with every tuple rejected', () => {
    const h = monitored();
    const fx = h.send(forward(3, [tuple(token(E), E), tuple(token(E), E)], E + 1000, new Uint8Array(32).fill(9)));
    expect(ackOf(fx)).toEqual({ batch: 3, accepted: 0, rejected: 2 });
    expect(h.ctx().counters).toMatchObject({ tokensValid: 0, batchesApplied: 0, tokensInvalid: { 'unknown-sk': 2 } });
  });
});

describe('app backend: alerts', () => {
  it('silence beyond window + tolerance raises exactly one alert per window; retries until ack', () => {
    const h = monitored();
    const D = E + W + TOL; // the window's deadline; checked at D + CHECK
    expect(h.send(due(D))).toEqual([]); // not yet: a token may still arrive at D
    const fired = h.send(due(D + CHECK));
    expect(alerts(fired)).toEqual([{ alertId: `${BEACON}:${E}`, beaconId: BEACON, windowStart: E, windowEnd: E + W, reason: 'no-valid-token' }]);
    // next deadlines: the retry (RETRY < W) before the next window's
    expect(recordBySk(h.ctx(), hex(SK))).toMatchObject({ windowStart: E + W, retryAt: D + CHECK + RETRY });
    expect(fired).toContainEqual(armDue(D + CHECK + RETRY));
    // a duplicate firing of the same deadline raises nothing
    expect(h.send(due(D + CHECK))).toEqual([]);
    // retry resends the same alert (same alertId) until acknowledged
    const retried = h.send(due(D + CHECK + RETRY));
    expect(alerts(retried).map((a) => a.alertId)).toEqual([`${BEACON}:${E}`]);
    expect(retried).toContainEqual(armDue(D + CHECK + 2 * RETRY));
    const acked = h.send(msg('alert.ack', { alertId: `${BEACON}:${E}` }, D + RETRY + 5));
    expect(acked).toEqual([armDue(D + W + CHECK)]); // no retry left: the next window's check
    expect(h.send(due(D + CHECK + 2 * RETRY))).toEqual([]);
    // the next silent window raises its own alert
    const second = alerts(h.send(due(D + W + CHECK)));
    expect(second.map((a) => a.alertId)).toEqual([`${BEACON}:${E + W}`]);
    expect(h.ctx().counters).toMatchObject({ alertsRaised: 2, alertsResent: 1 });
  });

  it('a late firing (e.g. after a restart) raises one alert per missed window, in order', () => {
    const h = monitored();
    const late = E + 3 * W + TOL + CHECK;
    const fired = alerts(h.send(due(late)));
    expect(fired.map((a) => a.windowStart)).toEqual([E, E + W, E + 2 * W]);
    expect(recordBySk(h.ctx(), hex(SK))?.windowStart).toBe(E + 3 * W);
    expect(h.ctx().timers).toEqual({ due: late + RETRY });
  });

  it('boundary: a valid token arriving exactly at window + tolerance keeps the patient compliant', () => {
    const h = monitored();
    const deadline = E + W + TOL;
    const ts = deadline - 5 * 60_000; // heard 5 min before it reached the backend (forwarding period)
    h.send(forward(1, [tuple(token(ts), ts)], deadline));
    expect(alerts(h.send(due(deadline + CHECK)))).toEqual([]);
    expect(windowDeadline(input, recordBySk(h.ctx(), hex(SK))!)).toBe(deadline + W + TOL);
    expect(h.ctx().timers).toEqual({ due: deadline + W + TOL + CHECK });
  });

  it('boundary: a valid token arriving 1 s after window + tolerance does not save the window', () => {
    const h = monitored();
    const deadline = E + W + TOL;
    const raised = alerts(h.send(due(deadline + CHECK)));
    expect(raised).toEqual([{ alertId: `${BEACON}:${E}`, beaconId: BEACON, windowStart: E, windowEnd: E + W, reason: 'no-valid-token' }]);
    const ts = deadline - 60_000;
    h.send(forward(1, [tuple(token(ts), ts)], deadline + 1000));
    // the next window starts at that arrival
    expect(windowDeadline(input, recordBySk(h.ctx(), hex(SK))!)).toBe(deadline + 1000 + W + TOL);
  });

  it('a token older than window + tolerance on arrival does not count as evidence (offline phone)', () => {
    const h = monitored();
    const arrival = E + 60_000;
    const ts = arrival - (W + TOL) - 1000;
    h.send(forward(1, [tuple(token(ts), ts)], arrival));
    expect(h.ctx().counters.tokensInvalid).toEqual({ expired: 1 });
    expect(h.ctx().timers).toEqual({ due: E + W + TOL + CHECK });
  });

  it('privacy: messages to the police carry only alertId, beaconId, window and reason', () => {
    const h = monitored();
    h.send(forward(1, [tuple(token(E + 1000), E + 1000)], E + 2000));
    for (let k = 1; k <= 6; k++) h.send(due(h.ctx().timers['due']!)); // alerts and their retries
    const toPolice = busSends(h.effects).filter((e) => e.topic === POLICE);
    expect(toPolice.length).toBeGreaterThanOrEqual(3);
    const secrets = [hex(SK), hex(BEACON_KEY)];
    for (const e of toPolice) {
      expect(e.msgType).toBe('alert.raise');
      // The reply address is the backend's own inbox: nothing about the patient.
      expect(e.replyTo).toBe(AB_INBOX);
      const body = e.body as Record<string, WireValue>;
      expect(Object.keys(body).sort()).toEqual(['alertId', 'beaconId', 'reason', 'windowEnd', 'windowStart']);
      for (const v of Object.values(body)) expect(typeof v === 'string' || typeof v === 'number').toBe(true);
      const text = JSON.stringify(body);
      for (const s of secrets) expect(text).not.toContain(s);
    }
    // nothing else leaves the backend towards anyone but the phone and the health authority
    for (const e of busSends(h.effects)) expect([POLICE, PHONE_INBOX, HA_INBOX]).toContain(e.topic);
  });
});

describe('app backend: quarantine end', () => {
  it('quarantine.end deletes the record and cancels the timer when no deadline is left', () => {
    const h = monitored();
    h.send(due(E + W + TOL + CHECK)); // an alert pending → retry deadline set
    const fx = h.send(msg('quarantine.end', { beaconId: BEACON }, E + W + TOL + 2));
    expect(fx).toEqual([{ type: 'timer.cancel', name: 'due' }]);
    expect(liveRecords(h.ctx())).toEqual([]);
    expect(h.ctx().slotByBeacon).toEqual({});
    expect(h.ctx().slotBySk).toEqual({});
    expect(h.ctx().timers).toEqual({});
    // tokens for the ended record are now an unknown sk
    expect(ackOf(h.send(forward(9, [tuple(token(E + W), E + W)], E + W + 1000)))).toEqual({ batch: 9, accepted: 0, rejected: 1 });
  });

  it('the record is deleted at endsAt, and no alert is raised for a window closing after it', () => {
    const h = start();
    h.send(register());
    expect(h.send(due(ENDS - 1))).toEqual([]);
    h.send(due(ENDS));
    expect(liveRecords(h.ctx())).toEqual([]);
    expect(h.ctx().timers).toEqual({});
    // monitored until the end, a token at ENDS − W keeps the last window open past ENDS
    const m = monitored();
    const ts = ENDS - W;
    m.send(forward(1, [tuple(token(ts), ts)], ts));
    m.send(due(ENDS - W - 1)); // windows before the token raise their alerts
    const before = m.ctx().counters.alertsRaised;
    const atEnd = m.send(due(ENDS));
    expect(alerts(atEnd).filter((a) => a.windowStart >= ts)).toEqual([]);
    expect(liveRecords(m.ctx())).toEqual([]);
    expect(m.ctx().counters.alertsRaised).toBe(before);
  });
});

describe('app backend: model-based', () => {
  it('reaches every state; no alert for a window holding a valid token; a replay never counts', () => {
    const valid = token(E + 60_000);
    const forged = token(E + 60_000, OTHER_KEY);
    let acceptedTs: number[] = [];
    let prevValid = 0;
    const serialize = (value: unknown, context: AppBackendContext): string => {
      const rec = recordBySk(context, hex(SK));
      const status = rec === undefined ? 'none' : rec.monitoring ? 'monitoring' : 'registered';
      return `${JSON.stringify(value)}|${status}|alert=${(rec?.pendingAlerts.length ?? 0) > 0}`;
    };
    const reached = exploreModel<AppBackendContext, AppBackendEvent>(machine, {
      input,
      events: [
        { type: 'host.start', at: T0 },
        register(),
        enable(),
        forward(1, [tuple(valid, E + 60_000)], E + 65_000),
        forward(2, [tuple(valid, E + 60_000)], E + 66_000), // replay in a new batch
        forward(3, [tuple(forged, E + 60_000)], E + 67_000),
        due(E + W + TOL + CHECK),
        due(E + W + TOL + CHECK + RETRY),
        msg('alert.ack', { alertId: `${BEACON}:${E}` }, E + W + TOL + 10),
        msg('monitoring.disable', { beaconId: BEACON }, E + 2),
        msg('quarantine.end', { beaconId: BEACON }, E + 3),
        due(ENDS),
        { type: 'host.stop', at: T0 + 4 },
      ],
      serialize,
      invariant: ({ event, context, effects }) => {
        if (event.type === 'host.start') {
          acceptedTs = [];
          prevValid = 0;
        }
        if (context.counters.tokensValid > prevValid) acceptedTs.push(E + 60_000);
        prevValid = context.counters.tokensValid;
        // one distinct valid token exists: however often it is replayed, it counts at most once
        expect(context.counters.tokensValid).toBeLessThanOrEqual(1);
        for (const a of alerts(effects)) {
          for (const ts of acceptedTs) expect(ts > a.windowStart && ts <= a.windowEnd).toBe(false);
        }
        for (const e of busSends(effects)) if (e.topic === POLICE) expect(e.msgType).toBe('alert.raise');
        // the one timer sits at the earliest deadline; an unacknowledged alert always has a retry deadline
        expect(context.timers['due']).toBe(nextDeadline(context));
        for (const rec of liveRecords(context)) if (rec.pendingAlerts.length > 0) expect(rec.retryAt).toBeTypeOf('number');
      },
    });
    for (const key of [
      '"idle"|none|alert=false',
      '"running"|none|alert=false',
      '"running"|registered|alert=false',
      '"running"|monitoring|alert=false',
      '"running"|monitoring|alert=true',
      '"running"|registered|alert=true',
      '"stopped"|none|alert=false',
      '"stopped"|monitoring|alert=true',
    ]) {
      expect(reached.has(key), key).toBe(true);
    }
  });
});
