/**
 * protocol/wire/envelope.ts + msgpack.ts (DESIGN.md "Wire and topics"):
 * envelope v1 round trip over the msgpack dialect, MisuseError on encode,
 * typed rejections on decode, and fuzzing of hostile bytes.
 */
import { prng } from '../support/test-rng.ts';
import { misuseField } from '../support/misuse.ts';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import type { Rejection } from '../../protocol/errors.ts';
import {
  MAX_ENVELOPE_BYTES,
  MAX_ID_LENGTH,
  MAX_TYPE_LENGTH,
  MESSAGE_TYPE_PATTERN,
  decodeEnvelope,
  encodeEnvelope,
  type Envelope,
} from '../../protocol/wire/envelope.ts';
import { MAX_WIRE_DEPTH, type WireValue } from '../../protocol/wire/msgpack.ts';
import { ROLES, actorAddress } from '../../protocol/wire/topics.ts';

// ------------------------------------------------------------ arbitraries

const key = fc.string({ unit: 'binary', maxLength: 8 }).filter((k) => k !== '__proto__');
const leaf: fc.Arbitrary<WireValue> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.maxSafeInteger(),
  // −0 has no msgpack integer form: the dialect decodes it as 0 (pinned below).
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => (Object.is(x, -0) ? 0 : x)),
  fc.string({ unit: 'binary', maxLength: 24 }),
  fc.uint8Array({ maxLength: 40 }),
);
const { body } = fc.letrec<{ body: WireValue }>((tie) => ({
  body: fc.oneof(
    { maxDepth: 5, depthIdentifier: 'body' },
    leaf,
    fc.array(tie('body'), { maxLength: 4, depthIdentifier: 'body' }),
    fc.dictionary(key, tie('body'), { maxKeys: 4, noNullPrototype: true, depthIdentifier: 'body' }),
  ),
}));
const segment = fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/);
const topic = fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => `tc/v1/${s.join('/')}`).filter((t) => t.length <= 256);
const shortString = (max: number) => fc.string({ unit: 'binary', minLength: 1, maxLength: max }).filter((s) => s.length <= max);

const envelope: fc.Arbitrary<Envelope> = fc.record(
  {
    v: fc.constant(1 as const),
    type: fc.stringMatching(MESSAGE_TYPE_PATTERN).filter((t) => t.length <= MAX_TYPE_LENGTH),
    id: shortString(MAX_ID_LENGTH),
    from: fc.tuple(fc.constantFrom(...ROLES), segment).map(([role, id]) => actorAddress(role, id)),
    at: fc.maxSafeNat(),
    replyTo: topic,
    corr: shortString(MAX_ID_LENGTH),
    body,
  },
  { requiredKeys: ['v', 'type', 'id', 'from', 'at', 'body'], noNullPrototype: true },
);

const BASE: Envelope = { v: 1, type: 'demo.heard', id: 'm-1', from: 'phone/p1', at: 1_700_000_000_000, body: { n: 1 } };
const rawPackr = new Packr({ useRecords: false, variableMapSize: true });
const raw = (value: unknown): Uint8Array => new Uint8Array(rawPackr.pack(value));

function without(value: Record<string, unknown>, field: string): Record<string, unknown> {
  const copy = { ...value };
  delete copy[field];
  return copy;
}


function rejection(bytes: Uint8Array): Rejection {
  const v = decodeEnvelope(bytes);
  if (v.ok) throw new Error(`expected a rejection, got ${JSON.stringify(v.value)}`);
  return v;
}

// ------------------------------------------------------------ tests

describe('envelope v1: round trip over the msgpack dialect', () => {
  it('property: decode(encode(x)) = x for arbitrary valid envelopes (nested maps, arrays, bytes, numbers)', () => {
    fc.assert(
      fc.property(envelope, (env) => {
        const bytes = encodeEnvelope(env);
        const back = decodeEnvelope(bytes);
        expect(back.ok).toBe(true);
        // toStrictEqual: byte fields come back as plain Uint8Array (not Buffer), maps as plain objects.
        if (back.ok) expect(back.value).toStrictEqual(env);
      }),
      { numRuns: 1000 },
    );
  });

  it('dialect: byte strings decode as plain Uint8Array copies, not Buffer views of the input', () => {
    const bytes = encodeEnvelope({ ...BASE, body: { b: Uint8Array.of(1, 2, 3) } });
    const v = decodeEnvelope(bytes);
    const b = v.ok && typeof v.value.body === 'object' && v.value.body !== null && 'b' in v.value.body ? v.value.body['b'] : undefined;
    expect(b).toBeInstanceOf(Uint8Array);
    expect(Object.getPrototypeOf(b)).toBe(Uint8Array.prototype);
    bytes.fill(0);
    expect(b).toEqual(Uint8Array.of(1, 2, 3));
  });

  it('dialect: −0 decodes as 0; 64-bit integers from other encoders decode as numbers', () => {
    const v = decodeEnvelope(encodeEnvelope({ ...BASE, body: -0 }));
    expect(v.ok && Object.is(v.value.body, 0)).toBe(true);
    // Hand-written map whose `at` is a msgpack uint64 (as e.g. Python's msgpack writes ms timestamps).
    const str = (s: string) => [0xa0 | s.length, ...new TextEncoder().encode(s)];
    const at = [0xcf, 0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00];
    const bytes = Uint8Array.from([0x86, ...str('v'), 1, ...str('type'), ...str('a.b'), ...str('id'), ...str('i'), ...str('from'), ...str('phone/p'), ...str('at'), ...at, ...str('body'), 0xc0]);
    const d = decodeEnvelope(bytes);
    expect(d.ok && d.value.at).toBe(0x018bcfe56800);
  });
});

describe('envelope v1: encode throws MisuseError naming the field', () => {
  const cases: [string, Record<string, unknown>][] = [
    ['v', { v: 2 }],
    ['type', { type: '' }],
    ['type', { type: 'Demo.Heard' }],
    ['type', { type: 'a'.repeat(MAX_TYPE_LENGTH + 1) }],
    ['type', { type: 5 }],
    ['id', { id: '' }],
    ['id', { id: 'x'.repeat(MAX_ID_LENGTH + 1) }],
    ['from', { from: 'nobody/x' }],
    ['from', { from: 'phone/a b' }],
    ['at', { at: -1 }],
    ['at', { at: 1.5 }],
    ['at', { at: 2 ** 53 }],
    ['at', { at: Number.NaN }],
    ['replyTo', { replyTo: '' }],
    ['replyTo', { replyTo: 'tc/v1/#' }],
    ['replyTo', { replyTo: 'tc/+/x' }],
    ['replyTo', { replyTo: '$SYS/x' }],
    ['corr', { corr: '' }],
    ['body', { body: undefined }],
    ['body.x', { body: { x: Number.NaN } }],
    ['body[1]', { body: [1, Number.POSITIVE_INFINITY] }],
    ['body.d', { body: { d: new Date(0) } }],
    ['body', { body: new Map() }],
    ['body', { body: 10n }],
    ['body.s', { body: { s: 'a\ud800' } }],
    ['body.__proto__', { body: JSON.parse('{"__proto__": 1}') as unknown }],
    ['body[1]', { body: [1, , 3] }], // eslint-disable-line no-sparse-arrays
    ['body', { body: new Uint8Array(MAX_ENVELOPE_BYTES) }],
  ];
  it.each(cases.map(([field, patch], i) => [field, i, patch] as const))('%s (case %i)', (field, _i, patch) => {
    expect(misuseField(() => encodeEnvelope({ ...BASE, ...patch }))).toBe(field);
  });

  it(`nesting deeper than MAX_WIRE_DEPTH (${MAX_WIRE_DEPTH}) is refused on encode, like on decode`, () => {
    let deep: WireValue = 1;
    for (let i = 0; i < MAX_WIRE_DEPTH; i++) deep = [deep];
    expect(misuseField(() => encodeEnvelope({ ...BASE, body: deep }))).toMatch(/^body\[0\]/);
  });

  it('property: any valid envelope with one field broken throws MisuseError naming that field', () => {
    fc.assert(
      fc.property(envelope, fc.constantFrom(...cases), (env, [field, patch]) => {
        expect(misuseField(() => encodeEnvelope({ ...env, ...patch }))).toBe(field);
      }),
      { numRuns: 300 },
    );
  });
});

describe('envelope v1: decode returns typed rejections', () => {
  const good = { v: 1, type: 'demo.heard', id: 'm-1', from: 'phone/p1', at: 5, body: null };
  const cases: [string, string, string | undefined, unknown][] = [
    ['unknown version', 'unknown-version', 'v', { ...good, v: 2 }],
    ['missing version', 'unknown-version', 'v', without(good, 'v')],
    ['string version', 'unknown-version', 'v', { ...good, v: '1' }],
    ['unknown type format', 'field-format', 'type', { ...good, type: 'Demo Heard' }],
    ['type not a string', 'field-type', 'type', { ...good, type: 7 }],
    ['unknown extra field', 'unknown-field', 'extra', { ...good, extra: 1 }],
    ['missing body', 'missing-field', 'body', without(good, 'body')],
    ['missing id', 'field-type', 'id', without(good, 'id')],
    ['id not a string', 'field-type', 'id', { ...good, id: 5 }],
    ['empty id', 'field-empty', 'id', { ...good, id: '' }],
    ['long id', 'field-too-long', 'id', { ...good, id: 'x'.repeat(65) }],
    ['from not an address', 'field-format', 'from', { ...good, from: 'nobody/x' }],
    ['from not a string', 'field-type', 'from', { ...good, from: true }],
    ['at a string', 'field-range', 'at', { ...good, at: '5' }],
    ['at negative', 'field-range', 'at', { ...good, at: -5 }],
    ['at fractional', 'field-range', 'at', { ...good, at: 0.5 }],
    ['replyTo not a string', 'field-type', 'replyTo', { ...good, replyTo: 1 }],
    ['replyTo wildcard', 'field-format', 'replyTo', { ...good, replyTo: 'tc/v1/#' }],
    ['corr not a string', 'field-type', 'corr', { ...good, corr: [] }],
    ['not a map', 'not-a-map', undefined, [1, 2]],
    ['NaN in body', 'non-finite-number', 'body.x', { ...good, body: { x: Number.NaN } }],
    ['timestamp extension in body', 'unsupported-type', 'body', { ...good, body: new Date(0) }],
    ['non-string map key in body', 'non-string-key', 'body', { ...good, body: new Map([[1, 'x']]) }],
    ['__proto__ key at top level', 'forbidden-key', '__proto__', JSON.parse('{"v":1,"__proto__":{"polluted":true}}')],
    ['__proto__ key in body', 'forbidden-key', 'body.__proto__', { ...good, body: JSON.parse('{"__proto__":{"polluted":true}}') as unknown }],
  ];
  it.each(cases)('%s → %s', (_name, reason, field, value) => {
    const r = rejection(raw(value));
    expect({ codec: r.codec, reason: r.reason, field: r.field }).toEqual({ codec: 'envelope', reason, field });
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('too deep, trailing bytes, truncation, oversize, records and structured clones are rejected', () => {
    let deep: unknown = null;
    for (let i = 0; i <= MAX_WIRE_DEPTH; i++) deep = [deep];
    expect(rejection(raw({ ...good, body: deep })).reason).toBe('too-deep');
    const bytes = raw(good);
    expect(rejection(Uint8Array.from([...bytes, 0xc0])).reason).toBe('malformed-msgpack');
    expect(rejection(bytes.subarray(0, bytes.length - 1)).reason).toBe('malformed-msgpack');
    expect(rejection(new Uint8Array(MAX_ENVELOPE_BYTES + 1)).reason).toBe('too-large');
    const record = new Uint8Array(new Packr({ useRecords: true }).pack({ ...good, body: { a: 1 } }));
    expect(rejection(record).codec).toBe('envelope');
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic['self'] = cyclic;
    const clone = new Uint8Array(new Packr({ structuredClone: true }).pack({ ...good, body: cyclic }));
    expect(rejection(clone).reason).toBe('malformed-msgpack');
  });
});

// ------------------------------------------------------------ fuzz


describe('envelope v1: fuzz — hostile bytes never throw out of decodeEnvelope', () => {
  it('10,000 random byte strings and 10,000 mutated valid encodings → a well-formed envelope or an envelope rejection; memory stays bounded', () => {
    const r = prng(2024);
    const int = (n: number) => Math.floor(r() * n);
    const samples = fc.sample(envelope, { numRuns: 200, seed: 7 }).map(encodeEnvelope);
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    const heapBefore = process.memoryUsage().heapUsed;
    let accepted = 0;
    const check = (bytes: Uint8Array): void => {
      const v = decodeEnvelope(bytes);
      if (v.ok) {
        accepted++;
        expect(() => encodeEnvelope(v.value)).not.toThrow(); // well-formed: it re-encodes
      } else {
        expect(v.codec).toBe('envelope');
        expect(typeof v.reason).toBe('string');
      }
    };
    const interesting = [0x80, 0x8f, 0x90, 0xc0, 0xc1, 0xc4, 0xc7, 0xcb, 0xcf, 0xd4, 0xd5, 0xdc, 0xdd, 0xde, 0xdf, 0xff];
    for (let i = 0; i < 10_000; i++) {
      const bytes = Uint8Array.from({ length: int(300) }, () => (r() < 0.2 ? interesting[int(interesting.length)]! : int(256)));
      if (bytes.length > 0 && r() < 0.5) bytes[0] = 0x80 | int(16); // often a map header
      check(bytes);
    }
    for (let i = 0; i < 10_000; i++) {
      let m = samples[i % samples.length]!.slice();
      const rounds = 1 + int(3);
      for (let k = 0; k < rounds; k++) {
        const at = int(m.length + 1);
        switch (int(5)) {
          case 0: // bit flip
            if (m.length > 0) m[Math.min(at, m.length - 1)]! ^= 1 << int(8);
            break;
          case 1: // truncation
            m = m.subarray(0, at);
            break;
          case 2: // insertion
            m = Uint8Array.from([...m.subarray(0, at), r() < 0.5 ? interesting[int(interesting.length)]! : int(256), ...m.subarray(at)]);
            break;
          case 3: {
            // splice with another valid encoding
            const other = samples[int(samples.length)]!;
            const cut = int(other.length + 1);
            m = Uint8Array.from([...m.subarray(0, at), ...other.subarray(cut)]);
            break;
          }
          default: // overwrite with an interesting byte (lengths, extension headers)
            if (m.length > 0) m[Math.min(at, m.length - 1)] = interesting[int(interesting.length)]!;
        }
      }
      check(m);
    }
    gc?.();
    const growth = process.memoryUsage().heapUsed - heapBefore;
    expect(growth).toBeLessThan(64 * 1024 * 1024);
    expect(accepted).toBeGreaterThan(0); // mutations that keep an envelope valid are exercised too
  });

  it('property: arbitrary bytes never throw and reject with codec envelope', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const v = decodeEnvelope(bytes);
        if (!v.ok) expect(v.codec).toBe('envelope');
      }),
      { numRuns: 2000 },
    );
  });
});
