/**
 * DIMY backend messages (protocol/dimy/messages.ts): round trips, every typed rejection, encoder
 * misuse, and fuzz — 12,000 random or DIMY-shaped wire bodies per run into every decoder and
 * 3,000 random byte strings through unpackWire and the registry give verdicts only: accepted, or
 * a rejection of that codec with a documented reason.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bloomInsert, createBloom, DIMY_BLOOM_ENCODED_BYTES, encodeBloom, type BloomFilter } from '../../protocol/dimy/bloom.ts';
import {
  DIMY_MAX_CODES_PER_REGISTER,
  DIMY_MESSAGE_CODECS,
  DIMY_MESSAGE_REJECTION_REASONS,
  dimyCbfAckCodec,
  dimyCbfUploadCodec,
  dimyCodesAckCodec,
  dimyCodesRegisterCodec,
  dimyMessages,
  dimyQbfQueryCodec,
  dimyQbfResultCodec,
} from '../../protocol/dimy/messages.ts';
import type { Verdict } from '../../protocol/errors.ts';
import { formatUploadCode, parseUploadCode, UPLOAD_CODE_DIGEST_BYTES, UPLOAD_CODE_REJECTION_REASONS, type UploadCode } from '../../protocol/keyserver/upload-code.ts';
import { BODY_REJECTION_REASONS } from '../../protocol/wire/body.ts';
import { packWire, unpackWire, type WireMap, type WireValue } from '../../protocol/wire/msgpack.ts';
import { codeText, withWrongCheck, wireValueArb } from '../support/key-server-arbitraries.ts';
import { misuseField } from '../support/misuse.ts';
import { prng, seededRng } from '../support/test-rng.ts';

const REASONS: ReadonlySet<string> = new Set([...BODY_REJECTION_REASONS, ...DIMY_MESSAGE_REJECTION_REASONS]);
const TYPES = DIMY_MESSAGE_CODECS.map((c) => c.type);
const registry = dimyMessages();
const reasonOf = (v: Verdict<unknown>): string => (v.ok ? 'accepted' : v.reason);
const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0;

function filterWith(count: number, seed = 1): BloomFilter {
  const filter = createBloom();
  const bytes = seededRng(seed).bytes(32 * count);
  for (let i = 0; i < count; i++) bloomInsert(filter, bytes.subarray(32 * i, 32 * i + 32));
  return filter;
}
function code(seed: number): UploadCode {
  const parsed = parseUploadCode(formatUploadCode(seededRng(seed).bytes(10)));
  if (!parsed.ok) throw new Error(parsed.detail);
  return parsed.value;
}
const FILTER = filterWith(50);
const ENCODED = encodeBloom(FILTER);

/** Problem with a verdict of `type`'s decoder, or undefined. Plain checks: this runs thousands of times. */
function problem(type: string, v: Verdict<unknown>): string | undefined {
  if (v.ok) return Object.keys(v).join() === 'ok,value' ? undefined : 'accepted with extra keys';
  if (v.codec !== (v.reason === 'unknown-type' ? 'message' : type)) return `codec ${v.codec}`;
  if (!REASONS.has(v.reason) && v.reason !== 'unknown-type') return `reason ${v.reason}`;
  if (typeof v.detail !== 'string' || v.detail.length === 0) return 'no detail';
  if (v.reason === 'bad-code' && !UPLOAD_CODE_REJECTION_REASONS.some((r) => v.detail.startsWith(`${r}:`))) return `bad-code detail ${v.detail}`;
  if (v.reason === 'bad-filter' && v.field !== 'filter') return 'bad-filter without field';
  return undefined;
}

describe('round trips', () => {
  it('query, upload, register and the three replies', () => {
    const q = dimyQbfQueryCodec.decode(dimyQbfQueryCodec.encode({ filter: FILTER, tOld: 1_767_225_600_000 }));
    expect(q.ok && same(q.value.filter.bits, FILTER.bits) && q.value.tOld).toBe(1_767_225_600_000);
    const c = code(3);
    const u = dimyCbfUploadCodec.decode(dimyCbfUploadCodec.encode({ filter: FILTER, code: c }));
    expect(u.ok && u.value.code).toEqual(c);
    const digests = [new Uint8Array(32).fill(1), new Uint8Array(32).fill(2)];
    const r = dimyCodesRegisterCodec.decode(dimyCodesRegisterCodec.encode({ digests, lifetimeMs: 86_400_000 }));
    expect(r).toEqual({ ok: true, value: { digests, lifetimeMs: 86_400_000 } });
    for (const [codec, value] of [
      [dimyQbfResultCodec, { matched: true, searched: 10, matches: 2, reason: '' }],
      [dimyQbfResultCodec, { matched: false, searched: 0, matches: 0, reason: 'too-full' }],
      [dimyCbfAckCodec, { accepted: true, reason: '' }],
      [dimyCbfAckCodec, { accepted: false, reason: 'used' }],
      [dimyCodesAckCodec, { registered: 5, reason: 'capacity' }],
    ] as const) {
      expect(codec.decode(codec.encode(value as never))).toEqual({ ok: true, value });
    }
  });

  it('the decoded filter is an aligned copy, the code is canonical', () => {
    const wire = unpackWire(packWire({ filter: ENCODED, code: ' ' + code(4).text.toLowerCase() + ' ' }), 'test');
    const u = wire.ok ? dimyCbfUploadCodec.decode(wire.value) : wire;
    expect(u.ok && u.value.filter.bits.byteOffset % 4).toBe(0);
    expect(u.ok && u.value.code.text).toBe(code(4).text);
  });
});

describe('typed rejections', () => {
  const body = (fields: WireMap): WireMap => ({ filter: ENCODED, tOld: 0, ...fields });
  it.each([
    ['not a map', [1, 2] as WireValue, 'not-a-map', undefined],
    ['filter of 100,000 bytes', body({ filter: ENCODED.subarray(1) }), 'field-length', 'filter'],
    ['filter as a string', body({ filter: 'x' }), 'field-type', 'filter'],
    ['filter version 2', body({ filter: Uint8Array.from(ENCODED, (b, i) => (i === 0 ? 2 : b)) }), 'bad-filter', 'filter'],
    ['tOld negative', body({ tOld: -1 }), 'field-range', 'tOld'],
    ['tOld fractional', body({ tOld: 0.5 }), 'field-type', 'tOld'],
    ['tOld missing', { filter: ENCODED }, 'field-type', 'tOld'],
    ['an extra field', body({ extra: 1 }), 'unknown-field', 'extra'],
  ])('dimy.qbf.query: %s', (_name, wire, reason, field) => {
    const v = dimyQbfQueryCodec.decode(wire);
    expect(v.ok ? 'accepted' : [v.codec, v.reason, v.field]).toEqual(['dimy.qbf.query', reason, field]);
  });

  it('dimy.cbf.upload: a code with a wrong check symbol, control characters, or too long', () => {
    const text = withWrongCheck(codeText(new Uint8Array(10).fill(9)), 1);
    const v = dimyCbfUploadCodec.decode({ filter: ENCODED, code: text });
    expect(v.ok ? 'accepted' : [v.reason, v.field, v.detail.split(':')[0]]).toEqual(['bad-code', 'code', 'bad-check']);
    expect(reasonOf(dimyCbfUploadCodec.decode({ filter: ENCODED, code: 'ab\u0000' }))).toBe('field-format');
    expect(reasonOf(dimyCbfUploadCodec.decode({ filter: ENCODED, code: 'A'.repeat(43) }))).toBe('field-format');
    expect(reasonOf(dimyCbfUploadCodec.decode({ filter: new Uint8Array(DIMY_BLOOM_ENCODED_BYTES), code: code(1).text }))).toBe('bad-filter');
  });

  it('dimy.codes.register: digests not a multiple of 32, too many, lifetime out of range', () => {
    expect(reasonOf(dimyCodesRegisterCodec.decode({ digests: new Uint8Array(33), lifetimeMs: 1 }))).toBe('field-length');
    expect(reasonOf(dimyCodesRegisterCodec.decode({ digests: new Uint8Array(31), lifetimeMs: 1 }))).toBe('field-length');
    expect(reasonOf(dimyCodesRegisterCodec.decode({ digests: new Uint8Array(32 * (DIMY_MAX_CODES_PER_REGISTER + 1)), lifetimeMs: 1 }))).toBe('field-length');
    expect(reasonOf(dimyCodesRegisterCodec.decode({ digests: new Uint8Array(32), lifetimeMs: 0 }))).toBe('field-range');
    expect(reasonOf(dimyCodesRegisterCodec.decode({ digests: new Uint8Array(32), lifetimeMs: 15 * 86_400_000 }))).toBe('field-range');
  });

  it('replies: inconsistent counts and reasons, unknown reasons', () => {
    expect(reasonOf(dimyQbfResultCodec.decode({ matched: true, searched: 1, matches: 0, reason: '' }))).toBe('field-range');
    expect(reasonOf(dimyQbfResultCodec.decode({ matched: false, searched: 1, matches: 2, reason: '' }))).toBe('field-range');
    expect(reasonOf(dimyQbfResultCodec.decode({ matched: false, searched: 1, matches: 0, reason: 'nope' }))).toBe('field-format');
    expect(reasonOf(dimyCbfAckCodec.decode({ accepted: true, reason: 'used' }))).toBe('field-format');
    expect(reasonOf(dimyCbfAckCodec.decode({ accepted: false, reason: '' }))).toBe('field-format');
    expect(reasonOf(dimyCodesAckCodec.decode({ registered: 1001, reason: '' }))).toBe('field-range');
  });

  it('encoders check through the decoder (MisuseError names the field)', () => {
    expect(misuseField(() => dimyQbfQueryCodec.encode({ filter: { bits: new Uint8Array(3) }, tOld: 0 }))).toBe('filter.bits');
    expect(misuseField(() => dimyQbfQueryCodec.encode({ filter: FILTER, tOld: -5 }))).toBe('value.tOld');
    expect(misuseField(() => dimyCodesRegisterCodec.encode({ digests: [new Uint8Array(31)], lifetimeMs: 1 }))).toBe('value.digests[0]');
    expect(misuseField(() => dimyQbfResultCodec.encode({ matched: true, searched: 0, matches: 0, reason: '' }))).toBe('value.matches');
  });

  it('the registry knows the six types and rejects others', () => {
    expect(TYPES).toEqual(['dimy.qbf.query', 'dimy.cbf.upload', 'dimy.codes.register', 'dimy.qbf.result', 'dimy.cbf.ack', 'dimy.codes.ack']);
    expect(registry.decodeBody('dimy.nope', {})).toMatchObject({ ok: false, codec: 'message', reason: 'unknown-type' });
  });
});

describe('fuzz: hostile bodies give typed verdicts only', () => {
  const mutatedFilter = fc.record({ version: fc.integer({ min: 0, max: 255 }), cut: fc.constantFrom(0, 0, 0, 1, -1) }).map(({ version, cut }) => {
    const bytes = cut === 1 ? new Uint8Array(DIMY_BLOOM_ENCODED_BYTES + 1) : cut === -1 ? ENCODED.slice(0, -1) : ENCODED.slice();
    bytes[0] = version === 0 ? 1 : version;
    return bytes;
  });
  const field: fc.Arbitrary<WireValue> = fc.oneof(wireValueArb, mutatedFilter, fc.constantFrom(...Array.from({ length: 4 }, (_, i) => code(i).text)));
  const names = fc.constantFrom('filter', 'tOld', 'code', 'digests', 'lifetimeMs', 'matched', 'searched', 'matches', 'reason', 'accepted', 'registered', 'x');
  const bodyArb: fc.Arbitrary<WireValue> = fc.oneof(
    { weight: 4, arbitrary: fc.array(fc.tuple(names, field), { maxLength: 5 }).map((entries): WireMap => Object.fromEntries(entries)) },
    { weight: 2, arbitrary: fc.record({ filter: mutatedFilter, tOld: fc.oneof(fc.nat(), wireValueArb) }) },
    { weight: 2, arbitrary: fc.record({ filter: mutatedFilter, code: fc.oneof(fc.string({ maxLength: 40 }), field) }) },
    { weight: 1, arbitrary: fc.record({ filter: fc.constant(ENCODED), tOld: fc.nat(), extra: wireValueArb }) },
    { weight: 1, arbitrary: wireValueArb },
  );

  it('12,000 bodies into every decoder', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(fc.constantFrom(...TYPES), bodyArb, (type, body) => {
        const v = registry.decodeBody(type, body);
        seen.add(reasonOf(v));
        return problem(type, v) === undefined;
      }),
      { numRuns: 12_000, seed: 5 },
    );
    for (const r of ['accepted', 'not-a-map', 'field-type', 'field-length', 'field-range', 'field-format', 'unknown-field', 'bad-filter', 'bad-code']) expect(seen).toContain(r);
  });

  it('3,000 random byte strings through unpackWire and every decoder', () => {
    const rand = prng(17);
    for (let i = 0; i < 3000; i++) {
      const bytes = Uint8Array.from({ length: 1 + Math.floor(rand() * 64) }, () => Math.floor(rand() * 256));
      // A map header now and then, so some reach the field checks.
      if (i % 3 === 0) bytes[0] = 0x80 | (bytes[0]! & 0x0f);
      const wire = unpackWire(bytes, 'fuzz');
      if (!wire.ok) continue;
      for (const type of TYPES) expect(problem(type, registry.decodeBody(type, wire.value))).toBeUndefined();
    }
  });

  it('valid bodies with one byte of the code digests or filter flipped stay typed', () => {
    const rand = prng(23);
    for (let i = 0; i < 200; i++) {
      const filter = ENCODED.slice();
      const at = Math.floor(rand() * filter.length);
      filter[at] = filter[at]! ^ (1 << Math.floor(rand() * 8));
      const v = dimyQbfQueryCodec.decode({ filter, tOld: 1 });
      expect(problem('dimy.qbf.query', v)).toBeUndefined();
      expect(v.ok).toBe(at !== 0);
    }
    const digests = new Uint8Array(UPLOAD_CODE_DIGEST_BYTES * 3).fill(7);
    expect(dimyCodesRegisterCodec.decode({ digests, lifetimeMs: 5 }).ok).toBe(true);
  });
});
