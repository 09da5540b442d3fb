/**
 * `tracecity quarantine`: the quarantine-enforcement city in one process,
 * virtual time (issue 3). Writes DIR/summary.json (byte-identical for a seed)
 * and DIR/report.md, and prints the report.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { InvalidArgumentError, type Command } from 'commander';
import type { BusChoice } from '../bus/open.ts';
import { stableJson } from '../city/demo-run.ts';
import { quarantineProtocolSchema } from '../city/quarantine/actors.ts';
import { ATTACK_KINDS, attacksFor, quarantineCitySchema, type AttackKind } from '../city/quarantine/plan.ts';
import { formatQuarantineReport } from '../city/quarantine/report.ts';
import { runQuarantineCity } from '../city/quarantine/run.ts';
import { cryptoSuiteByName } from '../crypto/index.ts';
import { createLogger } from '../log.ts';
import { openStore } from '../store/index.ts';
import { brokerUrlFlag, choiceFlag, defined, intFlag, numberFlag, parseConfig, logLevelFlag, type LogLevel } from './options.ts';
import { createProgress } from './progress.ts';

interface QuarantineFlags {
  seed?: number;
  households?: number;
  days?: number;
  violators?: number;
  flaky?: number;
  attacks?: AttackKind[];
  out: string;
  broker?: string;
  memoryBus?: boolean;
  store: string;
  suite: 'node' | 'noble';
  quiet?: boolean;
  logLevel: LogLevel;
}

/** `--attacks replay,forge`: known kinds, no repeats, at least one. */
export function attacksFlag(value: string): AttackKind[] {
  const kinds = value.split(',').map((k) => k.trim());
  const bad = kinds.filter((k) => !(ATTACK_KINDS as readonly string[]).includes(k));
  if (kinds.length === 0 || bad.length > 0 || new Set(kinds).size !== kinds.length) {
    throw new InvalidArgumentError(`--attacks must be a comma-separated list of distinct ${ATTACK_KINDS.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return kinds as AttackKind[];
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
    .option('--attacks <list>', `comma-separated adversaries to switch on: ${ATTACK_KINDS.join(', ')}`, attacksFlag)
    .option('--out <dir>', 'directory for summary.json and report.md', './out')
    .option('--broker <url>', 'use this MQTT broker instead of the embedded aedes', brokerUrlFlag)
    .option('--memory-bus', 'use the in-memory bus instead of MQTT (fastest)')
    .option('--store <url>', "backends' store: memory: or sqlite:<path>", 'memory:')
    .option('--suite <name>', 'crypto suite: node (OpenSSL) or noble (pure JS)', choiceFlag('--suite', ['node', 'noble'] as const), 'node')
    .option('--quiet', 'no progress output')
    .option('--log-level <level>', 'debug | info | warn | error (stderr)', logLevelFlag, 'warn')
    .action(async (flags: QuarantineFlags) => {
      const city = parseConfig(
        quarantineCitySchema,
        defined({ seed: flags.seed, households: flags.households, days: flags.days, violatorFraction: flags.violators, flakyFraction: flags.flaky, attacks: flags.attacks === undefined ? undefined : attacksFor(flags.attacks) }),
      );
      const protocol = quarantineProtocolSchema.parse({});
      const bus: BusChoice = flags.broker !== undefined ? { kind: 'url', url: flags.broker } : flags.memoryBus === true ? { kind: 'memory' } : { kind: 'embedded' };
      const logger = createLogger({ name: 'tracecity', level: flags.logLevel });
      const store = await openStore(flags.store);
      const progress = createProgress(flags.quiet === true);
      const started = performance.now();
      let nextLabelAt = 0;
      // Ctrl-C / SIGTERM: stop the simulation where it is and still write what it measured; a second signal exits at once.
      const abort = new AbortController();
      const onSignal = (signal: NodeJS.Signals): void => {
        if (abort.signal.aborted) process.exit(130);
        logger.warn('stopping the run; the summary covers the time simulated so far (signal again to quit at once)', { signal });
        abort.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        const summary = await runQuarantineCity({
          city,
          protocol,
          bus,
          store,
          crypto: cryptoSuiteByName(flags.suite),
          logger,
          // Once per simulated minute: formatting the label every step costs more than the bar saves.
          onProgress: (fraction, now) => {
            if (now < nextLabelAt) return;
            nextLabelAt = now + 60_000;
            progress.update(fraction, `t=${new Date(now).toISOString()}`);
          },
          signal: abort.signal,
        });
        progress.stop();
        const wallS = (performance.now() - started) / 1000;
        await mkdir(flags.out, { recursive: true });
        await writeFile(join(flags.out, 'summary.json'), stableJson(summary));
        const report = formatQuarantineReport(summary, protocol, wallS);
        await writeFile(join(flags.out, 'report.md'), report);
        process.stdout.write(`${report}\nwritten ${join(flags.out, 'summary.json')} and ${join(flags.out, 'report.md')}\n`);
        if (summary.interrupted !== undefined) process.exitCode = 130;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await store.close();
      }
    });
}
