/**
 * Rebuild an actor's state from its journal alone (full-replay mode,
 * `journal: { snapshots: false }`): a fresh actor is fed every journal event
 * in order and its effects are dropped — nothing is sent, armed, appended or
 * logged — exactly as the host's silent replay on spawn. Needs only the
 * Store: no bus, no scheduler, no host. A `rebuild` CLI uses it to recreate
 * state and report how long that took (the cost of a restart); tests use it
 * to check that a journal reproduces a live actor's state.
 *
 * The journal must begin at seq 1: a compacted journal (JournalIncompleteError)
 * no longer holds the whole history. Time is measured with performance.now()
 * (wall time, not simulated time).
 */
import { createActor, type AnyStateMachine, type Snapshot } from 'xstate';
import type { Store } from '../../actors/ports.ts';
import { MisuseError } from '../../protocol/errors.ts';
import { ActorJournal } from './journal.ts';

export interface RebuildOptions {
  /** Called after every `progressEvery` events (default 100 000) with the count so far: progress for long journals. */
  readonly onProgress?: (events: number) => void;
  readonly progressEvery?: number;
}

export interface Rebuilt {
  /** The actor's snapshot after the last event (status, value, context). */
  readonly snapshot: Snapshot<unknown> & { readonly value?: unknown; readonly context?: unknown };
  /** Shorthand for `snapshot.context`. */
  readonly context: unknown;
  /** The same state as the host would persist it (getPersistedSnapshot). */
  readonly persisted: Snapshot<unknown>;
  /** Journal events applied. */
  readonly events: number;
  /** Wall-clock milliseconds for reading and applying them. */
  readonly ms: number;
}

/** Thrown when the machine fails on a journal event: the journal cannot be replayed to a valid state. */
export class RebuildError extends Error {
  override readonly name = 'RebuildError';
}

/**
 * Replay the journal of the actor at `address` (e.g. `key-server/ks1`; the
 * stream is `journal/<address>`) into a fresh actor of `machine` created with
 * `input`, effects dropped. Resolves with its final state and the cost.
 */
export async function rebuildFromJournal(
  machine: AnyStateMachine,
  input: unknown,
  store: Store,
  address: string,
  options: RebuildOptions = {},
): Promise<Rebuilt> {
  const started = performance.now();
  const every = options.progressEvery ?? 100_000;
  if (!Number.isSafeInteger(every) || every < 1) throw new MisuseError('options.progressEvery', 'must be a positive integer');
  // No listener for emitted effects: they are dropped, which is the point.
  const actor = createActor(machine, { id: address, input });
  let failure: string | undefined;
  actor.subscribe({ error: (err: unknown) => (failure ??= err instanceof Error ? err.message : String(err)) });
  actor.start();
  if (failure !== undefined) throw new RebuildError(`${address}: the machine failed on start: ${failure}`);
  const journal = new ActorJournal(store, address, { snapshots: false });
  let applied = 0;
  const { events } = await journal.replayInto(0, (event) => {
    actor.send(event);
    if (failure !== undefined) throw new RebuildError(`${address}: the machine failed on ${event.type}: ${failure}`);
    if (++applied % every === 0) options.onProgress?.(applied);
  });
  const snapshot = actor.getSnapshot() as Rebuilt['snapshot'];
  const persisted = actor.getPersistedSnapshot();
  actor.stop();
  return { snapshot, context: snapshot.context, persisted, events, ms: performance.now() - started };
}
