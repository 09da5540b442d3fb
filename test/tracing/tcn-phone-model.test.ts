/**
 * The tracing phone with the TCN engine (mode C), model-based (test/support/tracing-model.ts):
 * random host runs checking rotation with the address, retention and report ranges at every
 * step — a report reveals tcn_{j1} and every later TCN of its rak, so `revealed` ratchets past
 * j2 — plus xstate/graph paths through every state of the chart with persist → restore.
 */
import { describe, expect, it } from 'vitest';
import { tcnEngine, tcnEngineConfig, type TcnEngineConfig } from '../../actors/tracing/tcn-engine.ts';
import type { DiagnosisRecord } from '../../protocol/keyserver/distribution-records.ts';
import { forEachReportTcn } from '../../protocol/tcn/matching.ts';
import { verifyTcnReport } from '../../protocol/tcn/report.ts';
import { exploreTracingChart, hex, runTracingModels, type EngineModel } from '../support/tracing-model.ts';

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
    const { states, uploads } = runTracingModels(tcnModel, 20, 400, T0);
    expect(states).toEqual(['reported', 'stopped', 'tracing', 'uploading']);
    expect(uploads).toBeGreaterThan(10);
  }, 180_000);
});

describe('tracing phone × TCN, every state and transition (xstate/graph)', () => {
  it('reaches idle, tracing, uploading, reported and stopped; invariants hold on every step and snapshot', () => {
    const frames = [{ payload: new Uint8Array(16).fill(7), rssi: -60, at: T0 + 1000, address: 'AA:AA:AA:AA:AA:AA' }];
    const states = exploreTracingChart({ engine: tcnEngine, config, t0: T0, frames, rotateAt: T0 + 2 * 60_000 });
    expect(states).toEqual(['idle', 'reported', 'stopped', 'tracing', 'uploading']);
  });
});
