/**
 * The key server's state (issue 4; docs/decisions/0006): providers, code
 * records, uploads, the records in distribution and the pending delta.
 *
 * It is *derived*: the machine's journal (every upload, status query, admin
 * command and publication tick, appended durably before the machine sees it)
 * is the event log and the only source of truth; the host never snapshots
 * this actor (`journal: { snapshots: false }`), a restart and `tracecity
 * keyserver rebuild` fold the whole log again. That is why the ledger may be
 * a mutable object of Maps: no step copies a million records, and nothing
 * ever serialises it except `stateDigest`, a canonical hash that proves a
 * rebuild reproduced the same state.
 *
 * Records are reference-counted by id (SHA-256 of label ‖ canonical bytes):
 * two uploads of the same key keep it in distribution until both are gone.
 * The pending delta is `added` (live, never published) and `removed`
 * (published, now gone); a record added and removed inside one period
 * appears in neither, a published record removed and re-added in one period
 * in neither either.
 */
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import type { DiagnosisRecord, RecordId } from '../../protocol/keyserver/distribution-records.ts';
import { canonicalRecordBytes, toHex } from '../../protocol/keyserver/distribution-records.ts';
import type { PublisherState } from '../../protocol/keyserver/distribution-publisher.ts';
import { initialPublisherState } from '../../protocol/keyserver/distribution-publisher.ts';
import type { UploadState } from '../../protocol/keyserver/messages.ts';
import type { FilterIndexEntry } from '../../protocol/keyserver/sighting-filter.ts';
import type { LockoutTable } from '../../protocol/keyserver/rate-limit.ts';
import { createLockoutTable } from '../../protocol/keyserver/rate-limit.ts';
import type { SimMillis } from '../ports.ts';

export interface Provider {
  readonly id: string;
  readonly addedAt: SimMillis;
  /** From this instant on the provider's codes authorize nothing (null: active). */
  revokedAt: SimMillis | null;
  /** Retroactive revocation: uploads it authorized at or after this instant were withdrawn. */
  withdrawnSince: SimMillis | null;
}

export interface CodeEntry {
  readonly providerId: string;
  readonly issuedAt: SimMillis;
  readonly expiresAt: SimMillis;
  usedAt: SimMillis | null;
  /** The upload that redeemed it, and a hash of what it carried (a retry with the same content gets the same tracking id). */
  trackingId: string | null;
  contentHash: string | null;
}

export interface Upload {
  readonly trackingId: string;
  readonly providerId: string;
  readonly at: SimMillis;
  readonly recordIds: readonly RecordId[];
  state: Extract<UploadState, 'accepted' | 'withdrawn'>;
  reason: string;
}

export interface LiveRecord {
  readonly record: DiagnosisRecord;
  refs: number;
  /** In a published file (so its removal must be announced as a deletion). */
  published: boolean;
  /** First instant it is past retention. */
  expiresAt: SimMillis;
  /**
   * When it (re)entered distribution. An upload older than this holds no
   * reference to it: its own reference ended when the record expired, and the
   * record is back because a later upload carried it again.
   */
  liveSince: SimMillis;
}

/** A status kept for rejected and chaff uploads, bounded (oldest forgotten first). */
export interface RememberedStatus {
  readonly state: Extract<UploadState, 'accepted' | 'rejected'>;
  readonly reason: string;
  readonly records: number;
}

export interface KeyServerCounters {
  uploadsReceived: number;
  uploadsAccepted: number;
  uploadRetries: number;
  chaff: number;
  recordsAccepted: number;
  recordsStale: number;
  uploadsWithdrawn: number;
  recordsExpired: number;
  filesPublished: number;
  readonly rejected: Record<string, number>;
}

export class Ledger {
  readonly providers = new Map<string, Provider>();
  /** By hex uploadCodeDigest. */
  readonly codes = new Map<string, CodeEntry>();
  readonly uploads = new Map<string, Upload>();
  /** Accepted uploads per provider, in acceptance order (retroactive revocation walks them). */
  readonly uploadsByProvider = new Map<string, string[]>();
  readonly statuses = new Map<string, RememberedStatus>();
  readonly records = new Map<RecordId, LiveRecord>();
  readonly added = new Set<RecordId>();
  readonly removed = new Map<RecordId, LiveRecord>();
  /** Record ids by the period index in which they expire (checked again when swept). */
  readonly expiry = new Map<number, RecordId[]>();
  /** Bytes of every file the current index names (re-announced after a restart). */
  readonly files = new Map<string, Uint8Array>();
  /** Sighting filters within retention, oldest first (config.sightingFilters). */
  filterIndex: FilterIndexEntry[] = [];
  /** Bytes of the filters of the deltas the current index names (re-announced after a restart). */
  readonly filterFiles = new Map<string, Uint8Array>();
  publisher: PublisherState = initialPublisherState();
  lockouts: LockoutTable;
  /** Uploads ever received: the tracking-id counter. */
  uploadSeq = 0;
  /** When the last delta period ended (start of the pending one); null before the first tick. */
  periodStart: SimMillis | null = null;
  lastFullAt: SimMillis | null = null;
  /** Records changed since the last full dump. */
  changedSinceFull = false;
  readonly counters: KeyServerCounters = {
    uploadsReceived: 0,
    uploadsAccepted: 0,
    uploadRetries: 0,
    chaff: 0,
    recordsAccepted: 0,
    recordsStale: 0,
    uploadsWithdrawn: 0,
    recordsExpired: 0,
    filesPublished: 0,
    rejected: {},
  };

  constructor(
    lockoutKeys: number,
    private readonly statusMemory: number,
    private readonly periodMs: number,
  ) {
    this.lockouts = createLockoutTable(lockoutKeys);
  }

  countRejection(reason: string): void {
    this.counters.rejected[reason] = (this.counters.rejected[reason] ?? 0) + 1;
  }

  /** Remember a rejected or chaff upload's status; the oldest goes beyond `statusMemory` (a flood cannot grow memory). */
  remember(trackingId: string, status: RememberedStatus): void {
    this.statuses.set(trackingId, status);
    if (this.statuses.size > this.statusMemory) {
      const oldest = this.statuses.keys().next();
      if (oldest.done !== true) this.statuses.delete(oldest.value);
    }
  }

  /** Put one reference of `record` into distribution (at `at`). */
  addRecord(id: RecordId, record: DiagnosisRecord, expiresAt: SimMillis, at: SimMillis): void {
    this.changedSinceFull = true;
    const live = this.records.get(id);
    if (live !== undefined) {
      live.refs++;
      if (expiresAt > live.expiresAt) {
        live.expiresAt = expiresAt;
        this.scheduleExpiry(id, expiresAt);
      }
      return;
    }
    const gone = this.removed.get(id);
    if (gone !== undefined) {
      // Published, removed and back within one period: net, nothing changed for clients.
      this.removed.delete(id);
      this.records.set(id, { record: gone.record, refs: 1, published: true, expiresAt: Math.max(expiresAt, gone.expiresAt), liveSince: at });
    } else {
      this.records.set(id, { record, refs: 1, published: false, expiresAt, liveSince: at });
      this.added.add(id);
    }
    this.scheduleExpiry(id, expiresAt);
  }

  /**
   * Drop the reference an upload made at `uploadedAt` (none if the record
   * re-entered distribution after it), or every reference (`'all'`: expiry);
   * true when the record left distribution.
   */
  dropRecord(id: RecordId, uploadedAt: SimMillis | 'all'): boolean {
    const live = this.records.get(id);
    if (live === undefined) return false;
    const all = uploadedAt === 'all';
    if (!all && live.liveSince > uploadedAt) return false;
    live.refs = all ? 0 : live.refs - 1;
    if (live.refs > 0) return false;
    this.changedSinceFull = true;
    this.records.delete(id);
    if (live.published) this.removed.set(id, live);
    else this.added.delete(id);
    return true;
  }

  private scheduleExpiry(id: RecordId, expiresAt: SimMillis): void {
    const bucket = Math.ceil(expiresAt / this.periodMs);
    const list = this.expiry.get(bucket);
    if (list === undefined) this.expiry.set(bucket, [id]);
    else list.push(id);
  }

  /**
   * Remove every record past retention at `now`; returns how many left
   * distribution. Off a period boundary (a late timer) the bucket holding
   * `now` is visited too, and its ids not yet due stay scheduled.
   */
  sweepExpired(now: SimMillis): number {
    const last = Math.ceil(now / this.periodMs);
    let dropped = 0;
    for (const [bucket, ids] of this.expiry) {
      if (bucket > last) continue;
      const later: RecordId[] = [];
      for (const id of ids) {
        const live = this.records.get(id);
        if (live === undefined) continue;
        if (live.expiresAt <= now) {
          if (this.dropRecord(id, 'all')) dropped++;
        } else if (Math.ceil(live.expiresAt / this.periodMs) === bucket) later.push(id);
      }
      if (later.length > 0) this.expiry.set(bucket, later);
      else this.expiry.delete(bucket);
    }
    this.counters.recordsExpired += dropped;
    return dropped;
  }

  /** Accepted uploads of `providerId` (oldest first). */
  providerUploads(providerId: string): readonly string[] {
    return this.uploadsByProvider.get(providerId) ?? [];
  }

  addUpload(upload: Upload): void {
    this.uploads.set(upload.trackingId, upload);
    const list = this.uploadsByProvider.get(upload.providerId);
    if (list === undefined) this.uploadsByProvider.set(upload.providerId, [upload.trackingId]);
    else list.push(upload.trackingId);
  }

  /**
   * Forget what can no longer matter at `now`: uploads older than
   * `keepUploadsMs` (their records expired long ago; their status becomes
   * `unknown`) and code records `keepCodesMs` past their expiry.
   */
  prune(now: SimMillis, keepUploadsMs: number, keepCodesMs: number): void {
    for (const [id, upload] of this.uploads) {
      if (upload.at + keepUploadsMs > now) break; // insertion order = acceptance order
      this.uploads.delete(id);
      const list = this.uploadsByProvider.get(upload.providerId);
      if (list !== undefined && list[0] === id) list.shift();
      else if (list !== undefined) list.splice(list.indexOf(id), 1);
    }
    for (const [digest, code] of this.codes) if (code.expiresAt + keepCodesMs <= now) this.codes.delete(digest);
  }
}

const sortedKeys = <V>(map: ReadonlyMap<string, V>): string[] => [...map.keys()].sort();

/**
 * Hex SHA-256 of the ledger in a canonical order (sorted keys, fixed field
 * order): equal digests ⇔ equal state, whatever the Maps' insertion order.
 * Used to prove that `rebuild` reproduces a running server's state.
 */
export function stateDigest(crypto: Pick<CryptoSuite, 'sha256'>, ledger: Ledger): string {
  const parts: string[] = [];
  for (const id of sortedKeys(ledger.providers)) {
    const p = ledger.providers.get(id);
    if (p !== undefined) parts.push(`p|${id}|${p.addedAt}|${String(p.revokedAt)}|${String(p.withdrawnSince)}`);
  }
  for (const digest of sortedKeys(ledger.codes)) {
    const c = ledger.codes.get(digest);
    if (c !== undefined) parts.push(`c|${digest}|${c.providerId}|${c.issuedAt}|${c.expiresAt}|${String(c.usedAt)}|${String(c.trackingId)}|${String(c.contentHash)}`);
  }
  for (const id of sortedKeys(ledger.uploads)) {
    const u = ledger.uploads.get(id);
    if (u !== undefined) parts.push(`u|${id}|${u.providerId}|${u.at}|${u.state}|${u.reason}|${u.recordIds.join(',')}`);
  }
  for (const id of sortedKeys(ledger.statuses)) {
    const s = ledger.statuses.get(id);
    if (s !== undefined) parts.push(`s|${id}|${s.state}|${s.reason}|${s.records}`);
  }
  for (const id of sortedKeys(ledger.records)) {
    const r = ledger.records.get(id);
    if (r !== undefined) parts.push(`r|${id}|${r.refs}|${String(r.published)}|${r.expiresAt}|${toHex(canonicalRecordBytes(r.record))}`);
  }
  parts.push(`a|${[...ledger.added].sort().join(',')}`, `d|${sortedKeys(ledger.removed).join(',')}`);
  const pub = ledger.publisher;
  parts.push(`pub|${pub.seq}|${String(pub.chainTip)}|${String(pub.latestFull)}|${pub.deltas.join(',')}`);
  parts.push(`l|${JSON.stringify(ledger.lockouts)}`);
  parts.push(`f|${ledger.filterIndex.map((e) => `${e.delta}:${e.filter}`).join(',')}`);
  parts.push(`n|${ledger.uploadSeq}|${String(ledger.periodStart)}|${String(ledger.lastFullAt)}|${String(ledger.changedSinceFull)}`);
  return toHex(crypto.sha256(new TextEncoder().encode(parts.join('\n'))));
}
