/**
 * The tracing phone with the DP-3T engine, model-based (test/support/tracing-model.ts):
 * random host runs checking at every step that identifiers rotate with the address,
 * that nothing older than the retention is held, and that a report reveals only
 * EphIDs broadcast from the first infectious day's midnight to the diagnosis —
 * never one broadcast after it (the fresh chain).
 */
import { describe, expect, it } from 'vitest';
import { dp3tEngine, dp3tEngineConfig } from '../../actors/tracing/dp3t-engine.ts';
import { ephIdsForDays } from '../../protocol/dp3t/lowcost.ts';
import { hex, runTracingModel, type EngineModel } from '../support/tracing-model.ts';

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
    const states = new Set<string>();
    let uploads = 0;
    for (let seed = 1; seed <= 25; seed++) {
      const run = runTracingModel(dp3tModel, seed, 400, T0);
      run.states.forEach((s) => states.add(s));
      uploads += run.uploads;
    }
    expect([...states].sort()).toEqual(['reported', 'stopped', 'tracing', 'uploading']);
    expect(uploads).toBeGreaterThan(5);
  });
});
