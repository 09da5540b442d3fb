/**
 * In-process Bus with MQTT 3.1.1 semantics (contract: test/contract/bus.contract.ts).
 * A `MemoryHub` plays the broker; `hub.connect(clientId)` returns one `MemoryBus`
 * per "connection".
 * - `+`/`#` wildcards; `$`-topics are not matched by a leading wildcard.
 * - Retained: a retained publish with an empty payload clears the topic (and,
 *   as in MQTT, still reaches current subscribers); each subscribe() gets the
 *   matching retained messages first and resolves once they were handed out.
 * - Delivery is asynchronous, in hub-wide publish order: one FIFO queue drained
 *   from a microtask, yielding to the event loop every DRAIN_BUDGET deliveries.
 *   A message's subscribers are fixed at publish (as a broker fixes them when
 *   it processes the PUBLISH); a handler unsubscribed since is skipped.
 * - A handler that throws is reported (onError / logger); delivery goes on.
 * - idle() resolves once the hub queue is empty and no handler is running:
 *   every message published so far, by any client, has been handed out.
 * Handlers share one copy of the bytes (made at publish): they must not mutate it.
 */
import type { Bus, BusHandler, Logger, PublishOptions, Qos, Subscription } from '../../actors/ports.ts';
import { MisuseError } from '../../protocol/errors.ts';
import { FilterIndex, checkQos, copyBytes, errorReporter, matchesSplit, safeReport, validateFilter, validateTopic, wake, type ErrorReporter } from './shared.ts';

/** Deliveries handed out per microtask before yielding to the event loop. */
const DRAIN_BUDGET = 10_000;

interface MemorySub { readonly bus: MemoryBus; readonly handler: BusHandler; active: boolean }

type QueueItem =
  | { readonly topic: string; readonly payload: Uint8Array; readonly targets: readonly MemorySub[] }
  | { readonly run: () => void };

export interface MemoryHubOptions {
  /** Default reporter for handler exceptions (per-connection `onError` wins). */
  readonly onError?: ErrorReporter;
  readonly logger?: Logger;
}

export interface MemoryConnectOptions {
  readonly onError?: ErrorReporter;
  /** Published (like an MQTT last will) by `hub.disconnectUnexpectedly(clientId)`, not by close(). */
  readonly will?: { readonly topic: string; readonly payload: Uint8Array; readonly retain?: boolean };
}

/** The in-memory "broker": shared subscriptions, retained store and delivery queue. */
export class MemoryHub {
  private readonly index = new FilterIndex<readonly MemorySub[]>();
  private readonly retained = new Map<string, Uint8Array>();
  private readonly clients = new Map<string, MemoryBus>();
  private queue: (QueueItem | undefined)[] = [];
  private head = 0;
  private scheduled = false;
  private draining = false;
  private readonly idleWaiters: (() => void)[] = [];
  readonly report: ErrorReporter;

  constructor(options: MemoryHubOptions = {}) {
    this.report = errorReporter(options.onError, options.logger);
  }

  /** A new connection. Throws MisuseError if `clientId` is already connected. */
  connect(clientId: string, options: MemoryConnectOptions = {}): MemoryBus {
    if (this.clients.has(clientId)) throw new MisuseError('clientId', `${JSON.stringify(clientId)} is already connected`);
    const bus = new MemoryBus(this, clientId, options.onError ?? this.report, options.will);
    this.clients.set(clientId, bus);
    return bus;
  }

  /** Simulate a crash of `clientId`: its will is published, then it is closed. */
  async disconnectUnexpectedly(clientId: string): Promise<void> {
    const bus = this.clients.get(clientId);
    if (bus === undefined) return;
    const will = bus.will;
    await bus.close();
    if (will !== undefined) this.publish(will.topic, copyBytes(will.payload), will.retain === true);
  }

  /** Resolves when every message published so far has been handed to its handlers. */
  idle(): Promise<void> {
    if (!this.draining && this.head === this.queue.length) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** @internal */
  publish(topic: string, payload: Uint8Array, retain: boolean): void {
    if (retain) {
      if (payload.length === 0) this.retained.delete(topic);
      else this.retained.set(topic, payload);
    }
    const matched: (readonly MemorySub[])[] = [];
    this.index.collect(topic, matched);
    if (matched.length === 0) return;
    const targets = matched.length === 1 ? (matched[0] as readonly MemorySub[]) : matched.flat();
    this.enqueue({ topic, payload, targets });
  }

  /** @internal Register `sub`; resolves after its retained messages were handed out. */
  subscribe(filter: string, sub: MemorySub): Promise<void> {
    this.index.set(filter, [...(this.index.get(filter) ?? []), sub]);
    const parts = filter.split('/');
    for (const [topic, payload] of this.retained) {
      if (matchesSplit(parts, topic)) this.enqueue({ topic, payload, targets: [sub] });
    }
    return new Promise((resolve) => this.enqueue({ run: resolve }));
  }

  /** @internal */
  unsubscribe(filter: string, sub: MemorySub): void {
    sub.active = false;
    const rest = (this.index.get(filter) ?? []).filter((s) => s !== sub);
    if (rest.length === 0) this.index.delete(filter);
    else this.index.set(filter, rest);
  }

  /** @internal A closing connection's subscriptions. */
  forget(bus: MemoryBus, subs: ReadonlyMap<MemorySub, string>): void {
    for (const [sub, filter] of subs) this.unsubscribe(filter, sub);
    if (this.clients.get(bus.clientId) === bus) this.clients.delete(bus.clientId);
  }

  private enqueue(item: QueueItem): void {
    this.queue.push(item);
    if (!this.scheduled && !this.draining) {
      this.scheduled = true;
      queueMicrotask(this.drain);
    }
  }

  private readonly drain = (): void => {
    this.scheduled = false;
    this.draining = true;
    for (let budget = DRAIN_BUDGET; this.head < this.queue.length; budget--) {
      if (budget === 0) {
        this.draining = false;
        this.scheduled = true;
        setImmediate(this.drain);
        return;
      }
      const item = this.queue[this.head] as QueueItem;
      this.queue[this.head++] = undefined;
      if ('run' in item) item.run();
      else this.deliver(item.topic, item.payload, item.targets);
    }
    this.queue = [];
    this.head = 0;
    this.draining = false;
    wake(this.idleWaiters);
  };

  private deliver(topic: string, payload: Uint8Array, targets: readonly MemorySub[]): void {
    for (let i = 0; i < targets.length; i++) {
      const sub = targets[i] as MemorySub;
      if (!sub.active) continue;
      try {
        sub.handler(topic, payload);
      } catch (error) {
        sub.bus.handlerFailed(error, topic);
      }
    }
  }
}

/** One connection to a MemoryHub. */
export class MemoryBus implements Bus {
  private readonly subs = new Map<MemorySub, string>();
  private closed = false;
  /** Handler exceptions caught so far (read-only). */
  handlerErrors = 0;

  /** @internal use `hub.connect()` */
  constructor(
    private readonly hub: MemoryHub,
    readonly clientId: string,
    private readonly report: ErrorReporter,
    readonly will: MemoryConnectOptions['will'],
  ) {}

  /** Resolves as soon as the hub accepted the message (for QoS 0 and 1 alike). */
  publish(topic: string, payload: Uint8Array, options: PublishOptions = {}): Promise<void> {
    return new Promise((resolve) => {
      if (this.closed) throw new MisuseError('bus', `publish on closed bus ${this.clientId}`);
      validateTopic(topic);
      checkQos(options.qos ?? 0);
      resolve(this.hub.publish(topic, copyBytes(payload), options.retain === true)); // throws reject the promise
    });
  }

  /** Resolves once the matching retained messages have been handed to `handler`. */
  async subscribe(filter: string, handler: BusHandler, options: { readonly qos?: Qos } = {}): Promise<Subscription> {
    if (this.closed) throw new MisuseError('bus', `subscribe on closed bus ${this.clientId}`);
    validateFilter(filter);
    checkQos(options.qos ?? 0);
    const sub: MemorySub = { bus: this, handler, active: true };
    this.subs.set(sub, filter);
    await this.hub.subscribe(filter, sub);
    return {
      unsubscribe: () => {
        if (this.subs.delete(sub)) this.hub.unsubscribe(filter, sub);
        return Promise.resolve();
      },
    };
  }

  /** Resolves when the whole hub is idle (a superset of this connection's messages). */
  idle(): Promise<void> {
    return this.hub.idle();
  }

  close(): Promise<void> {
    if (!this.closed) this.hub.forget(this, this.subs);
    this.closed = true;
    this.subs.clear();
    return Promise.resolve();
  }

  /** @internal */
  handlerFailed(error: unknown, topic: string): void {
    this.handlerErrors++;
    safeReport(this.report, error, { clientId: this.clientId, topic });
  }
}
