/**
 * A simulated BLE radio (implements the Radio port of actors/ports.ts). It
 * owns advertising timing and scan state; the medium it is attached to
 * (SimAir in one process, BusAir over the bus) decides who hears what.
 *
 * Advertising follows the BLE link layer: one advertising event per
 * `intervalMs` plus advDelay, a pseudo-random 0–10 ms added to every event
 * (Core spec, Link Layer "Advertising interval") so that advertisers drift apart instead
 * of colliding forever; the payload set is sent round-robin, one per event.
 * The medium owns the timing (hardware/sim/schedule.ts, advertising.ts): the
 * schedule is a pure function of the set, so a medium may skip events nobody
 * can hear without changing anything else.
 */
import { LEGACY_SERVICE_DATA_BYTES } from '../../protocol/wire/framing.ts';
import type { AdvertiseOptions, FrameListener, RadioCapabilities, ReceivedFrame, Radio, Rng, ScanOptions, Scheduler } from '../../actors/ports.ts';
import { MisuseError } from '../../protocol/errors.ts';
import { hashString } from './schedule.ts';

export { MAX_ADV_DELAY_MS } from './schedule.ts';

/** Service data in one legacy advertisement (31 − 3 flags − 4 service-data header; protocol/wire/framing.ts). */
export const LEGACY_ADVERTISEMENT_PAYLOAD = LEGACY_SERVICE_DATA_BYTES;
/**
 * Service data in one extended advertisement PDU (BLE 5 AUX_ADV_IND carries
 * up to 254 bytes of AD data; − 4 for the service-data header). Chained PDUs
 * could carry more; we model a single PDU.
 */
export const EXTENDED_ADVERTISEMENT_PAYLOAD = 250;
/** BLE minimum advertising interval (legacy and extended), ms. */
export const MIN_ADVERTISING_INTERVAL_MS = 20;
/** BLE 5 maximum advertising interval (0xFFFFFF × 0.625 ms), ms. */
export const MAX_ADVERTISING_INTERVAL_MS = 10_485_759.375;
/** More payloads than a fragment count can index is a caller bug (framing uses one byte). */
export const MAX_PAYLOADS_PER_SET = 256;

export interface SimRadioOptions {
  /** Allow BLE 5 extended advertising (raises the default payload limit). Default false. */
  readonly extendedAdvertising?: boolean;
  /** Override the payload limit, bytes. Default 24 (legacy) or 250 (extended). */
  readonly maxAdvertisementPayload?: number;
}

/** What a SimRadio needs from the medium it is attached to. */
export interface RadioHost {
  readonly scheduler: Scheduler;
  readonly rng: Rng;
  /** Start (or replace) `radio`'s advertising set; the payloads are the radio's own copies. */
  startAdvertising(radio: SimRadio, payloads: readonly Uint8Array[], intervalMs: number): void;
  /** Stop `radio`'s advertising set, if any. */
  stopAdvertising(radio: SimRadio): void;
  /** The radio started or stopped scanning; resolves once the medium routes frames accordingly. */
  scanChanged(radio: SimRadio): Promise<void>;
  /** The radio closed: forget it. */
  detach(radio: SimRadio): Promise<void>;
}

/**
 * A non-resolvable private address (the kind GAEN requires): 6 random bytes
 * with the two most significant bits 00, neither all zeros nor all ones in
 * the random part. Formatted like BlueZ: `AA:BB:CC:DD:EE:FF`.
 */
export function randomPrivateAddress(rng: Rng): string {
  for (;;) {
    const b = rng.bytes(6);
    b[0] = (b[0] ?? 0) & 0x3f;
    const zeros = b.every((x) => x === 0);
    const ones = (b[0] ?? 0) === 0x3f && b.subarray(1).every((x) => x === 0xff);
    if (zeros || ones) continue;
    return Array.from(b, (x) => x.toString(16).padStart(2, '0').toUpperCase()).join(':');
  }
}

function fail(err: unknown): Promise<never> {
  return Promise.reject(err instanceof Error ? err : new Error(String(err)));
}

export class SimRadio implements Radio {
  readonly capabilities: RadioCapabilities;
  private currentAddress: string;
  private adv = false;
  private listener: FrameListener | undefined;
  private closed = false;
  private scan: ScanSession | undefined;

  constructor(
    readonly id: string,
    /** Attach order within the medium: receivers are visited in this order. */
    readonly seq: number,
    private readonly host: RadioHost,
    options: SimRadioOptions = {},
  ) {
    const extended = options.extendedAdvertising ?? false;
    const max = options.maxAdvertisementPayload ?? (extended ? EXTENDED_ADVERTISEMENT_PAYLOAD : LEGACY_ADVERTISEMENT_PAYLOAD);
    if (!Number.isSafeInteger(max) || max < 1) throw new MisuseError('maxAdvertisementPayload', 'must be a positive integer');
    this.capabilities = Object.freeze({ maxAdvertisementPayload: max, extendedAdvertising: extended });
    this.currentAddress = randomPrivateAddress(host.rng);
    this.idHash = hashString(id);
  }

  /** hashString(id): keys this radio's counter-based draws. */
  readonly idHash: number;

  /** Current link-layer address, as receivers see it in ReceivedFrame.address. */
  get address(): string {
    return this.currentAddress;
  }

  /**
   * Switch to a fresh random address (effective from the next advertising
   * event). Protocols that rotate identifiers call this together with
   * advertise(newPayloads) so the address cannot link old and new ids.
   */
  rotateAddress(): string {
    this.ensureOpen();
    this.currentAddress = randomPrivateAddress(this.host.rng);
    return this.currentAddress;
  }

  get scanning(): boolean {
    return this.listener !== undefined;
  }

  get advertising(): boolean {
    return this.adv;
  }

  advertise(payloads: readonly Uint8Array[], intervalMs: number, options: AdvertiseOptions = {}): Promise<void> {
    try {
      this.ensureOpen();
      const copies = this.validate(payloads, intervalMs);
      if (options.newAddress === true) this.currentAddress = randomPrivateAddress(this.host.rng);
      this.adv = true;
      this.host.startAdvertising(this, copies, intervalMs);
      return Promise.resolve();
    } catch (err) {
      return fail(err);
    }
  }

  stopAdvertising(): Promise<void> {
    try {
      this.ensureOpen();
      this.cancelAdvertising();
      return Promise.resolve();
    } catch (err) {
      return fail(err);
    }
  }

  startScan(listener: FrameListener, options: ScanOptions = {}): Promise<void> {
    try {
      this.ensureOpen();
      if (typeof listener !== 'function') throw new MisuseError('listener', 'must be a function');
      const session = scanSession(options, this.host.scheduler.now());
      const wasScanning = this.scanning;
      const sameWindows = wasScanning && this.scan !== undefined && sameDutyCycle(this.scan, session);
      this.listener = listener;
      // Replacing the listener (same duty cycle) changes nothing for the medium or the windows.
      if (sameWindows) return Promise.resolve();
      this.scan = session;
      return this.host.scanChanged(this);
    } catch (err) {
      return fail(err);
    }
  }

  stopScan(): Promise<void> {
    try {
      this.ensureOpen();
      if (!this.scanning) return Promise.resolve();
      this.listener = undefined;
      this.scan = undefined;
      return this.host.scanChanged(this);
    } catch (err) {
      return fail(err);
    }
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.cancelAdvertising();
    this.listener = undefined;
    this.scan = undefined;
    return this.host.detach(this);
  }

  /** The current scan's duty cycle (undefined: not scanning); windows are [startedAt + j·intervalMs, + windowMs). */
  get scanWindows(): ScanWindows | undefined {
    return this.scan;
  }

  /**
   * Medium → radio, before deliver(): whether this radio reports the frame —
   * scanning, inside a scan window, and (filterDuplicates) not an (address,
   * payload) already reported in this window, which it then remembers.
   */
  admits(frame: ReceivedFrame): boolean {
    const scan = this.scan;
    return this.listener !== undefined && scan !== undefined && acceptedInWindow(scan, frame);
  }

  /**
   * Medium → radio: hand an admitted frame to the current listener (dropped
   * when not scanning, e.g. scan stopped while a bus message was in flight).
   */
  deliver(frame: ReceivedFrame): void {
    this.listener?.(frame);
  }

  private cancelAdvertising(): void {
    if (!this.adv) return;
    this.adv = false;
    this.host.stopAdvertising(this);
  }

  private validate(payloads: readonly Uint8Array[], intervalMs: number): Uint8Array[] {
    if (!Array.isArray(payloads) || payloads.length === 0) throw new MisuseError('payloads', 'must be a non-empty array');
    if (payloads.length > MAX_PAYLOADS_PER_SET) {
      throw new MisuseError('payloads', `${payloads.length} payloads, over ${MAX_PAYLOADS_PER_SET}`);
    }
    const max = this.capabilities.maxAdvertisementPayload;
    const copies = payloads.map((p, i) => {
      if (!(p instanceof Uint8Array) || p.length === 0) throw new MisuseError('payloads', `[${i}] must be a non-empty Uint8Array`);
      if (p.length > max) throw new MisuseError('payloads', `[${i}] is ${p.length} bytes, over maxAdvertisementPayload ${max}`);
      return p.slice(); // the caller may reuse its buffers; the air must not change
    });
    if (!Number.isFinite(intervalMs) || intervalMs < MIN_ADVERTISING_INTERVAL_MS || intervalMs > MAX_ADVERTISING_INTERVAL_MS) {
      throw new MisuseError('intervalMs', `must be in [${MIN_ADVERTISING_INTERVAL_MS}, ${MAX_ADVERTISING_INTERVAL_MS}] ms (BLE limits)`);
    }
    return copies;
  }

  private ensureOpen(): void {
    if (this.closed) throw new MisuseError('radio', `${this.id} is closed`);
  }
}

/** A scan's duty cycle, as the medium needs it. */
export interface ScanWindows {
  readonly startedAt: number;
  readonly windowMs: number;
  readonly intervalMs: number;
  readonly filterDuplicates: boolean;
}

interface ScanSession extends ScanWindows {
  /** Window index of `reported` (filterDuplicates). */
  window: number;
  readonly reported: Set<string>;
}

function scanSession(options: ScanOptions, now: number): ScanSession {
  const { windowMs, intervalMs } = options;
  if ((windowMs === undefined) !== (intervalMs === undefined)) throw new MisuseError(windowMs === undefined ? 'windowMs' : 'intervalMs', 'give both windowMs and intervalMs, or neither');
  if (windowMs !== undefined && intervalMs !== undefined) {
    if (!Number.isSafeInteger(intervalMs) || intervalMs <= 0) throw new MisuseError('intervalMs', 'must be a positive integer (ms)');
    if (!Number.isSafeInteger(windowMs) || windowMs <= 0 || windowMs > intervalMs) throw new MisuseError('windowMs', 'must be an integer in (0, intervalMs] (ms)');
  }
  const interval = intervalMs ?? Number.POSITIVE_INFINITY;
  return { startedAt: now, windowMs: windowMs ?? interval, intervalMs: interval, filterDuplicates: options.filterDuplicates === true, window: -1, reported: new Set() };
}

function sameDutyCycle(a: ScanWindows, b: ScanWindows): boolean {
  return a.windowMs === b.windowMs && a.intervalMs === b.intervalMs && a.filterDuplicates === b.filterDuplicates;
}

/** Inside a window (continuous scans: always), and new in it when duplicates are filtered. */
function acceptedInWindow(scan: ScanSession, frame: ReceivedFrame): boolean {
  const since = frame.at - scan.startedAt;
  if (since < 0) return false;
  const window = Number.isFinite(scan.intervalMs) ? Math.floor(since / scan.intervalMs) : 0;
  if (since - window * scan.intervalMs >= scan.windowMs) return false;
  if (!scan.filterDuplicates) return true;
  if (window !== scan.window) {
    scan.window = window;
    scan.reported.clear();
  }
  let key = frame.address;
  for (const b of frame.payload) key += String.fromCharCode(b);
  if (scan.reported.has(key)) return false;
  scan.reported.add(key);
  return true;
}
