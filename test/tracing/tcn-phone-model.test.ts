/**
 * The tracing phone with the TCN engine (mode C), model-based (test/support/tracing-model.ts):
 * random host runs checking rotation with the address, retention and report ranges at every
 * step — a report reveals tcn_{j1} and every later TCN of its rak, so `revealed` ratchets past
 * j2 — plus xstate/graph paths through every state of the chart with persist → restore.
 */
import { describe, expect, it } from 'vitest';
import { tcnEngine, tcnEngineConfig, type TcnEngineConfig } from '../../actors/tracing/tcn-engine.ts';
import { createTracingPhoneMachine, type TracingPhoneEvent } from '../../actors/tracing/phone.ts';
import type { TracingPhoneContext } from '../../actors/tracing/phone-logic.ts';
import type { DiagnosisRecord } from '../../protocol/keyserver/distribution-records.ts';
import { forEachReportTcn } from '../../protocol/tcn/matching.ts';
import { verifyTcnReport } from '../../protocol/tcn/report.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { freshCode, KS_PUBLIC_KEYS } from '../support/key-server-fixtures.ts';
import { exploreModel } from '../support/model.ts';
import { hex, runTracingModel, type EngineModel } from '../support/tracing-model.ts';

const T0 = Date.UTC(2026, 0, 5, 7, 13);
const DAY = 86_400_000;
const config = tcnEngineConfig();
/** TCNs checked past j2: more than one rak ever issues (96 a day, plus rotations at diagnoses). */
const BEYOND_J2 = 400;
const revealedCache = new WeakMap<readonly DiagnosisRecord[], ReadonlySet<string>>();

const tcnModel: EngineModel<unknown, TcnEngineConfig> = {
  engine: tcnEngine,
  config,
  retentionMs: 14 * DAY,
  idOf: (payload) => hex(payload),
  revealed: (crypto, records) => {
    const cached = revealedCache.get(records);
    if (cached !== undefined) return cached;
    const ids = new Set<string>();
    for (const r of records) {
      if (r.protocol !== 'tcn-report') continue;
      const report = verifyTcnReport(crypto, r.report);
      if (!report.ok) throw new Error(report.detail);
      // tck_{j1−1} discloses every later TCN of the rak, not only up to j2.
      forEachReportTcn(crypto, { ...report.value, j2: Math.min(0xffff, report.value.j2 + BEYOND_J2) }, 0xffff, (hash) => ids.add(hex(hash.subarray(0, 16))));
    }
    revealedCache.set(records, ids);
    return ids;
  },
  // The TCN on the air at infectiousFrom started at most one rotation before it.
  earliestRevealable: (infectiousFrom) => infectiousFrom - config.rotationMs,
  foreignPayload: (rng) => rng.bytes(16),
};

describe('tracing phone × TCN, random host runs (model)', () => {
  it('identifiers rotate with the address, retention holds, reports stay in range — 20 runs × 400 steps', () => {
    const states = new Set<string>();
    let uploads = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const run = runTracingModel(tcnModel, seed, 400, T0);
      run.states.forEach((s) => states.add(s));
      uploads += run.uploads;
    }
    expect([...states].sort()).toEqual(['reported', 'stopped', 'tracing', 'uploading']);
    expect(uploads).toBeGreaterThan(10);
  });
});

describe('tracing phone × TCN, every state and transition (xstate/graph)', () => {
  const machine = createTracingPhoneMachine(tcnEngine, { crypto: nodeSuite, publicKeys: KS_PUBLIC_KEYS });
  const code = freshCode('clinic', T0).text;
  const frames = [{ payload: new Uint8Array(16).fill(7), rssi: -60, at: T0 + 1000, address: 'AA:AA:AA:AA:AA:AA' }];
  const ack = { type: 'msg.keys.upload.ack', at: T0 + 3000, envelope: { v: 1, type: 'keys.upload.ack', id: 'a', from: 'key-server/ks1', at: T0, body: null }, body: { trackingId: '0'.repeat(32) } };
  const events = [
    { type: 'host.start', at: T0 },
    { type: 'timer.rotate', at: T0 + 2 * 60_000 },
    { type: 'timer.scanStart', at: T0 + 500 },
    { type: 'radio.frames', at: T0 + 4000, frames },
    { type: 'timer.retention', at: T0 + 15 * DAY },
    { type: 'tracing.diagnosed', at: T0 + 2000, code, infectiousFrom: T0 - 2 * DAY },
    { type: 'tracing.diagnosed', at: T0 + 2000, code: 'bad', infectiousFrom: T0 },
    ack,
    { type: 'timer.upload', at: T0 + 11 * 60_000 },
    { type: 'host.resume', at: T0 + 6000 },
    { type: 'host.stop', at: T0 + 7000 },
  ] as unknown as TracingPhoneEvent[];

  it('reaches idle, tracing, uploading, reported and stopped; invariants hold on every step and snapshot', () => {
    const reached = exploreModel<TracingPhoneContext<unknown, unknown>>(machine, {
      input: { phoneId: 'p1', serverId: 'ks1', seed: new Uint8Array(32).fill(3), engine: config },
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
