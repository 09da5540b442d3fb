/**
 * The TCN engine (actors/tracing/tcn-engine.ts) as pure functions: a new TCN every rotation on a
 * 15-minute grid and a new rak every UTC day or when the ratchet would pass 65,535; a report
 * covers exactly the TCNs on the air since infectiousFrom (regenerated from the report and
 * compared with what was broadcast) and the reported rak is never used again; observe refuses
 * payloads that are not 16 bytes; expire forgets what is older than the retention; the distance
 * rule (runs, mean RSSI, 2 m, 15/5 minutes) and local matching (mode C).
 */
import { describe, expect, it } from 'vitest';
import type { ReceivedFrame } from '../../actors/ports.ts';
import type { EngineDeps } from '../../actors/tracing/engine.ts';
import { tcnEngine, tcnEngineConfig, type TcnState } from '../../actors/tracing/tcn-engine.ts';
import { tcnExposures, type TcnSighting } from '../../actors/tracing/tcn-exposure.ts';
import { drbgInit, type DrbgState } from '../../protocol/crypto/drbg.ts';
import type { IdentifiedRecord } from '../../protocol/keyserver/distribution-records.ts';
import { expectedRssiDbm } from '../../protocol/tcn/distance.ts';
import { tckAt, TCN_MAX_INDEX } from '../../protocol/tcn/keys.ts';
import { tcnsFromReport, verifyTcnReport } from '../../protocol/tcn/report.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { misuseField } from '../support/misuse.ts';

const MIN = 60_000;
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 5, 7, 13); // not on the 15-minute grid
const deps: EngineDeps = { crypto: nodeSuite };
const config = tcnEngineConfig();
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

interface Phone {
  state: TcnState;
  drbg: DrbgState;
  /** Every TCN put on the air, with its start. */
  readonly broadcast: { tcn: string; at: number }[];
  nextAt: number;
}

function phone(seed: number, c = config): Phone {
  const started = tcnEngine.init(deps, c, T0, drbgInit(new Uint8Array(16).fill(seed)));
  const p: Phone = { state: started.state, drbg: started.drbg, broadcast: [], nextAt: T0 };
  rotate(p, T0, c);
  return p;
}

function rotate(p: Phone, at: number, c = config): Uint8Array {
  const r = tcnEngine.rotate(deps, c, p.state, at, p.drbg);
  expect(r.payloads).toHaveLength(1);
  expect(r.payloads[0]).toHaveLength(16);
  p.state = r.state;
  p.drbg = r.drbg;
  p.nextAt = r.nextAt;
  p.broadcast.push({ tcn: hex(r.payloads[0]!), at });
  return r.payloads[0]!;
}

/** Rotate at every deadline up to `until`. */
function runUntil(p: Phone, until: number, c = config): void {
  while (p.nextAt <= until) rotate(p, p.nextAt, c);
}

const frame = (payload: Uint8Array, rssi: number, at: number): ReceivedFrame => ({ payload, rssi, at, address: 'AA:AA:AA:AA:AA:AA' });
const tcnRecord = (report: Uint8Array, id: string): IdentifiedRecord => ({ protocol: 'tcn-report', report, id });

describe('rotation', () => {
  it('a new TCN every rotation, on the 15-minute grid, one rak a UTC day', () => {
    const p = phone(1);
    expect(p.nextAt).toBe(Date.UTC(2026, 0, 5, 7, 15));
    runUntil(p, T0 + 2 * DAY);
    const tcns = p.broadcast.map((b) => b.tcn);
    expect(new Set(tcns).size).toBe(tcns.length);
    expect(p.broadcast.slice(1).every((b) => b.at % (15 * MIN) === 0)).toBe(true);
    expect(p.state.raks.map((r) => r.period)).toEqual([20_458, 20_459, 20_460]);
    // Day 2 is a whole day: 96 TCNs from one rak, tcn_1 … tcn_96.
    expect(p.state.raks[1]!.tck.index).toBe(96);
    expect(p.state.raks[1]!.starts[0]).toBe(Date.UTC(2026, 0, 6));
  });

  it('a rak whose ratchet would pass 65,535 is replaced', () => {
    const p = phone(2);
    const rak = p.state.raks[0]!;
    p.state = { ...p.state, raks: [{ ...rak, tck: tckAt(nodeSuite, rak.rak, TCN_MAX_INDEX) }] };
    rotate(p, T0 + 15 * MIN);
    expect(p.state.raks).toHaveLength(2);
    expect(p.state.raks[1]!.tck.index).toBe(1);
    expect(hex(p.state.raks[1]!.rak)).not.toBe(hex(rak.rak));
  });

  it('rejects a configuration that does not fit the grid', () => {
    expect(misuseField(() => tcnEngineConfig({ rotationMs: 7 * MIN }))).toBe('config.rotationMs');
    expect(misuseField(() => tcnEngineConfig({ rakPeriodMs: 25 * MIN }))).toBe('config.rakPeriodMs');
    expect(misuseField(() => tcnEngineConfig({ mode: 'D' as 'C' }))).toBe('config.mode');
  });
});

describe('report', () => {
  it('covers exactly the TCNs on the air since infectiousFrom, one report per rak', () => {
    const p = phone(3);
    runUntil(p, T0 + 2.5 * DAY);
    const at = T0 + 2.5 * DAY;
    const infectiousFrom = T0 + DAY + 3 * 60 * MIN + 7 * MIN; // mid-rotation, day 2
    const r = tcnEngine.report(deps, config, p.state, infectiousFrom, at, p.drbg);
    expect(r.records).toHaveLength(2); // day 2 and day 3
    const revealed = new Set<string>();
    for (const record of r.records) {
      expect(record.protocol).toBe('tcn-report');
      if (record.protocol !== 'tcn-report') continue;
      const report = verifyTcnReport(nodeSuite, record.report);
      expect(report.ok).toBe(true);
      if (!report.ok) continue;
      expect(report.value.memo.type).toBe(1);
      for (const tcn of tcnsFromReport(nodeSuite, report.value)) revealed.add(hex(tcn));
    }
    const expected = p.broadcast.filter((b, i) => (p.broadcast[i + 1]?.at ?? Infinity) > infectiousFrom).map((b) => b.tcn);
    expect([...revealed].sort()).toEqual([...expected].sort());
    // The TCN current at infectiousFrom (10:20) started at 10:15; nothing earlier is revealed.
    expect(Math.min(...p.broadcast.filter((b) => revealed.has(b.tcn)).map((b) => b.at))).toBe(Date.UTC(2026, 0, 6, 10, 15));
    // The reported rak is never ratcheted again: the next TCN comes from a fresh rak.
    p.state = r.state;
    const next = rotate(p, at);
    expect(revealed.has(hex(next))).toBe(false);
    expect(p.state.raks[p.state.raks.length - 1]!.tck.index).toBe(1);
  });

  it('modes A and B send nothing to the key server', () => {
    for (const mode of ['A', 'B'] as const) {
      const c = tcnEngineConfig({ mode });
      const p = phone(4, c);
      expect(tcnEngine.report(deps, c, p.state, T0, T0 + MIN, p.drbg).records).toEqual([]);
    }
  });
});

describe('observe and expire', () => {
  it('keeps 16-byte payloads with an int8 RSSI and refuses the rest', () => {
    const p = phone(5);
    const good = new Uint8Array(16).fill(9);
    const frames = [frame(good, -60, T0), frame(good, -62, T0), frame(new Uint8Array(15), -60, T0), frame(new Uint8Array(17), -60, T0), frame(new Uint8Array(0), -60, T0), frame(new Uint8Array(20), -60, T0), frame(new Uint8Array(16), -60.5, T0), frame(new Uint8Array(16).fill(1), 200, T0)];
    const r = tcnEngine.observe(deps, config, p.state, frames, T0 + 1000);
    expect(r.refused).toBe(6);
    expect(r.state.blocks).toHaveLength(1);
    // One entry per TCN a window, its mean RSSI.
    expect(r.state.blocks[0]!.bytes).toHaveLength(19);
    expect((r.state.blocks[0]!.bytes[16]! << 24) >> 24).toBe(-61);
    expect(tcnEngine.observe(deps, config, p.state, [frame(new Uint8Array(3), -50, T0)], T0).state).toBe(p.state);
  });

  it('expire forgets observations, keys and sent TCNs older than 14 days', () => {
    const c = tcnEngineConfig({ mode: 'B' });
    const p = phone(6, c);
    for (let d = 0; d < 20; d++) {
      const at = T0 + d * DAY;
      runUntil(p, at, c);
      p.state = tcnEngine.observe(deps, c, p.state, [frame(new Uint8Array(16).fill(d + 1), -60, at)], at).state;
    }
    const midnight = Date.UTC(2026, 0, 25);
    const expired = tcnEngine.expire(c, p.state, midnight);
    const horizon = midnight - 14 * DAY;
    expect(tcnEngine.oldestHeld(p.state)).toBeLessThan(horizon);
    expect(tcnEngine.oldestHeld(expired)).toBeGreaterThanOrEqual(horizon);
    expect(expired.raks.every((r) => r.starts[0]! >= horizon)).toBe(true);
    expect(expired.blocks.length).toBe(14);
    expect(expired.sent.days[0]!.day * DAY).toBe(horizon);
    expect(tcnEngine.storageBytes(expired)).toBeLessThan(tcnEngine.storageBytes(p.state));
  });
});

describe('distance rule', () => {
  const at = (m: number): number => Date.UTC(2026, 0, 6, 10) + m * MIN;
  const run = (minutes: number, rssi: (i: number) => number, from = 0): TcnSighting[] => Array.from({ length: minutes }, (_, i) => ({ atMs: at(from + i), rssiDbm: rssi(i) }));
  const risk = (s: TcnSighting[], c = config): string => tcnExposures(c, 'r', s).map((e) => `${e.risk}:${e.minutes}`).join() || 'none';

  it('the calibration: −68 dBm is 2 m in the city (TxPower −59 dBm, n = 3)', () => {
    expect(Math.round(expectedRssiDbm(2, { txPowerDbm: -59, pathLossExponent: 3 }))).toBe(-68);
  });

  it('15 minutes within 2 m are high, 5 low, 4 nothing; farther counts nothing', () => {
    expect(risk(run(15, () => -64))).toBe('high:15');
    expect(risk(run(5, () => -64))).toBe('low:5');
    expect(risk(run(4, () => -64))).toBe('none');
    expect(risk(run(60, () => -72))).toBe('none');
    expect(risk(run(15, () => -68))).toBe('high:15'); // exactly 2 m counts (≤)
  });

  it('averages a run: noisy readings around 1.5 m count, around 2.3 m do not', () => {
    const noise = (i: number): number => [5, -6, 3, -4, 6, -5, 2, -1][i % 8]!;
    expect(risk(run(30, (i) => Math.round(expectedRssiDbm(1.5, { pathLossExponent: 3 })) + noise(i)))).toBe('high:30');
    expect(risk(run(30, (i) => Math.round(expectedRssiDbm(2.3, { pathLossExponent: 3 })) + noise(i)))).toBe('none');
    // Per reading (runs of one scan), the same 2.3 m readings would count their loud half: a false high.
    expect(risk(run(30, (i) => Math.round(expectedRssiDbm(2.3, { pathLossExponent: 3 })) + noise(i)), tcnEngineConfig({ maxRunMs: MIN }))).toBe('high:15');
  });

  it('runs split at gaps; the day sums runs and scan periods count once', () => {
    const twice = [...run(8, () => -64), ...run(8, () => -64, 60)];
    expect(risk(twice)).toBe('high:16');
    const dup = [...run(6, () => -64), ...run(6, () => -65)];
    expect(risk(dup)).toBe('low:6');
    // A day boundary splits the sum: 10 minutes before and 10 after midnight are two low days.
    const midnight = Date.UTC(2026, 0, 7);
    const across = Array.from({ length: 20 }, (_, i) => ({ atMs: midnight - 10 * MIN + i * MIN, rssiDbm: -64 }));
    expect(tcnExposures(config, 'r', across).map((e) => [e.dayNumber, e.risk])).toEqual([[20_459, 'low'], [20_460, 'low']]);
  });
});

describe('mode C matching', () => {
  it('verifies downloaded reports and matches them against what was heard', () => {
    const positive = phone(7);
    const listener = phone(8);
    const far = phone(9);
    for (let m = 1; m <= 40; m++) {
      const at = T0 + m * MIN;
      runUntil(positive, at);
      const tcn = positive.broadcast[positive.broadcast.length - 1]!;
      const payload = Uint8Array.from(Buffer.from(tcn.tcn, 'hex'));
      listener.state = tcnEngine.observe(deps, config, listener.state, [frame(payload, -63, at)], at).state;
      far.state = tcnEngine.observe(deps, config, far.state, [frame(payload, -80, at)], at).state;
    }
    const at = T0 + 2 * 60 * MIN;
    const { records } = tcnEngine.report(deps, config, positive.state, T0 - DAY, at, positive.drbg);
    const downloaded = records.map((r, i) => tcnRecord(r.protocol === 'tcn-report' ? r.report : new Uint8Array(), `rec${i}`));
    const forged = tcnRecord(Uint8Array.from(downloaded[0]!.protocol === 'tcn-report' ? downloaded[0]!.report : [], (b, i) => (i === 100 ? b ^ 1 : b)), 'forged');
    const close = tcnEngine.match(deps, config, listener.state, [...downloaded, forged], at);
    expect(close.exposures.map((e) => [e.recordId, e.risk, e.minutes])).toEqual([['rec0', 'high', 40]]);
    expect(close.state.counters.reportsInvalid).toBe(1);
    // Matching the same records again reports nothing new.
    expect(tcnEngine.match(deps, config, close.state, downloaded, at).exposures).toEqual([]);
    expect(tcnEngine.match(deps, config, far.state, downloaded, at).exposures).toEqual([]);
  });
});
