/**
 * The tracing phone with the DP-3T engine, model-based (test/support/tracing-model.ts):
 * random host runs checking at every step that identifiers rotate with the address,
 * that nothing older than the retention is held, and that a report reveals only
 * EphIDs broadcast from the first infectious day's midnight to the diagnosis —
 * never one broadcast after it (the fresh chain) — plus xstate/graph paths through
 * every state of the chart with persist → restore.
 */
import { describe, expect, it } from 'vitest';
import { dp3tEngine, dp3tEngineConfig } from '../../actors/tracing/dp3t-engine.ts';
import { ephIdsForDays } from '../../protocol/dp3t/lowcost.ts';
import { exploreTracingChart, hex, runTracingModels, type EngineModel } from '../support/tracing-model.ts';

const T0 = Date.UTC(2026, 0, 5, 7, 13);
const DAY = 86_400_000;
/** Days of a reported chain the model derives: longer than any run, so later days are covered too. */
const REVEALED_DAYS = 40;

const dp3tModel: EngineModel<unknown, ReturnType<typeof dp3tEngineConfig>> = {
  engine: dp3tEngine,
  config: dp3tEngineConfig(),
  retentionMs: 14 * DAY,
  idOf: (payload) => hex(payload),
  revealed: (crypto, records) => {
    const ids = new Set<string>();
    for (const r of records) {
      if (r.protocol !== 'dp3t-seed') continue;
      for (const day of ephIdsForDays(crypto, r.seed, REVEALED_DAYS)) for (const id of day) ids.add(hex(id));
    }
    return ids;
  },
  // SK_t covers the whole UTC day t: the day of infectiousFrom is revealed from its midnight.
  earliestRevealable: (infectiousFrom) => Math.floor(infectiousFrom / DAY) * DAY,
  foreignPayload: (rng) => rng.bytes(16),
};

describe('tracing phone × DP-3T, random host runs (model)', () => {
  it('identifiers rotate with the address, retention holds, reports stay in range — 25 runs × 400 steps', () => {
    const { states, uploads } = runTracingModels(dp3tModel, 25, 400, T0);
    expect(states).toEqual(['reported', 'stopped', 'tracing', 'uploading']);
    expect(uploads).toBeGreaterThan(10);
  }, 180_000);
});

describe('tracing phone × DP-3T, every state and transition (xstate/graph)', () => {
  it('reaches idle, tracing, uploading, reported and stopped; invariants hold on every step and snapshot', () => {
    const frames = [{ payload: new Uint8Array(16).fill(7), rssi: -60, at: T0 + 1000, address: 'AA:AA:AA:AA:AA:AA' }];
    const states = exploreTracingChart({ engine: dp3tEngine, config: dp3tEngineConfig(), t0: T0, frames, rotateAt: T0 + 15 * 60_000 });
    expect(states).toEqual(['idle', 'reported', 'stopped', 'tracing', 'uploading']);
  });
});
