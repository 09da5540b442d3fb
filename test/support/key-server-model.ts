/**
 * The reference model of the key-server machine for
 * test/keyserver/key-server-model.test.ts (its header says what is compared):
 * the configuration, the random commands, and the documented behaviour —
 * module headers of actors/key-server/submissions.ts, admin.ts,
 * publication.ts, ledger.ts — written here, not copied from the code.
 *
 * Records are held per upload (`MRecord.holders`): a record is live while
 * some upload holds a reference, an upload that names a record twice holds
 * two, expiry (at a publish tick, on a period boundary or off one) takes every
 * reference at once, and a withdrawal drops only the references the upload
 * still holds — a record that expired and came back with a later upload
 * stays.
 */
import fc from 'fast-check';
import type { KeyServerConfig } from '../../actors/key-server/key-server-state.ts';
import type { DiagnosisRecord } from '../../protocol/keyserver/distribution-records.ts';
import type { KeysStatusReply } from '../../protocol/keyserver/messages.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { gaenOfDay } from './key-server-arbitraries.ts';
import { DAY, MINUTE } from './key-server-fixtures.ts';

export const HOUR = 60 * MINUTE;
export const PERIOD = 3 * HOUR;
export const RETENTION = 3 * DAY;
export const SLACK = DAY;
export const MAX_RECORDS = 10;
export const CONFIG: Partial<KeyServerConfig> = { periodMs: PERIOD, fullEveryMs: DAY, retentionMs: RETENTION, futureSlackMs: SLACK, maxRecords: MAX_RECORDS, statusMemory: 10_000 };
export const PROVIDERS = ['clinic-a', 'clinic-b', 'clinic-c'] as const;
const BAD_TCN = 0xba;
export const verifyTcnReport = (report: Uint8Array): boolean => report[0] !== BAD_TCN;

// -------------------------------------------------------------------- commands

/** A record named abstractly; its content is fixed when the upload runs (days count back from that day). */
export type RecordRef = { readonly kind: 'gaen' | 'dp3t'; readonly n: number; readonly daysAgo: number } | { readonly kind: 'tcn'; readonly n: number; readonly bad: boolean };
export type UploadMode = 'fresh' | 'unregistered' | 'retry' | 'reuse-other' | 'any' | 'malformed' | 'chaff';
export type Lifetime = 'ms' | 'hour' | 'day' | 'max' | 'too-long';
export type Cmd =
  | { readonly k: 'add'; readonly p: number }
  | { readonly k: 'revoke'; readonly p: number; readonly retroactive: boolean; readonly sinceBack: number }
  | { readonly k: 'register'; readonly p: number; readonly codes: readonly Uint8Array[]; readonly lifetime: Lifetime; readonly dup: boolean }
  | {
      readonly k: 'upload';
      readonly mode: UploadMode;
      readonly pick: number;
      readonly records: readonly RecordRef[];
      /** Carry again what an earlier accepted upload carried (its keys shared, or past retention; its TCN report back after expiry). */
      readonly echo: boolean;
      readonly future: boolean;
      readonly bytes: Uint8Array;
    }
  | { readonly k: 'withdraw'; readonly pick: number; readonly accepted: boolean; readonly lost: boolean; readonly own: boolean; readonly p: number }
  | { readonly k: 'status'; readonly pick: number }
  | { readonly k: 'wait'; readonly ms: number }
  | { readonly k: 'late'; readonly ms: number; readonly aim: boolean };

const providerIdx = fc.nat(PROVIDERS.length - 1);
/** GAEN keys and DP-3T seeds from tomorrow to 4 days back: 4 days back is past the 3-day retention (stale: the server skips it). */
const recordRefArb: fc.Arbitrary<RecordRef> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('gaen' as const), n: fc.nat(7), daysAgo: fc.integer({ min: -1, max: 4 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('dp3t' as const), n: fc.nat(3), daysAgo: fc.integer({ min: -1, max: 4 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('tcn' as const), n: fc.nat(3), bad: fc.nat(9).map((x) => x === 0) }) },
);
/** 1–5 records, now and then one of them twice (a phone sending a key twice). */
const recordsArb: fc.Arbitrary<readonly RecordRef[]> = fc
  .record({ refs: fc.array(recordRefArb, { minLength: 1, maxLength: 5 }), again: fc.nat(4) })
  .map(({ refs, again }) => (again === 0 ? [...refs, ...refs.slice(0, 1)] : refs));
export const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ k: fc.constant('add' as const), p: providerIdx }) },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant('revoke' as const),
      p: providerIdx,
      retroactive: fc.boolean(),
      sinceBack: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 12 * HOUR }), fc.integer({ min: 0, max: 5 * DAY })),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      k: fc.constant('register' as const),
      p: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 3, arbitrary: providerIdx }),
      codes: fc.array(fc.uint8Array({ minLength: 10, maxLength: 10 }), { minLength: 1, maxLength: 3 }),
      lifetime: fc.constantFrom<Lifetime>('ms', 'hour', 'day', 'day', 'max', 'max', 'too-long'),
      dup: fc.nat(7).map((x) => x === 0),
    }),
  },
  {
    weight: 18,
    arbitrary: fc.record({
      k: fc.constant('upload' as const),
      mode: fc.constantFrom<UploadMode>('fresh', 'fresh', 'fresh', 'fresh', 'unregistered', 'retry', 'reuse-other', 'any', 'malformed', 'chaff'),
      pick: fc.nat(),
      records: recordsArb,
      echo: fc.nat(3).map((x) => x === 0),
      future: fc.nat(11).map((x) => x === 0),
      bytes: fc.uint8Array({ minLength: 10, maxLength: 10 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ k: fc.constant('withdraw' as const), pick: fc.nat(), accepted: fc.boolean(), lost: fc.boolean(), own: fc.nat(4).map((x) => x > 0), p: providerIdx }),
  },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('status' as const), pick: fc.nat() }) },
  { weight: 6, arbitrary: fc.record({ k: fc.constant('wait' as const), ms: fc.oneof(fc.integer({ min: 1, max: 30 * MINUTE }), fc.integer({ min: 1, max: 8 * HOUR }), fc.integer({ min: DAY, max: 2 * DAY })) }) },
  // The host was down, or its timer fired a little late: one publish tick, mostly off a period boundary
  // (`aim`: soon after the next record expires, before the boundary that follows).
  { weight: 2, arbitrary: fc.record({ k: fc.constant('late' as const), ms: fc.oneof(fc.integer({ min: 1, max: 30 * MINUTE }), fc.integer({ min: 1, max: 4 * DAY })), aim: fc.boolean() }) },
);

// -------------------------------------------------------------------- the reference model

export interface MCode {
  readonly text: string;
  readonly digest: Uint8Array;
  readonly providerId: string;
  readonly expiresAt: number;
  used: { readonly trackingId: string; readonly content: string; readonly records: Uint8Array } | null;
}
export interface MUpload {
  readonly trackingId: string;
  readonly providerId: string;
  readonly at: number;
  /** Its records that entered distribution (stale ones skipped), repeats included. */
  readonly ids: readonly string[];
  state: 'accepted' | 'withdrawn';
  reason: string;
}
interface MRecord {
  expiresAt: number;
  /** Upload → references it holds (one per copy it carried). */
  readonly holders: Map<string, number>;
}

export class Model {
  readonly providers = new Map<string, { revokedAt: number | null }>();
  /** Registered and not yet forgotten, by canonical text. */
  readonly codes = new Map<string, MCode>();
  /** Every code text ever printed (registered or not). */
  readonly printed: string[] = [];
  /** Accepted uploads not yet forgotten, in acceptance order. */
  readonly uploads = new Map<string, MUpload>();
  readonly forgotten = new Map<string, MUpload>();
  readonly rejected = new Map<string, string>();
  readonly chaff = new Set<string>();
  readonly live = new Map<string, MRecord>();
  /** Every tracking id handed out, in order. */
  readonly tracking: string[] = [];

  status(trackingId: string): KeysStatusReply {
    const u = this.uploads.get(trackingId);
    if (u !== undefined) {
      const expired = u.state === 'accepted' && u.ids.length > 0 && u.ids.every((id) => !this.live.has(id));
      return { trackingId, state: expired ? 'expired' : u.state, reason: u.reason, records: u.ids.length };
    }
    const reason = this.rejected.get(trackingId);
    if (reason !== undefined) return { trackingId, state: 'rejected', reason, records: 0 };
    if (this.chaff.has(trackingId)) return { trackingId, state: 'accepted', reason: '', records: 0 };
    return { trackingId, state: 'unknown', reason: '', records: 0 };
  }

  /** The live records as the ledger counts them: id → total references and expiry. */
  counted(): Map<string, { refs: number; expiresAt: number }> {
    const sum = (holders: Map<string, number>): number => [...holders.values()].reduce((a, b) => a + b, 0);
    return new Map([...this.live].map(([id, r]) => [id, { refs: sum(r.holders), expiresAt: r.expiresAt }]));
  }

  /** One reference of upload `trackingId` to record `id`; a live record lives until the latest expiry of its copies. */
  addRef(id: string, expiresAt: number, trackingId: string): void {
    const r = this.live.get(id);
    if (r === undefined) this.live.set(id, { expiresAt, holders: new Map([[trackingId, 1]]) });
    else {
      r.holders.set(trackingId, (r.holders.get(trackingId) ?? 0) + 1);
      r.expiresAt = Math.max(r.expiresAt, expiresAt);
    }
  }

  /** The references `u` still holds leave; a record that expired (and perhaps came back with another upload) is not its own any more. */
  withdraw(u: MUpload, reason: string): void {
    u.state = 'withdrawn';
    u.reason = reason;
    for (const id of new Set(u.ids)) {
      const r = this.live.get(id);
      if (r?.holders.delete(u.trackingId) === true && r.holders.size === 0) this.live.delete(id);
    }
  }

  /** Does `u` name a live record it no longer holds (expired, then re-uploaded by another)? */
  lostToExpiry(u: MUpload): boolean {
    return u.ids.some((id) => this.live.get(id)?.holders.has(u.trackingId) === false);
  }

  /** A publish tick at `at` (on a boundary or not): records past retention leave; uploads two retentions old and codes one retention past expiry are forgotten. */
  tick(at: number): number {
    let expired = 0;
    for (const [id, r] of this.live) {
      if (r.expiresAt > at) continue;
      this.live.delete(id);
      expired++;
    }
    for (const [id, u] of this.uploads) {
      if (u.at + 2 * RETENTION > at) break;
      this.uploads.delete(id);
      this.forgotten.set(id, u);
    }
    for (const [text, c] of this.codes) if (c.expiresAt + RETENTION <= at) this.codes.delete(text);
    return expired;
  }
}

// -------------------------------------------------------------------- records

/** A TCN report: content fixed by (n, bad), so the same report comes back in uploads days apart, after it expired. */
function tcnReport(n: number, bad: boolean): Uint8Array {
  const report = new Uint8Array(150).fill(0x11);
  report[0] = bad ? BAD_TCN : 0x01;
  report[1] = n;
  return report;
}

export function recordOf(ref: RecordRef, at: number): DiagnosisRecord {
  const today = Math.floor(at / DAY);
  switch (ref.kind) {
    case 'gaen':
      return gaenOfDay(Uint8Array.of(...new Uint8Array(15).fill(0x5a), ref.n), today - ref.daysAgo);
    case 'dp3t':
      return { protocol: 'dp3t-seed', seed: nodeSuite.sha256(Uint8Array.of(ref.n)), day: today - ref.daysAgo };
    case 'tcn':
      return { protocol: 'tcn-report', report: tcnReport(ref.n, ref.bad) };
  }
}

/** Documented expiry (submissions.ts `recordExpiry`): own time + retention; TCN reports: upload time + retention. */
export function expiryOf(record: DiagnosisRecord, at: number): number {
  switch (record.protocol) {
    case 'gaen-tek':
      return (record.rollingStartIntervalNumber + record.rollingPeriod) * 600_000 + RETENTION;
    case 'dp3t-seed':
      return (record.day + 1) * DAY + RETENTION;
    case 'tcn-report':
      return at + RETENTION;
  }
}

export function startsAfter(record: DiagnosisRecord, latest: number): boolean {
  if (record.protocol === 'gaen-tek') return record.rollingStartIntervalNumber * 600_000 > latest;
  if (record.protocol === 'dp3t-seed') return record.day * DAY > latest;
  return false;
}
