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
 * Speed (issue 5: ≥ 100,000 keys/s on one core). Per key the work is one HKDF, one AES-ECB pass
 * over the key's padded blocks, and one filter probe per RPI; nothing is allocated per RPI:
 * - keys are derived KEYS_PER_BATCH at a time through RpiBatch (keys.ts): one hkdfSha256Batch and
 *   one aesEcbEncryptBatch call per batch. The suites' single calls cost more per key than the
 *   crypto itself (node: two HMAC objects per HKDF, an LRU of ciphers for keys never seen again);
 *   the batched ones do HKDF in pure TS from the salt's precomputed HMAC states (six SHA-256
 *   compressions, ~2 µs) and one fresh OpenSSL cipher per key (~3.5 µs with its GC), which is
 *   what remains per key (bench/gaen-matching.ts "crypto floor");
 * - the sightings are indexed once (buildSightingIndex): distinct RPIs as four int32 words in an
 *   open-addressed table (load ≤ 1/2), each with its sightings sorted by time, and a bitmap over
 *   the RPIs' first words (≥ 32 bits per RPI) that answers a non-matching RPI — almost all of
 *   them — with one load and no hashing;
 * - the table's hash mixes all 16 bytes with a caller-given seed (randomness is an argument): RPIs
 *   come off the air, and an unkeyed hash of chosen bytes (EN-internals indexes on the first two
 *   bytes) lets a sender flood one bucket and make every lookup walk it. Hostile RPIs can only set
 *   filter bits, which sends lookups on to the seeded table. Results never depend on the seed;
 * - a key whose window ± drift holds no sighting costs no crypto at all (a binary search over the
 *   sorted sighting intervals), and only the RPIs j whose [j − 12, j + 12] holds a sighting are
 *   derived (a key overlapping the store's first or last day is trimmed);
 * - RPIs are read in place as int32 words from the batch's ECB output, not sliced into 144 arrays
 *   as rpisForTek does.
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
  TEK_MATCHING_CLOCK_DRIFT_INTERVALS,
  TEK_MAX_ROLLING_PERIOD,
  TEK_MIN_ROLLING_PERIOD,
  TEK_RETENTION_DAYS,
  TEK_ROLLING_PERIOD,
} from './interval.ts';
import { RPI_BYTES, RpiBatch, TEK_BYTES, aemk } from './keys.ts';
import { decryptAem, parseEnMetadata, type EnMetadata } from './metadata.ts';
import { checkBytes, isList, LITTLE_ENDIAN, SightingIndex, wordsOf, type Sighting } from './sighting-index.ts';

export { buildSightingIndex, EN_INTERVAL_MS, EN_RSSI_MAX_DBM, EN_RSSI_MIN_DBM, SightingIndex, type Sighting, type SightingIndexOptions } from './sighting-index.ts';

/** Lowest TX power a matched RPI may claim, dBm: below it the match is dropped (EN-internals `matchingTxPowerLowerBound() = -50`). SPECS §1.6. */
export const EN_MATCHING_TX_POWER_MIN_DBM = -50;
/** Highest TX power a matched RPI may claim, dBm (EN-internals `matchingTxPowerUpperBound() = 20`). SPECS §1.6. */
export const EN_MATCHING_TX_POWER_MAX_DBM = 20;
/** transmission_risk_level range, 0–8 (EN-server `pkg/api/v1alpha1` Min/MaxTransmissionRisk; protocol/keyserver/gaen-export-schema.ts). SPECS §1.7. */
export const EN_TRANSMISSION_RISK_MIN = 0;
export const EN_TRANSMISSION_RISK_MAX = 8;
/** Largest clock-drift tolerance accepted as an option, intervals: the 14-day retention. SPECS §1.2. */
export const MAX_CLOCK_DRIFT_INTERVALS = TEK_ROLLING_PERIOD * TEK_RETENTION_DAYS;


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

/**
 * Diagnosis keys derived per pair of batched suite calls (RpiBatch). Any size gives the same result;
 * 32 keeps the padded blocks and RPIs (2 × 32 × 144 × 16 = 147 KB) in a core's L2 cache and makes
 * the per-batch setup (the salt's HMAC states, a few subarrays) negligible per key.
 */
const KEYS_PER_BATCH = 32;

/** Reusable per-run buffers: the RPI batch, its keys' positions, and the pending hits of one key. */
class Scratch {
  readonly batch: RpiBatch;
  /** The batch's RPIs as int32 words the way the index stores them. */
  readonly rpiWords: Int32Array;
  /** keyOf[b]: index in `keys` of the batch's b-th key; firstOf[b]: ENIN of its first RPI. */
  readonly keyOf = new Int32Array(KEYS_PER_BATCH);
  readonly firstOf = new Float64Array(KEYS_PER_BATCH);
  /** Pending hits of the current key: (position in the index's order, j). */
  hitPositions: number[] = [];
  hitIntervals: number[] = [];

  /** `keys` keys to match: a call with a few keys (a phone's own check) allocates for just those. */
  constructor(keys: number) {
    this.batch = new RpiBatch(Math.max(1, Math.min(KEYS_PER_BATCH, keys)));
    const bytes = this.batch.rpiBytes;
    this.rpiWords = LITTLE_ENDIAN ? new Int32Array(bytes.buffer, 0, bytes.length / 4) : new Int32Array(bytes.length / 4);
  }

  /** After derive(): on a big-endian platform, read the RPIs' words little-endian as the index does. */
  wordsReady(): void {
    if (LITTLE_ENDIAN) return;
    const bytes = this.batch.rpiBytes;
    const blocks = this.batch.blockOf(this.batch.size);
    for (let k = 0; k < blocks; k++) wordsOf(bytes.subarray(k * RPI_BYTES, (k + 1) * RPI_BYTES), this.rpiWords, 4 * k);
  }
}

/**
 * Look up RPI blocks from … to − 1 of the batch (RPI j = first + block − from) and keep the sightings
 * inside each RPI's drift window as pending hits. Returns their number.
 */
function findHits(index: SightingIndex, rpiWords: Int32Array, from: number, to: number, first: number, drift: number, scratch: Scratch): number {
  const hitPositions = scratch.hitPositions;
  const hitIntervals = scratch.hitIntervals;
  // Setting an array's length is a runtime call: only when the last key left hits.
  if (hitPositions.length !== 0) {
    hitPositions.length = 0;
    hitIntervals.length = 0;
  }
  for (let k = from; k < to; k++) {
    const w = 4 * k;
    const w0 = rpiWords[w] ?? 0;
    // Nearly every derived RPI is a miss, answered by the index's filter on the first word alone.
    if (!index.mayHold(w0)) continue;
    const d = index.findWords(w0, rpiWords[w + 1] ?? 0, rpiWords[w + 2] ?? 0, rpiWords[w + 3] ?? 0);
    if (d < 0) continue;
    const j = first + (k - from);
    const end = index.groupFrom(d + 1);
    for (let p = index.groupFrom(d); p < end; p++) {
      const received = index.eninAtPosition(p);
      if (received >= j - drift && received <= j + drift) {
        hitPositions.push(p);
        hitIntervals.push(j);
      }
    }
  }
  return hitPositions.length;
}

/** AEMK of `key`, every pending hit's AEM decrypted: plausible ones as MatchedSightings by receive time. */
function decryptHits(crypto: CryptoSuite, key: DiagnosisKey, index: SightingIndex, scratch: Scratch, minTx: number, maxTx: number): { sightings: MatchedSighting[]; implausible: number } {
  const aemkBytes = aemk(crypto, key.keyData);
  const sightings: MatchedSighting[] = [];
  let implausible = 0;
  for (let h = 0; h < scratch.hitPositions.length; h++) {
    const p = scratch.hitPositions[h] ?? 0;
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
      rpiIntervalNumber: scratch.hitIntervals[h] ?? 0,
      receivedIntervalNumber: index.eninAtPosition(p),
      metadata: parsed.value,
      attenuationDb: tx - sighting.rssiDbm,
    });
  }
  sightings.sort((a, b) => a.sighting.receivedAtMs - b.sighting.receivedAtMs || a.index - b.index);
  return { sightings, implausible };
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
  const scratch = new Scratch(keys.length);
  const matches: KeyMatch[] = [];
  let keysWithoutSightings = 0;
  let rpisDerived = 0;
  let matchedSightings = 0;
  let implausibleTotal = 0;

  const { batch, keyOf, firstOf, rpiWords } = scratch;
  for (let i = 0; i < keys.length; ) {
    // Queue up to a batch of keys that can match, then derive all their RPIs at once.
    batch.clear();
    for (; i < keys.length && batch.size < batch.capacity; i++) {
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
      keyOf[batch.size] = i;
      firstOf[batch.size] = first;
      batch.add(key.keyData, first, count);
    }
    if (batch.size === 0) continue;
    batch.derive(crypto);
    scratch.wordsReady();

    for (let b = 0; b < batch.size; b++) {
      const hits = findHits(index, rpiWords, batch.blockOf(b), batch.blockOf(b + 1), firstOf[b] ?? 0, drift, scratch);
      if (hits === 0) continue;
      const keyIndex = keyOf[b] ?? 0;
      const key = keys[keyIndex] as DiagnosisKey;
      const { sightings, implausible } = decryptHits(crypto, key, index, scratch, minTx, maxTx);
      implausibleTotal += implausible;
      if (sightings.length === 0) continue;
      matchedSightings += sightings.length;
      matches.push({ keyIndex, key, sightings, implausibleTxPower: implausible });
    }
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
