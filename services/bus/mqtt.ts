/**
 * The Bus port over mqtt.js (MQTT 3.1.1): ONE connection multiplexes many
 * local subscriptions (contract: test/contract/bus.contract.ts).
 *
 * - One broker subscription per distinct filter, its (UN)SUBSCRIBEs serialised
 *   (aedes may answer pipelined ones out of order). A handler joining a filter
 *   re-sends SUBSCRIBE (replacing the broker's, so copies don't multiply) to get
 *   the retained messages; UNSUBSCRIBE goes when the last handler leaves.
 * - Overlapping filters: MQTT 3.1.1 §3.3.5 lets a broker send one copy per
 *   matching subscription. aedes sends one; mosquitto 2.0 one unless
 *   `allow_duplicate_messages true`. The bus probes this at connect; in
 *   'per-subscription' mode an arrival matching k broker filters leaves k−1
 *   credits for its (topic, payload) that swallow the following copies
 *   (byte-identical, so only their count matters). Each handler whose filter
 *   matches gets each message once, in arrival order.
 * - Retained copies (RETAIN flag: sent because of a SUBSCRIBE) go only to the
 *   handlers that have received nothing on that topic yet: a joining handler
 *   gets the current value, others no duplicate, and a stale retained copy
 *   never follows a newer live message.
 * - subscribe() resolves after SUBACK and an echo on this client's control
 *   topic: the retained messages are dispatched by then on brokers that answer
 *   in order (mosquitto); aedes streams them asynchronously, so with hundreds
 *   some may come later (still dispatched).
 * - Reconnect every reconnectPeriodMs; without a broker session (restart, clean
 *   session) every filter is subscribed again (retained values may come again).
 *
 * idle() resolves once (a) every message this bus published while connected
 * whose topic matched a filter the broker had acknowledged has come back and
 * been dispatched, and (b) no dispatch is running (called from a handler, it
 * waits for that dispatch to end). Expectations match by (topic, payload
 * bytes) and are dropped when the connection is lost or their last filter is
 * unsubscribed, so idle() never waits for a message that cannot come. Not
 * covered: other clients' messages still in the broker, and messages the
 * broker drops (mosquitto's max_queued_messages).
 */
import { randomUUID } from 'node:crypto';
import { once, type EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import mqtt from 'mqtt';
import type { IClientOptions, IConnackPacket, IPublishPacket, MqttClient } from 'mqtt';
import type { Bus, BusHandler, Logger, PublishOptions, Qos, Subscription } from '../../actors/ports.ts';
import { MisuseError } from '../../protocol/errors.ts';
import { FilterIndex, TopicBag, checkQos, describeError, errorReporter, safeReport, validateFilter, validateTopic, wake } from './shared.ts';
import type { ErrorReporter } from './shared.ts';

export type OverlapMode = 'single' | 'per-subscription';

export interface MqttBusOptions {
  readonly url: string; // mqtt://host:port or mqtts://host:port
  readonly clientId?: string; // default tcbus-<random>
  readonly logger?: Logger;
  readonly onError?: ErrorReporter; // handler exceptions; default logger.error, else console.error
  /** Initial connect and probe budget (default 10 000). Connect errors reject at once. */
  readonly connectTimeoutMs?: number;
  readonly reconnectPeriodMs?: number; // between reconnect attempts, default 1000
  readonly keepaliveSeconds?: number;
  readonly clean?: boolean; // MQTT clean session, default true
  readonly will?: { readonly topic: string; readonly payload: Uint8Array; readonly qos?: Qos; readonly retain?: boolean };
  readonly username?: string;
  readonly password?: string | Uint8Array;
  /** TLS options handed to mqtt.js (mqtts://). */
  readonly tls?: Pick<ConnectionOptions, 'ca' | 'cert' | 'key' | 'passphrase' | 'rejectUnauthorized' | 'servername' | 'minVersion' | 'maxVersion' | 'ciphers'>;
  /** How the broker treats overlapping subscriptions; default 'probe' (asks it once at connect). */
  readonly overlap?: OverlapMode | 'probe';
  /** This client's private control topics (probe, barriers). Default `tc/v1/_bus/<clientId>`. */
  readonly controlPrefix?: string;
}

export type MqttBusStats = Record<'received' | 'duplicatesDropped' | 'retainedSuppressed' | 'handlerErrors', number>;

/** A local handler; `seen`: topics it has received something on (decides retained delivery). */
interface HandlerRec { readonly handler: BusHandler; live: boolean; readonly seen: Set<string> }

/** One broker subscription. `recs`: copy-on-write; `onBroker`: SUBACK and no UNSUBACK since; `chain`: serialises (UN)SUBSCRIBE. */
interface Entry { readonly filter: string; recs: readonly HandlerRec[]; qos: Qos; onBroker: boolean; chain: Promise<void> }

const SEGMENT = /^[A-Za-z0-9_.-]{1,64}$/;
const isOnBroker = (e: Entry): boolean => e.onBroker;

export async function connectMqttBus(options: MqttBusOptions): Promise<MqttBus> {
  const bus = new MqttBus(options);
  try {
    await bus.start();
  } catch (error) {
    await bus.close();
    throw error;
  }
  return bus;
}

export class MqttBus implements Bus {
  readonly clientId: string;
  readonly stats: MqttBusStats = { received: 0, duplicatesDropped: 0, retainedSuppressed: 0, handlerErrors: 0 };
  private readonly client: MqttClient;
  private readonly index = new FilterIndex<Entry>();
  private readonly scratch: Entry[] = [];
  private readonly report: ErrorReporter;
  private readonly control: string;
  /** How the broker delivers overlapping subscriptions (probed at connect; read-only). */
  overlapMode: OverlapMode = 'single';
  private closed = false;
  private closing: Promise<void> | undefined;
  private started = false;
  private depth = 0;
  private readonly expected = new TopicBag(); // own publishes expected back (idle())
  private readonly credits = new TopicBag(); // 'per-subscription' mode: copies still to swallow
  private readonly idleWaiters: (() => void)[] = [];
  private readonly connectWaiters: (() => void)[] = [];
  private readonly barriers = new Map<string, () => void>();
  private barrierSeq = 0;
  private probeCopies = 0;
  private probeEnd: (() => void) | undefined;

  /** Use connectMqttBus(). */
  constructor(private readonly options: MqttBusOptions) {
    this.clientId = options.clientId ?? `tcbus-${randomUUID().slice(0, 8)}`;
    this.report = errorReporter(options.onError, options.logger);
    this.control = options.controlPrefix ?? `tc/v1/_bus/${SEGMENT.test(this.clientId) ? this.clientId : randomUUID()}`;
    validateTopic(this.control, 'options.controlPrefix');
    const { will, tls, password, username } = options;
    const mqttOptions: IClientOptions = {
      ...(tls as IClientOptions | undefined),
      protocolVersion: 4,
      clientId: this.clientId,
      clean: options.clean ?? true,
      reconnectPeriod: options.reconnectPeriodMs ?? 1000,
      connectTimeout: options.connectTimeoutMs ?? 10_000,
      keepalive: options.keepaliveSeconds ?? 30,
      resubscribe: false, // we re-subscribe ourselves (onConnect)
      ...(username !== undefined ? { username } : {}),
      ...(password !== undefined ? { password: typeof password === 'string' ? password : Buffer.from(password) } : {}),
      ...(will === undefined ? {} : { will: { ...will, payload: Buffer.from(will.payload), qos: will.qos ?? 0, retain: will.retain === true } }),
    };
    this.client = mqtt.connect(options.url, mqttOptions);
    this.client.on('message', this.onMessage);
    this.client.on('connect', (connack) => this.onConnect(connack));
    this.client.on('close', () => this.onConnectionLost());
    this.client.on('error', (error) => options.logger?.warn('mqtt client error', { clientId: this.clientId, error: describeError(error) }));
  }

  /** @internal Wait for CONNACK, subscribe the control topics, probe the broker. */
  async start(): Promise<void> {
    const timeoutMs = this.options.connectTimeoutMs ?? 10_000;
    try {
      await once(this.client as unknown as EventEmitter, 'connect', { signal: AbortSignal.timeout(timeoutMs) }); // rejects on 'error'
    } catch (error) {
      throw (error as Error).name === 'AbortError' ? new Error(`MQTT connect to ${this.options.url}: no CONNACK in ${timeoutMs} ms`) : error;
    }
    this.started = true;
    await this.rawSubscribe(`${this.control}/#`, 0);
    const overlap = this.options.overlap ?? 'probe';
    this.overlapMode = overlap === 'probe' ? await this.probe(timeoutMs) : overlap;
  }

  /** Resolves when written (QoS 0) or acknowledged (QoS 1); while offline, mqtt.js queues. */
  publish(topic: string, payload: Uint8Array, options: PublishOptions = {}): Promise<void> {
    const qos = options.qos ?? 0;
    try {
      this.checkUsable(topic, validateTopic);
      checkQos(qos);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    const buf = Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    const expecting = this.client.connected && this.index.some(topic, isOnBroker);
    if (expecting) this.expected.add(topic, buf, 1);
    return new Promise((resolve, reject) => {
      this.client.publish(topic, buf, { qos, retain: options.retain === true }, (error) => {
        if (!error) return resolve();
        if (expecting && this.expected.take(topic, buf)) this.checkIdle();
        reject(error);
      });
    });
  }

  /** Resolves after SUBACK and the barrier (see the module comment). */
  async subscribe(filter: string, handler: BusHandler, options: { readonly qos?: Qos } = {}): Promise<Subscription> {
    this.checkUsable(filter, validateFilter);
    const qos = checkQos(options.qos ?? 0);
    const entry = this.index.get(filter) ?? { filter, recs: [], qos, onBroker: false, chain: Promise.resolve() };
    this.index.set(filter, entry);
    const rec: HandlerRec = { handler, live: true, seen: new Set() };
    entry.recs = [...entry.recs, rec];
    if (qos > entry.qos) entry.qos = qos;
    try {
      await this.enqueue(entry, () => this.subscribeOnBroker(entry));
      await this.barrier();
    } catch (error) {
      await this.leave(entry, rec);
      throw error;
    }
    return { unsubscribe: () => this.leave(entry, rec) };
  }

  idle(): Promise<void> {
    if (this.closed || (this.expected.size === 0 && this.depth === 0)) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private checkUsable(topicOrFilter: string, validate: (value: string) => void): void {
    if (this.closed) throw new MisuseError('bus', `bus ${this.clientId} is closed`);
    validate(topicOrFilter);
    if (topicOrFilter.startsWith(this.control)) throw new MisuseError('topic', `${topicOrFilter} is a bus control topic`);
  }

  // ---------------------------------------------------------------- receive

  private readonly onMessage = (topic: string, payload: Buffer, packet: IPublishPacket): void => {
    if (this.closed) return;
    if (topic.startsWith(this.control) && topic.charCodeAt(this.control.length) === 47 /* / */) {
      this.onControl(topic.slice(this.control.length + 1), payload);
      return;
    }
    this.stats.received++;
    const matched = this.depth === 0 ? this.scratch : [];
    this.index.collect(topic, matched);
    const retained = packet.retain;
    if (!retained && this.overlapMode === 'per-subscription' && this.isCopy(topic, payload, matched)) {
      this.stats.duplicatesDropped++;
      matched.length = 0;
      return;
    }
    if (!retained && this.expected.size > 0) this.expected.take(topic, payload);
    this.depth++;
    try {
      for (let i = 0; i < matched.length; i++) {
        const recs = (matched[i] as Entry).recs;
        for (let j = 0; j < recs.length; j++) {
          const rec = recs[j] as HandlerRec;
          if (!rec.live) continue;
          if (retained && rec.seen.has(topic)) {
            this.stats.retainedSuppressed++;
            continue;
          }
          rec.seen.add(topic);
          try {
            rec.handler(topic, payload);
          } catch (error) {
            this.handlerFailed(error, topic);
          }
        }
      }
    } finally {
      this.depth--;
      matched.length = 0;
    }
    if (this.idleWaiters.length > 0) this.checkIdle();
  };

  private onControl(channel: string, payload: Buffer): void {
    if (channel === 'probe') this.probeCopies++;
    else if (channel === 'probe-end') this.probeEnd?.();
    else if (channel === 'barrier') {
      const nonce = payload.toString('latin1');
      this.barriers.get(nonce)?.();
      this.barriers.delete(nonce);
    }
  }

  /** 'per-subscription' mode: is this a further copy of a message already dispatched? */
  private isCopy(topic: string, payload: Buffer, matched: readonly Entry[]): boolean {
    if (this.credits.size > 0 && this.credits.take(topic, payload)) return true;
    let k = 0;
    for (const e of matched) if (e.onBroker) k++;
    if (k > 1) this.credits.add(topic, payload, k - 1);
    return false;
  }

  private handlerFailed(error: unknown, topic: string): void {
    this.stats.handlerErrors++;
    safeReport(this.report, error, { clientId: this.clientId, topic });
  }

  /** Drop expectations no broker filter can satisfy any more (all: connection lost). */
  private purgeExpectations(all: boolean): void {
    this.expected.prune((topic) => !all && this.index.some(topic, isOnBroker));
    this.checkIdle();
  }

  private checkIdle(): void {
    if (this.idleWaiters.length > 0 && this.depth === 0 && (this.expected.size === 0 || this.closed)) wake(this.idleWaiters);
  }

  // ---------------------------------------------------------------- subscriptions

  /** Run `op` after the previous operations on the same filter. */
  private enqueue(e: Entry, op: () => Promise<void>): Promise<void> {
    const run = e.chain.then(op);
    e.chain = run.catch(() => undefined);
    return run;
  }

  /** SUBSCRIBE until acknowledged, retrying after reconnects; a refusal (SUBACK 0x80) throws. */
  private async subscribeOnBroker(e: Entry): Promise<void> {
    while (e.recs.length > 0) {
      if (this.closed) throw new MisuseError('bus', `bus ${this.clientId} closed while subscribing`);
      try {
        await this.rawSubscribe(e.filter, e.qos);
        e.onBroker = true;
        return;
      } catch (error) {
        if (this.closed || (error as { code?: unknown }).code !== undefined) throw error;
        await new Promise<void>((resolve) => this.connectWaiters.push(resolve)); // connection lost: retry
      }
    }
  }

  private leave(e: Entry, rec: HandlerRec): Promise<void> {
    if (!rec.live) return Promise.resolve();
    rec.live = false;
    e.recs = e.recs.filter((r) => r !== rec);
    if (e.recs.length > 0 || this.closed) return Promise.resolve();
    return this.enqueue(e, async () => {
      if (e.recs.length > 0 || this.closed) return;
      // on a lost connection the UNSUBSCRIBE fails; an entry without handlers is not re-subscribed anyway
      if (e.onBroker) await new Promise<void>((resolve) => this.client.unsubscribe(e.filter, () => resolve()));
      e.onBroker = false;
      if (e.recs.length === 0 && this.index.get(e.filter) === e) this.index.delete(e.filter);
      this.purgeExpectations(false);
    });
  }

  private rawSubscribe(filter: string, qos: Qos): Promise<void> {
    return new Promise((resolve, reject) => this.client.subscribe(filter, { qos }, (err) => (err ? reject(((err as { packet?: { granted?: unknown[] } }).packet?.granted ?? []).some((g) => typeof g === 'number' && g >= 0x80) ? Object.assign(new Error(`broker refused SUBSCRIBE ${filter} (SUBACK 0x80: not authorized or invalid)`), { code: 0x80 }) : err) : resolve())));
  }

  /** Resolves when an echo published now comes back (or the connection drops). */
  private barrier(): Promise<void> {
    if (this.closed || !this.client.connected) return Promise.resolve();
    const nonce = String(++this.barrierSeq);
    return new Promise((resolve) => {
      this.barriers.set(nonce, resolve);
      this.client.publish(`${this.control}/barrier`, nonce, { qos: 0 }, (err) => err && this.releaseBarriers());
    });
  }

  private releaseBarriers(): void {
    wake([...this.barriers.values()]);
    this.barriers.clear();
  }

  /** With `<control>/#` and `<control>/probe` subscribed, count the copies of one message to the latter. */
  private async probe(timeoutMs: number): Promise<OverlapMode> {
    const filter = `${this.control}/probe`;
    await this.rawSubscribe(filter, 0);
    const ended = await new Promise<boolean>((resolve) => {
      this.probeEnd = () => resolve(true);
      AbortSignal.timeout(timeoutMs).addEventListener('abort', () => resolve(false));
      this.client.publish(filter, 'p', { qos: 0 });
      this.client.publish(`${filter}-end`, 'e', { qos: 0 }); // arrives after every copy of 'p'
    });
    await new Promise<void>((resolve) => this.client.unsubscribe(filter, () => resolve()));
    if (!ended) this.options.logger?.warn('overlap probe timed out; assuming one copy per message', { clientId: this.clientId });
    return this.probeCopies > 1 ? 'per-subscription' : 'single';
  }

  // ---------------------------------------------------------------- connection

  private onConnect(connack: IConnackPacket): void {
    (this.client.stream as Partial<Socket>).setNoDelay?.(true); // small packets: no Nagle delay (~40 ms per round trip)
    if (!this.started || this.closed) return;
    wake(this.connectWaiters);
    if (connack.sessionPresent) return;
    this.options.logger?.info('bus reconnected without session; re-subscribing', { clientId: this.clientId });
    this.client.subscribe(`${this.control}/#`, { qos: 0 });
    for (const e of this.index.values()) {
      e.onBroker = false;
      for (const rec of e.recs) rec.seen.clear();
      this.enqueue(e, () => this.subscribeOnBroker(e)).catch((error: unknown) =>
        this.options.logger?.error('re-subscribe failed', { clientId: this.clientId, filter: e.filter, error: describeError(error) }),
      );
    }
  }

  private onConnectionLost(): void {
    this.credits.prune();
    this.releaseBarriers();
    this.purgeExpectations(true);
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    for (const e of this.index.values()) for (const rec of e.recs) rec.live = false;
    this.index.clear();
    this.onConnectionLost();
    wake(this.connectWaiters);
    await new Promise<void>((resolve) => {
      // a graceful end waits for QoS 1 in flight: give up after 2 s (broker gone)
      const force = setTimeout(() => resolve(this.client.stream.destroy() && undefined), 2000);
      this.client.end(!this.client.connected, {}, () => resolve(clearTimeout(force)));
    });
  }
}
