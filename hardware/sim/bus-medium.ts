/**
 * The simulated air for distributed runs (DESIGN.md "Radio", simulated air):
 * each host runs one BusAir for its local radios. An advertising event is
 * published (QoS 0) to `tc/v1/sim/air/<cell>`, the map cell of the sender;
 * each BusAir subscribes to the 3×3 cells around its local scanning radios
 * and runs the same propagation and delivery (AirCore) as SimAir, with the
 * sender's position taken from the message.
 *
 * Cells are at least the model's maximum range (plus movement slack), so the
 * 3×3 neighbourhood of a receiver's cell contains every sender it can hear.
 * All hosts of a run must use the same cell size (the default is derived from
 * the propagation config, so the same config suffices).
 *
 * Subscriptions follow the radios: they are recomputed when a local radio
 * starts/stops scanning or closes, on positionsChanged(), and every
 * `resubscribeEveryMs` of simulated time while a local radio scans. A radio
 * that moves more than the slack between two refreshes can miss frames for
 * that long (QoS 0 air is lossy anyway).
 *
 * A local sender's frames come back through the broker like everyone else's
 * (MQTT 3.1.1 has no "no local"), so local and remote receivers are treated
 * alike; a radio never hears itself because delivery skips `from`.
 *
 * Advertising is eager here (every event of every set is published): which
 * remote radios scan nearby is not known locally, so lazy advertising would
 * need scan presence on the bus. Frame draws come from AirOptions.rng in
 * visiting order (the air message carries no event key).
 */
import type { Bus, BusHandler, Subscription, TimerHandle } from '../../actors/ports.ts';
import { MisuseError, type Rejection } from '../../protocol/errors.ts';
import { AIR_VERSION, decodeAir, encodeAir } from '../../protocol/wire/air.ts';
import { airTopic } from '../../protocol/wire/topics.ts';
import { AirBase, type AirOptions } from './medium.ts';
import type { Position } from './propagation.ts';
import type { SimRadio } from './radio.ts';

export interface BusAirOptions extends AirOptions {
  readonly bus: Bus;
  /** Side of a map cell (one air topic each), metres; ≥ the model's range. Default: range + grid slack. */
  readonly cellSizeM?: number;
  /** Recompute subscriptions this often while a local radio scans, simulated ms; 0 = only on changes. Default 1000. */
  readonly resubscribeEveryMs?: number;
  /** A malformed air message was dropped (it is also counted). */
  readonly onRejected?: (rejection: Rejection, topic: string) => void;
  /** Publishing or (un)subscribing failed (also counted). */
  readonly onBusError?: (error: unknown) => void;
}

export interface BusAirCounters {
  /** Air messages published. */
  published: number;
  /** Air messages received from subscribed cells. */
  received: number;
  /** Received messages dropped as malformed, total and by `codec/reason`. */
  rejected: number;
  readonly rejectedBy: Map<string, number>;
  /** Failed publishes / subscription changes. */
  busErrors: number;
}

/** Topic segment for cell (cx, cy): `3_5`, negatives as `m3_m5` (segments allow only [A-Za-z0-9_.-]). */
export function cellName(cx: number, cy: number): string {
  const part = (n: number): string => (n < 0 ? `m${-n}` : String(n));
  return `${part(cx)}_${part(cy)}`;
}

export class BusAir extends AirBase {
  readonly busCounters: BusAirCounters = { published: 0, received: 0, rejected: 0, rejectedBy: new Map(), busErrors: 0 };
  readonly cellSizeM: number;
  private readonly bus: Bus;
  private readonly resubscribeEveryMs: number;
  private readonly subs = new Map<string, Subscription>();
  /** Subscription changes run one at a time, in call order. */
  private chain: Promise<void> = Promise.resolve();
  private refreshTimer: TimerHandle | undefined;
  private closed = false;

  constructor(private readonly busOptions: BusAirOptions) {
    super(busOptions, false); // eager: remote scanners are unknown here
    this.bus = busOptions.bus;
    this.cellSizeM = busOptions.cellSizeM ?? this.core.cellSizeM;
    if (!Number.isFinite(this.cellSizeM) || this.cellSizeM < this.model.rangeM || this.cellSizeM <= 0) {
      throw new MisuseError('cellSizeM', `must be ≥ the model's range (${this.model.rangeM.toFixed(1)} m) or 3×3 cells miss frames`);
    }
    this.resubscribeEveryMs = busOptions.resubscribeEveryMs ?? 1000;
    if (!(this.resubscribeEveryMs >= 0)) throw new MisuseError('resubscribeEveryMs', 'must be ≥ 0');
  }

  /** Cells currently subscribed, sorted. */
  get subscribedCells(): string[] {
    return [...this.subs.keys()].sort();
  }

  /** The cell a position belongs to. */
  cellOf(p: Position): string {
    return cellName(Math.floor(p.x / this.cellSizeM), Math.floor(p.y / this.cellSizeM));
  }

  override attach(radioId: string, options?: Parameters<AirBase['attach']>[1]): SimRadio {
    if (this.closed) throw new MisuseError('air', 'closed');
    return super.attach(radioId, options);
  }

  protected transmit(radio: SimRadio, payload: Uint8Array): void {
    const position = this.busOptions.positions(radio.id);
    if (position === undefined) {
      this.core.counters.unplaced++;
      return;
    }
    this.core.counters.sent++;
    const bytes = encodeAir({
      v: AIR_VERSION,
      from: radio.id,
      address: radio.address,
      x: position.x,
      y: position.y,
      ...(position.room !== undefined ? { room: position.room } : {}),
      txAt: Math.max(0, Math.floor(this.scheduler.now())),
      payload,
    });
    this.busCounters.published++;
    this.bus.publish(airTopic(this.cellOf(position)), bytes, { qos: 0 }).catch((err: unknown) => this.busError(err));
  }

  override scanChanged(radio: SimRadio): Promise<void> {
    this.scanStateChanged(radio);
    return this.refreshSubscriptions();
  }

  override detach(radio: SimRadio): Promise<void> {
    this.stopAdvertising(radio);
    this.scanStateChanged(radio, false);
    if (this.radios.get(radio.id) === radio) this.radios.delete(radio.id);
    return this.refreshSubscriptions();
  }

  override positionsChanged(): void {
    super.positionsChanged();
    this.refreshSubscriptions().catch((err: unknown) => this.busError(err));
  }

  /** Bring subscriptions in line with where local scanners are now. Resolves when done. */
  refreshSubscriptions(): Promise<void> {
    const run = this.chain.then(() => this.syncSubscriptions());
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Resolves when no subscription change is in flight (register as scheduler quiescence). */
  settled(): Promise<void> {
    return this.chain;
  }

  /** Close every local radio and drop all subscriptions. The bus itself stays open (not ours). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cancelRefreshTimer();
    for (const radio of [...this.radios.values()]) await radio.close();
    await this.refreshSubscriptions();
  }

  private readonly onMessage: BusHandler = (topic, bytes) => {
    this.busCounters.received++;
    const verdict = decodeAir(bytes);
    if (!verdict.ok) {
      this.busCounters.rejected++;
      const key = `${verdict.codec}/${verdict.reason}`;
      this.busCounters.rejectedBy.set(key, (this.busCounters.rejectedBy.get(key) ?? 0) + 1);
      this.busOptions.onRejected?.(verdict, topic);
      return;
    }
    const m = verdict.value;
    const position: Position = m.room !== undefined ? { x: m.x, y: m.y, room: m.room } : { x: m.x, y: m.y };
    this.core.deliver({ from: m.from, address: m.address, position, payload: m.payload });
  };

  private async syncSubscriptions(): Promise<void> {
    const wanted = new Set<string>();
    if (!this.closed) {
      for (const radio of this.core.scanning()) {
        const p = this.busOptions.positions(radio.id);
        if (p === undefined) continue;
        const cx = Math.floor(p.x / this.cellSizeM);
        const cy = Math.floor(p.y / this.cellSizeM);
        for (let dx = -1; dx <= 1; dx++) for (let dy = -1; dy <= 1; dy++) wanted.add(cellName(cx + dx, cy + dy));
      }
    }
    const drop = [...this.subs].filter(([cell]) => !wanted.has(cell));
    for (const [cell] of drop) this.subs.delete(cell);
    const add = [...wanted].filter((cell) => !this.subs.has(cell)).sort();
    // allSettled: keep the subscriptions that did succeed so none leaks; the
    // failed cells are retried on the next refresh.
    const results = await Promise.allSettled([
      ...drop.map(([, sub]) => sub.unsubscribe()),
      ...add.map(async (cell) => {
        this.subs.set(cell, await this.bus.subscribe(airTopic(cell), this.onMessage, { qos: 0 }));
      }),
    ]);
    this.armRefreshTimer();
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason instanceof Error ? failed.reason : new Error(String(failed.reason));
  }

  private armRefreshTimer(): void {
    if (this.closed || this.resubscribeEveryMs === 0 || this.core.scannerCount === 0) {
      this.cancelRefreshTimer();
      return;
    }
    if (this.refreshTimer !== undefined) return;
    this.refreshTimer = this.scheduler.at(this.scheduler.now() + this.resubscribeEveryMs, () => {
      this.refreshTimer = undefined;
      // Radios may have moved: the grid must re-read positions too.
      this.core.positionsChanged();
      this.refreshSubscriptions().catch((err: unknown) => this.busError(err));
    });
  }

  private cancelRefreshTimer(): void {
    if (this.refreshTimer === undefined) return;
    this.scheduler.cancel(this.refreshTimer);
    this.refreshTimer = undefined;
  }

  private busError(err: unknown): void {
    this.busCounters.busErrors++;
    this.busOptions.onBusError?.(err);
  }
}
