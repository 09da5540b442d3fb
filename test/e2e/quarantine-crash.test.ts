/**
 * Issue 3 acceptance: "kill -9 of the app backend at random moments during a
 * run (≥ 10 times), restart: no acknowledged token lost, no duplicate alert,
 * monitoring resumes."
 *
 * Processes (all `node bin/tracecity.js`): one embedded broker; the app
 * backend alone, journaled in SQLite (`--store sqlite:<tmp>/ab.db`); the
 * police backend + health authority (which quarantines households 0–3 at
 * start; officers register the 4 beacons); beacons 0–3 + phones 0–2. Household
 * 3 has no phone running: its beacon is never confirmed, so it raises one
 * alert per window — alerts keep being raised across the crashes.
 *
 * The app backend is SIGKILLed KILLS times at delays drawn from a seeded PRNG
 * (some while it starts up and replays its journal, most while it serves
 * traffic) and restarted on the same store each time; then it runs cleanly
 * for CLEAN_MS and everything is stopped with SIGTERM (each host prints its
 * JSON report).
 */
import { exited, killLeftovers, tracecity, type Proc } from '../support/processes.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { AlertReport, AppBackendReport, PhoneReport, PoliceReport } from '../../services/city/quarantine/hosting-report.ts';
import { prng } from '../support/test-rng.ts';


/** Kills after the backend reported ready, and kills at a random moment after spawn (startup, replay). */
const KILLS_SERVING = 10;
const KILLS_STARTING = 2;
const CLEAN_MS = 18_000;
const PRNG_SEED = 20_260_301;

/** Simulated seconds; speed 10 ⇒ window + tolerance = 7 wall s, a token every 2 wall s. */
const WINDOW_MS = 60_000;
const COMMON = [
  '--scenario', 'quarantine', '--seed', '5', '--households', '4', '--speed', '10',
  '--window', String(WINDOW_MS / 1000), '--tolerance', '10', '--forward-period', '5', '--beacon-period', '20',
  '--scan-window', '11', '--scan-period', '12', '--advertising-interval', '1000', '--ack-timeout', '5', '--retry', '5', '--register-delay', '3',
];
const COMPLIANT = ['qb0', 'qb1', 'qb2'];
const SILENT = 'qb3';




async function waitFor(p: Proc, pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const m = pattern.exec(p.stderr()) ?? pattern.exec(p.stdout());
    if (m !== null) return m;
    if (p.child.exitCode !== null || Date.now() > until) throw new Error(`no ${String(pattern)} (exit ${String(p.child.exitCode)}): ${p.stderr()}`);
    await sleep(20);
  }
}

async function stop(p: Proc): Promise<HostReport> {
  p.child.kill('SIGTERM');
  expect(await exited(p, 20_000), p.stderr()).toBe(0);
  const line = p.stdout().trim().split('\n').pop() ?? '';
  return JSON.parse(line) as HostReport;
}

interface HostReport {
  host: string;
  actors: Record<string, unknown>;
}

afterEach(killLeftovers);

/** Alerts of one beacon must cover disjoint windows. */
function overlapping(alerts: readonly AlertReport[]): AlertReport[] {
  const bad: AlertReport[] = [];
  const byBeacon = new Map<string, AlertReport[]>();
  for (const a of alerts) byBeacon.set(a.beaconId, [...(byBeacon.get(a.beaconId) ?? []), a]);
  for (const list of byBeacon.values()) {
    const sorted = [...list].sort((x, y) => x.windowStart - y.windowStart);
    for (let i = 1; i < sorted.length; i++) if (sorted[i]!.windowStart < sorted[i - 1]!.windowEnd) bad.push(sorted[i]!);
  }
  return bad;
}

describe('quarantine: kill -9 of the app backend, restart on the same store', () => {
  it(`${KILLS_SERVING + KILLS_STARTING} SIGKILLs at random moments: no acked token lost, no duplicate alert, monitoring resumes`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tracecity-crash-'));
    const broker = tracecity(['broker', '--port', '0', '--log-level', 'warn']);
    try {
      const url = (await waitFor(broker, /listening (\S+)/, 15_000))[1]!;
      const abArgs = ['host', '--broker', url, '--actors', 'app-backend', '--name', 'ab', '--store', `sqlite:${join(dir, 'ab.db')}`, ...COMMON];
      let ab = tracecity([...abArgs, '--new-epoch']);
      await waitFor(ab, /ready at/, 20_000);
      const backends = tracecity(['host', '--broker', url, '--actors', 'police-backend,health-authority', '--name', 'backends', '--quarantine-at-start', ...COMMON]);
      const homes = tracecity(['host', '--broker', url, '--actors', `beacon:0-3,phone:0-2`, '--name', 'homes', ...COMMON]);
      await waitFor(backends, /ready at/, 20_000);
      await waitFor(homes, /ready at/, 20_000);
      await sleep(4000); // registrations, monitoring.enable, first batches

      const random = prng(PRNG_SEED);
      const plan = Array.from({ length: KILLS_SERVING + KILLS_STARTING }, (_, i) => i % 6 === 5);
      let kills = 0;
      for (const starting of plan) {
        if (starting) await sleep(100 + random() * 900); // from spawn: during startup or replay
        else {
          await waitFor(ab, /ready at/, 20_000);
          await sleep(100 + random() * 2400);
        }
        ab.child.kill('SIGKILL');
        expect(await exited(ab, 10_000)).toBe('SIGKILL');
        kills++;
        ab = tracecity(abArgs);
      }
      const lastReady = Number((await waitFor(ab, /ready at (\d+)/, 20_000))[1]);
      await sleep(CLEAN_MS);

      const homesReport = await stop(homes);
      const abReport = await stop(ab);
      const backendsReport = await stop(backends);
      broker.child.kill('SIGTERM');
      expect(await exited(broker, 10_000)).toBe(0);

      // CRASH_DEBUG=1: the three hosts' full reports on stderr.
      if (process.env['CRASH_DEBUG'] !== undefined) process.stderr.write(`${JSON.stringify({ abReport, backendsReport, homesReport })}\n`);
      const app = abReport.actors['app-backend/ab'] as AppBackendReport;
      const police = backendsReport.actors['police-backend/police'] as PoliceReport;
      const phones = [0, 1, 2].map((i) => homesReport.actors[`phone/qp${i}`] as PhoneReport);

      // (a) No acknowledged token lost: every batch a phone saw acknowledged is applied in the
      // state the backend recovered (and kept) after the last kill.
      for (const [i, phone] of phones.entries()) {
        const record = app.records[`qb${i}`];
        expect(record, `record of qb${i}`).toBeDefined();
        expect(phone.batchesAcked).toBeGreaterThan(5);
        expect(phone.batchesAcked).toBeLessThanOrEqual(64); // the backend remembers the newest 64 batches per record
        const applied = new Set(record!.batches);
        expect(phone.ackedBatches.filter((b) => !applied.has(b)), `qp${i} acked but not applied`).toEqual([]);
        expect(record!.tuples).toBeGreaterThanOrEqual(phone.tuplesAcked);
      }
      expect(app.batchesApplied).toBeGreaterThanOrEqual(phones.reduce((n, p) => n + p.batchesAcked, 0));
      expect(app.atStart.batchesApplied).toBeGreaterThan(0); // the last process did recover state

      // (b) No duplicate alert: each alertId stored once, one alert per beacon window.
      const ids = police.alerts.map((a) => a.alertId);
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids.length).toBe(police.alertsReceived);
      expect(overlapping(police.alerts)).toEqual([]);
      expect(police.alerts.filter((a) => a.beaconId === SILENT).length).toBeGreaterThanOrEqual(3);
      expect(app.alertsRaised).toBeGreaterThanOrEqual(police.alertsReceived);

      // (c) Monitoring resumes: valid tokens keep arriving after the last restart, compliant
      // households open no silent window after it, the silent one keeps being alerted.
      expect(app.tokensValid).toBeGreaterThan(app.atStart.tokensValid);
      for (const beacon of COMPLIANT) {
        expect(app.records[beacon]!.monitoring).toBe(true);
        expect(app.records[beacon]!.lastValidTokenAt ?? 0).toBeGreaterThan(lastReady);
      }
      const compliantAlerts = police.alerts.filter((a) => COMPLIANT.includes(a.beaconId));
      expect(compliantAlerts.filter((a) => a.windowStart >= lastReady)).toEqual([]);
      expect(police.alerts.some((a) => a.beaconId === SILENT && a.windowStart >= lastReady)).toBe(true);

      const measured = {
        kills,
        restarts: kills,
        acked: phones.map((p) => p.batchesAcked),
        applied: [0, 1, 2].map((i) => app.records[`qb${i}`]!.batches.length),
        tuplesAcked: phones.reduce((n, p) => n + p.tuplesAcked, 0),
        batchesResent: phones.reduce((n, p) => n + p.batchesResent, 0),
        app: { tokensValid: app.tokensValid, atStart: app.atStart.tokensValid, batchesApplied: app.batchesApplied, batchesReacked: app.batchesReacked, alertsRaised: app.alertsRaised },
        police: { alertsReceived: police.alertsReceived, alertsDuplicate: police.alertsDuplicate, compliantAlerts: compliantAlerts.length },
      };
      process.stderr.write(`quarantine-crash: ${JSON.stringify(measured)}\n`);
      expect(kills).toBeGreaterThanOrEqual(10);
    } finally {
      killLeftovers();
      await rm(dir, { recursive: true, force: true });
    }
  }, 150_000);
});
