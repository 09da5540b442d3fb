/**
 * One run of test/keyserver/key-server-model.test.ts: `Run` drives the
 * key-server machine and the reference model (key-server-model.ts) side by
 * side, journals every input, and compares them after every step; a
 * `Follower` takes every announcement as a phone would; `replay` folds a
 * journal into a fresh machine.
 */
import { expect } from 'vitest';
import type { BlobPublishEffect, Effect } from '../../actors/effects.ts';
import type { Ledger } from '../../actors/key-server/ledger.ts';
import { currentIndex } from '../../actors/key-server/publication.ts';
import { uploadStatus } from '../../actors/key-server/submissions.ts';
import { applyFile, initialDistributionClientState, planFetch, type DistributionClientState } from '../../protocol/keyserver/distribution-client.ts';
import { readDistributionIndex } from '../../protocol/keyserver/distribution-index.ts';
import { recordId, toHex, type DiagnosisRecord } from '../../protocol/keyserver/distribution-records.ts';
import { openDistributionFile } from '../../protocol/keyserver/distribution-signing.ts';
import { keyServerMessages, type AdminResult, type KeysStatusReply, type TrackingRef } from '../../protocol/keyserver/messages.ts';
import { issueUploadCode } from '../../protocol/keyserver/upload-code.ts';
import type { WireValue } from '../../protocol/wire/msgpack.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { codeText, gaenOfDay, ledgerProblems } from './key-server-arbitraries.ts';
import { DAY, KeyServerDriver, KS_PUBLIC_KEYS, packRecords, PEPPER, replyBody, T0, testDeps } from './key-server-fixtures.ts';
import { CONFIG, expiryOf, HOUR, MAX_RECORDS, Model, PERIOD, PROVIDERS, recordOf, RETENTION, SLACK, startsAfter, verifyTcnReport, type Cmd, type MUpload } from './key-server-model.ts';

const registry = keyServerMessages();

// -------------------------------------------------------------------- following the distribution

/** `state` after fetching and applying the files `names` (bytes by name), checking names and signatures. */
function fetchNamed(state: DistributionClientState, names: readonly string[], bytesOf: (name: string) => Uint8Array | undefined): DistributionClientState {
  for (const name of names) {
    const bytes = bytesOf(name);
    if (bytes === undefined) throw new Error(`missing ${name}`);
    const file = openDistributionFile(nodeSuite, KS_PUBLIC_KEYS, name, bytes);
    if (!file.ok) throw new Error(file.detail);
    const applied = applyFile(state, file.value, name);
    if (!applied.ok) throw new Error(applied.detail);
    state = applied.value;
  }
  return state;
}

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
    const from = plan.mode === 'restart' ? initialDistributionClientState() : this.state;
    this.state = fetchNamed(from, plan.names, (name) => this.files.get(name));
  }

  keys(): string[] {
    return Object.keys(this.state.records).sort();
  }
}

/** The records a client holds after fetching, from nothing, what the server's current index names; and whether it started from a full dump. */
function freshClient(ledger: Ledger, at: number): { keys: string[]; full: boolean } {
  const plan = planFetch(initialDistributionClientState(), currentIndex(ledger, at));
  const state = fetchNamed(initialDistributionClientState(), plan.names, (name) => {
    const bytes = ledger.files.get(name);
    if (bytes === undefined) throw new Error(`the index names ${name}, which the server does not hold`);
    return bytes.slice();
  });
  return { keys: Object.keys(state.records).sort(), full: plan.mode === 'full' };
}

// -------------------------------------------------------------------- one run

export interface Input {
  readonly type: string;
  readonly body: WireValue;
  readonly at: number;
  readonly from: string;
}

/** Drives the machine and the model side by side and compares them after every step. */
export class Run {
  readonly ks = new KeyServerDriver(testDeps(verifyTcnReport), CONFIG);
  readonly follower = new Follower();
  readonly model = new Model();
  /** The journal: every input in order (ticks as type 'tick'). */
  readonly journal: Input[] = [];
  readonly effects: Effect[] = [];
  private readonly errors: unknown[] = [];
  now = T0 + 7 * HOUR;
  private phones = 0;
  /** What each accepted upload carried (`echo` uploads carry it again). */
  private readonly carried = new Map<string, readonly DiagnosisRecord[]>();
  ticks = 0;
  /** Fresh clients that started from a full dump (coverage). */
  fullStarts = 0;
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
    if (!decoded.ok) throw new Error(`test bug: ${type} ${decoded.field ?? ''} ${decoded.detail} ${JSON.stringify(wire)}`);
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
    if (this.ks.context.ledger.publisher.seq > 0) {
      const fresh = freshClient(this.ks.context.ledger, at);
      expect(fresh.keys, `fresh client after the tick at ${at}`).toEqual(live);
      if (fresh.full) this.fullStarts++;
    }
  }

  private pickFrom<T>(list: readonly T[], pick: number): T | undefined {
    return list.length === 0 ? undefined : list[pick % list.length];
  }

  /** Withdraw `u` in the model (counting a withdrawal that leaves a record it lost to expiry and another upload brought back). */
  private withdraw(u: MUpload, reason: string): void {
    if (this.model.lostToExpiry(u)) this.count('withdraw leaves a record re-uploaded after expiry');
    this.model.withdraw(u, reason);
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
              this.withdraw(u, 'provider-revoked');
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
        // Half the time one of the accepted uploads (forgotten ones included), else any tracking id handed out;
        // `lost`: first one holding a record it lost to expiry that another upload brought back, if there is one.
        const accepted = [...m.forgotten.keys(), ...m.uploads.keys()];
        const lost = cmd.lost ? [...m.uploads.values()].filter((u) => u.state === 'accepted' && m.lostToExpiry(u)).map((u) => u.trackingId) : [];
        const trackingId = this.pickFrom(lost, cmd.pick) ?? (cmd.accepted ? this.pickFrom(accepted, cmd.pick) : undefined) ?? this.pickFrom(m.tracking, cmd.pick) ?? '0'.repeat(32);
        const upload = m.uploads.get(trackingId);
        const owner = upload?.providerId ?? m.forgotten.get(trackingId)?.providerId;
        const providerId = cmd.own && owner !== undefined ? owner : (PROVIDERS[cmd.p] ?? 'clinic-a');
        const result = this.admin('keys.upload.withdraw', { providerId, trackingId });
        if (upload === undefined || upload.providerId !== providerId) expect(result).toMatchObject({ ok: false, reason: 'unknown-upload' });
        else if (upload.state !== 'accepted') expect(result).toMatchObject({ ok: false, reason: 'not-accepted' });
        else {
          expect(result).toMatchObject({ ok: true, count: 1 });
          this.withdraw(upload, 'withdrawn-by-provider');
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
      case 'late': {
        // The host was down or its timer fired late: the timer fires once, later (publication.ts: "a wall-clock
        // timer fires a little late, a restarted one much later"), mostly off a boundary. Aimed: at or after the
        // next expiry off a boundary (a TCN report's), before the boundary after it.
        const next = Math.min(...[...m.live.values()].map((r) => r.expiresAt).filter((e) => e > this.now && e % PERIOD !== 0));
        const aimed = cmd.aim && Number.isFinite(next);
        this.now = aimed ? next + (cmd.ms % (Math.ceil(next / PERIOD) * PERIOD - next)) : this.now + cmd.ms;
        const boundary = Math.floor(this.now / PERIOD) * PERIOD;
        if ([...m.live.values()].some((r) => r.expiresAt > boundary && r.expiresAt <= this.now)) this.count('late tick sweeps what expired since the boundary');
        this.tick(this.now);
        return;
      }
    }
  }

  private upload(cmd: Extract<Cmd, { k: 'upload' }>): void {
    const m = this.model;
    const codes = [...m.codes.values()];
    const unused = codes.filter((c) => c.used === null && this.now < c.expiresAt);
    const used = codes.filter((c) => c.used !== null);
    let text: string;
    // An echo carries again what an earlier upload carried, one whose records all expired if there is one.
    const gone = [...this.carried].filter(([trackingId]) => m.status(trackingId).state === 'expired').map(([, carried]) => carried);
    const echoed = cmd.echo ? (this.pickFrom(gone, cmd.pick) ?? this.pickFrom([...this.carried.values()], cmd.pick)) : undefined;
    let records = echoed ?? cmd.records.map((r) => recordOf(r, this.now));
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
    // Stale records (already past retention) are skipped; capacity counts the distinct others not live already.
    const entering = records.filter((r) => expiryOf(r, this.now) > this.now);
    const ids = entering.map((r) => recordId(nodeSuite, r));
    const fresh = new Set(ids.filter((id) => !m.live.has(id)));
    if (m.live.size + fresh.size > MAX_RECORDS) return reject('capacity');
    // Counting every copy not live, stale ones included, would have refused it.
    const byCopy = records.filter((r) => !m.live.has(recordId(nodeSuite, r))).length;
    if (m.live.size + byCopy > MAX_RECORDS) this.count('upload accepted near capacity (repeats and stale records not counted)');
    expect(m.tracking).not.toContain(ack.trackingId);
    m.tracking.push(ack.trackingId);
    code.used = { trackingId: ack.trackingId, content, records: packed };
    entering.forEach((r, i) => m.addRef(ids[i] ?? '', expiryOf(r, this.now), ack.trackingId));
    this.carried.set(ack.trackingId, records);
    m.uploads.set(ack.trackingId, { trackingId: ack.trackingId, providerId: code.providerId, at: this.now, ids, state: 'accepted', reason: '' });
    this.count(records.some((r) => r.protocol === 'tcn-report') ? 'upload accepted (tcn)' : 'upload accepted');
    if (new Set(ids).size < ids.length) this.count('upload accepted (a record repeated)');
    if (entering.length < records.length) this.count('upload accepted (stale records skipped)');
  }

  /** The machine equals the model (called after every command). */
  check(): void {
    const ledger = this.ks.context.ledger;
    expect(this.errors).toEqual([]);
    expect(this.ks.actor.getSnapshot().status).toBe('active');
    const live = new Map([...ledger.records].map(([id, r]) => [id, { refs: r.refs, expiresAt: r.expiresAt }]));
    expect(live).toEqual(this.model.counted());
    for (const trackingId of this.model.tracking) expect(uploadStatus(this.ks.context, trackingId)).toEqual(this.model.status(trackingId));
    expect(ledgerProblems(ledger, this.ks.context.config)).toEqual([]);
  }
}

/** Replay a journal into a fresh machine; returns it and the effects. */
export function replay(journal: readonly Input[]): { driver: KeyServerDriver; effects: Effect[] } {
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
