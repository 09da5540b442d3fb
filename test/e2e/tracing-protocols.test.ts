/**
 * DP-3T, TCN (modes A, B, C) and DIMY on the tracing city end to end, beside
 * GAEN (tracing-city.test.ts): each finds the phones the ground truth says
 * should be notified (recall), with every positive's report delivered. What
 * limits each protocol's precision is stated in services/city/tracing/protocols.ts.
 */
import { describe, expect, it } from 'vitest';
import type { TracingProtocol } from '../../actors/tracing/engine.ts';
import type { TcnMode } from '../../actors/tracing/tcn-config.ts';
import { tracingCityConfigSchema } from '../../services/city/tracing/config.ts';
import { runTracingCity, type TracingRunSummary } from '../../services/city/tracing/run.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { createLogger } from '../../services/log.ts';

const logger = createLogger({ name: 'tracing-protocols-test', level: 'error' });

async function run(protocol: TracingProtocol, phones: number, days: number, tcnMode?: TcnMode): Promise<TracingRunSummary> {
  const city = tracingCityConfigSchema.parse({ seed: 2, phones, days, positives: { fraction: 0.1, firstDay: 1 } });
  const s = await runTracingCity({ city, protocol, crypto: nodeSuite, logger, ...(tcnMode !== undefined ? { tcnMode } : {}) });
  process.stdout.write(`${s.label} ${phones}×${days}: P ${String(s.score.precision)} R ${String(s.score.recall)} TP ${s.score.truePositives} FP ${s.score.falsePositives} FN ${s.score.falseNegatives}; up ${s.bytesUpPerPhoneDay.toFixed(0)} B, down ${s.bytesDownPerPhoneDay.toFixed(0)} B per phone-day; ${s.wallS.toFixed(1)} s\n`);
  return s;
}

function expectSound(s: TracingRunSummary): void {
  expect(s.score.truePositives + s.score.falseNegatives, 'the city has phones to notify').toBeGreaterThanOrEqual(8);
  expect(s.counters['framesRefused']).toBe(0);
  expect(s.counters['badCodes']).toBe(0);
  expect(s.counters['uploadsAbandoned']).toBe(0);
  expect(s.bytesUpPerPhoneDay).toBeGreaterThan(0);
  expect(s.storagePerPhone.meanBytes).toBeGreaterThan(0);
}

describe('tracing city — DP-3T, TCN, DIMY', () => {
  it('DP-3T low-cost: recall ≥ 0.95, every (SK_t, t) acknowledged by the key server', async () => {
    const s = await run('dp3t', 80, 4);
    expectSound(s);
    expect(s.counters['uploadsAcked']).toBe(s.positives);
    expect(s.score.recall).toBeGreaterThanOrEqual(0.95);
  }, 300_000);

  for (const mode of ['C', 'A', 'B'] as const) {
    it(`TCN mode ${mode}: recall ≥ 0.95`, async () => {
      const s = await run('tcn', mode === 'C' ? 80 : 50, 4, mode);
      expectSound(s);
      if (mode === 'C') expect(s.counters['uploadsAcked']).toBe(s.positives);
      expect(s.score.recall).toBeGreaterThanOrEqual(0.95);
      // A and B notify when the backend matches or publishes, not at the next key-server delta.
      if (mode !== 'C') expect(s.score.timeToNotification.p90H).toBeLessThan(0.1);
    }, 300_000);
  }

  it('DIMY: recall ≥ 0.85 (k shares in one epoch, daily QBFs), notifications within a day', async () => {
    const s = await run('dimy', 80, 4);
    expectSound(s);
    expect(s.score.recall).toBeGreaterThanOrEqual(0.85);
    expect(s.score.timeToNotification.p90H).toBeLessThanOrEqual(25);
    // 100 KB Bloom filters: DIMY's upload dwarfs the key-based protocols'.
    expect(s.bytesUpPerPhoneDay).toBeGreaterThan(10_000);
  }, 300_000);
});
