/**
 * The tracing phone with the GAEN engine, model-based (test/support/tracing-model.ts):
 * random host runs checking rotation with the address, retention and report
 * ranges at every step, plus xstate/graph paths through every state of the
 * chart with a persist → restore after each step (test/support/model.ts).
 */
import { describe, expect, it } from 'vitest';
import { gaenEngine, gaenEngineConfig } from '../../actors/tracing/gaen-engine.ts';
import { EN_INTERVAL_SECONDS } from '../../protocol/gaen/interval.ts';
import { rpisForTek } from '../../protocol/gaen/keys.ts';
import { encodeEnMetadata, encodeEnServiceData } from '../../protocol/gaen/metadata.ts';
import { exploreTracingChart, hex, runTracingModels, type EngineModel } from '../support/tracing-model.ts';

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
    const { states, uploads } = runTracingModels(gaenModel, 40, 400, T0);
    expect(states).toEqual(['reported', 'stopped', 'tracing', 'uploading']);
    expect(uploads).toBeGreaterThan(10);
  }, 180_000);
});

describe('tracing phone × GAEN, every state and transition (xstate/graph)', () => {
  it('reaches idle, tracing, uploading, reported and stopped; invariants hold on every step and snapshot', () => {
    const metadata = encodeEnMetadata({ versionMajor: 1, versionMinor: 0, txPowerConfidence: 0, txPowerDbm: -19 });
    const frames = [{ payload: encodeEnServiceData(new Uint8Array(16).fill(7), metadata), rssi: -60, at: T0 + 1000, address: 'AA:AA:AA:AA:AA:AA' }];
    const states = exploreTracingChart({ engine: gaenEngine, config: gaenEngineConfig(), t0: T0, frames, rotateAt: T0 + INTERVAL_MS });
    expect(states).toEqual(['idle', 'reported', 'stopped', 'tracing', 'uploading']);
  });
});
