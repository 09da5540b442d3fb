/**
 * A simulated advertising event on the bus (distributed runs, DESIGN.md
 * "Radio", simulated air): published QoS 0 to `tc/v1/sim/air/<cell>`, as
 * msgpack `{ v: 1, from, address, x, y, room?, txAt, payload }`.
 *
 * The sender's position travels with the frame so each receiving host runs
 * the propagation model itself. `encodeAir` throws MisuseError on a bad
 * message (our bug); `decodeAir` never throws: anything off yields a typed
 * Rejection (codec `air`), and every size is bounded.
 */
import { MisuseError, accept, reject, type Verdict } from '../errors.ts';
import { isWireMap, packWire, unpackWire, type WireValue } from './msgpack.ts';

export const AIR_VERSION = 1;
const CODEC = 'air';
/** Largest payload: the BLE 5 maximum advertising data length (chained PDUs), bytes. */
export const MAX_AIR_PAYLOAD = 1650;
/**
 * Largest encoded message accepted, bytes: the payload plus the string fields
 * at their maximum length in UTF-8 (≤ 3 bytes per UTF-16 unit) fit below it.
 */
export const MAX_AIR_BYTES = 4096;
export const MAX_RADIO_ID_LENGTH = 128;
/** Link-layer address as text (`AA:BB:CC:DD:EE:FF` in practice). */
export const MAX_ADDRESS_LENGTH = 64;
export const MAX_ROOM_LENGTH = 128;
/** |x|, |y| bound, metres: far beyond any map, small enough for exact cell arithmetic. */
export const MAX_COORDINATE_M = 1e9;

export interface AirMessage {
  readonly v: typeof AIR_VERSION;
  /** Sending radio's id. */
  readonly from: string;
  /** Sending radio's link-layer address at the time of the event. */
  readonly address: string;
  /** Sender position, metres. */
  readonly x: number;
  readonly y: number;
  /** Sender's room / household (absent = outdoors). */
  readonly room?: string;
  /** Simulated time of the advertising event, ms since the Unix epoch. */
  readonly txAt: number;
  /** Service-data bytes of the advertisement. */
  readonly payload: Uint8Array;
}

const KNOWN_KEYS = new Set(['v', 'from', 'address', 'x', 'y', 'room', 'txAt', 'payload']);

interface Problem {
  readonly field: string;
  readonly reason: string;
  readonly detail: string;
}

function str(m: Readonly<Record<string, unknown>>, field: string, max: number): Problem | undefined {
  const v = m[field];
  if (typeof v !== 'string') return { field, reason: 'field-type', detail: 'expected a string' };
  if (v.length === 0) return { field, reason: 'field-empty', detail: 'must not be empty' };
  if (v.length > max) return { field, reason: 'field-too-long', detail: `longer than ${max}` };
  return undefined;
}

function coord(m: Readonly<Record<string, unknown>>, field: string): Problem | undefined {
  const v = m[field];
  if (typeof v !== 'number' || !Number.isFinite(v)) return { field, reason: 'field-type', detail: 'expected a finite number (m)' };
  if (Math.abs(v) > MAX_COORDINATE_M) return { field, reason: 'field-range', detail: `|${field}| over ${MAX_COORDINATE_M}` };
  return undefined;
}

/** Field checks shared by encode (throw) and decode (reject). */
function problem(m: Readonly<Record<string, unknown>>): Problem | undefined {
  const txAt = m['txAt'];
  const payload = m['payload'];
  return (
    str(m, 'from', MAX_RADIO_ID_LENGTH) ??
    str(m, 'address', MAX_ADDRESS_LENGTH) ??
    coord(m, 'x') ??
    coord(m, 'y') ??
    (m['room'] !== undefined ? str(m, 'room', MAX_ROOM_LENGTH) : undefined) ??
    (typeof txAt !== 'number' || !Number.isSafeInteger(txAt) || txAt < 0
      ? { field: 'txAt', reason: 'field-range', detail: 'expected a non-negative safe integer (ms)' }
      : undefined) ??
    (!(payload instanceof Uint8Array)
      ? { field: 'payload', reason: 'field-type', detail: 'expected bytes' }
      : payload.length === 0
        ? { field: 'payload', reason: 'field-empty', detail: 'must not be empty' }
        : payload.length > MAX_AIR_PAYLOAD
          ? { field: 'payload', reason: 'field-too-long', detail: `${payload.length} bytes, over ${MAX_AIR_PAYLOAD}` }
          : undefined)
  );
}

export function encodeAir(message: AirMessage): Uint8Array {
  if (message.v !== AIR_VERSION) throw new MisuseError('v', `must be ${String(AIR_VERSION)}`);
  const bad = problem(message as unknown as Record<string, unknown>);
  if (bad !== undefined) throw new MisuseError(bad.field, bad.detail);
  const map: Record<string, WireValue> = { v: AIR_VERSION, from: message.from, address: message.address, x: message.x, y: message.y };
  if (message.room !== undefined) map['room'] = message.room;
  map['txAt'] = message.txAt;
  map['payload'] = message.payload;
  const bytes = packWire(map);
  // Unreachable with the field bounds above; kept so encode and decode can never disagree.
  if (bytes.length > MAX_AIR_BYTES) throw new MisuseError('payload', `encoded message is ${bytes.length} bytes, over ${MAX_AIR_BYTES}`);
  return bytes;
}

export function decodeAir(bytes: Uint8Array): Verdict<AirMessage> {
  if (!(bytes instanceof Uint8Array)) return reject(CODEC, 'not-bytes', 'expected a Uint8Array');
  if (bytes.length > MAX_AIR_BYTES) return reject(CODEC, 'too-large', `${bytes.length} bytes, over ${MAX_AIR_BYTES}`);
  const unpacked = unpackWire(bytes, CODEC);
  if (!unpacked.ok) return unpacked;
  const m = unpacked.value;
  if (!isWireMap(m)) return reject(CODEC, 'not-a-map', 'air message must be a msgpack map');
  if (m['v'] !== AIR_VERSION) return reject(CODEC, 'unknown-version', `unsupported air version ${JSON.stringify(m['v'])}`, 'v');
  for (const key of Object.keys(m)) {
    if (!KNOWN_KEYS.has(key)) return reject(CODEC, 'unknown-field', `unexpected field ${JSON.stringify(key)}`, key);
  }
  const bad = problem(m);
  if (bad !== undefined) return reject(CODEC, bad.reason, bad.detail, bad.field);
  const room = m['room'] as string | undefined;
  return accept({
    v: AIR_VERSION,
    from: m['from'] as string,
    address: m['address'] as string,
    x: m['x'] as number,
    y: m['y'] as number,
    ...(room !== undefined ? { room } : {}),
    txAt: m['txAt'] as number,
    payload: m['payload'] as Uint8Array,
  });
}
