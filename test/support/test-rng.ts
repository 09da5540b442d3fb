/**
 * Seeded Rngs for tests: the project's ChaCha20 DRBG (protocol/crypto/drbg.ts)
 * keyed from a small integer, so a test names its seed as a number.
 */
import { SeededRng } from '../../protocol/crypto/drbg.ts';

export function seededRng(seed: number): SeededRng {
  const bytes = new Uint8Array(16);
  new DataView(bytes.buffer).setFloat64(0, seed);
  bytes.set(new TextEncoder().encode('test-rng'), 8);
  return new SeededRng(bytes);
}

/**
 * A tiny deterministic PRNG (mulberry32) returning floats in [0, 1): for fuzz
 * loops too long for fast-check shrinking to matter, where per-call speed counts.
 */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
