/**
 * GAEN matching (protocol/gaen/matching.ts; SPECS §1.6): a phone that heard key K's RPIs at the
 * right times matches K; the per-RPI clock-drift window of ±12 intervals holds at both edges to
 * the millisecond; RPIs replayed outside it, other keys' RPIs and random RPIs do not match; the AEM
 * decrypts to the sender's TX power (official vector: +8 dBm); implausible TX power is dropped;
 * keys without sightings in their window cost no crypto. Properties: the indexed matcher equals a
 * naive O(keys × sightings × 144) reference on random small inputs (any hash seed, any drift), and
 * fuzzed keys and sightings never throw anything but MisuseError naming the field.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nobleSuite } from '../../protocol/crypto/noble.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import { MisuseError } from '../../protocol/errors.ts';
import { EN_INTERVAL_NUMBER_MAX, TEK_MATCHING_CLOCK_DRIFT_INTERVALS } from '../../protocol/gaen/interval.ts';
import { aemk, rpisForTek } from '../../protocol/gaen/keys.ts';
import {
  buildSightingIndex,
  EN_INTERVAL_MS,
  EN_MATCHING_TX_POWER_MAX_DBM,
  EN_MATCHING_TX_POWER_MIN_DBM,
  matchDiagnosisKeys,
  type DiagnosisKey,
  type MatchOptions,
  type MatchResult,
  type Sighting,
} from '../../protocol/gaen/matching.ts';
import type { ExportKey } from '../../protocol/keyserver/gaen-export.ts';
import { decryptAem, encodeEnMetadata, encryptAem, parseEnMetadata } from '../../protocol/gaen/metadata.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { misuseField } from '../support/misuse.ts';
import { prng } from '../support/test-rng.ts';
import vectors from '../vectors/gaen.json' with { type: 'json' };

const unhex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
const crypto: CryptoSuite = nodeSuite;
const DRIFT = TEK_MATCHING_CLOCK_DRIFT_INTERVALS;
/** Keys of a parsed export file are DiagnosisKeys as they are (compile-time check). */
export const exportKeysAreDiagnosisKeys = (key: ExportKey): DiagnosisKey => key;
/** A full-day key start: the official vector's (2020-04-02). */
const DAY0 = vectors.CTINTERVAL_NUMBER_OF_GENERATED_KEY;
const tekA = unhex(vectors.TEMPORARY_TRACING_KEY);
const tekB = Uint8Array.from({ length: 16 }, (_, i) => 0xb0 + i);

const keyOf = (keyData: Uint8Array, start = DAY0, period = 144, transmissionRiskLevel = 0): DiagnosisKey => ({
  keyData,
  rollingStartIntervalNumber: start,
  rollingPeriod: period,
  transmissionRiskLevel,
});

/** ms inside interval `enin` (offset ms after its start). */
const atInterval = (enin: number, offsetMs = 0): number => enin * EN_INTERVAL_MS + offsetMs;

/** A sighting of `tek`'s RPI for interval j, heard at `receivedAtMs`, carrying TX power `txPowerDbm`. */
function heard(tek: Uint8Array, j: number, receivedAtMs: number, rssiDbm = -70, txPowerDbm = 8, suite: CryptoSuite = crypto): Sighting {
  const [rpi] = rpisForTek(suite, tek, j, 1);
  if (rpi === undefined) throw new Error('no rpi');
  const metadata = encodeEnMetadata({ versionMajor: 1, versionMinor: 0, txPowerConfidence: 0, txPowerDbm });
  return { rpi, aem: encryptAem(suite, aemk(suite, tek), rpi, metadata), receivedAtMs, rssiDbm };
}

/** The plain facts of a result, for equality with the reference. */
function facts(result: MatchResult): unknown {
  return result.matches.map((m) => ({
    keyIndex: m.keyIndex,
    implausible: m.implausibleTxPower,
    sightings: m.sightings.map((s) => [s.index, s.rpiIntervalNumber, s.receivedIntervalNumber, s.metadata.txPowerDbm, s.attenuationDb]),
  }));
}

/** Naive reference: every key × every sighting × every RPI of the key, the per-RPI window of SPECS §1.6. */
function naiveFacts(suite: CryptoSuite, keys: readonly DiagnosisKey[], sightings: readonly Sighting[], options: MatchOptions = {}): unknown {
  const drift = options.clockDriftIntervals ?? DRIFT;
  const minTx = options.minTxPowerDbm ?? EN_MATCHING_TX_POWER_MIN_DBM;
  const maxTx = options.maxTxPowerDbm ?? EN_MATCHING_TX_POWER_MAX_DBM;
  const out: unknown[] = [];
  keys.forEach((key, keyIndex) => {
    const rpis = rpisForTek(suite, key.keyData, key.rollingStartIntervalNumber, key.rollingPeriod);
    const hits: [number, number, number, number, number, number][] = [];
    let implausible = 0;
    sightings.forEach((s, index) => {
      const received = Math.floor(s.receivedAtMs / EN_INTERVAL_MS);
      rpis.forEach((rpi, k) => {
        const j = key.rollingStartIntervalNumber + k;
        if (Buffer.compare(rpi, s.rpi) !== 0 || Math.abs(received - j) > drift) return;
        const md = parseEnMetadata(decryptAem(suite, aemk(suite, key.keyData), rpi, s.aem));
        if (!md.ok) throw new Error('metadata');
        const tx = md.value.txPowerDbm;
        if (tx < minTx || tx > maxTx) implausible++;
        else hits.push([s.receivedAtMs, index, j, received, tx, tx - s.rssiDbm]);
      });
    });
    hits.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    if (hits.length > 0) out.push({ keyIndex, implausible, sightings: hits.map((h) => h.slice(1)) });
  });
  return out;
}

function match(keys: readonly DiagnosisKey[], sightings: readonly Sighting[], options: MatchOptions = {}, suite: CryptoSuite = crypto): MatchResult {
  return matchDiagnosisKeys(suite, keys, buildSightingIndex(sightings), options);
}

describe('SPECS §1.6 matching diagnosis keys', () => {
  it('a phone that heard K during its day matches K, with each RPI interval and the TX power from the AEM', () => {
    const sightings = [
      heard(tekA, DAY0 + 10, atInterval(DAY0 + 10, 30_000), -60),
      heard(tekB, DAY0 + 11, atInterval(DAY0 + 11), -61), // another key, not published
      heard(tekA, DAY0 + 11, atInterval(DAY0 + 11, 5_000), -65, 3),
      heard(tekA, DAY0 + 143, atInterval(DAY0 + 143, 599_999), -80),
    ];
    const result = match([keyOf(tekA)], sightings);
    expect(result.matches).toHaveLength(1);
    const m = result.matches[0];
    expect(m?.keyIndex).toBe(0);
    expect(m?.sightings.map((s) => [s.index, s.rpiIntervalNumber, s.receivedIntervalNumber, s.metadata.txPowerDbm, s.attenuationDb])).toEqual([
      [0, DAY0 + 10, DAY0 + 10, 8, 68],
      [2, DAY0 + 11, DAY0 + 11, 3, 68],
      [3, DAY0 + 143, DAY0 + 143, 8, 88],
    ]);
    expect(m?.sightings[0]?.sighting).toBe(sightings[0]);
    expect(result.stats).toMatchObject({ keys: 1, keysWithoutSightings: 0, matchedKeys: 1, matchedSightings: 3, implausibleTxPower: 0 });
  });

  it('official vector: RPIs and AEMs of gaen.json decrypt to metadata 40 08 00 00 (v1.0, +8 dBm), under both suites', () => {
    const sightings: Sighting[] = vectors.ADVERTISED_DATA.filter((p) => p.i % 20 === 0).map((p) => ({
      rpi: unhex(p.rpi),
      aem: unhex(p.aem),
      receivedAtMs: atInterval(p.en_interval_number, 42_000),
      rssiDbm: -50,
    }));
    for (const suite of [nobleSuite, nodeSuite]) {
      const result = match([keyOf(tekA)], sightings, {}, suite);
      const ms = result.matches[0]?.sightings ?? [];
      expect(ms).toHaveLength(sightings.length);
      for (const s of ms) {
        expect(s.metadata).toEqual({ versionMajor: 1, versionMinor: 0, txPowerConfidence: 0, txPowerDbm: 8 });
        expect(Buffer.from(encodeEnMetadata(s.metadata)).toString('hex')).toBe(vectors.BLE_METADATA);
        expect(s.attenuationDb).toBe(58);
      }
    }
  });

  it('drift: RPI j matches receive intervals j − 12 … j + 12 exactly, to the millisecond', () => {
    const j = DAY0 + 72;
    const cases: [number, boolean][] = [
      [atInterval(j - DRIFT), true], // first ms of j − 12
      [atInterval(j - DRIFT) - 1, false], // last ms of j − 13
      [atInterval(j + DRIFT, EN_INTERVAL_MS - 1), true], // last ms of j + 12
      [atInterval(j + DRIFT + 1), false], // first ms of j + 13
      [atInterval(j), true],
    ];
    for (const [receivedAtMs, matches] of cases) {
      const result = match([keyOf(tekA)], [heard(tekA, j, receivedAtMs)]);
      expect(result.stats.matchedSightings, `received at ${receivedAtMs}`).toBe(matches ? 1 : 0);
    }
  });

  it('drift at the key edges: the window is the key validity ± 12 intervals, end not clipped (EN-internals)', () => {
    const start = DAY0;
    const last = DAY0 + 143;
    const at = (j: number, received: number): number => match([keyOf(tekA)], [heard(tekA, j, atInterval(received))]).stats.matchedSightings;
    expect(at(start, start - DRIFT)).toBe(1);
    expect(at(start, start - DRIFT - 1)).toBe(0);
    expect(at(last, last + DRIFT)).toBe(1); // = rolling end + 11, inside the embargo's 12 intervals
    expect(at(last, last + DRIFT + 1)).toBe(0);
  });

  it('an RPI replayed hours later inside the key validity does not match (the tolerance is per RPI)', () => {
    expect(match([keyOf(tekA)], [heard(tekA, DAY0 + 10, atInterval(DAY0 + 10 + DRIFT + 1))]).stats.matchedSightings).toBe(0);
    expect(match([keyOf(tekA)], [heard(tekA, DAY0 + 10, atInterval(DAY0 + 100))]).stats.matchedSightings).toBe(0);
  });

  it('clockDriftIntervals is configurable (0 = same interval only)', () => {
    const s = [heard(tekA, DAY0 + 10, atInterval(DAY0 + 11))];
    expect(match([keyOf(tekA)], s, { clockDriftIntervals: 0 }).stats.matchedSightings).toBe(0);
    expect(match([keyOf(tekA)], s, { clockDriftIntervals: 1 }).stats.matchedSightings).toBe(1);
  });

  it('a partial key (rolling period < 144) matches only its own intervals', () => {
    const start = DAY0 + 30;
    const key = keyOf(tekA, start, 5);
    const sightings = [heard(tekA, start + 4, atInterval(start + 4)), heard(tekA, start + 5, atInterval(start + 5)), heard(tekA, start - 1, atInterval(start - 1))];
    const result = match([key], sightings);
    expect(result.matches[0]?.sightings.map((s) => s.rpiIntervalNumber)).toEqual([start + 4]);
  });

  it('implausible TX power (outside −50…20 dBm) is counted and dropped; the bounds are options', () => {
    const sightings = [heard(tekA, DAY0, atInterval(DAY0), -70, 21), heard(tekA, DAY0 + 1, atInterval(DAY0 + 1), -70, -51), heard(tekA, DAY0 + 2, atInterval(DAY0 + 2), -70, 20)];
    const result = match([keyOf(tekA)], sightings);
    expect(result.matches[0]?.sightings.map((s) => s.index)).toEqual([2]);
    expect(result.matches[0]?.implausibleTxPower).toBe(2);
    expect(result.stats.implausibleTxPower).toBe(2);
    const wide = match([keyOf(tekA)], sightings, { minTxPowerDbm: -128, maxTxPowerDbm: 127 });
    expect(wide.stats.matchedSightings).toBe(3);
    const none = match([keyOf(tekA)], [sightings[0] as Sighting]);
    expect(none.matches).toEqual([]);
    expect(none.stats.implausibleTxPower).toBe(1);
  });

  it('repeated sightings of one RPI all match, by receive time; repeated keys match again', () => {
    const rpiSightings = [heard(tekA, DAY0 + 5, atInterval(DAY0 + 5, 200_000)), heard(tekA, DAY0 + 5, atInterval(DAY0 + 5, 100_000)), heard(tekA, DAY0 + 5, atInterval(DAY0 + 6))];
    const result = match([keyOf(tekA), keyOf(tekB), keyOf(tekA)], rpiSightings);
    expect(result.matches.map((m) => m.keyIndex)).toEqual([0, 2]);
    expect(result.matches[0]?.sightings.map((s) => s.index)).toEqual([1, 0, 2]);
  });

  it('keys with no sighting in their window ± drift cost no crypto; the RPI range is trimmed to the sightings', () => {
    let hkdfCalls = 0;
    let ecbBlocks = 0;
    const counting: CryptoSuite = {
      ...nodeSuite,
      hkdfSha256Batch: (ikms, ikmLength, ...rest) => {
        hkdfCalls += ikms.length / ikmLength;
        return nodeSuite.hkdfSha256Batch(ikms, ikmLength, ...rest);
      },
      aesEcbEncryptBatch: (keys, keyLength, data, ...rest) => {
        ecbBlocks += data.length / 16;
        return nodeSuite.aesEcbEncryptBatch(keys, keyLength, data, ...rest);
      },
    };
    const sightings = [heard(tekB, DAY0 + 3, atInterval(DAY0 + 3))];
    const far = [keyOf(tekA, DAY0 + 3 * 144), keyOf(tekA, DAY0 - 2 * 144)];
    const r1 = matchDiagnosisKeys(counting, far, buildSightingIndex(sightings));
    expect(r1.stats).toMatchObject({ keysWithoutSightings: 2, rpisDerived: 0 });
    expect(hkdfCalls + ecbBlocks).toBe(0);
    // The day before: only RPIs j ≥ DAY0 + 3 − 12 can see a sighting at DAY0 + 3.
    const r2 = matchDiagnosisKeys(counting, [keyOf(tekA, DAY0 - 144)], buildSightingIndex(sightings));
    expect(r2.stats.rpisDerived).toBe(DRIFT - 3);
    expect(ecbBlocks).toBe(DRIFT - 3);
    expect(hkdfCalls).toBe(1);
  });

  it('the index: lookup finds every sighting of an RPI by time; distinct RPIs counted; the hash seed changes nothing', () => {
    const s0 = heard(tekA, DAY0, atInterval(DAY0, 9));
    const s1 = { ...s0, receivedAtMs: atInterval(DAY0, 1) };
    const other = heard(tekA, DAY0 + 1, atInterval(DAY0 + 1));
    const index = buildSightingIndex([s0, other, s1], { hashSeed: 0xdead_beef });
    expect(index.size).toBe(3);
    expect(index.distinctRpis).toBe(2);
    expect(index.lookup(s0.rpi)).toEqual([2, 0]);
    expect(index.lookup(new Uint8Array(16))).toEqual([]);
    const a = matchDiagnosisKeys(crypto, [keyOf(tekA)], buildSightingIndex([s0, other, s1], { hashSeed: 1 }));
    const b = matchDiagnosisKeys(crypto, [keyOf(tekA)], buildSightingIndex([s0, other, s1], { hashSeed: 0xffff_ffff }));
    expect(facts(a)).toEqual(facts(b));
  });

  it('RPIs crowding one hash bucket (chosen bytes, many colliding prefixes) still match correctly', () => {
    const sightings: Sighting[] = [];
    for (let i = 0; i < 2000; i++) {
      const rpi = new Uint8Array(16);
      rpi[15] = i & 0xff;
      rpi[14] = i >> 8;
      sightings.push({ rpi, aem: new Uint8Array(4), receivedAtMs: atInterval(DAY0 + 1), rssiDbm: -60 });
    }
    sightings.push(heard(tekA, DAY0 + 1, atInterval(DAY0 + 1)));
    const result = match([keyOf(tekA)], sightings);
    expect(result.matches[0]?.sightings.map((s) => s.index)).toEqual([2000]);
  });

  it('noble and node give the same matches', () => {
    const sightings = [heard(tekA, DAY0 + 7, atInterval(DAY0 + 9)), heard(tekB, DAY0 + 8, atInterval(DAY0 + 8))];
    const keys = [keyOf(tekA), keyOf(tekB, DAY0, 144, 5)];
    expect(facts(match(keys, sightings, {}, nobleSuite))).toEqual(facts(match(keys, sightings, {}, nodeSuite)));
  });
});

describe('caller misuse: MisuseError naming the field', () => {
  const good = heard(tekA, DAY0, atInterval(DAY0));
  const cases: [string, () => unknown, string][] = [
    ['short rpi', () => buildSightingIndex([good, { ...good, rpi: new Uint8Array(15) }]), 'sightings[1].rpi'],
    ['long aem', () => buildSightingIndex([{ ...good, aem: new Uint8Array(5) }]), 'sightings[0].aem'],
    ['negative time', () => buildSightingIndex([{ ...good, receivedAtMs: -1 }]), 'sightings[0].receivedAtMs'],
    ['NaN time', () => buildSightingIndex([{ ...good, receivedAtMs: Number.NaN }]), 'sightings[0].receivedAtMs'],
    ['fractional rssi', () => buildSightingIndex([{ ...good, rssiDbm: -60.5 }]), 'sightings[0].rssiDbm'],
    ['rssi above 20', () => buildSightingIndex([{ ...good, rssiDbm: 21 }]), 'sightings[0].rssiDbm'],
    ['hash seed', () => buildSightingIndex([], { hashSeed: -1 }), 'options.hashSeed'],
    ['short tek', () => match([keyOf(new Uint8Array(15))], [good]), 'keys[0].keyData'],
    ['negative start', () => match([keyOf(tekA), keyOf(tekA, -1)], [good]), 'keys[1].rollingStartIntervalNumber'],
    ['period 0', () => match([keyOf(tekA, DAY0, 0)], [good]), 'keys[0].rollingPeriod'],
    ['period 145', () => match([keyOf(tekA, DAY0, 145)], [good]), 'keys[0].rollingPeriod'],
    ['past uint32', () => match([keyOf(tekA, EN_INTERVAL_NUMBER_MAX, 2)], [good]), 'keys[0].rollingPeriod'],
    ['transmission risk 9', () => match([keyOf(tekA, DAY0, 144, 9)], [good]), 'keys[0].transmissionRiskLevel'],
    ['drift', () => match([], [good], { clockDriftIntervals: 1.5 }), 'options.clockDriftIntervals'],
    ['tx bounds', () => match([], [good], { minTxPowerDbm: 0, maxTxPowerDbm: -1 }), 'options.maxTxPowerDbm'],
    ['not an index', () => matchDiagnosisKeys(crypto, [], {} as never), 'index'],
  ];
  it.each(cases)('%s', (_name, fn, field) => {
    expect(misuseField(fn)).toBe(field);
  });
});

// ------------------------------------------------------------ properties

interface Scenario {
  readonly keys: DiagnosisKey[];
  readonly sightings: Sighting[];
  readonly options: MatchOptions;
  readonly seed: number;
}

/** Keys near DAY0, sightings of their RPIs at ±16 intervals of drift, random RPIs, duplicates, random TX power. */
function scenario(seed: number): Scenario {
  const rnd = prng(seed);
  const int = (lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));
  const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => int(0, 255));
  const keys: DiagnosisKey[] = [];
  const teks: Uint8Array[] = [];
  // Now and then more keys than one RpiBatch holds (32), most without sightings: batch edges and gaps.
  const nKeys = rnd() < 0.1 ? int(33, 100) : int(1, 4);
  for (let i = 0; i < nKeys; i++) {
    const tek = rnd() < 0.2 && teks.length > 0 ? (teks[0] as Uint8Array) : bytes(16);
    teks.push(tek);
    keys.push(keyOf(tek, DAY0 + int(-200, 200), int(1, 144), int(0, 8)));
  }
  const sightings: Sighting[] = [];
  const nSightings = int(0, 30);
  for (let i = 0; i < nSightings; i++) {
    const kind = rnd();
    if (kind < 0.6) {
      const key = keys[int(0, keys.length - 1)] as DiagnosisKey;
      const j = key.rollingStartIntervalNumber + int(-2, key.rollingPeriod + 1);
      const received = j + int(-16, 16);
      sightings.push(heard(key.keyData, j, atInterval(received, int(0, EN_INTERVAL_MS - 1)), int(-127, 20), int(-60, 30)));
    } else if (kind < 0.8 && sightings.length > 0) {
      const s = sightings[int(0, sightings.length - 1)] as Sighting;
      sightings.push({ ...s, receivedAtMs: s.receivedAtMs + int(-3, 3) * EN_INTERVAL_MS + int(0, 1000) });
    } else {
      sightings.push({ rpi: bytes(16), aem: bytes(4), receivedAtMs: atInterval(DAY0 + int(-250, 400), int(0, 599_999)), rssiDbm: int(-127, 20) });
    }
  }
  const options: MatchOptions = rnd() < 0.5 ? {} : { clockDriftIntervals: int(0, 20) };
  return { keys, sightings, options, seed: int(0, 0xffff_ffff) };
}

describe('properties', () => {
  it('indexed matching equals the naive O(keys × sightings × 144) reference on random small inputs', () => {
    let matchedTotal = 0;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 }), (seed) => {
        const s = scenario(seed);
        const result = matchDiagnosisKeys(crypto, s.keys, buildSightingIndex(s.sightings, { hashSeed: s.seed }), s.options);
        matchedTotal += result.stats.matchedSightings;
        expect(facts(result)).toEqual(naiveFacts(crypto, s.keys, s.sightings, s.options));
      }),
      { numRuns: 150 },
    );
    expect(matchedTotal).toBeGreaterThan(150); // the scenarios do exercise matches
  });

  it('fuzz: random keys and sightings never throw except MisuseError naming keys[i].* / sightings[i].*', () => {
    const bytesOfLength = fc.oneof(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.uint8Array({ minLength: 0, maxLength: 20 }));
    const aemBytes = fc.oneof(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.uint8Array({ minLength: 0, maxLength: 6 }));
    const number = fc.oneof(fc.integer({ min: -5, max: 2 ** 33 }), fc.double(), fc.integer({ min: DAY0 - 300, max: DAY0 + 300 }));
    const key = fc.record({
      keyData: bytesOfLength,
      rollingStartIntervalNumber: fc.oneof(fc.integer({ min: DAY0 - 150, max: DAY0 + 150 }), number),
      rollingPeriod: fc.oneof(fc.integer({ min: 1, max: 144 }), number),
      transmissionRiskLevel: fc.oneof(fc.integer({ min: 0, max: 8 }), number),
    });
    const sighting = fc.record({
      rpi: bytesOfLength,
      aem: aemBytes,
      receivedAtMs: fc.oneof(fc.integer({ min: atInterval(DAY0 - 150), max: atInterval(DAY0 + 300) }), number),
      rssiDbm: fc.oneof(fc.integer({ min: -127, max: 20 }), number),
    });
    fc.assert(
      fc.property(fc.array(key, { maxLength: 4 }), fc.array(sighting, { maxLength: 12 }), (keys, sightings) => {
        try {
          const result = matchDiagnosisKeys(crypto, keys, buildSightingIndex(sightings));
          expect(result.stats.keys).toBe(keys.length);
        } catch (err) {
          expect(err).toBeInstanceOf(MisuseError);
          expect((err as MisuseError).field).toMatch(/^(keys|sightings)\[\d+\]\.(keyData|rollingStartIntervalNumber|rollingPeriod|transmissionRiskLevel|rpi|aem|receivedAtMs|rssiDbm)$/);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('fuzz: well-formed keys and sightings of random bytes never throw', () => {
    const rnd = prng(7);
    for (let run = 0; run < 40; run++) {
      const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => Math.floor(rnd() * 256));
      const keys = Array.from({ length: 3 }, () => keyOf(bytes(16), DAY0 + Math.floor(rnd() * 300) - 150, 1 + Math.floor(rnd() * 144), Math.floor(rnd() * 9)));
      const sightings = Array.from({ length: 20 }, () => ({ rpi: bytes(16), aem: bytes(4), receivedAtMs: atInterval(DAY0 + Math.floor(rnd() * 300) - 150), rssiDbm: -127 + Math.floor(rnd() * 148) }));
      expect(matchDiagnosisKeys(crypto, keys, buildSightingIndex(sightings)).stats.keys).toBe(3);
    }
  });
});
