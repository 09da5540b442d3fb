/**
 * The retained epoch message (DESIGN.md "Time", wall × speed): every host of
 * a distributed run reads `{ t0, wall0, speed }` from `tc/v1/sim/epoch` and
 * computes simulated time = t0 + (wall − wall0) × speed, so all agree.
 */
import { MisuseError, accept, reject, type Verdict } from '../errors.ts';
import { isWireMap, packWire, unpackWire } from './msgpack.ts';

export const EPOCH_VERSION = 1;
/** Speed factors outside this range are rejected (1e-3× … 1e6× real time). */
export const MIN_SPEED = 1e-3;
export const MAX_SPEED = 1e6;

export interface Epoch {
  /** Simulated time at the epoch, ms since the Unix epoch. */
  readonly t0: number;
  /** Wall-clock time at the epoch, ms since the Unix epoch. */
  readonly wall0: number;
  /** Simulated ms per wall ms. */
  readonly speed: number;
}

function problem(e: Readonly<Record<string, unknown>>): { field: string; detail: string } | undefined {
  for (const field of ['t0', 'wall0'] as const) {
    const v = e[field];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) return { field, detail: 'expected a non-negative integer (ms)' };
  }
  const s = e['speed'];
  if (typeof s !== 'number' || !(s >= MIN_SPEED && s <= MAX_SPEED)) {
    return { field: 'speed', detail: `expected a number in [${MIN_SPEED}, ${MAX_SPEED}]` };
  }
  return undefined;
}

export function encodeEpoch(epoch: Epoch): Uint8Array {
  const bad = problem(epoch as unknown as Record<string, unknown>);
  if (bad !== undefined) throw new MisuseError(bad.field, bad.detail);
  return packWire({ v: EPOCH_VERSION, t0: epoch.t0, wall0: epoch.wall0, speed: epoch.speed });
}

export function decodeEpoch(bytes: Uint8Array): Verdict<Epoch> {
  if (bytes.length > 256) return reject('epoch', 'too-large', `${bytes.length} bytes`);
  const u = unpackWire(bytes, 'epoch');
  if (!u.ok) return u;
  const m = u.value;
  if (!isWireMap(m)) return reject('epoch', 'not-a-map', 'epoch must be a map');
  if (m['v'] !== EPOCH_VERSION) return reject('epoch', 'unknown-version', `version ${JSON.stringify(m['v'])}`, 'v');
  const bad = problem(m);
  if (bad !== undefined) return reject('epoch', 'field-range', bad.detail, bad.field);
  return accept({ t0: m['t0'] as number, wall0: m['wall0'] as number, speed: m['speed'] as number });
}

/** Simulated time for a wall-clock reading under `epoch`. */
export function simulatedAt(epoch: Epoch, wallMs: number): number {
  return Math.floor(epoch.t0 + (wallMs - epoch.wall0) * epoch.speed);
}

/** Wall-clock time at which simulated time reaches `simMs` under `epoch`. */
export function wallAt(epoch: Epoch, simMs: number): number {
  return epoch.wall0 + (simMs - epoch.t0) / epoch.speed;
}
