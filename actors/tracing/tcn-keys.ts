/**
 * The TCN engine's own keys (SPECS §3; protocol/tcn/keys.ts, report.ts): a rak per rak period
 * (a UTC day by default, tcn-config.ts), its tck ratchet advanced once per rotation, and the
 * start time of every TCN issued, so a report can name exactly the TCNs on the air since
 * `infectiousFrom`.
 *
 * Why a report never reveals an earlier TCN: it discloses tck_{j1−1}, from which tcn_{j1} and
 * every later TCN of that rak follow, and nothing before (the ratchet is one-way). j1 is the
 * first TCN still on the air at infectiousFrom (its successor started after it). After a report
 * the rak is marked `reported` and never ratcheted again: its later TCNs are public.
 */
import { drbgDraw, type DrbgState } from '../../protocol/crypto/drbg.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import { ensure } from '../../protocol/errors.ts';
import { initialTck, ratchetTck, TCN_MAX_INDEX, TCN_RAK_BYTES, TCN_RVK_BYTES, tcnOf, type TemporaryContactKey } from '../../protocol/tcn/keys.ts';
import { createTcnReport } from '../../protocol/tcn/report.ts';
import type { SimMillis } from '../ports.ts';
import type { TcnEngineConfig } from './tcn-config.ts';

export interface TcnOwnRak {
  /** Ed25519 seed, 32 bytes, from the phone's DRBG. */
  readonly rak: Uint8Array;
  /** Rak period number: ⌊start / rakPeriodMs⌋. */
  readonly period: number;
  /** The last tck issued: tck.index TCNs so far (tcn_1 … tcn_index). */
  readonly tck: TemporaryContactKey;
  /** starts[j − 1]: when tcn_j went on the air, ms. */
  readonly starts: readonly SimMillis[];
  /** Disclosed by a report: never ratcheted again. */
  readonly reported: boolean;
}

export interface KeyRotation {
  readonly raks: readonly TcnOwnRak[];
  readonly drbg: DrbgState;
  readonly tcn: Uint8Array;
  readonly nextAt: SimMillis;
}

/** The next TCN: ratchet the current rak, or start a new one (none yet, reported, new period, index exhausted). */
export function rotateKeys(crypto: CryptoSuite, config: TcnEngineConfig, raks: readonly TcnOwnRak[], at: SimMillis, drbg: DrbgState): KeyRotation {
  const period = Math.floor(at / config.rakPeriodMs);
  const current = raks[raks.length - 1];
  let next: TcnOwnRak;
  let kept = raks;
  if (current === undefined || current.reported || current.period !== period || current.tck.index >= TCN_MAX_INDEX) {
    const draw = drbgDraw(drbg, TCN_RAK_BYTES);
    drbg = draw.state;
    next = { rak: draw.bytes, period, tck: initialTck(crypto, draw.bytes), starts: [at], reported: false };
  } else {
    const step = ratchetTck(crypto, current.tck);
    // current.tck.index < TCN_MAX_INDEX was checked above, so the ratchet yields a key.
    ensure(step.ok, 'raks', 'unreachable: ratchet exhausted below 65535');
    next = { ...current, tck: step.tck, starts: [...current.starts, at] };
    kept = raks.slice(0, -1);
  }
  // rakPeriodMs is a multiple of rotationMs (tcn-config.ts), so the next rotation never skips a rak period.
  const nextAt = (Math.floor(at / config.rotationMs) + 1) * config.rotationMs;
  return { raks: [...kept, next], drbg, tcn: tcnOf(crypto, next.tck), nextAt };
}

/** Every TCN issued, in time order: [rak index, j, start]. */
function issued(raks: readonly TcnOwnRak[]): [number, number, SimMillis][] {
  const out: [number, number, SimMillis][] = [];
  raks.forEach((r, k) => r.starts.forEach((start, i) => out.push([k, i + 1, start])));
  return out;
}

export interface KeyReport {
  readonly raks: readonly TcnOwnRak[];
  /** Signed reports, oldest rak first, one per rak with a TCN on the air in [infectiousFrom, at]. */
  readonly reports: readonly Uint8Array[];
}

/**
 * Reports for the TCNs on the air in [infectiousFrom, at]: per rak, j1 = its first TCN that was
 * still current at infectiousFrom (the next TCN started after it), j2 = its last one started by
 * `at`. Every reported rak is marked `reported`.
 */
export function reportKeys(crypto: CryptoSuite, config: TcnEngineConfig, raks: readonly TcnOwnRak[], infectiousFrom: SimMillis, at: SimMillis): KeyReport {
  const all = issued(raks);
  const range = new Map<number, { j1: number; j2: number }>();
  all.forEach(([k, j, start], n) => {
    const end = all[n + 1]?.[2] ?? Number.POSITIVE_INFINITY;
    if (end <= infectiousFrom || start > at) return;
    const r = range.get(k);
    range.set(k, r === undefined ? { j1: j, j2: j } : { j1: r.j1, j2: j });
  });
  const reports: Uint8Array[] = [];
  const next = raks.map((r, k) => {
    const span = range.get(k);
    if (span === undefined) return r;
    reports.push(createTcnReport(crypto, r.rak, span.j1, span.j2, config.memo));
    return r.reported ? r : { ...r, reported: true };
  });
  return { raks: next, reports };
}

/** Raks whose period ended at or before `horizon` are forgotten. */
export function expireKeys(config: TcnEngineConfig, raks: readonly TcnOwnRak[], horizon: SimMillis): readonly TcnOwnRak[] {
  const kept = raks.filter((r) => (r.period + 1) * config.rakPeriodMs > horizon);
  return kept.length === raks.length ? raks : kept;
}

/** Bytes held per rak: rak, tck, rvk, and 8 per TCN start. */
export function keyBytes(raks: readonly TcnOwnRak[]): number {
  return raks.reduce((sum, r) => sum + TCN_RAK_BYTES + r.tck.bytes.length + TCN_RVK_BYTES + 8 * r.starts.length, 0);
}
