/**
 * A started machine under test: collects every emitted effect, and `send`
 * returns the effects one event produced.
 */
import { createActor, type AnyStateMachine, type EventObject } from 'xstate';
import type { Effect } from '../../actors/effects.ts';

export interface Harness<C, E extends EventObject> {
  readonly actor: ReturnType<typeof createActor<AnyStateMachine>>;
  readonly effects: Effect[];
  send(event: E): Effect[];
  ctx(): C;
}

/** Create, start and send `host.start` at `at`. */
export function startMachine<C, E extends EventObject>(machine: AnyStateMachine, input: unknown, at: number): Harness<C, E> {
  const actor = createActor(machine, { input });
  const effects: Effect[] = [];
  actor.on('*', (e: Effect) => effects.push(e));
  actor.start();
  actor.send({ type: 'host.start', at });
  return {
    actor,
    effects,
    send(event) {
      const from = effects.length;
      actor.send(event);
      return effects.slice(from);
    },
    ctx: () => (actor.getSnapshot() as { context: C }).context,
  };
}
