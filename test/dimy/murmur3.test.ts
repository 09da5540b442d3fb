/**
 * SPECS §4.1 / §7.19 Bloom hashing: MurmurHash3 (protocol/dimy/murmur3.ts) against published
 * values — SMHasher's verification values (aappleby/smhasher `main.cpp`: Murmur3A 0xB0F57EE3,
 * Murmur3F 0x6384BA69, computed over 256 keys with seeds 256 − i, so they cover every tail length
 * and many seeds), the widely reproduced x86_32 vectors, and Guava's murmur3_128 value for "The
 * quick brown fox…" — plus a fast-check comparison with a BigInt transcription of the C reference.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { murmur3X64_128, murmur3X64_128Words, murmur3X86_32 } from '../../protocol/dimy/murmur3.ts';
import { misuseField } from '../support/misuse.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const ascii = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'latin1'));

/** SMHasher VerificationTest: hash {}, {0}, {0,1}, … {0..254} with seed 256 − i, hash the concatenation with seed 0, read 4 bytes LE. */
function smhasherVerification(hash: (data: Uint8Array, seed: number) => Uint8Array, hashBytes: number): number {
  const key = new Uint8Array(256);
  const hashes = new Uint8Array(hashBytes * 256);
  for (let i = 0; i < 256; i++) {
    key[i] = i;
    hashes.set(hash(key.subarray(0, i), 256 - i), i * hashBytes);
  }
  const final = hash(hashes, 0);
  return new DataView(final.buffer).getUint32(0, true);
}

const x86Bytes = (data: Uint8Array, seed: number): Uint8Array => {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, murmur3X86_32(data, seed), true);
  return out;
};

/** MurmurHash3_x64_128 transcribed line by line from MurmurHash3.cpp with BigInt (slow, obviously right). */
function referenceX64_128(data: Uint8Array, seed: number): Uint8Array {
  const M = (1n << 64n) - 1n;
  const rotl = (x: bigint, r: bigint): bigint => ((x << r) | (x >> (64n - r))) & M;
  const fmix = (k0: bigint): bigint => {
    let k = k0 ^ (k0 >> 33n);
    k = (k * 0xff51afd7ed558ccdn) & M;
    k ^= k >> 33n;
    k = (k * 0xc4ceb9fe1a85ec53n) & M;
    return k ^ (k >> 33n);
  };
  const c1 = 0x87c37b91114253d5n;
  const c2 = 0x4cf5ad432745937fn;
  const u64 = (at: number, n: number): bigint => {
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(data[at + i] ?? 0);
    return v;
  };
  let h1 = BigInt(seed);
  let h2 = BigInt(seed);
  const nblocks = Math.floor(data.length / 16);
  for (let i = 0; i < nblocks; i++) {
    let k1 = u64(i * 16, 8);
    let k2 = u64(i * 16 + 8, 8);
    k1 = (rotl((k1 * c1) & M, 31n) * c2) & M;
    h1 ^= k1;
    h1 = (((rotl(h1, 27n) + h2) & M) * 5n + 0x52dce729n) & M;
    k2 = (rotl((k2 * c2) & M, 33n) * c1) & M;
    h2 ^= k2;
    h2 = (((rotl(h2, 31n) + h1) & M) * 5n + 0x38495ab5n) & M;
  }
  const tail = data.length & 15;
  const at = nblocks * 16;
  if (tail > 8) h2 ^= (rotl((u64(at + 8, tail - 8) * c2) & M, 33n) * c1) & M;
  if (tail > 0) h1 ^= (rotl((u64(at, Math.min(tail, 8)) * c1) & M, 31n) * c2) & M;
  h1 ^= BigInt(data.length);
  h2 ^= BigInt(data.length);
  h1 = (h1 + h2) & M;
  h2 = (h2 + h1) & M;
  h1 = fmix(h1);
  h2 = fmix(h2);
  h1 = (h1 + h2) & M;
  h2 = (h2 + h1) & M;
  const out = new Uint8Array(16);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, h1, true);
  view.setBigUint64(8, h2, true);
  return out;
}

describe('SPECS §4.1 Bloom hashing: MurmurHash3 published vectors', () => {
  it('SMHasher verification value of MurmurHash3_x86_32 is 0xB0F57EE3', () => {
    expect(smhasherVerification(x86Bytes, 4)).toBe(0xb0f57ee3);
  });

  it('SMHasher verification value of MurmurHash3_x64_128 is 0x6384BA69', () => {
    expect(smhasherVerification(murmur3X64_128, 16)).toBe(0x6384ba69);
  });

  it.each([
    ['', 0, 0x00000000],
    ['', 1, 0x514e28b7],
    ['', 0xffffffff, 0x81f16f39],
    ['\0\0\0\0', 0, 0x2362f9de],
    ['Hello, world!', 0x9747b28c, 0x24884cba],
    ['The quick brown fox jumps over the lazy dog', 0x9747b28c, 0x2fa826cd],
  ])('x86_32(%j, seed %d) = %d', (input, seed, expected) => {
    expect(murmur3X86_32(ascii(input), seed)).toBe(expected);
  });

  it('x64_128 of "The quick brown fox jumps over the lazy dog", seed 0 (Guava murmur3_128 vector)', () => {
    expect(hex(murmur3X64_128(ascii('The quick brown fox jumps over the lazy dog')))).toBe('6c1b07bc7bbc4be347939ac4a93c437a');
  });

  it('x64_128 of the empty string is all zero with seed 0', () => {
    expect(hex(murmur3X64_128(new Uint8Array(0)))).toBe('0'.repeat(32));
  });

  it('words are the output bytes read as little-endian uint32 halves', () => {
    const w = murmur3X64_128Words(ascii('hello'));
    const b = murmur3X64_128(ascii('hello'));
    const v = new DataView(b.buffer);
    expect([w.h1Lo, w.h1Hi, w.h2Lo, w.h2Hi]).toEqual([v.getUint32(0, true), v.getUint32(4, true), v.getUint32(8, true), v.getUint32(12, true)]);
  });
});

describe('SPECS §4.1 Bloom hashing: MurmurHash3_x64_128 equals a BigInt transcription of the C reference', () => {
  it('random inputs of 0–70 bytes and random seeds (fast-check)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 70, size: 'max' }), fc.nat({ max: 0xffffffff }), (data, seed) => {
        expect(hex(murmur3X64_128(data, seed))).toBe(hex(referenceX64_128(data, seed)));
      }),
      { numRuns: 2_000 },
    );
  });

  it('inputs with all-ones bytes (maximal carries)', () => {
    for (let n = 0; n <= 40; n++) {
      const data = new Uint8Array(n).fill(0xff);
      expect(hex(murmur3X64_128(data, 0xffffffff))).toBe(hex(referenceX64_128(data, 0xffffffff)));
    }
  });
});

describe('SPECS §4.1 Bloom hashing: caller misuse', () => {
  it.each([
    ['data', () => murmur3X86_32('x' as unknown as Uint8Array)],
    ['seed', () => murmur3X86_32(new Uint8Array(1), -1)],
    ['seed', () => murmur3X64_128(new Uint8Array(1), 2 ** 32)],
  ])('%s', (field, fn) => {
    expect(misuseField(fn)).toBe(field);
  });
});
