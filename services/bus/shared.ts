/**
 * Helpers shared by the Bus adapters (services/bus/memory.ts, mqtt.ts): topic
 * and filter validation, a filter index, handler-error reporting, payload bags.
 */
import type { Logger, Qos } from '../../actors/ports.ts';
import { MisuseError } from '../../protocol/errors.ts';

/** MQTT's limit on a topic's UTF-8 length. */
const MAX_TOPIC_BYTES = 65_535;

function checkLength(value: string, field: string): void {
  if (value.length === 0 || value.includes('\u0000')) throw new MisuseError(field, 'must be non-empty without NUL');
  if (Buffer.byteLength(value) > MAX_TOPIC_BYTES) throw new MisuseError(field, 'longer than 65535 bytes');
}

/** Throws MisuseError unless `topic` is a valid MQTT topic name (no wildcards). */
export function validateTopic(topic: string, field = 'topic'): void {
  checkLength(topic, field);
  if (isWildcardFilter(topic)) throw new MisuseError(field, `${JSON.stringify(topic)} must not contain wildcards`);
}

/** Throws MisuseError unless `filter` is a valid MQTT topic filter. */
export function validateFilter(filter: string, field = 'filter'): void {
  checkLength(filter, field);
  const levels = filter.split('/');
  const bad = levels.findIndex((l, i) => (l.includes('#') && (l !== '#' || i !== levels.length - 1)) || (l.includes('+') && l !== '+'));
  if (bad >= 0) throw new MisuseError(field, `${JSON.stringify(filter)}: '+' must be a whole level, '#' a whole last level`);
}

export function isWildcardFilter(filter: string): boolean {
  return filter.includes('+') || filter.includes('#');
}

/**
 * Match a pre-split filter against a topic without allocating (same result
 * as protocol/wire/topics.ts `topicMatches`; test/bus/memory.test.ts checks
 * the two agree).
 */
export function matchesSplit(parts: readonly string[], topic: string): boolean {
  const first = parts[0];
  if ((first === '+' || first === '#') && topic.charCodeAt(0) === 36 /* $ */) return false;
  let pos = 0;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as string;
    if (part === '#') return true;
    if (pos > topic.length) return false;
    let end = topic.indexOf('/', pos);
    if (end < 0) end = topic.length;
    if (part !== '+' && (end - pos !== part.length || !topic.startsWith(part, pos))) return false;
    pos = end + 1;
  }
  return pos === topic.length + 1;
}

interface WildcardSlot<V> { readonly parts: readonly string[]; value: V }

/** Filters → values, matched against topics: exact filters by one Map lookup, wildcards by a scan of pre-split filters. */
export class FilterIndex<V> {
  private readonly exact = new Map<string, V>();
  private readonly wildByFilter = new Map<string, WildcardSlot<V>>();
  /** Rebuilt on change (rare) so a scan never sees a half-updated list. */
  private wild: readonly WildcardSlot<V>[] = [];

  get(filter: string): V | undefined {
    return this.exact.get(filter) ?? this.wildByFilter.get(filter)?.value;
  }

  set(filter: string, value: V): void {
    const slot = this.wildByFilter.get(filter);
    if (!isWildcardFilter(filter)) this.exact.set(filter, value);
    else if (slot !== undefined) slot.value = value;
    else {
      this.wildByFilter.set(filter, { parts: filter.split('/'), value });
      this.wild = [...this.wildByFilter.values()];
    }
  }

  delete(filter: string): void {
    if (this.exact.delete(filter)) return;
    if (this.wildByFilter.delete(filter)) this.wild = [...this.wildByFilter.values()];
  }

  clear(): void {
    this.exact.clear();
    this.wildByFilter.clear();
    this.wild = [];
  }

  values(): V[] {
    return [...this.exact.values(), ...this.wild.map((slot) => slot.value)];
  }

  /** Append the values whose filter matches `topic` to `out`. */
  collect(topic: string, out: V[]): void {
    const hit = this.exact.get(topic);
    if (hit !== undefined) out.push(hit);
    const wild = this.wild;
    for (let i = 0; i < wild.length; i++) {
      const slot = wild[i] as WildcardSlot<V>;
      if (matchesSplit(slot.parts, topic)) out.push(slot.value);
    }
  }

  /** Whether some value whose filter matches `topic` satisfies `pred`. */
  some(topic: string, pred: (value: V) => boolean): boolean {
    const hit = this.exact.get(topic);
    if (hit !== undefined && pred(hit)) return true;
    for (const slot of this.wild) if (matchesSplit(slot.parts, topic) && pred(slot.value)) return true;
    return false;
  }
}

export interface HandlerErrorContext { readonly clientId: string; readonly topic: string }

/** Called when a subscriber's handler throws; delivery to others goes on. */
export type ErrorReporter = (error: unknown, context: HandlerErrorContext) => void;

export function errorReporter(onError: ErrorReporter | undefined, logger: Logger | undefined): ErrorReporter {
  if (onError !== undefined) return onError;
  if (logger !== undefined) return (error, context) => logger.error('bus handler threw', { ...context, error: describeError(error) });
  return (error, context) => console.error(`bus handler threw (client ${context.clientId}, topic ${context.topic}):`, error);
}

/** Report without letting a failing reporter break delivery. */
export function safeReport(report: ErrorReporter, error: unknown, context: HandlerErrorContext): void {
  try {
    report(error, context);
  } catch {
    // a failing reporter must not break delivery
  }
}

export function describeError(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}

/** A multiset of payloads per topic, compared by bytes. */
export class TopicBag {
  private readonly map = new Map<string, Buffer[]>();
  size = 0;

  add(topic: string, payload: Buffer, times: number): void {
    const list = this.map.get(topic) ?? [];
    if (list.length === 0) this.map.set(topic, list);
    for (let i = 0; i < times; i++) list.push(payload);
    this.size += times;
  }

  /** Remove one payload equal to `payload`; false when there is none. */
  take(topic: string, payload: Buffer): boolean {
    const list = this.map.get(topic);
    const i = list === undefined ? -1 : list.findIndex((p) => payload.equals(p));
    if (list === undefined || i < 0) return false;
    if (list.length === 1) this.map.delete(topic);
    else list.splice(i, 1);
    this.size--;
    return true;
  }

  /** Keep only the topics for which `keep` holds (no argument: clear). */
  prune(keep: (topic: string) => boolean = () => false): void {
    for (const [topic, list] of this.map) {
      if (keep(topic)) continue;
      this.map.delete(topic);
      this.size -= list.length;
    }
  }
}

/** Call and empty a list of waiters. */
export function wake(waiters: (() => void)[]): void {
  for (const resolve of waiters.splice(0)) resolve();
}

/** A fresh copy (Buffer#slice would return a view). */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  return Uint8Array.prototype.slice.call(bytes);
}

export function checkQos(qos: number): Qos {
  if (qos !== 0 && qos !== 1) throw new MisuseError('options.qos', `must be 0 or 1, got ${String(qos)}`);
  return qos;
}
