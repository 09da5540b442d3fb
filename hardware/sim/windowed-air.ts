/**
 * Receiver-driven simulated air for large cities of duty-cycled scanners
 * (issue 5's tracing city: 500 phones that each advertise 1–5 times a second
 * but listen only a few seconds a minute).
 *
 * SimAir walks every advertising event a scanner *could* hear; with hundreds
 * of phones toggling short scan windows that is millions of events and scan
 * changes a simulated day. Here nothing happens at advertising events at
 * all: when a receiver's scan window closes, the medium works out which
 * advertising events of the radios near it fell inside the window and
 * evaluates only those, so the cost is (windows × neighbours × events per
 * window) — what the receivers actually hear.
 *
 * That needs a schedule with random access, so the advertising schedule here
 * is closed-form rather than SimAir's cumulative one:
 *     t_k = start + 1 + k·intervalMs + d_k,   d_k = advDelay(setKey, k) ∈ [0, MAX_ADV_DELAY_MS]
 * (the BLE advDelay jitter without its accumulation; which events fall in a
 * window is statistically the same). Event k carries payload k mod n. Frame
 * draws (loss, noise) are keyed by (set, k, receiver) as in SimAir.
 *
 * Approximations, chosen for the city where phones stand still for minutes:
 * positions are read when the window closes (a radio that moved during a
 * window is heard from where it ended up; call positionsChanged() after
 * moving radios); a window cut short by stopScan
 * reports nothing. Frames reach the radio at the window's end, with `at` =
 * their own advertising time, in time order. Continuous scans report every
 * `continuousReportMs`.
 */
import type { Rng, Scheduler, TimerHandle } from '../../actors/ports.ts';
import { MisuseError } from '../../protocol/errors.ts';
import type { PositionSource } from './grid.ts';
import { PropagationModel, type LossCause, type Position, type PropagationConfig } from './propagation.ts';
import { SimRadio, type RadioHost, type SimRadioOptions } from './radio.ts';
import { advDelay, KeyedRng, MAX_ADV_DELAY_MS, mix, type SetKey } from './schedule.ts';

export interface WindowedAirOptions {
  readonly scheduler: Scheduler;
  readonly rng: Rng;
  readonly propagation?: Partial<PropagationConfig>;
  readonly positions: PositionSource;
  /** Report period of scans without a duty cycle, ms. Default 1000. */
  readonly continuousReportMs?: number;
}

export interface WindowedAirCounters {
  /** Scan windows closed (each one looked at its neighbours). */
  windows: number;
  /** (advertising event, receiver) pairs evaluated: events inside a window of a receiver in range. */
  evaluated: number;
  delivered: number;
  /**
   * Heard, but not reported by the receiver (a duplicate in the window under
   * filterDuplicates). Events after every payload of a set was heard in the
   * window are not evaluated at all, so this counts only duplicates of
   * payloads that repeat within a set.
   */
  filtered: number;
  lost: Record<LossCause, number>;
  listenerErrors: number;
}

/** One advertise() call: its closed-form schedule and the address it went out with. */
interface AdvertisingSet {
  readonly key: SetKey;
  readonly startedAt: number;
  readonly intervalMs: number;
  readonly payloads: readonly Uint8Array[];
  readonly address: string;
  endedAt: number;
}

/** A frame heard in a window; handed to the radio as its ReceivedFrame (one object per frame). */
interface Heard {
  readonly at: number;
  readonly seq: number;
  payload: Uint8Array;
  readonly address: string;
  readonly rssi: number;
}

const CELL_KEY_SCALE = 1 << 20;

export class WindowedAir implements RadioHost {
  readonly scheduler: Scheduler;
  readonly rng: Rng;
  readonly model: PropagationModel;
  readonly counters: WindowedAirCounters = { windows: 0, evaluated: 0, delivered: 0, filtered: 0, lost: { outOfRange: 0, dutyCycle: 0, loss: 0, sensitivity: 0 }, listenerErrors: 0 };
  private readonly radios = new Map<string, SimRadio>();
  /** Recent sets per radio, oldest first: the current one (endedAt = ∞) and those a window may still cover. */
  private readonly sets = new Map<SimRadio, AdvertisingSet[]>();
  private readonly setsStarted = new Map<string, number>();
  private readonly windowTimers = new Map<SimRadio, TimerHandle>();
  private readonly keyed = new KeyedRng();
  private readonly seedWords: readonly [number, number];
  private readonly continuousReportMs: number;
  private readonly cellM: number;
  private grid: Map<number, SimRadio[]> | undefined;
  private longestWindowMs: number;
  private seq = 0;

  constructor(private readonly options: WindowedAirOptions) {
    this.scheduler = options.scheduler;
    this.rng = options.rng;
    this.model = new PropagationModel(options.propagation);
    this.seedWords = [options.rng.uint32(), options.rng.uint32()];
    this.continuousReportMs = options.continuousReportMs ?? 1000;
    if (!Number.isSafeInteger(this.continuousReportMs) || this.continuousReportMs <= 0) throw new MisuseError('continuousReportMs', 'must be a positive integer (ms)');
    this.cellM = Math.max(1, this.model.rangeM);
    this.longestWindowMs = this.continuousReportMs;
  }

  attach(radioId: string, options: SimRadioOptions = {}): SimRadio {
    if (typeof radioId !== 'string' || radioId.length === 0) throw new MisuseError('radioId', 'must be a non-empty string');
    if (this.radios.has(radioId)) throw new MisuseError('radioId', `${JSON.stringify(radioId)} is already attached`);
    const radio = new SimRadio(radioId, this.seq++, this, options);
    this.radios.set(radioId, radio);
    return radio;
  }

  /** Positions moved: the neighbour grid re-reads them at the next window. */
  positionsChanged(): void {
    this.grid = undefined;
  }

  async close(): Promise<void> {
    for (const radio of [...this.radios.values()]) await radio.close();
  }

  // ---------------------------------------------------------------- RadioHost

  startAdvertising(radio: SimRadio, payloads: readonly Uint8Array[], intervalMs: number): void {
    const now = this.scheduler.now();
    this.endCurrentSet(radio, now);
    const n = this.setsStarted.get(radio.id) ?? 0;
    this.setsStarted.set(radio.id, n + 1);
    const [s0, s1] = this.seedWords;
    const key = { k0: mix(s0, radio.idHash, n), k1: mix(s1, radio.idHash, n, 1) };
    const list = this.sets.get(radio) ?? [];
    if (list.length === 0) this.grid = undefined; // a new advertiser for the grid
    list.push({ key, startedAt: now, intervalMs, payloads, address: radio.address, endedAt: Number.POSITIVE_INFINITY });
    this.sets.set(radio, this.recent(list, now));
  }

  stopAdvertising(radio: SimRadio): void {
    this.endCurrentSet(radio, this.scheduler.now());
  }

  scanChanged(radio: SimRadio): Promise<void> {
    const timer = this.windowTimers.get(radio);
    if (timer !== undefined) this.scheduler.cancel(timer);
    this.windowTimers.delete(radio);
    const scan = radio.scanWindows;
    if (scan !== undefined) {
      const windowMs = Number.isFinite(scan.intervalMs) ? scan.windowMs : this.continuousReportMs;
      this.longestWindowMs = Math.max(this.longestWindowMs, windowMs);
      this.armWindow(radio, 0);
    }
    return Promise.resolve();
  }

  detach(radio: SimRadio): Promise<void> {
    const timer = this.windowTimers.get(radio);
    if (timer !== undefined) this.scheduler.cancel(timer);
    this.windowTimers.delete(radio);
    this.sets.delete(radio);
    if (this.radios.get(radio.id) === radio) this.radios.delete(radio.id);
    this.grid = undefined;
    return Promise.resolve();
  }

  // ---------------------------------------------------------------- windows

  /** Window `j` of the radio's scan: [from, to). Continuous scans are cut into report periods. */
  private windowOf(radio: SimRadio, j: number): { from: number; to: number } | undefined {
    const scan = radio.scanWindows;
    if (scan === undefined) return undefined;
    if (!Number.isFinite(scan.intervalMs)) {
      const from = scan.startedAt + j * this.continuousReportMs;
      return { from, to: from + this.continuousReportMs };
    }
    const from = scan.startedAt + j * scan.intervalMs;
    return { from, to: from + scan.windowMs };
  }

  private armWindow(radio: SimRadio, j: number): void {
    const window = this.windowOf(radio, j);
    if (window === undefined) return;
    const scan = radio.scanWindows;
    this.windowTimers.set(radio, this.scheduler.at(window.to, () => {
      this.windowTimers.delete(radio);
      if (radio.scanWindows !== scan) return; // superseded (scanChanged re-armed)
      this.closeWindow(radio, window.from, window.to);
      this.armWindow(radio, j + 1);
    }));
  }

  private closeWindow(rx: SimRadio, from: number, to: number): void {
    this.counters.windows++;
    const p = this.options.positions(rx.id);
    if (p === undefined) return;
    const heard: Heard[] = [];
    for (const tx of this.neighbours(p)) {
      if (tx === rx) continue;
      const q = this.options.positions(tx.id);
      if (q === undefined) continue;
      if (!this.model.couldHear(q, p)) continue;
      for (const set of this.sets.get(tx) ?? []) this.hear(set, tx, rx, q, p, from, to, heard);
    }
    heard.sort((a, b) => a.at - b.at || a.seq - b.seq);
    let firstError: { error: unknown } | undefined;
    for (const h of heard) {
      if (!rx.admits(h)) {
        this.counters.filtered++;
        continue;
      }
      this.counters.delivered++;
      try {
        // Each receiver gets its own copy: a listener may keep or change it (SimAir does the same).
        h.payload = h.payload.slice();
        rx.deliver(h);
      } catch (error) {
        this.counters.listenerErrors++;
        firstError ??= { error };
      }
    }
    if (firstError !== undefined) throw firstError.error;
  }

  /** The set's events in [from, to) ∩ [startedAt, endedAt), evaluated at the receiver. */
  private hear(set: AdvertisingSet, tx: SimRadio, rx: SimRadio, q: Position, p: Position, from: number, to: number, out: Heard[]): void {
    const end = Math.min(to, set.endedAt);
    const base = set.startedAt + 1;
    if (end <= base || from >= end) return;
    const interval = set.intervalMs;
    const kMin = Math.max(0, Math.ceil((from - base - MAX_ADV_DELAY_MS) / interval));
    const kMax = Math.floor((end - 1 - base) / interval);
    const n = set.payloads.length;
    // A receiver that filters duplicates reports only the first heard event of each payload in
    // the window: once every payload was heard, later events cannot change what it reports.
    const dedupe = rx.scanWindows?.filterDuplicates === true;
    let unheard = n;
    const heardPayload = dedupe ? new Uint8Array(n) : undefined;
    for (let k = kMin; k <= kMax && unheard > 0; k++) {
      const t = base + k * interval + advDelay(set.key, k);
      if (t < from || t >= end) continue;
      this.counters.evaluated++;
      const outcome = this.model.evaluate(this.keyed.reset(set.key.k0, set.key.k1, k, rx.idHash), q, p);
      if (!outcome.heard) {
        this.counters.lost[outcome.cause]++;
        continue;
      }
      const slot = k % n;
      if (heardPayload !== undefined) {
        if (heardPayload[slot] === 1) continue;
        heardPayload[slot] = 1;
        unheard--;
      }
      const payload = set.payloads[slot];
      if (payload !== undefined) out.push({ at: t, seq: tx.seq, payload, address: set.address, rssi: outcome.rssi });
    }
  }

  // ---------------------------------------------------------------- neighbours

  private neighbours(p: Position): SimRadio[] {
    const grid = this.currentGrid();
    const cx = Math.floor(p.x / this.cellM);
    const cy = Math.floor(p.y / this.cellM);
    const out: SimRadio[] = [];
    for (let x = cx - 1; x <= cx + 1; x++) {
      for (let y = cy - 1; y <= cy + 1; y++) {
        const cell = grid.get(x * CELL_KEY_SCALE + y);
        if (cell !== undefined) out.push(...cell);
      }
    }
    return out;
  }

  /**
   * Advertisers by cell, rebuilt when the advertiser set changed or after
   * positionsChanged() — which callers must call after moving radios (the
   * city moves phones only at stay boundaries, so a rebuild per move is cheap
   * where re-reading 500 positions per window would not be).
   */
  private currentGrid(): Map<number, SimRadio[]> {
    if (this.grid !== undefined) return this.grid;
    const grid = new Map<number, SimRadio[]>();
    for (const radio of this.sets.keys()) {
      const p = this.options.positions(radio.id);
      if (p === undefined) continue;
      const key = Math.floor(p.x / this.cellM) * CELL_KEY_SCALE + Math.floor(p.y / this.cellM);
      const cell = grid.get(key);
      if (cell === undefined) grid.set(key, [radio]);
      else cell.push(radio);
    }
    this.grid = grid;
    return grid;
  }

  private endCurrentSet(radio: SimRadio, now: number): void {
    const list = this.sets.get(radio);
    const current = list?.[list.length - 1];
    if (current !== undefined && current.endedAt > now) current.endedAt = now;
  }

  /** Drop sets that ended before any window still open could have begun. */
  private recent(list: AdvertisingSet[], now: number): AdvertisingSet[] {
    const horizon = now - this.longestWindowMs - MAX_ADV_DELAY_MS;
    return list.filter((s) => s.endedAt > horizon);
  }
}
