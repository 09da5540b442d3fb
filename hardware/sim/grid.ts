/**
 * Uniform grid over the scanning receivers of a medium (hardware/sim/medium.ts):
 * cells at least the model's maximum range (plus movement slack) wide, so the
 * 3×3 cells around a sender hold every receiver that can hear it.
 */
import type { Position } from './propagation.ts';
import type { SimRadio } from './radio.ts';

/** Where a radio is now; undefined = not on the map (neither sends nor hears). */
export type PositionSource = (radioId: string) => Position | undefined;

export function samePosition(a: Position | undefined, b: Position | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a.x === b.x && a.y === b.y && a.room === b.room);
}

/** Uniform grid over receivers (cells by integer x, then y). Rebuilt lazily from the position source. */
export class ReceiverGrid {
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

export interface Candidate {
  readonly radio: SimRadio;
  readonly position: Position;
}

/**
 * Merge ≤ 9 seq-sorted lists. A comparator sort of the concatenation costs
 * ~log2(n) callbacks per radio, which dominated when the range covers most
 * of the map; this is a tight integer loop.
 */
export function mergeBySeq(lists: readonly Candidate[][]): Candidate[] {
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

