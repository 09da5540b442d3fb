/**
 * The key-server machine (actors/key-server/) against a reference model
 * written here: random command sequences — providers added and revoked
 * (prospectively or retroactively since a random instant), codes registered,
 * uploads with fresh, unknown, retried and reused codes and keys shared
 * between uploads, withdrawals, status queries and publish ticks over
 * simulated days — and after every step:
 *   - the ledger's live records (id → references, expiry) equal the model's;
 *   - every upload's status (accepted / withdrawn / expired / rejected with
 *     its reason / unknown once forgotten) and every admin result equal the
 *     model's;
 *   - the ledger's invariants hold (test/support/key-server-arbitraries.ts);
 *   - after each tick, a client that followed every announcement (verifying
 *     names and signatures) holds exactly the live set.
 * Then the run's journal (every input, in order) replayed into a fresh
 * machine gives the same state digest (ledger.ts `stateDigest`), the same
 * effects (tracking ids, file names and bytes) and the same digest through
 * `keys.server.state`.
 *
 * The model is the documented behaviour (module headers of submissions.ts,
 * admin.ts, publication.ts, ledger.ts), not a copy of the code. Where the
 * machine departs from it, a `bug:` test at the end pins the case and the
 * random sequences stay clear of it: a TCN report is shared only by uploads
 * less than a retention apart (`tcnReport`), late ticks land on a period
 * boundary (`late`), and an upload names each record once (`cmdArb`) with
 * none past retention (`recordRefArb`: at most 3 days back, the retention).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { BlobPublishEffect, Effect } from '../../actors/effects.ts';
import { stateDigest, type Ledger } from '../../actors/key-server/ledger.ts';
import { currentIndex } from '../../actors/key-server/publication.ts';
import type { KeyServerConfig } from '../../actors/key-server/key-server-state.ts';
import { uploadStatus } from '../../actors/key-server/submissions.ts';
import { applyFile, initialDistributionClientState, planFetch, type DistributionClientState } from '../../protocol/keyserver/distribution-client.ts';
import { readDistributionIndex } from '../../protocol/keyserver/distribution-index.ts';
import { recordId, toHex, type DiagnosisRecord } from '../../protocol/keyserver/distribution-records.ts';
import { openDistributionFile } from '../../protocol/keyserver/distribution-signing.ts';
import { keyServerMessages, type AdminResult, type KeysStatusReply, type TrackingRef } from '../../protocol/keyserver/messages.ts';
import { issueUploadCode } from '../../protocol/keyserver/upload-code.ts';
import type { WireValue } from '../../protocol/wire/msgpack.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { codeText, gaenOfDay, ledgerProblems } from '../support/key-server-arbitraries.ts';
import { DAY, KeyServerDriver, KS_PUBLIC_KEYS, MINUTE, packRecords, PEPPER, registerBody, replyBody, T0, tekAt, testDeps, uploadBody } from '../support/key-server-fixtures.ts';

const HOUR = 60 * MINUTE;
const PERIOD = 3 * HOUR;
const RETENTION = 3 * DAY;
const SLACK = DAY;
const MAX_RECORDS = 15;
const CONFIG: Partial<KeyServerConfig> = { periodMs: PERIOD, fullEveryMs: DAY, retentionMs: RETENTION, futureSlackMs: SLACK, maxRecords: MAX_RECORDS, statusMemory: 10_000 };
const PROVIDERS = ['clinic-a', 'clinic-b', 'clinic-c'] as const;
const BAD_TCN = 0xba;
const verifyTcnReport = (report: Uint8Array): boolean => report[0] !== BAD_TCN;
const registry = keyServerMessages();

// -------------------------------------------------------------------- the follower

/** A phone-side client following every announcement (verifies names and signatures); after test/keyserver/key-server.test.ts. */
class Follower {
  state: DistributionClientState = initialDistributionClientState();
  private readonly files = new Map<string, Uint8Array>();

  take(effects: readonly Effect[]): void {
    for (const effect of effects) if (effect.type === 'blob.publish') this.announce(effect);
  }

  private announce(effect: BlobPublishEffect): void {
    // A copy: decoding with msgpackr caches a `dataView` on the bytes it reads, and the effects are compared later.
    for (const blob of effect.blobs) this.files.set(blob.name, blob.bytes.slice());
    const index = readDistributionIndex(effect.announce.body);
    if (!index.ok) throw new Error(index.detail);
    const plan = planFetch(this.state, index.value);
    let state = plan.mode === 'restart' ? initialDistributionClientState() : this.state;
    for (const name of plan.names) {
      const bytes = this.files.get(name);
      if (bytes === undefined) throw new Error(`missing ${name}`);
      const file = openDistributionFile(nodeSuite, KS_PUBLIC_KEYS, name, bytes);
      if (!file.ok) throw new Error(file.detail);
      const applied = applyFile(state, file.value, name);
      if (!applied.ok) throw new Error(applied.detail);
      state = applied.value;
    }
    this.state = state;
  }

  keys(): string[] {
    return Object.keys(this.state.records).sort();
  }
}

// -------------------------------------------------------------------- commands

/** A record named abstractly; its content is fixed when the upload runs (days count back from that day). */
type RecordRef = { readonly kind: 'gaen' | 'dp3t'; readonly n: number; readonly daysAgo: number } | { readonly kind: 'tcn'; readonly n: number; readonly bad: boolean };
type UploadMode = 'fresh' | 'unregistered' | 'retry' | 'reuse-other' | 'any' | 'malformed' | 'chaff';
type Lifetime = 'ms' | 'hour' | 'day' | 'max' | 'too-long';
type Cmd =
  | { readonly k: 'add'; readonly p: number }
  | { readonly k: 'revoke'; readonly p: number; readonly retroactive: boolean; readonly sinceBack: number }
  | { readonly k: 'register'; readonly p: number; readonly codes: readonly Uint8Array[]; readonly lifetime: Lifetime; readonly dup: boolean }
  | { readonly k: 'upload'; readonly mode: UploadMode; readonly pick: number; readonly records: readonly RecordRef[]; readonly future: boolean; readonly bytes: Uint8Array }
  | { readonly k: 'withdraw'; readonly pick: number; readonly accepted: boolean; readonly own: boolean; readonly p: number }
  | { readonly k: 'status'; readonly pick: number }
  | { readonly k: 'wait'; readonly ms: number }
  | { readonly k: 'late'; readonly ms: number };

const providerIdx = fc.nat(PROVIDERS.length - 1);
const recordRefArb: fc.Arbitrary<RecordRef> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('gaen' as const), n: fc.nat(7), daysAgo: fc.integer({ min: -1, max: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('dp3t' as const), n: fc.nat(3), daysAgo: fc.integer({ min: -1, max: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('tcn' as const), n: fc.nat(3), bad: fc.nat(9).map((x) => x === 0) }) },
);
const refKey = (r: RecordRef): string => (r.kind === 'tcn' ? `tcn/${r.n}/${String(r.bad)}` : `${r.kind}/${r.n}/${r.daysAgo}`);
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
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
      // Distinct records per upload (a phone sends each key once; see the capacity bug test).
      records: fc.uniqueArray(recordRefArb, { minLength: 1, maxLength: 5, selector: refKey }),
      future: fc.nat(11).map((x) => x === 0),
      bytes: fc.uint8Array({ minLength: 10, maxLength: 10 }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('withdraw' as const), pick: fc.nat(), accepted: fc.boolean(), own: fc.nat(4).map((x) => x > 0), p: providerIdx }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('status' as const), pick: fc.nat() }) },
  { weight: 6, arbitrary: fc.record({ k: fc.constant('wait' as const), ms: fc.oneof(fc.integer({ min: 1, max: 30 * MINUTE }), fc.integer({ min: 1, max: 8 * HOUR }), fc.integer({ min: DAY, max: 2 * DAY })) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('late' as const), ms: fc.integer({ min: 1, max: 4 * DAY }) }) },
);

// -------------------------------------------------------------------- the reference model

interface MCode {
  readonly text: string;
  readonly digest: Uint8Array;
  readonly providerId: string;
  readonly expiresAt: number;
  used: { readonly trackingId: string; readonly content: string; readonly records: Uint8Array } | null;
}
interface MUpload {
  readonly trackingId: string;
  readonly providerId: string;
  readonly at: number;
  readonly ids: readonly string[];
  state: 'accepted' | 'withdrawn';
  reason: string;
}
interface MRecord {
  refs: number;
  expiresAt: number;
}

class Model {
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

  addRef(id: string, expiresAt: number): void {
    const r = this.live.get(id);
    if (r === undefined) this.live.set(id, { refs: 1, expiresAt });
    else {
      r.refs++;
      r.expiresAt = Math.max(r.expiresAt, expiresAt);
    }
  }

  withdraw(u: MUpload, reason: string): void {
    u.state = 'withdrawn';
    u.reason = reason;
    for (const id of u.ids) {
      const r = this.live.get(id);
      if (r === undefined) continue; // expired already
      if (--r.refs === 0) this.live.delete(id);
    }
  }

  /** A publish tick at `at`: records past retention leave; uploads two retentions old and codes one retention past expiry are forgotten. */
  tick(at: number): void {
    for (const [id, r] of this.live) if (r.expiresAt <= at) this.live.delete(id);
    for (const [id, u] of this.uploads) {
      if (u.at + 2 * RETENTION > at) break;
      this.uploads.delete(id);
      this.forgotten.set(id, u);
    }
    for (const [text, c] of this.codes) if (c.expiresAt + RETENTION <= at) this.codes.delete(text);
  }
}

// -------------------------------------------------------------------- records

/** A TCN report: content fixed by (n, bad) and the retention window the upload falls in. */
function tcnReport(n: number, bad: boolean, at: number): Uint8Array {
  const report = new Uint8Array(150).fill(0x11);
  report[0] = bad ? BAD_TCN : 0x01;
  report[1] = n;
  // Two uploads of one report are less than a retention apart, so its first copy has not expired when
  // the second arrives (a report re-uploaded after expiry trips the bug pinned at the end of this file).
  new DataView(report.buffer).setUint32(2, Math.floor(at / RETENTION));
  return report;
}

function recordOf(ref: RecordRef, at: number): DiagnosisRecord {
  const today = Math.floor(at / DAY);
  switch (ref.kind) {
    case 'gaen':
      return gaenOfDay(Uint8Array.of(...new Uint8Array(15).fill(0x5a), ref.n), today - ref.daysAgo);
    case 'dp3t':
      return { protocol: 'dp3t-seed', seed: nodeSuite.sha256(Uint8Array.of(ref.n)), day: today - ref.daysAgo };
    case 'tcn':
      return { protocol: 'tcn-report', report: tcnReport(ref.n, ref.bad, at) };
  }
}

/** Documented expiry (submissions.ts `recordExpiry`): own time + retention; TCN reports: upload time + retention. */
function expiryOf(record: DiagnosisRecord, at: number): number {
  switch (record.protocol) {
    case 'gaen-tek':
      return (record.rollingStartIntervalNumber + record.rollingPeriod) * 600_000 + RETENTION;
    case 'dp3t-seed':
      return (record.day + 1) * DAY + RETENTION;
    case 'tcn-report':
      return at + RETENTION;
  }
}

function startsAfter(record: DiagnosisRecord, latest: number): boolean {
  if (record.protocol === 'gaen-tek') return record.rollingStartIntervalNumber * 600_000 > latest;
  if (record.protocol === 'dp3t-seed') return record.day * DAY > latest;
  return false;
}

// -------------------------------------------------------------------- one run

interface Input {
  readonly type: string;
  readonly body: WireValue;
  readonly at: number;
  readonly from: string;
}

/** Drives the machine and the model side by side and compares them after every step. */
class Run {
  readonly ks = new KeyServerDriver(testDeps(verifyTcnReport), CONFIG);
  readonly follower = new Follower();
  readonly model = new Model();
  /** The journal: every input in order (ticks as type 'tick'). */
  readonly journal: Input[] = [];
  readonly effects: Effect[] = [];
  private readonly errors: unknown[] = [];
  now = T0 + 7 * HOUR;
  private phones = 0;
  ticks = 0;
  outcomes = new Map<string, number>();

  constructor() {
    this.ks.actor.subscribe({ error: (err: unknown) => this.errors.push(err) });
    this.journal.push({ type: 'start', body: null, at: this.now, from: '' });
    this.effects.push(...this.ks.start(this.now));
  }

  private count(outcome: string): void {
    this.outcomes.set(outcome, (this.outcomes.get(outcome) ?? 0) + 1);
  }

  /** Send a message as the host would: its wire body through the registry's decoder first. */
  private send(type: string, wire: WireValue, from: string): Effect[] {
    const decoded = registry.decodeBody(type, wire);
    if (!decoded.ok) throw new Error(`test bug: ${type} ${decoded.field ?? ""} ${decoded.detail} ${JSON.stringify(wire)}`);
    this.journal.push({ type, body: wire, at: this.now, from });
    const effects = this.ks.msg(type, decoded.value, this.now, from);
    this.effects.push(...effects);
    return effects;
  }

  private admin(type: string, wire: WireValue): AdminResult {
    return replyBody<AdminResult>(this.send(type, wire, 'operator/op'), 'keys.admin.result');
  }

  private tick(at: number): void {
    this.journal.push({ type: 'tick', body: null, at, from: '' });
    const effects = this.ks.tick(at);
    this.effects.push(...effects);
    this.ticks++;
    this.model.tick(at);
    this.follower.take(effects);
    const live = [...this.model.live.keys()].sort();
    expect(this.follower.keys(), `follower after the tick at ${at}`).toEqual(live);
    // A client starting now, from the current index and the files it names (a full dump and the deltas after it).
    if (this.ks.context.ledger.publisher.seq > 0) expect(freshClientKeys(this.ks.context.ledger, at), `fresh client after the tick at ${at}`).toEqual(live);
  }

  private pickFrom<T>(list: readonly T[], pick: number): T | undefined {
    return list.length === 0 ? undefined : list[pick % list.length];
  }

  exec(cmd: Cmd): void {
    const m = this.model;
    switch (cmd.k) {
      case 'add': {
        const providerId = PROVIDERS[cmd.p] ?? 'clinic-a';
        const existing = m.providers.get(providerId);
        const result = this.admin('keys.provider.add', { providerId });
        if (existing !== undefined && existing.revokedAt !== null) expect(result).toMatchObject({ ok: false, reason: 'provider-revoked' });
        else {
          expect(result).toMatchObject({ ok: true, count: existing === undefined ? 1 : 0 });
          if (existing === undefined) m.providers.set(providerId, { revokedAt: null });
        }
        return;
      }
      case 'revoke': {
        const providerId = PROVIDERS[cmd.p] ?? 'clinic-a';
        const since = Math.max(0, this.now - cmd.sinceBack);
        const result = this.admin('keys.provider.revoke', { providerId, retroactive: cmd.retroactive, since: cmd.retroactive ? since : 0 });
        const provider = m.providers.get(providerId);
        if (provider === undefined) {
          expect(result).toMatchObject({ ok: false, reason: 'unknown-provider' });
          return;
        }
        provider.revokedAt ??= this.now;
        let withdrawn = 0;
        if (cmd.retroactive) {
          for (const u of m.uploads.values()) {
            if (u.providerId === providerId && u.at >= since && u.state === 'accepted') {
              m.withdraw(u, 'provider-revoked');
              withdrawn++;
            }
          }
        }
        expect(result).toMatchObject({ ok: true, count: withdrawn });
        this.count(cmd.retroactive ? (withdrawn > 0 ? 'revoke retroactive withdrew' : 'revoke retroactive') : 'revoke prospective');
        return;
      }
      case 'register': {
        const providerId = PROVIDERS[cmd.p] ?? 'clinic-a';
        const lifetimeMs = { ms: 1, hour: HOUR, day: DAY, max: RETENTION, 'too-long': RETENTION + 1 }[cmd.lifetime];
        const expiresAt = this.now + lifetimeMs;
        const issued = cmd.codes.map((bytes) => issueUploadCode(nodeSuite, { providerId, randomBytes: bytes, pepper: PEPPER, issuedAt: this.now }));
        const texts = issued.map((c) => c.text);
        const digests = issued.map((c) => c.record.digest);
        // A duplicate: a code already registered, or the same one twice in the message.
        const again = this.pickFrom([...m.codes.values()], cmd.codes.length);
        if (cmd.dup && again !== undefined) digests.push(again.digest);
        else if (cmd.dup && digests[0] !== undefined) digests.push(digests[0]);
        const packed = new Uint8Array(digests.length * 32);
        digests.forEach((d, i) => packed.set(d, i * 32));
        const result = this.admin('keys.codes.register', { providerId, digests: packed, lifetimeMs });
        m.printed.push(...texts);
        const provider = m.providers.get(providerId);
        const hexes = digests.map(toHex);
        const known = new Set([...m.codes.values()].map((c) => toHex(c.digest)));
        if (provider === undefined) expect(result).toMatchObject({ ok: false, reason: 'unknown-provider' });
        else if (provider.revokedAt !== null) expect(result).toMatchObject({ ok: false, reason: 'provider-revoked' });
        else if (lifetimeMs > RETENTION) expect(result).toMatchObject({ ok: false, reason: 'too-long' });
        else if (hexes.some((h) => known.has(h)) || new Set(hexes).size !== hexes.length) expect(result).toMatchObject({ ok: false, reason: 'duplicate-code' });
        else {
          expect(result).toMatchObject({ ok: true, count: digests.length });
          issued.forEach((c) => m.codes.set(c.text, { text: c.text, digest: c.record.digest, providerId, expiresAt, used: null }));
        }
        this.count(result.ok ? 'register ok' : `register ${result.reason}`);
        return;
      }
      case 'upload':
        this.upload(cmd);
        return;
      case 'withdraw': {
        // Half the time one of the accepted uploads (forgotten ones included), else any tracking id handed out.
        const accepted = [...m.forgotten.keys(), ...m.uploads.keys()];
        const trackingId = (cmd.accepted ? this.pickFrom(accepted, cmd.pick) : undefined) ?? this.pickFrom(m.tracking, cmd.pick) ?? '0'.repeat(32);
        const upload = m.uploads.get(trackingId);
        const owner = upload?.providerId ?? m.forgotten.get(trackingId)?.providerId;
        const providerId = cmd.own && owner !== undefined ? owner : (PROVIDERS[cmd.p] ?? 'clinic-a');
        const result = this.admin('keys.upload.withdraw', { providerId, trackingId });
        if (upload === undefined || upload.providerId !== providerId) expect(result).toMatchObject({ ok: false, reason: 'unknown-upload' });
        else if (upload.state !== 'accepted') expect(result).toMatchObject({ ok: false, reason: 'not-accepted' });
        else {
          expect(result).toMatchObject({ ok: true, count: 1 });
          m.withdraw(upload, 'withdrawn-by-provider');
        }
        this.count(result.ok ? 'withdraw ok' : `withdraw ${result.reason}`);
        return;
      }
      case 'status': {
        const trackingId = this.pickFrom(m.tracking, cmd.pick) ?? 'f'.repeat(32);
        const reply = replyBody<KeysStatusReply>(this.send('keys.status', { trackingId }, 'phone/asker'), 'keys.status.reply');
        expect(reply).toEqual(m.status(trackingId));
        this.count(`status ${reply.state}`);
        return;
      }
      case 'wait': {
        const target = this.now + cmd.ms;
        for (let b = (Math.floor(this.now / PERIOD) + 1) * PERIOD; b <= target; b += PERIOD) {
          this.now = b;
          this.tick(b);
        }
        this.now = target;
        return;
      }
      case 'late':
        // The host was down: the timer fires once, much later (publication.ts: "a restarted one much later"),
        // on a boundary — off one, records that expired since the last boundary stay (see the bug tests).
        this.now = Math.ceil((this.now + cmd.ms) / PERIOD) * PERIOD;
        this.tick(this.now);
        return;
    }
  }

  private upload(cmd: Extract<Cmd, { k: 'upload' }>): void {
    const m = this.model;
    const codes = [...m.codes.values()];
    const unused = codes.filter((c) => c.used === null && this.now < c.expiresAt);
    const used = codes.filter((c) => c.used !== null);
    let text: string;
    let records = cmd.records.map((r) => recordOf(r, this.now));
    if (cmd.future) records = [...records, gaenOfDay(Uint8Array.of(...new Uint8Array(15).fill(0xf0), 0), Math.floor(this.now / DAY) + 2)];
    let packed = packRecords(records);
    const retryOf = cmd.mode === 'retry' ? this.pickFrom(used, cmd.pick) : undefined;
    if (retryOf !== undefined && retryOf.used !== null) {
      text = retryOf.text;
      packed = retryOf.used.records;
    } else if ((cmd.mode === 'reuse-other' || cmd.mode === 'retry') && used.length > 0) text = this.pickFrom(used, cmd.pick)?.text ?? '';
    else if (cmd.mode === 'any' && m.printed.length > 0) text = this.pickFrom(m.printed, cmd.pick) ?? '';
    else if ((cmd.mode === 'fresh' || cmd.mode === 'chaff' || cmd.mode === 'malformed') && unused.length > 0) text = this.pickFrom(unused, cmd.pick)?.text ?? '';
    else text = codeText(cmd.bytes);
    if (cmd.mode === 'malformed') packed = Uint8Array.of(...packed, 0x7f);
    const chaff = cmd.mode === 'chaff';
    const from = `phone/u${++this.phones}`; // one phone per upload: the lockout (fuzzed elsewhere) stays out of the model
    const ack = replyBody<TrackingRef>(this.send('keys.upload', { code: text, records: packed, chaff, padding: new Uint8Array(chaff ? 0 : 7) }, from), 'keys.upload.ack');

    // The documented order of checks (submissions.ts header).
    const reject = (reason: string): void => {
      expect(m.tracking).not.toContain(ack.trackingId);
      m.tracking.push(ack.trackingId);
      m.rejected.set(ack.trackingId, reason);
      this.count(`upload ${reason}`);
    };
    const content = toHex(packed);
    const code = m.codes.get(text);
    if (chaff) {
      expect(m.tracking).not.toContain(ack.trackingId);
      m.tracking.push(ack.trackingId);
      m.chaff.add(ack.trackingId);
      this.count('upload chaff');
      return;
    }
    if (cmd.mode === 'malformed') return reject('malformed');
    if (code === undefined) return reject('unknown-code');
    if (code.used !== null) {
      if (code.used.content !== content) return reject('used');
      expect(ack.trackingId, 'a retry gets the original tracking id').toBe(code.used.trackingId);
      this.count('upload retry');
      return;
    }
    if (this.now >= code.expiresAt) return reject('expired');
    const revokedAt = m.providers.get(code.providerId)?.revokedAt ?? null;
    if (revokedAt !== null && revokedAt <= this.now) return reject('provider-revoked');
    if (records.some((r) => startsAfter(r, this.now + SLACK))) return reject('future-key');
    if (records.some((r) => r.protocol === 'tcn-report' && !verifyTcnReport(r.report))) return reject('bad-tcn-signature');
    const ids = records.map((r) => recordId(nodeSuite, r));
    const fresh = new Set(ids.filter((id) => !m.live.has(id)));
    if (m.live.size + fresh.size > MAX_RECORDS) return reject('capacity');
    expect(m.tracking).not.toContain(ack.trackingId);
    m.tracking.push(ack.trackingId);
    code.used = { trackingId: ack.trackingId, content, records: packed };
    records.forEach((r, i) => m.addRef(ids[i] ?? '', expiryOf(r, this.now)));
    m.uploads.set(ack.trackingId, { trackingId: ack.trackingId, providerId: code.providerId, at: this.now, ids, state: 'accepted', reason: '' });
    this.count(records.some((r) => r.protocol === 'tcn-report') ? 'upload accepted (tcn)' : 'upload accepted');
  }

  /** The machine equals the model (called after every command). */
  check(): void {
    const ledger = this.ks.context.ledger;
    expect(this.errors).toEqual([]);
    expect(this.ks.actor.getSnapshot().status).toBe('active');
    const live = new Map([...ledger.records].map(([id, r]) => [id, { refs: r.refs, expiresAt: r.expiresAt }]));
    expect(live).toEqual(this.model.live);
    for (const trackingId of this.model.tracking) expect(uploadStatus(this.ks.context, trackingId)).toEqual(this.model.status(trackingId));
    expect(ledgerProblems(ledger, this.ks.context.config)).toEqual([]);
  }
}

/** Fresh clients that started from a full dump (coverage). */
let fullStarts = 0;

/** The records a client holds after fetching, from nothing, what the server's current index names. */
function freshClientKeys(ledger: Ledger, at: number): string[] {
  const index = currentIndex(ledger, at);
  const plan = planFetch(initialDistributionClientState(), index);
  let state = initialDistributionClientState();
  for (const name of plan.names) {
    const bytes = ledger.files.get(name);
    if (bytes === undefined) throw new Error(`the index names ${name}, which the server does not hold`);
    const file = openDistributionFile(nodeSuite, KS_PUBLIC_KEYS, name, bytes.slice());
    if (!file.ok) throw new Error(file.detail);
    const applied = applyFile(state, file.value, name);
    if (!applied.ok) throw new Error(applied.detail);
    state = applied.value;
  }
  if (plan.mode === 'full') fullStarts++;
  return Object.keys(state.records).sort();
}

/** Replay a journal into a fresh machine; returns it and the effects. */
function replay(journal: readonly Input[]): { driver: KeyServerDriver; effects: Effect[] } {
  const driver = new KeyServerDriver(testDeps(verifyTcnReport), CONFIG);
  const effects: Effect[] = [];
  for (const input of journal) {
    if (input.type === 'start') effects.push(...driver.start(input.at));
    else if (input.type === 'tick') effects.push(...driver.tick(input.at));
    else {
      const decoded = registry.decodeBody(input.type, input.body);
      if (!decoded.ok) throw new Error(decoded.detail);
      effects.push(...driver.msg(input.type, decoded.value, input.at, input.from));
    }
  }
  return { driver, effects };
}

// -------------------------------------------------------------------- the tests

describe('key server against a reference model (issue 4)', () => {
  const RUNS = 120;
  it(`${RUNS} random sequences of 30–80 commands over simulated days: live records, statuses, admin results and a following client match the model after every step; a replayed journal gives the same digest`, () => {
    const totals = new Map<string, number>();
    let commands = 0;
    let ticks = 0;
    fc.assert(
      fc.property(fc.array(cmdArb, { minLength: 30, maxLength: 80 }), (cmds) => {
        const run = new Run();
        // Every run starts with one provider and a few codes, so uploads have something to redeem.
        run.exec({ k: 'add', p: 0 });
        run.exec({ k: 'register', p: 0, codes: [0, 1, 2].map((i) => nodeSuite.sha256(Uint8Array.of(i, cmds.length)).slice(0, 10)), lifetime: 'day', dup: false });
        for (const cmd of cmds) {
          run.exec(cmd);
          run.check();
        }
        // Run out the clock past every retention: everything expires and the client follows to empty.
        run.exec({ k: 'wait', ms: RETENTION + 2 * DAY });
        run.check();
        expect(run.model.live.size).toBe(0);
        expect(run.follower.keys()).toEqual([]);
        commands += cmds.length;
        ticks += run.ticks;
        for (const [k, v] of run.outcomes) totals.set(k, (totals.get(k) ?? 0) + v);

        // Determinism: the journal replayed into a fresh machine re-creates state, ids and files.
        const again = replay(run.journal);
        const digest = stateDigest(nodeSuite, run.ks.context.ledger);
        expect(stateDigest(nodeSuite, again.driver.context.ledger)).toBe(digest);
        expect(again.effects).toEqual(run.effects);
        const viaMessage = replyBody<AdminResult>(again.driver.msg('keys.server.state', {}, run.now, 'operator/op'), 'keys.admin.result');
        expect(viaMessage.stateDigest).toBe(digest);
      }),
      { numRuns: RUNS, seed: 4_200_001 },
    );
    expect(commands).toBeGreaterThan(RUNS * 30);
    expect(ticks).toBeGreaterThan(RUNS * 10);
    expect(fullStarts).toBeGreaterThan(0); // fresh clients started from a full dump
    // The sequences reach every outcome the model knows.
    for (const outcome of [
      'upload accepted',
      'upload accepted (tcn)',
      'upload retry',
      'upload chaff',
      'upload malformed',
      'upload unknown-code',
      'upload used',
      'upload expired',
      'upload provider-revoked',
      'upload future-key',
      'upload bad-tcn-signature',
      'upload capacity',
      'withdraw ok',
      'withdraw unknown-upload',
      'withdraw not-accepted',
      'status accepted',
      'status withdrawn',
      'status expired',
      'status rejected',
      'status unknown',
      'register ok',
      'register duplicate-code',
      'register too-long',
      'revoke retroactive withdrew',
      'revoke prospective',
    ]) {
      expect([...totals.keys()], outcome).toContain(outcome);
    }
  }, 60_000);
});

// -------------------------------------------------------------------- bugs found (actors/key-server/, not fixed here)

describe('key server: bugs found by the model', () => {
  function server(config: Partial<KeyServerConfig> = {}): KeyServerDriver {
    const ks = new KeyServerDriver(testDeps(), config);
    ks.start(T0);
    ks.msg('keys.provider.add', { providerId: 'clinic-a' }, T0, 'operator/op');
    return ks;
  }
  let n = 0;
  function code(ks: KeyServerDriver, at: number): string {
    const issued = issueUploadCode(nodeSuite, { providerId: 'clinic-a', randomBytes: nodeSuite.sha256(Uint8Array.of(++n)).slice(0, 10), pepper: PEPPER, issuedAt: at });
    ks.msg('keys.codes.register', registerBody(issued), at, 'operator/op');
    return issued.text;
  }
  function upload(ks: KeyServerDriver, records: DiagnosisRecord[], at: number): string {
    return replyBody<TrackingRef>(ks.msg('keys.upload', uploadBody(code(ks, at), records), at, `phone/${at}`), 'keys.upload.ack').trackingId;
  }
  const statusOf = (ks: KeyServerDriver, trackingId: string, at: number): KeysStatusReply =>
    replyBody<KeysStatusReply>(ks.msg('keys.status', { trackingId }, at, 'phone/asker'), 'keys.status.reply');

  it('bug: withdrawing an upload whose TCN report expired removes the same report re-uploaded later by another live upload', () => {
    const ks = server();
    const report: DiagnosisRecord = { protocol: 'tcn-report', report: new Uint8Array(150).fill(7) };
    const first = upload(ks, [report], T0 + 1);
    // Ticks past the 14-day retention: the report leaves distribution (refs → 0, record deleted).
    for (let t = T0 + 6 * HOUR; t <= T0 + 15 * DAY; t += 6 * HOUR) ks.tick(t);
    expect(ks.context.ledger.records.size).toBe(0);
    expect(statusOf(ks, first, T0 + 15 * DAY).state).toBe('expired');
    // The same report uploaded again (TCN reports expire from their upload time): live again, refs 1.
    const second = upload(ks, [report], T0 + 15 * DAY + 1);
    expect(ks.context.ledger.records.size).toBe(1);
    // The provider withdraws the first, expired upload (allowed: its state is still 'accepted').
    const result = replyBody<AdminResult>(ks.msg('keys.upload.withdraw', { providerId: 'clinic-a', trackingId: first }, T0 + 15 * DAY + 2, 'operator/op'), 'keys.admin.result');
    expect(result.ok).toBe(true);
    // Expected: the second upload still holds its report. Actual: withdraw() dropped a reference the first
    // upload no longer held (sweepExpired zeroed it), so the report left distribution and the second,
    // one-millisecond-old upload reads 'expired'.
    expect(ks.context.ledger.records.size).toBe(1);
    expect(statusOf(ks, second, T0 + 15 * DAY + 3)).toMatchObject({ state: 'accepted', records: 1 });
  });

  it('bug: a publish tick off a period boundary (a late timer) keeps TCN reports that expired since the last boundary', () => {
    const ks = server();
    const report: DiagnosisRecord = { protocol: 'tcn-report', report: new Uint8Array(150).fill(9) };
    const id = upload(ks, [report], T0 + 1); // past retention from T0 + 14 days + 1 ms
    for (let t = T0 + 6 * HOUR; t <= T0 + 14 * DAY; t += 6 * HOUR) ks.tick(t);
    expect(ks.context.ledger.records.size).toBe(1);
    // The timer due at the next boundary fires five minutes late (publication.ts: "a wall-clock timer fires a little late").
    ks.tick(T0 + 14 * DAY + 5 * MINUTE);
    // Expected (publication.ts step 1, Ledger.sweepExpired: "every record past retention at `now`"): gone, a deletion in
    // this tick's delta. Actual: sweepExpired only visits buckets ≤ floor(now / periodMs), and the report's bucket is
    // ceil(expiresAt / periodMs), one more: it stays in distribution until the next tick.
    expect(ks.context.ledger.records.size).toBe(0);
    expect(statusOf(ks, id, T0 + 14 * DAY + 6 * MINUTE).state).toBe('expired');
  });

  it('bug: the capacity check counts a record repeated within one upload once per copy', () => {
    const ks = server({ maxRecords: 2 });
    // Two distinct new records, one of them twice: distribution would hold 2 ≤ maxRecords.
    const id = upload(ks, [tekAt(1, T0), tekAt(1, T0), tekAt(2, T0)], T0 + 1);
    expect(statusOf(ks, id, T0 + 2)).toMatchObject({ state: 'accepted' });
    expect(ks.context.ledger.records.size).toBe(2);
  });

  it('bug: the capacity check counts stale records, which never enter distribution', () => {
    const ks = server({ maxRecords: 1 });
    // One fresh key and two past retention (skipped as stale): distribution would hold 1 ≤ maxRecords.
    const id = upload(ks, [tekAt(1, T0, 1), tekAt(2, T0, 20), tekAt(3, T0, 21)], T0 + 1);
    expect(statusOf(ks, id, T0 + 2)).toMatchObject({ state: 'accepted', records: 1 });
    expect(ks.context.ledger.records.size).toBe(1);
  });
});
