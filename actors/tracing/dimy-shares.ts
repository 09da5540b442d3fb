/**
 * DIMY sending side: one X25519 EphID per epoch, its n shares, one share on the air per slot
 * (dimy-config.ts explains the schedule).
 *
 *   epoch e = floor(t / epochMs), slot s = floor((t mod epochMs) / shareMs), both aligned to the
 *   Unix epoch, so every phone's EphIDs change at the same instants;
 *   slot s of an EphID advertises its share s + 1 (37-byte payload) cut into fragments by the
 *   framing (a 37-byte share + 4-byte CRC is 3 legacy advertisements of 24 bytes), the fragments
 *   being the advertising set: the phone round-robins them with a new address at every slot.
 *
 * A phone started (or diagnosed) mid-epoch starts a fresh EphID at the current slot: its earlier
 * shares are never advertised, so it may show fewer than k shares before the epoch ends. After a
 * diagnosis the EphID on the air is retired (the CBF can reveal it to the peers that met it) and
 * a fresh one takes the rest of the epoch. A share is never put on the air twice: a second
 * rotation inside one slot starts a fresh EphID too.
 */
import { drbgDraw, type DrbgState } from '../../protocol/crypto/drbg.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import { dimyEphId, DIMY_SECRET_BYTES, DIMY_SHARE_PAYLOAD_BYTES, encodeDimyShare, splitEphId } from '../../protocol/dimy/ephid.ts';
import { shamirRandomBytesNeeded } from '../../protocol/dimy/shamir.ts';
import { fragment, nextFrameId } from '../../protocol/wire/framing.ts';
import type { SimMillis } from '../ports.ts';
import type { Rotation } from './engine.ts';
import type { DimyEngineConfig } from './dimy-config.ts';
import type { DimyOwnEphId, DimyState } from './dimy-state.ts';

export const epochOf = (config: DimyEngineConfig, at: SimMillis): number => Math.floor(at / config.epochMs);
export const slotOf = (config: DimyEngineConfig, at: SimMillis): number => Math.floor((at - epochOf(config, at) * config.epochMs) / config.shareMs);

/** A fresh EphID for epoch `epoch`, on the air from `at` to the epoch's end. SPECS §4.1. */
export function newOwnEphId(crypto: CryptoSuite, config: DimyEngineConfig, at: SimMillis, drbg: DrbgState): { own: DimyOwnEphId; drbg: DrbgState } {
  const secretDraw = drbgDraw(drbg, DIMY_SECRET_BYTES);
  const coefficients = drbgDraw(secretDraw.state, shamirRandomBytesNeeded(DIMY_SECRET_BYTES, config.k));
  const ephId = dimyEphId(crypto, secretDraw.bytes);
  const shares = splitEphId(crypto, ephId, coefficients.bytes, { k: config.k, n: config.n });
  const payloads = new Uint8Array(shares.length * DIMY_SHARE_PAYLOAD_BYTES);
  shares.forEach((share, i) => payloads.set(encodeDimyShare(share), i * DIMY_SHARE_PAYLOAD_BYTES));
  const epoch = epochOf(config, at);
  const tag = shares[0]?.tag ?? new Uint8Array(0);
  return { own: { epoch, secret: secretDraw.bytes, tag, payloads, from: at, to: (epoch + 1) * config.epochMs, lastSlot: -1 }, drbg: coefficients.state };
}

/** The share payload an EphID advertises in slot `slot`. */
export const sharePayload = (own: DimyOwnEphId, slot: number): Uint8Array =>
  own.payloads.subarray(slot * DIMY_SHARE_PAYLOAD_BYTES, (slot + 1) * DIMY_SHARE_PAYLOAD_BYTES);

/** Own EphIDs still needed at `at`: on the air, or ended less than one epoch ago (late share groups). */
export const liveOwn = (config: DimyEngineConfig, own: readonly DimyOwnEphId[], at: SimMillis): readonly DimyOwnEphId[] => {
  const kept = own.filter((e) => e.to + config.epochMs > at);
  return kept.length === own.length ? own : kept;
};

/** The own EphID on the air at `at` (its secret completes EncIDs of shares heard then). */
export const ownAt = (own: readonly DimyOwnEphId[], at: SimMillis): DimyOwnEphId | undefined => own.find((e) => e.from <= at && at < e.to);

/** The next slot's share on the air (header); a fresh EphID when the epoch changed, the current one was retired or this slot was already shown. */
export function rotateShares(crypto: CryptoSuite, config: DimyEngineConfig, state: DimyState, at: SimMillis, drbg: DrbgState): Rotation<DimyState> {
  const slot = slotOf(config, at);
  let own = [...liveOwn(config, state.own, at)];
  let current = own[own.length - 1];
  if (current === undefined || current.to <= at || current.epoch !== epochOf(config, at) || slot <= current.lastSlot) {
    // The one on the air (a second rotation in one slot) goes off it now.
    if (current !== undefined && current.to > at) own[own.length - 1] = { ...current, to: at };
    const made = newOwnEphId(crypto, config, at, drbg);
    drbg = made.drbg;
    current = made.own;
    own.push(current);
  }
  current = { ...current, lastSlot: slot };
  own = [...own.slice(0, -1), current];
  const payloads = fragment(sharePayload(current, slot), state.frameId, config.fragmentBudget);
  return { state: { ...state, own, frameId: nextFrameId(state.frameId) }, drbg, payloads, nextAt: (Math.floor(at / config.shareMs) + 1) * config.shareMs };
}

/** Take the EphID on the air off it at `at` (diagnosis: the CBF may reveal it). */
export function retireOwn(state: DimyState, at: SimMillis): DimyState {
  const current = state.own[state.own.length - 1];
  if (current === undefined || current.to <= at) return state;
  return { ...state, own: [...state.own.slice(0, -1), { ...current, to: at }] };
}
