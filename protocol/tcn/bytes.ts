/**
 * Small byte and argument helpers shared by the TCN files (keys.ts, report.ts).
 * Argument checks throw MisuseError naming the field (protocol/errors.ts).
 */
import { ensure } from '../errors.ts';

/** Largest ratchet index (u16::MAX); ratcheting past it means "rotate rak". SPECS §3. */
export const TCN_MAX_INDEX = 0xffff;

export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Byte equality for public values (rvk); secrets would use constantTimeEqual. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** le_u16(i), 2 bytes, i in [0, 65535]. SPECS §3 notation. */
export function leU16(i: number): Uint8Array {
  return Uint8Array.of(i & 0xff, i >>> 8);
}

/** Throw MisuseError(field) unless `value` is a Uint8Array of exactly `length` bytes. */
export function checkBytes(value: Uint8Array, length: number, field: string): void {
  ensure(value instanceof Uint8Array, field, 'must be a Uint8Array');
  ensure(value.length === length, field, `must be ${length} bytes, got ${value.length}`);
}

/** Throw MisuseError(field) unless `index` is an integer in [min, 65535]. */
export function checkIndex(index: number, min: number, field: string): void {
  ensure(
    Number.isInteger(index) && index >= min && index <= TCN_MAX_INDEX,
    field,
    `must be an integer in [${min}, ${TCN_MAX_INDEX}], got ${index}`,
  );
}
