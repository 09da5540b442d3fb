/**
 * TCN matching in the three operating modes of seed 004 (SPECS §3 for the keys and reports):
 *
 * Privacy trade-offs:
 * - A (real time): phones stream heard TCNs to the server, which matches reports itself. Fastest
 *   notification, but the server holds everyone's contact graph over time (linkable by uploader).
 * - B (on request): the log stays on the phone until the health authority asks a positive user;
 *   the published log lets every phone recognise its own sent TCNs (and the time it was met), so
 *   the server learns the positive's contacts but not the non-infected population's.
 * - C (local, default): only the positive's report (rvk, tck_{j1−1}) leaves a phone; phones match
 *   locally. Least server knowledge, but anyone can link the positive's TCNs from j1 on.
 *
 * Speed: observations and uploads are indexed once by TCN (Id16Table, all 16 bytes, seeded);
 * a report's TCNs are regenerated with two SHA-256 calls each into reused buffers (the same
 * values as report.ts tcnsFromReport), from j1 — never before: tck_{j1−1} yields nothing earlier.
 * Reports are signed by whoever made them, so j2 − j1 (up to 65 535) is hostile: at most
 * maxTcnsPerReport TCNs are regenerated (default 2 016 = 14 days at 10-minute rotation) and a
 * longer report is truncated and counted. Stores and options are the caller's: MisuseError.
 */
import type { CryptoSuite } from '../crypto/suite.ts';
import { addToDays, keepDaysFrom } from '../day-buckets.ts';
import { Id16Table } from '../id16-table.ts';
import { ensure } from '../errors.ts';
import { checkBytes, checkIndex } from './bytes.ts';
import { checkTcnContact, TCN_CONTACT_MINUTE_MS, tcnContactMinute, type TcnContact } from './contact-log.ts';
import { TCN_SCAN_PERIOD_MS } from './distance.ts';
import { H_TCK_DOMAIN, H_TCN_DOMAIN, TCN_BYTES, TCN_RVK_BYTES, TCN_TCK_BYTES } from './keys.ts';
import type { TcnReport } from './report.ts';

/** Array.isArray without narrowing the argument to any[]. */
const isList = (value: unknown): boolean => Array.isArray(value);

/** Days of observed and sent TCNs kept past today (as the DP-3T white paper and GAEN; SPECS §3 is silent). */
export const TCN_RETENTION_DAYS = 14;
/** TCNs regenerated per report at most: 14 days × 144 (10-minute rotation with the MAC); the README suggests ≤ 6 h a report. SPECS §3. */
export const TCN_MAX_TCNS_PER_REPORT = 14 * 144;
/** Mode B: a published contact may lie this far outside the UTC day its TCN was sent, ms (2 h, as GAEN's drift). */
export const TCN_SENT_CLOCK_SKEW_MS = 2 * 3_600_000;
/** One UTC day, ms. */
export const TCN_MS_PER_DAY = 86_400_000;
/** RSSI range of an observation, dBm (HCI: −127…+20). */
const RSSI_MIN_DBM = -127;
const RSSI_MAX_DBM = 20;
const MAX_TIME_MS = 8.64e15;

// ------------------------------------------------------------ stores (plain data, by UTC day)

/** One heard TCN. */
export interface TcnObservation {
  /** 16 bytes. */ readonly tcn: Uint8Array;
  /** Receive time, Unix ms. */ readonly receivedAtMs: number;
  /** Integer dBm in [−127, 20]. */ readonly rssiDbm: number;
}
export interface TcnObservationDay { readonly day: number; readonly observations: readonly TcnObservation[] }
/** Heard TCNs by UTC day, days ascending and distinct. */
export interface TcnObservationStore { readonly days: readonly TcnObservationDay[] }
export const EMPTY_TCN_OBSERVATION_STORE: TcnObservationStore = { days: [] };

/** The phone's own sent TCNs (mode B), compact: per UTC day the concatenated 16-byte TCNs. */
export interface SentTcnDay { readonly day: number; readonly tcns: Uint8Array }
export interface SentTcnSet { readonly days: readonly SentTcnDay[] }
export const EMPTY_SENT_TCN_SET: SentTcnSet = { days: [] };

const dayOf = (ms: number): number => Math.floor(ms / TCN_MS_PER_DAY);

function checkTime(ms: number, field: string): void {
  ensure(typeof ms === 'number' && Number.isFinite(ms) && ms >= 0 && ms <= MAX_TIME_MS, field, `must be Unix ms in [0, ${MAX_TIME_MS}], got ${String(ms)}`);
}

function checkObservation(o: TcnObservation, at: string): void {
  const t = typeof o === 'object' && o !== null ? o.receivedAtMs : Number.NaN;
  const fast = typeof o === 'object' && o !== null && o.tcn instanceof Uint8Array && o.tcn.length === TCN_BYTES && t >= 0 && t <= MAX_TIME_MS;
  if (fast && Number.isInteger(o.rssiDbm) && o.rssiDbm >= RSSI_MIN_DBM && o.rssiDbm <= RSSI_MAX_DBM) return;
  ensure(typeof o === 'object' && o !== null, at, 'must be a TcnObservation');
  checkBytes(o.tcn, TCN_BYTES, `${at}.tcn`);
  checkTime(o.receivedAtMs, `${at}.receivedAtMs`);
  ensure(Number.isInteger(o.rssiDbm) && o.rssiDbm >= RSSI_MIN_DBM && o.rssiDbm <= RSSI_MAX_DBM, `${at}.rssiDbm`, `must be an integer dBm in [${RSSI_MIN_DBM}, ${RSSI_MAX_DBM}]`);
}

/** A new store with `observations` added to their UTC days (only touched days are copied). */
export function addTcnObservations(store: TcnObservationStore, observations: readonly TcnObservation[]): TcnObservationStore {
  observations.forEach((o, i) => checkObservation(o, `observations[${i}]`));
  return addToDays(store, observations, (o) => dayOf(o.receivedAtMs));
}

function oldestKept(nowMs: number, retentionDays: number): number {
  checkTime(nowMs, 'nowMs');
  ensure(Number.isInteger(retentionDays) && retentionDays >= 0 && retentionDays <= 3650, 'retentionDays', `must be an integer in [0, 3650], got ${retentionDays}`);
  return dayOf(nowMs) - retentionDays;
}

/** Retention deletion: keep the days ≥ today − retentionDays (default 14; the DP-3T reference's rule). */
export function pruneTcnObservations(store: TcnObservationStore, nowMs: number, retentionDays = TCN_RETENTION_DAYS): TcnObservationStore {
  return keepDaysFrom(store, oldestKept(nowMs, retentionDays));
}

/** Record a TCN this phone broadcast at `sentAtMs` (no-op when already recorded that day). */
export function recordSentTcn(set: SentTcnSet, tcn: Uint8Array, sentAtMs: number): SentTcnSet {
  checkBytes(tcn, TCN_BYTES, 'tcn');
  checkTime(sentAtMs, 'sentAtMs');
  const day = dayOf(sentAtMs);
  const at = set.days.findIndex((d) => d.day === day);
  const old = at < 0 ? new Uint8Array(0) : (set.days[at] as SentTcnDay).tcns;
  for (let o = 0; o < old.length; o += TCN_BYTES) if (old.subarray(o, o + TCN_BYTES).every((b, i) => b === tcn[i])) return set;
  const tcns = new Uint8Array(old.length + TCN_BYTES);
  tcns.set(old);
  tcns.set(tcn, old.length);
  const days = set.days.filter((d) => d.day !== day).concat({ day, tcns });
  return { days: days.sort((a, b) => a.day - b.day) };
}

/** Retention deletion of sent TCNs (default 14 days). */
export function pruneSentTcns(set: SentTcnSet, nowMs: number, retentionDays = TCN_RETENTION_DAYS): SentTcnSet {
  return keepDaysFrom(set, oldestKept(nowMs, retentionDays));
}

/** The contact log to upload (modes A, B): one entry per (TCN, minute) with its strongest RSSI, in time order. */
export function tcnContactLogOf(store: TcnObservationStore, fromMs = 0, toMs = MAX_TIME_MS): TcnContact[] {
  checkTime(fromMs, 'fromMs');
  checkTime(toMs, 'toMs');
  const best = new Map<string, TcnContact>();
  for (const d of store.days) {
    for (const o of d.observations) {
      if (o.receivedAtMs < fromMs || o.receivedAtMs >= toMs) continue;
      const atMinute = tcnContactMinute(o.receivedAtMs);
      const rssiDbm = Math.max(-128, Math.min(127, Math.round(o.rssiDbm)));
      const key = `${atMinute}:${String.fromCharCode(...o.tcn)}`;
      const prev = best.get(key);
      if (prev === undefined || prev.rssiDbm < rssiDbm) best.set(key, { tcn: o.tcn.slice(), atMinute, rssiDbm });
    }
  }
  return [...best.values()].sort((a, b) => a.atMinute - b.atMinute);
}

// ------------------------------------------------------------ TCN regeneration

export interface TcnMatchOptions {
  /** At most this many TCNs are regenerated per report, 1–65 535 (default 2 016). */ readonly maxTcnsPerReport?: number;
  /** Seed of the TCN hash, uint32 (default 0). Results never depend on it. */ readonly hashSeed?: number;
  /** Scan period of the exposure estimate, ms (default 60 000). */ readonly scanPeriodMs?: number;
}

function maxTcnsOf(options: TcnMatchOptions): number {
  const max = options.maxTcnsPerReport ?? TCN_MAX_TCNS_PER_REPORT;
  checkIndex(max, 1, 'options.maxTcnsPerReport');
  return max;
}

/**
 * Visit tcn_{j1} … tcn_{min(j2, j1 + max − 1)} of a verified report: `visit(bytes, j)` gets the
 * 32-byte H_tcn output whose first 16 bytes are tcn_j. Returns the count regenerated.
 */
export function forEachReportTcn(crypto: CryptoSuite, report: TcnReport, max: number, visit: (hash: Uint8Array, j: number) => void): number {
  ensure(typeof report === 'object' && report !== null, 'report', 'must be a TcnReport');
  checkBytes(report.rvk, TCN_RVK_BYTES, 'report.rvk');
  checkBytes(report.tckBytes, TCN_TCK_BYTES, 'report.tckBytes');
  checkIndex(report.j1, 1, 'report.j1');
  checkIndex(report.j2, report.j1, 'report.j2');
  const last = Math.min(report.j2, report.j1 + max - 1);
  // tckIn = "H_TCK" ‖ rvk ‖ tck_{j−1}; tcnIn = "H_TCN" ‖ le_u16(j) ‖ tck_j (SPECS §3).
  const tckIn = new Uint8Array(5 + TCN_RVK_BYTES + TCN_TCK_BYTES);
  tckIn.set(H_TCK_DOMAIN);
  tckIn.set(report.rvk, 5);
  tckIn.set(report.tckBytes, 5 + TCN_RVK_BYTES);
  const tcnIn = new Uint8Array(5 + 2 + TCN_TCK_BYTES);
  tcnIn.set(H_TCN_DOMAIN);
  for (let j = report.j1; j <= last; j++) {
    const tck = crypto.sha256(tckIn);
    tckIn.set(tck, 5 + TCN_RVK_BYTES);
    tcnIn[5] = j & 0xff;
    tcnIn[6] = j >>> 8;
    tcnIn.set(tck, 7);
    visit(crypto.sha256(tcnIn), j);
  }
  return last - report.j1 + 1;
}

// ------------------------------------------------------------ mode C: local matching

/** Observations indexed by TCN: build once, match many reports. */
export class TcnObservationIndex {
  readonly table: Id16Table;
  readonly groups: TcnObservation[][] = [];
  constructor(store: TcnObservationStore, hashSeed = 0) {
    ensure(typeof store === 'object' && store !== null && store.days instanceof Array, 'store.days', 'must be an array');
    this.table = new Id16Table(hashSeed, 'hashSeed');
    store.days.forEach((d, k) =>
      d.observations.forEach((o, i) => {
        checkObservation(o, `store.days[${k}].observations[${i}]`);
        const id = this.table.insert(o.tcn);
        if (id === this.groups.length) this.groups.push([o]);
        else (this.groups[id] as TcnObservation[]).push(o);
      }),
    );
    for (const g of this.groups) g.sort((a, b) => a.receivedAtMs - b.receivedAtMs);
  }
}

export interface TcnLocalMatch {
  /** Position of the report. */ readonly reportIndex: number;
  /** Ratchet index j of the TCN (j1 ≤ j ≤ j2). */ readonly j: number;
  readonly observation: TcnObservation;
}

/** Summary of one report's matches. */
export interface TcnReportExposure {
  readonly reportIndex: number;
  readonly observations: number;
  /** Distinct TCNs heard. */ readonly tcns: number;
  /** Distinct scan periods with a sighting; durationMs = that × scan period. */ readonly scanPeriods: number;
  readonly durationMs: number;
  readonly firstMs: number;
  readonly lastMs: number;
  readonly maxRssiDbm: number;
}

export interface TcnLocalMatchResult {
  readonly matches: readonly TcnLocalMatch[];
  readonly exposures: readonly TcnReportExposure[];
  readonly stats: { readonly reports: number; readonly matchedReports: number; readonly tcnsDerived: number; readonly truncatedReports: number };
}

/** Mode C: match verified reports against the phone's heard TCNs (`store` or a prebuilt index). */
export function matchTcnReports(crypto: CryptoSuite, reports: readonly TcnReport[], store: TcnObservationStore | TcnObservationIndex, options: TcnMatchOptions = {}): TcnLocalMatchResult {
  ensure(isList(reports), 'reports', 'must be an array of TcnReport');
  const max = maxTcnsOf(options);
  const scanMs = options.scanPeriodMs ?? TCN_SCAN_PERIOD_MS;
  ensure(Number.isFinite(scanMs) && scanMs >= 1, 'options.scanPeriodMs', `must be ≥ 1 ms, got ${scanMs}`);
  const index = store instanceof TcnObservationIndex ? store : new TcnObservationIndex(store, options.hashSeed ?? 0);
  const matches: TcnLocalMatch[] = [];
  const exposures: TcnReportExposure[] = [];
  let tcnsDerived = 0, truncatedReports = 0;
  reports.forEach((report, r) => {
    const found: TcnObservation[] = [];
    let tcns = 0;
    tcnsDerived += forEachReportTcn(crypto, report, max, (hash, j) => {
      const id = index.table.find(hash);
      if (id < 0) return;
      tcns++;
      for (const observation of index.groups[id] as TcnObservation[]) {
        found.push(observation);
        matches.push({ reportIndex: r, j, observation });
      }
    });
    if (report.j2 - report.j1 + 1 > max) truncatedReports++;
    if (found.length === 0) return;
    const periods = new Set<number>();
    let firstMs = Number.POSITIVE_INFINITY, lastMs = 0, maxRssiDbm = RSSI_MIN_DBM;
    for (const o of found) {
      periods.add(Math.floor(o.receivedAtMs / scanMs));
      firstMs = Math.min(firstMs, o.receivedAtMs);
      lastMs = Math.max(lastMs, o.receivedAtMs);
      maxRssiDbm = Math.max(maxRssiDbm, o.rssiDbm);
    }
    const base = { reportIndex: r, observations: found.length, tcns, scanPeriods: periods.size };
    exposures.push({ ...base, durationMs: periods.size * scanMs, firstMs, lastMs, maxRssiDbm });
  });
  return { matches, exposures, stats: { reports: reports.length, matchedReports: exposures.length, tcnsDerived, truncatedReports } };
}

// ------------------------------------------------------------ mode A: server-side matching

export interface TcnUploaderMatch {
  readonly uploaderId: string;
  /** The uploader's contacts with a reported TCN, with its ratchet index j. */
  readonly contacts: readonly { readonly j: number; readonly contact: TcnContact }[];
}

/** The server's index of uploaded contacts (mode A), grown as uploads arrive. */
export class TcnUploadIndex {
  private readonly table: Id16Table;
  private readonly groups: { readonly uploader: string; readonly contact: TcnContact }[][] = [];
  private count = 0;
  constructor(hashSeed = 0) {
    this.table = new Id16Table(hashSeed, 'hashSeed');
  }
  /** Contacts held. */
  get size(): number {
    return this.count;
  }
  /** Add one uploader's contacts (decoded contact-log entries). */
  add(uploaderId: string, contacts: readonly TcnContact[]): void {
    ensure(typeof uploaderId === 'string', 'uploaderId', 'must be a string');
    contacts.forEach((c, i) => checkTcnContact(c, `contacts[${i}]`));
    for (const contact of contacts) {
      const id = this.table.insert(contact.tcn);
      if (id === this.groups.length) this.groups.push([]);
      (this.groups[id] as { uploader: string; contact: TcnContact }[]).push({ uploader: uploaderId, contact });
      this.count++;
    }
  }
  /** Entries uploaded with this TCN (hash = at least 16 bytes, the TCN first). @internal */
  lookup(hash: Uint8Array): readonly { readonly uploader: string; readonly contact: TcnContact }[] {
    const id = this.table.find(hash);
    return id < 0 ? [] : (this.groups[id] as { uploader: string; contact: TcnContact }[]);
  }
}

/** Mode A: which uploaders heard a TCN of the new (verified) report, in first-seen order. */
export function matchReportAgainstUploads(crypto: CryptoSuite, report: TcnReport, index: TcnUploadIndex, options: TcnMatchOptions = {}): { readonly uploaders: readonly TcnUploaderMatch[]; readonly tcnsDerived: number; readonly truncated: boolean } {
  ensure(index instanceof TcnUploadIndex, 'index', 'must be a TcnUploadIndex');
  const max = maxTcnsOf(options);
  const byUploader = new Map<string, { j: number; contact: TcnContact }[]>();
  const tcnsDerived = forEachReportTcn(crypto, report, max, (hash, j) => {
    for (const { uploader, contact } of index.lookup(hash)) {
      const list = byUploader.get(uploader);
      if (list === undefined) byUploader.set(uploader, [{ j, contact }]);
      else list.push({ j, contact });
    }
  });
  const uploaders = [...byUploader].map(([uploaderId, contacts]) => ({ uploaderId, contacts }));
  return { uploaders, tcnsDerived, truncated: report.j2 - report.j1 + 1 > max };
}

// ------------------------------------------------------------ mode B: published logs vs own sent TCNs

export interface TcnSentMatch {
  /** Position of the published log. */ readonly logIndex: number;
  readonly contact: TcnContact;
  /** UTC day this phone sent the TCN. */ readonly sentDay: number;
}

/**
 * Mode B: contacts in published logs (TCNs positives heard) that are this phone's own sent TCNs,
 * heard within the sent day ± clockSkewMs (default 2 h). Logs are decoded contact logs.
 */
export function matchPublishedContactLogs(sent: SentTcnSet, logs: readonly (readonly TcnContact[])[], options: { readonly clockSkewMs?: number; readonly hashSeed?: number } = {}): { readonly matches: readonly TcnSentMatch[]; readonly contactsChecked: number; readonly outsideSentDay: number } {
  const skew = options.clockSkewMs ?? TCN_SENT_CLOCK_SKEW_MS;
  ensure(Number.isFinite(skew) && skew >= 0 && skew <= TCN_MS_PER_DAY, 'options.clockSkewMs', `must be in [0, ${TCN_MS_PER_DAY}] ms, got ${skew}`);
  ensure(isList(logs), 'logs', 'must be an array of contact lists');
  const table = new Id16Table(options.hashSeed ?? 0, 'options.hashSeed');
  const sentDays: number[][] = [];
  sent.days.forEach((d, k) => {
    ensure(Number.isInteger(d.day) && d.tcns instanceof Uint8Array && d.tcns.length % TCN_BYTES === 0, `sent.days[${k}]`, 'must be a SentTcnDay');
    for (let o = 0; o < d.tcns.length; o += TCN_BYTES) {
      const id = table.insert(d.tcns, o);
      if (id === sentDays.length) sentDays.push([d.day]);
      else (sentDays[id] as number[]).push(d.day);
    }
  });
  const matches: TcnSentMatch[] = [];
  let contactsChecked = 0, outsideSentDay = 0;
  logs.forEach((log, logIndex) => {
    log.forEach((c, i) => checkTcnContact(c, `logs[${logIndex}][${i}]`));
    for (const contact of log) {
      contactsChecked++;
      const id = table.find(contact.tcn);
      if (id < 0) continue;
      const atMs = contact.atMinute * TCN_CONTACT_MINUTE_MS;
      const sentDay = (sentDays[id] as number[]).find((day) => atMs >= day * TCN_MS_PER_DAY - skew && atMs < (day + 1) * TCN_MS_PER_DAY + skew);
      if (sentDay === undefined) outsideSentDay++;
      else matches.push({ logIndex, contact, sentDay });
    }
  });
  return { matches, contactsChecked, outsideSentDay };
}
