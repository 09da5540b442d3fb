import { startMachine } from '../support/harness.ts';
import type { AnyStateMachine } from 'xstate';
import { describe, expect, it } from 'vitest';
import type { Effect } from '../../actors/effects.ts';
import {
  createHealthAuthorityMachine,
  type HaQuarantineEvent,
  type HealthAuthorityContext,
  type HealthAuthorityEvent,
  type HealthAuthorityInput,
} from '../../actors/quarantine/health-authority.ts';
import { quarantineRegisterCodec, type QuarantineRegister } from '../../protocol/quarantine/messages.ts';
import { exploreModel } from '../support/model.ts';

const T0 = 1_767_225_600_000;
const RETRY = 30_000;
const QUARANTINE = 'tc/v1/app-backend/ab1/quarantine';
const INBOX = 'tc/v1/health-authority/ha/inbox';
const input: HealthAuthorityInput = { id: 'ha', appBackendQuarantineTopic: QUARANTINE, inboxTopic: INBOX, retryMs: RETRY };
const machine = createHealthAuthorityMachine();

const SK = new Uint8Array(32).fill(0x11);
const BEACON_KEY = new Uint8Array(32).map((_, i) => i + 1);
const BEACON = 'beacon-7';
const ENDS = T0 + 14 * 24 * 3600_000;
const TIMER = `register:${BEACON}`;

const quarantine = (at = T0, over: Partial<HaQuarantineEvent> = {}): HaQuarantineEvent => ({
  type: 'ha.quarantine',
  at,
  sk: SK,
  tPast: T0 - 3600_000,
  beaconId: BEACON,
  beaconKey: BEACON_KEY,
  endsAt: ENDS,
  ...over,
});
const release = (at: number, beaconId = BEACON) => ({ type: 'ha.release' as const, at, beaconId });
let msgId = 0;
const registered = (at: number, beaconId = BEACON) => ({
  type: 'msg.quarantine.registered' as const,
  at,
  envelope: { v: 1 as const, type: 'quarantine.registered', id: `r${++msgId}`, from: 'app-backend/ab1', at, body: null },
  body: { beaconId },
});
const timer = (name: string, at: number) => ({ type: `timer.${name}` as const, at });

const expectedRegister: QuarantineRegister = { sk: SK, tPast: T0 - 3600_000, beaconId: BEACON, beaconKey: BEACON_KEY, endsAt: ENDS };
const registerSend: Effect = { type: 'bus.send', topic: QUARANTINE, msgType: 'quarantine.register', body: quarantineRegisterCodec.encode(expectedRegister), qos: 1, replyTo: INBOX };

function start() {
  return startMachine<HealthAuthorityContext, HealthAuthorityEvent>(machine as AnyStateMachine, input, T0);
}

describe('health authority: registration', () => {
  it('ha.quarantine sends quarantine.register with replyTo = inbox and arms the retry timer', () => {
    const h = start();
    expect(h.send(quarantine())).toEqual([registerSend, { type: 'timer.set', name: TIMER, deadline: T0 + RETRY }]);
    expect(h.ctx().quarantines[BEACON]).toMatchObject({ status: 'pending', requestedAt: T0, attempts: 1 });
    expect(h.ctx().counters).toEqual({ registered: 0, pending: 1, resent: 0, abandoned: 0 });
  });

  it('stays pending and re-sends the same registration on every retry until confirmed', () => {
    const h = start();
    h.send(quarantine());
    expect(h.send(timer(TIMER, T0 + RETRY - 1))).toEqual([]); // stale: before the deadline
    for (let k = 1; k <= 3; k++) {
      expect(h.send(timer(TIMER, T0 + k * RETRY))).toEqual([registerSend, { type: 'timer.set', name: TIMER, deadline: T0 + (k + 1) * RETRY }]);
      expect(h.ctx().quarantines[BEACON]?.status).toBe('pending');
    }
    expect(h.ctx().counters).toMatchObject({ pending: 1, resent: 3 });
    expect(h.send(registered(T0 + 3 * RETRY + 5))).toEqual([{ type: 'timer.cancel', name: TIMER }]);
    expect(h.ctx().quarantines[BEACON]).toEqual({ status: 'registered', endsAt: ENDS, registeredAt: T0 + 3 * RETRY + 5 });
    expect(h.ctx().counters).toEqual({ registered: 1, pending: 0, resent: 3, abandoned: 0 });
    expect(h.ctx().timers).toEqual({});
    // a late firing and a duplicate confirmation change nothing
    expect(h.send(timer(TIMER, T0 + 4 * RETRY))).toEqual([]);
    expect(h.send(registered(T0 + 4 * RETRY))).toEqual([]);
    expect(h.ctx().counters.registered).toBe(1);
  });

  it('keeps the keys only while pending', () => {
    const h = start();
    h.send(quarantine());
    const pending = h.ctx().quarantines[BEACON];
    expect(pending?.status === 'pending' && pending.register.sk).toEqual(SK);
    h.send(registered(T0 + 1));
    expect(JSON.stringify(h.actor.getPersistedSnapshot())).not.toMatch(/"sk"|"beaconKey"/);
  });

  it('a confirmation for an unknown beacon is ignored', () => {
    const h = start();
    expect(h.send(registered(T0, 'beacon-404'))).toEqual([]);
    expect(h.ctx().counters.registered).toBe(0);
  });

  it('refuses malformed, already ended and duplicate quarantines without sending', () => {
    const h = start();
    for (const bad of [quarantine(T0, { sk: new Uint8Array(31) }), quarantine(T0, { beaconId: 'a/b' }), quarantine(T0, { endsAt: T0 })]) {
      const fx = h.send(bad);
      expect(fx).toEqual([expect.objectContaining({ type: 'log', level: 'warn' })]);
    }
    h.send(quarantine());
    expect(h.send(quarantine(T0 + 1))).toEqual([expect.objectContaining({ type: 'log', level: 'warn' })]);
    expect(h.ctx().counters.pending).toBe(1);
  });

  it('gives up a registration still unconfirmed when the quarantine ends', () => {
    const h = start();
    h.send(quarantine(T0, { endsAt: T0 + 2 * RETRY }));
    h.send(timer(TIMER, T0 + RETRY));
    const fx = h.send(timer(TIMER, T0 + 2 * RETRY));
    expect(fx).toEqual([expect.objectContaining({ type: 'log', level: 'warn' })]);
    expect(h.ctx().quarantines).toEqual({});
    expect(h.ctx().timers).toEqual({});
    expect(h.ctx().counters).toEqual({ registered: 0, pending: 0, resent: 1, abandoned: 1 });
  });

  it('does not alias the caller arrays', () => {
    const h = start();
    const sk = new Uint8Array(SK);
    h.send(quarantine(T0, { sk }));
    sk.fill(0);
    const pending = h.ctx().quarantines[BEACON];
    expect(pending?.status === 'pending' && pending.register.sk).toEqual(SK);
  });
});

describe('health authority: release', () => {
  const endSend: Effect = { type: 'bus.send', topic: QUARANTINE, msgType: 'quarantine.end', body: { beaconId: BEACON }, qos: 1 };

  it('ha.release of a registered quarantine sends quarantine.end and forgets it', () => {
    const h = start();
    h.send(quarantine());
    h.send(registered(T0 + 1));
    expect(h.send(release(T0 + 2))).toEqual([endSend]);
    expect(h.ctx().quarantines).toEqual({});
    // a new quarantine for the same beacon is accepted afterwards
    expect(h.send(quarantine(T0 + 3))).toContainEqual(expect.objectContaining({ msgType: 'quarantine.register' }));
  });

  it('ha.release of a pending one also cancels its retry', () => {
    const h = start();
    h.send(quarantine());
    expect(h.send(release(T0 + 2))).toEqual([endSend, { type: 'timer.cancel', name: TIMER }]);
    expect(h.ctx().counters.pending).toBe(0);
    expect(h.ctx().timers).toEqual({});
    expect(h.send(timer(TIMER, T0 + RETRY))).toEqual([]);
  });

  it('ha.release of an unknown beacon sends nothing', () => {
    const h = start();
    expect(h.send(release(T0))).toEqual([expect.objectContaining({ type: 'log', level: 'warn' })]);
  });
});

describe('health authority: model-based', () => {
  it('reaches every state; a registration stays pending until confirmed and is re-sent on its timer', () => {
    let sawRegister = false;
    let confirmedAt: number | undefined;
    const serialize = (value: unknown, context: HealthAuthorityContext): string => {
      const q = context.quarantines[BEACON];
      return `${JSON.stringify(value)}|${q?.status ?? 'none'}|resent=${Math.min(context.counters.resent, 2)}`;
    };
    const reached = exploreModel<HealthAuthorityContext, HealthAuthorityEvent>(machine, {
      input,
      events: [
        { type: 'host.start', at: T0 },
        quarantine(),
        timer(TIMER, T0 + RETRY),
        timer(TIMER, T0 + 2 * RETRY),
        registered(T0 + 10),
        release(T0 + 20),
        { type: 'host.stop', at: T0 + 30 },
      ],
      serialize,
      invariant: ({ event: seen, context, effects }) => {
        const event = seen as HealthAuthorityEvent;
        if (event.type === 'host.start') {
          sawRegister = false;
          confirmedAt = undefined;
        }
        const q = context.quarantines[BEACON];
        const sends = effects.filter((e) => e.type === 'bus.send');
        if (event.type === 'ha.quarantine' && q?.status === 'pending' && sends.length > 0) sawRegister = true;
        if (event.type === 'msg.quarantine.registered' && q?.status === 'registered') confirmedAt = event.at;
        // pending ⇔ sent but not confirmed; a pending registration always has its retry armed
        if (q?.status === 'pending') {
          expect(sawRegister).toBe(true);
          expect(confirmedAt).toBeUndefined();
          expect(context.timers[TIMER]).toBeTypeOf('number');
        }
        if (q?.status === 'registered') expect(context.timers[TIMER]).toBeUndefined();
        expect(context.counters.pending).toBe(Object.values(context.quarantines).filter((r) => r.status === 'pending').length);
        // a retry firing at/after its deadline while pending re-sends exactly the registration
        if (event.type === `timer.${TIMER}` && q?.status === 'pending') {
          expect(sends).toEqual([registerSend]);
          expect(context.timers[TIMER]).toBe(event.at + RETRY);
        }
        if (event.type === 'ha.release') {
          expect(q).toBeUndefined();
          sawRegister = false;
          confirmedAt = undefined;
        }
      },
    });
    for (const key of [
      '"idle"|none|resent=0',
      '"running"|none|resent=0',
      '"running"|pending|resent=0',
      '"running"|pending|resent=1',
      '"running"|pending|resent=2',
      '"running"|registered|resent=0',
      '"running"|registered|resent=1',
      '"stopped"|pending|resent=0',
      '"stopped"|registered|resent=0',
    ]) {
      expect(reached.has(key), key).toBe(true);
    }
  });
});
