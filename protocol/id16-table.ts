/**
 * A table of distinct 16-byte identifiers (DP-3T EphIDs, TCNs) for matching
 * what phones heard against what positives published: seeded hash of all 16
 * bytes, open addressing, every hit confirmed on the full identifier.
 */
import { ensure } from './errors.ts';

/** murmur3's 32-bit finalizer: a bijection on uint32 with full avalanche. */
function fmix32(x: number): number {
  let h = Math.imul(x ^ (x >>> 16), 0x85eb_ca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2_ae35);
  return h ^ (h >>> 16);
}
const hash4 = (seed: number, w0: number, w1: number, w2: number, w3: number): number => fmix32(fmix32(fmix32(fmix32(seed ^ w0) ^ w1) ^ w2) ^ w3);
const word = (b: Uint8Array, o: number): number =>
  (b[o] as number) | ((b[o + 1] as number) << 8) | ((b[o + 2] as number) << 16) | ((b[o + 3] as number) << 24);

/**
 * Open-addressed hash table of distinct 16-byte identifiers (EphIDs, TCNs) → dense ids 0, 1, …
 * Every byte is hashed, mixed with a caller-given uint32 seed (identifiers come off the air; the
 * seed keeps chosen ones from crowding a bucket); a hit is confirmed on all 16 bytes. Load ≤ 1/2.
 */
export class Id16Table {
  private words = new Int32Array(64);
  private slots = new Int32Array(32);
  private mask = 31;
  private count = 0;
  private readonly seed: number;

  constructor(seed = 0, field = 'hashSeed') {
    ensure(Number.isInteger(seed) && seed >= 0 && seed <= 0xffff_ffff, field, `must be a uint32, got ${seed}`);
    this.seed = seed | 0;
  }

  /** Distinct identifiers held. */
  get size(): number {
    return this.count;
  }

  /** Dense id of bytes[offset, offset + 16), or −1. The caller guarantees 16 readable bytes. */
  find(bytes: Uint8Array, offset = 0): number {
    const w0 = word(bytes, offset), w1 = word(bytes, offset + 4), w2 = word(bytes, offset + 8), w3 = word(bytes, offset + 12);
    const { words, slots, mask } = this;
    for (let h = hash4(this.seed, w0, w1, w2, w3) & mask; ; h = (h + 1) & mask) {
      const slot = slots[h] as number;
      if (slot === 0) return -1;
      const b = 4 * (slot - 1);
      if (words[b] === w0 && words[b + 1] === w1 && words[b + 2] === w2 && words[b + 3] === w3) return slot - 1;
    }
  }

  /** Dense id of bytes[offset, offset + 16), inserted when absent. */
  insert(bytes: Uint8Array, offset = 0): number {
    ensure(bytes instanceof Uint8Array && offset >= 0 && offset + 16 <= bytes.length, 'bytes', 'must hold 16 bytes at offset');
    const found = this.find(bytes, offset);
    if (found >= 0) return found;
    const id = this.count++;
    if (this.words.length < 4 * this.count) {
      const words = new Int32Array(this.words.length * 2);
      words.set(this.words);
      this.words = words;
    }
    for (let w = 0; w < 4; w++) this.words[4 * id + w] = word(bytes, offset + 4 * w);
    if (2 * this.count > this.slots.length) {
      this.slots = new Int32Array(this.slots.length * 2);
      this.mask = this.slots.length - 1;
      for (let d = 0; d < this.count; d++) this.place(d);
    } else this.place(id);
    return id;
  }

  private place(id: number): void {
    const w = this.words.subarray(4 * id, 4 * id + 4);
    let h = hash4(this.seed, w[0] as number, w[1] as number, w[2] as number, w[3] as number) & this.mask;
    while ((this.slots[h] as number) !== 0) h = (h + 1) & this.mask;
    this.slots[h] = id + 1;
  }
}
