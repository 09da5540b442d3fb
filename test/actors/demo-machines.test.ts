import { createActor } from 'xstate';
import { describe, expect, it } from 'vitest';
import type { Effect, RadioFrameEvent } from '../../actors/effects.ts';
import { demoBeaconMachine, type DemoBeaconContext, type DemoBeaconInput } from '../../actors/demo/beacon.ts';
import { demoCollectorMachine, type DemoCollectorContext } from '../../actors/demo/collector.ts';
import { demoPhoneMachine, type DemoPhoneContext, type DemoPhoneInput } from '../../actors/demo/phone.ts';
import { decodeDemoFrame, encodeDemoFrame } from '../../protocol/demo/beacon-frame.ts';
import { demoHeardCodec, MAX_HEARD_ENTRIES } from '../../protocol/demo/messages.ts';
import { DEFAULT_FRAGMENT_BUDGET_BYTES, fragment } from '../../protocol/wire/framing.ts';
import { exploreModel } from '../support/model.ts';

/** Every event a host delivers carries `at`. */
type TimedEvent = { readonly type: string; readonly at: number };

const T0 = 1_767_225_600_000;
const beaconInput: DemoBeaconInput = {
  id: 'b0',
  seed: new Uint8Array(32).fill(7),
  periodMs: 60_000,
  advertisingIntervalMs: 250,
  frameBytes: 72,
  advertisementBudget: DEFAULT_FRAGMENT_BUDGET_BYTES,
};
const phoneInput: DemoPhoneInput = {
  id: 'p0-0',
  collectorTopic: 'tc/v1/collector/main/inbox',
  scanWindowMs: 4000,
  scanPeriodMs: 30_000,
  reportPeriodMs: 300_000,
  reassembly: { maxPendingFrames: 8, maxPendingBytes: 4096, expiryMs: 10_000, maxCompletedRemembered: 16 },
};

function frameEvent(payload: Uint8Array, at: number, address = 'AA:BB:CC:DD:EE:01', rssi = -60): RadioFrameEvent {
  return { type: 'radio.frame', at, frame: { payload, rssi, at, address } };
}

function demoFragments(beacon: string, seq: number): Uint8Array[] {
  return fragment(encodeDemoFrame({ beacon, seq }, new Uint8Array(60).fill(seq)), seq & 0xffff);
}

describe('demo beacon machine', () => {
  it('host.start advertises a fragmented frame and arms the rotate timer in context and as an effect', () => {
    const actor = createActor(demoBeaconMachine, { input: beaconInput });
    const effects: Effect[] = [];
    actor.on('*', (e: Effect) => effects.push(e));
    actor.start();
    actor.send({ type: 'host.start', at: T0 });
    const ctx = actor.getSnapshot().context;
    expect(ctx.seq).toBe(1);
    expect(ctx.fragments.length).toBeGreaterThan(1);
    expect(ctx.timers).toEqual({ rotate: T0 + 60_000 });
    expect(effects).toEqual([
      { type: 'radio.advertise', payloads: ctx.fragments, intervalMs: 250 },
      { type: 'timer.set', name: 'rotate', deadline: T0 + 60_000 },
    ]);
    for (const f of ctx.fragments) expect(f.length).toBeLessThanOrEqual(DEFAULT_FRAGMENT_BUDGET_BYTES);
  });

  it('is deterministic from its seed and differs across seeds', () => {
    const run = (seed: Uint8Array) => {
      const a = createActor(demoBeaconMachine, { input: { ...beaconInput, seed } }).start();
      a.send({ type: 'host.start', at: T0 });
      a.send({ type: 'timer.rotate', at: T0 + 60_000 });
      return a.getSnapshot().context.fragments;
    };
    expect(run(new Uint8Array(32).fill(1))).toEqual(run(new Uint8Array(32).fill(1)));
    expect(run(new Uint8Array(32).fill(1))).not.toEqual(run(new Uint8Array(32).fill(2)));
  });

  it('model-based: every state reached; frames decode; a deadline is always pending while advertising', () => {
    const reached = exploreModel<DemoBeaconContext, TimedEvent>(demoBeaconMachine, {
      input: beaconInput,
      events: [
        { type: 'host.start', at: T0 },
        { type: 'timer.rotate', at: T0 + 60_000 },
        { type: 'host.resume', at: T0 + 1 },
        { type: 'host.stop', at: T0 + 2 },
      ],
      invariant: ({ state, context, effects }) => {
        if (state === 'advertising') {
          expect(context.timers['rotate']).toBeTypeOf('number');
          expect(context.fragments.length).toBeGreaterThan(0);
        }
        if (state === 'stopped') expect(context.timers).toEqual({});
        for (const e of effects) if (e.type === 'radio.advertise') expect(e.payloads).toEqual(context.fragments);
      },
    });
    expect([...reached].sort()).toEqual(['"advertising"', '"idle"', '"stopped"']);
  });
});

describe('demo phone machine', () => {
  it('reassembles fragments heard in any order and reports each frame once', () => {
    const actor = createActor(demoPhoneMachine, { input: phoneInput });
    const effects: Effect[] = [];
    actor.on('*', (e: Effect) => effects.push(e));
    actor.start();
    actor.send({ type: 'host.start', at: T0 });
    const frags = demoFragments('b3', 9);
    for (const f of [...frags].reverse()) actor.send(frameEvent(f, T0 + 10));
    for (const f of frags) actor.send(frameEvent(f, T0 + 20)); // the beacon repeats its set
    expect(actor.getSnapshot().context.pending).toEqual([{ beacon: 'b3', seq: 9, rssi: -60, at: T0 + 10 }]);
    effects.length = 0;
    actor.send({ type: 'timer.report', at: T0 + 300_000 } as const);
    const sends = effects.filter((e) => e.type === 'bus.send');
    expect(sends).toHaveLength(1);
    const body = demoHeardCodec.decode(sends[0]!.type === 'bus.send' ? sends[0]!.body : null);
    expect(body).toEqual({ ok: true, value: { phone: 'p0-0', heard: [{ beacon: 'b3', seq: 9, rssi: -60, at: T0 + 10 }] } });
    expect(actor.getSnapshot().context.pending).toEqual([]);
  });

  it('counts a reassembled frame that is not a demo frame as rejected', () => {
    const actor = createActor(demoPhoneMachine, { input: phoneInput }).start();
    actor.send({ type: 'host.start', at: T0 });
    for (const f of fragment(new Uint8Array(40).fill(0xff), 1)) actor.send(frameEvent(f, T0 + 1));
    expect(actor.getSnapshot().context.counters.framesRejected).toBe(1);
    expect(decodeDemoFrame(new Uint8Array(40).fill(0xff)).ok).toBe(false);
  });

  it('model-based: every state reached; scanning iff the last radio.scan effect said on; reports always decode', () => {
    const frags = demoFragments('b1', 1);
    let scanning = false;
    const reached = exploreModel<DemoPhoneContext, TimedEvent>(demoPhoneMachine, {
      input: phoneInput,
      events: [
        { type: 'host.start', at: T0 },
        { type: 'timer.scanStop', at: T0 + 4000 },
        { type: 'timer.scanStart', at: T0 + 30_000 },
        { type: 'timer.report', at: T0 + 300_000 },
        ...frags.map((f) => frameEvent(f, T0 + 100)),
        { type: 'host.resume', at: T0 + 5 },
        { type: 'host.stop', at: T0 + 6 },
      ],
      serialize: (value, context) => `${JSON.stringify(value)}|pending=${context.pending.length > 0}`,
      invariant: ({ state, context, event, effects }) => {
        if (event.type === 'host.start') scanning = false;
        for (const e of effects) {
          if (e.type === 'radio.scan') scanning = e.on;
          if (e.type === 'bus.send') expect(demoHeardCodec.decode(e.body).ok).toBe(true);
        }
        if (JSON.stringify(state) === '{"running":"scanning"}') expect(scanning).toBe(true);
        if (JSON.stringify(state) === '{"running":"sleeping"}' || state === 'stopped') expect(scanning).toBe(false);
        expect(context.pending.length).toBeLessThanOrEqual(MAX_HEARD_ENTRIES);
        expect(context.reassembly.pendingFrames).toBeLessThanOrEqual(phoneInput.reassembly.maxPendingFrames);
      },
    });
    for (const s of ['"idle"', '{"running":"scanning"}', '{"running":"sleeping"}', '"stopped"']) {
      expect([...reached].some((k) => k.startsWith(s))).toBe(true);
    }
  });
});

describe('demo collector machine', () => {
  it('tallies reports per beacon and phone and ignores redelivered entries', () => {
    const actor = createActor(demoCollectorMachine).start();
    const report = { phone: 'p1-0', heard: [{ beacon: 'b1', seq: 4, rssi: -70, at: T0 }] };
    const event = {
      type: 'msg.demo.heard',
      at: T0,
      envelope: { v: 1, type: 'demo.heard', id: 'x', from: 'phone/p1-0', at: T0, body: null },
      body: report,
    } as const;
    actor.send(event);
    actor.send(event); // QoS 1 may deliver twice
    const ctx: DemoCollectorContext = actor.getSnapshot().context;
    expect(ctx).toMatchObject({ reports: 2, framesHeard: 1, duplicates: 1, heardBy: { b1: { 'p1-0': 1 } }, rssiSum: -70 });
  });
});
