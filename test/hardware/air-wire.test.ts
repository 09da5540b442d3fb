/**
 * protocol/wire/air.ts: round trip of every valid message, MisuseError on
 * encoding a bad one, and ≥ 10,000 hostile inputs (random bytes, mutated
 * encodings, well-formed msgpack with wrong fields) that must all yield
 * either a valid message or a typed `air` rejection — never a throw.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MisuseError } from '../../protocol/errors.ts';
import {
  AIR_VERSION,
  MAX_ADDRESS_LENGTH,
  MAX_AIR_BYTES,
  MAX_AIR_PAYLOAD,
  MAX_COORDINATE_M,
  MAX_RADIO_ID_LENGTH,
  MAX_ROOM_LENGTH,
  decodeAir,
  encodeAir,
  type AirMessage,
} from '../../protocol/wire/air.ts';
import { packWire, type WireValue } from '../../protocol/wire/msgpack.ts';

const coordinate = fc.double({ min: -MAX_COORDINATE_M, max: MAX_COORDINATE_M, noNaN: true }).map((x) => x + 0); // no −0

const messageArb: fc.Arbitrary<AirMessage> = fc
  .record({
    from: fc.string({ minLength: 1, maxLength: MAX_RADIO_ID_LENGTH, unit: 'binary' }),
    address: fc.string({ minLength: 1, maxLength: MAX_ADDRESS_LENGTH }),
    x: coordinate,
    y: coordinate,
    room: fc.option(fc.string({ minLength: 1, maxLength: MAX_ROOM_LENGTH, unit: 'binary' }), { nil: undefined }),
    txAt: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    payload: fc.uint8Array({ minLength: 1, maxLength: MAX_AIR_PAYLOAD }),
  })
  .map(({ room, ...m }) => ({ v: AIR_VERSION, ...m, ...(room !== undefined ? { room } : {}) }));

const wireValueArb: fc.Arbitrary<WireValue> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.integer(),
  fc.string({ maxLength: 200 }),
  fc.uint8Array({ maxLength: 40 }),
  fc.array(fc.integer(), { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 3 }),
);

/** Must not throw; any acceptance must be a valid, re-encodable message. */
function checkHostile(bytes: Uint8Array): 'ok' | 'rejected' {
  const verdict = decodeAir(bytes);
  if (!verdict.ok) {
    expect(verdict.codec).toBe('air');
    expect(verdict.reason.length).toBeGreaterThan(0);
    return 'rejected';
  }
  expect(decodeAir(encodeAir(verdict.value))).toEqual(verdict);
  return 'ok';
}

describe('air wire codec', () => {
  it('round-trips every valid message', () => {
    fc.assert(
      fc.property(messageArb, (m) => {
        const bytes = encodeAir(m);
        expect(bytes.length).toBeLessThanOrEqual(MAX_AIR_BYTES);
        expect(decodeAir(bytes)).toEqual({ ok: true, value: m });
      }),
      { numRuns: 500 },
    );
  });

  it('refuses to encode a bad message, naming the field', () => {
    const good: AirMessage = { v: AIR_VERSION, from: 'r1', address: 'AA:BB:CC:DD:EE:FF', x: 0, y: 0, txAt: 0, payload: new Uint8Array([1]) };
    const bad: [Partial<Record<keyof AirMessage, unknown>>, string][] = [
      [{ v: 2 }, 'v'],
      [{ from: '' }, 'from'],
      [{ from: 'x'.repeat(MAX_RADIO_ID_LENGTH + 1) }, 'from'],
      [{ address: '' }, 'address'],
      [{ x: Number.NaN }, 'x'],
      [{ y: MAX_COORDINATE_M * 2 }, 'y'],
      [{ room: '' }, 'room'],
      [{ txAt: 1.5 }, 'txAt'],
      [{ txAt: -1 }, 'txAt'],
      [{ payload: new Uint8Array(0) }, 'payload'],
      [{ payload: new Uint8Array(MAX_AIR_PAYLOAD + 1) }, 'payload'],
    ];
    for (const [patch, field] of bad) {
      expect(() => encodeAir({ ...good, ...patch } as AirMessage)).toThrow(MisuseError);
      expect(() => encodeAir({ ...good, ...patch } as AirMessage)).toThrow(expect.objectContaining({ field }) as Error);
    }
  });

  it('rejects oversized input before parsing', () => {
    const verdict = decodeAir(new Uint8Array(MAX_AIR_BYTES + 1));
    expect(verdict).toMatchObject({ ok: false, codec: 'air', reason: 'too-large' });
  });

  it('survives ≥ 10,000 hostile inputs with typed rejections only', () => {
    let runs = 0;
    let rejected = 0;
    const tally = (bytes: Uint8Array): void => {
      runs++;
      if (checkHostile(bytes) === 'rejected') rejected++;
    };
    // Random bytes.
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => tally(b)),
      { numRuns: 4_000, seed: 11 },
    );
    // Valid encodings with bytes flipped, cut or inserted.
    const mutation = fc.record({
      at: fc.nat(),
      kind: fc.constantFrom('flip', 'truncate', 'insert', 'set'),
      value: fc.integer({ min: 0, max: 255 }),
    });
    fc.assert(
      fc.property(messageArb, fc.array(mutation, { minLength: 1, maxLength: 4 }), (m, muts) => {
        let b = encodeAir(m);
        for (const { at, kind, value } of muts) {
          const i = b.length === 0 ? 0 : at % b.length;
          if (kind === 'flip') b[i] = (b[i] ?? 0) ^ (1 << value % 8);
          else if (kind === 'set') b[i] = value;
          else if (kind === 'truncate') b = b.slice(0, i);
          else b = Uint8Array.from([...b.subarray(0, i), value, ...b.subarray(i)]);
        }
        tally(b);
      }),
      { numRuns: 4_000, seed: 12 },
    );
    // Well-formed msgpack, one field replaced by any value or an extra field added.
    const keys = ['v', 'from', 'address', 'x', 'y', 'room', 'txAt', 'payload', 'extra', 'constructor'];
    fc.assert(
      fc.property(messageArb, fc.constantFrom(...keys), wireValueArb, (m, key, value) => {
        tally(packWire({ ...(m as unknown as Record<string, WireValue>), [key]: value }));
      }),
      { numRuns: 2_000, seed: 13 },
    );
    // `{ "__proto__": 1 }`, hand-encoded (packWire refuses to produce it).
    tally(Uint8Array.from([0x81, 0xa9, ...new TextEncoder().encode('__proto__'), 0x01]));
    // Not a map at all.
    fc.assert(
      fc.property(wireValueArb, (value) => tally(packWire(value))),
      { numRuns: 500, seed: 14 },
    );
    expect(runs).toBeGreaterThanOrEqual(10_000);
    expect(rejected).toBeGreaterThan(runs / 2);
  });
});
