/**
 * TCN keys (SPECS §3, TCNCoalition/TCN @ 6b64d09b `src/keys.rs`, crate `tcn` 0.4.1):
 *
 *   rak            report authorization key: a 32-byte Ed25519 seed (RFC 8032 private key,
 *                  as serialized by ed25519-zebra; SPECS §7.14: not an expanded scalar)
 *   rvk            report verification key: the Ed25519 public key of rak (32 bytes)
 *   H_tck(x)       SHA-256("H_TCK" ‖ x)                (32 bytes)
 *   H_tcn(x)       SHA-256("H_TCN" ‖ x)[0:16]          (16 bytes)
 *   tck_0          H_tck(rak)                          never yields a TCN
 *   tck_i          H_tck(rvk ‖ tck_{i−1}), i ≥ 1       (binds every tck ≥ 1 to rvk)
 *   tcn_i          H_tcn(le_u16(i) ‖ tck_i)
 *
 * The index is a u16: ratcheting tck_65535 gives a typed `exhausted` result
 * (the reference returns None), meaning "rotate rak"; it never throws.
 * Keys a caller passes in are trusted data: a wrong length or index is
 * caller misuse and throws MisuseError naming the field.
 */
import type { CryptoSuite } from '../crypto/suite.ts';
import { ensure } from '../errors.ts';
import { checkBytes, checkIndex, concatBytes, equalBytes, leU16, TCN_MAX_INDEX } from './bytes.ts';

export { TCN_MAX_INDEX };

/** rak: Ed25519 seed, bytes. SPECS §3. */
export const TCN_RAK_BYTES = 32;
/** rvk: Ed25519 public key, bytes. SPECS §3. */
export const TCN_RVK_BYTES = 32;
/** tck: full SHA-256 output, bytes. SPECS §3. */
export const TCN_TCK_BYTES = 32;
/** tcn: SHA-256 output truncated to 16 bytes. SPECS §3. */
export const TCN_BYTES = 16;

/** The 5 ASCII bytes "H_TCK" (`keys.rs` H_TCK_DOMAIN_SEP). SPECS §3. */
export const H_TCK_DOMAIN = Uint8Array.of(0x48, 0x5f, 0x54, 0x43, 0x4b);
/** The 5 ASCII bytes "H_TCN" (`keys.rs` H_TCN_DOMAIN_SEP). SPECS §3. */
export const H_TCN_DOMAIN = Uint8Array.of(0x48, 0x5f, 0x54, 0x43, 0x4e);

/** A temporary contact key tck_index, bound to the rvk that ratchets it. */
export interface TemporaryContactKey {
  /** Ratchet index i, 0–65535. */
  readonly index: number;
  /** rvk, 32 bytes. */
  readonly rvk: Uint8Array;
  /** tck_i, 32 bytes. */
  readonly bytes: Uint8Array;
}

/** Result of one ratchet step: the next key, or `exhausted` after index 65535 (rotate rak). */
export type TckRatchet =
  | { readonly ok: true; readonly tck: TemporaryContactKey }
  | { readonly ok: false; readonly reason: 'exhausted'; readonly index: typeof TCN_MAX_INDEX };

/** H_tck(x) = SHA-256("H_TCK" ‖ x), 32 bytes. SPECS §3. */
export function hTck(crypto: CryptoSuite, x: Uint8Array): Uint8Array {
  return crypto.sha256(concatBytes(H_TCK_DOMAIN, x));
}

/** H_tcn(x) = SHA-256("H_TCN" ‖ x)[0:16]. SPECS §3. */
export function hTcn(crypto: CryptoSuite, x: Uint8Array): Uint8Array {
  return crypto.sha256(concatBytes(H_TCN_DOMAIN, x)).slice(0, TCN_BYTES);
}

/** rvk: the Ed25519 public key of the 32-byte seed rak. SPECS §3. */
export function tcnRvk(crypto: CryptoSuite, rak: Uint8Array): Uint8Array {
  checkBytes(rak, TCN_RAK_BYTES, 'rak');
  return crypto.ed25519PublicKey(rak);
}

/** tck_0 = H_tck(rak). It never yields a TCN; only reports reveal it (as tck_{j1−1} with j1 = 1). SPECS §3. */
export function tckZero(crypto: CryptoSuite, rak: Uint8Array): TemporaryContactKey {
  const rvk = tcnRvk(crypto, rak);
  return { index: 0, rvk, bytes: hTck(crypto, rak) };
}

/** tck_1, the first key that yields a TCN (`rak.initial_temporary_contact_key()`). SPECS §3. */
export function initialTck(crypto: CryptoSuite, rak: Uint8Array): TemporaryContactKey {
  const next = ratchetTck(crypto, tckZero(crypto, rak));
  // Index 0 < 65535, so the ratchet cannot be exhausted here.
  ensure(next.ok, 'rak', 'unreachable: tck_0 always ratchets');
  return next.tck;
}

function checkTck(tck: TemporaryContactKey, field: string): void {
  checkIndex(tck.index, 0, `${field}.index`);
  checkBytes(tck.rvk, TCN_RVK_BYTES, `${field}.rvk`);
  checkBytes(tck.bytes, TCN_TCK_BYTES, `${field}.bytes`);
}

/**
 * tck_{i+1} = H_tck(rvk ‖ tck_i), or `{ ok: false, reason: 'exhausted' }` when
 * i = 65535 (the reference's `ratchet()` → None: rotate rak). SPECS §3.
 */
export function ratchetTck(crypto: CryptoSuite, tck: TemporaryContactKey): TckRatchet {
  checkTck(tck, 'tck');
  if (tck.index >= TCN_MAX_INDEX) return { ok: false, reason: 'exhausted', index: TCN_MAX_INDEX };
  return { ok: true, tck: { index: tck.index + 1, rvk: tck.rvk, bytes: hTck(crypto, concatBytes(tck.rvk, tck.bytes)) } };
}

/**
 * tcn_i = H_tcn(le_u16(i) ‖ tck_i), 16 bytes. SPECS §3. tck_0 yields no TCN
 * (a MisuseError on `tck.index`): the reference never broadcasts it.
 */
export function tcnOf(crypto: CryptoSuite, tck: TemporaryContactKey): Uint8Array {
  checkTck(tck, 'tck');
  checkIndex(tck.index, 1, 'tck.index');
  return hTcn(crypto, concatBytes(leU16(tck.index), tck.bytes));
}

/**
 * tck_index of rak, ratcheting from `from` (a tck of the same rak with
 * from.index ≤ index, e.g. the phone's current key) or else from tck_0:
 * up to 65535 hashes. The caller vouches that `from` belongs to rak; only
 * its rvk and index are checked. SPECS §3.
 */
export function tckAt(crypto: CryptoSuite, rak: Uint8Array, index: number, from?: TemporaryContactKey): TemporaryContactKey {
  checkIndex(index, 0, 'index');
  let tck = tckZero(crypto, rak);
  if (from !== undefined) {
    checkTck(from, 'from');
    ensure(from.index <= index, 'from.index', `must be ≤ ${index}, got ${from.index}`);
    ensure(equalBytes(from.rvk, tck.rvk), 'from.rvk', 'is not the rvk of rak');
    tck = from;
  }
  while (tck.index < index) {
    const next = ratchetTck(crypto, tck);
    // tck.index < index ≤ 65535, so the ratchet cannot be exhausted here.
    ensure(next.ok, 'index', 'unreachable: ratchet exhausted below the target index');
    tck = next.tck;
  }
  return tck;
}
