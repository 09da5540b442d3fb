/**
 * The journal of a journaled actor (docs/decisions/0002): every input that
 * can change its state is appended durably *before* the machine sees it, so
 * whatever the machine acknowledges afterwards is already durable. A
 * snapshot every `snapshotEvery` events bounds replay; a restart restores the
 * snapshot and replays the journal after it (effects are re-emitted:
 * at-least-once, receivers are idempotent).
 */
import type { Store } from '../../actors/ports.ts';
import { MisuseError } from '../../protocol/errors.ts';
import { decodeVersioned, encodeVersioned } from './snapshots.ts';

/** Events read per page while replaying. */
const REPLAY_PAGE = 1000;

export interface JournalOptions {
  /** Write a snapshot after this many journaled events (default 1000). */
  readonly snapshotEvery?: number;
}

export type JournaledEvent = { readonly type: string; readonly at: number } & Readonly<Record<string, unknown>>;

export class ActorJournal {
  readonly stream: string;
  readonly snapshotEvery: number;
  /** Journal position of the last event applied to the machine. */
  appliedSeq = 0;
  private sinceSnapshot = 0;

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

  snapshotTaken(): void {
    this.sinceSnapshot = 0;
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
