/**
 * GAEN matching of downloaded diagnosis keys against a phone's sightings (SPECS §1.6; EN-internals
 * `RollingProximityIdValidator`, `ContactRecordLookUpTable`, `ContactTracingFeature`, read at
 * google/exposure-notifications-internals @ 413b561f — a later snapshot than SPECS's aaada6ce; the
 * constants used here are the same names SPECS quotes):
 *
 *   for each diagnosis key (tek, rolling_start_interval_number, rolling_period, transmission risk):
 *     RPIK = HKDF(tek, "EN-RPIK"); RPI_j = AES-ECB(RPIK, PaddedData_j), j = start … start + period − 1
 *     a sighting (rpi, aem, receivedAt, rssi) matches RPI_j  iff  rpi = RPI_j  and
 *       j − 12 ≤ ENIN(receivedAt) ≤ j + 12                      (clock drift, 12 intervals = 2 h)
 *     then metadata = AES-CTR(AEMK, IV = RPI_j, aem) gives the sender's TX power,
 *       attenuation = TX power − RSSI (dB)
 *
 * Drift tolerance (SPECS §1.6 says only "12 intervals", from the embargo; the exact window is
 * `RollingProximityIdValidator.isSightingValid`): the tolerance is per RPI, "rolling periods that can
 * be used before and after an RPI's validity time" (`tkMatchingClockDriftRollingPeriods() = 12`):
 * valid ENINs are [j − 12, j + 12 + 1) with both ends reached, and the end is *not* clipped to the
 * key's rolling end (`ignoreEmbargoPeriodWhenMatchingNearKeyEdges() = false`). The union over a
 * key's RPIs is the key's validity window ± 12 intervals, [start − 12, end + 12) with end exclusive;
 * per-RPI is stricter than "anywhere in the key's window ± 2 h": an RPI replayed hours after its
 * interval (a relay attack) does not match.
 *
 * TX power plausibility: EN-internals rejects matched RPIs whose decrypted TX power lies outside
 * [−50, 20] dBm "as outside reasonable range and potentially malicious"
 * (`matchingTxPowerLowerBound/UpperBound`); they are counted, not returned.
 *
 * Speed (issue 5: ≥ 100,000 keys/s on one core). Per key the work is one HKDF, one batched AES-ECB
 * call over the key's padded blocks, and one hash probe per RPI; nothing is allocated per RPI:
 * - the sightings are indexed once (buildSightingIndex): distinct RPIs as four int32 words in an
 *   open-addressed table (load ≤ 1/2, so a non-matching RPI — almost all of them — costs one probe
 *   on average), each with its sightings sorted by time;
 * - the hash mixes all 16 bytes with a caller-given seed (randomness is an argument): RPIs come off
 *   the air, and an unkeyed hash of chosen bytes (EN-internals indexes on the first two bytes) lets
 *   a sender flood one bucket and make every lookup walk it. Results never depend on the seed;
 * - a key whose window ± drift holds no sighting costs no crypto at all (a binary search over the
 *   sorted sighting intervals), and only the RPIs j whose [j − 12, j + 12] holds a sighting are
 *   derived (a key overlapping the store's first or last day is trimmed);
 * - RPIs are read straight from the ECB output (copied once into an aligned scratch buffer), not
 *   sliced into 144 arrays as rpisForTek does.
 *
 * Keys come from a parsed export file and sightings from the phone's own store (parsed service
 * data), so a malformed key or sighting is caller misuse: MisuseError naming the field
 * (`keys[3].keyData`, `sightings[7].rssiDbm`). The bytes themselves may be anything: random or
 * hostile RPIs, AEMs and TEKs never throw.
 */
import type { CryptoSuite } from '../crypto/suite.ts';
import { ensure } from '../errors.ts';
import {
  EN_INTERVAL_NUMBER_MAX,
  EN_INTERVAL_SECONDS,
  TEK_MATCHING_CLOCK_DRIFT_INTERVALS,
  TEK_MAX_ROLLING_PERIOD,
  TEK_MIN_ROLLING_PERIOD,
  TEK_RETENTION_DAYS,
  TEK_ROLLING_PERIOD,
} from './interval.ts';
import { RPI_BYTES, RPI_PADDED_ENIN_OFFSET, RPI_PADDED_PREFIX, TEK_BYTES, aemk, rpik } from './keys.ts';
import { EN_METADATA_BYTES, decryptAem, parseEnMetadata, type EnMetadata } from './metadata.ts';

/** One ENIntervalNumber, milliseconds (600 s). SPECS §1.1. */
export const EN_INTERVAL_MS = EN_INTERVAL_SECONDS * 1000;
/** Lowest TX power a matched RPI may claim, dBm: below it the match is dropped (EN-internals `matchingTxPowerLowerBound() = -50`). SPECS §1.6. */
export const EN_MATCHING_TX_POWER_MIN_DBM = -50;
/** Highest TX power a matched RPI may claim, dBm (EN-internals `matchingTxPowerUpperBound() = 20`). SPECS §1.6. */
export const EN_MATCHING_TX_POWER_MAX_DBM = 20;
/** RSSI range a BLE controller reports, dBm (HCI LE Advertising Report: −127…+20; as protocol/demo/messages.ts). */
export const EN_RSSI_MIN_DBM = -127;
export const EN_RSSI_MAX_DBM = 20;
/** transmission_risk_level range, 0–8 (EN-server `pkg/api/v1alpha1` Min/MaxTransmissionRisk; protocol/keyserver/gaen-export-schema.ts). SPECS §1.7. */
export const EN_TRANSMISSION_RISK_MIN = 0;
export const EN_TRANSMISSION_RISK_MAX = 8;
/** Largest clock-drift tolerance accepted as an option, intervals: the 14-day retention. SPECS §1.2. */
export const MAX_CLOCK_DRIFT_INTERVALS = TEK_ROLLING_PERIOD * TEK_RETENTION_DAYS;

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

/**
 * A published diagnosis key. protocol/keyserver's ExportKey (a parsed export.bin key, proto2
 * defaults applied) has this shape, so parsed exports are passed as they are.
 */
export interface DiagnosisKey {
  /** The TEK, 16 bytes. */
  readonly keyData: Uint8Array;
  readonly rollingStartIntervalNumber: number;
  /** 1–144 intervals. */
  readonly rollingPeriod: number;
  /** 0–8 (deprecated in GAEN v2 but still published, SPECS §7.5); weighted by exposure.ts. */
  readonly transmissionRiskLevel: number;
}

export interface SightingIndexOptions {
  /**
   * Seed of the RPI hash, uint32 (default 0). Hosts pass random bits so that chosen RPIs cannot
   * crowd one bucket; matching results never depend on it.
   */
  readonly hashSeed?: number;
}

export interface MatchOptions {
  /** Intervals before and after an RPI's interval a sighting may lie, default 12 (2 h). SPECS §1.6. */
  readonly clockDriftIntervals?: number;
  /** Plausible TX power of a matched RPI, dBm; default −50 … 20 (EN-internals). Outside: counted, dropped. */
  readonly minTxPowerDbm?: number;
  readonly maxTxPowerDbm?: number;
}

/** A sighting matched to a diagnosis key. */
export interface MatchedSighting {
  /** Position of the sighting in the array the index was built from. */
  readonly index: number;
  readonly sighting: Sighting;
  /** ENIntervalNumber j of the key's RPI that matched (the sender's interval). */
  readonly rpiIntervalNumber: number;
  /** ENIntervalNumber of the receive time (the receiver's interval); |this − j| ≤ drift. */
  readonly receivedIntervalNumber: number;
  /** Decrypted metadata (SPECS §1.4). */
  readonly metadata: EnMetadata;
  /** metadata.txPowerDbm − rssiDbm, dB. */
  readonly attenuationDb: number;
}

/** Every sighting of one diagnosis key, by receive time (then sighting index). */
export interface KeyMatch {
  /** Position of the key in the keys array. */
  readonly keyIndex: number;
  readonly key: DiagnosisKey;
  readonly sightings: readonly MatchedSighting[];
  /** RPI matches of this key dropped because their decrypted TX power was implausible. */
  readonly implausibleTxPower: number;
}

export interface MatchStats {
  /** Keys given. */
  readonly keys: number;
  /** Keys skipped without crypto: no sighting in their window ± drift. */
  readonly keysWithoutSightings: number;
  /** RPIs derived and looked up. */
  readonly rpisDerived: number;
  /** Keys with at least one returned sighting. */
  readonly matchedKeys: number;
  /** Sightings returned, over all keys (a sighting may match several keys only if they repeat a TEK). */
  readonly matchedSightings: number;
  /** RPI matches dropped for an implausible TX power. */
  readonly implausibleTxPower: number;
}

export interface MatchResult {
  /** Keys with at least one plausible match, in key order (a key whose every match was implausible only counts in stats). */
  readonly matches: readonly KeyMatch[];
  readonly stats: MatchStats;
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
const isList = (value: unknown): boolean => Array.isArray(value);

/** Smallest table: 16 slots. */
const MIN_TABLE_SLOTS = 16;

function checkBytes(value: unknown, length: number, field: string): asserts value is Uint8Array {
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
function wordsOf(bytes: Uint8Array, out: Int32Array, outOffset: number): void {
  for (let w = 0; w < 4; w++) {
    const b = w * 4;
    out[outOffset + w] = (bytes[b] ?? 0) | ((bytes[b + 1] ?? 0) << 8) | ((bytes[b + 2] ?? 0) << 16) | ((bytes[b + 3] ?? 0) << 24);
  }
}

/** Whether the platform reads typed-array words little-endian (the index stores words as an Int32Array sees them). */
const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

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
 */
export class SightingIndex {
  readonly sightings: readonly Sighting[];
  /** Distinct RPIs among the sightings. */
  readonly distinctRpis: number;
  private readonly seed: number;
  private readonly mask: number;
  private readonly words: Int32Array;
  private readonly slots: Int32Array;
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

// ------------------------------------------------------------ matching

/** Whether `key` is well-formed (the fast path: no strings built per key). */
function isWellFormedKey(key: DiagnosisKey): boolean {
  if (typeof key !== 'object' || key === null) return false;
  const { keyData, rollingStartIntervalNumber: start, rollingPeriod: period, transmissionRiskLevel: tr } = key;
  return (
    keyData instanceof Uint8Array &&
    keyData.length === TEK_BYTES &&
    Number.isInteger(start) &&
    start >= 0 &&
    Number.isInteger(period) &&
    period >= TEK_MIN_ROLLING_PERIOD &&
    period <= TEK_MAX_ROLLING_PERIOD &&
    start + period - 1 <= EN_INTERVAL_NUMBER_MAX &&
    Number.isInteger(tr) &&
    tr >= EN_TRANSMISSION_RISK_MIN &&
    tr <= EN_TRANSMISSION_RISK_MAX
  );
}

/** Throw MisuseError naming the first bad field of a key isWellFormedKey refused. */
function checkKey(key: DiagnosisKey, i: number): void {
  const at = `keys[${i}]`;
  ensure(typeof key === 'object' && key !== null, at, 'must be a DiagnosisKey');
  checkBytes(key.keyData, TEK_BYTES, `${at}.keyData`);
  const start = key.rollingStartIntervalNumber;
  const period = key.rollingPeriod;
  ensure(
    typeof start === 'number' && Number.isInteger(start) && start >= 0 && start <= EN_INTERVAL_NUMBER_MAX,
    `${at}.rollingStartIntervalNumber`,
    `must be an ENIntervalNumber, an integer in [0, ${EN_INTERVAL_NUMBER_MAX}], got ${String(start)}`,
  );
  ensure(
    typeof period === 'number' && Number.isInteger(period) && period >= TEK_MIN_ROLLING_PERIOD && period <= TEK_MAX_ROLLING_PERIOD,
    `${at}.rollingPeriod`,
    `must be an integer in [${TEK_MIN_ROLLING_PERIOD}, ${TEK_MAX_ROLLING_PERIOD}], got ${String(period)}`,
  );
  ensure(start + period - 1 <= EN_INTERVAL_NUMBER_MAX, `${at}.rollingPeriod`, `start ${start} + period ${period} runs past ENIntervalNumber ${EN_INTERVAL_NUMBER_MAX}`);
  const tr = key.transmissionRiskLevel;
  ensure(
    typeof tr === 'number' && Number.isInteger(tr) && tr >= EN_TRANSMISSION_RISK_MIN && tr <= EN_TRANSMISSION_RISK_MAX,
    `${at}.transmissionRiskLevel`,
    `must be an integer in [${EN_TRANSMISSION_RISK_MIN}, ${EN_TRANSMISSION_RISK_MAX}], got ${String(tr)}`,
  );
}

interface ResolvedMatchOptions {
  readonly drift: number;
  readonly minTx: number;
  readonly maxTx: number;
}

function resolveOptions(options: MatchOptions): ResolvedMatchOptions {
  const drift = options.clockDriftIntervals ?? TEK_MATCHING_CLOCK_DRIFT_INTERVALS;
  ensure(
    Number.isInteger(drift) && drift >= 0 && drift <= MAX_CLOCK_DRIFT_INTERVALS,
    'options.clockDriftIntervals',
    `must be an integer in [0, ${MAX_CLOCK_DRIFT_INTERVALS}], got ${drift}`,
  );
  const minTx = options.minTxPowerDbm ?? EN_MATCHING_TX_POWER_MIN_DBM;
  const maxTx = options.maxTxPowerDbm ?? EN_MATCHING_TX_POWER_MAX_DBM;
  ensure(Number.isFinite(minTx), 'options.minTxPowerDbm', `must be a finite number, got ${minTx}`);
  ensure(Number.isFinite(maxTx) && maxTx >= minTx, 'options.maxTxPowerDbm', `must be a finite number ≥ minTxPowerDbm, got ${maxTx}`);
  return { drift, minTx, maxTx };
}

/** Reusable per-run buffers: padded blocks in, RPIs out (aligned for an Int32Array view). */
class Scratch {
  readonly blocks = new Uint8Array(TEK_MAX_ROLLING_PERIOD * RPI_BYTES);
  private readonly rpiBuffer = new ArrayBuffer(TEK_MAX_ROLLING_PERIOD * RPI_BYTES);
  readonly rpiBytes = new Uint8Array(this.rpiBuffer);
  readonly rpiWords = new Int32Array(this.rpiBuffer);
  /** Pending hits of the current key: (position in the index's order, j). */
  hitPositions: number[] = [];
  hitIntervals: number[] = [];

  constructor() {
    for (let k = 0; k < TEK_MAX_ROLLING_PERIOD; k++) this.blocks.set(RPI_PADDED_PREFIX, k * RPI_BYTES);
  }

  /** PaddedData_j for j = first … first + count − 1 (only the LE32 ENIN changes). SPECS §1.3. */
  writeIntervals(first: number, count: number): Uint8Array {
    const blocks = this.blocks;
    for (let k = 0; k < count; k++) {
      const at = k * RPI_BYTES + RPI_PADDED_ENIN_OFFSET;
      const enin = first + k;
      blocks[at] = enin & 0xff;
      blocks[at + 1] = (enin >>> 8) & 0xff;
      blocks[at + 2] = (enin >>> 16) & 0xff;
      blocks[at + 3] = (enin >>> 24) & 0xff;
    }
    return blocks.subarray(0, count * RPI_BYTES);
  }
}

/**
 * Match diagnosis keys against indexed sightings (module header): per key, its RPIs under the
 * per-RPI drift window, then the AEM of every hit decrypted for the TX power. Returns the keys with
 * plausible matches, in key order, each with its sightings by receive time, plus counters.
 */
export function matchDiagnosisKeys(
  crypto: CryptoSuite,
  keys: readonly DiagnosisKey[],
  index: SightingIndex,
  options: MatchOptions = {},
): MatchResult {
  ensure(isList(keys), 'keys', 'must be an array of DiagnosisKeys');
  ensure(index instanceof SightingIndex, 'index', 'must be a SightingIndex (buildSightingIndex)');
  const { drift, minTx, maxTx } = resolveOptions(options);
  const scratch = new Scratch();
  const matches: KeyMatch[] = [];
  let keysWithoutSightings = 0;
  let rpisDerived = 0;
  let matchedSightings = 0;
  let implausibleTotal = 0;

  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as DiagnosisKey;
    if (!isWellFormedKey(key)) checkKey(key, i);
    const start = key.rollingStartIntervalNumber;
    const last = start + key.rollingPeriod - 1;
    // Receive ENINs any of the key's RPIs accepts: [start − drift, last + drift].
    const earliest = index.firstEninAtOrAfter(start - drift);
    if (earliest > last + drift) {
      keysWithoutSightings++;
      continue;
    }
    const latest = index.lastEninAtOrBefore(last + drift);
    // Only RPIs j with a sighting in [j − drift, j + drift] can match.
    const first = Math.max(start, earliest - drift);
    const count = Math.min(last, latest + drift) - first + 1;
    rpisDerived += count;
    const encrypted = crypto.aesEcbEncrypt(rpik(crypto, key.keyData), scratch.writeIntervals(first, count));
    const rpiWords = scratch.rpiWords;
    if (LITTLE_ENDIAN) scratch.rpiBytes.set(encrypted.subarray(0, count * RPI_BYTES));
    else for (let k = 0; k < count; k++) wordsOf(encrypted.subarray(k * RPI_BYTES, (k + 1) * RPI_BYTES), rpiWords, 4 * k);

    const hitPositions = scratch.hitPositions;
    const hitIntervals = scratch.hitIntervals;
    hitPositions.length = 0;
    hitIntervals.length = 0;
    for (let k = 0; k < count; k++) {
      const b = 4 * k;
      const d = index.findWords(rpiWords[b] ?? 0, rpiWords[b + 1] ?? 0, rpiWords[b + 2] ?? 0, rpiWords[b + 3] ?? 0);
      if (d < 0) continue;
      const j = first + k;
      const to = index.groupFrom(d + 1);
      for (let p = index.groupFrom(d); p < to; p++) {
        const received = index.eninAtPosition(p);
        if (received >= j - drift && received <= j + drift) {
          hitPositions.push(p);
          hitIntervals.push(j);
        }
      }
    }
    if (hitPositions.length === 0) continue;

    const aemkBytes = aemk(crypto, key.keyData);
    const sightings: MatchedSighting[] = [];
    let implausible = 0;
    for (let h = 0; h < hitPositions.length; h++) {
      const p = hitPositions[h] ?? 0;
      const s = index.sightingAt(p);
      const sighting = index.sightings[s] as Sighting;
      // Always 4 bytes in, 4 out: the verdict is always accepted.
      const parsed = parseEnMetadata(decryptAem(crypto, aemkBytes, sighting.rpi, sighting.aem));
      if (!parsed.ok) continue;
      const tx = parsed.value.txPowerDbm;
      if (tx < minTx || tx > maxTx) {
        implausible++;
        continue;
      }
      sightings.push({
        index: s,
        sighting,
        rpiIntervalNumber: hitIntervals[h] ?? 0,
        receivedIntervalNumber: index.eninAtPosition(p),
        metadata: parsed.value,
        attenuationDb: tx - sighting.rssiDbm,
      });
    }
    implausibleTotal += implausible;
    if (sightings.length === 0) continue;
    sightings.sort((a, b) => a.sighting.receivedAtMs - b.sighting.receivedAtMs || a.index - b.index);
    matchedSightings += sightings.length;
    matches.push({ keyIndex: i, key, sightings, implausibleTxPower: implausible });
  }

  return {
    matches,
    stats: {
      keys: keys.length,
      keysWithoutSightings,
      rpisDerived,
      matchedKeys: matches.length,
      matchedSightings,
      implausibleTxPower: implausibleTotal,
    },
  };
}
