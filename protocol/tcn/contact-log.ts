/**
 * A batch of observed TCN contacts as bytes, for TCN operating modes A (contacts sent to the server
 * as they happen) and B (the log uploaded on the health authority's request, then published).
 * SPECS §3 defines no such format (the TCN README only has reports); this is ours, version 1,
 * integers little-endian like the TCN report:
 *
 *   offset   len   field
 *        0     1   version = 0x01
 *        1     4   count, LE u32, ≤ maxEntries (default 131 072)
 *        5  21·count  entries, each:
 *                    +0  16  tcn
 *                   +16   4  at: LE u32, minutes since the Unix epoch (coarse: a scan period)
 *                   +20   1  rssi: int8, dBm (the full int8 range is accepted; HCI reports −127…+20,
 *                            127 = "not available")
 *
 * The count bound: 14 days × 1 440 scans a day × ~6.5 contacts a scan = 131 072 entries, 2.75 MB.
 * Hostile bytes never throw: decodeTcnContactLog returns a Rejection with codec `tcn-contact-log`
 * and one of TCN_CONTACT_LOG_REJECTION_REASONS, checked in this order:
 *   too-short    fewer than 5 bytes (no header)
 *   bad-version  version byte ≠ 1 (field `version`)
 *   too-many     count > maxEntries (field `count`)
 *   bad-length   total ≠ 5 + 21 · count (field `count`)
 * Caller misuse (a TCN not 16 bytes, a time or RSSI out of range, too many entries) throws
 * MisuseError naming the field.
 */
import { accept, ensure, reject, type Rejection, type Verdict } from '../errors.ts';
import { TCN_BYTES } from './keys.ts';

/** Array.isArray without narrowing the argument to any[]. */
const isList = (value: unknown): boolean => Array.isArray(value);

export const TCN_CONTACT_LOG_CODEC = 'tcn-contact-log';
export const TCN_CONTACT_LOG_REJECTION_REASONS = ['too-short', 'bad-version', 'too-many', 'bad-length'] as const;
export type TcnContactLogRejectionReason = (typeof TCN_CONTACT_LOG_REJECTION_REASONS)[number];

/** Format version byte. */
export const TCN_CONTACT_LOG_VERSION = 1;
/** Header: version (1) + count (4), bytes. */
export const TCN_CONTACT_LOG_HEADER_BYTES = 5;
/** One entry: tcn (16, SPECS §3) + minute (4) + rssi (1), bytes. */
export const TCN_CONTACT_LOG_ENTRY_BYTES = TCN_BYTES + 4 + 1;
/** Default bound on entries: 14 days × 1 440 minutes × 6.5 contacts ≈ 2^17 (see the header). */
export const TCN_CONTACT_LOG_MAX_ENTRIES = 131_072;
/** Time bucket of an entry, ms: one minute (the default scan period, TCN_SCAN_PERIOD_MS). */
export const TCN_CONTACT_MINUTE_MS = 60_000;
/** Largest minute (u32). */
export const TCN_CONTACT_MAX_MINUTE = 0xffff_ffff;
/** int8 range of the RSSI field, dBm. */
export const TCN_CONTACT_RSSI_MIN_DBM = -128;
export const TCN_CONTACT_RSSI_MAX_DBM = 127;

/** One observed contact, as logged and uploaded. */
export interface TcnContact {
  /** The TCN heard, 16 bytes. */
  readonly tcn: Uint8Array;
  /** Minutes since the Unix epoch of the receive time (tcnContactMinute), u32. */
  readonly atMinute: number;
  /** Received signal strength, integer dBm in the int8 range. */
  readonly rssiDbm: number;
}

export interface TcnContactLogOptions {
  /** Most entries accepted (encode and decode), 0 … 2^32 − 1; default 131 072. */
  readonly maxEntries?: number;
}

/** The minute bucket of a Unix-ms time: ⌊ms / 60 000⌋. */
export function tcnContactMinute(ms: number): number {
  ensure(Number.isFinite(ms) && ms >= 0 && ms < (TCN_CONTACT_MAX_MINUTE + 1) * TCN_CONTACT_MINUTE_MS, 'ms', `must be Unix ms within the u32 minute range, got ${ms}`);
  return Math.floor(ms / TCN_CONTACT_MINUTE_MS);
}

function maxEntriesOf(options: TcnContactLogOptions): number {
  const max = options.maxEntries ?? TCN_CONTACT_LOG_MAX_ENTRIES;
  ensure(Number.isInteger(max) && max >= 0 && max <= 0xffff_ffff, 'options.maxEntries', `must be an integer in [0, 2^32 − 1], got ${max}`);
  return max;
}

/** Check one contact (caller data); MisuseError naming `${field}.tcn` etc. */
export function checkTcnContact(c: TcnContact, field: string): void {
  const ok = typeof c === 'object' && c !== null && c.tcn instanceof Uint8Array && c.tcn.length === TCN_BYTES && Number.isInteger(c.atMinute) && c.atMinute >= 0;
  if (ok && c.atMinute <= TCN_CONTACT_MAX_MINUTE && Number.isInteger(c.rssiDbm) && c.rssiDbm >= TCN_CONTACT_RSSI_MIN_DBM && c.rssiDbm <= TCN_CONTACT_RSSI_MAX_DBM) return;
  ensure(typeof c === 'object' && c !== null, field, 'must be a TcnContact');
  ensure(c.tcn instanceof Uint8Array && c.tcn.length === TCN_BYTES, `${field}.tcn`, `must be ${TCN_BYTES} bytes`);
  ensure(Number.isInteger(c.atMinute) && c.atMinute >= 0 && c.atMinute <= TCN_CONTACT_MAX_MINUTE, `${field}.atMinute`, `must be a u32, got ${c.atMinute}`);
  ensure(
    Number.isInteger(c.rssiDbm) && c.rssiDbm >= TCN_CONTACT_RSSI_MIN_DBM && c.rssiDbm <= TCN_CONTACT_RSSI_MAX_DBM,
    `${field}.rssiDbm`,
    `must be an integer in [${TCN_CONTACT_RSSI_MIN_DBM}, ${TCN_CONTACT_RSSI_MAX_DBM}], got ${c.rssiDbm}`,
  );
}

/** Encode a contact log (layout: the header). */
export function encodeTcnContactLog(contacts: readonly TcnContact[], options: TcnContactLogOptions = {}): Uint8Array {
  ensure(isList(contacts), 'contacts', 'must be an array of TcnContact');
  const max = maxEntriesOf(options);
  ensure(contacts.length <= max, 'contacts', `must hold at most ${max} entries, got ${contacts.length}`);
  const out = new Uint8Array(TCN_CONTACT_LOG_HEADER_BYTES + TCN_CONTACT_LOG_ENTRY_BYTES * contacts.length);
  const view = new DataView(out.buffer);
  out[0] = TCN_CONTACT_LOG_VERSION;
  view.setUint32(1, contacts.length, true);
  contacts.forEach((c, i) => {
    checkTcnContact(c, `contacts[${i}]`);
    const at = TCN_CONTACT_LOG_HEADER_BYTES + i * TCN_CONTACT_LOG_ENTRY_BYTES;
    out.set(c.tcn, at);
    view.setUint32(at + TCN_BYTES, c.atMinute, true);
    view.setInt8(at + TCN_BYTES + 4, c.rssiDbm);
  });
  return out;
}

function bad(reason: TcnContactLogRejectionReason, detail: string, field?: string): Rejection {
  return reject(TCN_CONTACT_LOG_CODEC, reason, detail, field);
}

/**
 * Decode a contact log. Never throws on hostile bytes (reasons: the header). Each entry's `tcn`
 * is a view into one private copy of the input, never into `bytes` itself.
 */
export function decodeTcnContactLog(bytes: Uint8Array, options: TcnContactLogOptions = {}): Verdict<TcnContact[]> {
  ensure(bytes instanceof Uint8Array, 'bytes', 'must be a Uint8Array');
  const max = maxEntriesOf(options);
  const n = bytes.length;
  if (n < TCN_CONTACT_LOG_HEADER_BYTES) return bad('too-short', `${n} bytes, the header alone is ${TCN_CONTACT_LOG_HEADER_BYTES}`);
  const own = bytes.slice();
  const view = new DataView(own.buffer, own.byteOffset, own.byteLength);
  const version = own[0] as number;
  if (version !== TCN_CONTACT_LOG_VERSION) return bad('bad-version', `version ${version}, expected ${TCN_CONTACT_LOG_VERSION}`, 'version');
  const count = view.getUint32(1, true);
  if (count > max) return bad('too-many', `${count} entries, at most ${max}`, 'count');
  const expected = TCN_CONTACT_LOG_HEADER_BYTES + count * TCN_CONTACT_LOG_ENTRY_BYTES;
  if (n !== expected) return bad('bad-length', `${count} entries need ${expected} bytes, got ${n}`, 'count');
  const contacts: TcnContact[] = new Array<TcnContact>(count);
  for (let i = 0; i < count; i++) {
    const at = TCN_CONTACT_LOG_HEADER_BYTES + i * TCN_CONTACT_LOG_ENTRY_BYTES;
    contacts[i] = { tcn: own.subarray(at, at + TCN_BYTES), atMinute: view.getUint32(at + TCN_BYTES, true), rssiDbm: view.getInt8(at + TCN_BYTES + 4) };
  }
  return accept(contacts);
}
