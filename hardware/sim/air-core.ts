/**
 * The simulated air's shared core (hardware/sim/medium.ts has the header and
 * the media): what a transmission is, the counters, the options, and AirCore —
 * the scanner set, the receiver grids and delivery of one transmission to
 * every local scanner that could hear it.
 */
import type { Rng, Scheduler } from '../../actors/ports.ts';
import { MisuseError } from '../../protocol/errors.ts';
import { PropagationModel, type LossCause, type Position, type PropagationConfig } from './propagation.ts';
import type { SimRadio } from './radio.ts';
import { KeyedRng } from './schedule.ts';
import { ReceiverGrid, mergeBySeq, type Candidate, type PositionSource } from './grid.ts';

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
  /** Frames heard but not reported by the receiving radio: outside its scan window, or a duplicate in the window (ScanOptions). */
  filtered: number;
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

const newCounters = (): AirCounters => ({ sent: 0, scheduledSkipped: 0, delivered: 0, lost: { outOfRange: 0, dutyCycle: 0, loss: 0, sensitivity: 0 }, unplaced: 0, listenerErrors: 0, filtered: 0 });

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
      const frame = { payload: tx.payload, rssi: outcome.rssi, at: now, address: tx.address };
      if (!radio.admits(frame)) {
        this.counters.filtered++;
        continue;
      }
      this.counters.delivered++;
      try {
        radio.deliver({ ...frame, payload: tx.payload.slice() });
      } catch (error) {
        this.counters.listenerErrors++;
        if (this.options.onListenerError !== undefined) this.options.onListenerError(error, radio.id);
        else firstError ??= { error };
      }
    }
    if (firstError !== undefined) throw firstError.error;
  }
}
