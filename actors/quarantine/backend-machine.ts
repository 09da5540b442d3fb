/**
 * The machine shell the quarantine backends share (app backend, police
 * backend, health authority): `idle --host.start--> running --host.stop-->
 * stopped`, and in `running` every handled event goes through one pure
 * reducer that returns the context update and the effects to emit, in order.
 * Per-record state (many quarantines, beacons, alerts at once) lives in
 * context, so the rules are plain functions tested directly.
 *
 * xstate defers emitted events until the new snapshot is committed, so an
 * effect (an ack) never precedes the state change it acknowledges.
 */
import { enqueueActions, setup, type EventObject, type MachineContext } from 'xstate';
import type { Effect } from '../effects.ts';

export interface ReducerStep<C> {
  readonly context: Partial<C>;
  readonly effects: readonly Effect[];
}

export interface BackendMachineSpec<TInput, TContext extends MachineContext, TEvent extends EventObject> {
  readonly id: string;
  readonly initialContext: (input: TInput) => TContext;
  readonly reduce: (context: TContext, event: TEvent) => ReducerStep<TContext>;
  /** Event types handled while running (`timer.*` for all timers); `host.start` here is reduced on the way into running. */
  readonly handles: readonly string[];
}

export function createBackendMachine<TInput, TContext extends MachineContext, TEvent extends EventObject>(spec: BackendMachineSpec<TInput, TContext, TEvent>) {
  const running = Object.fromEntries(spec.handles.filter((type) => type !== 'host.start').map((type) => [type, { actions: 'apply' as const }]));
  const start = spec.handles.includes('host.start') ? { target: 'running' as const, actions: 'apply' as const } : { target: 'running' as const };
  return setup({
    types: {
      input: {} as TInput,
      context: {} as TContext,
      events: {} as TEvent,
      emitted: {} as Effect,
    },
    actions: {
      apply: enqueueActions(({ context, event, enqueue }) => {
        const step = spec.reduce(context, event);
        if (Object.keys(step.context).length > 0) enqueue.assign(step.context);
        for (const effect of step.effects) enqueue.emit(effect);
      }),
    },
  }).createMachine({
    id: spec.id,
    context: ({ input }) => spec.initialContext(input),
    initial: 'idle',
    states: {
      idle: { on: { 'host.start': start } },
      running: { on: { ...running, 'host.stop': { target: 'stopped' } } },
      stopped: { type: 'final' },
    },
  });
}
