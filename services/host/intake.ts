/**
 * How inputs reach a journaled actor (docs/decisions/0002 "Acknowledged =
 * durable"), and which bus messages may become inputs at all.
 *
 * Pipelined appends (group commit for actors): each input's journal append is
 * *issued* as soon as it arrives, without waiting for the previous input to
 * be applied. The Store applies writes in call order, so journal order is
 * arrival order, and SqliteStore commits every append issued in one
 * event-loop turn in one transaction (one fsync for a burst instead of one
 * per input). Inputs are *applied* strictly in journal order, each only after
 * its own append resolved: whatever the machine acknowledges is durable. A
 * failed append drops only that input (the hooks count and log it); later
 * inputs still apply, in order. The apply step may itself wait (a due
 * snapshot is written before the next input is applied, as before).
 *
 * Replay gate: while the actor is being restored the gate is closed and
 * arriving inputs are *deferred*, not appended: replay reads the journal, and
 * an input appended meanwhile could be read by it and applied twice. Opening
 * the gate issues the deferred appends in arrival order (after an optional
 * first event, the journaled `host.start`).
 *
 * Admission: `ActorSpec.admit` and `maxPending` decide about a decoded bus
 * message *before* it is journaled, so a rejected message costs no fsync and
 * never reaches the journal or the machine. `pending` counts inputs deferred
 * or journaled-but-not-yet-applied: a bounded queue instead of an unbounded
 * backlog when the disk or the machine is slower than the bus. Timers and
 * host events are never subject to admission.
 */
import type { Logger } from '../../actors/ports.ts';
import type { Envelope } from '../../protocol/wire/envelope.ts';
import { MisuseError } from '../../protocol/errors.ts';
import type { ActorJournal, JournaledEvent } from './journal.ts';

/** A decoded bus message as it would be journaled and delivered. */
export interface AdmitEvent {
  readonly type: string;
  readonly at: number;
  readonly envelope: Envelope;
  readonly body: unknown;
}

/** What an admission hook may consult: the intake backlog and the actor's current (applied) context, read-only. */
export interface AdmitState {
  /** The topic the message came on (an ACL sees topics, not types: a hook can insist they match). */
  readonly topic: string;
  readonly pending: number;
  readonly context: unknown;
}

/** Returns a rejection reason (counted as `admit.<reason>`), or undefined to admit. */
export type Admit = (event: AdmitEvent, state: AdmitState) => string | undefined;

/** ActorSpec's admission fields. */
export interface Admission {
  /**
   * Called for every decoded bus message before it is journaled (or, for an
   * unjournaled actor, delivered): a returned reason refuses it, counted as
   * `admit.<reason>`; it never reaches the journal or the machine.
   */
  readonly admit?: Admit;
  /**
   * Refuse bus messages (`admit.queue-full`) while this many inputs wait for
   * the replay gate or are journaled but not yet applied. Timers and host
   * events are never refused. Only a journaled actor has such a backlog.
   */
  readonly maxPending?: number;
  /**
   * Message types (`msg.<type>`) that only read state, e.g. a status query:
   * applied in order after every earlier input, but never journaled — a
   * flood of queries must not grow the event log, and a restart loses
   * nothing (a client that missed its reply asks again). Dropped while the
   * actor is being restored.
   */
  readonly readOnly?: readonly string[];
}

/** Check ActorSpec's admission fields (MisuseError naming the field). */
export function checkAdmission(spec: Admission): void {
  if (spec.admit !== undefined && typeof spec.admit !== 'function') throw new MisuseError('admit', 'must be a function');
  const max: unknown = spec.maxPending;
  if (max !== undefined && (typeof max !== 'number' || !Number.isSafeInteger(max) || max < 1)) {
    throw new MisuseError('maxPending', 'must be a positive integer');
  }
  const readOnly: unknown = spec.readOnly;
  if (readOnly !== undefined && (!Array.isArray(readOnly) || !readOnly.every((t) => typeof t === 'string' && t.startsWith('msg.')))) {
    throw new MisuseError('readOnly', 'must be a list of message event types (msg.<type>)');
  }
}

/** The host counters admission and the intake report to (HostStats). */
export interface IntakeStats {
  rejectedAdmissions: number;
  effectErrors: number;
  readonly rejections: Record<string, number>;
}

/** Where admission and an intake report refusals and failures. */
export interface IntakeContext {
  readonly address: string;
  readonly stats: IntakeStats;
  readonly logger: Logger;
}

/**
 * Whether a decoded message may become an input; a refusal is counted
 * (`admit.<reason>`) and logged at debug. A throwing hook refuses
 * (`admit.hook-failed`, logged as an error): fail closed.
 */
export function admitted(spec: Admission, event: AdmitEvent, state: AdmitState, ctx: IntakeContext): boolean {
  let reason: string | undefined;
  let error: string | undefined;
  if (spec.maxPending !== undefined && state.pending >= spec.maxPending) reason = 'queue-full';
  else if (spec.admit !== undefined) {
    try {
      reason = spec.admit(event, state);
    } catch (err) {
      [reason, error] = ['hook-failed', err instanceof Error ? err.message : String(err)];
    }
  }
  if (reason === undefined) return true;
  ctx.stats.rejectedAdmissions++;
  ctx.stats.rejections[`admit.${reason}`] = (ctx.stats.rejections[`admit.${reason}`] ?? 0) + 1;
  const fields = { actor: ctx.address, type: event.envelope.type, reason };
  if (error === undefined) ctx.logger.debug('rejected by admission', fields);
  else ctx.logger.error('admission hook failed; message rejected', { ...fields, error });
  return false;
}

export interface IntakeHooks extends IntakeContext {
  /** Deliver an event to the machine. */
  send(event: JournaledEvent): void;
  /** Write the actor's snapshot (due after the event just applied). */
  snapshot(): Promise<void>;
  /** Track work until the input is applied or dropped (Host.idle). Must not reject. */
  track(op: Promise<void>): void;
  /** Admission.readOnly of the actor. */
  readonly readOnly?: readonly string[] | undefined;
}

interface Waiting {
  readonly event: JournaledEvent;
  readonly done: () => void;
}

type Appended = { readonly seq: number } | { readonly error: unknown };

export class JournalIntake {
  private gateOpen = false;
  private aborted = false;
  private deferred: Waiting[] = [];
  /** Appended (or appending) but not yet applied or dropped. */
  private inFlight = 0;
  /** The last input's apply step: the next one runs after it, so application follows journal order. */
  private tail: Promise<void> = Promise.resolve();

  constructor(
    private readonly journal: ActorJournal,
    private readonly hooks: IntakeHooks,
  ) {}

  /** Inputs deferred or journaled but not yet applied. */
  get pending(): number {
    return this.deferred.length + this.inFlight;
  }

  /**
   * Restoring (gate still closed): apply the journal after `afterSeq` to the
   * machine; returns how many events. A full replay (no snapshots) is logged
   * with its duration: it is what a restart of such an actor costs.
   */
  async replay(afterSeq: number): Promise<number> {
    const { events, ms } = await this.journal.replayInto(afterSeq, (event) => this.hooks.send(event));
    if (!this.journal.snapshots) this.hooks.logger.info('journal replayed', { actor: this.hooks.address, events, ms: Math.round(ms) });
    return events;
  }

  /** Journal `event` and then apply it, after every earlier input (a read-only one: apply it only, in order). */
  push(event: JournaledEvent): void {
    if (this.aborted) return;
    if (this.hooks.readOnly?.includes(event.type) === true) {
      if (!this.gateOpen) return;
      const applied = this.tail.then(() => this.hooks.send(event));
      this.tail = applied;
      return this.hooks.track(applied);
    }
    const item = this.waiting(event);
    if (this.gateOpen) this.issue(item);
    else this.deferred.push(item);
  }

  /** The actor is restored: journal `first` (if any), then the deferred inputs in arrival order. */
  open(first?: JournaledEvent): void {
    if (this.gateOpen) return;
    this.gateOpen = true;
    const deferred = this.deferred;
    this.deferred = [];
    if (first !== undefined) this.issue(this.waiting(first));
    for (const item of deferred) this.issue(item);
  }

  /** The actor could not be restored: drop what waits behind the gate, take nothing more. */
  abort(): void {
    for (const { done } of this.deferred) done();
    this.deferred = [];
    this.aborted = true;
  }

  private waiting(event: JournaledEvent): Waiting {
    let done: () => void = () => undefined;
    // Tracked from arrival, so a host is not idle while an input waits behind the gate.
    this.hooks.track(new Promise<void>((resolve) => (done = resolve)));
    return { event, done };
  }

  private issue({ event, done }: Waiting): void {
    this.inFlight++;
    // Issue the append now (this is what lets a burst share one commit); its
    // outcome is captured at once so a failure is never an unhandled rejection.
    let append: Promise<number>;
    try {
      append = this.journal.append(event);
    } catch (error) {
      append = Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    const appended: Promise<Appended> = append.then(
      (seq) => ({ seq }),
      (error: unknown) => ({ error }),
    );
    this.tail = this.tail.then(async () => {
      const outcome = await appended;
      try {
        if ('error' in outcome) this.failed('journal append failed; input dropped', outcome.error, event);
        else await this.apply(outcome.seq, event);
      } catch (error) {
        // The chain must never reject, or every later input would be skipped.
        this.failed('journaled input failed', error, event);
      } finally {
        this.inFlight--;
        done();
      }
    });
  }

  private async apply(seq: number, event: JournaledEvent): Promise<void> {
    this.hooks.send(event);
    if (!this.journal.applied(seq)) return;
    try {
      await this.hooks.snapshot();
    } catch (error) {
      // The input is applied and journaled; without the snapshot a restart just replays more.
      this.failed('snapshot write failed; the journal keeps the events', error);
    }
  }

  private failed(msg: string, error: unknown, event?: JournaledEvent): void {
    this.hooks.stats.effectErrors++;
    this.hooks.logger.error(msg, { actor: this.hooks.address, ...(event !== undefined ? { event: event.type } : {}), error: String(error) });
  }
}

/**
 * Holds the inputs of an unjournaled actor until it has had `host.start` or
 * `host.resume`: a subscription hands over retained messages at once, and a
 * machine still `idle` would drop them (regression: a phone spawned after
 * the key server's last publication never saw its retained index).
 */
export class StartGate<E> {
  private held: E[] | null = [];

  /** Deliver now when open, else hold in arrival order. */
  pass(event: E, deliver: (event: E) => void): void {
    if (this.held === null) deliver(event);
    else this.held.push(event);
  }

  /** Open for good, delivering what was held. */
  open(deliver: (event: E) => void): void {
    const held = this.held ?? [];
    this.held = null;
    for (const event of held) deliver(event);
  }
}
