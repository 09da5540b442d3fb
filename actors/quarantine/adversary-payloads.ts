/**
 * Pure payload builders of the quarantine adversaries (actors/quarantine/adversary.ts):
 * capturing presence tokens from the air, forging tokens under a wrong key,
 * generating flood payloads, and the `adversary.relay` message that carries a
 * captured token from a relay's home half to its away half. No I/O; all
 * randomness comes from a DRBG state passed in and returned.
 */
import type { ReceivedFrame } from '../ports.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import { drbgDraw, type DrbgState } from '../../protocol/crypto/drbg.ts';
import { FERNET_IV_BYTES, FERNET_KEY_BYTES, FERNET_MIN_TOKEN_BYTES, FERNET_VERSION, parseFernetKey } from '../../protocol/beacon/fernet.ts';
import { createPresenceToken } from '../../protocol/beacon/presence-token.ts';
import { readBody } from '../../protocol/wire/body.ts';
import type { MessageCodec } from '../../protocol/wire/messages.ts';
import { FRAGMENT_HEADER_BYTES, FRAGMENT_MAGIC_V1, fragment, nextFrameId, reassemble, type ReassemblyState } from '../../protocol/wire/framing.ts';
import { MisuseError } from '../../protocol/errors.ts';
import { MAX_FORWARDED_TOKEN_BYTES } from '../../protocol/quarantine/messages.ts';
import { encodePresenceFrame, presenceFrameToken } from './beacon.ts';

/** Reassemble one received fragment; the presence token when it completes a Fernet-looking one. */
export function captureToken(state: ReassemblyState, frame: ReceivedFrame): { reassembly: ReassemblyState; token?: Uint8Array } {
  const { state: reassembly, outcome } = reassemble(state, frame.address, frame.payload, frame.at);
  if (outcome.kind !== 'completed') return { reassembly };
  const token = presenceFrameToken(outcome.payload);
  const plausible = token !== undefined && token.length >= FERNET_MIN_TOKEN_BYTES && token.length <= MAX_FORWARDED_TOKEN_BYTES && token[0] === FERNET_VERSION;
  return plausible ? { reassembly, token } : { reassembly };
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The fragments a beacon would advertise for `token`. */
export function tokenFragments(token: Uint8Array, frameId: number, budget: number): Uint8Array[] {
  return fragment(encodePresenceFrame(token), frameId, budget);
}

/** A wrong (random) Fernet key for a forger. */
export function forgerKey(rng: DrbgState): { key: Uint8Array; rng: DrbgState } {
  const { bytes, state } = drbgDraw(rng, FERNET_KEY_BYTES);
  return { key: bytes, rng: state };
}

/** A well-formed presence token for `at` under the forger's key: it fails only the HMAC check. */
export function forgeToken(crypto: CryptoSuite, key: Uint8Array, rng: DrbgState, at: number): { token: Uint8Array; rng: DrbgState } {
  const { bytes: iv, state } = drbgDraw(rng, FERNET_IV_BYTES);
  return { token: createPresenceToken(crypto, parseFernetKey(key), Math.max(0, Math.floor(at / 1000)), iv), rng: state };
}

export interface FloodMix {
  /** Complete presence frames whose token is Fernet-shaped random bytes (current timestamp). */
  readonly fakeTokens: number;
  /** Framing-valid fragments of frames that never complete (fill reassembly). */
  readonly orphans: number;
  /** Random service data (mostly rejected at the fragment header). */
  readonly garbage: number;
}

export const DEFAULT_FLOOD_MIX: FloodMix = { fakeTokens: 4, orphans: 20, garbage: 20 };

/**
 * One flood set: fake token frames (fragmented like a beacon's), orphan
 * fragments and garbage, interleaved. `frameId` advances per fake frame and
 * per orphan so every one is a new frame to a receiver.
 */
export function floodPayloads(rng: DrbgState, frameId: number, at: number, mix: FloodMix, budget: number): { payloads: Uint8Array[]; rng: DrbgState; frameId: number } {
  const fakeLength = FERNET_MIN_TOKEN_BYTES;
  const need = mix.fakeTokens * fakeLength + (mix.orphans + mix.garbage) * budget;
  const { bytes, state } = drbgDraw(rng, Math.max(1, need));
  let offset = 0;
  const take = (n: number): Uint8Array => bytes.slice(offset, (offset += n));
  let id = frameId;
  const fakes: Uint8Array[] = [];
  for (let i = 0; i < mix.fakeTokens; i++) {
    const token = take(fakeLength);
    token[0] = FERNET_VERSION;
    const ts = Math.floor(at / 1000);
    new DataView(token.buffer, token.byteOffset).setUint32(1, Math.floor(ts / 2 ** 32));
    new DataView(token.buffer, token.byteOffset).setUint32(5, ts % 2 ** 32);
    fakes.push(...tokenFragments(token, id, budget));
    id = nextFrameId(id);
  }
  const orphans: Uint8Array[] = [];
  for (let i = 0; i < mix.orphans; i++) {
    const f = take(budget);
    f[0] = FRAGMENT_MAGIC_V1;
    f[1] = id >> 8;
    f[2] = id & 0xff;
    f[3] = i % 4; // never the last of 5: the frame cannot complete
    f[4] = 5;
    id = nextFrameId(id);
    orphans.push(f);
  }
  const garbage: Uint8Array[] = [];
  for (let i = 0; i < mix.garbage; i++) garbage.push(take(budget));
  const payloads: Uint8Array[] = [];
  for (let i = 0; payloads.length < fakes.length + orphans.length + garbage.length; i++) {
    for (const list of [fakes, orphans, garbage]) {
      const p = list[i];
      if (p !== undefined) payloads.push(p);
    }
  }
  if (payloads.some((p) => p.length < FRAGMENT_HEADER_BYTES + 1)) throw new MisuseError('budget', 'too small for a flood payload');
  return { payloads, rng: state, frameId: id };
}

/** Relay home half → away half: one captured token. */
export interface AdversaryRelay {
  readonly token: Uint8Array;
}

export const adversaryRelayCodec: MessageCodec<AdversaryRelay> = {
  type: 'adversary.relay',
  decode: (body) => readBody('adversary.relay', body, (r) => ({ token: r.bytes('token', FERNET_MIN_TOKEN_BYTES, MAX_FORWARDED_TOKEN_BYTES) })),
  encode: (value) => ({ token: value.token }),
};
