/**
 * Byte and bit plumbing for the Golomb-coded sets of SPECS §6 (BIP158):
 *
 * - CompactSize, Bitcoin's variable-length integer that prefixes a serialized
 *   filter with N (BIP158 "the filter is serialized as CompactSize(N) ‖ bitstream"):
 *     value < 0xfd         → 1 byte
 *     value ≤ 0xffff       → 0xfd ‖ uint16 LE
 *     value ≤ 0xffff_ffff  → 0xfe ‖ uint32 LE
 *     otherwise            → 0xff ‖ uint64 LE
 *   Reading is canonical only (the shortest form), as Bitcoin Core's
 *   `ReadCompactSize` ("non-canonical ReadCompactSize()").
 * - A bit writer and a bit reader, most significant bit of each byte first
 *   (BIP158 "bits are written MSB first"; Core's BitStreamWriter/Reader).
 *
 * The reader never throws on hostile bytes: running out of bits is a return
 * value (-1) the caller turns into a typed rejection. Values handled here are
 * at most 32 bits wide (P ≤ 32), so plain numbers are exact.
 */
import { accept, ensure, reject, type Verdict } from '../errors.ts';

/** CompactSize markers (Bitcoin serialize.h). */
export const COMPACT_SIZE_U16_MARKER = 0xfd;
export const COMPACT_SIZE_U32_MARKER = 0xfe;
export const COMPACT_SIZE_U64_MARKER = 0xff;
/** Largest value a CompactSize writer here accepts: N < 2^32 in BIP158, so never the 0xff form. */
export const COMPACT_SIZE_MAX_WRITE = 0xffff_ffff;

const BITS_PER_BYTE = 8;
const UINT16_RANGE = 0x1_0000;
const UINT32_RANGE = 0x1_0000_0000;

/** Serialized size of CompactSize(value). */
export function compactSizeLength(value: number): number {
  ensure(Number.isSafeInteger(value) && value >= 0 && value <= COMPACT_SIZE_MAX_WRITE, 'value', 'must be an integer in [0, 2^32)');
  if (value < COMPACT_SIZE_U16_MARKER) return 1;
  if (value < UINT16_RANGE) return 3;
  return 5;
}

/** Write CompactSize(value) at `offset`; returns the offset after it. */
export function writeCompactSize(out: Uint8Array, offset: number, value: number): number {
  const length = compactSizeLength(value);
  if (length === 1) {
    out[offset] = value;
    return offset + 1;
  }
  out[offset] = length === 3 ? COMPACT_SIZE_U16_MARKER : COMPACT_SIZE_U32_MARKER;
  let rest = value;
  for (let i = 1; i < length; i++) {
    out[offset + i] = rest % 256; // little-endian
    rest = Math.floor(rest / 256);
  }
  return offset + length;
}

/**
 * Read a canonical CompactSize at `offset`. Rejections (codec given by the
 * caller): `truncated-varint` (fewer bytes than the marker announces) and
 * `non-canonical-varint` (a longer form than the value needs).
 */
export function readCompactSize(bytes: Uint8Array, offset: number, codec: string): Verdict<{ value: bigint; next: number }> {
  const marker = bytes[offset];
  if (marker === undefined) return reject(codec, 'truncated-varint', 'no CompactSize byte', 'n');
  if (marker < COMPACT_SIZE_U16_MARKER) return accept({ value: BigInt(marker), next: offset + 1 });
  const width = marker === COMPACT_SIZE_U16_MARKER ? 2 : marker === COMPACT_SIZE_U32_MARKER ? 4 : 8;
  if (offset + 1 + width > bytes.length) {
    return reject(codec, 'truncated-varint', `CompactSize marker 0x${marker.toString(16)} needs ${width} more bytes`, 'n');
  }
  let value = 0n;
  for (let i = width; i >= 1; i--) value = (value << 8n) | BigInt(bytes[offset + i] ?? 0); // little-endian
  const smallest = width === 2 ? BigInt(COMPACT_SIZE_U16_MARKER) : width === 4 ? BigInt(UINT16_RANGE) : BigInt(UINT32_RANGE);
  if (value < smallest) return reject(codec, 'non-canonical-varint', `${value} encoded in ${1 + width} bytes`, 'n');
  return accept({ value, next: offset + 1 + width });
}

/** MSB-first bit writer into a buffer sized in advance (the encoder knows the exact length). */
export class BitWriter {
  private byteIndex: number;
  /** Bits already used in `out[byteIndex]`, 0..7. */
  private bitIndex = 0;

  constructor(
    private readonly out: Uint8Array,
    offset: number,
  ) {
    this.byteIndex = offset;
  }

  /** `count` one-bits (the unary part of a Golomb-Rice code). */
  writeOnes(count: number): void {
    let left = count;
    while (left > 0) {
      if (this.bitIndex === 0 && left >= BITS_PER_BYTE) {
        this.out[this.byteIndex++] = 0xff;
        left -= BITS_PER_BYTE;
        continue;
      }
      this.writeBit(1);
      left--;
    }
  }

  writeBit(bit: 0 | 1): void {
    if (bit === 1) this.out[this.byteIndex] = (this.out[this.byteIndex] ?? 0) | (0x80 >>> this.bitIndex);
    if (++this.bitIndex === BITS_PER_BYTE) {
      this.bitIndex = 0;
      this.byteIndex++;
    }
  }

  /** The low `width` bits of `value` (0 ≤ value < 2^width, width ≤ 32), most significant first. */
  writeBits(value: number, width: number): void {
    let left = width;
    while (left > 0) {
      const available = BITS_PER_BYTE - this.bitIndex;
      const take = Math.min(left, available);
      const chunk = Math.floor(value / 2 ** (left - take)) % 2 ** take;
      this.out[this.byteIndex] = (this.out[this.byteIndex] ?? 0) | (chunk << (available - take));
      left -= take;
      this.bitIndex += take;
      if (this.bitIndex === BITS_PER_BYTE) {
        this.bitIndex = 0;
        this.byteIndex++;
      }
    }
  }

  /** Offset just past the last byte touched; the final byte's unused bits stay zero (BIP158 zero padding). */
  end(): number {
    return this.byteIndex + (this.bitIndex === 0 ? 0 : 1);
  }
}

/** MSB-first bit reader; every read reports exhaustion as -1 instead of throwing. */
export class BitReader {
  private byteIndex: number;
  /** Bits already consumed from `bytes[byteIndex]`, 0..7. */
  private bitIndex = 0;

  constructor(
    private readonly bytes: Uint8Array,
    offset: number,
  ) {
    this.byteIndex = offset;
  }

  get remainingBits(): number {
    return Math.max(0, (this.bytes.length - this.byteIndex) * BITS_PER_BYTE - this.bitIndex);
  }

  /**
   * Count one-bits up to and including the terminating zero-bit; returns the
   * count of ones, or -1 if the bytes end first. Works a byte at a time
   * (leading ones via Math.clz32), so a hostile run of 0xff costs O(bytes).
   */
  readUnary(): number {
    let ones = 0;
    while (this.byteIndex < this.bytes.length) {
      const available = BITS_PER_BYTE - this.bitIndex;
      const aligned = ((this.bytes[this.byteIndex] ?? 0) << this.bitIndex) & 0xff;
      // Leading ones of `aligned` = leading zeros of its complement within 8 bits (≤ available,
      // because the shifted-in low bits are zeros, i.e. ones in the complement).
      const leadingOnes = Math.clz32(~aligned & 0xff) - (32 - BITS_PER_BYTE);
      if (leadingOnes < available) {
        ones += leadingOnes;
        this.skip(leadingOnes + 1);
        return ones;
      }
      ones += available;
      this.byteIndex++;
      this.bitIndex = 0;
    }
    return -1;
  }

  /** Read `width` ≤ 32 bits as an unsigned number, or -1 if the bytes end first. */
  readBits(width: number): number {
    if (width > this.remainingBits) return -1;
    let value = 0;
    let left = width;
    while (left > 0) {
      const available = BITS_PER_BYTE - this.bitIndex;
      const take = Math.min(left, available);
      const byte = this.bytes[this.byteIndex] ?? 0;
      const chunk = (byte >>> (available - take)) & ((1 << take) - 1);
      value = value * 2 ** take + chunk;
      left -= take;
      this.skip(take);
    }
    return value;
  }

  /** True when the unread bits of the current, partially read byte are all zero (or none is partially read). */
  paddingIsZero(): boolean {
    if (this.bitIndex === 0) return true;
    const mask = 0xff >>> this.bitIndex;
    return ((this.bytes[this.byteIndex] ?? 0) & mask) === 0;
  }

  /** Offset of the first byte no read has touched. */
  end(): number {
    return this.byteIndex + (this.bitIndex === 0 ? 0 : 1);
  }

  private skip(bits: number): void {
    const total = this.bitIndex + bits;
    this.byteIndex += Math.floor(total / BITS_PER_BYTE);
    this.bitIndex = total % BITS_PER_BYTE;
  }
}
