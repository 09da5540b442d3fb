/**
 * `tracecity run`: the one-process demo in virtual time; with `--protocol`,
 * the contact-tracing comparison on the tracing city (services/cli/tracing-run.ts).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Command } from 'commander';
import { createLogger } from '../log.ts';
import type { BusChoice } from '../bus/open.ts';
import { runDemo, stableJson, type DemoSummary } from '../city/demo-run.ts';
import { demoScenarioSchema } from '../city/demo-scenario.ts';
import { brokerUrlFlag, choiceFlag, ConfigError, defined, intFlag, numberFlag, parseConfig, logLevelFlag, type LogLevel } from './options.ts';
import { createProgress } from './progress.ts';
import { PROTOCOL_CHOICES, runTracingComparison, TCN_MODE_CHOICES, type ProtocolChoice, type TcnModeChoice } from './tracing-run.ts';

interface RunFlags {
  protocol?: ProtocolChoice;
  phones?: number;
  days?: number;
  radioLoss?: number;
  venueCheck?: boolean;
  tcnMode?: TcnModeChoice;
  jobs?: number;
  seed?: number;
  out: string;
  broker?: string;
  memoryBus?: boolean;
  households?: number;
  phonesPerHousehold?: number;
  duration?: number;
  quiet?: boolean;
  logLevel: LogLevel;
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('run the demo city in one process under virtual time (embedded broker unless --broker); with --protocol, compare contact-tracing protocols on the tracing city')
    .option('--protocol <name>', `contact tracing on the tracing city: ${PROTOCOL_CHOICES.join(' | ')} (writes tracing-comparison.md/.json)`, choiceFlag('--protocol', PROTOCOL_CHOICES))
    .option('--phones <n>', 'tracing city: phones (default 500)', intFlag('--phones'))
    .option('--days <n>', 'tracing city: simulated days (default 7)', intFlag('--days'))
    .option('--radio-loss <p>', 'tracing city: probability that an advertisement is lost (default 0)', numberFlag('--radio-loss', 0, 1))
    .option('--venue-check', 'tracing city: venues admit only phones whose health code is green')
    .option('--jobs <n>', 'tracing city: protocol runs at a time, each in its own process (default: CPU cores)', intFlag('--jobs', 1, 64))
    .option('--tcn-mode <mode>', 'tracing city: TCN operating mode A (contacts reported in real time) | B (contact log on request) | C (local matching, default) | all', choiceFlag('--tcn-mode', TCN_MODE_CHOICES))
    .option('--seed <n>', 'random seed; the same seed gives a byte-identical summary.json', intFlag('--seed'))
    .option('--out <dir>', 'directory for summary.json', './out')
    .option('--broker <url>', 'use this MQTT broker instead of the embedded aedes', brokerUrlFlag)
    .option('--memory-bus', 'use the in-memory bus instead of MQTT (fastest)')
    .option('--households <n>', 'households, one beacon each', intFlag('--households'))
    .option('--phones-per-household <n>', 'phones per household', intFlag('--phones-per-household'))
    .option('--duration <s>', 'simulated seconds', intFlag('--duration'))
    .option('--quiet', 'no progress output')
    .option('--log-level <level>', 'debug | info | warn | error (logs go to stderr)', logLevelFlag, 'warn')
    .action(async (flags: RunFlags) => {
      if (flags.protocol !== undefined) {
        const demoOnly = (['broker', 'memoryBus', 'households', 'phonesPerHousehold', 'duration'] as const).filter((k) => flags[k] !== undefined);
        if (demoOnly.length > 0) throw new ConfigError(demoOnly.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} is a demo option; the tracing city (--protocol) runs on its in-memory bus`));
        await runTracingComparison({ ...defined({ seed: flags.seed, phones: flags.phones, days: flags.days, radioLoss: flags.radioLoss, venueCheck: flags.venueCheck, tcnMode: flags.tcnMode, jobs: flags.jobs, quiet: flags.quiet }), protocol: flags.protocol, out: flags.out, logLevel: flags.logLevel });
        return;
      }
      const tracingOnly = (['phones', 'days', 'radioLoss', 'venueCheck', 'tcnMode', 'jobs'] as const).filter((k) => flags[k] !== undefined);
      if (tracingOnly.length > 0) throw new ConfigError(tracingOnly.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} needs --protocol`));
      const scenario = parseConfig(
        demoScenarioSchema,
        defined({ seed: flags.seed, households: flags.households, phonesPerHousehold: flags.phonesPerHousehold, durationS: flags.duration }),
      );
      const bus: BusChoice =
        flags.broker !== undefined ? { kind: 'url', url: flags.broker } : flags.memoryBus === true ? { kind: 'memory' } : { kind: 'embedded' };
      const logger = createLogger({ name: 'tracecity', level: flags.logLevel });
      const progress = createProgress(flags.quiet === true);
      const started = performance.now();
      const summary = await runDemo({
        scenario,
        bus,
        logger,
        onProgress: (fraction, now) => progress.update(fraction, `t=${new Date(now).toISOString()}`),
      });
      progress.stop();
      const wallS = (performance.now() - started) / 1000;
      await mkdir(flags.out, { recursive: true });
      const file = join(flags.out, 'summary.json');
      await writeFile(file, stableJson(summary));
      process.stdout.write(formatSummary(summary, bus, wallS, file));
    });
}

function formatSummary(s: DemoSummary, bus: BusChoice, wallS: number, file: string): string {
  const busName = bus.kind === 'url' ? bus.url : bus.kind === 'memory' ? 'in-memory' : 'embedded aedes';
  const lines = [
    `tracecity demo — seed ${s.seed}, ${s.actors.beacons} beacons, ${s.actors.phones} phones, ${s.simulated.durationS} simulated s over ${busName}`,
    `  frames sent         ${s.beacons.framesBuilt} beacon frames (${s.beacons.fragmentsPerFrame} fragments each); ${s.air['sent'] ?? 0} advertising events evaluated, ${s.air['scheduledSkipped'] ?? 0} skipped (nobody scanning in range)`,
    `  frames received     ${s.phones.fragmentsReceived} fragments received by phones`,
    `  frames reassembled  ${s.phones.framesReassembled} (rejected ${s.phones.framesRejected})`,
    `  reported            ${s.collector.framesHeard} distinct frames in ${s.collector.reports} reports; ${s.collector.beaconsHeard} beacons heard by ${s.collector.phonesHeardSomething} phones; mean RSSI ${s.collector.meanRssiDbm ?? 'n/a'} dBm`,
    `  bus                 ${s.bus.sent} sent, ${s.bus.received} received, ${s.bus.rejected} rejected`,
    `  wall time           ${wallS.toFixed(2)} s`,
    `  summary             ${file}`,
  ];
  return `${lines.join('\n')}\n`;
}
