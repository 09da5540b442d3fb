/**
 * Messages of the quarantine extension (issue 3; topics and durability in
 * docs/decisions/0002). The app backend's messages carry keys, beacon ids,
 * tokens and times — never an identity or address; the police backend's
 * carry beacon ids, addresses and alerts — never a phone key.
 */
import { MisuseError } from '../errors.ts';
import { readBody, type BodyReader } from '../wire/body.ts';
import type { MessageCodec } from '../wire/messages.ts';
import { MessageRegistry } from '../wire/messages.ts';
import type { WireValue } from '../wire/msgpack.ts';
import { SEGMENT_PATTERN } from '../wire/topics.ts';
import { FERNET_KEY_BYTES, FERNET_MIN_TOKEN_BYTES } from '../beacon/fernet.ts';

/** SK_t of DP-3T low-cost, bytes (SPECS §2.1). */
export const SK_DP3T_BYTES = 32;
/** Fernet key = signing ‖ encryption key, bytes (SPECS §5). */
export const BEACON_KEY_BYTES = FERNET_KEY_BYTES;
/** Longest presence token accepted in a batch, bytes (a 20-digit timestamp text pads to 32: 57 + 32 = 89). */
export const MAX_FORWARDED_TOKEN_BYTES = 256;
/** Tuples per forwarded batch (a phone splits larger buffers). */
export const MAX_TUPLES_PER_BATCH = 512;
/** Largest simulated time, ms (year 9999): bounds every time field. */
export const MAX_TIME_MS = 253_402_300_799_999;
export const MAX_ADDRESS_LENGTH = 256;
/** Printable text, no control characters. */
const ADDRESS_PATTERN = /^[^\p{Cc}]{1,256}$/u;
const ALERT_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,96}$/;

export const ALERT_REASONS = ['no-valid-token', 'monitoring-lost'] as const;
export type AlertReason = (typeof ALERT_REASONS)[number];

export interface QuarantineRegister {
  /** SK_DP3T(T_PAST): the patient's DP-3T day key, their pseudonym at the app backend. */
  readonly sk: Uint8Array;
  /** T_PAST: start of the day of `sk`, ms. */
  readonly tPast: number;
  readonly beaconId: string;
  /** SK_beacon: the beacon's Fernet key. */
  readonly beaconKey: Uint8Array;
  /** End of quarantine, ms. */
  readonly endsAt: number;
}
export interface BeaconRef {
  readonly beaconId: string;
}
export interface ForwardedToken {
  readonly token: Uint8Array;
  /** When the phone heard it, ms (phone clock). */
  readonly receivedAt: number;
}
export interface TokensForward {
  readonly sk: Uint8Array;
  /** The phone's batch number: a re-sent batch is acknowledged again, never counted twice. */
  readonly batch: number;
  readonly tuples: readonly ForwardedToken[];
}
export interface TokensAck {
  readonly batch: number;
  readonly accepted: number;
  readonly rejected: number;
}
export interface AlertRaise {
  /** Derived from beacon + window: the police backend stores each alert once. */
  readonly alertId: string;
  readonly beaconId: string;
  readonly windowStart: number;
  readonly windowEnd: number;
  readonly reason: AlertReason;
}
export interface AlertRef {
  readonly alertId: string;
}
export interface BeaconRegister {
  readonly beaconId: string;
  readonly address: string;
}

const beaconId = (r: BodyReader): string => r.string('beaconId', SEGMENT_PATTERN, 64);
const time = (r: BodyReader, name: string): number => r.int(name, 0, MAX_TIME_MS);

function codec<T>(type: string, read: (r: BodyReader) => T, encode: (value: T) => WireValue): MessageCodec<T> {
  return {
    type,
    decode: (body) => readBody(type, body, read),
    encode(value) {
      const wire = encode(value);
      // Encoding goes through the same checks: a malformed value is our bug.
      const check = readBody(type, wire, read);
      if (!check.ok) throw new MisuseError(check.field ?? type, check.detail);
      return wire;
    },
  };
}

export const quarantineRegisterCodec = codec<QuarantineRegister>(
  'quarantine.register',
  (r) => ({ sk: r.bytes('sk', SK_DP3T_BYTES), tPast: time(r, 'tPast'), beaconId: beaconId(r), beaconKey: r.bytes('beaconKey', BEACON_KEY_BYTES), endsAt: time(r, 'endsAt') }),
  (v) => ({ sk: v.sk, tPast: v.tPast, beaconId: v.beaconId, beaconKey: v.beaconKey, endsAt: v.endsAt }),
);
const beaconRefCodec = (type: string): MessageCodec<BeaconRef> => codec<BeaconRef>(type, (r) => ({ beaconId: beaconId(r) }), (v) => ({ beaconId: v.beaconId }));
export const quarantineRegisteredCodec = beaconRefCodec('quarantine.registered');
export const quarantineEndCodec = beaconRefCodec('quarantine.end');
export const monitoringEnableCodec = beaconRefCodec('monitoring.enable');
export const monitoringDisableCodec = beaconRefCodec('monitoring.disable');
export const beaconResolveCodec = beaconRefCodec('beacon.resolve');

export const tokensForwardCodec = codec<TokensForward>(
  'tokens.forward',
  (r) => ({
    sk: r.bytes('sk', SK_DP3T_BYTES),
    batch: r.int('batch', 0, 2 ** 32 - 1),
    tuples: r.array('tuples', MAX_TUPLES_PER_BATCH, (t) => ({ token: t.bytes('token', FERNET_MIN_TOKEN_BYTES, MAX_FORWARDED_TOKEN_BYTES), receivedAt: time(t, 'receivedAt') })),
  }),
  (v) => ({ sk: v.sk, batch: v.batch, tuples: v.tuples.map((t) => ({ token: t.token, receivedAt: t.receivedAt })) }),
);
export const tokensAckCodec = codec<TokensAck>(
  'tokens.ack',
  (r) => ({ batch: r.int('batch', 0, 2 ** 32 - 1), accepted: r.int('accepted', 0, MAX_TUPLES_PER_BATCH), rejected: r.int('rejected', 0, MAX_TUPLES_PER_BATCH) }),
  (v) => ({ batch: v.batch, accepted: v.accepted, rejected: v.rejected }),
);
export const alertRaiseCodec = codec<AlertRaise>(
  'alert.raise',
  (r) => ({
    alertId: r.string('alertId', ALERT_ID_PATTERN, 96),
    beaconId: beaconId(r),
    windowStart: time(r, 'windowStart'),
    windowEnd: time(r, 'windowEnd'),
    reason: r.oneOf('reason', ALERT_REASONS),
  }),
  (v) => ({ alertId: v.alertId, beaconId: v.beaconId, windowStart: v.windowStart, windowEnd: v.windowEnd, reason: v.reason }),
);
const alertRefCodec = (type: string): MessageCodec<AlertRef> =>
  codec<AlertRef>(type, (r) => ({ alertId: r.string('alertId', ALERT_ID_PATTERN, 96) }), (v) => ({ alertId: v.alertId }));
export const alertAckCodec = alertRefCodec('alert.ack');
export const alertCloseCodec = alertRefCodec('alert.close');
const readBeaconAddress = (r: BodyReader): BeaconRegister => ({ beaconId: beaconId(r), address: r.string('address', ADDRESS_PATTERN, MAX_ADDRESS_LENGTH) });
const writeBeaconAddress = (v: BeaconRegister): WireValue => ({ beaconId: v.beaconId, address: v.address });
/** Officer → police backend: a beacon installed at an address. */
export const beaconRegisterCodec = codec<BeaconRegister>('beacon.register', readBeaconAddress, writeBeaconAddress);
/** Police backend → officer: the address a beacon id resolves to. */
export const beaconAddressCodec = codec<BeaconRegister>('beacon.address', readBeaconAddress, writeBeaconAddress);

/** Every quarantine message type, for hosts running these roles. */
export function quarantineMessages(registry = new MessageRegistry()): MessageRegistry {
  for (const c of [
    quarantineRegisterCodec,
    quarantineRegisteredCodec,
    quarantineEndCodec,
    monitoringEnableCodec,
    monitoringDisableCodec,
    tokensForwardCodec,
    tokensAckCodec,
    alertRaiseCodec,
    alertAckCodec,
    alertCloseCodec,
    beaconRegisterCodec,
    beaconResolveCodec,
    beaconAddressCodec,
  ] as MessageCodec<unknown>[]) {
    registry.register(c);
  }
  return registry;
}
