/**
 * The actor host: runs any number of actors in one process and interprets
 * the effects they emit (actors/effects.ts) with real adapters — Bus,
 * Scheduler, Radio, Store, Logger. It is the only place where a machine's
 * decisions touch the world.
 *
 * - Inbox: each actor is subscribed to `tc/v1/<role>/<id>/inbox`; envelopes
 *   and bodies are decoded and checked before the machine sees
 *   `msg.<type>`; rejections are counted and logged, never thrown.
 * - Timers: `timer.set` arms the scheduler; deadlines live in context too.
 * - Persistence: `persist` writes snapshots; `spawn` restores, `host.resume`s.
 * - Journaled actors (journal.ts, intake.ts): inputs are journaled (appends
 *   pipelined: a burst shares one commit) and applied in journal order.
 *   `spawn` replays the journal after the snapshot or, with `journal: {
 *   snapshots: false }`, all of it *silently* (re-emitting a history would
 *   resend every reply ever made), then re-arms timers, sends `host.resume`.
 * - Admission (intake.ts): `admit` and `maxPending` refuse a decoded message
 *   before it is journaled; refusals are counted as `admit.<reason>`.
 */
import { createActor, type AnyActorRef, type AnyStateMachine } from 'xstate';
import type { BusSendEffect, Effect, TimedContext } from '../../actors/effects.ts';
import type { BlobStore, Bus, Logger, Radio, Scheduler, Store, Subscription, TimerHandle } from '../../actors/ports.ts';
import { MisuseError } from '../../protocol/errors.ts';
import { decodeEnvelope } from '../../protocol/wire/envelope.ts';
import type { MessageRegistry } from '../../protocol/wire/messages.ts';
import { actorAddress, inboxTopic, type Role } from '../../protocol/wire/topics.ts';
import { admitted, checkAdmission, JournalIntake, StartGate, type Admission } from './intake.ts';
import { ActorJournal, type JournaledEvent, type JournalOptions } from './journal.ts';
import { outgoingEnvelope, publishBlobs } from './outbox.ts';
import { radioEffect } from './radio-effects.ts';
import { decodeSnapshot, encodeSnapshot, snapshotKey } from './snapshots.ts';
import { WorkTracker } from './work.ts';

/** `admit` and `maxPending` (Admission, intake.ts) refuse bus messages before they are journaled. */
export interface ActorSpec extends Admission {
  readonly role: Role;
  readonly id: string;
  readonly machine: AnyStateMachine;
  readonly input?: unknown;
  /**
   * Journal every state-changing input (`msg.*`, `timer.*`) durably before the
   * machine sees it (acknowledged = durable; docs/decisions/0002). Needs a store.
   */
  readonly journal?: JournalOptions;
  /**
   * Topics delivered to this actor besides its inbox (e.g. an app backend's
   * `tokens`/`quarantine`/`control` channels). The host subscribes them at
   * spawn, so a restored actor has them before its first input.
   */
  readonly subscribe?: readonly string[];
}

/** What the host exposes of an actor's snapshot; callers cast `context` to the machine's type. */
export interface ActorView {
  readonly value: unknown;
  readonly status: 'active' | 'done' | 'error' | 'stopped';
  readonly context: unknown;
}

export interface HostOptions {
  readonly scheduler: Scheduler;
  readonly bus: Bus;
  readonly messages: MessageRegistry;
  readonly logger: Logger;
  /** Where snapshots are persisted; without it `persist` is a no-op. */
  readonly store?: Store;
  /** Radio for an actor that uses one (created lazily on first radio effect). */
  readonly radioFor?: (spec: ActorSpec) => Radio;
  /** Where `blob.publish` writes (e.g. the key server's distribution directory). */
  readonly blobs?: BlobStore;
}

export interface HostStats {
  received: number;
  rejectedEnvelopes: number;
  rejectedBodies: number;
  /** Refused by `admit` or `maxPending` (detail in `rejections['admit.<reason>']`). */
  rejectedAdmissions: number;
  sent: number;
  actorErrors: number;
  effectErrors: number;
  readonly rejections: Record<string, number>;
}

interface Running {
  readonly spec: ActorSpec;
  readonly address: string;
  readonly actor: AnyActorRef;
  readonly timers: Map<string, TimerHandle>;
  readonly subscriptions: Subscription[];
  radio: Radio | undefined;
  sendCount: number;
  failed: boolean;
  readonly journal: ActorJournal | undefined;
  /** A journaled actor's inputs: pipelined appends, applied in journal order. */
  intake: JournalIntake | undefined;
  /** Unjournaled actors: inputs held until host.start / host.resume. */
  readonly gate: StartGate<JournaledEvent>;
  /** Replaying a whole journal: emitted effects are dropped, not interpreted. */
  silent: boolean;
}

export class Host {
  readonly stats: HostStats = {
    received: 0,
    rejectedEnvelopes: 0,
    rejectedBodies: 0,
    rejectedAdmissions: 0,
    sent: 0,
    actorErrors: 0,
    effectErrors: 0,
    rejections: {},
  };
  private readonly actors = new Map<string, Running>();
  private readonly work = new WorkTracker();
  private stopped = false;

  constructor(private readonly options: HostOptions) {}

  /** Resolves when no effect is still being carried out (for the virtual scheduler). */
  idle(): Promise<void> {
    return this.work.idle();
  }

  /** Count of asynchronous work ever started (VirtualScheduler.addQuiescence's `activity`). */
  activity(): number {
    return this.work.started;
  }

  /** Start an actor, restoring its persisted snapshot when the store has one. */
  async spawn(spec: ActorSpec): Promise<void> {
    if (this.stopped) throw new MisuseError('spawn', 'the host is stopped');
    const key = `${spec.role}/${spec.id}`;
    if (this.actors.has(key)) throw new MisuseError('spec.id', `${key} is already running`);
    const address = actorAddress(spec.role, spec.id);
    const store = this.options.store;
    if (spec.journal !== undefined && store === undefined) throw new MisuseError('store', `${address} is journaled but the host has no store`);
    checkAdmission(spec);
    const journal = spec.journal === undefined || store === undefined ? undefined : new ActorJournal(store, address, spec.journal);
    // Full-replay mode never reads a snapshot: the journal alone is the state.
    const stored = journal?.snapshots === false ? undefined : await store?.get(snapshotKey(address));
    const restored = stored === undefined ? undefined : decodeSnapshot(stored);
    const snapshot = restored?.snapshot;
    const actor = createActor(spec.machine, {
      id: address,
      input: spec.input,
      ...(snapshot !== undefined ? { snapshot } : {}),
    });
    const running: Running = {
      spec,
      address,
      actor,
      timers: new Map(),
      subscriptions: [],
      radio: undefined,
      sendCount: 0,
      failed: false,
      journal,
      intake: undefined,
      gate: new StartGate(),
      // Set before start(): a fully replayed actor's initial entry effects were carried out long ago too.
      silent: journal?.snapshots === false && (await journal.hasEvents()),
    };
    // Inputs arriving while a journaled actor is restored wait behind the intake's
    // gate: journaled after every event replay reads (never applied twice), in order.
    if (journal !== undefined && store !== undefined) {
      const reports = { address, stats: this.stats, logger: this.options.logger, track: (op: Promise<void>) => this.work.add(op) };
      const send = (event: JournaledEvent): void => this.send(running, event);
      running.intake = new JournalIntake(journal, { ...reports, send, readOnly: spec.readOnly, snapshot: () => this.persistOne(store, running) });
    }
    this.actors.set(key, running);
    actor.on('*', (effect: Effect) => this.interpret(running, effect));
    actor.subscribe({
      error: (err: unknown) => {
        running.failed = true;
        this.stats.actorErrors++;
        this.options.logger.error('actor failed', { actor: address, error: String(err) });
      },
    });
    for (const topic of [inboxTopic(spec.role, spec.id), ...(spec.subscribe ?? [])]) {
      running.subscriptions.push(await this.options.bus.subscribe(topic, (topic, payload) => this.deliver(running, topic, payload), { qos: 1 }));
    }
    actor.start();
    // After a snapshot, effects are re-emitted (at-least-once); a full replay is silent.
    const replay = running.intake?.replay(restored?.journalSeq ?? 0) ?? Promise.resolve(0);
    const replayed = await replay.catch((err: unknown) => this.abandon(key, running, err));
    running.silent = false;
    const at = this.options.scheduler.now();
    if (snapshot === undefined && replayed === 0) {
      // host.start changes state (e.g. idle → running), so a journaled actor
      // journals it: a restart before the first snapshot replays it first.
      // It is journaled first, ahead of any input waiting behind the gate.
      if (running.intake === undefined) this.send(running, { type: 'host.start', at });
      else running.intake.open({ type: 'host.start', at });
      return running.gate.open((event) => this.send(running, event));
    }
    this.rearmTimers(running);
    this.send(running, { type: 'host.resume', at });
    running.gate.open((event) => this.send(running, event));
    running.intake?.open();
    if (journal !== undefined) await this.work.idle();
  }

  /** Undo a spawn whose restore failed (nothing of it stays registered, subscribed or waiting), then fail it. */
  private async abandon(key: string, running: Running, err: unknown): Promise<never> {
    this.actors.delete(key);
    running.intake?.abort();
    running.actor.stop();
    for (const sub of running.subscriptions) await sub.unsubscribe();
    throw err;
  }

  /** An actor's current (or final) snapshot, e.g. to read a collector's tallies. */
  snapshotOf(role: Role, id: string): ActorView {
    const running = this.actors.get(`${role}/${id}`);
    if (running === undefined) throw new MisuseError('id', `${role}/${id} was never spawned here`);
    return running.actor.getSnapshot() as ActorView;
  }

  /** Send an event to one actor (operator commands, tests). */
  sendTo(role: Role, id: string, event: { type: string; [k: string]: unknown }): void {
    const running = this.actors.get(`${role}/${id}`);
    if (running === undefined) throw new MisuseError('id', `${role}/${id} is not running`);
    this.send(running, event);
  }

  /** Write every actor's snapshot to the store (durable when the store says so). */
  async persist(): Promise<void> {
    const store = this.options.store;
    if (store === undefined) return;
    for (const running of this.actors.values()) await this.persistOne(store, running);
  }

  private async persistOne(store: Store, running: Running): Promise<void> {
    if (running.journal?.snapshots === false) return; // full-replay mode: the journal is the state
    const journalSeq = running.journal?.appliedSeq ?? 0;
    await store.put(snapshotKey(running.address), encodeSnapshot(running.actor.getPersistedSnapshot(), journalSeq));
    // Only now that the snapshot is durable may the journal it covers go.
    try {
      await running.journal?.snapshotTaken(journalSeq);
    } catch (err) {
      // Harmless: the journal just keeps events a later snapshot will cover.
      this.options.logger.warn('journal compaction failed; events kept', { actor: running.address, throughSeq: journalSeq, error: String(err) });
    }
  }

  /** Deliver a state-changing input: to the machine, or (journaled) to the intake. */
  private input(running: Running, event: JournaledEvent): void {
    if (running.intake === undefined) running.gate.pass(event, (e) => this.send(running, e));
    else running.intake.push(event);
  }

  /**
   * Stop every actor: persist, `host.stop`, cancel timers, release radios and
   * subscriptions. Final snapshots stay readable through `snapshotOf`. Idempotent.
   *
   * Snapshots are persisted *before* `host.stop`: machines end in a final
   * state on it, and a host restarted on the same store must resume the
   * running machine, not restore a stopped one. Inputs journaled after the
   * snapshot are replayed on restart.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.work.idle();
    await this.persist();
    const at = this.options.scheduler.now();
    for (const running of this.actors.values()) this.send(running, { type: 'host.stop', at });
    await this.work.idle();
    for (const running of this.actors.values()) {
      for (const handle of running.timers.values()) this.options.scheduler.cancel(handle);
      running.timers.clear();
      running.actor.stop();
      for (const sub of running.subscriptions) await sub.unsubscribe();
      await running.radio?.close();
    }
  }

  private send(running: Running, event: { type: string; [k: string]: unknown }): void {
    if (running.failed) return;
    running.actor.send(event);
  }

  /** Decode, admit, input. The event carries the decoded body only (the raw one twice doubled the journal). */
  private deliver(running: Running, topic: string, payload: Uint8Array): void {
    this.stats.received++;
    const envelope = decodeEnvelope(payload);
    if (!envelope.ok) {
      this.stats.rejectedEnvelopes++;
      this.countRejection(`envelope.${envelope.reason}`);
      this.options.logger.debug('rejected envelope', { actor: running.address, reason: envelope.reason, detail: envelope.detail });
      return;
    }
    const body = this.options.messages.decodeBody(envelope.value.type, envelope.value.body);
    if (!body.ok) {
      this.stats.rejectedBodies++;
      this.countRejection(`${body.codec}.${body.reason}`);
      this.options.logger.debug('rejected body', { actor: running.address, type: envelope.value.type, reason: body.reason });
      return;
    }
    const event = { type: `msg.${envelope.value.type}`, at: this.options.scheduler.now(), envelope: { ...envelope.value, body: null }, body: body.value };
    const state = { topic, pending: running.intake?.pending ?? 0, context: (running.actor.getSnapshot() as { context?: unknown }).context };
    if (admitted(running.spec, event, state, { address: running.address, stats: this.stats, logger: this.options.logger })) this.input(running, event);
  }

  private countRejection(reason: string): void {
    this.stats.rejections[reason] = (this.stats.rejections[reason] ?? 0) + 1;
  }

  private rearmTimers(running: Running): void {
    const context = (running.actor.getSnapshot() as { context?: Partial<TimedContext> }).context;
    for (const [name, deadline] of Object.entries(context?.timers ?? {})) this.armTimer(running, name, deadline);
  }

  private armTimer(running: Running, name: string, deadline: number): void {
    const previous = running.timers.get(name);
    if (previous !== undefined) this.options.scheduler.cancel(previous);
    const handle = this.options.scheduler.at(deadline, () => {
      running.timers.delete(name);
      this.input(running, { type: `timer.${name}`, at: this.options.scheduler.now() });
    });
    running.timers.set(name, handle);
  }

  private radio(running: Running): Radio {
    if (running.radio === undefined) {
      const factory = this.options.radioFor;
      if (factory === undefined) throw new MisuseError('radioFor', `${running.address} emitted a radio effect but the host has no radio`);
      running.radio = factory(running.spec);
    }
    return running.radio;
  }

  /** Carry out one effect. Asynchronous work is tracked so idle() waits for it. */
  private interpret(running: Running, effect: Effect): void {
    if (running.silent) return;
    try {
      switch (effect.type) {
        case 'timer.set':
          return this.armTimer(running, effect.name, effect.deadline);
        case 'timer.cancel': {
          const handle = running.timers.get(effect.name);
          if (handle !== undefined) this.options.scheduler.cancel(handle);
          running.timers.delete(effect.name);
          return;
        }
        case 'bus.send':
          return this.track(running, effect, this.sendMessage(running, effect));
        case 'blob.publish':
          return this.track(running, effect, publishBlobs(this.options.blobs, effect, (send) => this.sendMessage(running, send), running.address));
        case 'bus.subscribe':
          return this.track(
            running,
            effect,
            this.options.bus
              .subscribe(effect.filter, (topic, payload) => this.deliver(running, topic, payload), { qos: 1 })
              .then((sub) => void running.subscriptions.push(sub)),
          );
        case 'radio.advertise':
        case 'radio.stopAdvertising':
        case 'radio.scan': {
          const hooks = { send: (event: { type: string }) => this.send(running, event), track: (op: Promise<void>) => this.work.add(op), now: () => this.options.scheduler.now() };
          return this.track(running, effect, radioEffect(this.radio(running), effect, hooks));
        }
        case 'store.append': {
          const store = this.options.store;
          if (store === undefined) throw new MisuseError('store', `${running.address} appended but the host has no store`);
          return this.track(running, effect, store.append(effect.stream, effect.record).then(() => undefined));
        }
        case 'log':
          return this.options.logger[effect.level](effect.msg, { actor: running.address, ...effect.fields });
      }
    } catch (err) {
      this.effectFailed(running, effect, err);
    }
  }

  private sendMessage(running: Running, effect: BusSendEffect): Promise<void> {
    const now = this.options.scheduler.now();
    const bytes = outgoingEnvelope(effect, { id: running.spec.id, from: running.address, seq: running.sendCount++, now });
    this.stats.sent++;
    return this.options.bus.publish(effect.topic, bytes, { qos: effect.qos ?? 1, retain: effect.retain ?? false });
  }

  private track(running: Running, effect: Effect, op: Promise<unknown>): void {
    this.work.add(op.then(
      () => undefined,
      (err: unknown) => this.effectFailed(running, effect, err),
    ));
  }

  private effectFailed(running: Running, effect: Effect, err: unknown): void {
    this.stats.effectErrors++;
    this.options.logger.error('effect failed', { actor: running.address, effect: effect.type, error: err instanceof Error ? err.message : String(err) });
  }
}
