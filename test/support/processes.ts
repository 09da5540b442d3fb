/**
 * `node bin/tracecity.js …` as child processes for end-to-end tests: output
 * captured, every child remembered so a test's afterEach can kill leftovers.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { promisify } from 'node:util';

export const TRACECITY_BIN = join(process.cwd(), 'bin', 'tracecity.js');

export interface Proc {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
}

const children: ChildProcess[] = [];

export function tracecity(args: readonly string[]): Proc {
  const child = spawn(process.execPath, [TRACECITY_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  return { child, stdout: () => out, stderr: () => err };
}

/** Exit code, or the signal name when killed; SIGKILLs the child after `timeoutMs`. */
export async function exited(p: Proc, timeoutMs: number): Promise<number | string> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return p.child.exitCode ?? p.child.signalCode ?? -1;
  const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
  const [code, signal] = (await once(p.child, 'exit')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  return code ?? signal ?? -1;
}

/** SIGKILL every child still running (call from afterEach). */
export function killLeftovers(): void {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

const execFileAsync = promisify(execFile);

/** Run `tracecity <args>` to completion: exit code (-1 when killed by the timeout) and output. */
export async function runTracecity(args: readonly string[], timeoutMs = 120_000): Promise<CliResult> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [TRACECITY_BIN, ...args], { timeout: timeoutMs });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}
