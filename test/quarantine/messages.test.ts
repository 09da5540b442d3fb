/**
 * Quarantine messages (docs/decisions/0002): every codec round-trips through
 * the envelope, checks every field, rejects unknown fields, and answers
 * hostile bodies with typed rejections only.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MisuseError } from '../../protocol/errors.ts';
import {
  MAX_TUPLES_PER_BATCH,
  alertRaiseCodec,
  beaconRegisterCodec,
  quarantineMessages,
  quarantineRegisterCodec,
  tokensAckCodec,
  tokensForwardCodec,
} from '../../protocol/quarantine/messages.ts';
import { decodeEnvelope, encodeEnvelope } from '../../protocol/wire/envelope.ts';
import type { MessageCodec } from '../../protocol/wire/messages.ts';
import type { WireValue } from '../../protocol/wire/msgpack.ts';

const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
const time = fc.integer({ min: 0, max: 4_102_444_800_000 });
const beaconId = fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/);

const samples: [MessageCodec<unknown>, fc.Arbitrary<unknown>][] = [
  [quarantineRegisterCodec, fc.record({ sk: bytes(32), tPast: time, beaconId, beaconKey: bytes(32), endsAt: time })],
  [
    tokensForwardCodec,
    fc.record({
      sk: bytes(32),
      batch: fc.nat({ max: 2 ** 32 - 1 }),
      tuples: fc.array(fc.record({ token: fc.uint8Array({ minLength: 73, maxLength: 256 }), receivedAt: time }), { maxLength: 20 }),
    }),
  ],
  [tokensAckCodec, fc.record({ batch: fc.nat({ max: 2 ** 32 - 1 }), accepted: fc.nat({ max: 512 }), rejected: fc.nat({ max: 512 }) })],
  [
    alertRaiseCodec,
    fc.record({ alertId: fc.stringMatching(/^[A-Za-z0-9_.:-]{1,96}$/), beaconId, windowStart: time, windowEnd: time, reason: fc.constantFrom('no-valid-token', 'monitoring-lost') }),
  ],
  [beaconRegisterCodec, fc.record({ beaconId, address: fc.string({ minLength: 1, maxLength: 100 }).filter((s) => !/\p{Cc}/u.test(s) && s.isWellFormed()) })],
];

describe('quarantine messages', () => {
  it.each(samples.map(([c, a]) => [c.type, c, a] as const))('%s: decode(envelope(encode(x))) = x', (_type, codec, arb) => {
    fc.assert(
      fc.property(arb, (value) => {
        const env = decodeEnvelope(encodeEnvelope({ v: 1, type: codec.type, id: 'x', from: 'phone/p1', at: 0, body: codec.encode(value) }));
        expect(env.ok).toBe(true);
        if (env.ok) expect(codec.decode(env.value.body)).toEqual({ ok: true, value });
      }),
      { numRuns: 100 },
    );
  });

  it('rejects wrong lengths, ranges, unknown fields and non-maps with the field named', () => {
    const good = { sk: new Uint8Array(32), tPast: 0, beaconId: 'b1', beaconKey: new Uint8Array(32), endsAt: 1 };
    expect(quarantineRegisterCodec.decode({ ...good, sk: new Uint8Array(31) })).toMatchObject({ ok: false, reason: 'field-length', field: 'sk' });
    expect(quarantineRegisterCodec.decode({ ...good, tPast: -1 })).toMatchObject({ ok: false, reason: 'field-range', field: 'tPast' });
    expect(quarantineRegisterCodec.decode({ ...good, address: 'Main St 1' })).toMatchObject({ ok: false, reason: 'unknown-field', field: 'address' });
    expect(quarantineRegisterCodec.decode({ ...good, beaconId: 'a/b' })).toMatchObject({ ok: false, reason: 'field-format', field: 'beaconId' });
    expect(quarantineRegisterCodec.decode([1, 2])).toMatchObject({ ok: false, reason: 'not-a-map' });
    const tuples = Array.from({ length: MAX_TUPLES_PER_BATCH + 1 }, () => ({ token: new Uint8Array(73), receivedAt: 0 }));
    expect(tokensForwardCodec.decode({ sk: new Uint8Array(32), batch: 0, tuples })).toMatchObject({ ok: false, reason: 'too-many', field: 'tuples' });
    expect(tokensForwardCodec.decode({ sk: new Uint8Array(32), batch: 0, tuples: [{ token: new Uint8Array(72), receivedAt: 0 }] })).toMatchObject({
      ok: false,
      reason: 'field-length',
      field: 'tuples[0].token',
    });
    expect(tokensForwardCodec.decode({ sk: new Uint8Array(32), batch: 0, tuples: [{ token: new Uint8Array(73), receivedAt: 0, extra: 1 }] })).toMatchObject({
      ok: false,
      reason: 'unknown-field',
      field: 'tuples[0].extra',
    });
  });

  it('encode throws MisuseError on a malformed value (our bug, not data)', () => {
    expect(() => alertRaiseCodec.encode({ alertId: 'a', beaconId: 'b', windowStart: 0, windowEnd: 1, reason: 'bored' as never })).toThrow(MisuseError);
  });

  it('hostile bodies only ever produce typed rejections (fuzz, 10,000 bodies)', () => {
    const registry = quarantineMessages();
    const types = ['quarantine.register', 'tokens.forward', 'tokens.ack', 'alert.raise', 'alert.ack', 'beacon.register', 'monitoring.enable'];
    const wire: fc.Arbitrary<WireValue> = fc.letrec<{ v: WireValue }>((tie) => ({
      v: fc.oneof(
        { depthSize: 'small' },
        fc.constant(null),
        fc.boolean(),
        fc.integer(),
        fc.double({ noNaN: true, noDefaultInfinity: true }),
        fc.string(),
        fc.uint8Array({ maxLength: 100 }),
        fc.array(tie('v'), { maxLength: 4 }),
        fc.dictionary(fc.constantFrom('sk', 'batch', 'tuples', 'token', 'receivedAt', 'beaconId', 'alertId', 'x'), tie('v'), { maxKeys: 5 }),
      ),
    })).v;
    fc.assert(
      fc.property(fc.constantFrom(...types), wire, (type, body) => {
        const verdict = registry.decodeBody(type, body);
        if (!verdict.ok) expect(verdict.codec).toBe(type);
      }),
      { numRuns: 10_000 },
    );
  });
});
