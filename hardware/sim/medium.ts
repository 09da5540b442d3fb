/**
 * The simulated air (DESIGN.md "Radio (hardware adapter)"): `SimAir` is the
 * in-memory medium for one process; `AirCore` is the delivery logic it shares
 * with BusAir (hardware/sim/bus-medium.ts), which carries transmissions over
 * the bus for distributed runs.
 *
 * Cost: receivers are kept in a uniform grid whose cells are at least the
 * model's maximum range (plus a slack for movement), so a transmission looks
 * at the 3×3 cells around the sender instead of every radio.
 *
 * Determinism: candidates are visited in attach order whatever the index, and
 * receivers out of range consume no randomness, so the grid and a brute-force
 * scan give identical deliveries, and the same seed gives the same run.
 */
import type { Rng, Scheduler } from '../../actors/ports.ts';
import { MisuseError } from '../../protocol/errors.ts';
import { PropagationModel, distanceM, type LossCause, type Position, type PropagationConfig } from './propagation.ts';
import { SimRadio, type RadioHost, type SimRadioOptions } from './radio.ts';

/** Where a radio is now; undefined = not on the map (neither sends nor hears). */
export type PositionSource = (radioId: string) => Position | undefined;

/** One advertising event, as it travels through the air. */
export interface Transmission {
  /** Sending radio's id. */
  readonly from: string;
  /** Sending radio's link-layer address at the time of the event. */
  readonly address: string;
  readonly position: Position;
  readonly payload: Uint8Array;
}

export interface AirCounters {
  /** Advertising events put in the air (by placed radios). */
  sent: number;
  /** Frames handed to a scanning receiver. */
  delivered: number;
  /** Receiver-frames not delivered, by cause. */
  lost: Record<LossCause, number>;
  /** Advertising events skipped because the sender had no position. */
  unplaced: number;
  /** Listeners that threw (see AirOptions.onListenerError). */
  listenerErrors: number;
}

export interface AirOptions {
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
}

function newCounters(): AirCounters {
  return { sent: 0, delivered: 0, lost: { outOfRange: 0, dutyCycle: 0, loss: 0, sensitivity: 0 }, unplaced: 0, listenerErrors: 0 };
}

/** Uniform grid over receivers (cells by integer x, then y). Rebuilt lazily from the position source. */
class ReceiverGrid {
  private readonly columns = new Map<number, Map<number, SimRadio[]>>();
  private builtAt = Number.NEGATIVE_INFINITY;
  private dirty = true;

  constructor(
    readonly cellSizeM: number,
    private readonly maxAgeMs: number,
  ) {}

  invalidate(): void {
    this.dirty = true;
  }

  /** The non-empty cells within one cell of `p`'s, each in attach (seq) order. */
  near(p: Position, now: number, receivers: Iterable<SimRadio>, positions: PositionSource): SimRadio[][] {
    if (this.dirty || now - this.builtAt >= this.maxAgeMs) this.rebuild(now, receivers, positions);
    const cx = Math.floor(p.x / this.cellSizeM);
    const cy = Math.floor(p.y / this.cellSizeM);
    const lists: SimRadio[][] = [];
    for (let x = cx - 1; x <= cx + 1; x++) {
      const column = this.columns.get(x);
      if (column === undefined) continue;
      for (let y = cy - 1; y <= cy + 1; y++) {
        const cell = column.get(y);
        if (cell !== undefined) lists.push(cell);
      }
    }
    return lists;
  }

  private rebuild(now: number, receivers: Iterable<SimRadio>, positions: PositionSource): void {
    this.columns.clear();
    // Cells hold receivers in seq order, so delivery merges instead of sorting.
    for (const r of [...receivers].sort((a, b) => a.seq - b.seq)) {
      const p = positions(r.id);
      if (p === undefined) continue;
      const x = Math.floor(p.x / this.cellSizeM);
      const y = Math.floor(p.y / this.cellSizeM);
      let column = this.columns.get(x);
      if (column === undefined) this.columns.set(x, (column = new Map<number, SimRadio[]>()));
      const cell = column.get(y);
      if (cell === undefined) column.set(y, [r]);
      else cell.push(r);
    }
    this.builtAt = now;
    this.dirty = false;
  }
}

interface Candidate {
  readonly radio: SimRadio;
  readonly position: Position;
}

/**
 * Merge ≤ 9 seq-sorted lists. A comparator sort of the concatenation costs
 * ~log2(n) callbacks per radio, which dominated when the range covers most
 * of the map; this is a tight integer loop.
 */
function mergeBySeq(lists: readonly Candidate[][]): Candidate[] {
  const nonEmpty = lists.filter((l) => l.length > 0);
  if (nonEmpty.length <= 1) return nonEmpty[0] ?? [];
  const heads = nonEmpty.map((list) => ({ list, i: 0 }));
  const out: Candidate[] = [];
  for (;;) {
    let best: { list: Candidate[]; i: number } | undefined;
    let bestSeq = Number.POSITIVE_INFINITY;
    for (const h of heads) {
      const c = h.list[h.i];
      if (c !== undefined && c.radio.seq < bestSeq) {
        best = h;
        bestSeq = c.radio.seq;
      }
    }
    const next = best?.list[best.i];
    if (best === undefined || next === undefined) return out;
    best.i++;
    out.push(next);
  }
}

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

  constructor(private readonly options: AirOptions) {
    this.model = new PropagationModel(options.propagation);
    const maxAge = options.gridMaxAgeMs ?? 1000;
    const slack = options.gridSlackM ?? 50;
    if (!(maxAge >= 0)) throw new MisuseError('gridMaxAgeMs', 'must be ≥ 0');
    if (!(slack >= 0 && Number.isFinite(slack))) throw new MisuseError('gridSlackM', 'must be a finite number ≥ 0');
    this.grid = (options.index ?? 'grid') === 'grid' ? new ReceiverGrid(this.model.rangeM + slack || 1, maxAge) : undefined;
  }

  /** Cell size that makes a 3×3 neighbourhood cover the model's range plus movement slack, metres. */
  get cellSizeM(): number {
    return this.model.rangeM + (this.options.gridSlackM ?? 50) || 1;
  }

  setScanning(radio: SimRadio, scanning: boolean): void {
    if (scanning) this.scanners.set(radio.id, radio);
    else if (this.scanners.get(radio.id) === radio) this.scanners.delete(radio.id);
    this.grid?.invalidate();
  }

  /** Positions moved (mobility step, teleport): the grid re-reads them on next use. */
  positionsChanged(): void {
    this.grid?.invalidate();
  }

  get scannerCount(): number {
    return this.scanners.size;
  }

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
    const inRange = (radios: Iterable<SimRadio>): Candidate[] => {
      const out: Candidate[] = [];
      for (const radio of radios) {
        if (radio.id === tx.from || !radio.scanning) continue;
        const position = positions(radio.id);
        if (position !== undefined && this.model.inRange(distanceM(tx.position, position))) out.push({ radio, position });
      }
      return out;
    };
    let candidates: Candidate[];
    if (this.grid !== undefined) {
      // Filter each cell first, so the merge sees only the (few) receivers in range.
      candidates = mergeBySeq(this.grid.near(tx.position, now, this.scanners.values(), positions).map(inRange));
    } else {
      candidates = inRange(this.scanners.values());
      candidates.sort((a, b) => a.radio.seq - b.radio.seq); // map order is startScan order
    }
    // Everyone not in range is counted without being visited.
    this.counters.lost.outOfRange += others - candidates.length;
    let firstError: { error: unknown } | undefined;
    for (const { radio, position } of candidates) {
      const outcome = this.model.evaluate(rng, tx.position, position);
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

/** Attach bookkeeping shared by SimAir and BusAir. */
export abstract class AirBase implements RadioHost {
  readonly scheduler: Scheduler;
  readonly rng: Rng;
  protected readonly core: AirCore;
  protected readonly radios = new Map<string, SimRadio>();
  private seq = 0;

  constructor(protected readonly options: AirOptions) {
    this.scheduler = options.scheduler;
    this.rng = options.rng;
    this.core = new AirCore(options);
  }

  get counters(): Readonly<AirCounters> {
    return this.core.counters;
  }

  get model(): PropagationModel {
    return this.core.model;
  }

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
  }

  abstract transmit(radio: SimRadio, payload: Uint8Array): void;

  scanChanged(radio: SimRadio): Promise<void> {
    this.core.setScanning(radio, radio.scanning);
    return Promise.resolve();
  }

  detach(radio: SimRadio): Promise<void> {
    this.core.setScanning(radio, false);
    if (this.radios.get(radio.id) === radio) this.radios.delete(radio.id);
    return Promise.resolve();
  }
}

/** In-memory medium for one process: transmissions are delivered synchronously. */
export class SimAir extends AirBase {
  /** Close every attached radio. */
  async close(): Promise<void> {
    for (const radio of [...this.radios.values()]) await radio.close();
  }

  transmit(radio: SimRadio, payload: Uint8Array): void {
    const position = this.options.positions(radio.id);
    if (position === undefined) {
      this.core.counters.unplaced++;
      return;
    }
    this.core.counters.sent++;
    this.core.deliver({ from: radio.id, address: radio.address, position, payload });
  }
}
