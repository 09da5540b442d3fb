/**
 * GAEN keys (SPECS §1.2–1.4, Exposure Notification Cryptography Specification v1.2 as implemented
 * by EN-internals @ aaada6ce `CRYPTO.md`, `KeyDerivation`, `RollingProximityIdGeneratorBase`):
 *
 *   tek             16 random bytes (the caller draws them: randomness is an argument)
 *   RPIK            HKDF-SHA256(IKM = tek, salt = NULL, info = "EN-RPIK", L = 16)
 *   AEMK            HKDF-SHA256(IKM = tek, salt = NULL, info = "EN-AEMK", L = 16)
 *   PaddedData_j    "EN-RPI" ‖ 0x00 × 6 ‖ LE32(ENIN_j)                       (16 bytes)
 *   RPI_j           AES-128-ECB(RPIK, PaddedData_j)                          (16 bytes)
 *
 * NULL salt = 32 zero bytes (SPECS §7.3); the suite's HKDF treats an empty salt so (RFC 5869).
 * Only v1.1+ labels are interoperable (SPECS §7.1: the April 2020 v1.0 key schedule differs).
 * rpisForTek derives RPIK once and encrypts all the key's padded blocks in one ECB call (ECB
 * blocks are independent), which is what a receiver does for every published diagnosis key;
 * RpiBatch does it for many keys with two batched suite calls (matching.ts).
 * Caller misuse (wrong key length, interval out of range) throws MisuseError naming the field.
 */
import type { CryptoSuite } from '../crypto/suite.ts';
import { ensure } from '../errors.ts';
import { checkEnIntervalNumber, checkRollingRange, TEK_MAX_ROLLING_PERIOD } from './interval.ts';

/** TEK length, bytes. SPECS §1.2 (`temporaryTracingKeySizeBytes() = 16`). */
export const TEK_BYTES = 16;
/** RPIK and AEMK length (HKDF L), bytes: AES-128 keys. SPECS §1.3, §1.4. */
export const RPIK_BYTES = 16;
export const AEMK_BYTES = 16;
/** RPI length, bytes: one AES block. SPECS §1.3, §1.5 (`contactIdLength() = 16`). */
export const RPI_BYTES = 16;

/** UTF-8 "EN-RPIK", the HKDF info for RPIK. SPECS §1.3 (`rpikHkdfInfoString()`). */
export const RPIK_HKDF_INFO = Uint8Array.of(0x45, 0x4e, 0x2d, 0x52, 0x50, 0x49, 0x4b);
/** UTF-8 "EN-AEMK", the HKDF info for AEMK. SPECS §1.4 (`AssociatedEncryptedMetadataHelper`). */
export const AEMK_HKDF_INFO = Uint8Array.of(0x45, 0x4e, 0x2d, 0x41, 0x45, 0x4d, 0x4b);
/** UTF-8 "EN-RPI", bytes 0–5 of PaddedData. SPECS §1.3 (`rpidAesPaddedString()`). */
export const RPI_PADDED_PREFIX = Uint8Array.of(0x45, 0x4e, 0x2d, 0x52, 0x50, 0x49);
/** Offset of LE32(ENIN) in PaddedData, bytes (after "EN-RPI" and 6 zero bytes). SPECS §1.3 table. */
export const RPI_PADDED_ENIN_OFFSET = 12;
/** HKDF salt NULL, passed as empty (= 32 zero bytes per RFC 5869). SPECS §1.3, §7.3. */
const NULL_SALT = new Uint8Array(0);

function checkKey16(key: Uint8Array, field: string): void {
  ensure(key instanceof Uint8Array, field, 'must be a Uint8Array');
  ensure(key.length === 16, field, `must be 16 bytes, got ${key.length}`);
}

/** RPIK = HKDF-SHA256(tek, NULL, "EN-RPIK", 16). SPECS §1.3. */
export function rpik(crypto: CryptoSuite, tek: Uint8Array): Uint8Array {
  checkKey16(tek, 'tek');
  return crypto.hkdfSha256(tek, NULL_SALT, RPIK_HKDF_INFO, RPIK_BYTES);
}

/** AEMK = HKDF-SHA256(tek, NULL, "EN-AEMK", 16). SPECS §1.4. */
export function aemk(crypto: CryptoSuite, tek: Uint8Array): Uint8Array {
  checkKey16(tek, 'tek');
  return crypto.hkdfSha256(tek, NULL_SALT, AEMK_HKDF_INFO, AEMK_BYTES);
}

/** Write LE32(enin) into the PaddedData block at `offset`. */
function writeEnin(out: Uint8Array, offset: number, enin: number): void {
  const at = offset + RPI_PADDED_ENIN_OFFSET;
  // LE32, not BE (SPECS §1.1, §7.2: `ByteBuffer…order(LITTLE_ENDIAN)…putInt`).
  out[at] = enin & 0xff;
  out[at + 1] = (enin >>> 8) & 0xff;
  out[at + 2] = (enin >>> 16) & 0xff;
  out[at + 3] = (enin >>> 24) & 0xff;
}

/** Write PaddedData for `enin` into `out` at `offset` (zero bytes 6–11 must already be zero). */
function writePaddedData(out: Uint8Array, offset: number, enin: number): void {
  out.set(RPI_PADDED_PREFIX, offset);
  writeEnin(out, offset, enin);
}

/** Whether typed-array words are little-endian here (x86, ARM): then LE32(ENIN) is one Uint32 store. */
const IS_LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;
/** PaddedData as four 32-bit words; LE32(ENIN) is word 3 (bytes 12–15). SPECS §1.3 table. */
const WORDS_PER_BLOCK = RPI_BYTES / 4;
const ENIN_WORD = RPI_PADDED_ENIN_OFFSET / 4;

/** PaddedData_j = "EN-RPI" ‖ 0x00 × 6 ‖ LE32(enin), 16 bytes. SPECS §1.3. */
export function rpiPaddedData(enin: number): Uint8Array {
  checkEnIntervalNumber(enin, 'enin');
  const out = new Uint8Array(RPI_BYTES);
  writePaddedData(out, 0, enin);
  return out;
}

/** RPI_j = AES-128-ECB(RPIK, PaddedData_j) for interval `enin`. SPECS §1.3. */
export function rpi(crypto: CryptoSuite, rpikBytes: Uint8Array, enin: number): Uint8Array {
  checkKey16(rpikBytes, 'rpik');
  return crypto.aesEcbEncrypt(rpikBytes, rpiPaddedData(enin));
}

/**
 * The RPIs of intervals start … start + count − 1 under one RPIK: one AES-ECB call over
 * `count` padded blocks. rpis[k] belongs to ENIN start + k. SPECS §1.3, §1.6.
 */
export function rpisForRpik(crypto: CryptoSuite, rpikBytes: Uint8Array, rollingStartIntervalNumber: number, rollingPeriod: number): Uint8Array[] {
  checkKey16(rpikBytes, 'rpik');
  checkRollingRange(rollingStartIntervalNumber, rollingPeriod);
  const blocks = new Uint8Array(rollingPeriod * RPI_BYTES);
  for (let k = 0; k < rollingPeriod; k++) writePaddedData(blocks, k * RPI_BYTES, rollingStartIntervalNumber + k);
  const encrypted = crypto.aesEcbEncrypt(rpikBytes, blocks);
  const out: Uint8Array[] = [];
  // slice (not subarray): each RPI owns its bytes, so `.buffer` and structured clone see only it.
  for (let k = 0; k < rollingPeriod; k++) out.push(encrypted.slice(k * RPI_BYTES, (k + 1) * RPI_BYTES));
  return out;
}

/**
 * All RPIs a TEK broadcast, in interval order: rolling_period of them (144
 * for a full-day key) starting at rolling_start_interval_number; rpis[k] is
 * RPI for ENIN start + k. One RPIK derivation, one batched AES-ECB call.
 * This is the receiver's work per diagnosis key (SPECS §1.6). SPECS §1.3.
 */
export function rpisForTek(crypto: CryptoSuite, tek: Uint8Array, rollingStartIntervalNumber: number, rollingPeriod: number): Uint8Array[] {
  checkKey16(tek, 'tek');
  checkRollingRange(rollingStartIntervalNumber, rollingPeriod);
  return rpisForRpik(crypto, rpik(crypto, tek), rollingStartIntervalNumber, rollingPeriod);
}

/**
 * The RPIs of many TEKs with two suite calls in all: one hkdfSha256Batch for their RPIKs and one
 * aesEcbEncryptBatch over every key's padded blocks (SPECS §1.3, §1.6). What a receiver does for
 * an export file of diagnosis keys; per key the suites' own setup (an HMAC pair, a cached cipher)
 * costs more than the crypto, the batch pays one fresh cipher and six SHA-256 compressions.
 *
 * Reusable: clear(), add() up to `capacity` keys (each a range of ENINs, ≤ 144 of them), derive();
 * the RPIs of key k are then blocks blockOf(k) … blockOf(k + 1) − 1 of rpiBytes, RPI for ENIN
 * first + r at block blockOf(k) + r. The buffers are allocated once, PaddedData's constant bytes
 * written once. rpiBytes owns its ArrayBuffer (offset 0), so an Int32Array can view it.
 */
export class RpiBatch {
  readonly capacity: number;
  /** RPIs of the keys added, back to back (valid after derive()). */
  readonly rpiBytes: Uint8Array;
  private readonly teks: Uint8Array;
  private readonly rpiks: Uint8Array;
  private readonly counts: Int32Array;
  /** starts[k]: first block of key k; starts[size]: blocks in all. */
  private readonly starts: Int32Array;
  private readonly padded: Uint8Array;
  /** Word view of `padded` on a little-endian platform, else undefined. */
  private readonly paddedWords: Uint32Array | undefined;
  private keys = 0;

  constructor(capacity: number) {
    ensure(Number.isSafeInteger(capacity) && capacity >= 1, 'capacity', `must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
    const bytes = capacity * TEK_MAX_ROLLING_PERIOD * RPI_BYTES;
    this.rpiBytes = new Uint8Array(new ArrayBuffer(bytes));
    this.teks = new Uint8Array(capacity * TEK_BYTES);
    this.rpiks = new Uint8Array(capacity * RPIK_BYTES);
    this.counts = new Int32Array(capacity);
    this.starts = new Int32Array(capacity + 1);
    this.padded = new Uint8Array(new ArrayBuffer(bytes));
    this.paddedWords = IS_LITTLE_ENDIAN ? new Uint32Array(this.padded.buffer) : undefined;
    this.padded.set(RPI_PADDED_PREFIX);
    for (let done = RPI_BYTES; done < bytes; done *= 2) this.padded.copyWithin(done, 0, Math.min(done, bytes - done));
  }

  /** Keys added since clear(). */
  get size(): number {
    return this.keys;
  }

  clear(): void {
    this.keys = 0;
  }

  /** Queue the RPIs of `tek` for ENINs first … first + count − 1 (1 ≤ count ≤ 144). */
  add(tek: Uint8Array, first: number, count: number): void {
    checkKey16(tek, 'tek');
    checkRollingRange(first, count);
    const k = this.keys;
    ensure(k < this.capacity, 'tek', `batch is full (${this.capacity} keys): derive() and clear() first`);
    this.teks.set(tek, k * TEK_BYTES);
    const from = this.starts[k] ?? 0;
    if (this.paddedWords !== undefined) {
      // LE32(ENIN) in one store: the platform writes words little-endian.
      const words = this.paddedWords;
      for (let r = 0, at = from * WORDS_PER_BLOCK + ENIN_WORD; r < count; r++, at += WORDS_PER_BLOCK) words[at] = first + r;
    } else {
      const padded = this.padded;
      for (let r = 0; r < count; r++) writeEnin(padded, (from + r) * RPI_BYTES, first + r);
    }
    this.counts[k] = count;
    this.starts[k + 1] = from + count;
    this.keys = k + 1;
  }

  /** Derive the RPIs of every key added into rpiBytes. */
  derive(crypto: CryptoSuite): void {
    const n = this.keys;
    if (n === 0) return;
    const blocks = this.starts[n] ?? 0;
    crypto.hkdfSha256Batch(this.teks.subarray(0, n * TEK_BYTES), TEK_BYTES, NULL_SALT, RPIK_HKDF_INFO, RPIK_BYTES, this.rpiks);
    crypto.aesEcbEncryptBatch(this.rpiks.subarray(0, n * RPIK_BYTES), RPIK_BYTES, this.padded.subarray(0, blocks * RPI_BYTES), this.counts.subarray(0, n), this.rpiBytes);
  }

  /** First block in rpiBytes of key k's RPIs; blockOf(size) is the number of RPIs in all. */
  blockOf(k: number): number {
    return this.starts[k] ?? 0;
  }
}
