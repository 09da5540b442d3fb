/**
 * The msgpack dialect of the wire: plain maps with string keys, arrays,
 * strings, finite numbers, booleans, null and byte strings (Uint8Array).
 * No records/structures, no extension types (timestamps, Maps, Sets): a value
 * outside the dialect is rejected, so decoded data is plain and JSON-like.
 */
import { Packr, Unpackr } from 'msgpackr';
import { accept, reject, type Verdict } from '../errors.ts';

/** A value of the wire dialect. */
export type WireValue = null | boolean | number | string | Uint8Array | readonly WireValue[] | WireMap;
export interface WireMap {
  readonly [key: string]: WireValue;
}

/** Nesting deeper than this is rejected (bounds recursion on hostile input). */
export const MAX_WIRE_DEPTH = 16;

const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/** Encode a dialect value. Returns a fresh Uint8Array (msgpackr reuses its buffer). */
export function packWire(value: WireValue): Uint8Array {
  return new Uint8Array(packr.pack(value));
}

/**
 * Decode bytes as one dialect value. Never throws: malformed msgpack,
 * trailing bytes, extension types and over-deep nesting are rejections.
 */
export function unpackWire(bytes: Uint8Array, codec: string): Verdict<WireValue> {
  let raw: unknown;
  try {
    raw = unpackr.unpack(bytes);
  } catch (err) {
    return reject(codec, 'malformed-msgpack', err instanceof Error ? err.message : String(err));
  }
  return toWire(raw, codec, 0, '$');
}

function toWire(raw: unknown, codec: string, depth: number, path: string): Verdict<WireValue> {
  if (depth > MAX_WIRE_DEPTH) return reject(codec, 'too-deep', `nesting deeper than ${MAX_WIRE_DEPTH}`, path);
  if (raw === null || typeof raw === 'boolean' || typeof raw === 'string') return accept(raw);
  if (typeof raw === 'number') {
    return Number.isFinite(raw) ? accept(raw) : reject(codec, 'non-finite-number', `${raw} is not finite`, path);
  }
  if (raw instanceof Uint8Array) {
    // msgpackr hands out Buffers that may view a shared slab: copy to a plain Uint8Array.
    return accept(Uint8Array.prototype.slice.call(raw));
  }
  if (Array.isArray(raw)) {
    const out: WireValue[] = [];
    for (let i = 0; i < raw.length; i++) {
      const v = toWire(raw[i], codec, depth + 1, `${path}[${i}]`);
      if (!v.ok) return v;
      out.push(v.value);
    }
    return accept(out);
  }
  if (typeof raw === 'object' && Object.getPrototypeOf(raw) === Object.prototype) {
    const out: Record<string, WireValue> = {};
    for (const key of Object.keys(raw)) {
      if (key === '__proto__') return reject(codec, 'forbidden-key', '__proto__ is not a valid key', path);
      const v = toWire((raw as Record<string, unknown>)[key], codec, depth + 1, `${path}.${key}`);
      if (!v.ok) return v;
      out[key] = v.value;
    }
    return accept(out);
  }
  const kind = raw instanceof Date ? 'timestamp extension' : typeof raw;
  return reject(codec, 'unsupported-type', `${kind} is outside the wire dialect`, path);
}

export function isWireMap(value: WireValue): value is WireMap {
  return typeof value === 'object' && value !== null && !(value instanceof Uint8Array) && !Array.isArray(value);
}
