/**
 * TCN (SPECS §3; protocol/tcn/report.ts, matching.ts, contact-log.ts) at issue 5's sizes.
 *
 * - Signed-report verification/s (parse + Ed25519 verify) under both suites, over 256 distinct
 *   reports with 16-byte memos.
 * - Mode C, local matching: 10,000 reports of 144 TCNs each (one day at 10-minute rotation) against
 *   a 14-day store: 14 days × 360 distinct TCNs heard a day × 4 sightings = 20,160 observations.
 *   20 planted positives (reports one of whose TCNs the phone heard); every run must find exactly
 *   them. Reports are verified beforehand (not timed); each costs 2 SHA-256 per TCN. The "crypto
 *   floor" row runs only those SHA-256 calls.
 * - Mode A, server side: one report of 144 TCNs against an index of 500 uploaders × 1,000 contacts.
 * - Contact-log decoding (mode A/B uploads): MB/s for a 10,000-entry log.
 */
import { SeededRng } from '../protocol/crypto/drbg.ts';
import { nobleSuite } from '../protocol/crypto/noble.ts';
import type { CryptoSuite } from '../protocol/crypto/suite.ts';
import { decodeTcnContactLog, encodeTcnContactLog, type TcnContact } from '../protocol/tcn/contact-log.ts';
import { addTcnObservations, EMPTY_TCN_OBSERVATION_STORE, matchReportAgainstUploads, matchTcnReports, TCN_MS_PER_DAY, TcnObservationIndex, TcnUploadIndex, type TcnObservation } from '../protocol/tcn/matching.ts';
import { createTcnReport, TCN_MEMO_TYPES, tcnsFromReport, verifyTcnReport, type TcnReport } from '../protocol/tcn/report.ts';
import { nodeSuite } from '../services/crypto/node.ts';
import { opsPerSecond, type BenchModule, type BenchRow } from './report.ts';

const GROUP = 'tcn';
const DAYS = 14;
const TCNS_HEARD_PER_DAY = 360;
const SIGHTINGS_PER_TCN = 4;
const TCNS_PER_REPORT = 144;
const REPORTS = 10_000;
const NOBLE_REPORTS = 500;
const PLANTED = 20;
const SIGNED_REPORTS = 256;
const UPLOADERS = 500;
const CONTACTS_PER_UPLOADER = 1_000;
const LOG_ENTRIES = 10_000;
const T0 = 18_377 * TCN_MS_PER_DAY;

const round = (x: number, digits = 0): number => Math.round(x * 10 ** digits) / 10 ** digits;
const note = (msg: string): void => void process.stderr.write(`  tcn: ${msg}\n`);

function timed(fn: () => void): { readonly wallS: number; readonly cpuS: number } {
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  fn();
  const wallS = Number(process.hrtime.bigint() - start) / 1e9;
  const used = process.cpuUsage(cpu);
  return { wallS, cpuS: (used.user + used.system) / 1e6 };
}

/** `count` reports with random rvk/tck (matching never checks the rvk), j1 spread over 1..2000. */
function reports(rng: SeededRng, count: number): TcnReport[] {
  const out: TcnReport[] = [];
  for (let i = 0; i < count; i++) {
    const j1 = 1 + (i % 2000);
    out.push({ rvk: rng.bytes(32), tckBytes: rng.bytes(32), j1, j2: j1 + TCNS_PER_REPORT - 1, memo: { type: TCN_MEMO_TYPES.coEpiV1, data: new Uint8Array(0) } });
  }
  return out;
}

function verifyRows(): BenchRow[] {
  const rng = new SeededRng(new TextEncoder().encode('tracecity bench tcn verify'));
  const signed: Uint8Array[] = [];
  for (let i = 0; i < SIGNED_REPORTS; i++) signed.push(createTcnReport(nodeSuite, rng.bytes(32), 1 + i, 144 + i, { type: TCN_MEMO_TYPES.coEpiV1, data: rng.bytes(16) }));
  const values: Record<string, number> = {};
  for (const suite of [nodeSuite, nobleSuite]) {
    let i = 0;
    values[suite.name] = round(
      opsPerSecond(() => {
        if (!verifyTcnReport(suite, signed[i++ % SIGNED_REPORTS] as Uint8Array).ok) throw new Error('bench/tcn: report rejected');
      }),
    );
  }
  const node = values.node ?? 0;
  const noble = values.noble ?? 1;
  return [{ group: GROUP, name: 'signed report verify (parse + Ed25519)', values, unit: 'reports/s', ratio: { label: 'node ÷ noble', value: round(node / noble, 1) } }];
}

function localRows(): BenchRow[] {
  const rng = new SeededRng(new TextEncoder().encode('tracecity bench tcn store v1'));
  const obs: TcnObservation[] = [];
  for (let d = 0; d < DAYS; d++) {
    for (let e = 0; e < TCNS_HEARD_PER_DAY; e++) {
      const tcn = rng.bytes(16);
      const t = T0 + d * TCN_MS_PER_DAY + rng.int(TCN_MS_PER_DAY - SIGHTINGS_PER_TCN * 60_000);
      for (let s = 0; s < SIGHTINGS_PER_TCN; s++) obs.push({ tcn, receivedAtMs: t + s * 60_000, rssiDbm: -60 - rng.int(40) });
    }
  }
  const all = reports(rng, REPORTS);
  for (let p = 0; p < PLANTED; p++) {
    const report = all[Math.floor(((p + 0.5) * REPORTS) / PLANTED)] as TcnReport;
    const tcns = tcnsFromReport(nodeSuite, report);
    obs.push({ tcn: tcns[rng.int(tcns.length)] as Uint8Array, receivedAtMs: T0 + rng.int(DAYS * TCN_MS_PER_DAY), rssiDbm: -55 });
  }
  const store = addTcnObservations(EMPTY_TCN_OBSERVATION_STORE, obs);
  let index: TcnObservationIndex | undefined;
  const indexT = timed(() => {
    index = new TcnObservationIndex(store, rng.int(0x1_0000_0000));
  });
  if (index === undefined) throw new Error('unreachable');
  const rows: BenchRow[] = [{ group: GROUP, name: `mode C index: ${obs.length.toLocaleString('en-US')} observations`, values: { ms: round(indexT.wallS * 1000, 1) }, unit: 'ms' }];

  const floorIn = new Uint8Array(69);
  const floor = timed(() => {
    for (let i = 0; i < 2 * TCNS_PER_REPORT * 1000; i++) nodeSuite.sha256(floorIn);
  });
  rows.push({ group: GROUP, name: `crypto floor: 2 × 144 SHA-256 per report, node`, values: { reportsCpu: round(1000 / floor.cpuS) }, unit: 'reports/s' });

  const run = (suite: CryptoSuite, batch: readonly TcnReport[], expectFound: number): void => {
    let found = 0;
    let derived = 0;
    const t = timed(() => {
      const r = matchTcnReports(suite, batch, index as TcnObservationIndex);
      found = r.stats.matchedReports;
      derived = r.stats.tcnsDerived;
    });
    if (found !== expectFound) throw new Error(`bench/tcn: found ${found} matching reports, planted ${expectFound}`);
    rows.push({
      group: GROUP,
      name: `mode C: ${batch.length.toLocaleString('en-US')} reports × ${TCNS_PER_REPORT} TCNs vs ${(obs.length / 1000).toFixed(1)}k obs, ${suite.name}`,
      values: { reportsWall: round(batch.length / t.wallS), reportsCpu: round(batch.length / t.cpuS), tcnsCpu: round(derived / t.cpuS), ms: round(t.wallS * 1000, 1) },
      unit: 'reports/s, TCNs/s',
    });
  };
  note(`mode C, ${REPORTS} reports, node`);
  run(nodeSuite, all, PLANTED);
  note(`mode C, ${NOBLE_REPORTS} reports, noble`);
  run(nobleSuite, all.slice(0, NOBLE_REPORTS), Math.round((PLANTED * NOBLE_REPORTS) / REPORTS));
  return rows;
}

function serverRows(): BenchRow[] {
  const rng = new SeededRng(new TextEncoder().encode('tracecity bench tcn uploads'));
  const [report] = reports(rng, 1) as [TcnReport];
  const reported = tcnsFromReport(nodeSuite, report);
  const index = new TcnUploadIndex(rng.int(0x1_0000_0000));
  const build = timed(() => {
    for (let u = 0; u < UPLOADERS; u++) {
      const bytes = rng.bytes(16 * CONTACTS_PER_UPLOADER);
      const contacts: TcnContact[] = [];
      for (let c = 0; c < CONTACTS_PER_UPLOADER; c++) contacts.push({ tcn: bytes.subarray(16 * c, 16 * c + 16), atMinute: 26_462_880 + c, rssiDbm: -70 });
      if (u % 50 === 0) contacts.push({ tcn: reported[u % reported.length] as Uint8Array, atMinute: 26_462_880, rssiDbm: -60 });
      index.add(`phone-${u}`, contacts);
    }
  });
  let found = 0;
  const perReport = opsPerSecond(() => {
    found = matchReportAgainstUploads(nodeSuite, report, index).uploaders.length;
  }, 200);
  if (found !== UPLOADERS / 50) throw new Error(`bench/tcn: mode A found ${found} uploaders, planted ${UPLOADERS / 50}`);
  const logBytes = rng.bytes(16 * LOG_ENTRIES);
  const log = encodeTcnContactLog(Array.from({ length: LOG_ENTRIES }, (_, c) => ({ tcn: logBytes.subarray(16 * c, 16 * c + 16), atMinute: 26_462_880 + c, rssiDbm: -70 })));
  const decodeOps = opsPerSecond(() => {
    if (!decodeTcnContactLog(log).ok) throw new Error('bench/tcn: log rejected');
  }, 200);
  return [
    { group: GROUP, name: `mode A: index ${(index.size / 1e6).toFixed(2)}M uploaded contacts (${UPLOADERS} uploaders)`, values: { ms: round(build.wallS * 1000, 1) }, unit: 'ms' },
    { group: GROUP, name: `mode A: 1 report × ${TCNS_PER_REPORT} TCNs vs ${(index.size / 1e6).toFixed(2)}M contacts, node`, values: { reports: round(perReport) }, unit: 'reports/s' },
    { group: GROUP, name: `contact log decode, ${(log.length / 1e6).toFixed(2)} MB`, values: { mbPerS: round((decodeOps * log.length) / 1e6, 1) }, unit: 'MB/s' },
  ];
}

export const tcnBench: BenchModule = () => {
  note('report verification');
  const rows = verifyRows();
  rows.push(...localRows());
  note('mode A');
  rows.push(...serverRows());
  return Promise.resolve(rows);
};
