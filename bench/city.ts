/**
 * Quarantine city wall time (issue 3): the full city is 200 households × 14
 * days; the bench runs 200 households × 1 simulated day on the in-memory bus
 * and reports the measured wall time plus the 14-day extrapolation (the run
 * is linear in simulated time: the same per-day work repeats).
 */
import { performance } from 'node:perf_hooks';
import { quarantineProtocolSchema } from '../services/city/quarantine/actors.ts';
import { quarantineCitySchema } from '../services/city/quarantine/plan.ts';
import { runQuarantineCity } from '../services/city/quarantine/run.ts';
import { nodeSuite } from '../services/crypto/node.ts';
import { silentLogger } from '../services/log.ts';
import { MemoryStore } from '../services/store/memory.ts';
import type { BenchModule } from './report.ts';

const HOUSEHOLDS = 200;

export const cityBench: BenchModule = async () => {
  const started = performance.now();
  const summary = await runQuarantineCity({
    city: quarantineCitySchema.parse({ households: HOUSEHOLDS, days: 1 }),
    protocol: quarantineProtocolSchema.parse({}),
    bus: { kind: 'memory' },
    store: new MemoryStore(),
    crypto: nodeSuite,
    logger: silentLogger,
  });
  const wallS = (performance.now() - started) / 1000;
  return [
    {
      group: 'quarantine-city',
      name: `${HOUSEHOLDS} households × 1 day (memory bus)`,
      values: { wall: Math.round(wallS * 10) / 10, extrapolated14Days: Math.round(wallS * 14) },
      unit: 's',
    },
    {
      group: 'quarantine-city',
      name: 'alerts: true / explained / unexplained false; violations detected / missed',
      values: {
        true: summary.score.trueAlerts,
        explained: summary.score.explainedByPhoneOutage + summary.score.explainedByBeaconOutage,
        unexplained: summary.score.unexplainedFalseAlerts,
        detected: summary.score.detectedViolations,
        missed: summary.score.missedViolations,
      },
      unit: 'count',
    },
  ];
};
