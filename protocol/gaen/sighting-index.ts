/**
 * The phone's sightings indexed for GAEN matching (matching.ts): a hash
 * table over all 16 bytes of each distinct RPI, seeded by the host, each
 * RPI's sightings sorted by receive time (SPECS §1.5–1.6).
 */
import { ensure } from '../errors.ts';
import { EN_INTERVAL_NUMBER_MAX, EN_INTERVAL_SECONDS } from './interval.ts';
import { RPI_BYTES } from './keys.ts';
import { EN_METADATA_BYTES } from './metadata.ts';

/** One ENIntervalNumber, milliseconds (600 s). SPECS §1.1. */
export const EN_INTERVAL_MS = EN_INTERVAL_SECONDS * 1000;
/** RSSI range a BLE controller reports, dBm (HCI LE Advertising Report: −127…+20; as protocol/demo/messages.ts). */
export const EN_RSSI_MIN_DBM = -127;
export const EN_RSSI_MAX_DBM = 20;

/** One received advertisement as the phone stores it (SPECS §1.5 service data + receive time and RSSI). */
export interface Sighting {
  /** Rolling proximity identifier, 16 bytes. */
  readonly rpi: Uint8Array;
  /** Associated encrypted metadata, 4 bytes. */
  readonly aem: Uint8Array;
  /** Receive time on the receiver's clock, Unix milliseconds. */
  readonly receivedAtMs: number;
  /** Received signal strength, integer dBm. */
  readonly rssiDbm: number;
}

export interface SightingIndexOptions {
  /**
   * Seed of the RPI hash, uint32 (default 0). Hosts pass random bits so that chosen RPIs cannot
   * crowd one bucket; matching results never depend on it.
   */
  readonly hashSeed?: number;
}

// ------------------------------------------------------------ hashing

/** murmur3's 32-bit finalizer: a bijection on uint32 with full avalanche. */
function fmix32(x: number): number {
  let h = x ^ (x >>> 16);
  h = Math.imul(h, 0x85eb_ca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2_ae35);
  return h ^ (h >>> 16);
}

/** Hash of an RPI given as four int32 words: every word passes through a bijective mix with the seed. */
function rpiHash(seed: number, w0: number, w1: number, w2: number, w3: number): number {
  return fmix32(fmix32(fmix32(fmix32(seed ^ w0) ^ w1) ^ w2) ^ w3);
}

// ------------------------------------------------------------ the index

/** Array.isArray without narrowing the argument to any[]. */
export const isList = (value: unknown): boolean => Array.isArray(value);

/** Smallest table: 16 slots. */
const MIN_TABLE_SLOTS = 16;
/**
 * Bits of the miss filter per distinct RPI (rounded up to a power of two): a derived RPI that is not
 * in the index — nearly all of them — passes with probability ≤ 1/32. 5,600 RPIs (14 days of a
 * typical store) take a 32 KiB filter, 56,000 a 256 KiB one: in a core's L1 and L2 caches.
 */
const FILTER_BITS_PER_RPI = 32;
/** Smallest filter: 1,024 bits. */
const MIN_FILTER_BITS = 1024;

export function checkBytes(value: unknown, length: number, field: string): asserts value is Uint8Array {
  ensure(value instanceof Uint8Array, field, 'must be a Uint8Array');
  ensure(value.length === length, field, `must be ${length} bytes, got ${value.length}`);
}

/** Upper bound of receivedAtMs: the last millisecond of ENIN 2^32 − 1. */
const MAX_RECEIVED_AT_MS = (EN_INTERVAL_NUMBER_MAX + 1) * EN_INTERVAL_MS - 1;

function checkSighting(s: Sighting, i: number): void {
  const at = `sightings[${i}]`;
  ensure(typeof s === 'object' && s !== null, at, 'must be a Sighting');
  checkBytes(s.rpi, RPI_BYTES, `${at}.rpi`);
  checkBytes(s.aem, EN_METADATA_BYTES, `${at}.aem`);
  const t = s.receivedAtMs;
  ensure(
    typeof t === 'number' && Number.isFinite(t) && t >= 0 && t <= MAX_RECEIVED_AT_MS,
    `${at}.receivedAtMs`,
    `must be Unix milliseconds in [0, ${MAX_RECEIVED_AT_MS}], got ${String(t)}`,
  );
  const r = s.rssiDbm;
  ensure(
    typeof r === 'number' && Number.isInteger(r) && r >= EN_RSSI_MIN_DBM && r <= EN_RSSI_MAX_DBM,
    `${at}.rssiDbm`,
    `must be an integer dBm in [${EN_RSSI_MIN_DBM}, ${EN_RSSI_MAX_DBM}], got ${String(r)}`,
  );
}

/** The four int32 words of 16 bytes at `offset`, little-endian (as an Int32Array view reads on x86/ARM). */
export function wordsOf(bytes: Uint8Array, out: Int32Array, outOffset: number): void {
  for (let w = 0; w < 4; w++) {
    const b = w * 4;
    out[outOffset + w] = (bytes[b] ?? 0) | ((bytes[b + 1] ?? 0) << 8) | ((bytes[b + 2] ?? 0) << 16) | ((bytes[b + 3] ?? 0) << 24);
  }
}

/** Whether the platform reads typed-array words little-endian (the index stores words as an Int32Array sees them). */
export const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

/**
 * The sightings of the last 14 days indexed for matching: built once per matching run (or kept
 * and rebuilt when the store changes), read-only afterwards. It keeps a copy of the array, not of
 * the sightings: their bytes must not change while the index is in use.
 *
 * Layout (structure of arrays, no per-sighting objects besides the input):
 *   words[4d … 4d+3]      distinct RPI d as four int32 words
 *   slots[h]              d + 1 for the RPI hashing to h (linear probing), 0 = empty
 *   groupStart[d] … groupStart[d+1]   positions in `order` of RPI d's sightings, by time
 *   order[p]              sighting index at position p; eninAt[p] its receive ENIN
 *   sortedEnins           every sighting's receive ENIN, ascending (window test per key)
 *   filter                one bit per value of an RPI's first word modulo the filter size, set for
 *                         every distinct RPI: a clear bit answers a miss with one load, no hashing.
 *                         The filter is unkeyed, but each distinct RPI sets at most one of its
 *                         ≥ 32 bits per RPI, so whatever RPIs a sender plants, a derived (random)
 *                         RPI passes with probability ≤ 1/32 and then meets the seeded table.
 */
export class SightingIndex {
  readonly sightings: readonly Sighting[];
  /** Distinct RPIs among the sightings. */
  readonly distinctRpis: number;
  private readonly seed: number;
  private readonly mask: number;
  private readonly words: Int32Array;
  private readonly slots: Int32Array;
  private readonly filter: Int32Array;
  private readonly filterMask: number;
  private readonly groupStart: Int32Array;
  private readonly order: Int32Array;
  private readonly eninAt: Float64Array;
  private readonly sortedEnins: Float64Array;

  constructor(sightings: readonly Sighting[], options: SightingIndexOptions = {}) {
    ensure(isList(sightings), 'sightings', 'must be an array of Sightings');
    const seed = options.hashSeed ?? 0;
    ensure(Number.isInteger(seed) && seed >= 0 && seed <= 0xffff_ffff, 'options.hashSeed', `must be a uint32, got ${seed}`);
    const n = sightings.length;
    for (let i = 0; i < n; i++) checkSighting(sightings[i] as Sighting, i);
    // A shallow copy: appending to the caller's array later does not desynchronize the index.
    this.sightings = Object.freeze(sightings.slice());
    this.seed = seed | 0;

    let capacity = MIN_TABLE_SLOTS;
    while (capacity < 2 * n) capacity *= 2;
    this.mask = capacity - 1;
    this.slots = new Int32Array(capacity);

    // Pass 1: distinct RPIs → ids, and each sighting's id.
    const words = new Int32Array(4 * Math.max(n, 1));
    const idOf = new Int32Array(n);
    const probe = new Int32Array(4);
    let distinct = 0;
    for (let i = 0; i < n; i++) {
      wordsOf((sightings[i] as Sighting).rpi, probe, 0);
      const w0 = probe[0] ?? 0, w1 = probe[1] ?? 0, w2 = probe[2] ?? 0, w3 = probe[3] ?? 0;
      let h = rpiHash(this.seed, w0, w1, w2, w3) & this.mask;
      let id = -1;
      for (;;) {
        const slot = this.slots[h] ?? 0;
        if (slot === 0) break;
        const d = slot - 1;
        if (words[4 * d] === w0 && words[4 * d + 1] === w1 && words[4 * d + 2] === w2 && words[4 * d + 3] === w3) {
          id = d;
          break;
        }
        h = (h + 1) & this.mask;
      }
      if (id < 0) {
        id = distinct++;
        words.set(probe, 4 * id);
        this.slots[h] = id + 1;
      }
      idOf[i] = id;
    }
    this.distinctRpis = distinct;
    this.words = words;
    let filterBits = MIN_FILTER_BITS;
    while (filterBits < FILTER_BITS_PER_RPI * distinct) filterBits *= 2;
    this.filter = new Int32Array(filterBits / 32);
    this.filterMask = filterBits - 1;
    for (let d = 0; d < distinct; d++) {
      const bit = (words[4 * d] ?? 0) & this.filterMask;
      this.filter[bit >>> 5] = (this.filter[bit >>> 5] ?? 0) | (1 << (bit & 31));
    }

    // Pass 2: group sightings by RPI id (counting sort), each group by time then index.
    const groupStart = new Int32Array(distinct + 1);
    for (let i = 0; i < n; i++) groupStart[(idOf[i] ?? 0) + 1] = (groupStart[(idOf[i] ?? 0) + 1] ?? 0) + 1;
    for (let d = 0; d < distinct; d++) groupStart[d + 1] = (groupStart[d + 1] ?? 0) + (groupStart[d] ?? 0);
    const fill = groupStart.slice(0, distinct);
    const order = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const d = idOf[i] ?? 0;
      order[fill[d] ?? 0] = i;
      fill[d] = (fill[d] ?? 0) + 1;
    }
    const timeOf = (i: number): number => (sightings[i] as Sighting).receivedAtMs;
    for (let d = 0; d < distinct; d++) {
      const from = groupStart[d] ?? 0;
      const to = groupStart[d + 1] ?? 0;
      if (to - from > 1) order.subarray(from, to).sort((a, b) => timeOf(a) - timeOf(b) || a - b);
    }
    const eninAt = new Float64Array(n);
    for (let p = 0; p < n; p++) eninAt[p] = Math.floor(timeOf(order[p] ?? 0) / EN_INTERVAL_MS);
    this.groupStart = groupStart;
    this.order = order;
    this.eninAt = eninAt;
    this.sortedEnins = eninAt.slice().sort();
  }

  /** Sightings in the index. */
  get size(): number {
    return this.sightings.length;
  }

  /** Id of the distinct RPI with these words, or −1. */
  findWords(w0: number, w1: number, w2: number, w3: number): number {
    if (!this.mayHold(w0)) return -1;
    const words = this.words;
    const slots = this.slots;
    const mask = this.mask;
    let h = rpiHash(this.seed, w0, w1, w2, w3) & mask;
    for (;;) {
      const slot = slots[h] ?? 0;
      if (slot === 0) return -1;
      const b = 4 * (slot - 1);
      if (words[b] === w0 && words[b + 1] === w1 && words[b + 2] === w2 && words[b + 3] === w3) return slot - 1;
      h = (h + 1) & mask;
    }
  }

  /**
   * False when no indexed RPI has first word w0 (the miss filter: one load, no hashing); true when
   * one may have. findWords asks it first; a caller may ask before reading an RPI's other words.
   */
  mayHold(w0: number): boolean {
    const bit = w0 & this.filterMask;
    // `>>>` takes its count mod 32: the bit within the filter word.
    return (((this.filter[bit >>> 5] ?? 0) >>> bit) & 1) !== 0;
  }

  /** Indices of the sightings of `rpi` (16 bytes), by receive time. */
  lookup(rpi: Uint8Array): number[] {
    checkBytes(rpi, RPI_BYTES, 'rpi');
    const w = new Int32Array(4);
    wordsOf(rpi, w, 0);
    const d = this.findWords(w[0] ?? 0, w[1] ?? 0, w[2] ?? 0, w[3] ?? 0);
    return d < 0 ? [] : Array.from(this.order.subarray(this.groupStart[d] ?? 0, this.groupStart[d + 1] ?? 0));
  }

  /** Positions [groupFrom(d), groupFrom(d + 1)) in `order` hold distinct RPI d's sightings. @internal */
  groupFrom(d: number): number {
    return this.groupStart[d] ?? 0;
  }

  /** Sighting index and receive ENIN at position p of `order`. @internal */
  sightingAt(p: number): number {
    return this.order[p] ?? 0;
  }
  eninAtPosition(p: number): number {
    return this.eninAt[p] ?? 0;
  }

  /** Smallest receive ENIN ≥ lo, or +∞ when there is none (binary search). */
  firstEninAtOrAfter(lo: number): number {
    const s = this.sortedEnins;
    let a = 0;
    let b = s.length;
    while (a < b) {
      const m = (a + b) >>> 1;
      if ((s[m] ?? 0) < lo) a = m + 1;
      else b = m;
    }
    return a === s.length ? Number.POSITIVE_INFINITY : (s[a] ?? 0);
  }

  /** Largest receive ENIN ≤ hi, or −∞ when there is none (binary search). */
  lastEninAtOrBefore(hi: number): number {
    const s = this.sortedEnins;
    let a = 0;
    let b = s.length;
    while (a < b) {
      const m = (a + b) >>> 1;
      if ((s[m] ?? 0) <= hi) a = m + 1;
      else b = m;
    }
    return a === 0 ? Number.NEGATIVE_INFINITY : (s[a - 1] ?? 0);
  }
}

/** Index `sightings` for matchDiagnosisKeys. MisuseError naming the field for a malformed sighting. */
export function buildSightingIndex(sightings: readonly Sighting[], options: SightingIndexOptions = {}): SightingIndex {
  return new SightingIndex(sightings, options);
}
