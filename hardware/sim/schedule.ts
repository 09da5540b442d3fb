/**
 * Counter-based randomness for the simulated air, so that what a receiver
 * hears does not depend on how many unheard advertising events the medium
 * skipped (lazy advertising, hardware/sim/advertising.ts).
 *
 * - Advertising schedule of one advertising set (one advertise() call):
 *     t_0 = start + 1 + d_0,   t_k = t_{k−1} + intervalMs + d_k,
 *     d_k = mix(setKey, k) mod (MAX_ADV_DELAY_MS + 1)
 *   (the BLE advDelay; the "+ 1" means a set never has an event at the very
 *   millisecond it was started). Event k carries payload k mod n. A pure
 *   function of (start, interval, payloads, setKey): t_k is found by walking
 *   k, one hash per event, without touching any shared Rng.
 * - Frame draws (duty cycle, loss, noise) for (set, event k, receiver) come
 *   from a small PRNG seeded by hashing (setKey, k, receiver id): the same
 *   values whether or not, and in whatever order, other events were evaluated.
 *
 * The hash is a 32-bit multiply–xorshift mixer (murmur3 finaliser rounds);
 * the PRNG is sfc32. Neither is cryptographic: this is simulation noise.
 */
import type { Rng } from '../../actors/ports.ts';
import { uniformFloat, uniformInt } from '../../protocol/crypto/drbg.ts';

/** advDelay is drawn uniformly from 0..MAX_ADV_DELAY_MS (integer ms keeps simulated time integral). */
export const MAX_ADV_DELAY_MS = 10;

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Hash of up to four 32-bit words (order matters). */
export function mix(a: number, b: number, c = 0, d = 0): number {
  let h = fmix((a ^ 0x9e3779b9) >>> 0);
  h = fmix((h ^ Math.imul(b ^ 0x7f4a7c15, 0x165667b1)) >>> 0);
  h = fmix((h ^ Math.imul(c ^ 0x94d049bb, 0x27d4eb2f)) >>> 0);
  return fmix((h ^ Math.imul(d ^ 0x2545f491, 0x9e3779b1)) >>> 0);
}

/** 32-bit FNV-1a of a string's UTF-16 code units, finalised (radio ids → words). */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return fmix(h >>> 0);
}

/** Two 32-bit words naming one advertising set. */
export interface SetKey {
  readonly k0: number;
  readonly k1: number;
}

/** advDelay of event `k` of the set (modulo bias of 11 in 2^32 is < 3e-9: irrelevant here). */
export function advDelay(key: SetKey, k: number): number {
  return mix(key.k0, key.k1, k >>> 0, Math.floor(k / 2 ** 32)) % (MAX_ADV_DELAY_MS + 1);
}

/** A walk along one set's schedule: `k` and `t` are the next event not yet handled. */
export class AdvSchedule {
  k = 0;
  t: number;

  constructor(
    readonly key: SetKey,
    readonly intervalMs: number,
    startMs: number,
  ) {
    this.t = startMs + 1 + advDelay(key, 0);
  }

  /** Step to the next event. */
  next(): void {
    this.k++;
    this.t += this.intervalMs + advDelay(this.key, this.k);
  }
}


/**
 * Rng (actors/ports.ts) re-seeded per (set, event, receiver) with reset():
 * sfc32 over a hashed seed, warmed up 4 rounds. One instance is reused.
 */
export class KeyedRng implements Rng {
  private a = 0;
  private b = 0;
  private c = 0;
  private d = 0;

  reset(w0: number, w1: number, w2: number, w3: number): this {
    this.a = mix(w0, w1, w2, w3);
    this.b = mix(w1, w2, w3, w0 ^ 0x5bd1e995);
    this.c = mix(w2, w3, w0, w1 ^ 0x68e31da4);
    this.d = 1;
    for (let i = 0; i < 4; i++) this.uint32(); // the words are already hashed: a short warm-up suffices
    return this;
  }

  uint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Same 53-bit construction as SeededRng.float. */
  float(): number {
    return uniformFloat(this);
  }

  int(maxExclusive: number): number {
    return uniformInt(this, maxExclusive);
  }

  bytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i += 4) {
      const x = this.uint32();
      for (let j = 0; j < 4 && i + j < length; j++) out[i + j] = (x >>> (8 * j)) & 0xff;
    }
    return out;
  }
}
