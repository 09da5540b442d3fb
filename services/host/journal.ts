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
}

export type JournaledEvent = { readonly type: string; readonly at: number } & Readonly<Record<string, unknown>>;

export class ActorJournal {
  readonly stream: string;
  readonly snapshotEvery: number;
  readonly compact: boolean;
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
    this.snapshotEvery = options.snapshotEvery ?? 1000;
    if (!Number.isSafeInteger(this.snapshotEvery) || this.snapshotEvery < 1) {
      throw new MisuseError('journal.snapshotEvery', 'must be a positive integer');
    }
    const compact: unknown = options.compact ?? true;
    if (typeof compact !== 'boolean') throw new MisuseError('journal.compact', 'must be a boolean');
    this.compact = compact;
  }

  /** Durably append `event`; resolves with its journal position. */
  append(event: JournaledEvent): Promise<number> {
    return this.store.append(this.stream, encodeVersioned(event));
  }

  /** Record that the event at `seq` was applied; true when a snapshot is due. */
  applied(seq: number): boolean {
    this.appliedSeq = seq;
    this.sinceSnapshot++;
    return this.sinceSnapshot >= this.snapshotEvery;
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

  /** Events after `afterSeq`, in order, page by page. */
  async *replay(afterSeq: number): AsyncGenerator<{ seq: number; event: JournaledEvent }> {
    let cursor = afterSeq;
    for (;;) {
      const page = await this.store.read(this.stream, cursor, REPLAY_PAGE);
      for (const { seq, record } of page) {
        cursor = seq;
        yield { seq, event: decodeVersioned(record) as JournaledEvent };
      }
      if (page.length < REPLAY_PAGE) return;
    }
  }
}
