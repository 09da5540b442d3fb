/**
 * Shared fixtures of the key-server distribution tests (test/keyserver/distribution-*.test.ts).
 */
import fc from 'fast-check';
import { nobleSuite } from '../../protocol/crypto/noble.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import type { Verdict } from '../../protocol/errors.ts';
import { MAX_INT32 } from '../../protocol/keyserver/gaen-export-schema.ts';
import {
  INDEX_REJECTION_REASONS,
  OPEN_REJECTION_REASONS,
  recordId,
  type DiagnosisRecord,
  type DistributionFile,
  type DistributionIndex,
  type DistributionSigner,
  type FileName,
  type GaenTekRecord,
  type IdentifiedRecord,
  type RecordId,
} from '../../protocol/keyserver/distribution.ts';
import { nodeSuite } from '../../services/crypto/node.ts';

export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
export const concat = (...parts: Uint8Array[]): Uint8Array => Uint8Array.from(Buffer.concat(parts));
export const reasonOf = (v: Verdict<unknown>): string => (v.ok ? 'accepted' : v.reason);
export function valueOf<T>(v: Verdict<T>): T {
  if (!v.ok) throw new Error(`${v.codec}/${v.reason}: ${v.detail} (${v.field ?? '-'})`);
  return v.value;
}

export const SUITES: readonly (readonly [string, CryptoSuite])[] = [
  ['noble', nobleSuite],
  ['node', nodeSuite],
];
export const SIGNING_KEY = nodeSuite.sha256(utf8('tracecity distribution test key'));
export const OTHER_KEY = nodeSuite.sha256(utf8('another distribution key'));
export const KEY_ID = 'ks-2026';
export const KEYS: ReadonlyMap<string, Uint8Array> = new Map([[KEY_ID, nodeSuite.p256PublicKey(SIGNING_KEY)]]);
export const SIGNER: DistributionSigner = { crypto: nodeSuite, signingKey: SIGNING_KEY, keyId: KEY_ID };
export const P256_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
export const OPEN_REASONS = new Set<string>(OPEN_REJECTION_REASONS);
export const INDEX_REASONS = new Set<string>(INDEX_REJECTION_REASONS);

/** A distinct GAEN TEK per n. */
export function tek(n: number): GaenTekRecord {
  const key = new Uint8Array(16).fill(0xa5);
  new DataView(key.buffer).setUint32(0, n);
  return { protocol: 'gaen-tek', key, rollingStartIntervalNumber: 2_700_000 + n, rollingPeriod: 144, transmissionRisk: n % 9 };
}
export const SEED: DiagnosisRecord = { protocol: 'dp3t-seed', seed: new Uint8Array(32).fill(7), day: 20_000 };
export const REPORT: DiagnosisRecord = { protocol: 'tcn-report', report: new Uint8Array(134).fill(3) };
export const idOf = (r: DiagnosisRecord): RecordId => recordId(nodeSuite, r);
export const NAME_A = 'aa'.repeat(32);
export const NAME_B = 'bb'.repeat(32);

export function delta(seq: number, additions: readonly DiagnosisRecord[], deletions: readonly RecordId[] = [], basedOn: FileName | null = seq === 1 ? null : NAME_A): DistributionFile {
  return { v: 1, kind: 'delta', seq, basedOn, createdAt: 1_800_000_000_000, periodStart: 1_799_999_100_000, periodEnd: 1_800_000_000_000, additions, deletions };
}

// ------------------------------------------------------------ arbitraries

export const digestArb = fc.uint8Array({ minLength: 32, maxLength: 32 }).map(hex);
export const recordArb: fc.Arbitrary<DiagnosisRecord> = fc.oneof(
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
export const timeArb = fc.integer({ min: 0, max: 253_402_300_799_999 });
export const fileArb: fc.Arbitrary<DistributionFile> = fc
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
export const indexArb: fc.Arbitrary<DistributionIndex> = fc
  .record({
    full: fc.option(digestArb),
    fullSeq: fc.integer({ min: 1, max: 2 ** 40 }),
    deltas: fc.uniqueArray(digestArb, { maxLength: 40 }),
    publishedAt: timeArb,
  })
  .filter((x) => x.full === null || !x.deltas.includes(x.full))
  .map((x) => ({ v: 1 as const, latestFull: x.full, deltas: x.deltas, seq: (x.full === null ? 0 : x.fullSeq) + x.deltas.length, publishedAt: x.publishedAt }));

/** What decoding an encoded file gives: additions sorted by id (with ids), deletions sorted. */
export function normalized(file: DistributionFile): DistributionFile<IdentifiedRecord> {
  const additions = file.additions.map((r) => ({ ...r, id: idOf(r) })).sort((a, b) => (a.id < b.id ? -1 : 1));
  return { ...file, additions, deletions: [...file.deletions].sort() };
}

// ------------------------------------------------------------ records
