/**
 * The quarantine city end to end (issue 3): beacons → phones → app backend →
 * police backend, health authority registering, officers installing beacons,
 * violators leaving home, flaky phones and beacons losing power — scored
 * against the plan. Small and short here; the full city is `npm start`.
 */
import { describe, expect, it } from 'vitest';
import { quarantineProtocolSchema } from '../../services/city/quarantine/actors.ts';
import { quarantineCitySchema } from '../../services/city/quarantine/plan.ts';
import { runQuarantineCity, type QuarantineSummary } from '../../services/city/quarantine/run.ts';
import { stableJson } from '../../services/city/demo-run.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { silentLogger } from '../../services/log.ts';
import { MemoryStore } from '../../services/store/memory.ts';
import type { BusChoice } from '../../services/bus/open.ts';

const city = quarantineCitySchema.parse({ households: 8, days: 0.5, violatorFraction: 0.5, violationsPerDay: 3, flakyFraction: 0.25, beaconPowerLossFraction: 0.2 });
const protocol = quarantineProtocolSchema.parse({});
const run = (bus: BusChoice, seed = 1): Promise<QuarantineSummary> =>
  runQuarantineCity({ city: { ...city, seed }, protocol, bus, store: new MemoryStore(), crypto: nodeSuite, logger: silentLogger });

describe('quarantine city (one process, virtual time)', () => {
  it('detects every detectable violation, raises no unexplained false alert, and keeps the privacy split in messages', async () => {
    const s = await run({ kind: 'memory' });
    expect(s.households.violators).toBeGreaterThan(0);
    expect(s.score.violations).toBeGreaterThan(0);
    expect(s.score.missedViolations).toBe(0);
    expect(s.score.detectedViolations).toBe(s.score.detectableViolations);
    expect(s.score.unexplainedFalseAlerts).toBe(0);
    expect(s.score.trueAlerts).toBeGreaterThan(0);
    expect(s.appBackend['tokensValid']).toBeGreaterThan(0);
    expect(s.appBackend['replays']).toBe(0);
    expect(s.police['alertsReceived']).toBe(s.score.alerts);
    expect(s.bus.rejected).toBe(0);
  }, 60_000);

  it('is deterministic from the seed, over the in-memory bus and embedded aedes alike', async () => {
    const a = stableJson(await run({ kind: 'memory' }, 5));
    const b = stableJson(await run({ kind: 'embedded' }, 5));
    const c = stableJson(await run({ kind: 'memory' }, 6));
    expect(b).toBe(a);
    expect(c).not.toBe(a);
  }, 120_000);
});
