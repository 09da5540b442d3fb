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
