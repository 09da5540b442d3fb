/**
 * The journal of a journaled actor (docs/decisions/0002): every input that
 * can change its state is appended durably *before* the machine sees it, so
 * whatever the machine acknowledges afterwards is already durable. A
 * snapshot every `snapshotEvery` events bounds replay; a restart restores the
 * snapshot and replays the journal after it (effects are re-emitted:
 * at-least-once, receivers are idempotent).
 *
 * Compaction: once a snapshot is durable, the journal events it includes are
 * never read again, so they are truncated (Store.truncate) and the journal
 * holds about `snapshotEvery` events at most. Order matters: snapshot put
 * first, truncate only after it resolved — a crash in between leaves the
 * snapshot and the whole journal, and replay starts after the snapshot's seq
 * anyway. Journal seqs keep counting after a truncate (Store contract), so
 * events appended after a restart still come after the snapshot's seq.
 *
 * Full-replay mode (`snapshots: false`): the journal is the whole source of
 * truth, as an event-sourced backend's event log is. No snapshot is written or
 * read, nothing is compacted (compacting without a snapshot would destroy
 * state), and a restart replays the journal from seq 1 — silently, see
 * host.ts. A journal whose first record is not seq 1 was compacted under
 * another mode: replaying it from the start would build the wrong state, so
 * it is refused (JournalIncompleteError) rather than replayed.
 *
 * Appends are pipelined (intake.ts): several may be in flight, so one
 * SqliteStore transaction commits many; events are applied in journal order.
 */
import type { Store } from '../../actors/ports.ts';
import { MisuseError } from '../../protocol/errors.ts';
import { decodeVersioned, encodeVersioned } from './snapshots.ts';

/** Events read per page while replaying. */
const REPLAY_PAGE = 1000;

export interface JournalOptions {
  /** Write a snapshot after this many journaled events (default 1000). */
  readonly snapshotEvery?: number;
  /**
   * Truncate the journal through a snapshot's position once the snapshot is
   * durable (default true). False keeps every event (e.g. to inspect a run).
   */
  readonly compact?: boolean;
  /**
   * Snapshots bound replay (default true). False = full-replay mode: the
   * journal alone is the state; no snapshot is ever written or restored, the
   * journal is never compacted (so `compact: true` is refused, and so is
   * `snapshotEvery`, which would mean nothing), and a restart replays every
   * event from the beginning with its effects dropped.
   */
  readonly snapshots?: boolean;
}

export type JournaledEvent = { readonly type: string; readonly at: number } & Readonly<Record<string, unknown>>;

/** A full replay found the journal's beginning gone (compacted): its state cannot be rebuilt from it. */
export class JournalIncompleteError extends Error {
  override readonly name = 'JournalIncompleteError';
}

export class ActorJournal {
  readonly stream: string;
  readonly snapshotEvery: number;
  readonly compact: boolean;
  readonly snapshots: boolean;
  /** Journal position of the last event applied to the machine. */
  appliedSeq = 0;
  private sinceSnapshot = 0;
  /** Highest position a truncate was issued through (this process). */
  private compactedThrough = 0;

  constructor(
    private readonly store: Store,
    address: string,
    options: JournalOptions = {},
  ) {
    this.stream = `journal/${address}`;
    const snapshots: unknown = options.snapshots ?? true;
    if (typeof snapshots !== 'boolean') throw new MisuseError('journal.snapshots', 'must be a boolean');
    this.snapshots = snapshots;
    if (!snapshots && options.snapshotEvery !== undefined) {
      throw new MisuseError('journal.snapshotEvery', 'means nothing with snapshots: false (no snapshot is ever written)');
    }
    this.snapshotEvery = options.snapshotEvery ?? 1000;
    if (!Number.isSafeInteger(this.snapshotEvery) || this.snapshotEvery < 1) {
      throw new MisuseError('journal.snapshotEvery', 'must be a positive integer');
    }
    const compact: unknown = options.compact ?? snapshots;
    if (typeof compact !== 'boolean') throw new MisuseError('journal.compact', 'must be a boolean');
    // Compaction forgets what a snapshot covers; without snapshots it would forget state.
    if (compact && !snapshots) throw new MisuseError('journal.compact', 'cannot be true with snapshots: false (the journal is the only copy of the state)');
    this.compact = compact;
  }

  /** Durably append `event`; resolves with its journal position. */
  append(event: JournaledEvent): Promise<number> {
    return this.store.append(this.stream, encodeVersioned(event));
  }

  /** Record that the event at `seq` was applied; true when a snapshot is due (never in full-replay mode). */
  applied(seq: number): boolean {
    this.appliedSeq = seq;
    this.sinceSnapshot++;
    return this.snapshots && this.sinceSnapshot >= this.snapshotEvery;
  }

  /** Whether the journal holds any event (full-replay mode: restore, or start fresh). */
  async hasEvents(): Promise<boolean> {
    return (await this.store.read(this.stream, 0, 1)).length > 0;
  }

  /**
   * Call once a snapshot that includes the journal through `journalSeq` is
   * durable: restarts the snapshot countdown and, when compacting, forgets
   * the events it covers. Resolves when the truncate is durable; a rejection
   * only means the journal keeps those events (the next snapshot retries).
   */
  async snapshotTaken(journalSeq: number): Promise<void> {
    this.sinceSnapshot = 0;
    if (!this.compact || journalSeq <= this.compactedThrough) return;
    this.compactedThrough = journalSeq;
    await this.store.truncate(this.stream, journalSeq);
  }

  /**
   * Apply every event after `afterSeq` (a snapshot's position; 0 = all) in
   * order, recording each as applied. Full-replay mode insists the journal
   * still begins at seq 1. Returns how many events and how long it took.
   */
  async replayInto(afterSeq: number, apply: (event: JournaledEvent) => void): Promise<{ events: number; ms: number }> {
    const started = performance.now();
    this.appliedSeq = afterSeq;
    let events = 0;
    for await (const { seq, event } of this.replay(afterSeq, !this.snapshots)) {
      apply(event);
      this.applied(seq);
      events++;
    }
    return { events, ms: performance.now() - started };
  }

  /**
   * Events after `afterSeq`, in order, page by page. `fromStart` (full
   * replay) insists the journal still begins at seq 1.
   */
  async *replay(afterSeq: number, fromStart = false): AsyncGenerator<{ seq: number; event: JournaledEvent }> {
    let cursor = afterSeq;
    for (;;) {
      const page = await this.store.read(this.stream, cursor, REPLAY_PAGE);
      const first = page[0]?.seq;
      if (fromStart && cursor === 0 && first !== undefined && first !== 1) {
        throw new JournalIncompleteError(`${this.stream} starts at seq ${first}: it was compacted, a full replay would miss events 1–${first - 1}`);
      }
      for (const { seq, record } of page) {
        cursor = seq;
        yield { seq, event: decodeVersioned(record) as JournaledEvent };
      }
      if (page.length < REPLAY_PAGE) return;
    }
  }
}
