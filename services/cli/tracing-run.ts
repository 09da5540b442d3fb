/**
 * `tracecity run --protocol gaen|dp3t|tcn|dimy|all` (issue 5): the tracing
 * city under each protocol — same seed, plan, radio and positives — and one
 * comparison table (stdout, out/tracing-comparison.md and .json).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { TRACING_PROTOCOLS, type TracingProtocol } from '../../actors/tracing/engine.ts';
import { DEFAULT_VENUE_POLICY } from '../../actors/tracing/health-code.ts';
import { TCN_MODES, type TcnMode } from '../../actors/tracing/tcn-config.ts';
import { stableJson } from '../city/demo-run.ts';
import { tracingCityConfigSchema } from '../city/tracing/config.ts';
import { comparisonMarkdown, comparisonOf } from '../city/tracing/report.ts';
import { runTracingCity, type TracingRunSummary } from '../city/tracing/run.ts';
import { nodeSuite } from '../crypto/node.ts';
import { createLogger } from '../log.ts';
import { defined, parseConfig, type LogLevel } from './options.ts';
import { createProgress } from './progress.ts';
import { runVariantsInChildren, type Variant } from './tracing-jobs.ts';

export const PROTOCOL_CHOICES = [...TRACING_PROTOCOLS, 'all'] as const;
export type ProtocolChoice = (typeof PROTOCOL_CHOICES)[number];
export const TCN_MODE_CHOICES = [...TCN_MODES, 'all'] as const;
export type TcnModeChoice = (typeof TCN_MODE_CHOICES)[number];

export interface TracingRunFlags {
  readonly protocol: ProtocolChoice;
  readonly seed?: number;
  readonly phones?: number;
  readonly days?: number;
  readonly radioLoss?: number;
  /** Venues admit only green health codes (actors/tracing/health-code.ts). */
  readonly venueCheck?: boolean;
  /** TCN's operating mode(s): one row per mode (default C). */
  readonly tcnMode?: TcnModeChoice;
  readonly out: string;
  readonly quiet?: boolean;
  readonly logLevel: LogLevel;
  /** Protocol runs at a time, each in its own process (default: cores, at most the runs). */
  readonly jobs?: number;
}

export async function runTracingComparison(flags: TracingRunFlags, signal?: AbortSignal): Promise<void> {
  const city = parseConfig(tracingCityConfigSchema, defined({ seed: flags.seed, phones: flags.phones, days: flags.days }));
  const protocols: readonly TracingProtocol[] = flags.protocol === 'all' ? TRACING_PROTOCOLS : [flags.protocol];
  const logger = createLogger({ name: 'tracecity', level: flags.logLevel });
  const runs: TracingRunSummary[] = [];
  const tcnModes: readonly TcnMode[] = flags.tcnMode === 'all' ? TCN_MODES : [flags.tcnMode ?? 'C'];
  const variants = protocols.flatMap((protocol): Variant[] => (protocol === 'tcn' ? tcnModes.map((tcnMode) => ({ protocol, tcnMode })) : [{ protocol }]));
  const jobs = Math.min(variants.length, flags.jobs ?? availableParallelism());
  if (jobs > 1) {
    const say = (v: Variant, done: number): void => {
      if (flags.quiet !== true) process.stderr.write(`done ${v.protocol}${v.tcnMode !== undefined ? ` (mode ${v.tcnMode})` : ''} (${done}/${variants.length})\n`);
    };
    runs.push(...(await runVariantsInChildren(variants, { ...defined({ seed: flags.seed, phones: flags.phones, days: flags.days, radioLoss: flags.radioLoss, venueCheck: flags.venueCheck }), logLevel: flags.logLevel }, jobs, say, signal)));
  }
  for (const { protocol, ...variant } of jobs > 1 ? [] : variants) {
    const progress = createProgress(flags.quiet === true);
    const summary = await runTracingCity({
      city,
      protocol,
      crypto: nodeSuite,
      logger,
      ...(flags.radioLoss !== undefined ? { propagation: { lossProbability: flags.radioLoss } } : {}),
      ...(flags.venueCheck === true ? { venueCheck: DEFAULT_VENUE_POLICY } : {}),
      ...variant,
      onProgress: (fraction, now) => progress.update(fraction, `${protocol} t=${new Date(now).toISOString()}`),
      ...(signal !== undefined ? { signal } : {}),
    });
    progress.stop();
    runs.push(summary);
  }
  const comparison = comparisonOf(city.seed, runs);
  const markdown = comparisonMarkdown(comparison);
  await mkdir(flags.out, { recursive: true });
  await writeFile(join(flags.out, 'tracing-comparison.md'), markdown);
  await writeFile(join(flags.out, 'tracing-comparison.json'), stableJson(comparison));
  process.stdout.write(`${markdown}\nwritten: ${join(flags.out, 'tracing-comparison.md')}, ${join(flags.out, 'tracing-comparison.json')}\n`);
}
