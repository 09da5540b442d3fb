/**
 * Envelope v1 (DESIGN.md "Wire and topics"): every bus message is
 * msgpack `{ v: 1, type, id, from, at, replyTo?, corr?, body }`.
 * Reply address and correlation id live here because MQTT 3.1.1 (aedes 1.x)
 * has no response topic.
 *
 * `encodeEnvelope` throws MisuseError on a malformed envelope (our bug);
 * `decodeEnvelope` never throws: hostile bytes yield a typed Rejection.
 */
import { MisuseError, accept, reject, type Verdict } from '../errors.ts';
import { isWireMap, packWire, unpackWire, type WireMap, type WireValue } from './msgpack.ts';
import { isTopicName, parseActorAddress } from './topics.ts';

/** Current envelope version. */
export const ENVELOPE_VERSION = 1;
/** Largest encoded envelope accepted, bytes (bounds memory per message). */
export const MAX_ENVELOPE_BYTES = 256 * 1024;
/** Message type names: lower-case dotted words, e.g. `demo.heard`. */
export const MESSAGE_TYPE_PATTERN = /^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)*$/;
export const MAX_TYPE_LENGTH = 64;
export const MAX_ID_LENGTH = 64;
/** `from` is an actor address `<role>/<actorId>` (topics.ts `actorAddress`). */
export const MAX_FROM_LENGTH = 160;
export const MAX_TOPIC_LENGTH = 256;
/**
 * `replyTo` must be a topic one can publish to: no wildcards, no NUL, not a
 * `$` (broker-internal) topic. Otherwise a hostile envelope could make the
 * receiver's reply throw inside the MQTT client.
 */
function isReplyTopic(value: string): boolean {
  return isTopicName(value) && !value.startsWith('$');
}

export interface Envelope<B extends WireValue = WireValue> {
  readonly v: typeof ENVELOPE_VERSION;
  /** Message type, e.g. `demo.heard`. */
  readonly type: string;
  /** Unique per sender. */
  readonly id: string;
  /** Sender address `<role>/<actorId>`. */
  readonly from: string;
  /** Simulated send time, ms since the Unix epoch. */
  readonly at: number;
  /** Topic the receiver should answer to. */
  readonly replyTo?: string;
  /** Correlation id: a reply carries the request's `corr`. */
  readonly corr?: string;
  readonly body: B;
}

const CODEC = 'envelope';
const KNOWN_KEYS = new Set(['v', 'type', 'id', 'from', 'at', 'replyTo', 'corr', 'body']);

type FieldCheck = { ok: true } | { ok: false; reason: string; detail: string };

function checkString(value: unknown, max: number, pattern?: RegExp): FieldCheck {
  if (typeof value !== 'string') return { ok: false, reason: 'field-type', detail: 'expected a string' };
  if (value.length === 0) return { ok: false, reason: 'field-empty', detail: 'must not be empty' };
  if (value.length > max) return { ok: false, reason: 'field-too-long', detail: `longer than ${max}` };
  if (pattern !== undefined && !pattern.test(value)) {
    return { ok: false, reason: 'field-format', detail: `does not match ${String(pattern)}` };
  }
  return { ok: true };
}

function checkFrom(value: unknown): FieldCheck {
  const basic = checkString(value, MAX_FROM_LENGTH);
  if (!basic.ok) return basic;
  if (parseActorAddress(value as string) === undefined) {
    return { ok: false, reason: 'field-format', detail: 'expected an actor address <role>/<actorId>' };
  }
  return basic;
}

function checkReplyTo(value: unknown): FieldCheck {
  const basic = checkString(value, MAX_TOPIC_LENGTH);
  if (basic.ok && !isReplyTopic(value as string)) {
    return { ok: false, reason: 'field-format', detail: 'expected a topic name without wildcards, NUL or a leading $' };
  }
  return basic;
}

function checkAt(value: unknown): FieldCheck {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    return { ok: false, reason: 'field-range', detail: 'expected a non-negative safe integer (ms)' };
  }
  return { ok: true };
}

/** Field checks shared by encode (throw) and decode (reject). */
function checkFields(m: Readonly<Record<string, unknown>>): { field: string; check: FieldCheck } | undefined {
  const checks: [string, () => FieldCheck][] = [
    ['type', () => checkString(m['type'], MAX_TYPE_LENGTH, MESSAGE_TYPE_PATTERN)],
    ['id', () => checkString(m['id'], MAX_ID_LENGTH)],
    ['from', () => checkFrom(m['from'])],
    ['at', () => checkAt(m['at'])],
  ];
  if (m['replyTo'] !== undefined) checks.push(['replyTo', () => checkReplyTo(m['replyTo'])]);
  if (m['corr'] !== undefined) checks.push(['corr', () => checkString(m['corr'], MAX_ID_LENGTH)]);
  for (const [field, run] of checks) {
    const check = run();
    if (!check.ok) return { field, check };
  }
  return undefined;
}

export function encodeEnvelope(envelope: Envelope): Uint8Array {
  if (envelope.v !== ENVELOPE_VERSION) throw new MisuseError('v', `must be ${String(ENVELOPE_VERSION)}`);
  const bad = checkFields(envelope as unknown as Record<string, unknown>);
  if (bad !== undefined && !bad.check.ok) throw new MisuseError(bad.field, bad.check.detail);
  const map: Record<string, WireValue> = {
    v: envelope.v,
    type: envelope.type,
    id: envelope.id,
    from: envelope.from,
    at: envelope.at,
  };
  if (envelope.replyTo !== undefined) map['replyTo'] = envelope.replyTo;
  if (envelope.corr !== undefined) map['corr'] = envelope.corr;
  map['body'] = envelope.body;
  // Validates the body against the wire dialect; a MisuseError names e.g. `body.items[2]`.
  const bytes = packWire(map, '');
  if (bytes.length > MAX_ENVELOPE_BYTES) {
    throw new MisuseError('body', `encoded envelope is ${bytes.length} bytes, over ${MAX_ENVELOPE_BYTES}`);
  }
  return bytes;
}

export function decodeEnvelope(bytes: Uint8Array): Verdict<Envelope> {
  if (bytes.length > MAX_ENVELOPE_BYTES) {
    return reject(CODEC, 'too-large', `${bytes.length} bytes, over ${MAX_ENVELOPE_BYTES}`);
  }
  const unpacked = unpackWire(bytes, CODEC, '');
  if (!unpacked.ok) return unpacked;
  const m = unpacked.value;
  if (!isWireMap(m)) return reject(CODEC, 'not-a-map', 'envelope must be a msgpack map');
  if (m['v'] !== ENVELOPE_VERSION) {
    return reject(CODEC, 'unknown-version', `unsupported envelope version ${JSON.stringify(m['v'])}`, 'v');
  }
  for (const key of Object.keys(m)) {
    if (!KNOWN_KEYS.has(key)) return reject(CODEC, 'unknown-field', `unexpected field ${JSON.stringify(key)}`, key);
  }
  const bad = checkFields(m);
  if (bad !== undefined && !bad.check.ok) return reject(CODEC, bad.check.reason, bad.check.detail, bad.field);
  if (!('body' in m)) return reject(CODEC, 'missing-field', 'body is required', 'body');
  return accept(toEnvelope(m));
}

function toEnvelope(m: WireMap): Envelope {
  const base = {
    v: ENVELOPE_VERSION,
    type: m['type'] as string,
    id: m['id'] as string,
    from: m['from'] as string,
    at: m['at'] as number,
    body: m['body'] as WireValue,
  } as const;
  const replyTo = m['replyTo'] as string | undefined;
  const corr = m['corr'] as string | undefined;
  return {
    ...base,
    ...(replyTo !== undefined ? { replyTo } : {}),
    ...(corr !== undefined ? { corr } : {}),
  };
}
