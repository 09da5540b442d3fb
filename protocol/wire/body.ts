/**
 * Field-by-field checking of message bodies. A codec's `decode` reads fields
 * through a `BodyReader`; the first problem becomes a typed Rejection naming
 * the field (never an exception out of `decode`), and unknown fields are
 * rejected so a body means exactly one thing.
 *
 *   decode: (body) => readBody('tokens.forward', body, (r) => ({
 *     sk: r.bytes('sk', 32),
 *     tokens: r.array('tokens', 512, (item) => item.bytes('token', 73, 4096)),
 *   }))
 */
import { MisuseError, reject, accept, type Verdict } from '../errors.ts';
import type { MessageCodec } from './messages.ts';
import { isWireMap, type WireMap, type WireValue } from './msgpack.ts';

/** Every reason readBody rejects a body with (codecs add their own after it). */
export const BODY_REJECTION_REASONS = ['not-a-map', 'field-type', 'field-length', 'field-range', 'field-format', 'unknown-field', 'too-many'] as const;

class BodyFault extends Error {
  override readonly name = 'BodyFault';
  constructor(
    readonly reason: string,
    readonly field: string,
    detail: string,
  ) {
    super(detail);
  }
}

export class BodyReader {
  private readonly seen = new Set<string>();

  constructor(
    private readonly map: WireMap,
    private readonly path: string,
  ) {}

  private at(name: string): string {
    return this.path === '' ? name : `${this.path}.${name}`;
  }

  private take(name: string): WireValue | undefined {
    this.seen.add(name);
    return Object.hasOwn(this.map, name) ? this.map[name] : undefined;
  }

  private fail(name: string, reason: string, detail: string): never {
    throw new BodyFault(reason, this.at(name), detail);
  }

  /** Whether the optional field `name` is present. */
  has(name: string): boolean {
    return Object.hasOwn(this.map, name);
  }

  bytes(name: string, minLength: number, maxLength = minLength): Uint8Array {
    const v = this.take(name);
    if (!(v instanceof Uint8Array)) return this.fail(name, 'field-type', 'expected bytes');
    if (v.length < minLength || v.length > maxLength) {
      return this.fail(name, 'field-length', minLength === maxLength ? `expected ${minLength} bytes` : `expected ${minLength}–${maxLength} bytes`);
    }
    return v;
  }

  /** An integer in [min, max] (safe integers only). */
  int(name: string, min: number, max: number): number {
    const v = this.take(name);
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) return this.fail(name, 'field-type', 'expected an integer');
    if (v < min || v > max) return this.fail(name, 'field-range', `expected an integer in [${min}, ${max}]`);
    return v;
  }

  string(name: string, pattern: RegExp, maxLength = 256): string {
    const v = this.take(name);
    if (typeof v !== 'string') return this.fail(name, 'field-type', 'expected a string');
    if (v.length > maxLength || !pattern.test(v)) return this.fail(name, 'field-format', `does not match ${String(pattern)}`);
    return v;
  }

  bool(name: string): boolean {
    const v = this.take(name);
    if (typeof v !== 'boolean') return this.fail(name, 'field-type', 'expected a boolean');
    return v;
  }

  oneOf<T extends string>(name: string, values: readonly T[]): T {
    const v = this.take(name);
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) return this.fail(name, 'field-format', `expected one of ${values.join(', ')}`);
    return v as T;
  }

  array<T>(name: string, maxItems: number, item: (reader: BodyReader, index: number) => T): T[] {
    const v = this.take(name);
    if (!Array.isArray(v)) return this.fail(name, 'field-type', 'expected an array');
    const list = v as readonly WireValue[];
    if (list.length > maxItems) return this.fail(name, 'too-many', `more than ${maxItems} items`);
    return list.map((entry, i) => {
      if (!isWireMap(entry)) return this.fail(`${name}[${i}]`, 'field-type', 'expected a map');
      const reader = new BodyReader(entry, this.at(`${name}[${i}]`));
      const value = item(reader, i);
      reader.done();
      return value;
    });
  }

  /** Reject fields the codec did not read. */
  done(): void {
    for (const key of Object.keys(this.map)) {
      if (!this.seen.has(key)) throw new BodyFault('unknown-field', this.at(key), `unexpected field ${JSON.stringify(key)}`);
    }
  }
}

/** Run `read` over a map body; any problem becomes a Rejection of `codec`. Never throws on hostile data. */
export function readBody<T>(codec: string, body: WireValue, read: (reader: BodyReader) => T): Verdict<T> {
  if (!isWireMap(body)) return reject(codec, 'not-a-map', 'body must be a map');
  try {
    const reader = new BodyReader(body, '');
    const value = read(reader);
    reader.done();
    return accept(value);
  } catch (err) {
    if (err instanceof BodyFault) return reject(codec, err.reason, err.message, err.field);
    throw err;
  }
}

/**
 * A message codec whose decode is `read` over the body map, then `finish` for
 * the checks a field reader cannot do (cross-field rules, nested formats);
 * encode builds the wire body and decodes it again, so a malformed value is a
 * MisuseError naming the field instead of a message nobody can read.
 */
export function bodyCodec<F, T>(type: string, read: (r: BodyReader) => F, finish: (fields: F) => Verdict<T>, write: (value: T) => WireValue): MessageCodec<T> {
  const decode = (body: WireValue): Verdict<T> => {
    const fields = readBody(type, body, read);
    return fields.ok ? finish(fields.value) : fields;
  };
  return {
    type,
    decode,
    encode: (value) => {
      const wire = write(value);
      const check = decode(wire);
      if (!check.ok) throw new MisuseError(`value.${check.field ?? ''}`, `${type}: ${check.detail}`);
      return wire;
    },
  };
}
