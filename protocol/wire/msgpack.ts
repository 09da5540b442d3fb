/**
 * The msgpack dialect of the wire: maps with string keys, arrays, strings,
 * finite numbers, booleans, null and byte strings (Uint8Array).
 * No records/structures, no extension types (timestamps, Maps, Sets,
 * structured-clone references): a value outside the dialect is rejected, so
 * decoded data is plain and JSON-like.
 *
 * Encoding validates first and throws MisuseError naming the offending path
 * (our bug); decoding never throws and returns a typed Rejection.
 *
 * Dialect notes:
 * - `-0` is a number but msgpack integers have no sign of zero: it decodes as `0`.
 * - Strings must be well-formed UTF-16 (no lone surrogates): UTF-8 cannot carry them.
 * - Map keys must be strings and never `__proto__`; a map decodes to a plain object.
 * - 64-bit msgpack integers (other encoders use them for ms timestamps) decode
 *   as numbers, like JSON: exact within ±2^53, rounded beyond (field checks
 *   such as `Number.isSafeInteger` reject those where it matters).
 */
import { Packr, Unpackr } from 'msgpackr';
import { MisuseError, accept, reject, type Verdict } from '../errors.ts';

/** A value of the wire dialect. */
export type WireValue = null | boolean | number | string | Uint8Array | readonly WireValue[] | WireMap;
export interface WireMap {
  readonly [key: string]: WireValue;
}

/** Nesting deeper than this is rejected (bounds recursion on hostile input). */
export const MAX_WIRE_DEPTH = 16;

const packr = new Packr({ useRecords: false, variableMapSize: true });
// mapsAsObjects: false → maps arrive as Map, so non-string and `__proto__` keys are
// visible to toWire (msgpackr silently renames `__proto__` and stringifies keys otherwise).
// structuredClone: false → no reference/pointer extensions (cycles, exponential DAGs).
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: false, structuredClone: false, int64AsType: 'number' });

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function childPath(parent: string, key: string): string {
  return parent === '' ? key : `${parent}.${key}`;
}

/**
 * Where `value` leaves the dialect, or undefined when it is a dialect value.
 * `depth` is the nesting depth of `value` itself (the root is 0).
 */
export function wireProblem(value: unknown, path = '$', depth = 0): { field: string; detail: string } | undefined {
  if (depth > MAX_WIRE_DEPTH) return { field: path, detail: `nesting deeper than ${MAX_WIRE_DEPTH}` };
  if (value === null || typeof value === 'boolean') return undefined;
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : { field: path, detail: `${value} is not finite` };
  if (typeof value === 'string') {
    return LONE_SURROGATE.test(value) ? { field: path, detail: 'string contains a lone surrogate' } : undefined;
  }
  if (value instanceof Uint8Array) return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      if (!(i in value)) return { field: `${path}[${i}]`, detail: 'sparse array hole' };
      const p = wireProblem(value[i], `${path}[${i}]`, depth + 1);
      if (p !== undefined) return p;
    }
    return undefined;
  }
  if (typeof value === 'object' && isPlainObject(value)) {
    for (const key of Object.keys(value)) {
      const at = childPath(path, key);
      if (key === '__proto__') return { field: at, detail: '__proto__ is not a valid key' };
      if (LONE_SURROGATE.test(key)) return { field: at, detail: 'key contains a lone surrogate' };
      const p = wireProblem((value as Record<string, unknown>)[key], at, depth + 1);
      if (p !== undefined) return p;
    }
    return undefined;
  }
  const kind = typeof value === 'object' ? (value.constructor?.name ?? 'object') : typeof value;
  return { field: path, detail: `${kind} is outside the wire dialect` };
}

function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Encode a dialect value. Returns a fresh Uint8Array (msgpackr reuses its buffer).
 * Throws MisuseError naming the path (`path` is the root's name) when `value`
 * is outside the dialect.
 */
export function packWire(value: WireValue, path = '$'): Uint8Array {
  const problem = wireProblem(value, path);
  if (problem !== undefined) throw new MisuseError(problem.field === '' ? 'value' : problem.field, problem.detail);
  return new Uint8Array(packr.pack(value));
}

/**
 * Decode bytes as one dialect value. Never throws: malformed msgpack,
 * trailing bytes, extension types, non-string or `__proto__` map keys and
 * over-deep nesting are rejections. `path` names the root in rejection fields.
 */
export function unpackWire(bytes: Uint8Array, codec: string, path = '$'): Verdict<WireValue> {
  let raw: unknown;
  try {
    raw = unpackr.unpack(bytes);
  } catch (err) {
    return reject(codec, 'malformed-msgpack', err instanceof Error ? err.message : String(err));
  }
  try {
    return toWire(raw, codec, 0, path);
  } catch (err) {
    // Defensive: toWire is bounded by MAX_WIRE_DEPTH, but hostile data must never throw out.
    return reject(codec, 'malformed-msgpack', err instanceof Error ? err.message : String(err));
  }
}

function field(path: string): string | undefined {
  return path === '' ? undefined : path;
}

function toWire(raw: unknown, codec: string, depth: number, path: string): Verdict<WireValue> {
  if (depth > MAX_WIRE_DEPTH) return reject(codec, 'too-deep', `nesting deeper than ${MAX_WIRE_DEPTH}`, field(path));
  if (raw === null || typeof raw === 'boolean') return accept(raw);
  if (typeof raw === 'string') {
    // msgpackr replaces invalid UTF-8, but keep decode and encode symmetric regardless.
    return LONE_SURROGATE.test(raw) ? reject(codec, 'bad-string', 'string contains a lone surrogate', field(path)) : accept(raw);
  }
  if (typeof raw === 'number') {
    return Number.isFinite(raw) ? accept(raw) : reject(codec, 'non-finite-number', `${raw} is not finite`, field(path));
  }
  if (raw instanceof Uint8Array) {
    // msgpackr hands out Buffers that may view a shared slab: copy into a plain
    // Uint8Array (Uint8Array.prototype.slice would keep the Buffer species).
    return accept(new Uint8Array(raw));
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
  if (raw instanceof Map) {
    const out: Record<string, WireValue> = {};
    for (const [key, value] of raw as Map<unknown, unknown>) {
      if (typeof key !== 'string') {
        return reject(codec, 'non-string-key', `map key of type ${typeof key} is outside the wire dialect`, field(path));
      }
      if (key === '__proto__') return reject(codec, 'forbidden-key', '__proto__ is not a valid key', field(childPath(path, key)));
      if (LONE_SURROGATE.test(key)) return reject(codec, 'bad-string', 'key contains a lone surrogate', field(path));
      const v = toWire(value, codec, depth + 1, childPath(path, key));
      if (!v.ok) return v;
      out[key] = v.value;
    }
    return accept(out);
  }
  const kind =
    raw instanceof Date
      ? 'timestamp extension'
      : typeof raw === 'object' && Object.getPrototypeOf(raw) === Object.prototype
        ? 'record extension'
        : typeof raw === 'object'
          ? ((raw as { constructor?: { name?: string } }).constructor?.name ?? 'object')
          : typeof raw;
  return reject(codec, 'unsupported-type', `${kind} is outside the wire dialect`, field(path));
}

export function isWireMap(value: WireValue): value is WireMap {
  return typeof value === 'object' && value !== null && !(value instanceof Uint8Array) && !Array.isArray(value);
}
