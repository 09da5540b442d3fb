/**
 * Key-server distribution (issue 4): record ids, the file and index codecs
 * (fast-check round trips, typed rejections, misuse), signed content-addressed
 * files under both crypto suites (every single-byte tamper is caught), the
 * pure client against a model server (fulls and deltas with random additions
 * and withdrawals, missed deltas, clients offline across full dumps, replays,
 * forks), and ≥ 10,000 hostile files and indexes → typed rejections only, in
 * bounded memory.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nobleSuite } from '../../protocol/crypto/noble.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import type { Verdict } from '../../protocol/errors.ts';
import { compactToDer, derToCompact } from '../../protocol/keyserver/gaen-export.ts';
import { MAX_INT32 } from '../../protocol/keyserver/gaen-export-schema.ts';
import { toHex } from '../../protocol/keyserver/distribution-records.ts';
import { lowSDer } from '../../protocol/keyserver/distribution-signing.ts';
import {
  applyFile,
  canonicalRecordBytes,
  decodeDistributionFile,
  decodeDistributionIndex,
  distributionIndexCodec,
  distributionSigningMessage,
  encodeDistributionFile,
  encodeDistributionIndex,
  INDEX_REJECTION_REASONS,
  initialDistributionClientState,
  initialPublisherState,
  MAX_INDEX_DELTAS,
  OPEN_REJECTION_REASONS,
  openDistributionFile,
  planFetch,
  publishDelta,
  publishFull,
  recordId,
  signDistributionFile,
  type DiagnosisRecord,
  type DistributionClientState,
  type DistributionFile,
  type DistributionIndex,
  type DistributionSigner,
  type FileName,
  type GaenTekRecord,
  type IdentifiedRecord,
  type Publication,
  type PublisherState,
  type RecordId,
} from '../../protocol/keyserver/distribution.ts';
import { packWire, unpackWire, type WireMap, type WireValue } from '../../protocol/wire/msgpack.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { misuseField } from '../support/misuse.ts';
import { prng } from '../support/test-rng.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const concat = (...parts: Uint8Array[]): Uint8Array => Uint8Array.from(Buffer.concat(parts));
const reasonOf = (v: Verdict<unknown>): string => (v.ok ? 'accepted' : v.reason);
function valueOf<T>(v: Verdict<T>): T {
  if (!v.ok) throw new Error(`${v.codec}/${v.reason}: ${v.detail} (${v.field ?? '-'})`);
  return v.value;
}

const SUITES: readonly (readonly [string, CryptoSuite])[] = [
  ['noble', nobleSuite],
  ['node', nodeSuite],
];
const SIGNING_KEY = nodeSuite.sha256(utf8('tracecity distribution test key'));
const OTHER_KEY = nodeSuite.sha256(utf8('another distribution key'));
const KEY_ID = 'ks-2026';
const KEYS: ReadonlyMap<string, Uint8Array> = new Map([[KEY_ID, nodeSuite.p256PublicKey(SIGNING_KEY)]]);
const SIGNER: DistributionSigner = { crypto: nodeSuite, signingKey: SIGNING_KEY, keyId: KEY_ID };
const P256_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const OPEN_REASONS = new Set<string>(OPEN_REJECTION_REASONS);
const INDEX_REASONS = new Set<string>(INDEX_REJECTION_REASONS);

/** A distinct GAEN TEK per n. */
function tek(n: number): GaenTekRecord {
  const key = new Uint8Array(16).fill(0xa5);
  new DataView(key.buffer).setUint32(0, n);
  return { protocol: 'gaen-tek', key, rollingStartIntervalNumber: 2_700_000 + n, rollingPeriod: 144, transmissionRisk: n % 9 };
}
const SEED: DiagnosisRecord = { protocol: 'dp3t-seed', seed: new Uint8Array(32).fill(7), day: 20_000 };
const REPORT: DiagnosisRecord = { protocol: 'tcn-report', report: new Uint8Array(134).fill(3) };
const idOf = (r: DiagnosisRecord): RecordId => recordId(nodeSuite, r);
const NAME_A = 'aa'.repeat(32);
const NAME_B = 'bb'.repeat(32);

function delta(seq: number, additions: readonly DiagnosisRecord[], deletions: readonly RecordId[] = [], basedOn: FileName | null = seq === 1 ? null : NAME_A): DistributionFile {
  return { v: 1, kind: 'delta', seq, basedOn, createdAt: 1_800_000_000_000, periodStart: 1_799_999_100_000, periodEnd: 1_800_000_000_000, additions, deletions };
}

// ------------------------------------------------------------ arbitraries

const digestArb = fc.uint8Array({ minLength: 32, maxLength: 32 }).map(hex);
const recordArb: fc.Arbitrary<DiagnosisRecord> = fc.oneof(
  fc.record({
    protocol: fc.constant('gaen-tek' as const),
    key: fc.uint8Array({ minLength: 16, maxLength: 16 }),
    rollingStartIntervalNumber: fc.oneof(fc.integer({ min: 2_600_000, max: 2_800_000 }), fc.integer({ min: 0, max: MAX_INT32 })),
    rollingPeriod: fc.integer({ min: 1, max: 144 }),
    transmissionRisk: fc.integer({ min: 0, max: 8 }),
  }),
  fc.record({ protocol: fc.constant('dp3t-seed' as const), seed: fc.uint8Array({ minLength: 32, maxLength: 32 }), day: fc.integer({ min: 0, max: 0xffff }) }),
  fc.record({ protocol: fc.constant('tcn-report' as const), report: fc.uint8Array({ minLength: 134, maxLength: 389 }) }),
);
const timeArb = fc.integer({ min: 0, max: 253_402_300_799_999 });
const fileArb: fc.Arbitrary<DistributionFile> = fc
  .record({
    kind: fc.constantFrom('full' as const, 'delta' as const),
    seq: fc.oneof(fc.constant(1), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })),
    basedOn: digestArb,
    createdAt: timeArb,
    period: fc.tuple(timeArb, timeArb).map(([a, b]) => (a <= b ? [a, b] : [b, a])),
    additions: fc.uniqueArray(recordArb, { maxLength: 12, selector: idOf }),
    deletions: fc.uniqueArray(digestArb, { maxLength: 6 }),
  })
  .map((f) => ({
    v: 1 as const,
    kind: f.kind,
    seq: f.seq,
    basedOn: f.kind === 'delta' && f.seq === 1 ? null : f.basedOn,
    createdAt: f.createdAt,
    periodStart: f.period[0] ?? 0,
    periodEnd: f.period[1] ?? 0,
    additions: f.additions,
    deletions: f.kind === 'full' ? [] : f.deletions,
  }));
const indexArb: fc.Arbitrary<DistributionIndex> = fc
  .record({
    full: fc.option(digestArb),
    fullSeq: fc.integer({ min: 1, max: 2 ** 40 }),
    deltas: fc.uniqueArray(digestArb, { maxLength: 40 }),
    publishedAt: timeArb,
  })
  .filter((x) => x.full === null || !x.deltas.includes(x.full))
  .map((x) => ({ v: 1 as const, latestFull: x.full, deltas: x.deltas, seq: (x.full === null ? 0 : x.fullSeq) + x.deltas.length, publishedAt: x.publishedAt }));

/** What decoding an encoded file gives: additions sorted by id (with ids), deletions sorted. */
function normalized(file: DistributionFile): DistributionFile<IdentifiedRecord> {
  const additions = file.additions.map((r) => ({ ...r, id: idOf(r) })).sort((a, b) => (a.id < b.id ? -1 : 1));
  return { ...file, additions, deletions: [...file.deletions].sort() };
}

// ------------------------------------------------------------ records

describe('record ids', () => {
  it('are SHA-256 over "tracecity/keyserver/record/v1" ‖ 0x00 ‖ the documented canonical bytes', () => {
    const t = tek(1);
    expect(hex(canonicalRecordBytes(t))).toBe(`01${hex(t.key)}${(2_700_001).toString(16).padStart(8, '0')}9001`);
    expect(hex(canonicalRecordBytes(SEED))).toBe(`02${'07'.repeat(32)}4e20`);
    expect(hex(canonicalRecordBytes(REPORT))).toBe(`030086${'03'.repeat(134)}`);
    for (const r of [t, SEED, REPORT]) {
      expect(idOf(r)).toBe(hex(nodeSuite.sha256(concat(utf8('tracecity/keyserver/record/v1\u0000'), canonicalRecordBytes(r)))));
      expect(recordId(nobleSuite, r)).toBe(idOf(r));
    }
  });

  it('are flat lowercase hex, byte for byte what Buffer gives (toHex, fast-check)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        expect(toHex(bytes)).toBe(hex(bytes));
      }),
    );
  });

  it('change with every field of a record (a revision is a deletion plus an addition)', () => {
    const t = tek(5);
    const variants: DiagnosisRecord[] = [
      { ...t, key: tek(6).key },
      { ...t, rollingStartIntervalNumber: t.rollingStartIntervalNumber + 1 },
      { ...t, rollingPeriod: 143 },
      { ...t, transmissionRisk: 0 },
      { protocol: 'dp3t-seed', seed: new Uint8Array(32).fill(7), day: 20_001 },
    ];
    const ids = new Set([idOf(t), idOf(SEED), ...variants.map(idOf)]);
    expect(ids.size).toBe(variants.length + 2);
  });
});

// ------------------------------------------------------------ file codec

describe('distribution file codec', () => {
  it('round-trips every valid file (fast-check): additions come back sorted by id with their ids, deletions sorted', () => {
    fc.assert(
      fc.property(fileArb, (file) => {
        const decoded = valueOf(decodeDistributionFile(nodeSuite, encodeDistributionFile(nodeSuite, file)));
        expect(decoded).toEqual(normalized(file));
      }),
      { numRuns: 150 },
    );
  });

  it('encodes one content to one byte string, whatever the order of additions and deletions', () => {
    fc.assert(
      fc.property(fileArb, fc.integer(), (file, seed) => {
        const shuffle = <T>(xs: readonly T[]): T[] => {
          const rand = prng(seed);
          return xs.map((x) => [rand(), x] as const).sort((a, b) => a[0] - b[0]).map(([, x]) => x);
        };
        const reordered = { ...file, additions: shuffle(file.additions), deletions: shuffle(file.deletions) };
        expect(hex(encodeDistributionFile(nodeSuite, reordered))).toBe(hex(encodeDistributionFile(nodeSuite, file)));
      }),
      { numRuns: 60 },
    );
  });

  const base = delta(2, [tek(1), SEED, REPORT], [NAME_B]);
  const baseWire = (): Record<string, WireValue> => ({ ...(valueOf(unpackWire(encodeDistributionFile(nodeSuite, base), 't')) as WireMap) });
  const withField = (name: string, value: WireValue | undefined): Uint8Array => {
    const w = baseWire();
    if (value === undefined) delete w[name];
    else w[name] = value;
    return packWire(w);
  };
  const sortedRecords = (): Uint8Array[] => valueOf(decodeDistributionFile(nodeSuite, encodeDistributionFile(nodeSuite, base))).additions.map(canonicalRecordBytes);
  const withRecords = (...records: Uint8Array[]): Uint8Array => withField('additions', concat(...records));
  /** tek(1)'s canonical bytes with one byte set: 17–20 rolling start, 21 rolling period, 22 transmission risk. */
  const tekWith = (at: number, value: number): Uint8Array => {
    const c = canonicalRecordBytes(tek(1));
    c[at] = value;
    return c;
  };
  const ids = [NAME_A, NAME_B].map((n) => Buffer.from(n, 'hex'));

  it.each([
    ['a later version', () => withField('v', 2), 'unsupported-version', 'v'],
    ['no version', () => withField('v', undefined), 'malformed', 'v'],
    ['an unknown field', () => withField('extra', 1), 'malformed', 'extra'],
    ['a missing field', () => withField('periodEnd', undefined), 'malformed', 'periodEnd'],
    ['seq 0', () => withField('seq', 0), 'malformed', 'seq'],
    ['an unknown kind', () => withField('kind', 'partial'), 'malformed', 'kind'],
    ['a 31-byte basedOn', () => withField('basedOn', new Uint8Array(31)), 'malformed', 'basedOn'],
    ['a fractional time', () => withField('createdAt', 1.5), 'malformed', 'createdAt'],
    ['an unknown record tag', () => withRecords(Uint8Array.from([0x04, ...new Uint8Array(22)])), 'malformed', 'additions[0]'],
    ['a GAEN record cut short', () => withRecords(canonicalRecordBytes(tek(1)).subarray(0, 22)), 'malformed', 'additions[0]'],
    ['a TCN record without its length', () => withRecords(Uint8Array.from([0x03, 0x00])), 'malformed', 'additions[0]'],
    ['a TCN record longer than what is left', () => withRecords(canonicalRecordBytes(REPORT).subarray(0, 100)), 'malformed', 'additions[0]'],
    ['rolling period 0', () => withRecords(tekWith(21, 0)), 'malformed', 'additions[0]'],
    ['rolling period 145', () => withRecords(tekWith(21, 145)), 'malformed', 'additions[0]'],
    ['transmission risk 9', () => withRecords(tekWith(22, 9)), 'malformed', 'additions[0]'],
    ['a rolling start above 2^31 − 1', () => withRecords(tekWith(17, 0x80)), 'malformed', 'additions[0]'],
    ['a 133-byte TCN report', () => withRecords(Uint8Array.from([0x03, 0, 133, ...new Uint8Array(133)])), 'malformed', 'additions[0]'],
    ['a 390-byte TCN report', () => withRecords(Uint8Array.from([0x03, 1, 390 - 256, ...new Uint8Array(390)])), 'malformed', 'additions[0]'],
    ['a bad second record', () => withRecords(canonicalRecordBytes(tek(1)), Uint8Array.from([0x09])), 'malformed', 'additions[1]'],
    ['additions as a list of maps', () => withField('additions', [{ t: 'gaen-tek' }]), 'malformed', 'additions'],
    ['additions out of id order', () => withRecords(...sortedRecords().reverse()), 'bad-order', 'additions[1]'],
    ['a duplicate addition', () => withRecords(sortedRecords()[0]!, sortedRecords()[0]!), 'bad-order', 'additions[1]'],
    ['deletions of 33 bytes', () => withField('deletions', new Uint8Array(33)), 'malformed', 'deletions'],
    ['deletions out of order', () => withField('deletions', concat(ids[1]!, ids[0]!)), 'bad-order', 'deletions'],
    ['a duplicate deletion', () => withField('deletions', concat(ids[0]!, ids[0]!)), 'bad-order', 'deletions'],
    ['a full dump with deletions', () => withField('kind', 'full'), 'inconsistent', 'deletions'],
    ['a delta at seq 1 with a basedOn', () => withField('seq', 1), 'inconsistent', 'basedOn'],
    ['a delta after seq 1 without basedOn', () => withField('basedOn', undefined), 'inconsistent', 'basedOn'],
    ['an id both added and deleted', () => withField('deletions', Buffer.from(idOf(tek(1)), 'hex')), 'inconsistent', 'deletions'],
    ['a period ending before it starts', () => withField('periodStart', 1_800_000_000_001), 'inconsistent', 'periodEnd'],
    ['a list instead of a map', () => packWire([1, 2]), 'malformed', undefined],
    ['trailing bytes', () => concat(encodeDistributionFile(nodeSuite, base), new Uint8Array(1)), 'malformed', undefined],
    ['a msgpack extension (timestamp)', () => Uint8Array.from([0xd6, 0xff, 0, 0, 0, 1]), 'malformed', undefined],
  ] as const)('rejects %s: %s', (_what, make, reason, field) => {
    const v = decodeDistributionFile(nodeSuite, make());
    expect(v.ok).toBe(false);
    expect(!v.ok && { codec: v.codec, reason: v.reason, field: v.field }).toEqual({ codec: 'keyserver-distribution', reason, field });
  });

  it('bounds bytes, additions and deletions by the limits (too-large, too-many)', () => {
    const bytes = encodeDistributionFile(nodeSuite, base);
    expect(reasonOf(decodeDistributionFile(nodeSuite, bytes, { maxFileBytes: bytes.length - 1 }))).toBe('too-large');
    expect(reasonOf(decodeDistributionFile(nodeSuite, bytes, { maxAdditions: 2 }))).toBe('too-many');
    expect(reasonOf(decodeDistributionFile(nodeSuite, withField('deletions', concat(ids[0]!, ids[1]!)), { maxDeletions: 1 }))).toBe('too-many');
    expect(decodeDistributionFile(nodeSuite, bytes, { maxFileBytes: bytes.length, maxAdditions: 3, maxDeletions: 1 }).ok).toBe(true);
  });

  it('throws MisuseError naming the field for an invalid file (our bug, not data)', () => {
    const enc = (f: DistributionFile): unknown => encodeDistributionFile(nodeSuite, f);
    expect(misuseField(() => enc({ ...base, seq: 0 }))).toBe('file.seq');
    expect(misuseField(() => enc({ ...base, basedOn: 'AA'.repeat(32) }))).toBe('file.basedOn');
    expect(misuseField(() => enc({ ...base, additions: [tek(1), { ...tek(2), key: new Uint8Array(15) }] }))).toBe('file.additions[1].key');
    expect(misuseField(() => enc({ ...base, additions: [tek(1), SEED, tek(1)] }))).toMatch(/^file\.additions\[(0|2)\]$/);
    expect(misuseField(() => enc({ ...base, deletions: [NAME_A, NAME_A] }))).toBe('file.deletions');
    expect(misuseField(() => enc({ ...base, deletions: [idOf(SEED)] }))).toBe('file.deletions');
    expect(misuseField(() => enc({ ...base, kind: 'full' }))).toBe('file.deletions');
    expect(misuseField(() => enc({ ...base, basedOn: null }))).toBe('file.basedOn');
    expect(misuseField(() => enc({ ...base, periodEnd: 0 }))).toBe('file.periodEnd');
    expect(misuseField(() => encodeDistributionFile(nodeSuite, base, { maxFileBytes: 100 }))).toBe('file');
  });
});

// ------------------------------------------------------------ signed files

describe('signed, content-addressed files', () => {
  const file = delta(2, [tek(1), SEED], [NAME_B]);

  it.each(SUITES.flatMap(([s, signer]) => SUITES.map(([o, opener]) => [s, o, signer, opener] as const)))(
    'sign under %s → open under %s: the name is the SHA-256 of the bytes and the file comes back',
    (_s, _o, signer, opener) => {
      const signed = signDistributionFile(signer, SIGNING_KEY, KEY_ID, file);
      expect(signed.name).toBe(hex(nodeSuite.sha256(signed.bytes)));
      expect(valueOf(openDistributionFile(opener, KEYS, signed.name, signed.bytes))).toEqual(normalized(file));
    },
  );

  it('signs with low s under both suites, and noble (RFC 6979) gives the same name every time', () => {
    const sigOf = (bytes: Uint8Array): Uint8Array => (valueOf(unpackWire(bytes, 't')) as WireMap)['sig'] as Uint8Array;
    for (let i = 0; i < 20; i++) {
      const sig = sigOf(signDistributionFile(nodeSuite, SIGNING_KEY, KEY_ID, { ...file, createdAt: i }).bytes);
      expect(hex(lowSDer(sig)!)).toBe(hex(sig));
    }
    expect(signDistributionFile(nobleSuite, SIGNING_KEY, KEY_ID, file).name).toBe(signDistributionFile(nobleSuite, SIGNING_KEY, KEY_ID, file).name);
  });

  const signed = signDistributionFile(nodeSuite, SIGNING_KEY, KEY_ID, file);
  const body = encodeDistributionFile(nodeSuite, file);
  const bodyAt = Buffer.from(signed.bytes).indexOf(Buffer.from(body));
  const sig = (valueOf(unpackWire(signed.bytes, 't')) as WireMap)['sig'] as Uint8Array;
  const sigAt = signed.bytes.length - sig.length;

  it('every single-byte tamper fails with name-mismatch under the published name', () => {
    let tampered = 0;
    for (let at = 0; at < signed.bytes.length; at++) {
      for (let value = 0; value < 256; value++) {
        if (value === signed.bytes[at]) continue;
        const t = signed.bytes.slice();
        t[at] = value;
        expect(reasonOf(openDistributionFile(nodeSuite, KEYS, signed.name, t))).toBe('name-mismatch');
        tampered++;
      }
    }
    expect(tampered).toBe(signed.bytes.length * 255);
  });

  it('with the name recomputed, every single-byte tamper still fails: bad-signature in the body, a signature reason in sig, a typed reason elsewhere', () => {
    expect(bodyAt).toBeGreaterThan(0);
    const seen = new Map<string, number>();
    for (let at = 0; at < signed.bytes.length; at++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const t = signed.bytes.slice();
        t[at]! ^= mask;
        const v = openDistributionFile(nodeSuite, KEYS, hex(nodeSuite.sha256(t)), t);
        const reason = reasonOf(v);
        if (at >= bodyAt && at < bodyAt + body.length) expect(reason, `body byte ${at}`).toBe('bad-signature');
        else if (at >= sigAt) expect(['bad-signature', 'signature-encoding'], `sig byte ${at}`).toContain(reason);
        else expect(OPEN_REASONS.has(reason) && reason !== 'name-mismatch', `byte ${at}: ${reason}`).toBe(true);
        seen.set(reason, (seen.get(reason) ?? 0) + 1);
      }
    }
    for (const reason of ['bad-signature', 'signature-encoding', 'malformed', 'unknown-key']) expect(seen.get(reason) ?? 0, reason).toBeGreaterThan(0);
  });

  /** A container with any fields, signed (or not) as given. */
  const container = (fields: Record<string, WireValue>): { name: string; bytes: Uint8Array } => {
    const bytes = packWire({ v: 1, alg: 'ecdsa-p256-sha256', keyId: KEY_ID, body, sig, ...fields });
    return { name: hex(nodeSuite.sha256(bytes)), bytes };
  };
  const signOver = (message: Uint8Array, key = SIGNING_KEY): Uint8Array => lowSDer(nodeSuite.p256Sign(key, message))!;
  /** The same signature with s ↦ n − s: also valid ECDSA, but not the canonical (low-s) form. */
  const highS = (der: Uint8Array): Uint8Array => {
    const compact = derToCompact(der)!;
    let s = P256_ORDER - BigInt(`0x${hex(compact.subarray(32))}`);
    for (let i = 63; i >= 32; i--, s >>= 8n) compact[i] = Number(s & 0xffn);
    return compactToDer(compact);
  };

  it.each([
    ['an unknown key id', () => container({ keyId: 'ks-1999' }), 'unknown-key'],
    ['another public key under the key id', () => container({ sig: signOver(distributionSigningMessage(KEY_ID, body), OTHER_KEY) }), 'bad-signature'],
    ['a signature over the body alone (no domain separation)', () => container({ sig: signOver(body) }), 'bad-signature'],
    ['a signature made for another key id', () => container({ sig: signOver(distributionSigningMessage('ks-other', body)) }), 'bad-signature'],
    ['a high-s signature', () => container({ sig: highS(sig) }), 'signature-encoding'],
    ['a 64-byte r ‖ s signature', () => container({ sig: new Uint8Array(64).fill(1) }), 'signature-encoding'],
    ['another algorithm', () => container({ alg: 'ed25519' }), 'unsupported-algorithm'],
    ['container version 2', () => container({ v: 2 }), 'unsupported-version'],
    ['an extra container field', () => container({ note: 'x' }), 'malformed'],
    ['fields in another order', () => {
      const bytes = packWire({ keyId: KEY_ID, v: 1, alg: 'ecdsa-p256-sha256', body, sig });
      return { name: hex(nodeSuite.sha256(bytes)), bytes };
    }, 'non-canonical'],
    ['a valid container under a name that is not hex', () => ({ name: signed.name.toUpperCase(), bytes: signed.bytes }), 'name-mismatch'],
    ['more bytes than the cap', () => ({ name: signed.name, bytes: new Uint8Array(65 * 1024 * 1024) }), 'too-large'],
  ] as const)('refuses %s (%s)', (_what, make, reason) => {
    const { name, bytes } = make();
    const v = openDistributionFile(nodeSuite, KEYS, name, bytes);
    expect(v.ok).toBe(false);
    expect(!v.ok && { codec: v.codec, reason: v.reason }).toEqual({ codec: 'keyserver-distribution', reason });
  });

  it('the high-s case above really used a high-s signature that verifies', () => {
    const hs = highS(sig);
    expect(hex(lowSDer(hs)!)).not.toBe(hex(hs));
    expect(nodeSuite.p256Verify(KEYS.get(KEY_ID)!, distributionSigningMessage(KEY_ID, body), hs)).toBe(true);
  });

  it('throws MisuseError for a bad signing key, key id or public-key map', () => {
    expect(misuseField(() => signDistributionFile(nodeSuite, new Uint8Array(31), KEY_ID, file))).toBe('signingKey');
    expect(misuseField(() => signDistributionFile(nodeSuite, new Uint8Array(32), KEY_ID, file))).toBe('signingKey');
    expect(misuseField(() => signDistributionFile(nodeSuite, SIGNING_KEY, 'key/1', file))).toBe('keyId');
    expect(misuseField(() => openDistributionFile(nodeSuite, new Map([[KEY_ID, new Uint8Array(10)]]), signed.name, signed.bytes))).toBe(`publicKeys.${KEY_ID}`);
  });
});

// ------------------------------------------------------------ index codec

describe('distribution index codec', () => {
  it('round-trips every valid index, as bytes and as an envelope body (fast-check)', () => {
    fc.assert(
      fc.property(indexArb, (index) => {
        expect(valueOf(decodeDistributionIndex(encodeDistributionIndex(index)))).toEqual(index);
        expect(valueOf(distributionIndexCodec.decode(distributionIndexCodec.encode(index)))).toEqual(index);
      }),
      { numRuns: 200 },
    );
  });

  const good: DistributionIndex = { v: 1, latestFull: NAME_A, deltas: [NAME_B], seq: 5, publishedAt: 1_800_000_000_000 };
  const wire = (patch: Record<string, WireValue | undefined>): Uint8Array => {
    const w: Record<string, WireValue> = { ...(distributionIndexCodec.encode(good) as WireMap) };
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined) delete w[k];
      else w[k] = v;
    }
    return packWire(w);
  };
  it.each([
    ['version 2', () => wire({ v: 2 }), 'unsupported-version'],
    ['a 33-byte delta list', () => wire({ deltas: new Uint8Array(33) }), 'malformed'],
    ['a null latestFull (absent is how "none" is said)', () => wire({ latestFull: null }), 'malformed'],
    ['a negative seq', () => wire({ seq: -1 }), 'malformed'],
    ['an unknown field', () => wire({ extra: true }), 'malformed'],
    ['no full dump and fewer deltas than seq', () => wire({ latestFull: undefined }), 'inconsistent'],
    ['as many deltas as seq after a full dump', () => wire({ seq: 1 }), 'inconsistent'],
    ['a delta listed twice', () => wire({ deltas: Buffer.from(NAME_B + NAME_B, 'hex'), seq: 6 }), 'inconsistent'],
    ['the full dump listed as a delta', () => wire({ deltas: Buffer.from(NAME_A, 'hex') }), 'inconsistent'],
    ['more than MAX_INDEX_DELTAS deltas', () => wire({ deltas: new Uint8Array((MAX_INDEX_DELTAS + 1) * 32), seq: 10_000 }), 'too-many'],
    ['more bytes than any index', () => new Uint8Array(MAX_INDEX_DELTAS * 32 + 1024), 'too-large'],
  ] as const)('rejects %s (%s)', (_what, make, reason) => {
    const v = decodeDistributionIndex(make());
    expect(!v.ok && { codec: v.codec, reason: v.reason }).toEqual({ codec: 'keyserver-index', reason });
  });

  it('throws MisuseError naming the field for an inconsistent index', () => {
    expect(misuseField(() => encodeDistributionIndex({ ...good, seq: 1 }))).toBe('index.deltas');
    expect(misuseField(() => encodeDistributionIndex({ ...good, latestFull: 'x' }))).toBe('index.latestFull');
    expect(misuseField(() => encodeDistributionIndex({ ...good, deltas: [NAME_A] }))).toBe('index.deltas[0]');
  });
});

// ------------------------------------------------------------ model server and clients

const PERIOD_MS = 15 * 60 * 1000;

/**
 * A small server: uploads come and go (withdrawals, retroactive revocations),
 * every delta carries the net change since the previous one, full dumps
 * checkpoint the chain, the CDN holds every file by name.
 */
class ModelServer {
  publisher: PublisherState = initialPublisherState();
  readonly cdn = new Map<FileName, Uint8Array>();
  index: DistributionIndex = { v: 1, latestFull: null, deltas: [], seq: 0, publishedAt: 0 };
  /** The record set as of the last delta: what every up-to-date client must hold. */
  published = new Map<RecordId, DiagnosisRecord>();
  private readonly uploads: { records: DiagnosisRecord[]; live: boolean }[] = [];
  private clock = 1_800_000_000_000;

  constructor(private readonly signer: DistributionSigner = SIGNER) {}

  upload(records: readonly DiagnosisRecord[]): number {
    return this.uploads.push({ records: [...records], live: true }) - 1;
  }
  /** Upload again a record an earlier upload holds (same content, same id). */
  reupload(pick: number): void {
    const all = this.uploads.flatMap((u) => u.records);
    if (all.length > 0) this.upload([all[pick % all.length]!]);
  }
  withdrawUpload(i: number): void {
    this.uploads[i]!.live = false;
  }
  /** Withdraw one live upload (by its provider, or a retroactively revoked provider's). */
  withdraw(pick: number): void {
    const live = this.uploads.filter((u) => u.live);
    if (live.length > 0) live[pick % live.length]!.live = false;
  }
  private live(): Map<RecordId, DiagnosisRecord> {
    const m = new Map<RecordId, DiagnosisRecord>();
    for (const u of this.uploads) if (u.live) for (const r of u.records) m.set(idOf(r), r);
    return m;
  }
  private take(p: Publication): Publication {
    this.publisher = p.state;
    this.cdn.set(p.file.name, p.file.bytes);
    this.index = p.index;
    return p;
  }
  delta(): Publication {
    const live = this.live();
    const additions = [...live].filter(([id]) => !this.published.has(id)).map(([, r]) => r);
    const deletions = [...this.published.keys()].filter((id) => !live.has(id));
    const start = this.clock;
    this.clock += PERIOD_MS;
    this.published = live;
    return this.take(publishDelta(this.signer, this.publisher, { createdAt: this.clock, periodStart: start, periodEnd: this.clock, additions, deletions }));
  }
  full(): Publication | undefined {
    if (this.publisher.seq === 0) return undefined;
    return this.take(publishFull(this.signer, this.publisher, { createdAt: this.clock, periodStart: 0, periodEnd: this.clock, records: [...this.published.values()] }));
  }
  open(name: FileName): DistributionFile<IdentifiedRecord> {
    return valueOf(openDistributionFile(nodeSuite, KEYS, name, this.cdn.get(name)!));
  }
}

/** Follow the index: fetch what planFetch names, open every file (name + signature), apply in order. */
function sync(state: DistributionClientState, server: ModelServer): DistributionClientState {
  const plan = planFetch(state, server.index);
  let current = plan.mode === 'restart' ? initialDistributionClientState() : state;
  for (const name of plan.names) current = valueOf(applyFile(current, server.open(name), name));
  return current;
}

function expectHolds(state: DistributionClientState, server: ModelServer): void {
  expect(Object.keys(state.records).sort()).toEqual([...server.published.keys()].sort());
  expect(state.count).toBe(server.published.size);
  for (const [id, r] of server.published) expect(state.records[id]).toEqual({ ...r, id });
}

type Op =
  | { readonly op: 'upload'; readonly records: readonly DiagnosisRecord[] }
  | { readonly op: 'reupload' | 'withdraw'; readonly pick: number }
  | { readonly op: 'delta' | 'full'; readonly push: boolean }
  | { readonly op: 'sync' };
const smallRecordArb = recordArb.map((r) => (r.protocol === 'tcn-report' ? { ...r, report: r.report.subarray(0, 134) } : r));
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('upload' as const), records: fc.array(smallRecordArb, { minLength: 1, maxLength: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('reupload' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('withdraw' as const), pick: fc.nat() }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('delta' as const), push: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('full' as const), push: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('sync' as const) }) },
);

describe('distribution client against a model server', () => {
  it('clients end with exactly the server\'s record set: one following every index update, one syncing rarely, one taking pushed files and missing some', () => {
    let gaps = 0;
    let fullFetches = 0;
    let deletions = 0;
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 50 }), (ops) => {
        const server = new ModelServer();
        let follower = initialDistributionClientState();
        let rare = initialDistributionClientState();
        let pushed = initialDistributionClientState();
        const announce = (p: Publication | undefined, push: boolean): void => {
          if (p === undefined) return;
          // A client that follows the chain never needs a full dump.
          expect(planFetch(follower, server.index).mode).not.toBe('full');
          follower = sync(follower, server);
          expectHolds(follower, server);
          if (!push) return; // the announcement of this file is lost for the pushed client
          const v = applyFile(pushed, server.open(p.file.name), p.file.name);
          if (v.ok) pushed = v.value;
          else {
            expect(v.reason).toBe('gap');
            gaps++;
            pushed = sync(pushed, server);
          }
          expectHolds(pushed, server);
        };
        for (const op of ops) {
          switch (op.op) {
            case 'upload':
              server.upload(op.records);
              break;
            case 'reupload':
              server.reupload(op.pick);
              break;
            case 'withdraw':
              server.withdraw(op.pick);
              break;
            case 'delta': {
              const p = server.delta();
              deletions += server.open(p.file.name).deletions.length;
              announce(p, op.push);
              break;
            }
            case 'full':
              announce(server.full(), op.push);
              break;
            case 'sync':
              if (planFetch(rare, server.index).mode === 'full') fullFetches++;
              rare = sync(rare, server);
              expectHolds(rare, server);
              break;
          }
        }
        announce(server.delta(), true);
        for (const client of [follower, rare, pushed]) expectHolds(sync(client, server), server);
      }),
      { numRuns: 80, seed: 20_261_122 },
    );
    // The runs did exercise missed deltas, full-dump catch-up and deletions of older records.
    expect(gaps).toBeGreaterThan(0);
    expect(fullFetches).toBeGreaterThan(0);
    expect(deletions).toBeGreaterThan(0);
  });
});

describe('distribution client', () => {
  it('detects a missed delta (gap naming the missing file) and recovers by fetching it', () => {
    const server = new ModelServer();
    const files = [tek(1), tek(2), SEED, REPORT].map((r) => {
      server.upload([r]);
      return server.delta().file;
    });
    const [d1, d2, d3, d4] = files as [Publication['file'], Publication['file'], Publication['file'], Publication['file']];
    const at1 = valueOf(applyFile(initialDistributionClientState(), server.open(d1.name), d1.name));
    expect(applyFile(at1, server.open(d3.name), d3.name)).toMatchObject({ ok: false, reason: 'gap', needs: { kind: 'deltas', fromSeq: 2, toSeq: 2, lastName: d2.name } });
    expect(applyFile(at1, server.open(d4.name), d4.name)).toMatchObject({ ok: false, reason: 'gap', needs: { kind: 'deltas', fromSeq: 2, toSeq: 3, lastName: d3.name } });
    // The gap names the missing file: fetch it by that name, then go on.
    let state = valueOf(applyFile(at1, server.open(d2.name), d2.name));
    state = valueOf(applyFile(state, server.open(d3.name), d3.name));
    state = valueOf(applyFile(state, server.open(d4.name), d4.name));
    expectHolds(state, server);
    // From the index alone: the missing deltas, in order.
    expect(planFetch(at1, server.index)).toMatchObject({ mode: 'deltas', names: [d2.name, d3.name, d4.name] });
  });

  it('a client behind the latest full dump fetches it and the deltas after it; one following deltas never needs it', () => {
    const server = new ModelServer();
    server.upload([tek(1)]);
    const d1 = server.delta().file;
    server.upload([tek(2)]);
    server.delta();
    const f2 = server.full()!.file;
    server.upload([SEED]);
    const d3 = server.delta().file;
    const at1 = valueOf(applyFile(initialDistributionClientState(), server.open(d1.name), d1.name));
    expect(planFetch(at1, server.index)).toMatchObject({ mode: 'full', names: [f2.name, d3.name] });
    expect(planFetch(initialDistributionClientState(), server.index)).toMatchObject({ mode: 'full', names: [f2.name, d3.name] });
    expectHolds(sync(at1, server), server);
    const fresh = sync(initialDistributionClientState(), server);
    expect(fresh).toMatchObject({ seq: 3, appliedFull: f2.name, lastApplied: d3.name, chainTip: d3.name });
    expectHolds(fresh, server);
  });

  it('retroactive revocation: records from the full dump and from older deltas are gone after the next delta; an identical record another provider uploaded stays', () => {
    const server = new ModelServer();
    const revoked = server.upload([tek(1), tek(2)]);
    server.delta();
    let follower = sync(initialDistributionClientState(), server);
    server.upload([SEED]);
    server.delta();
    follower = sync(follower, server);
    server.full();
    const late = server.upload([REPORT]);
    server.upload([tek(1)]); // the same TEK, authorized by another provider
    server.delta();
    follower = sync(follower, server);
    expect(follower.appliedFull).toBeNull();
    const fromFull = sync(initialDistributionClientState(), server);
    expect(fromFull.appliedFull).toBe(server.index.latestFull);
    server.withdrawUpload(revoked);
    server.withdrawUpload(late);
    const d4 = server.open(server.delta().file.name);
    expect(d4.deletions).toEqual([idOf(tek(2)), idOf(REPORT)].sort());
    for (const phone of [follower, fromFull]) {
      const after = sync(phone, server);
      expectHolds(after, server);
      expect(Object.keys(after.records).sort()).toEqual([idOf(tek(1)), idOf(SEED)].sort());
    }
  });

  it('replayed and out-of-order files are refused (stale) or no-ops that return the same state', () => {
    const server = new ModelServer();
    const names: FileName[] = [];
    for (const r of [tek(1), tek(2), SEED]) {
      server.upload([r]);
      names.push(server.delta().file.name);
    }
    const f3 = server.full()!.file.name;
    server.upload([REPORT]);
    const d4 = server.delta().file.name;
    const [d1, d2, d3] = names as [FileName, FileName, FileName];
    const apply = (s: DistributionClientState, name: FileName): ReturnType<typeof applyFile> => applyFile(s, server.open(name), name);
    let s = initialDistributionClientState();
    for (const name of [d1, d2, d3]) s = valueOf(apply(s, name));
    expect(valueOf(apply(s, d3))).toBe(s); // the same delta again
    expect(valueOf(apply(s, f3))).toBe(s); // the full dump of exactly this state
    expect(reasonOf(apply(s, d2))).toBe('stale');
    expect(reasonOf(apply(s, d1))).toBe('stale');
    const at4 = valueOf(apply(s, d4));
    expect(reasonOf(apply(at4, f3))).toBe('stale');
    expect(valueOf(apply(at4, d4))).toBe(at4);
    const fromFull = valueOf(apply(initialDistributionClientState(), f3));
    expect(valueOf(apply(fromFull, f3))).toBe(fromFull);
    expect(valueOf(apply(fromFull, d3))).toBe(fromFull); // the delta the full dump snapshots
    expect(reasonOf(apply(fromFull, d2))).toBe('stale');
    expect(reasonOf(apply(initialDistributionClientState(), d2))).toBe('gap');
  });

  it('a file or index from another chain is refused (wrong-base) and the full dump recovers', () => {
    const a = new ModelServer();
    const b = new ModelServer();
    for (const [server, r] of [[a, tek(1)], [a, tek(2)], [b, SEED], [b, REPORT]] as const) {
      server.upload([r]);
      server.delta();
    }
    const onB = sync(initialDistributionClientState(), b);
    const aD2 = a.index.deltas[1]!;
    const onA1 = valueOf(applyFile(initialDistributionClientState(), a.open(a.index.deltas[0]!), a.index.deltas[0]!));
    expect(applyFile(onA1, b.open(b.index.deltas[1]!), b.index.deltas[1]!)).toMatchObject({ ok: false, reason: 'wrong-base', needs: { kind: 'full' } });
    expect(applyFile(onB, a.open(aD2), aD2)).toMatchObject({ ok: false, reason: 'wrong-base', needs: { kind: 'full' } });
    // The index lists a different delta at the state's seq and has no full dump: start over.
    expect(planFetch(onB, a.index)).toMatchObject({ mode: 'restart', names: a.index.deltas });
    expectHolds(sync(onB, a), a);
    // Exactly at the full dump's seq the index cannot tell; the next delta's wrong-base does, and the full dump repairs.
    a.full();
    a.upload([tek(3)]);
    a.delta();
    const plan = planFetch(onB, a.index);
    expect(plan).toMatchObject({ mode: 'deltas', names: [a.index.deltas[0]] });
    expect(reasonOf(applyFile(onB, a.open(plan.names[0]!), plan.names[0]!))).toBe('wrong-base');
    let repaired = valueOf(applyFile(onB, a.open(a.index.latestFull!), a.index.latestFull!));
    repaired = valueOf(applyFile(repaired, a.open(plan.names[0]!), plan.names[0]!));
    expectHolds(repaired, a);
  });

  it('bounds memory: a file that would take the client over maxRecords is refused (too-many-records), the state unchanged', () => {
    const server = new ModelServer();
    server.upload([tek(1), tek(2)]);
    const d1 = server.delta().file.name;
    server.upload([tek(3)]);
    server.withdraw(0);
    const d2 = server.delta().file.name; // −2 +1
    server.upload([tek(4), tek(5)]);
    const d3 = server.delta().file.name;
    const f3 = server.full()!.file.name;
    const at1 = valueOf(applyFile(initialDistributionClientState(), server.open(d1), d1, { maxRecords: 2 }));
    const at2 = valueOf(applyFile(at1, server.open(d2), d2, { maxRecords: 2 })); // deletions count before additions
    expect(at2.count).toBe(1);
    expect(reasonOf(applyFile(at2, server.open(d3), d3, { maxRecords: 2 }))).toBe('too-many-records');
    expect(reasonOf(applyFile(initialDistributionClientState(), server.open(f3), f3, { maxRecords: 2 }))).toBe('too-many-records');
    expect(valueOf(applyFile(at2, server.open(d3), d3, { maxRecords: 3 })).count).toBe(3);
  });

  it('planFetch: nothing for an empty, current or older index; every delta from genesis before the first full dump', () => {
    const server = new ModelServer();
    const empty = initialDistributionClientState();
    expect(planFetch(empty, server.index)).toMatchObject({ mode: 'none', names: [] });
    server.upload([tek(1)]);
    const d1 = server.delta().file.name;
    const d2 = server.delta().file.name;
    expect(planFetch(empty, server.index)).toMatchObject({ mode: 'deltas', names: [d1, d2] });
    const current = sync(empty, server);
    expect(planFetch(current, server.index)).toMatchObject({ mode: 'none', names: [] });
    expect(planFetch(current, { v: 1, latestFull: null, deltas: [d1], seq: 1, publishedAt: 0 })).toMatchObject({ mode: 'none', names: [] });
  });

  it('the publisher chains deltas and checkpoints full dumps as documented, and refuses to break the rules', () => {
    const server = new ModelServer();
    server.upload([tek(1)]);
    const d1 = server.delta().file.name;
    const d2 = server.delta().file.name;
    const f2 = server.full()!.file.name;
    const d3 = server.delta().file.name;
    expect([d1, d2, f2, d3].map((n) => { const f = server.open(n); return [f.kind, f.seq, f.basedOn]; })).toEqual([
      ['delta', 1, null],
      ['delta', 2, d1],
      ['full', 2, d2],
      ['delta', 3, d2],
    ]);
    expect(server.index).toMatchObject({ latestFull: f2, deltas: [d3], seq: 3 });
    expect(misuseField(() => publishFull(SIGNER, initialPublisherState(), { createdAt: 0, periodStart: 0, periodEnd: 0, records: [] }))).toBe('state');
    const crowded: PublisherState = { seq: MAX_INDEX_DELTAS, chainTip: NAME_A, latestFull: null, deltas: Array.from({ length: MAX_INDEX_DELTAS }, () => NAME_B) };
    expect(misuseField(() => publishDelta(SIGNER, crowded, { createdAt: 0, periodStart: 0, periodEnd: 0, additions: [], deletions: [] }))).toBe('state.deltas');
  });
});

// ------------------------------------------------------------ fuzz

describe('fuzz: hostile files and indexes → typed rejections only', () => {
  const rand = prng(20_261_122);
  const int = (n: number): number => Math.floor(rand() * n);
  const randomBytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => int(256));
  const mutate = (src: Uint8Array): Uint8Array => {
    const t = src.slice();
    const kind = int(5);
    if (kind === 0) return t.subarray(0, int(t.length + 1));
    if (kind === 1) return concat(t.subarray(0, int(t.length)), randomBytes(1 + int(8)), t.subarray(int(t.length)));
    const flips = 1 + int(kind === 4 ? 16 : 3);
    for (let i = 0; i < flips && t.length > 0; i++) t[int(t.length)] = kind === 2 ? t[int(t.length)]! ^ (1 << int(8)) : int(256);
    return t;
  };
  const randomValue = (depth = 0): WireValue => {
    switch (int(depth > 1 ? 8 : 10)) {
      case 0: return int(300) - 50;
      case 1: return [0, -1, 1.5, 2 ** 53, 144, 145, 65_536, MAX_INT32 + 1][int(8)]!;
      case 2: return ['gaen-tek', 'dp3t-seed', 'tcn-report', 'full', 'delta', 'ecdsa-p256-sha256', KEY_ID, ''][int(8)]!;
      case 3: return randomBytes([0, 15, 16, 31, 32, 33, 64, 72, 134, 389][int(10)]!);
      case 4: return null;
      case 5: return rand() < 0.5;
      case 6: return randomBytes(int(40));
      case 7: return 'x'.repeat(int(70));
      case 8: return Array.from({ length: int(4) }, () => randomValue(depth + 1));
      default: return Object.fromEntries(Array.from({ length: int(4) }, (_, i) => [['t', 'key', 'v', 'seq', 'body'][i] ?? 'k', randomValue(depth + 1)]));
    }
  };
  /** Drop, add or replace a field, or mutate the records' bytes. */
  const structMutate = (map: WireMap): WireMap => {
    const copy: Record<string, WireValue> = { ...map };
    const keys = Object.keys(copy);
    const r = int(10);
    const additions = copy['additions'];
    if (r < 2) delete copy[keys[int(keys.length)]!];
    else if (r < 3) copy[['x', 'memo', 'v2'][int(3)]!] = randomValue();
    else if (r < 6 && additions instanceof Uint8Array && additions.length > 0) copy['additions'] = mutate(additions);
    else copy[keys[int(keys.length)]!] = randomValue();
    return copy;
  };
  const named = (bytes: Uint8Array): { name: string; bytes: Uint8Array } => ({ name: hex(nodeSuite.sha256(bytes)), bytes });
  /** A canonical container with a valid signature around any body bytes: reaches the body decoder. */
  const signedAround = (body: Uint8Array): { name: string; bytes: Uint8Array } => {
    const sig = lowSDer(nodeSuite.p256Sign(SIGNING_KEY, distributionSigningMessage(KEY_ID, body)))!;
    return named(packWire({ v: 1, alg: 'ecdsa-p256-sha256', keyId: KEY_ID, body, sig }));
  };

  it('≥ 10,000 random and mutated signed files (bytes, containers, bodies, fields) give only typed rejections or a valid file, in bounded memory', () => {
    const files = [
      delta(1, [tek(1), SEED, REPORT]),
      delta(7, [tek(2), tek(3)], [NAME_A, NAME_B]),
      { ...delta(9, [SEED, tek(4)]), kind: 'full' as const },
      delta(3, [], [NAME_A]),
    ];
    const signed = files.map((f) => signDistributionFile(nodeSuite, SIGNING_KEY, KEY_ID, f));
    const bodies = files.map((f) => encodeDistributionFile(nodeSuite, f));
    const containers = signed.map((s) => valueOf(unpackWire(s.bytes, 't')) as WireMap);
    const heapBefore = process.memoryUsage().heapUsed;
    let peak = heapBefore;
    const outcomes = new Map<string, number>();
    const ITERATIONS = 12_000;
    for (let i = 0; i < ITERATIONS; i++) {
      const k = int(files.length);
      let input: { name: string; bytes: Uint8Array };
      switch (i % 6) {
        case 0: input = named(randomBytes(int(400))); break;
        case 1: input = named(mutate(signed[k]!.bytes)); break;
        case 2: input = { name: signed[k]!.name, bytes: mutate(signed[k]!.bytes) }; break;
        case 3: input = signedAround(mutate(bodies[k]!)); break;
        case 4: input = signedAround(packWire(structMutate(valueOf(unpackWire(bodies[k]!, 't')) as WireMap))); break;
        default: input = named(packWire(structMutate(containers[k]!))); break;
      }
      const v = openDistributionFile(nodeSuite, KEYS, input.name, input.bytes);
      let outcome: string;
      if (v.ok) outcome = 'opened';
      else {
        expect(v.codec).toBe('keyserver-distribution');
        expect(typeof v.detail).toBe('string');
        outcome = v.reason;
      }
      expect(OPEN_REASONS.has(outcome) || outcome === 'opened', outcome).toBe(true);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      if (i % 500 === 0) peak = Math.max(peak, process.memoryUsage().heapUsed);
    }
    if (process.env['DIST_FUZZ_REPORT'] !== undefined) console.log(JSON.stringify([...outcomes]));
    expect([...outcomes.values()].reduce((a, b) => a + b, 0)).toBe(ITERATIONS);
    for (const reason of ['name-mismatch', 'malformed', 'bad-signature', 'unsupported-version', 'inconsistent', 'bad-order']) {
      expect(outcomes.get(reason) ?? 0, `${reason} in ${JSON.stringify([...outcomes])}`).toBeGreaterThan(0);
    }
    expect(peak - heapBefore).toBeLessThan(256 * 1024 * 1024);
  });

  it('≥ 10,000 random and mutated index messages give only typed rejections or a valid index, in bounded memory', () => {
    const indexes = fc.sample(indexArb, { numRuns: 8, seed: 4 });
    const encoded = indexes.map(encodeDistributionIndex);
    const heapBefore = process.memoryUsage().heapUsed;
    let peak = heapBefore;
    const outcomes = new Map<string, number>();
    const ITERATIONS = 12_000;
    for (let i = 0; i < ITERATIONS; i++) {
      const k = int(encoded.length);
      const input =
        i % 3 === 0 ? randomBytes(int(300)) : i % 3 === 1 ? mutate(encoded[k]!) : packWire(structMutate(valueOf(unpackWire(encoded[k]!, 't')) as WireMap));
      const v = decodeDistributionIndex(input);
      const outcome = v.ok ? 'decoded' : v.reason;
      if (!v.ok) expect(v.codec).toBe('keyserver-index');
      else expect(valueOf(decodeDistributionIndex(encodeDistributionIndex(v.value)))).toEqual(v.value);
      expect(INDEX_REASONS.has(outcome) || outcome === 'decoded', outcome).toBe(true);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      if (i % 500 === 0) peak = Math.max(peak, process.memoryUsage().heapUsed);
    }
    if (process.env['DIST_FUZZ_REPORT'] !== undefined) console.log(JSON.stringify([...outcomes]));
    for (const reason of ['malformed', 'inconsistent', 'unsupported-version']) expect(outcomes.get(reason) ?? 0, reason).toBeGreaterThan(0);
    expect(peak - heapBefore).toBeLessThan(256 * 1024 * 1024);
  });
});
