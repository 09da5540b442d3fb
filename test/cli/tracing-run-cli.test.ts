/**
 * `tracecity run --protocol …` (issue 5): the comparison table written to
 * the output directory and stdout, and flag mistakes refused with a message
 * naming the flag.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runTracecity } from '../support/processes.ts';

describe('tracecity run --protocol', () => {
  it('writes tracing-comparison.md and .json with one row per protocol run', async () => {
    const out = await mkdtemp(join(tmpdir(), 'tc-tracing-cli-'));
    try {
      const r = await runTracecity(['run', '--protocol', 'gaen', '--phones', '30', '--days', '3', '--seed', '3', '--out', out, '--quiet'], 180_000);
      expect(r.code, r.stderr).toBe(0);
      const md = await readFile(join(out, 'tracing-comparison.md'), 'utf8');
      expect(r.stdout).toContain(md.trim());
      expect(md).toMatch(/^# Contact-tracing comparison — seed 3, 30 phones, 3 days/);
      expect(md).toMatch(/\n\| gaen \| (\d\.\d{3}|n\/a) \| (\d\.\d{3}|n\/a) \|/);
      const json = JSON.parse(await readFile(join(out, 'tracing-comparison.json'), 'utf8')) as { phones: number; runs: { protocol: string; score: { recall: number | null } }[] };
      expect(json.phones).toBe(30);
      expect(json.runs.map((run) => run.protocol)).toEqual(['gaen']);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  }, 200_000);

  it('--jobs 2 runs the variants in child processes: rows in variant order, same scores as one process', async () => {
    const dirs = [await mkdtemp(join(tmpdir(), 'tc-tracing-j1-')), await mkdtemp(join(tmpdir(), 'tc-tracing-j2-'))];
    try {
      const args = (jobs: string, out: string): string[] => ['run', '--protocol', 'tcn', '--tcn-mode', 'all', '--phones', '20', '--days', '3', '--seed', '5', '--jobs', jobs, '--out', out, '--quiet'];
      const [one, two] = [await runTracecity(args('1', dirs[0] ?? ''), 180_000), await runTracecity(args('2', dirs[1] ?? ''), 180_000)];
      expect(one.code, one.stderr).toBe(0);
      expect(two.code, two.stderr).toBe(0);
      const scores = async (dir: string): Promise<unknown[]> => {
        const json = JSON.parse(await readFile(join(dir, 'tracing-comparison.json'), 'utf8')) as { runs: { label: string; score: unknown; bytesUpPerPhoneDay: number; bytesDownPerPhoneDay: number }[] };
        return json.runs.map((r) => [r.label, r.score, r.bytesUpPerPhoneDay, r.bytesDownPerPhoneDay]);
      };
      const a = await scores(dirs[0] ?? '');
      expect(a.map((r) => (r as string[])[0])).toEqual(['tcn (mode A)', 'tcn (mode B)', 'tcn (mode C)']);
      expect(await scores(dirs[1] ?? '')).toEqual(a);
    } finally {
      for (const d of dirs) await rm(d, { recursive: true, force: true });
    }
  }, 400_000);

  it('refuses tracing flags without --protocol, demo flags with it, and unknown protocols — naming the flag', async () => {
    const cases: [string[], RegExp][] = [
      [['run', '--phones', '10'], /--phones needs --protocol/],
      [['run', '--protocol', 'gaen', '--memory-bus'], /--memory-bus is a demo option/],
      [['run', '--protocol', 'bluetooth'], /--protocol must be one of gaen, dp3t, tcn, dimy, all/],
      [['run', '--protocol', 'gaen', '--radio-loss', '2'], /--radio-loss must be a number in \[0, 1\]/],
      [['run', '--protocol', 'gaen', '--phones', '1'], /phones/],
    ];
    for (const [args, message] of cases) {
      const r = await runTracecity(args, 60_000);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr, args.join(' ')).toMatch(message);
    }
  }, 200_000);
});
