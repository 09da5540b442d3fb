/**
 * Simulated BLE propagation (DESIGN.md "Radio (hardware adapter)", simulated
 * air). Pure: positions and randomness are arguments, so the same Rng state
 * and the same positions give the same outcome.
 *
 * Model, per (advertising event, scanning receiver):
 *   1. out of range — distance beyond `rangeM` (no random draw, so a spatial
 *      index that never visits far receivers consumes the Rng exactly like a
 *      brute-force loop);
 *   2. duty cycle  — the scanner was not listening: Bernoulli(scanDutyCycle);
 *   3. loss        — collision / interference: Bernoulli(lossProbability);
 *   4. sensitivity — RSSI = TxPower − 10·n·log10(d) − walls·wallDb + noise
 *      below the receiver sensitivity.
 * Heard frames report RSSI rounded to integer dBm, as BLE controllers do.
 *
 * Scan duty cycle is modelled as an independent probability per advertising
 * event rather than explicit scan windows: a controller's scan interval is
 * tens to hundreds of ms and BLE's advDelay jitter (0–10 ms per event)
 * decorrelates advertising events from scan windows, so each event lands in a
 * window with probability scanWindow/scanInterval. Longer on/off scanning
 * (e.g. "scan 4 s every minute") is an actor-level schedule: the host calls
 * startScan/stopScan on timers, and those windows are explicit.
 *
 * Noise is Gaussian (Box–Muller) truncated at ±noiseClampSigmas·σ. The
 * truncation (probability mass beyond 4σ ≈ 6e-5) makes the radio range
 * finite, which is what lets a spatial grid be exact rather than approximate.
 */
import type { Rng } from '../../actors/ports.ts';
import { MisuseError } from '../../protocol/errors.ts';

/** Where a radio is: metres on the city plane, plus the room it is in. */
export interface Position {
  /** Metres east of the map origin. */
  readonly x: number;
  /** Metres north of the map origin. */
  readonly y: number;
  /**
   * Household / room / building; undefined = outdoors. Two radios whose rooms
   * differ (including indoors vs outdoors) have one wall between them.
   */
  readonly room?: string;
}

/** All parameters of the model. Units in the names; defaults in DEFAULT_PROPAGATION. */
export interface PropagationConfig {
  /** RSSI at the 1 m reference distance, dBm (BLE "measured power"). Default −59. */
  readonly txPowerDbm: number;
  /** Path-loss exponent n: 2 free space / open indoor, 2.5–3 furnished rooms, 3–4 cluttered. Default 2.0. */
  readonly pathLossExponent: number;
  /** Standard deviation of shadowing + fading noise, dB. 0 disables noise. Default 4. */
  readonly noiseSigmaDb: number;
  /** Noise is clamped to ±this many σ so range is finite. Default 4. */
  readonly noiseClampSigmas: number;
  /** Attenuation of the wall between two different rooms, dB. Default 10. */
  readonly wallAttenuationDb: number;
  /** Frames weaker than this are lost, dBm. Default −100. */
  readonly sensitivityDbm: number;
  /** Probability that an advertising event is lost regardless of signal, [0, 1]. Default 0. */
  readonly lossProbability: number;
  /** Fraction of time a scanner listens (scanWindow / scanInterval), [0, 1]. Default 1. */
  readonly scanDutyCycle: number;
  /** Distances below this count as this (log10(0) = −∞), metres. Default 0.1. */
  readonly minDistanceM: number;
}

export const DEFAULT_PROPAGATION: PropagationConfig = Object.freeze({
  txPowerDbm: -59,
  pathLossExponent: 2.0,
  noiseSigmaDb: 4,
  noiseClampSigmas: 4,
  wallAttenuationDb: 10,
  sensitivityDbm: -100,
  lossProbability: 0,
  scanDutyCycle: 1,
  minDistanceM: 0.1,
});

/** Why a receiver did not hear an advertising event. */
export type LossCause = 'outOfRange' | 'dutyCycle' | 'loss' | 'sensitivity';
export const LOSS_CAUSES: readonly LossCause[] = ['outOfRange', 'dutyCycle', 'loss', 'sensitivity'];

export type Outcome = { readonly heard: true; readonly rssi: number } | { readonly heard: false; readonly cause: LossCause };

/** Defaults overridden by `overrides`, validated (MisuseError naming the field). */
export function propagationConfig(overrides: Partial<PropagationConfig> = {}): PropagationConfig {
  const c: PropagationConfig = { ...DEFAULT_PROPAGATION, ...overrides };
  const finite = (field: keyof PropagationConfig): void => {
    if (!Number.isFinite(c[field])) throw new MisuseError(field, 'must be a finite number');
  };
  for (const field of Object.keys(DEFAULT_PROPAGATION) as (keyof PropagationConfig)[]) finite(field);
  if (c.pathLossExponent <= 0) throw new MisuseError('pathLossExponent', 'must be > 0');
  if (c.noiseSigmaDb < 0) throw new MisuseError('noiseSigmaDb', 'must be ≥ 0');
  if (c.noiseClampSigmas <= 0) throw new MisuseError('noiseClampSigmas', 'must be > 0');
  if (c.wallAttenuationDb < 0) throw new MisuseError('wallAttenuationDb', 'must be ≥ 0');
  if (c.minDistanceM <= 0) throw new MisuseError('minDistanceM', 'must be > 0');
  for (const p of ['lossProbability', 'scanDutyCycle'] as const) {
    if (c[p] < 0 || c[p] > 1) throw new MisuseError(p, 'must be a probability in [0, 1]');
  }
  return Object.freeze(c);
}

export function distanceM(a: Position, b: Position): number {
  const dx = a.x - b.x;
  const dy = a.y - b.y;
  // Not Math.hypot: V8's is several times slower, and this runs per (event, receiver).
  return Math.sqrt(dx * dx + dy * dy);
}

/** Walls between two positions: one if their rooms differ, else none. */
export function wallsBetween(a: Position, b: Position): number {
  return a.room === b.room ? 0 : 1;
}

/** Expected RSSI (no noise) at `distance` metres through `walls` walls, dBm. */
export function meanRssiDbm(config: PropagationConfig, distance: number, walls = 0): number {
  const d = Math.max(distance, config.minDistanceM);
  return config.txPowerDbm - 10 * config.pathLossExponent * Math.log10(d) - walls * config.wallAttenuationDb;
}

/**
 * Largest distance at which a frame can possibly be heard (no walls, noise at
 * its clamp), metres; 0 when even `minDistanceM` is too far.
 */
export function maxRangeM(config: PropagationConfig, walls = 0): number {
  const margin = config.txPowerDbm + config.noiseClampSigmas * config.noiseSigmaDb - config.sensitivityDbm - walls * config.wallAttenuationDb;
  const range = Math.pow(10, margin / (10 * config.pathLossExponent));
  return range >= config.minDistanceM ? range : 0;
}

/** A standard normal deviate (Box–Muller, one per two uniforms: no hidden state). */
export function standardNormal(rng: Rng): number {
  const u1 = 1 - rng.float(); // (0, 1]: log(0) would be −∞
  const u2 = rng.float();
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

/** The model compiled for one config: range precomputed, one `evaluate` per (event, receiver). */
export class PropagationModel {
  readonly config: PropagationConfig;
  /** See maxRangeM (no walls): the largest range of all. */
  readonly rangeM: number;
  /** The range through one wall (wallsBetween gives 0 or 1). */
  readonly rangeThroughWallM: number;

  constructor(config: Partial<PropagationConfig> = {}) {
    this.config = propagationConfig(config);
    this.rangeM = maxRangeM(this.config);
    this.rangeThroughWallM = maxRangeM(this.config, 1);
  }

  /** Whether a receiver at `distance` metres can possibly hear (no Rng draw). */
  inRange(distance: number): boolean {
    return this.rangeM > 0 && distance <= this.rangeM;
  }

  /**
   * Whether a receiver at `to` can possibly hear a sender at `from`, walls
   * included, with `slackM` of movement allowed (no Rng draw). Everything it
   * rules out would fail the sensitivity test anyway, so deliveries are the
   * same; it keeps the lazy air from arming a beacon for a neighbour behind a
   * wall (in the quarantine city, 10× fewer advertising events evaluated).
   */
  couldHear(from: Position, to: Position, slackM = 0): boolean {
    const range = wallsBetween(from, to) === 0 ? this.rangeM : this.rangeThroughWallM;
    return range > 0 && distanceM(from, to) <= range + slackM;
  }

  /**
   * Outcome of one advertising event from `from` at a receiver at `to`.
   * Draws from `rng` only for the steps that are random under this config,
   * in a fixed order (duty cycle, loss, noise), so runs replay exactly.
   */
  evaluate(rng: Rng, from: Position, to: Position): Outcome {
    const c = this.config;
    const d = distanceM(from, to);
    if (!this.couldHear(from, to)) return { heard: false, cause: 'outOfRange' };
    if (c.scanDutyCycle < 1 && rng.float() >= c.scanDutyCycle) return { heard: false, cause: 'dutyCycle' };
    if (c.lossProbability > 0 && rng.float() < c.lossProbability) return { heard: false, cause: 'loss' };
    let rssi = meanRssiDbm(c, d, wallsBetween(from, to));
    if (c.noiseSigmaDb > 0) {
      const clamp = c.noiseClampSigmas;
      rssi += c.noiseSigmaDb * Math.max(-clamp, Math.min(clamp, standardNormal(rng)));
    }
    if (rssi < c.sensitivityDbm) return { heard: false, cause: 'sensitivity' };
    // `+ 0` turns a rounded −0 into 0 so frames compare equal across runs.
    return { heard: true, rssi: Math.round(rssi) + 0 };
  }
}
