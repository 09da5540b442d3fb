/**
 * Quarantine city wall time (issue 3 acceptance): the full city behind
 * `npm start` — 200 households × 14 simulated days on the embedded aedes
 * broker, measured, not extrapolated — next to one simulated day on the
 * in-memory bus, so the ratio shows what the broker and the 13 other days
 * add. The full run takes a while (about 20 million actor events); run this
 * group alone with `npm run bench -- city`.
 */
import { performance } from 'node:perf_hooks';
import { quarantineProtocolSchema } from '../services/city/quarantine/actors.ts';
import { quarantineCitySchema } from '../services/city/quarantine/plan.ts';
import { runQuarantineCity, type QuarantineSummary } from '../services/city/quarantine/run.ts';
import type { BusChoice } from '../services/bus/open.ts';
import { nodeSuite } from '../services/crypto/node.ts';
import { silentLogger } from '../services/log.ts';
import { MemoryStore } from '../services/store/memory.ts';
import type { BenchModule, BenchRow } from './report.ts';

const HOUSEHOLDS = 200;
const DAYS = 14;

async function timed(days: number, bus: BusChoice): Promise<{ wallS: number; summary: QuarantineSummary }> {
  const started = performance.now();
  let reported = 0;
  const summary = await runQuarantineCity({
    city: quarantineCitySchema.parse({ households: HOUSEHOLDS, days }),
    protocol: quarantineProtocolSchema.parse({}),
    bus,
    store: new MemoryStore(),
    crypto: nodeSuite,
    logger: silentLogger,
    onProgress: (fraction) => {
      // A line per simulated day on stderr: the full run is long.
      const day = Math.floor(fraction * days);
      if (days > 1 && day > reported) {
        reported = day;
        process.stderr.write(`  city: day ${day}/${days} after ${((performance.now() - started) / 1000).toFixed(0)} s\n`);
      }
    },
  });
  return { wallS: (performance.now() - started) / 1000, summary };
}

function scoreRow(name: string, s: QuarantineSummary): BenchRow {
  return {
    group: 'quarantine-city',
    name,
    values: {
      true: s.score.trueAlerts,
      explained: s.score.explainedByPhoneOutage + s.score.explainedByBeaconOutage,
      unexplained: s.score.unexplainedFalseAlerts,
      detected: s.score.detectedViolations,
      missed: s.score.missedViolations,
      latencyP50s: s.score.latencyS.p50 ?? Number.NaN,
    },
    unit: 'count',
  };
}

export const cityBench: BenchModule = async () => {
  const oneDay = await timed(1, { kind: 'memory' });
  const full = await timed(DAYS, { kind: 'embedded' });
  const maxRssMb = Math.round(process.resourceUsage().maxRSS / 1024);
  return [
    { group: 'quarantine-city', name: `${HOUSEHOLDS} households × 1 day, memory bus`, values: { wall: Math.round(oneDay.wallS * 10) / 10 }, unit: 's' },
    {
      group: 'quarantine-city',
      name: `${HOUSEHOLDS} households × ${DAYS} days, aedes (npm start)`,
      values: { wall: Math.round(full.wallS), perSimulatedDay: Math.round((full.wallS / DAYS) * 10) / 10, maxRssMb },
      unit: 's',
      ratio: { label: `full / (${DAYS} × one memory-bus day)`, value: full.wallS / (DAYS * oneDay.wallS) },
    },
    scoreRow(`alerts, ${DAYS} days`, full.summary),
  ];
};
