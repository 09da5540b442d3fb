/**
 * The one-process demo (mode 1): the seam end to end — beacons advertise
 * frames larger than one advertisement, phones scan, reassemble and report
 * over the bus. Virtual time + quiescence make it deterministic, whichever
 * bus carries the reports.
 */
import { describe, expect, it } from 'vitest';
import { runDemo, stableJson } from '../../services/city/demo-run.ts';
import { demoScenarioSchema } from '../../services/city/demo-scenario.ts';
import { silentLogger } from '../../services/log.ts';

const scenario = (over: Record<string, unknown> = {}) => demoScenarioSchema.parse({ households: 6, durationS: 900, ...over });

describe('demo run (one process, virtual time)', () => {
  it('frames cross the seam: advertised, received, reassembled, reported', async () => {
    const s = await runDemo({ scenario: scenario(), bus: { kind: 'memory' }, logger: silentLogger });
    expect(s.beacons.framesBuilt).toBe(6 * 16); // at t=0 and every minute up to and including t=900 s
    expect(s.beacons.fragmentsPerFrame).toBeGreaterThan(1);
    expect(s.phones.fragmentsReceived).toBeGreaterThan(0);
    expect(s.phones.framesReassembled).toBeGreaterThan(0);
    expect(s.collector.framesHeard).toBeGreaterThan(0);
    expect(s.collector.framesHeard).toBeLessThanOrEqual(s.phones.framesReassembled);
    expect(s.bus.rejected).toBe(0);
    // Every phone at home hears its own household's beacon.
    expect(s.collector.phonesHeardSomething).toBe(s.actors.phones);
  });

  it('same seed ⇒ identical summary on the in-memory bus and on embedded aedes; another seed differs', async () => {
    const memory = stableJson(await runDemo({ scenario: scenario({ seed: 3 }), bus: { kind: 'memory' }, logger: silentLogger }));
    const aedes = stableJson(await runDemo({ scenario: scenario({ seed: 3 }), bus: { kind: 'embedded' }, logger: silentLogger }));
    const other = stableJson(await runDemo({ scenario: scenario({ seed: 4 }), bus: { kind: 'memory' }, logger: silentLogger }));
    expect(aedes).toBe(memory);
    expect(other).not.toBe(memory);
  }, 60_000);
});
