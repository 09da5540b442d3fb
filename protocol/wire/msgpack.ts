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

/**
 * A problem found while walking a value. Thrown internally so the happy path
 * allocates no verdicts and no path strings; the path is assembled only when
 * something is wrong, as the fault unwinds (innermost segment first). Never
 * escapes this module.
 */
class WireFault extends Error {
  override readonly name = 'WireFault';
  readonly segments: string[] = [];
  constructor(
    readonly reason: string,
    readonly detail: string,
  ) {
    super(detail);
  }
}

function pathOf(root: string, segments: readonly string[]): string {
  let path = root;
  for (let i = segments.length - 1; i >= 0; i--) {
    const seg = segments[i] ?? '';
    path = seg.startsWith('[') || path === '' ? `${path}${seg}` : `${path}.${seg}`;
  }
  return path;
}

/** Record where a fault happened as it unwinds through a child (`key` or `[i]`), and rethrow. */
function rethrowAt(err: unknown, segment: string): never {
  if (err instanceof WireFault) err.segments.push(segment);
  throw err;
}

function checkDialect(value: unknown, depth: number): void {
  if (depth > MAX_WIRE_DEPTH) throw new WireFault('too-deep', `nesting deeper than ${MAX_WIRE_DEPTH}`);
  switch (typeof value) {
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) throw new WireFault('non-finite-number', `${value} is not finite`);
      return;
    case 'string':
      if (!value.isWellFormed()) throw new WireFault('bad-string', 'string contains a lone surrogate');
      return;
    case 'object': {
      if (value === null || value instanceof Uint8Array) return;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          if (!(i in value)) throw Object.assign(new WireFault('sparse-array', 'sparse array hole'), { segments: [`[${i}]`] });
          const item: unknown = value[i];
          try {
            checkDialect(item, depth + 1);
          } catch (err) {
            rethrowAt(err, `[${i}]`);
          }
        }
        return;
      }
      if (isPlainObject(value)) {
        for (const key of Object.keys(value)) {
          if (key === '__proto__') throw Object.assign(new WireFault('forbidden-key', '__proto__ is not a valid key'), { segments: [key] });
          if (!key.isWellFormed()) throw Object.assign(new WireFault('bad-string', 'key contains a lone surrogate'), { segments: [key] });
          const item = (value as Record<string, unknown>)[key];
          try {
            checkDialect(item, depth + 1);
          } catch (err) {
            rethrowAt(err, key);
          }
        }
        return;
      }
      throw new WireFault('unsupported-type', `${(value as { constructor?: { name?: string } }).constructor?.name ?? 'object'} is outside the wire dialect`);
    }
    default:
      throw new WireFault('unsupported-type', `${typeof value} is outside the wire dialect`);
  }
}

/**
 * Where `value` leaves the dialect, or undefined when it is a dialect value.
 * `path` names the root in the returned field.
 */
export function wireProblem(value: unknown, path = '$'): { field: string; detail: string } | undefined {
  try {
    checkDialect(value, 0);
    return undefined;
  } catch (err) {
    if (!(err instanceof WireFault)) throw err;
    return { field: pathOf(path, err.segments), detail: err.detail };
  }
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
    return accept(toWire(raw, 0));
  } catch (err) {
    if (err instanceof WireFault) {
      const where = pathOf(path, err.segments);
      return reject(codec, err.reason, err.detail, where === '' ? undefined : where);
    }
    // Defensive: toWire is bounded by MAX_WIRE_DEPTH, but hostile data must never throw out.
    return reject(codec, 'malformed-msgpack', err instanceof Error ? err.message : String(err));
  }
}

function toWire(raw: unknown, depth: number): WireValue {
  if (depth > MAX_WIRE_DEPTH) throw new WireFault('too-deep', `nesting deeper than ${MAX_WIRE_DEPTH}`);
  switch (typeof raw) {
    case 'boolean':
      return raw;
    case 'string':
      // msgpackr replaces invalid UTF-8, but keep decode and encode symmetric regardless.
      if (!raw.isWellFormed()) throw new WireFault('bad-string', 'string contains a lone surrogate');
      return raw;
    case 'number':
      if (!Number.isFinite(raw)) throw new WireFault('non-finite-number', `${raw} is not finite`);
      return raw;
    case 'object':
      if (raw === null) return null;
      // msgpackr hands out Buffers that may view a shared slab: copy into a plain
      // Uint8Array (Uint8Array.prototype.slice would keep the Buffer species).
      if (raw instanceof Uint8Array) return new Uint8Array(raw);
      if (Array.isArray(raw)) {
        const out: WireValue[] = new Array<WireValue>(raw.length);
        for (let i = 0; i < raw.length; i++) {
          const item: unknown = raw[i];
          try {
            out[i] = toWire(item, depth + 1);
          } catch (err) {
            rethrowAt(err, `[${i}]`);
          }
        }
        return out;
      }
      if (raw instanceof Map) return mapToWire(raw as Map<unknown, unknown>, depth);
      break;
    default:
      break;
  }
  const kind =
    raw instanceof Date
      ? 'timestamp extension'
      : typeof raw === 'object' && raw !== null && Object.getPrototypeOf(raw) === Object.prototype
        ? 'record extension'
        : typeof raw === 'object' && raw !== null
          ? ((raw as { constructor?: { name?: string } }).constructor?.name ?? 'object')
          : typeof raw;
  throw new WireFault('unsupported-type', `${kind} is outside the wire dialect`);
}

function mapToWire(raw: Map<unknown, unknown>, depth: number): Record<string, WireValue> {
  const out: Record<string, WireValue> = {};
  for (const [key, value] of raw) {
    if (typeof key !== 'string') throw new WireFault('non-string-key', `map key of type ${typeof key} is outside the wire dialect`);
    if (key === '__proto__') throw Object.assign(new WireFault('forbidden-key', '__proto__ is not a valid key'), { segments: [key] });
    if (!key.isWellFormed()) throw new WireFault('bad-string', 'key contains a lone surrogate');
    try {
      out[key] = toWire(value, depth + 1);
    } catch (err) {
      rethrowAt(err, key);
    }
  }
  return out;
}

export function isWireMap(value: WireValue): value is WireMap {
  return typeof value === 'object' && value !== null && !(value instanceof Uint8Array) && !Array.isArray(value);
}
