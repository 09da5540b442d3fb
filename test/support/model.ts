/**
 * Model-based testing helper (DESIGN.md: every machine is tested through
 * xstate/graph paths, including persist → restore). For every shortest path
 * to every reachable state, replay the events on a live actor, collect the
 * emitted effects, check the caller's invariants after each step, and check
 * that the persisted snapshot survives the host's snapshot codec unchanged.
 * Shortest paths never take a self-loop (an event that leaves the abstract
 * state as it was, e.g. host.resume); `everyEvent` also sends every event
 * once from the end of every path that is not final, on an actor restored
 * from its snapshot.
 */
import { createActor, type Actor, type AnyStateMachine, type EventObject } from 'xstate';
import { getShortestPaths } from 'xstate/graph';
import { expect } from 'vitest';
import type { Effect } from '../../actors/effects.ts';
import { decodeSnapshot, encodeSnapshot } from '../../services/host/snapshots.ts';

export interface StepView<C> {
  readonly state: unknown;
  readonly context: C;
  /** State value and context just before `event`. */
  readonly before: { readonly state: unknown; readonly context: C };
  readonly event: EventObject;
  readonly effects: readonly Effect[];
}

export interface ModelOptions<C, E extends EventObject> {
  readonly input?: unknown;
  readonly events: readonly E[];
  /** Abstract a snapshot to a state key (default: state value as JSON). */
  readonly serialize?: (value: unknown, context: C) => string;
  readonly invariant: (step: StepView<C>) => void;
  /** Also send every event once from the end of every path (self-loops, edges to already reached states). */
  readonly everyEvent?: boolean;
}

/** Returns the set of state keys reached (so tests can assert coverage). */
export function exploreModel<C, E extends EventObject = EventObject>(machine: AnyStateMachine, options: ModelOptions<C, E>): Set<string> {
  const serialize = options.serialize ?? ((value: unknown) => JSON.stringify(value));
  const paths = getShortestPaths(machine, {
    input: options.input,
    events: [...options.events] as EventObject[],
    serializeState: (snapshot) => serialize((snapshot as { value: unknown }).value, (snapshot as { context: C }).context),
  });
  const reached = new Set<string>();
  const step = (actor: Actor<AnyStateMachine>, effects: Effect[], event: EventObject): void => {
    const prior = actor.getSnapshot() as { value: unknown; context: C };
    effects.length = 0;
    actor.send(event);
    const snap = actor.getSnapshot() as { value: unknown; context: C };
    options.invariant({ state: snap.value, context: snap.context, before: { state: prior.value, context: prior.context }, event, effects: [...effects] });
    // persist → restore through the host's codec yields the same state.
    const restored = restore(machine, options.input, actor);
    restored.start();
    const again = restored.getSnapshot() as { value: unknown; context: C };
    expect(again.value).toEqual(snap.value);
    expect(normalise(again.context)).toEqual(normalise(snap.context));
    restored.stop();
  };
  for (const path of paths) {
    const actor = createActor(machine, { input: options.input });
    const effects: Effect[] = [];
    actor.on('*', (e: Effect) => effects.push(e));
    actor.start();
    for (const s of path.steps) {
      const event = s.event as EventObject;
      if (event.type === 'xstate.init') continue;
      step(actor, effects, event);
    }
    reached.add(serialize(path.state.value, path.state.context as C));
    // A final state takes no events (xstate refuses them), so there is nothing to extend.
    const done = (actor.getSnapshot() as { status: string }).status === 'done';
    for (const event of options.everyEvent === true && !done ? options.events : []) {
      const fork = restore(machine, options.input, actor);
      const forkEffects: Effect[] = [];
      fork.on('*', (e: Effect) => forkEffects.push(e));
      fork.start();
      step(fork, forkEffects, event);
      fork.stop();
    }
    actor.stop();
  }
  return reached;
}

function restore(machine: AnyStateMachine, input: unknown, actor: Actor<AnyStateMachine>): Actor<AnyStateMachine> {
  return createActor(machine, { input, snapshot: decodeSnapshot(encodeSnapshot(actor.getPersistedSnapshot())).snapshot });
}

/** Buffers from msgpack decode compare equal to Uint8Arrays of the same bytes. */
function normalise(value: unknown): unknown {
  if (value instanceof Uint8Array) return Array.from(value);
  if (Array.isArray(value)) return value.map(normalise);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalise(v)]));
  return value;
}
