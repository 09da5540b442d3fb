/**
 * DIMY receiving side (SPECS §4.1): fragments → shares → EphIDs → EncIDs → today's DBF.
 *
 * 1. Fragments are reassembled per scan window (protocol/wire/framing.ts, keyed by the sender's
 *    address): a share's 3 fragments go out in 750 ms, so they complete inside one 4 s window
 *    or not at all, and nothing half-received has to outlive the window. Undecodable fragments,
 *    CRC failures and completed payloads that are not a version-1 share are refused (counted
 *    per `codec:reason`, and returned as refused frames).
 * 2. Shares are grouped by (tag, epoch of the time heard). The epoch is part of the key because
 *    epochs are aligned on every phone: shares heard in one epoch belong to that epoch's EphID,
 *    so a rare 24-bit tag collision across epochs never mixes two EphIDs. Groups are bounded
 *    (maxGroups; the least recently heard is evicted) and dropped one epoch after theirs ended.
 *    Shares carrying an own tag (the phone hearing itself) are ignored.
 * 3. At k distinct shares the EphID is reconstructed and checked against the tag
 *    (reconstructEphId); a mismatch drops the group (paper: shares are discarded).
 * 4. EncID = X25519(own secret, EphID), with the secret of the own EphID that was on the air
 *    when the group's first share was heard. Both phones of an encounter were then in the same
 *    epoch, advertising the EphIDs the other one reconstructs, so both compute g^{xy}: the
 *    same EncID (the paper's symmetry, which unaligned epochs would break). It goes into the
 *    DBF of the period it was completed in and is then forgotten (paper §4.1: "inserted into
 *    the DBF and immediately deleted"); the group stays as a tombstone so the EphID's later
 *    shares are not inserted again.
 *
 * A receiver needs k windows of the same EphID: asymmetric reception (one side completes, the
 * other does not) leaves the EncID in one DBF only, which can never match.
 */
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import { decodeDimyShare, dimyEncId, reconstructEphId, type DimyShare } from '../../protocol/dimy/ephid.ts';
import type { Rejection } from '../../protocol/errors.ts';
import { createReassembly, reassemble } from '../../protocol/wire/framing.ts';
import type { ReceivedFrame, SimMillis } from '../ports.ts';
import type { DimyEngineConfig } from './dimy-config.ts';
import { insertEncIds, periodStart } from './dimy-filters.ts';
import { epochOf, liveOwn, ownAt } from './dimy-shares.ts';
import { countDimy, hexOf, sameBytes, type DimyCounter, type DimyShareGroup, type DimyState } from './dimy-state.ts';

/** Per-window reassembly bounds: a crowd of 100 phones × one share frame each, a little more for strays. */
const WINDOW_REASSEMBLY_LIMITS = { maxPendingFrames: 256, maxPendingBytes: 32 * 1024, maxCompletedRemembered: 256 } as const;

interface Work {
  counters: Partial<Record<DimyCounter, number>>;
  refusals: Record<string, number>;
  groups: Map<string, DimyShareGroup>;
  /** EncIDs completed in this window, with the time of the share that completed them. */
  encIds: { at: SimMillis; encId: Uint8Array }[];
}

const bump = (w: Work, name: DimyCounter): void => {
  w.counters[name] = (w.counters[name] ?? 0) + 1;
};
const refuse = (w: Work, rejection: Rejection): void => {
  const key = `${rejection.codec}:${rejection.reason}`;
  w.refusals[key] = (w.refusals[key] ?? 0) + 1;
};

/** Groups of epochs before the previous one are of no use any more (their EphIDs are off the air). */
export function pruneGroups(config: DimyEngineConfig, groups: readonly DimyShareGroup[], at: SimMillis): { groups: readonly DimyShareGroup[]; incomplete: number } {
  const oldest = epochOf(config, at) - 1;
  const kept = groups.filter((g) => g.epoch >= oldest);
  if (kept.length === groups.length) return { groups, incomplete: 0 };
  return { groups: kept, incomplete: groups.filter((g) => g.epoch < oldest && g.shares !== null).length };
}

function evictOldest(w: Work): void {
  let victim: DimyShareGroup | undefined;
  for (const g of w.groups.values()) if (victim === undefined || g.lastAt < victim.lastAt) victim = g;
  if (victim === undefined) return;
  w.groups.delete(victim.key);
  bump(w, 'groupsEvicted');
}

function onShare(crypto: CryptoSuite, config: DimyEngineConfig, state: DimyState, w: Work, share: DimyShare, at: SimMillis): void {
  if (state.own.some((o) => sameBytes(o.tag, share.tag))) return bump(w, 'sharesOwn');
  bump(w, 'sharesHeard');
  const epoch = epochOf(config, at);
  const key = `${hexOf(share.tag)}:${epoch}`;
  const group = w.groups.get(key);
  if (group?.shares === null) return bump(w, 'sharesRepeated');
  const held = group?.shares ?? [];
  const same = held.find((s) => s.index === share.index);
  if (same !== undefined) return bump(w, sameBytes(same.bytes, share.bytes) ? 'sharesRepeated' : 'sharesConflicting');
  const shares = [...held, { index: share.index, bytes: share.bytes }];
  const next: DimyShareGroup = { key, tag: share.tag, epoch, firstAt: group?.firstAt ?? at, lastAt: at, shares };
  if (group === undefined && w.groups.size >= config.maxGroups) evictOldest(w);
  w.groups.set(key, next);
  if (shares.length < config.k) return;
  const ephId = reconstructEphId(crypto, shares.slice(0, config.k).map((s) => ({ tag: share.tag, ...s })), config.k);
  if (!ephId.ok) {
    bump(w, 'reconstructRefused');
    refuse(w, ephId);
    w.groups.delete(key);
    return;
  }
  const mine = ownAt(state.own, next.firstAt);
  if (mine === undefined) {
    bump(w, 'noOwnSecret');
    w.groups.delete(key);
    return;
  }
  const encId = dimyEncId(crypto, mine.secret, ephId.value);
  w.groups.set(key, { ...next, shares: null });
  if (!encId.ok) return refuse(w, encId);
  bump(w, 'reconstructed');
  w.encIds.push({ at, encId: encId.value });
}

/** engine.observe: keep what DIMY keeps of one scan window (header); refused = fragments and payloads refused. */
export function observeShares(crypto: CryptoSuite, config: DimyEngineConfig, state: DimyState, frames: readonly ReceivedFrame[], at: SimMillis): { state: DimyState; refused: number } {
  const pruned = pruneGroups(config, state.groups, at);
  const own = liveOwn(config, state.own, at);
  const base = countDimy({ ...state, own, groups: pruned.groups }, 'groupsIncomplete', pruned.incomplete);
  const w: Work = { counters: {}, refusals: {}, groups: new Map(base.groups.map((g) => [g.key, g])), encIds: [] };
  let reassembly = createReassembly(WINDOW_REASSEMBLY_LIMITS);
  let refused = 0;
  for (const frame of frames) {
    const step = reassemble(reassembly, frame.address === '' ? '?' : frame.address, frame.payload, frame.at);
    reassembly = step.state;
    const outcome = step.outcome;
    if (outcome.kind === 'rejected') {
      refused++;
      bump(w, 'fragmentsRefused');
      refuse(w, outcome.rejection);
    } else if (outcome.kind === 'completed') {
      const share = decodeDimyShare(outcome.payload);
      if (share.ok) onShare(crypto, config, base, w, share.value, frame.at);
      else {
        refused++;
        bump(w, 'payloadsRefused');
        refuse(w, share);
      }
    }
  }
  w.counters.encIdsInserted = w.encIds.length;
  const counters = { ...base.counters };
  for (const [name, by] of Object.entries(w.counters) as [DimyCounter, number][]) counters[name] += by;
  let next: DimyState = { ...base, counters };
  if (Object.keys(w.refusals).length > 0) {
    const refusals = { ...next.refusals };
    for (const [k, v] of Object.entries(w.refusals)) refusals[k] = (refusals[k] ?? 0) + v;
    next = { ...next, refusals };
  }
  let dbfs = next.dbfs;
  for (const start of new Set(w.encIds.map((e) => periodStart(e.at, config.dbfMs)))) {
    const encIds = w.encIds.filter((e) => periodStart(e.at, config.dbfMs) === start).map((e) => e.encId);
    dbfs = insertEncIds(dbfs, start, encIds, config.dbfCount);
  }
  return { state: { ...next, dbfs, groups: [...w.groups.values()] }, refused };
}
