/**
 * Key-server distribution (issue 4): the pure client against a model server
 * (fulls and deltas with random additions and withdrawals, missed deltas,
 * clients offline across full dumps, replays, forks).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  applyFile,
  initialDistributionClientState,
  initialPublisherState,
  MAX_INDEX_DELTAS,
  openDistributionFile,
  planFetch,
  publishDelta,
  publishFull,
  type DiagnosisRecord,
  type DistributionClientState,
  type DistributionFile,
  type DistributionIndex,
  type DistributionSigner,
  type FileName,
  type IdentifiedRecord,
  type Publication,
  type PublisherState,
  type RecordId,
} from '../../protocol/keyserver/distribution.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { misuseField } from '../support/misuse.ts';
import {
  reasonOf,
  valueOf,
  KEYS,
  SIGNER,
  tek,
  SEED,
  REPORT,
  idOf,
  NAME_A,
  NAME_B,
  recordArb,
} from '../support/distribution-fixtures.ts';

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
