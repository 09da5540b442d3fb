/**
 * Distance from RSSI and the TCN radio duty cycle (issue 5). SPECS §3 fixes neither: the TCN
 * README only says TCNs ride in BLE service data (UUID 0xC019) and should rotate with the MAC.
 *
 * Log-distance path loss, the model the simulated air uses (DESIGN.md "Radio": RSSI = TxPower −
 * 10·n·log10(d) + noise; hardware/sim/propagation.ts), solved for d:
 *
 *   d = 10^((TxPower − RSSI) / (10 · n))   metres
 *
 * TxPower is the RSSI expected at 1 m. Defaults, and why:
 * - TxPower −59 dBm: the typical iBeacon "measured power" (calibrated RSSI at 1 m) of a phone-class
 *   transmitter, and hardware/sim's default, so estimates on simulated air are unbiased;
 * - n = 2: free-space propagation (also hardware/sim's default); 2.5–4 indoors, where RSSI-based
 *   distance is known to be off by a factor of 2 or more — treat the result as a rough bucket.
 * Caller misuse (non-finite values, n ≤ 0) throws MisuseError naming the field.
 */
import { ensure } from '../errors.ts';

/** RSSI at 1 m, dBm: iBeacon "measured power" typical value; hardware/sim default (DESIGN.md "Radio"). */
export const TCN_DEFAULT_TX_POWER_DBM = -59;
/** Path-loss exponent n, dimensionless: 2 = free space (DESIGN.md "Radio"; hardware/sim default). */
export const TCN_DEFAULT_PATH_LOSS_EXPONENT = 2;
/** Advertising interval, ms: about 1 Hz (issue 5's TCN default; SPECS §3 is silent). */
export const TCN_ADVERTISE_INTERVAL_MS = 1000;
/** Scan window, ms: scan for 1 s … (issue 5's TCN default). */
export const TCN_SCAN_WINDOW_MS = 1000;
/** … once per scan period, ms: every minute (issue 5's TCN default). */
export const TCN_SCAN_PERIOD_MS = 60_000;

export interface DistanceOptions {
  /** RSSI at 1 m, dBm (default −59). */
  readonly txPowerDbm?: number;
  /** Path-loss exponent n > 0 (default 2). */
  readonly pathLossExponent?: number;
}

/** Estimated distance in metres for a received RSSI (dBm): 10^((TxPower − RSSI) / (10·n)). */
export function estimateDistanceM(rssiDbm: number, options: DistanceOptions = {}): number {
  const tx = options.txPowerDbm ?? TCN_DEFAULT_TX_POWER_DBM;
  const n = options.pathLossExponent ?? TCN_DEFAULT_PATH_LOSS_EXPONENT;
  ensure(typeof rssiDbm === 'number' && Number.isFinite(rssiDbm), 'rssiDbm', `must be a finite number of dBm, got ${String(rssiDbm)}`);
  ensure(typeof tx === 'number' && Number.isFinite(tx), 'options.txPowerDbm', `must be a finite number of dBm, got ${String(tx)}`);
  ensure(typeof n === 'number' && Number.isFinite(n) && n > 0, 'options.pathLossExponent', `must be a finite number > 0, got ${String(n)}`);
  return Math.pow(10, (tx - rssiDbm) / (10 * n));
}

/** The RSSI (dBm) the model expects at `distanceM` metres (> 0): the inverse of estimateDistanceM. */
export function expectedRssiDbm(distanceM: number, options: DistanceOptions = {}): number {
  const tx = options.txPowerDbm ?? TCN_DEFAULT_TX_POWER_DBM;
  const n = options.pathLossExponent ?? TCN_DEFAULT_PATH_LOSS_EXPONENT;
  ensure(typeof distanceM === 'number' && Number.isFinite(distanceM) && distanceM > 0, 'distanceM', `must be a finite number > 0, got ${String(distanceM)}`);
  ensure(typeof tx === 'number' && Number.isFinite(tx), 'options.txPowerDbm', `must be a finite number of dBm, got ${String(tx)}`);
  ensure(typeof n === 'number' && Number.isFinite(n) && n > 0, 'options.pathLossExponent', `must be a finite number > 0, got ${String(n)}`);
  return tx - 10 * n * Math.log10(distanceM);
}
