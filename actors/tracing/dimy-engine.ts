/**
 * DIMY ("Did I Meet You", SPECS §4) on the tracing phone: per-epoch X25519 EphIDs split into
 * k-of-n Shamir shares, one share on the air at a time through the framing (dimy-shares.ts);
 * received shares reconstructed into EphIDs, EncIDs by X25519 inserted into the day's Bloom
 * filter and forgotten (dimy-observe.ts); a pool of DBFs (dimy-filters.ts); a backend of its own
 * that matches daily QBFs against positives' CBFs (dimy-exchange.ts). Parameters and why:
 * dimy-config.ts.
 *
 * DIMY does not use the key server: report() returns no records (the phone then sends nothing to
 * the key server and goes from uploading straight to reported), match() has nothing to match,
 * and the CBF goes to the DIMY backend in exchange.diagnosed. report() takes the EphID on the air
 * off it: the CBF lets every peer that met it learn that this EphID was a positive's.
 *
 * Retention: the DBF pool (dbfCount periods); own EphIDs one epoch past their end (share groups
 * still completing need their secret), share groups one epoch past theirs; a CBF awaiting its
 * ack is dropped with the oldest DBF in it.
 */
import type { SimMillis } from '../ports.ts';
import { DIMY_TIMING, type DimyEngineConfig } from './dimy-config.ts';
import { dimyExchange } from './dimy-exchange.ts';
import { dbfBytes, periodStart } from './dimy-filters.ts';
import { observeShares, pruneGroups } from './dimy-observe.ts';
import { liveOwn, retireOwn, rotateShares } from './dimy-shares.ts';
import { countDimy, initialDimyState, type DimyState } from './dimy-state.ts';
import type { TracingEngine } from './engine.ts';

export { dimyEngineConfig, type DimyEngineConfig } from './dimy-config.ts';
export type { DimyState } from './dimy-state.ts';

/** Bytes per held share in a group: index (1) + 32 share bytes. */
const HELD_SHARE_BYTES = 33;
/** Per-record overhead counted for times and tags (own EphIDs, groups). */
const RECORD_OVERHEAD_BYTES = 24;

export const dimyEngine: TracingEngine<DimyState, DimyEngineConfig> = {
  protocol: 'dimy',
  timing: DIMY_TIMING,

  init: (_deps, _config, _at, drbg) => ({ state: initialDimyState(), drbg }),

  rotate: (deps, config, state, at, drbg) => rotateShares(deps.crypto, config, state, at, drbg),

  observe: (deps, config, state, frames, at) => observeShares(deps.crypto, config, state, frames, at),

  expire(config, state, at) {
    const horizon = periodStart(at, config.dbfMs) - (config.dbfCount - 1) * config.dbfMs;
    const dbfs = state.dbfs.filter((d) => d.start >= horizon);
    const own = liveOwn(config, state.own, at);
    const pruned = pruneGroups(config, state.groups, at);
    const pending = state.exchange.pending;
    const dropCbf = pending !== null && pending.oldest < horizon;
    if (dbfs.length === state.dbfs.length && own === state.own && pruned.groups === state.groups && !dropCbf) return state;
    let next: DimyState = countDimy({ ...state, dbfs, own, groups: pruned.groups }, 'groupsIncomplete', pruned.incomplete);
    if (dropCbf) next = countDimy({ ...next, exchange: { ...next.exchange, pending: null } }, 'cbfAbandoned');
    return next;
  },

  oldestHeld(state) {
    const times = [state.dbfs[0]?.start, state.own[0]?.to, state.exchange.pending?.oldest, ...state.groups.map((g) => g.firstAt)].filter((t): t is SimMillis => t !== undefined);
    return times.length === 0 ? undefined : Math.min(...times);
  },

  report: (_deps, _config, state, _infectiousFrom, at, drbg) => ({ state: retireOwn(state, at), drbg, records: [] }),

  match: (_deps, _config, state) => ({ state, exposures: [] }),

  storageBytes: (state) =>
    state.dbfs.reduce((sum, d) => sum + dbfBytes(d), 0) +
    state.own.reduce((sum, o) => sum + o.secret.length + o.tag.length + o.payloads.length + RECORD_OVERHEAD_BYTES, 0) +
    state.groups.reduce((sum, g) => sum + (g.shares?.length ?? 0) * HELD_SHARE_BYTES + g.tag.length + RECORD_OVERHEAD_BYTES, 0) +
    (state.exchange.pending?.bytes ?? 0),

  exchange: dimyExchange,
};
