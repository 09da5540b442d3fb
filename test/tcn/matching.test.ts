/**
 * TCN matching in the three operating modes (protocol/tcn/matching.ts; SPECS §3) under both crypto
 * suites: regeneration equals tcnsFromReport and starts at j1 (a report never reveals an earlier
 * TCN — the official report with j1 = 2 does not match tcn_1), hostile j2 is truncated and counted,
 * mode C local matching with exposure estimates, mode A server-side matching over uploaded logs,
 * mode B matching of published logs against the phone's own sent TCNs, retention, and misuse.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nobleSuite } from '../../protocol/crypto/noble.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import { decodeTcnContactLog, encodeTcnContactLog, tcnContactMinute, type TcnContact } from '../../protocol/tcn/contact-log.ts';
import { tckAt, tcnOf } from '../../protocol/tcn/keys.ts';
import {
  addTcnObservations,
  EMPTY_SENT_TCN_SET,
  EMPTY_TCN_OBSERVATION_STORE,
  forEachReportTcn,
  matchPublishedContactLogs,
  matchReportAgainstUploads,
  matchTcnReports,
  pruneSentTcns,
  pruneTcnObservations,
  recordSentTcn,
  TCN_MAX_TCNS_PER_REPORT,
  TCN_MS_PER_DAY,
  tcnContactLogOf,
  TcnObservationIndex,
  TcnUploadIndex,
  type TcnObservation,
  type TcnObservationStore,
} from '../../protocol/tcn/matching.ts';
import { createTcnReport, TCN_MEMO_TYPES, tcnsFromReport, verifyTcnReport, type TcnReport } from '../../protocol/tcn/report.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { misuseField } from '../support/misuse.ts';
import { seededRng } from '../support/test-rng.ts';
import vectors from '../vectors/tcn.json' with { type: 'json' };

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
const SUITES: readonly (readonly [string, CryptoSuite])[] = [
  ['noble', nobleSuite],
  ['node', nodeSuite],
];
const MEMO = { type: TCN_MEMO_TYPES.coEpiV1, data: new Uint8Array(0) };
const MIN = 60_000;
const T0 = 1_587_772_800_000; // 2020-04-25T00:00Z
const DAY0 = T0 / TCN_MS_PER_DAY;

function reportOf(suite: CryptoSuite, rak: Uint8Array, j1: number, j2: number): TcnReport {
  const v = verifyTcnReport(suite, createTcnReport(suite, rak, j1, j2, MEMO));
  if (!v.ok) throw new Error(v.reason);
  return v.value;
}
const tcnAt = (suite: CryptoSuite, rak: Uint8Array, j: number): Uint8Array => tcnOf(suite, tckAt(suite, rak, j));
const seen = (tcn: Uint8Array, receivedAtMs: number, rssiDbm = -60): TcnObservation => ({ tcn, receivedAtMs, rssiDbm });

function noisyStore(planted: readonly TcnObservation[], noise = 200, seed = 1): TcnObservationStore {
  const rng = seededRng(seed);
  const random = Array.from({ length: noise }, () => seen(rng.bytes(16), T0 + rng.int(3 * TCN_MS_PER_DAY), -90));
  return addTcnObservations(EMPTY_TCN_OBSERVATION_STORE, [...random, ...planted]);
}

describe.each(SUITES)('SPECS §3 TCN regeneration under %s', (_name, suite) => {
  it('fast-check: forEachReportTcn visits tcnsFromReport from j1, in order, truncated at max', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.integer({ min: 1, max: 40 }), fc.nat({ max: 30 }), fc.integer({ min: 1, max: 50 }), (rak, j1, span, max) => {
        const report = reportOf(suite, rak, j1, j1 + span);
        const visited: [number, string][] = [];
        const n = forEachReportTcn(suite, report, max, (h, j) => visited.push([j, hex(h.subarray(0, 16))]));
        const expected = tcnsFromReport(suite, report).slice(0, max).map((t, i) => [j1 + i, hex(t)]);
        expect(visited).toEqual(expected);
        expect(n).toBe(Math.min(span + 1, max));
      }),
      { numRuns: 40 },
    );
  });

  it('the official report (j1 = 2) regenerates tcn_2.. and never tcn_1: an observation of tcn_1 does not match', () => {
    const v = verifyTcnReport(suite, unhex(vectors.official.signed_report));
    if (!v.ok) throw new Error(v.reason);
    const official = Object.entries(vectors.official.tcn).map(([i, h]) => [Number(i), unhex(h)] as const);
    const store = noisyStore(official.map(([i, tcn]) => seen(tcn, T0 + i * MIN)));
    const r = matchTcnReports(suite, [v.value], store);
    expect(r.matches.map((m) => [m.j, hex(m.observation.tcn)])).toEqual(official.filter(([i]) => i >= 2).map(([i, t]) => [i, hex(t)]));
    const first: number[] = [];
    forEachReportTcn(suite, v.value, 1, (_h, j) => first.push(j));
    expect(first).toEqual([2]);
  });
});

describe.each(SUITES)('mode C: local matching under %s', (_name, suite) => {
  const rak = new Uint8Array(32).fill(3);
  const other = new Uint8Array(32).fill(4);

  it('matches the heard TCNs in j1..j2, none before j1 nor after j2, with exposure per report', () => {
    const planted = [seen(tcnAt(suite, rak, 3), T0), seen(tcnAt(suite, rak, 5), T0 + 10 * MIN, -50), seen(tcnAt(suite, rak, 5), T0 + 10 * MIN + 5000, -55), seen(tcnAt(suite, rak, 8), T0 + 25 * MIN, -70), seen(tcnAt(suite, rak, 11), T0 + 40 * MIN)];
    const store = noisyStore([...planted, seen(tcnAt(suite, other, 5), T0)]);
    const r = matchTcnReports(suite, [reportOf(suite, other, 6, 9), reportOf(suite, rak, 5, 10)], store);
    expect(r.matches.map((m) => [m.reportIndex, m.j, m.observation.receivedAtMs - T0])).toEqual([
      [1, 5, 10 * MIN],
      [1, 5, 10 * MIN + 5000],
      [1, 8, 25 * MIN],
    ]);
    expect(r.exposures).toEqual([{ reportIndex: 1, observations: 3, tcns: 2, scanPeriods: 2, durationMs: 2 * MIN, firstMs: T0 + 10 * MIN, lastMs: T0 + 25 * MIN, maxRssiDbm: -50 }]);
    expect(r.stats).toEqual({ reports: 2, matchedReports: 1, tcnsDerived: 4 + 6, truncatedReports: 0 });
    expect(matchTcnReports(suite, [reportOf(suite, rak, 5, 10)], new TcnObservationIndex(store, 12345)).matches).toHaveLength(3);
  });

  it('a hostile j2 is truncated at maxTcnsPerReport and counted', () => {
    const store = noisyStore([seen(tcnAt(suite, rak, 4), T0), seen(tcnAt(suite, rak, 6), T0)]);
    const r = matchTcnReports(suite, [reportOf(suite, rak, 3, 65_535)], store, { maxTcnsPerReport: 3 });
    expect(r.stats).toMatchObject({ tcnsDerived: 3, truncatedReports: 1 });
    expect(r.matches.map((m) => m.j)).toEqual([4]);
    expect(TCN_MAX_TCNS_PER_REPORT).toBe(2016);
  });
});

describe.each(SUITES)('mode A: server-side matching under %s', (_name, suite) => {
  const rak = new Uint8Array(32).fill(5);

  it('returns the uploaders whose uploaded contacts hold a reported TCN', () => {
    const minute = tcnContactMinute(T0);
    const c = (j: number, dt = 0): TcnContact => ({ tcn: tcnAt(suite, rak, j), atMinute: minute + dt, rssiDbm: -60 });
    const noise = (n: number): TcnContact[] => Array.from({ length: n }, (_, i) => ({ tcn: seededRng(i).bytes(16), atMinute: minute, rssiDbm: -80 }));
    const index = new TcnUploadIndex(77);
    // Uploads arrive as wire bytes and are decoded first.
    const upload = (id: string, contacts: TcnContact[]): void => {
      const v = decodeTcnContactLog(encodeTcnContactLog(contacts));
      if (!v.ok) throw new Error(v.reason);
      index.add(id, v.value);
    };
    upload('alice', [...noise(20), c(2), c(7, 3)]);
    upload('bob', noise(30));
    upload('carol', [c(1), c(12)]);
    upload('alice', [c(4, 9)]);
    expect(index.size).toBe(20 + 2 + 30 + 2 + 1);
    const r = matchReportAgainstUploads(suite, reportOf(suite, rak, 2, 10), index);
    expect(r.uploaders.map((u) => [u.uploaderId, u.contacts.map((x) => [x.j, x.contact.atMinute - minute])])).toEqual([
      ['alice', [[2, 0], [4, 9], [7, 3]]],
    ]);
    expect([r.tcnsDerived, r.truncated]).toEqual([9, false]);
    expect(matchReportAgainstUploads(suite, reportOf(suite, rak, 1, 20), index, { maxTcnsPerReport: 5 }).uploaders.map((u) => u.uploaderId)).toEqual(['carol', 'alice']);
  });
});

describe.each(SUITES)('mode B: published logs vs own sent TCNs under %s', (_name, suite) => {
  const rak = new Uint8Array(32).fill(6);

  it('finds own sent TCNs in published logs, heard within the sent day ± 2 h', () => {
    let sent = EMPTY_SENT_TCN_SET;
    for (let j = 1; j <= 6; j++) sent = recordSentTcn(sent, tcnAt(suite, rak, j), T0 + (j - 1) * 6 * 3_600_000);
    expect(recordSentTcn(sent, tcnAt(suite, rak, 1), T0 + 1000)).toBe(sent);
    expect(sent.days.map((d) => [d.day - DAY0, d.tcns.length / 16])).toEqual([[0, 4], [1, 2]]);
    const m = (ms: number): number => tcnContactMinute(ms);
    const logs: TcnContact[][] = [
      [{ tcn: seededRng(9).bytes(16), atMinute: m(T0), rssiDbm: -70 }, { tcn: tcnAt(suite, rak, 2), atMinute: m(T0 + 6 * 3_600_000 + 60_000), rssiDbm: -60 }],
      [
        { tcn: tcnAt(suite, rak, 5), atMinute: m(T0 + TCN_MS_PER_DAY + 1000), rssiDbm: -65 },
        // Day-0 TCN heard 1 h after the day ended (within skew), and one heard 3 days later (replay).
        { tcn: tcnAt(suite, rak, 4), atMinute: m(T0 + TCN_MS_PER_DAY + 3_600_000), rssiDbm: -66 },
        { tcn: tcnAt(suite, rak, 3), atMinute: m(T0 + 3 * TCN_MS_PER_DAY), rssiDbm: -67 },
      ],
    ];
    const r = matchPublishedContactLogs(sent, logs);
    expect(r.matches.map((x) => [x.logIndex, x.sentDay - DAY0, x.contact.rssiDbm])).toEqual([
      [0, 0, -60],
      [1, 1, -65],
      [1, 0, -66],
    ]);
    expect([r.contactsChecked, r.outsideSentDay]).toEqual([5, 1]);
    expect(matchPublishedContactLogs(sent, logs, { clockSkewMs: 0 }).outsideSentDay).toBe(2);
  });

  it('sent TCNs are pruned by retention', () => {
    let sent = EMPTY_SENT_TCN_SET;
    for (let d = 0; d < 20; d++) sent = recordSentTcn(sent, tcnAt(suite, rak, d + 1), T0 + d * TCN_MS_PER_DAY);
    expect(pruneSentTcns(sent, T0 + 19 * TCN_MS_PER_DAY).days.map((d) => d.day - DAY0)).toEqual(Array.from({ length: 15 }, (_, i) => i + 5));
  });
});

describe('observed-TCN store', () => {
  const tcn = (b: number): Uint8Array => new Uint8Array(16).fill(b);

  it('retention keeps today and the previous 14 days by default (configurable)', () => {
    let store = EMPTY_TCN_OBSERVATION_STORE;
    for (let d = 0; d < 20; d++) store = addTcnObservations(store, [seen(tcn(d), T0 + d * TCN_MS_PER_DAY)]);
    const now = T0 + 19 * TCN_MS_PER_DAY + 5;
    expect(pruneTcnObservations(store, now).days.map((d) => d.day - DAY0)).toEqual(Array.from({ length: 15 }, (_, i) => i + 5));
    expect(pruneTcnObservations(store, now, 2).days).toHaveLength(3);
  });

  it('tcnContactLogOf keeps one entry per (TCN, minute) with the strongest RSSI, in time order, within [from, to)', () => {
    const store = addTcnObservations(EMPTY_TCN_OBSERVATION_STORE, [seen(tcn(1), T0 + 5 * MIN, -70), seen(tcn(1), T0 + 5 * MIN + 30_000, -60), seen(tcn(2), T0 + MIN, -80), seen(tcn(1), T0 + 6 * MIN, -75), seen(tcn(3), T0 + 50 * MIN)]);
    const log = tcnContactLogOf(store, T0, T0 + 10 * MIN);
    const m0 = tcnContactMinute(T0);
    expect(log.map((c) => [c.tcn[0], c.atMinute - m0, c.rssiDbm])).toEqual([
      [2, 1, -80],
      [1, 5, -60],
      [1, 6, -75],
    ]);
  });

  it.each([
    ['observations[0].tcn', () => addTcnObservations(EMPTY_TCN_OBSERVATION_STORE, [seen(new Uint8Array(15), 0)])],
    ['observations[0].rssiDbm', () => addTcnObservations(EMPTY_TCN_OBSERVATION_STORE, [seen(tcn(0), 0, 21)])],
    ['observations[0].receivedAtMs', () => addTcnObservations(EMPTY_TCN_OBSERVATION_STORE, [seen(tcn(0), Number.NaN)])],
    ['retentionDays', () => pruneTcnObservations(EMPTY_TCN_OBSERVATION_STORE, 0, -1)],
    ['options.maxTcnsPerReport', () => matchTcnReports(nodeSuite, [], EMPTY_TCN_OBSERVATION_STORE, { maxTcnsPerReport: 0 })],
    ['report.j2', () => forEachReportTcn(nodeSuite, { rvk: new Uint8Array(32), tckBytes: new Uint8Array(32), j1: 5, j2: 4, memo: MEMO }, 10, () => undefined)],
    ['tcn', () => recordSentTcn(EMPTY_SENT_TCN_SET, new Uint8Array(8), 0)],
    ['options.clockSkewMs', () => matchPublishedContactLogs(EMPTY_SENT_TCN_SET, [], { clockSkewMs: -1 })],
    ['contacts[0].tcn', () => new TcnUploadIndex().add('x', [{ tcn: new Uint8Array(3), atMinute: 0, rssiDbm: 0 }])],
  ])('misuse: %s', (field, fn) => {
    expect(misuseField(fn)).toBe(field);
  });
});
