/**
 * Types for the `siphash` npm package 1.2.0 (ADR 0003), which ships none.
 * Only what protocol/keyserver/gcs.ts uses is declared. Checked against
 * node_modules/siphash/lib/siphash.js: `hash` reads the 128-bit key as four
 * uint32 words (k0 = key[1]·2^32 + key[0], k1 = key[3]·2^32 + key[2]), takes a
 * Uint8Array (or a string, UTF-8 encoded) and returns the SipHash-2-4 value as
 * its high and low uint32 halves.
 */
declare module 'siphash' {
  interface SipHashValue {
    /** Bits 63..32 of the 64-bit hash, as a uint32. */
    readonly h: number;
    /** Bits 31..0 of the 64-bit hash, as a uint32. */
    readonly l: number;
  }
  interface SipHashModule {
    hash(key: ArrayLike<number>, message: Uint8Array | string): SipHashValue;
    hash_hex(key: ArrayLike<number>, message: Uint8Array | string): string;
    hash_uint(key: ArrayLike<number>, message: Uint8Array | string): number;
    string16_to_key(key: string): Uint32Array;
  }
  const SipHash: SipHashModule;
  export = SipHash;
}
