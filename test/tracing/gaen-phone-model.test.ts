/**
 * The tracing phone with the GAEN engine, model-based (test/support/tracing-model.ts):
 * random host runs checking rotation with the address, retention and report
 * ranges at every step, plus xstate/graph paths through every state of the
 * chart with a persist → restore after each step (test/support/model.ts).
 */
import { describe, expect, it } from 'vitest';
import { gaenEngine, gaenEngineConfig } from '../../actors/tracing/gaen-engine.ts';
import { createTracingPhoneMachine, type TracingPhoneEvent } from '../../actors/tracing/phone.ts';
import type { TracingPhoneContext } from '../../actors/tracing/phone-logic.ts';
import { EN_INTERVAL_SECONDS } from '../../protocol/gaen/interval.ts';
import { rpisForTek } from '../../protocol/gaen/keys.ts';
import { encodeEnMetadata, encodeEnServiceData } from '../../protocol/gaen/metadata.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { freshCode, KS_PUBLIC_KEYS } from '../support/key-server-fixtures.ts';
import { exploreModel } from '../support/model.ts';
import { hex, runTracingModel, type EngineModel } from '../support/tracing-model.ts';

const T0 = Date.UTC(2026, 0, 5, 7, 13);
const DAY = 86_400_000;
const INTERVAL_MS = EN_INTERVAL_SECONDS * 1000;

const gaenModel: EngineModel<unknown, ReturnType<typeof gaenEngineConfig>> = {
  engine: gaenEngine,
  config: gaenEngineConfig(),
  retentionMs: 14 * DAY,
  idOf: (payload) => hex(payload.subarray(0, 16)),
  revealed: (crypto, records) => {
    const ids = new Set<string>();
    for (const r of records) {
      if (r.protocol !== 'gaen-tek') continue;
      for (const rpi of rpisForTek(crypto, r.key, r.rollingStartIntervalNumber, r.rollingPeriod)) ids.add(hex(rpi));
    }
    return ids;
  },
  // A TEK covers a whole UTC day: the day of infectiousFrom is revealed from its midnight.
  earliestRevealable: (infectiousFrom) => Math.floor(infectiousFrom / DAY) * DAY,
  foreignPayload: (rng) => encodeEnServiceData(rng.bytes(16), rng.bytes(4)),
};

describe('tracing phone × GAEN, random host runs (model)', () => {
  it('identifiers rotate with the address, retention holds, reports stay in range — 40 runs × 400 steps', () => {
    const states = new Set<string>();
    let uploads = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const run = runTracingModel(gaenModel, seed, 400, T0);
      run.states.forEach((s) => states.add(s));
      uploads += run.uploads;
    }
    expect([...states].sort()).toEqual(['reported', 'stopped', 'tracing', 'uploading']);
    expect(uploads).toBeGreaterThan(10);
  });
});

describe('tracing phone × GAEN, every state and transition (xstate/graph)', () => {
  const machine = createTracingPhoneMachine(gaenEngine, { crypto: nodeSuite, publicKeys: KS_PUBLIC_KEYS });
  const code = freshCode('clinic', T0).text;
  const frames = [{ payload: encodeEnServiceData(new Uint8Array(16).fill(7), encodeEnMetadata({ versionMajor: 1, versionMinor: 0, txPowerConfidence: 0, txPowerDbm: -19 })), rssi: -60, at: T0 + 1000, address: 'AA:AA:AA:AA:AA:AA' }];
  const ack = { type: 'msg.keys.upload.ack', at: T0 + 3000, envelope: { v: 1, type: 'keys.upload.ack', id: 'a', from: 'key-server/ks1', at: T0, body: null }, body: { trackingId: '0'.repeat(32) } };
  const events = [
    { type: 'host.start', at: T0 },
    { type: 'timer.rotate', at: T0 + INTERVAL_MS },
    { type: 'timer.scanStart', at: T0 + 500 },
    { type: 'radio.frames', at: T0 + 4000, frames },
    { type: 'timer.retention', at: T0 + 15 * DAY },
    { type: 'tracing.diagnosed', at: T0 + 2000, code, infectiousFrom: T0 - 2 * DAY },
    { type: 'tracing.diagnosed', at: T0 + 2000, code: 'bad', infectiousFrom: T0 },
    ack,
    { type: 'timer.upload', at: T0 + 11 * 60_000 },
    { type: 'tracing.test', at: T0 + 5000, result: 'awaiting' },
    { type: 'host.resume', at: T0 + 6000 },
    { type: 'host.stop', at: T0 + 7000 },
  ] as unknown as TracingPhoneEvent[];

  it('reaches idle, tracing, uploading, reported and stopped; invariants hold on every step and snapshot', () => {
    const reached = exploreModel<TracingPhoneContext<unknown, unknown>>(machine, {
      input: { phoneId: 'p1', serverId: 'ks1', seed: new Uint8Array(32).fill(3), engine: gaenEngineConfig() },
      events,
      serialize: (value, c) => `${JSON.stringify(value)}|upload:${c.upload === null ? 'none' : 'pending'}`,
      everyEvent: true,
      invariant: ({ state, context, effects, event }) => {
        for (const e of effects) if (e.type === 'radio.advertise' && event.type !== 'host.resume') expect(e.newAddress).toBe(true);
        if (state === 'uploading') expect(context.upload).not.toBeNull();
        if (state === 'reported') expect(context.upload).toBeNull();
        if (state === 'stopped') expect(context.advertising).toBeNull();
      },
    });
    expect([...new Set([...reached].map((k) => k.split('|')[0]))].sort()).toEqual(['"idle"', '"reported"', '"stopped"', '"tracing"', '"uploading"']);
  });
});
