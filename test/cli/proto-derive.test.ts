/**
 * `tracecity proto derive gaen|dp3t|tcn` (issue 5 "Interop CLI") as other
 * implementers run it (child processes), against every official vector under
 * both crypto suites: GAEN's 144 RPI/AEM pairs (SPECS §1.3–1.4), DP-3T's
 * day keys and EphIDs in generation order (SPECS §2.1), TCN's rvk, tck_1..9
 * and tcn_1..9 (SPECS §3). Bad flags exit 2 naming the flag.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { runTracecity, type CliResult } from '../support/processes.ts';
import gaen from '../vectors/gaen.json' with { type: 'json' };
import dp3t from '../vectors/dp3t.json' with { type: 'json' };
import tcn from '../vectors/tcn.json' with { type: 'json' };

const SUITES = ['noble', 'node'] as const;
const lowcost = dp3t.official.lowcost;
const derivedDays = dp3t.derived_lowcost_testvectors_script_output;
const runs = new Map<string, CliResult>();
const key = (args: readonly string[]): string => args.join(' ');
const json = <T>(args: readonly string[]): T => JSON.parse(runs.get(key(args))?.stdout ?? 'null') as T;

const gaenArgs = (suite: string): string[] => ['proto', 'derive', 'gaen', '--tek', gaen.TEMPORARY_TRACING_KEY, '--enin', String(gaen.CTINTERVAL_NUMBER_OF_GENERATED_KEY), '--metadata', gaen.BLE_METADATA, '--suite', suite];
const dp3tArgs = (suite: string): string[] => ['proto', 'derive', 'dp3t', '--sk', lowcost.KEY0, '--days', '3', '--suite', suite];
const tcnArgs = (suite: string): string[] => ['proto', 'derive', 'tcn', '--rak', tcn.official.rak, '--suite', suite];
const BAD: [string[], string][] = [
  [['proto', 'derive', 'gaen', '--tek', 'abc', '--enin', '1'], '--tek'],
  [['proto', 'derive', 'gaen', '--tek', gaen.TEMPORARY_TRACING_KEY, '--enin', '1', '--count', '145'], '--count'],
  [['proto', 'derive', 'dp3t', '--sk', lowcost.KEY0, '--epochs', '7'], '--epochs'],
  [['proto', 'derive', 'tcn', '--rak', 'zz'], '--rak'],
];

beforeAll(async () => {
  const all = [...SUITES.flatMap((s) => [gaenArgs(s), dp3tArgs(s), tcnArgs(s)]), ...BAD.map(([args]) => args)];
  // A few processes at a time: each start is CPU-bound (tsx).
  for (let i = 0; i < all.length; i += 4) {
    await Promise.all(all.slice(i, i + 4).map(async (args) => runs.set(key(args), await runTracecity(args, 60_000))));
  }
}, 180_000);

describe('tracecity proto derive (issue 5 interop CLI)', () => {
  for (const suite of SUITES) {
    it(`gaen (${suite}): RPIK, AEMK and all 144 RPI/AEM pairs of the official vector (SPECS §1.3–1.4)`, () => {
      const out = json<{ rpik: string; aemk: string; ids: { enin: number; rpi: string; aem: string }[] }>(gaenArgs(suite));
      expect(out.rpik).toBe(gaen.RPIK);
      expect(out.aemk).toBe(gaen.AEMK);
      expect(out.ids).toEqual(gaen.ADVERTISED_DATA.map((d) => ({ enin: d.en_interval_number, rpi: d.rpi, aem: d.aem })));
    });

    it(`dp3t (${suite}): SK_t ratchet and 96 EphIDs a day in generation order (SPECS §2.1)`, () => {
      const out = json<{ days: { sk: string; ephids: string[] }[] }>(dp3tArgs(suite));
      expect(out.days.map((d) => d.sk)).toEqual([lowcost.KEY0, lowcost.KEY1, lowcost.KEY2]);
      expect(out.days[1]?.ephids.slice(0, 3)).toEqual(lowcost.EPHIDS_KEY1_unshuffled_first3);
      out.days.forEach((day, i) => expect(day.ephids).toEqual(derivedDays[i]?.all_96_ephids_unshuffled));
    });

    it(`tcn (${suite}): rvk, tck_1..9 and tcn_1..9 (SPECS §3)`, () => {
      const out = json<{ rvk: string; tck: string[]; tcn: string[] }>(tcnArgs(suite));
      expect(out.rvk).toBe(tcn.official.rvk);
      expect(out.tck).toEqual(Object.values(tcn.official.tck_bytes));
      expect(out.tcn).toEqual(Object.values(tcn.official.tcn));
    });
  }

  it('bad flags exit 2 naming the flag', () => {
    for (const [args, flag] of BAD) {
      const r = runs.get(key(args));
      expect(r?.code, key(args)).toBe(2);
      expect(r?.stderr).toContain(flag);
    }
  });
});
