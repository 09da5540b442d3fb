/**
 * `tracecity quarantine`: the quarantine-enforcement city in one process,
 * virtual time (issue 3). Writes DIR/summary.json (byte-identical for a seed)
 * and DIR/report.md, and prints the report.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Command } from 'commander';
import type { BusChoice } from '../bus/open.ts';
import { stableJson } from '../city/demo-run.ts';
import { quarantineProtocolSchema } from '../city/quarantine/actors.ts';
import { quarantineCitySchema } from '../city/quarantine/plan.ts';
import { formatQuarantineReport } from '../city/quarantine/report.ts';
import { runQuarantineCity } from '../city/quarantine/run.ts';
import { cryptoSuiteByName } from '../crypto/index.ts';
import { createLogger } from '../log.ts';
import { openStore } from '../store/index.ts';
import { brokerUrlFlag, choiceFlag, defined, intFlag, numberFlag, parseConfig } from './options.ts';
import { createProgress } from './progress.ts';

interface QuarantineFlags {
  seed?: number;
  households?: number;
  days?: number;
  violators?: number;
  flaky?: number;
  out: string;
  broker?: string;
  memoryBus?: boolean;
  store: string;
  suite: 'node' | 'noble';
  quiet?: boolean;
  logLevel: string;
}

export function registerQuarantine(program: Command): void {
  program
    .command('quarantine')
    .description('run the quarantine-enforcement city (beacons, phones, app/police backends, health authority) under virtual time')
    .option('--seed <n>', 'random seed; the same seed gives a byte-identical summary.json', intFlag('--seed'))
    .option('--households <n>', 'quarantined households (one beacon and one phone each)', intFlag('--households'))
    .option('--days <d>', 'simulated days', numberFlag('--days'))
    .option('--violators <fraction>', 'fraction of patients who leave home with their phone', numberFlag('--violators'))
    .option('--flaky <fraction>', 'fraction of phones with flaky network / bluetooth / power', numberFlag('--flaky'))
    .option('--out <dir>', 'directory for summary.json and report.md', './out')
    .option('--broker <url>', 'use this MQTT broker instead of the embedded aedes', brokerUrlFlag)
    .option('--memory-bus', 'use the in-memory bus instead of MQTT (fastest)')
    .option('--store <url>', "backends' store: memory: or sqlite:<path>", 'memory:')
    .option('--suite <name>', 'crypto suite: node (OpenSSL) or noble (pure JS)', choiceFlag('--suite', ['node', 'noble'] as const), 'node')
    .option('--quiet', 'no progress output')
    .option('--log-level <level>', 'debug | info | warn | error (stderr)', 'warn')
    .action(async (flags: QuarantineFlags) => {
      const city = parseConfig(
        quarantineCitySchema,
        defined({ seed: flags.seed, households: flags.households, days: flags.days, violatorFraction: flags.violators, flakyFraction: flags.flaky }),
      );
      const protocol = quarantineProtocolSchema.parse({});
      const bus: BusChoice = flags.broker !== undefined ? { kind: 'url', url: flags.broker } : flags.memoryBus === true ? { kind: 'memory' } : { kind: 'embedded' };
      const logger = createLogger({ name: 'tracecity', level: flags.logLevel as 'warn' });
      const store = await openStore(flags.store);
      const progress = createProgress(flags.quiet === true);
      const started = performance.now();
      try {
        const summary = await runQuarantineCity({
          city,
          protocol,
          bus,
          store,
          crypto: cryptoSuiteByName(flags.suite),
          logger,
          onProgress: (fraction, now) => progress.update(fraction, `t=${new Date(now).toISOString()}`),
        });
        progress.stop();
        const wallS = (performance.now() - started) / 1000;
        await mkdir(flags.out, { recursive: true });
        await writeFile(join(flags.out, 'summary.json'), stableJson(summary));
        const report = formatQuarantineReport(summary, protocol, wallS);
        await writeFile(join(flags.out, 'report.md'), report);
        process.stdout.write(`${report}\nwritten ${join(flags.out, 'summary.json')} and ${join(flags.out, 'report.md')}\n`);
      } finally {
        await store.close();
      }
    });
}
