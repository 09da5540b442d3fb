import { createActor } from 'xstate';
import { describe, expect, it } from 'vitest';
import type { Effect } from '../../actors/effects.ts';
import { createPoliceBackendMachine, type PoliceBackendContext, type PoliceBackendEvent, type PoliceBackendInput } from '../../actors/quarantine/police-backend.ts';
import type { AlertRaise } from '../../protocol/quarantine/messages.ts';
import { exploreModel } from '../support/model.ts';

const T0 = 1_767_225_600_000;
const W = 6 * 60_000;
const CONTROL = 'tc/v1/app-backend/ab1/control';
const APP_INBOX = 'tc/v1/app-backend/ab1/inbox';
const OFFICER = 'tc/v1/collector/officer-1/inbox';
const BEACON = 'beacon-7';
const ADDRESS = '12 Rue des Lilas, 75020 Paris';
const input: PoliceBackendInput = { id: 'p1', appBackendControlTopic: CONTROL };
const machine = createPoliceBackendMachine();

let msgId = 0;
function msg<T extends string, B>(type: T, body: B, at: number, replyTo?: string, from = 'app-backend/ab1') {
  const envelope = { v: 1 as const, type, id: `m${++msgId}`, from, at, body: null, ...(replyTo === undefined ? {} : { replyTo }) };
  return { type: `msg.${type}` as const, at, envelope, body };
}
const alertOf = (windowStart: number, beaconId = BEACON): AlertRaise => ({
  alertId: `${beaconId}:${windowStart}`,
  beaconId,
  windowStart,
  windowEnd: windowStart + W,
  reason: 'no-valid-token',
});
const raise = (a: AlertRaise, at: number) => msg('alert.raise', a, at, APP_INBOX);
const officer = <T extends string, B>(type: T, body: B, at: number) => msg(type, body, at, OFFICER, 'collector/officer-1');
const registerBeacon = (at = T0, address = ADDRESS) => officer('beacon.register', { beaconId: BEACON, address }, at);
const timer = (name: string, at: number) => ({ type: `timer.${name}` as const, at });

function start(inp: PoliceBackendInput = input) {
  const actor = createActor(machine, { input: inp });
  const effects: Effect[] = [];
  /** Context as seen at the moment each effect was emitted (ack-after-store check). */
  const seenAt: PoliceBackendContext[] = [];
  actor.on('*', (e: Effect) => {
    effects.push(e);
    seenAt.push(actor.getSnapshot().context);
  });
  actor.start();
  actor.send({ type: 'host.start', at: T0 });
  const send = (event: PoliceBackendEvent): Effect[] => {
    const from = effects.length;
    actor.send(event);
    return effects.slice(from);
  };
  const ctx = (): PoliceBackendContext => actor.getSnapshot().context;
  return { actor, effects, seenAt, send, ctx };
}

const busSends = (effects: readonly Effect[]) => effects.filter((e): e is Extract<Effect, { type: 'bus.send' }> => e.type === 'bus.send');

describe('police backend: beacons', () => {
  it('beacon.register stores the beacon, confirms to replyTo, then enables monitoring at the app backend', () => {
    const h = start();
    const fx = h.send(registerBeacon());
    expect(fx).toEqual([
      { type: 'bus.send', topic: OFFICER, msgType: 'beacon.address', body: { beaconId: BEACON, address: ADDRESS }, qos: 1, corr: `m${msgId}` },
      { type: 'bus.send', topic: CONTROL, msgType: 'monitoring.enable', body: { beaconId: BEACON }, qos: 1 },
    ]);
    expect(h.ctx().beacons).toEqual({ [BEACON]: { address: ADDRESS, installedAt: T0, enabled: true, enableResends: 0 } });
    expect(h.ctx().timers).toEqual({});
  });

  it('a re-registration replaces the address and re-sends the enable', () => {
    const h = start();
    h.send(registerBeacon());
    const fx = h.send(registerBeacon(T0 + 5, '3 Quai Voltaire'));
    expect(busSends(fx).map((e) => [e.topic, e.msgType])).toEqual([[OFFICER, 'beacon.address'], [CONTROL, 'monitoring.enable']]);
    expect(h.ctx().beacons[BEACON]).toEqual({ address: '3 Quai Voltaire', installedAt: T0 + 5, enabled: true, enableResends: 0 });
  });

  it('beacon.resolve replies with the address; an unknown beacon gets no reply and is counted', () => {
    const h = start();
    h.send(registerBeacon());
    const fx = h.send(officer('beacon.resolve', { beaconId: BEACON }, T0 + 1));
    expect(fx).toEqual([{ type: 'bus.send', topic: OFFICER, msgType: 'beacon.address', body: { beaconId: BEACON, address: ADDRESS }, qos: 1, corr: `m${msgId}` }]);
    const unknown = h.send(officer('beacon.resolve', { beaconId: 'beacon-404' }, T0 + 2));
    expect(busSends(unknown)).toEqual([]);
    expect(unknown).toEqual([expect.objectContaining({ type: 'log', level: 'warn' })]);
    expect(h.ctx().counters).toMatchObject({ resolves: 1, unknownBeacon: 1 });
  });

  it('monitoring.disable from an officer marks the beacon disabled and forwards it to the control topic', () => {
    const h = start();
    h.send(registerBeacon());
    const fx = h.send(officer('monitoring.disable', { beaconId: BEACON }, T0 + 10));
    expect(fx).toEqual([{ type: 'bus.send', topic: CONTROL, msgType: 'monitoring.disable', body: { beaconId: BEACON }, qos: 1 }]);
    expect(h.ctx().beacons[BEACON]).toEqual({ address: ADDRESS, installedAt: T0, enabled: false, enableResends: 0 });
    // the address stays resolvable for old alerts
    expect(busSends(h.send(officer('beacon.resolve', { beaconId: BEACON }, T0 + 11)))).toHaveLength(1);
    // an unknown beacon is not forwarded
    expect(busSends(h.send(officer('monitoring.disable', { beaconId: 'beacon-404' }, T0 + 12)))).toEqual([]);
    expect(h.ctx().counters.unknownBeacon).toBe(1);
  });

  it('with controlResendMs, the enable is re-sent while the beacon stays enabled', () => {
    const R = 60_000;
    const h = start({ ...input, controlResendMs: R });
    expect(h.send(registerBeacon())).toContainEqual({ type: 'timer.set', name: `enable:${BEACON}`, deadline: T0 + R });
    expect(h.send(timer(`enable:${BEACON}`, T0 + R - 1))).toEqual([]); // stale
    expect(h.send(timer(`enable:${BEACON}`, T0 + R))).toEqual([
      { type: 'bus.send', topic: CONTROL, msgType: 'monitoring.enable', body: { beaconId: BEACON }, qos: 1 },
      { type: 'timer.set', name: `enable:${BEACON}`, deadline: T0 + 3 * R }, // backoff: 2R after the first resend
    ]);
    const off = h.send(officer('monitoring.disable', { beaconId: BEACON }, T0 + R + 1));
    expect(off).toContainEqual({ type: 'timer.cancel', name: `enable:${BEACON}` });
    expect(h.send(timer(`enable:${BEACON}`, T0 + 3 * R))).toEqual([]);
    expect(h.ctx().timers).toEqual({});
  });

  it('enable resends back off exponentially up to controlResendMaxMs; a re-registration starts over', () => {
    const R = 60_000;
    const MAX = 10 * R;
    const h = start({ ...input, controlResendMs: R, controlResendMaxMs: MAX });
    h.send(registerBeacon());
    const gaps: number[] = [];
    let at = T0 + R;
    for (let k = 0; k < 7; k++) {
      h.send(timer(`enable:${BEACON}`, at));
      const next = h.ctx().timers[`enable:${BEACON}`]!;
      gaps.push(next - at);
      at = next;
    }
    expect(gaps).toEqual([2 * R, 4 * R, 8 * R, MAX, MAX, MAX, MAX]);
    expect(h.ctx().beacons[BEACON]?.enableResends).toBe(7);
    h.send(registerBeacon(at + 1));
    expect(h.ctx().beacons[BEACON]?.enableResends).toBe(0);
    expect(h.ctx().timers[`enable:${BEACON}`]).toBe(at + 1 + R);
  });
});

describe('police backend: alerts', () => {
  it('alert.raise is stored with its receive time, then acked to replyTo', () => {
    const h = start();
    h.send(registerBeacon());
    const a = alertOf(T0 + 60_000);
    const fx = h.send(raise(a, T0 + W + 120_000));
    expect(fx).toEqual([{ type: 'bus.send', topic: APP_INBOX, msgType: 'alert.ack', body: { alertId: a.alertId }, qos: 1, corr: `m${msgId}` }]);
    expect(h.ctx().alerts[a.alertId]).toEqual({ ...a, receivedAt: T0 + W + 120_000, status: 'open', closedAt: null });
    expect(h.ctx().alertsByBeacon).toEqual({ [BEACON]: [a.alertId] });
    expect(h.ctx().counters).toMatchObject({ alertsReceived: 1, alertsOpen: 1, alertsDuplicate: 0 });
  });

  it('ack after store: when the ack is emitted the alert is already in the committed snapshot', () => {
    const h = start();
    const a = alertOf(T0);
    h.send(raise(a, T0 + W));
    const i = h.effects.findIndex((e) => e.type === 'bus.send' && e.msgType === 'alert.ack');
    expect(i).toBeGreaterThanOrEqual(0);
    expect(h.seenAt[i]?.alerts[a.alertId]).toBeDefined();
  });

  it('a repeated alert.raise is re-acked but stored once (first receive time kept)', () => {
    const h = start();
    h.send(registerBeacon());
    const a = alertOf(T0);
    h.send(raise(a, T0 + W));
    const stored = h.ctx().alerts[a.alertId];
    for (let k = 1; k <= 3; k++) {
      const fx = h.send(raise(a, T0 + W + k * 30_000));
      expect(busSends(fx)).toEqual([expect.objectContaining({ topic: APP_INBOX, msgType: 'alert.ack', body: { alertId: a.alertId } })]);
    }
    expect(h.ctx().alerts[a.alertId]).toEqual(stored);
    expect(h.ctx().alertsByBeacon[BEACON]).toEqual([a.alertId]);
    expect(h.ctx().counters).toMatchObject({ alertsReceived: 1, alertsDuplicate: 3, alertsOpen: 1 });
  });

  it('an alert for an unregistered beacon is stored, acked and logged', () => {
    const h = start();
    const a = alertOf(T0, 'beacon-x');
    const fx = h.send(raise(a, T0 + W));
    expect(fx.map((e) => e.type)).toEqual(['log', 'bus.send']);
    expect(h.ctx().alerts[a.alertId]?.status).toBe('open');
  });

  it('alerts are logged per beacon in arrival order', () => {
    const h = start();
    h.send(raise(alertOf(T0), T0 + W));
    h.send(raise(alertOf(T0, 'beacon-9'), T0 + W));
    h.send(raise(alertOf(T0 + W), T0 + 2 * W));
    expect(h.ctx().alertsByBeacon).toEqual({ [BEACON]: [`${BEACON}:${T0}`, `${BEACON}:${T0 + W}`], 'beacon-9': [`beacon-9:${T0}`] });
  });

  it('alert.close closes an open alert once; unknown or repeated closes change nothing', () => {
    const h = start();
    const a = alertOf(T0);
    h.send(raise(a, T0 + W));
    expect(h.send(officer('alert.close', { alertId: a.alertId }, T0 + W + 100))).toEqual([]);
    expect(h.ctx().alerts[a.alertId]).toMatchObject({ status: 'closed', closedAt: T0 + W + 100 });
    h.send(officer('alert.close', { alertId: a.alertId }, T0 + W + 200));
    h.send(officer('alert.close', { alertId: 'beacon-404:1' }, T0 + W + 300));
    expect(h.ctx().alerts[a.alertId]?.closedAt).toBe(T0 + W + 100);
    expect(h.ctx().counters).toMatchObject({ alertsOpen: 0, alertsClosed: 1 });
    // a late redelivery of the closed alert is re-acked and does not reopen it
    expect(busSends(h.send(raise(a, T0 + W + 400)))).toHaveLength(1);
    expect(h.ctx().alerts[a.alertId]?.status).toBe('closed');
  });
});

/** Every Uint8Array and every field name anywhere in a value. */
function scan(value: unknown, path: string, found: { bytes: string[]; keys: string[] }): void {
  if (value instanceof Uint8Array) {
    found.bytes.push(path);
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((v, i) => scan(v, `${path}[${i}]`, found));
    return;
  }
  if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      found.keys.push(k);
      scan(v, `${path}.${k}`, found);
    }
  }
}

describe('police backend: privacy', () => {
  it('after a run of messages the context holds no byte array and no key-named field', () => {
    const h = start({ ...input, controlResendMs: 60_000 });
    h.send(registerBeacon());
    h.send(officer('beacon.register', { beaconId: 'beacon-9', address: '1 Place du Tertre' }, T0 + 1));
    for (let k = 0; k < 5; k++) {
      h.send(raise(alertOf(T0 + k * W), T0 + (k + 1) * W + 60_000));
      h.send(raise(alertOf(T0 + k * W), T0 + (k + 1) * W + 90_000));
    }
    h.send(officer('alert.close', { alertId: `${BEACON}:${T0}` }, T0 + 10 * W));
    h.send(officer('beacon.resolve', { beaconId: BEACON }, T0 + 10 * W));
    h.send(timer(`enable:${BEACON}`, T0 + 60_000));
    h.send(officer('monitoring.disable', { beaconId: 'beacon-9' }, T0 + 10 * W));
    const found = { bytes: [] as string[], keys: [] as string[] };
    scan(h.actor.getPersistedSnapshot(), 'snapshot', found);
    expect(found.bytes).toEqual([]);
    for (const key of found.keys) expect(key).not.toMatch(/^(sk|beaconKey|key|token|tokens)$/i);
    // what is stored is exactly what the split allows
    const alert = Object.values(h.ctx().alerts)[0]!;
    expect(Object.keys(alert).sort()).toEqual(['alertId', 'beaconId', 'closedAt', 'reason', 'receivedAt', 'status', 'windowEnd', 'windowStart']);
    expect(Object.keys(h.ctx().beacons[BEACON]!).sort()).toEqual(['address', 'enableResends', 'enabled', 'installedAt']);
  });
});

describe('police backend: model-based', () => {
  it('reaches every state; every alert.raise is acked; an alertId is stored once', () => {
    const a1 = alertOf(T0);
    const a2 = alertOf(T0 + W);
    const serialize = (value: unknown, context: PoliceBackendContext): string => {
      const b = context.beacons[BEACON];
      const beacon = b === undefined ? 'none' : b.enabled ? 'enabled' : 'disabled';
      const alert = context.alerts[a1.alertId]?.status ?? 'none';
      return `${JSON.stringify(value)}|${beacon}|${alert}|n=${Object.keys(context.alerts).length}`;
    };
    const reached = exploreModel<PoliceBackendContext, PoliceBackendEvent>(machine, {
      input: { ...input, controlResendMs: 60_000 },
      events: [
        { type: 'host.start', at: T0 },
        registerBeacon(),
        officer('beacon.resolve', { beaconId: BEACON }, T0 + 1),
        officer('beacon.resolve', { beaconId: 'beacon-404' }, T0 + 1),
        officer('monitoring.disable', { beaconId: BEACON }, T0 + 2),
        raise(a1, T0 + W),
        raise(a2, T0 + 2 * W),
        officer('alert.close', { alertId: a1.alertId }, T0 + 3 * W),
        timer(`enable:${BEACON}`, T0 + 60_000),
        { type: 'host.stop', at: T0 + 4 * W },
      ],
      serialize,
      invariant: ({ event, context, effects }) => {
        const sends = busSends(effects);
        if (event.type === 'msg.alert.raise') {
          const { alertId } = (event as ReturnType<typeof raise>).body;
          // acked exactly once, to the sender's replyTo, and stored by then
          expect(sends).toEqual([expect.objectContaining({ topic: APP_INBOX, msgType: 'alert.ack', body: { alertId } })]);
          expect(context.alerts[alertId]).toBeDefined();
        } else {
          expect(sends.filter((e) => e.msgType === 'alert.ack')).toEqual([]);
        }
        // stored once: per-beacon logs hold each id once and agree with the alert map
        const logged = Object.values(context.alertsByBeacon).flat();
        expect(new Set(logged).size).toBe(logged.length);
        expect(logged.sort()).toEqual(Object.keys(context.alerts).sort());
        const { alertsReceived, alertsOpen, alertsClosed } = context.counters;
        expect(alertsReceived).toBe(logged.length);
        expect(alertsOpen + alertsClosed).toBe(alertsReceived);
        // only the app backend's control topic and reply inboxes are ever written
        for (const e of sends) expect([CONTROL, APP_INBOX, OFFICER]).toContain(e.topic);
        for (const [id, b] of Object.entries(context.beacons)) expect(context.timers[`enable:${id}`] !== undefined).toBe(b.enabled);
      },
    });
    for (const key of [
      '"idle"|none|none|n=0',
      '"running"|none|none|n=0',
      '"running"|enabled|none|n=0',
      '"running"|disabled|none|n=0',
      '"running"|none|open|n=1',
      '"running"|none|open|n=2',
      '"running"|none|closed|n=1',
      '"running"|enabled|closed|n=2',
      '"running"|disabled|closed|n=2',
      '"stopped"|none|none|n=0',
      '"stopped"|enabled|open|n=1',
    ]) {
      expect(reached.has(key), key).toBe(true);
    }
  });
});
