/**
 * `tracecity quarantine --attacks …` as a user runs it (`node bin/tracecity.js`
 * in a child process; issue 3 "Adversaries"): the flag switches the
 * adversaries on, summary.json gains an `adversaries` section and the report
 * an "Adversaries" part; a bad list exits 2 naming the flag; without the flag
 * the summary has no `adversaries` key.
 */
import { access, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exited, killLeftovers, runTracecity, tracecity as spawnTracecity } from '../support/processes.ts';

const tracecity = (args: readonly string[]) => runTracecity(args);



const exists = (path: string): Promise<boolean> => access(path).then(() => true, () => false);

interface ViolationScore {
  violations: number;
  detectable: number;
  detected: number;
  missed: number;
}
interface Summary {
  appBackend: { tokensInvalid?: Record<string, number>; replays?: number };
  adversaries?: {
    config: Record<string, unknown>;
    score: { violations: Record<string, ViolationScore>; floods: { episodes: number; floodedMinutes: number } };
    devices: Record<string, Record<string, number>>;
    floodedPhones: { maxSources: number };
  };
}

/**
 * A small city that still holds every attack: 12 households, all violators,
 * one day (violations start after the first hour). Seed 4 is one whose plan
 * uses all four absence attacks and at least one flood (checked below, so a
 * plan change that loses one fails loudly rather than silently testing less).
 */
const CITY = ['quarantine', '--households', '12', '--days', '1', '--violators', '1', '--memory-bus', '--quiet', '--seed', '4'];
const ALL = 'replay,forge,flood,relay,phone-at-home';

describe('tracecity quarantine --attacks', () => {
  it(`--attacks ${ALL}: exits 0; summary.json has the adversaries' config, scores and busy devices; the report covers every attack`, async () => {
    const out = await mkdtemp(join(tmpdir(), 'tc-q-attacks-'));
    const r = await tracecity([...CITY, '--attacks', ALL, '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8')) as Summary;
    const a = summary.adversaries;
    if (a === undefined) throw new Error('summary.json has no adversaries section');

    // The flag's config: absence attacks share all violations evenly, floods hit a quarter of homes.
    expect(a.config).toMatchObject({ replay: 0.25, forge: 0.25, relay: 0.25, 'phone-at-home': 0.25, flood: 0.25 });

    // The plan used every attack…
    for (const kind of ['replay', 'forge', 'relay', 'phone-at-home']) expect(a.score.violations[kind]?.violations, kind).toBeGreaterThan(0);
    expect(a.score.floods.episodes).toBeGreaterThan(0);
    expect(a.score.floods.floodedMinutes).toBeGreaterThan(0);
    // …and each device kind did its job (phone-at-home needs no device).
    expect(Object.keys(a.devices).sort()).toEqual(['flood', 'forge', 'relay-advertise', 'relay-capture', 'replay']);
    const d = (kind: string, counter: string): number => a.devices[kind]?.[counter] ?? 0;
    for (const kind of Object.keys(a.devices)) expect(d(kind, 'devices'), kind).toBeGreaterThan(0);
    expect(d('replay', 'tokensCaptured')).toBeGreaterThan(0);
    expect(d('replay', 'tokensAdvertised')).toBeGreaterThan(0);
    expect(d('forge', 'tokensForged')).toBeGreaterThan(0);
    expect(d('forge', 'tokensAdvertised')).toBe(d('forge', 'tokensForged'));
    expect(d('relay-capture', 'tokensCaptured')).toBeGreaterThan(0);
    expect(d('relay-capture', 'tokensRelayed')).toBe(d('relay-capture', 'tokensCaptured'));
    expect(d('relay-advertise', 'tokensAdvertised')).toBeGreaterThan(0);
    expect(d('relay-advertise', 'tokensAdvertised')).toBeLessThanOrEqual(d('relay-capture', 'tokensRelayed'));
    expect(d('flood', 'floodSets')).toBeGreaterThan(0);
    expect(d('flood', 'floodPayloads')).toBeGreaterThan(d('flood', 'floodSets'));
    expect(a.floodedPhones.maxSources).toBeGreaterThan(0);

    // The app backend rejected the replayed and forged tokens, and the violations were still caught;
    // relay and phone-at-home go undetected by the seed design.
    const invalid = summary.appBackend.tokensInvalid ?? {};
    expect(invalid['bad-hmac'] ?? 0).toBeGreaterThan(0);
    expect((invalid['expired'] ?? 0) + (summary.appBackend.replays ?? 0)).toBeGreaterThan(0);
    for (const kind of ['replay', 'forge']) expect(a.score.violations[kind]?.detected, kind).toBe(a.score.violations[kind]?.detectable);
    for (const kind of ['relay', 'phone-at-home']) expect(a.score.violations[kind]?.detected, kind).toBe(0);

    // The readable report (stdout and report.md) covers the attacks.
    const report = await readFile(join(out, 'report.md'), 'utf8');
    expect(r.stdout).toContain(report.trimEnd());
    expect(report).toMatch(/^## Adversaries$/m);
    for (const kind of ['replay', 'forge', 'relay', 'phone-at-home']) {
      const v = a.score.violations[kind];
      expect(report).toContain(`| ${kind} | ${v?.violations} | ${v?.detectable} | ${v?.detected} | ${v?.missed} |`);
    }
    expect(report).toContain(`- Floods: ${a.score.floods.episodes} episodes`);
    expect(report).toMatch(/- Devices: flood: devices \d+, floodSets \d+/);
    expect(report).toMatch(/indistinguishable from presence \(measured: \d+ of \d+ detectable violations with relay went undetected\)/);
    expect(report).toMatch(/only that the phone is at home \(measured: \d+ of \d+ detectable violations with phone-at-home went undetected\)/);
  }, 60_000);

  it.each([
    ['an unknown kind', 'replay,teleport'],
    ['a repeated kind', 'forge,flood,forge'],
    ['an empty list', ''],
    ['a trailing comma', 'replay,'],
  ])('--attacks with %s exits 2 naming --attacks, before running anything', async (_, list) => {
    const out = await mkdtemp(join(tmpdir(), 'tc-q-bad-'));
    const r = await tracecity(['quarantine', '--households', '2', '--days', '0.1', '--memory-bus', '--quiet', '--out', out, '--attacks', list]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`--attacks must be a comma-separated list of distinct replay, forge, flood, relay, phone-at-home, got ${JSON.stringify(list)}`);
    expect(await exists(join(out, 'summary.json'))).toBe(false);
  });

  it('without --attacks, summary.json has no adversaries key and the report no Adversaries part', async () => {
    const out = await mkdtemp(join(tmpdir(), 'tc-q-none-'));
    const r = await tracecity(['quarantine', '--households', '4', '--days', '0.1', '--violators', '1', '--memory-bus', '--quiet', '--seed', '3', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8')) as Record<string, unknown>;
    expect(summary).toHaveProperty('appBackend'); // a real summary…
    expect(summary).not.toHaveProperty('adversaries'); // …without the section
    const report = await readFile(join(out, 'report.md'), 'utf8');
    expect(report).not.toContain('## Adversaries');
    expect(report).not.toContain('(measured:');
  });
});

describe('tracecity quarantine: interrupted', () => {
  it('SIGINT stops the run where it is, still writes summary.json and report.md for the time simulated, and exits 130', async () => {
    const out = await mkdtemp(join(tmpdir(), 'tc-quarantine-intr-'));
    const p = spawnTracecity(['quarantine', '--households', '20', '--days', '5', '--memory-bus', '--seed', '2', '--out', out]);
    try {
      // Non-TTY progress: a line every 10 % of the run (a few seconds in).
      for (let waited = 0; !/progress 10%/.test(p.stderr()); waited += 100) {
        expect(waited, p.stderr()).toBeLessThan(90_000);
        await new Promise((r) => setTimeout(r, 100));
      }
      p.child.kill('SIGINT');
      expect(await exited(p, 30_000)).toBe(130);
    } finally {
      killLeftovers();
    }
    const summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8')) as { simulated: { days: number }; interrupted?: { simulatedDays: number } };
    expect(summary.simulated.days).toBe(5);
    expect(summary.interrupted?.simulatedDays).toBeGreaterThanOrEqual(0.5);
    expect(summary.interrupted?.simulatedDays).toBeLessThan(5);
    expect(await readFile(join(out, 'report.md'), 'utf8')).toMatch(/\*\*Interrupted\*\* after [\d.]+ of 5 simulated days/);
  }, 120_000);
});

describe('tracecity quarantine (npm start): determinism', () => {
  it('the same --seed writes a byte-identical summary.json on the embedded broker; another seed differs', async () => {
    const dirs = await Promise.all([0, 1, 2].map((i) => mkdtemp(join(tmpdir(), `tc-quarantine-seed-${i}-`))));
    const args = (seed: number, out: string) => ['quarantine', '--households', '8', '--days', '0.3', '--violators', '0.5', '--seed', String(seed), '--quiet', '--out', out];
    const results = [await tracecity(args(3, dirs[0]!)), await tracecity(args(3, dirs[1]!)), await tracecity(args(4, dirs[2]!))];
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const [a, b, c] = await Promise.all(dirs.map((d) => readFile(join(d, 'summary.json'), 'utf8')));
    expect(a).toBe(b);
    expect(a).not.toBe(c);
    const summary = JSON.parse(a!) as { households: { total: number }; phones: { tuplesAcked: number } };
    expect(summary.households.total).toBe(8);
    expect(summary.phones.tuplesAcked).toBeGreaterThan(0);
  }, 120_000);
});
