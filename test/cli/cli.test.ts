/**
 * The CLI as a user runs it: `node bin/tracecity.js …` in a child process.
 * Acceptance (issue 2): two `run --seed 7` write byte-identical summary.json,
 * another seed changes it; every command has --help; bad flags fail clearly.
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runTracecity } from '../support/processes.ts';

const tracecity = (args: readonly string[]) => runTracecity(args);



describe('tracecity CLI', () => {
  it('run --seed 7 twice writes byte-identical summary.json; --seed 8 differs (embedded aedes)', async () => {
    const dirs = await Promise.all([0, 1, 2].map(() => mkdtemp(join(tmpdir(), 'tc-run-'))));
    const [a, b, c] = dirs as [string, string, string];
    const results = [
      await tracecity(['run', '--seed', '7', '--out', a, '--quiet']),
      await tracecity(['run', '--seed', '7', '--out', b, '--quiet']),
      await tracecity(['run', '--seed', '8', '--out', c, '--quiet']),
    ];
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    expect(results[0]!.stdout).toMatch(/frames sent\s+\d+ beacon frames/);
    expect(results[0]!.stdout).toMatch(/frames received\s+\d+ fragments/);
    expect(results[0]!.stdout).toMatch(/frames reassembled\s+[1-9]\d*/);
    const [sa, sb, sc] = await Promise.all([a, b, c].map((d) => readFile(join(d, 'summary.json'))));
    expect(sa!.equals(sb!)).toBe(true);
    expect(sa!.equals(sc!)).toBe(false);
    const summary = JSON.parse(sa!.toString()) as { seed: number; phones: { framesReassembled: number } };
    expect(summary.seed).toBe(7);
    expect(summary.phones.framesReassembled).toBeGreaterThan(0);
  }, 180_000);

  it.each([[[]], [['run']], [['broker']], [['host']]])('%j --help documents the command', async (cmd) => {
    const r = await tracecity([...cmd, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: tracecity/m);
    expect(r.stdout).toMatch(/--help/);
  });

  it('a malformed flag exits 2 naming the flag', async () => {
    const r = await tracecity(['run', '--seed', 'seven', '--quiet']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--seed must be an integer/);
  });

  it('host without --broker / with a bad --actors spec exits 2 with a clear message', async () => {
    const missing = await tracecity(['host', '--actors', 'collector']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--broker/);
    const bad = await tracecity(['host', '--broker', 'mqtt://127.0.0.1:1', '--actors', 'toaster:3']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--actors: "toaster:3"/);
  });

  it('host rejects actors of the other scenario and households outside the layout (exit 2)', async () => {
    const demo = await tracecity(['host', '--broker', 'mqtt://127.0.0.1:1', '--actors', 'app-backend']);
    expect(demo.code).toBe(2);
    expect(demo.stderr).toMatch(/app-backend is not an actor of the demo scenario/);
    const quarantine = await tracecity(['host', '--broker', 'mqtt://127.0.0.1:1', '--scenario', 'quarantine', '--actors', 'collector']);
    expect(quarantine.code).toBe(2);
    expect(quarantine.stderr).toMatch(/collector is not an actor of the quarantine scenario/);
    const outside = await tracecity(['host', '--broker', 'mqtt://127.0.0.1:1', '--scenario', 'quarantine', '--households', '2', '--actors', 'phone:0-2']);
    expect(outside.code).toBe(2);
    expect(outside.stderr).toMatch(/household 2 is outside --households 2/);
  });

  it('configuration errors are reported all at once', async () => {
    const r = await tracecity(['run', '--households', '0', '--duration', '99999999', '--quiet']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/invalid configuration/);
    expect(r.stderr).toMatch(/households: /);
    expect(r.stderr).toMatch(/durationS: /);
  });
});
