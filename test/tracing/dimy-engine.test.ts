/**
 * The DIMY engine (actors/tracing/dimy-*.ts; SPECS §4.1, §7.17–21), pure engine calls: the share
 * schedule (one share per slot through the framing, k of an epoch's shares reconstruct its
 * EphID), reception (fewer than k shares insert nothing; both sides of an encounter insert the
 * same EncID), refusals, the DBF pool and retention. The exchange (QBF, CBF): dimy-exchange.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { ReceivedFrame } from '../../actors/ports.ts';
import type { EngineDeps } from '../../actors/tracing/engine.ts';
import { dimyEngine, dimyEngineConfig, type DimyEngineConfig, type DimyState } from '../../actors/tracing/dimy-engine.ts';
import { insertEncIds, positionsOf, unionOf } from '../../actors/tracing/dimy-filters.ts';
import { drbgInit, type DrbgState } from '../../protocol/crypto/drbg.ts';
import { bloomPositions } from '../../protocol/dimy/bloom.ts';
import { decodeDimyShare, dimyEncId, dimyEphId, encodeDimyShare, ephIdTag, reconstructEphId, splitEphId, type DimyShare } from '../../protocol/dimy/ephid.ts';
import { decodeFragment, fragment, LEGACY_SERVICE_DATA_BYTES } from '../../protocol/wire/framing.ts';
import { nodeSuite } from '../../services/crypto/node.ts';

const DAY = 86_400_000;
const deps: EngineDeps = { crypto: nodeSuite };
const config = dimyEngineConfig();
const EPOCH = config.epochMs;
/** An epoch boundary on 2026-01-05 (epochs are aligned to the Unix epoch, not to days). */
const T0 = Math.ceil(Date.UTC(2026, 0, 5, 8) / EPOCH) * EPOCH;
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

interface Phone {
  state: DimyState;
  drbg: DrbgState;
  readonly address: string;
  /** The advertising set of the last rotation. */
  payloads: readonly Uint8Array[];
}

function phone(seed: number, c: DimyEngineConfig = config): Phone {
  const init = dimyEngine.init(deps, c, 0, drbgInit(new Uint8Array(32).fill(seed)));
  return { state: init.state, drbg: init.drbg, address: `AA:00:00:00:00:${seed.toString(16).padStart(2, '0')}`, payloads: [] };
}

function rotate(p: Phone, at: number, c: DimyEngineConfig = config): number {
  const r = dimyEngine.rotate(deps, c, p.state, at, p.drbg);
  p.state = r.state;
  p.drbg = r.drbg;
  p.payloads = r.payloads;
  return r.nextAt;
}

/** What a receiver hears of `from`'s current advertising set during one scan window at `at`. */
const framesOf = (from: Phone, at: number): ReceivedFrame[] => from.payloads.map((payload, i) => ({ payload, rssi: -60, at: at + 250 * i, address: from.address }));

function observe(p: Phone, frames: readonly ReceivedFrame[], at: number, c: DimyEngineConfig = config): number {
  const o = dimyEngine.observe(deps, c, p.state, frames, at);
  p.state = o.state;
  return o.refused;
}

/** Reassemble one advertising set (the fragments of one frame) into its share. */
function shareOf(payloads: readonly Uint8Array[]): DimyShare {
  const parts = payloads.map((p) => {
    const f = decodeFragment(p);
    if (!f.ok) throw new Error(f.detail);
    return f.value;
  });
  const body = Buffer.concat(parts.sort((a, b) => a.index - b.index).map((f) => f.chunk));
  const share = decodeDimyShare(new Uint8Array(body.subarray(0, body.length - 4)));
  if (!share.ok) throw new Error(share.detail);
  return share.value;
}

/** Both phones advertise and scan each other in `slots` consecutive slots from `at`. */
function meet(a: Phone, b: Phone, at: number, slots: number): void {
  for (let s = 0; s < slots; s++) {
    const t = at + s * config.shareMs;
    rotate(a, t);
    rotate(b, t);
    observe(a, framesOf(b, t + 1000), t + 4000);
    observe(b, framesOf(a, t + 1000), t + 4000);
  }
}

const dbfPositions = (s: DimyState): number[][] => s.dbfs.map((d) => (d.form === 'sparse' ? positionsOf(d.positions) : []));

describe('DIMY sender: one share per slot (dimy-shares.ts)', () => {
  it('advertises share s + 1 in slot s as ≤ 24-byte fragments, new frame id each slot; any k reconstruct the EphID, verified by its tag', () => {
    const p = phone(1);
    const shares: DimyShare[] = [];
    const frameIds = new Set<number>();
    let t = T0;
    for (let slot = 0; slot < config.n; slot++) {
      const next = rotate(p, t);
      expect(next).toBe(t + config.shareMs);
      expect(p.payloads).toHaveLength(3); // 37-byte share + 4-byte CRC in 19-byte chunks
      for (const f of p.payloads) expect(f.length).toBeLessThanOrEqual(LEGACY_SERVICE_DATA_BYTES);
      frameIds.add((p.payloads[0]?.[1] ?? 0) * 256 + (p.payloads[0]?.[2] ?? 0));
      const share = shareOf(p.payloads);
      expect(share.index).toBe(slot + 1);
      shares.push(share);
      t = next;
    }
    expect(frameIds.size).toBe(config.n);
    expect(p.state.own).toHaveLength(1);
    const own = p.state.own[0];
    if (own === undefined) throw new Error('no EphID');
    const ephId = dimyEphId(nodeSuite, own.secret);
    expect(hex(own.tag)).toBe(hex(ephIdTag(nodeSuite, ephId)));
    for (const pick of [[0, 1, 2], [4, 2, 0], [1, 3, 4]]) {
      const r = reconstructEphId(nodeSuite, pick.map((i) => shares[i] as DimyShare), config.k);
      expect(r.ok && hex(r.value)).toBe(hex(ephId));
    }
    // Two shares are not enough; the next epoch brings a new EphID (new tag).
    expect(reconstructEphId(nodeSuite, shares.slice(0, 2), config.k).ok).toBe(false);
    rotate(p, T0 + EPOCH);
    expect(hex(shareOf(p.payloads).tag)).not.toBe(hex(own.tag));
    expect(shareOf(p.payloads).index).toBe(1);
  });

  it('mid-epoch start, a second rotation in one slot and a diagnosis each start a fresh EphID; a share is never aired twice', () => {
    const p = phone(2);
    const seen = new Set<string>();
    const air = (at: number): void => {
      rotate(p, at);
      const key = hex(p.payloads[0] ?? new Uint8Array()).slice(10);
      expect(seen.has(key)).toBe(false);
      seen.add(key);
    };
    air(T0 + 2 * config.shareMs + 17_000); // slot 2
    expect(shareOf(p.payloads).index).toBe(3);
    const first = hex(shareOf(p.payloads).tag);
    air(T0 + 2 * config.shareMs + 60_000); // same slot again
    expect(hex(shareOf(p.payloads).tag)).not.toBe(first);
    const second = hex(shareOf(p.payloads).tag);
    const report = dimyEngine.report(deps, config, p.state, T0 - DAY, T0 + 3 * config.shareMs + 5, p.drbg);
    expect(report.records).toEqual([]);
    p.state = report.state;
    air(T0 + 3 * config.shareMs + 5);
    expect(hex(shareOf(p.payloads).tag)).not.toBe(second);
    // The retired EphIDs stay for their epoch's late groups, off the air.
    expect(p.state.own.map((o) => o.to)).toEqual([T0 + 2 * config.shareMs + 60_000, T0 + 3 * config.shareMs + 5, T0 + EPOCH]);
  });
});

describe('DIMY receiver: shares → EphID → EncID → DBF (dimy-observe.ts)', () => {
  it('fewer than k shares insert nothing; the k-th inserts one EncID, later shares of the EphID nothing more', () => {
    const a = phone(3);
    const b = phone(4);
    meet(a, b, T0, 2);
    expect(a.state.dbfs).toEqual([]);
    expect(a.state.groups).toHaveLength(1);
    expect(a.state.groups[0]?.shares).toHaveLength(2);
    meet(a, b, T0 + 2 * config.shareMs, 1);
    expect(a.state.dbfs).toHaveLength(1);
    expect(a.state.dbfs[0]?.items).toBe(1);
    expect(a.state.groups[0]?.shares).toBeNull();
    meet(a, b, T0 + 3 * config.shareMs, 2);
    expect(a.state.dbfs[0]?.items).toBe(1);
    expect(a.state.counters.sharesRepeated).toBeGreaterThanOrEqual(2);
  });

  it('the EncID is symmetric: both phones insert X25519(a, B) = X25519(b, A) into their DBFs (and keep no EncID)', () => {
    const a = phone(5);
    const b = phone(6);
    meet(a, b, T0, 3);
    const ownA = a.state.own[0];
    const ownB = b.state.own[0];
    if (ownA === undefined || ownB === undefined) throw new Error('no EphIDs');
    const encId = dimyEncId(nodeSuite, ownA.secret, dimyEphId(nodeSuite, ownB.secret));
    if (!encId.ok) throw new Error(encId.detail);
    const expected = [...new Set(bloomPositions(encId.value))].sort((x, y) => x - y);
    expect(dbfPositions(a.state)).toEqual([expected]);
    expect(dbfPositions(b.state)).toEqual([expected]);
    expect(JSON.stringify(a.state)).not.toContain(hex(encId.value));
    expect(a.state.counters.reconstructed).toBe(1);
    expect(b.state.counters.reconstructed).toBe(1);
  });

  it('shares heard one per scan window need k windows of the same epoch: a contact cut by an epoch boundary inserts nothing', () => {
    const a = phone(7);
    const b = phone(8);
    meet(a, b, T0 + 3 * config.shareMs, 4); // slots 3, 4 | 0, 1 of the next epoch
    expect(a.state.dbfs).toEqual([]);
    expect(a.state.groups).toHaveLength(2);
  });

  it('refuses and counts bad fragments and bad shares; ignores its own shares; a wrong share fails the tag check', () => {
    const a = phone(9);
    const b = phone(10);
    rotate(a, T0);
    rotate(b, T0);
    const good = b.payloads;
    const tampered = good.map((f, i) => (i === 1 ? f.map((x, j) => (j === 8 ? x ^ 1 : x)) : f));
    const notAShare = fragment(new Uint8Array(37).fill(9), 77); // version byte 9
    const frames: ReceivedFrame[] = [
      { payload: new Uint8Array([1, 2, 3]), rssi: -50, at: T0 + 10, address: 'X1' }, // too short
      { payload: new Uint8Array(20).fill(0x42), rssi: -50, at: T0 + 20, address: 'X1' }, // bad magic
      ...tampered.map((payload, i) => ({ payload, rssi: -50, at: T0 + 30 + i, address: 'X2' })), // CRC
      ...notAShare.map((payload, i) => ({ payload, rssi: -50, at: T0 + 40 + i, address: 'X3' })),
      ...a.payloads.map((payload, i) => ({ payload, rssi: -50, at: T0 + 50 + i, address: 'X4' })), // itself
    ];
    expect(observe(a, frames, T0 + 4000)).toBe(4);
    expect(a.state.counters).toMatchObject({ fragmentsRefused: 3, payloadsRefused: 1, sharesOwn: 1, sharesHeard: 0 });
    expect(a.state.refusals).toEqual({ 'fragment:too-short': 1, 'fragment:bad-magic': 1, 'frame:integrity': 1, 'dimy-share:bad-version': 1 });
    // A forged share with b's tag: the reconstruction does not hash to the tag and the group is dropped.
    const ownB = b.state.own[0];
    if (ownB === undefined) throw new Error('no EphID');
    const forged = splitEphId(nodeSuite, dimyEphId(nodeSuite, new Uint8Array(32).fill(1)), new Uint8Array(64).fill(3)).map((s) => ({ ...s, tag: ownB.tag }));
    const send = (share: DimyShare, at: number): void => void observe(a, fragment(encodeDimyShare(share), at % 65536).map((payload) => ({ payload, rssi: -50, at, address: 'X5' })), at);
    send(shareOf(good), T0 + 5000);
    send(forged[1] as DimyShare, T0 + 6000);
    send(forged[2] as DimyShare, T0 + 7000);
    expect(a.state.counters.reconstructRefused).toBe(1);
    expect(a.state.refusals['dimy-ephid:tag-mismatch']).toBe(1);
    expect(a.state.groups).toEqual([]);
    expect(a.state.dbfs).toEqual([]);
  });

  it('holds at most maxGroups share groups (the least recently heard evicted) and drops groups one epoch after theirs', () => {
    const c = dimyEngineConfig({ maxGroups: 3 });
    const a = phone(11, c);
    rotate(a, T0, c);
    const peers = [12, 13, 14, 15].map((seed) => phone(seed, c));
    peers.forEach((p, i) => {
      rotate(p, T0, c);
      observe(a, framesOf(p, T0 + 1000 * i), T0 + 4000, c);
    });
    expect(a.state.groups).toHaveLength(3);
    expect(a.state.counters.groupsEvicted).toBe(1);
    expect(storage(a.state)).toBeGreaterThan(0);
    observe(a, [], T0 + 2 * EPOCH, c);
    expect(a.state.groups).toEqual([]);
    expect(a.state.counters.groupsIncomplete).toBe(3);
  });
});

const storage = (s: DimyState): number => dimyEngine.storageBytes(s);

describe('DIMY DBF pool and retention (dimy-filters.ts)', () => {
  it('one DBF per day, at most dbfCount, older ones expired; oldestHeld stays within the retention', () => {
    const c = dimyEngineConfig({ dbfCount: 3 });
    const a = phone(20, c);
    const day0 = Math.floor(T0 / DAY) * DAY;
    for (let d = 0; d < 5; d++) {
      const b = phone(30 + d, c);
      const at = Math.ceil((T0 + d * DAY) / EPOCH) * EPOCH; // days are not whole epochs
      for (let s = 0; s < 3; s++) {
        const t = at + s * c.shareMs;
        rotate(a, t, c);
        rotate(b, t, c);
        observe(a, framesOf(b, t + 1000), t + 4000, c);
      }
    }
    expect(a.state.dbfs.map((d) => (d.start - day0) / DAY)).toEqual([2, 3, 4]);
    expect(a.state.dbfs.every((d) => d.items === 1 && d.form === 'sparse')).toBe(true);
    const later = T0 + 6 * DAY;
    const expired = dimyEngine.expire(c, a.state, later);
    expect(expired.dbfs.map((d) => (d.start - day0) / DAY)).toEqual([4]);
    expect(expired.own).toEqual([]);
    expect(dimyEngine.oldestHeld(expired)).toBeGreaterThanOrEqual(later - 3 * DAY);
    expect(dimyEngine.expire(c, expired, later)).toBe(expired);
    // Storage: sparse positions (3 bytes per set bit) plus overhead, far below 100 KB per DBF.
    expect(storage(expired)).toBeLessThan(100);
  });

  it('a DBF turns dense once its positions would outgrow the 100 KB of bits, and unions agree across forms', () => {
    // > 33,333 distinct positions: 12,000 EncIDs in one period.
    const encIds = Array.from({ length: 12_000 }, (_, i) => nodeSuite.sha256(new Uint8Array([i & 0xff, i >> 8, 1])));
    const half = insertEncIds([], T0, encIds.slice(0, 6000), 21);
    expect(half[0]?.form).toBe('sparse');
    const full = insertEncIds(half, T0, encIds.slice(6000), 21);
    expect(full[0]?.form).toBe('dense');
    expect(full[0]?.items).toBe(12_000);
    const rest = insertEncIds([], T0 + DAY, encIds.slice(6000), 21);
    expect(hex(unionOf(full).bits)).toBe(hex(unionOf([...half, ...rest]).bits));
    expect(storage({ ...phone(40).state, dbfs: full })).toBeGreaterThanOrEqual(100_000);
  });
});
