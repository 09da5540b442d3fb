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
import { PropagationModel, type LossCause, type Position, type PropagationConfig } from './propagation.ts';
import { SimRadio, type RadioHost, type SimRadioOptions } from './radio.ts';
import { AdvertisingDriver, type Advertiser } from './advertising.ts';
import { KeyedRng, mix } from './schedule.ts';
import { ReceiverGrid, mergeBySeq, samePosition, type Candidate, type PositionSource } from './grid.ts';

export type { PositionSource } from './grid.ts';
/** One advertising event, as it travels through the air. */
export interface Transmission {
  /** Sending radio's id. */
  readonly from: string;
  /** Sending radio's link-layer address at the time of the event. */
  readonly address: string;
  readonly position: Position;
  readonly payload: Uint8Array;
  /** Keys the frame draws per receiver (SimAir); absent = draws from AirOptions.rng in visiting order (BusAir). */
  readonly draw?: { readonly k0: number; readonly k1: number; readonly k: number };
}

/**
 * Every event of every advertising schedule up to now is exactly one of
 * `sent`, `unplaced` or `scheduledSkipped`, so their sum is the same in lazy
 * and eager runs; so are `delivered` and `lost` by every cause but outOfRange.
 */
export interface AirCounters {
  /** Advertising events evaluated by the medium (put in the air by placed radios). */
  sent: number;
  /** Advertising events not evaluated because no scanner could hear them (lazy), or overdue (wall clock). */
  scheduledSkipped: number;
  /** Frames handed to a scanning receiver. */
  delivered: number;
  /** Receiver-frames not delivered, by cause (outOfRange: scanners beyond range of an evaluated event). */
  lost: Record<LossCause, number>;
  /** Evaluated advertising events whose sender had no position (lazy never arms an unplaced sender). */
  unplaced: number;
  /** Listeners that threw (see AirOptions.onListenerError). */
  listenerErrors: number;
}

export interface AirOptions {
  /** A VirtualScheduler's atStepStart, when present, puts air events before other timers of their millisecond. */
  readonly scheduler: Scheduler;
  readonly rng: Rng;
  readonly propagation?: Partial<PropagationConfig>;
  readonly positions: PositionSource;
  /** 'grid' (default) or 'none' (brute force: for tests and benches). */
  readonly index?: 'grid' | 'none';
  /**
   * The grid re-reads positions at least this often (simulated ms), and
   * whenever positionsChanged() is called. Default 1000.
   */
  readonly gridMaxAgeMs?: number;
  /**
   * Extra cell size, metres. The grid stays exact as long as no radio moves
   * more than this between rebuilds (default 50 m: 180 km/h for 1 s). Call
   * positionsChanged() after a teleport.
   */
  readonly gridSlackM?: number;
  /**
   * A listener threw. Default: the error is rethrown after every other
   * receiver got the frame (a listener bug must surface, but must not change
   * what the others hear).
   */
  readonly onListenerError?: (error: unknown, radioId: string) => void;
  /** SimAir: evaluate every advertising event, heard or not (the reference for lazy advertising). Default false. */
  readonly eager?: boolean;
}

const newCounters = (): AirCounters => ({ sent: 0, scheduledSkipped: 0, delivered: 0, lost: { outOfRange: 0, dutyCycle: 0, loss: 0, sensitivity: 0 }, unplaced: 0, listenerErrors: 0 });

/**
 * Delivery shared by SimAir and BusAir: the set of local scanning radios and
 * the propagation model. `deliver` decides, per receiver, whether and how
 * strongly a transmission is heard.
 */
export class AirCore {
  readonly model: PropagationModel;
  readonly counters: AirCounters = newCounters();
  /** Local scanning radios by id (map order is irrelevant: candidates are sorted by seq). */
  private readonly scanners = new Map<string, SimRadio>();
  private readonly grid: ReceiverGrid | undefined;
  /** Cells of rangeM + 2·slack, for "could anyone hear this sender?" (lazy advertising). */
  private readonly wide: ReceiverGrid | undefined;
  private readonly keyed = new KeyedRng();

  constructor(private readonly options: AirOptions) {
    this.model = new PropagationModel(options.propagation);
    const maxAge = options.gridMaxAgeMs ?? 1000;
    const slack = options.gridSlackM ?? 50;
    if (!(maxAge >= 0)) throw new MisuseError('gridMaxAgeMs', 'must be ≥ 0');
    if (!(slack >= 0 && Number.isFinite(slack))) throw new MisuseError('gridSlackM', 'must be a finite number ≥ 0');
    const indexed = (options.index ?? 'grid') === 'grid';
    this.grid = indexed ? new ReceiverGrid(this.model.rangeM + slack || 1, maxAge) : undefined;
    this.wide = indexed ? new ReceiverGrid(this.hearingRadiusM || 1, maxAge) : undefined;
  }

  /** Lazy advertising arms a sender with a scanner this close (range + movement slack of both). */
  get hearingRadiusM(): number {
    return this.model.rangeM + 2 * (this.options.gridSlackM ?? 50);
  }

  /** Whether a scanning radio other than `exceptId` could hear a sender at `p` (walls and movement slack included). */
  scannerNear(p: Position, exceptId: string): boolean {
    // Few scanners: a loop beats rebuilding the grid after every scan change.
    if (this.wide === undefined || this.scanners.size <= 64) return this.anyWithin(this.scanners.values(), p, exceptId);
    for (const cell of this.wide.near(p, this.options.scheduler.now(), this.scanners.values(), this.options.positions)) {
      if (this.anyWithin(cell, p, exceptId)) return true;
    }
    return false;
  }

  // Hot helpers are methods, not closures made per call: the TypeScript loader (esbuild,
  // keepNames) wraps every named closure in a __name() call that redefines its `name`,
  // which cost ~8 % of a city run inside deliver() alone.
  private anyWithin(radios: Iterable<SimRadio>, p: Position, exceptId: string): boolean {
    const { positions } = this.options;
    const slack = this.slackM;
    for (const r of radios) {
      if (r.id === exceptId) continue;
      const q = positions(r.id);
      if (q !== undefined && this.model.couldHear(p, q, slack)) return true;
    }
    return false;
  }

  /** Movement allowed between looks at positions: both ends may move gridSlackM. */
  get slackM(): number {
    return 2 * (this.options.gridSlackM ?? 50);
  }

  private inRange(radios: Iterable<SimRadio>, tx: Transmission): Candidate[] {
    const { positions } = this.options;
    const out: Candidate[] = [];
    for (const radio of radios) {
      if (radio.id === tx.from || !radio.scanning) continue;
      const position = positions(radio.id);
      if (position !== undefined && this.model.couldHear(tx.position, position)) out.push({ radio, position });
    }
    return out;
  }

  /** Re-read positions for the wide grid on its next use. */
  invalidateWide(): void {
    this.wide?.invalidate();
  }

  /** Cell size that makes a 3×3 neighbourhood cover the model's range plus movement slack, metres. */
  get cellSizeM(): number {
    return this.model.rangeM + (this.options.gridSlackM ?? 50) || 1;
  }

  setScanning(radio: SimRadio, scanning: boolean): void {
    if (scanning) this.scanners.set(radio.id, radio);
    else if (this.scanners.get(radio.id) === radio) this.scanners.delete(radio.id);
    this.grid?.invalidate();
    this.wide?.invalidate();
  }

  /** Positions moved (mobility step, teleport): the grid re-reads them on next use. */
  positionsChanged(): void {
    this.grid?.invalidate();
    this.wide?.invalidate();
  }

  get scannerCount(): number { return this.scanners.size; }

  /** Local scanning radios, in no particular order. */
  scanning(): IterableIterator<SimRadio> {
    return this.scanners.values();
  }

  /**
   * Deliver one transmission to every local scanning radio that hears it,
   * in attach order, never to the sender itself (matched by radio id).
   */
  deliver(tx: Transmission): void {
    const { positions, rng, scheduler } = this.options;
    const now = scheduler.now();
    const others = this.scanners.size - (this.scanners.has(tx.from) ? 1 : 0);
    let candidates: Candidate[];
    if (this.grid !== undefined && this.scanners.size > 64) {
      // Filter each cell first, so the merge sees only the (few) receivers in range.
      candidates = mergeBySeq(this.grid.near(tx.position, now, this.scanners.values(), positions).map((cell) => this.inRange(cell, tx)));
    } else {
      // Few scanners (or no grid): a loop beats rebuilding the grid after every scan change.
      candidates = this.inRange(this.scanners.values(), tx);
      candidates.sort((a, b) => a.radio.seq - b.radio.seq); // map order is startScan order
    }
    // Everyone not in range is counted without being visited.
    this.counters.lost.outOfRange += others - candidates.length;
    let firstError: { error: unknown } | undefined;
    const draw = tx.draw;
    for (const { radio, position } of candidates) {
      const r = draw === undefined ? rng : this.keyed.reset(draw.k0, draw.k1, draw.k, radio.idHash);
      const outcome = this.model.evaluate(r, tx.position, position);
      if (!outcome.heard) {
        this.counters.lost[outcome.cause]++;
        continue;
      }
      this.counters.delivered++;
      try {
        radio.deliver({ payload: tx.payload.slice(), rssi: outcome.rssi, at: now, address: tx.address });
      } catch (error) {
        this.counters.listenerErrors++;
        if (this.options.onListenerError !== undefined) this.options.onListenerError(error, radio.id);
        else firstError ??= { error };
      }
    }
    if (firstError !== undefined) throw firstError.error;
  }
}

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
