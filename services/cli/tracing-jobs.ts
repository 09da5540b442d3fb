/**
 * Runs of `tracecity run --protocol …` in parallel child processes (one
 * protocol variant each, `--jobs` at a time): every run is independent and
 * seeded, so the table is the same as one process would produce, in a
 * fraction of the wall time on a multi-core machine.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TracingProtocol } from '../../actors/tracing/engine.ts';
import type { TcnMode } from '../../actors/tracing/tcn-config.ts';
import type { TracingComparison } from '../city/tracing/report.ts';
import type { TracingRunSummary } from '../city/tracing/run.ts';

const BIN = fileURLToPath(new URL('../../bin/tracecity.js', import.meta.url));

export interface Variant {
  readonly protocol: TracingProtocol;
  readonly tcnMode?: TcnMode;
}

export interface ChildFlags {
  readonly seed?: number;
  readonly phones?: number;
  readonly days?: number;
  readonly radioLoss?: number;
  readonly venueCheck?: boolean;
  readonly logLevel: string;
}

function childArgs(v: Variant, flags: ChildFlags, out: string): string[] {
  const args = [BIN, 'run', '--protocol', v.protocol, '--out', out, '--quiet', '--jobs', '1', '--log-level', flags.logLevel];
  if (v.tcnMode !== undefined) args.push('--tcn-mode', v.tcnMode);
  if (flags.seed !== undefined) args.push('--seed', String(flags.seed));
  if (flags.phones !== undefined) args.push('--phones', String(flags.phones));
  if (flags.days !== undefined) args.push('--days', String(flags.days));
  if (flags.radioLoss !== undefined) args.push('--radio-loss', String(flags.radioLoss));
  if (flags.venueCheck === true) args.push('--venue-check');
  return args;
}

async function runChild(v: Variant, flags: ChildFlags, dir: string, index: number, signal: AbortSignal | undefined): Promise<TracingRunSummary> {
  const out = join(dir, String(index));
  const child = spawn(process.execPath, childArgs(v, flags, out), { stdio: ['ignore', 'ignore', 'pipe'], ...(signal !== undefined ? { signal } : {}) });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', resolve);
  });
  if (code !== 0) throw new Error(`${v.protocol}${v.tcnMode !== undefined ? ` (mode ${v.tcnMode})` : ''} exited with ${String(code)}: ${stderr.trim()}`);
  const table = JSON.parse(await readFile(join(out, 'tracing-comparison.json'), 'utf8')) as TracingComparison;
  const run = table.runs[0];
  if (run === undefined) throw new Error(`${v.protocol}: the child wrote no run`);
  return run;
}

/** The variants' summaries in variant order, at most `jobs` children at a time. */
export async function runVariantsInChildren(variants: readonly Variant[], flags: ChildFlags, jobs: number, onDone: (v: Variant, done: number) => void, signal?: AbortSignal): Promise<TracingRunSummary[]> {
  const dir = await mkdtemp(join(tmpdir(), 'tracecity-runs-'));
  try {
    const results: TracingRunSummary[] = new Array<TracingRunSummary>(variants.length);
    let next = 0;
    let done = 0;
    const worker = async (): Promise<void> => {
      while (next < variants.length) {
        const i = next++;
        const v = variants[i] as Variant;
        results[i] = await runChild(v, flags, dir, i, signal);
        onDone(v, ++done);
      }
    };
    await Promise.all(Array.from({ length: Math.min(jobs, variants.length) }, worker));
    return results;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
