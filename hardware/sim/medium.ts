/**
 * The simulated air (DESIGN.md "Radio (hardware adapter)"): `SimAir` is the
 * in-memory medium for one process; `AirCore` is the delivery logic it shares
 * with BusAir (hardware/sim/bus-medium.ts), which carries transmissions over
 * the bus for distributed runs.
 *
 * Cost: a transmission looks at the 3×3 cells of a receiver grid (grid.ts).
 * Determinism: candidates are visited in attach order whatever the index, and
 * receivers out of range consume no randomness, so the grid and a brute-force
 * scan give identical deliveries, and the same seed gives the same run.
 *
 * Lazy advertising (SimAir default; hardware/sim/advertising.ts): an
 * advertising set gets scheduler events only while a scanning receiver other
 * than itself could hear it: within its range through the walls between
 * them (PropagationModel.couldHear) plus 2·gridSlackM (both may move up to
 * the slack before the medium looks again). It looks again when a radio
 * starts or stops scanning or advertising, on positionsChanged(), and every
 * gridMaxAgeMs while someone scans and advertises (if anyone moved). Draws
 * are counter-based per (set, event, receiver) (hardware/sim/schedule.ts), so
 * a lazy run and an eager one (`eager: true`) deliver the same frames with
 * the same RSSI in the same order; only `sent`, `unplaced`, `lost.outOfRange`
 * and `scheduledSkipped` tell them apart (see AirCounters).
 */
import type { Rng, Scheduler, TimerHandle } from '../../actors/ports.ts';
import { MisuseError } from '../../protocol/errors.ts';
import type { PropagationModel, Position } from './propagation.ts';
import { SimRadio, type RadioHost, type SimRadioOptions } from './radio.ts';
import { AdvertisingDriver, type Advertiser } from './advertising.ts';
import { mix } from './schedule.ts';
import { samePosition } from './grid.ts';

export type { PositionSource } from './grid.ts';
export { AirCore, type AirCounters, type AirOptions, type Transmission } from './air-core.ts';
import { AirCore, type AirCounters, type AirOptions, type Transmission } from './air-core.ts';

/**
 * Attach bookkeeping and advertising shared by SimAir and BusAir; `lazy`
 * arms advertising sets only while a local scanner could hear them.
 */
export abstract class AirBase implements RadioHost {
  readonly scheduler: Scheduler;
  readonly rng: Rng;
  readonly lazy: boolean;
  protected readonly core: AirCore;
  protected readonly radios = new Map<string, SimRadio>();
  private readonly driver: AdvertisingDriver;
  private readonly seedWords: readonly [number, number];
  /** advertise() calls per radio id: each set gets its own key. */
  private readonly setsStarted = new Map<string, number>();
  private readonly refreshMs: number;
  private rearmTimer: TimerHandle | undefined;
  /** Positions at the last periodic look (lazy). */
  private readonly lastLook = new Map<string, Position | undefined>();
  private seq = 0;

  constructor(
    protected readonly options: AirOptions,
    lazy: boolean,
  ) {
    this.scheduler = options.scheduler;
    this.rng = options.rng;
    this.lazy = lazy;
    this.core = new AirCore(options);
    this.seedWords = [options.rng.uint32(), options.rng.uint32()];
    this.refreshMs = Math.max(1, options.gridMaxAgeMs ?? 1000);
    this.driver = new AdvertisingDriver(options.scheduler, {
      emit: (a, payload, k) => this.transmit(a.radio, payload, { k0: a.schedule.key.k0, k1: a.schedule.key.k1, k }),
      skipped: (n) => void (this.core.counters.scheduledSkipped += n),
    });
  }

  /** Counters up to now (walks the schedules of disarmed sets to count their skipped events). */
  get counters(): Readonly<AirCounters> {
    this.driver.flush();
    return this.core.counters;
  }

  get model(): PropagationModel { return this.core.model; }

  /** Attach a radio; `radioId` must be unique within this medium. */
  attach(radioId: string, options: SimRadioOptions = {}): SimRadio {
    if (typeof radioId !== 'string' || radioId.length === 0) throw new MisuseError('radioId', 'must be a non-empty string');
    if (this.radios.has(radioId)) throw new MisuseError('radioId', `${JSON.stringify(radioId)} is already attached`);
    const radio = new SimRadio(radioId, this.seq++, this, options);
    this.radios.set(radioId, radio);
    return radio;
  }

  /** Tell the medium positions moved (after a mobility step or a teleport). */
  positionsChanged(): void {
    this.core.positionsChanged();
    this.rearmAll();
  }

  /** One advertising event of `radio` carrying `payload` (the radio's own copy: do not retain or mutate). */
  protected abstract transmit(radio: SimRadio, payload: Uint8Array, draw: NonNullable<Transmission['draw']>): void;

  startAdvertising(radio: SimRadio, payloads: readonly Uint8Array[], intervalMs: number): void {
    const n = this.setsStarted.get(radio.id) ?? 0;
    this.setsStarted.set(radio.id, n + 1);
    const [s0, s1] = this.seedWords;
    const key = { k0: mix(s0, radio.idHash, n), k1: mix(s1, radio.idHash, n, 1) };
    const a = this.driver.start(radio, payloads, intervalMs, key);
    if (this.audible(a)) this.driver.arm(a);
    this.armRefresh();
  }

  stopAdvertising(radio: SimRadio): void {
    this.driver.stop(radio);
    this.armRefresh();
  }

  scanChanged(radio: SimRadio): Promise<void> {
    this.scanStateChanged(radio);
    return Promise.resolve();
  }

  detach(radio: SimRadio): Promise<void> {
    this.driver.stop(radio);
    this.scanStateChanged(radio, false);
    if (this.radios.get(radio.id) === radio) this.radios.delete(radio.id);
    this.lastLook.delete(radio.id);
    return Promise.resolve();
  }

  /** Update the scanner set and (lazy) the sets near `radio`. */
  protected scanStateChanged(radio: SimRadio, scanning = radio.scanning): void {
    this.core.setScanning(radio, scanning);
    if (!this.lazy) return;
    const p = this.options.positions(radio.id);
    if (p !== undefined) {
      // A new scanner arms the sets it could hear; a leaving one can only disarm.
      for (const a of this.driver.advertisers()) {
        if (scanning ? a.armed || a.radio === radio : !a.armed) continue;
        if (!this.near(a, p)) continue;
        if (scanning) this.driver.arm(a);
        else if (!this.audible(a)) this.driver.disarm(a);
      }
    }
    this.armRefresh();
  }

  /** Whether a scanner at `p` could hear advertiser `a`, walls and movement slack included (a method, not a per-call closure: see AirCore.anyWithin). */
  private near(a: Advertiser, p: Position): boolean {
    const q = this.options.positions(a.radio.id);
    return q !== undefined && this.core.model.couldHear(q, p, this.core.slackM);
  }

  private audible(a: Advertiser): boolean {
    if (!this.lazy) return true;
    const p = this.options.positions(a.radio.id);
    return p !== undefined && this.core.scannerNear(p, a.radio.id);
  }

  /** Arm every set some scanner could hear, disarm the others. */
  private rearmAll(): void {
    if (!this.lazy) return;
    for (const a of this.driver.advertisers()) {
      if (this.audible(a)) this.driver.arm(a);
      else this.driver.disarm(a);
    }
  }

  /** Whether a scanning or advertising radio is somewhere else than at the last look (radios seen for the first time do not count). */
  private movedSinceLastLook(): boolean {
    let moved = false;
    for (const a of this.driver.advertisers()) moved = this.look(a.radio.id) || moved;
    for (const r of this.core.scanning()) moved = this.look(r.id) || moved;
    return moved;
  }

  /** Record where `id` is now; true when it moved since the last look (first sightings do not count). */
  private look(id: string): boolean {
    const p = this.options.positions(id);
    const before = this.lastLook.get(id);
    if (before !== undefined && samePosition(p, before)) return false;
    const moved = (before !== undefined || this.lastLook.has(id)) && !samePosition(p, before);
    this.lastLook.set(id, p);
    return moved;
  }

  /** Lazy: while someone scans and someone advertises, look again every gridMaxAgeMs (radios move unannounced). */
  private armRefresh(): void {
    const wanted = this.lazy && this.core.scannerCount > 0 && this.driver.size > 0 && Number.isFinite(this.refreshMs);
    if (!wanted) {
      if (this.rearmTimer !== undefined) this.scheduler.cancel(this.rearmTimer);
      this.rearmTimer = undefined;
      return;
    }
    this.rearmTimer ??= this.scheduler.at(this.scheduler.now() + this.refreshMs, () => {
      this.rearmTimer = undefined;
      if (this.movedSinceLastLook()) {
        this.core.invalidateWide();
        this.rearmAll();
      }
      this.armRefresh();
    });
  }
}

/** In-memory medium for one process: transmissions are delivered synchronously. Lazy unless `eager: true`. */
export class SimAir extends AirBase {
  constructor(options: AirOptions) {
    super(options, options.eager !== true);
  }

  /** Close every attached radio. */
  async close(): Promise<void> {
    for (const radio of [...this.radios.values()]) await radio.close();
  }

  protected transmit(radio: SimRadio, payload: Uint8Array, draw: NonNullable<Transmission['draw']>): void {
    const position = this.options.positions(radio.id);
    if (position === undefined) {
      this.core.counters.unplaced++;
      return;
    }
    this.core.counters.sent++;
    this.core.deliver({ from: radio.id, address: radio.address, position, payload, draw });
  }
}
