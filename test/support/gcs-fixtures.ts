/**
 * Shared fixtures of the GCS tests (test/keyserver/gcs-*.test.ts).
 */
import { createHash } from 'node:crypto';
import { expect } from 'vitest';
import type { Verdict } from '../../protocol/errors.ts';
import { readCompactSize } from '../../protocol/keyserver/bitstream.ts';
import { BIP158_BASIC_M, BIP158_BASIC_P, GCS_REJECTION_REASONS, type GcsParams } from '../../protocol/keyserver/gcs.ts';

export const unhex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
export const reversed = (b: Uint8Array): Uint8Array => b.slice().reverse();
export const sha256d = (b: Uint8Array): Uint8Array => {
  const once = createHash('sha256').update(b).digest();
  return new Uint8Array(createHash('sha256').update(once).digest());
};
/** BIP157: header = dSHA256(dSHA256(filter) ‖ prev_header); both hashes shown byte-reversed. */
export const filterHeaderDisplay = (filter: Uint8Array, prevDisplay: string): string =>
  hex(reversed(sha256d(new Uint8Array([...sha256d(filter), ...reversed(unhex(prevDisplay))]))));

export const reasonOf = (v: Verdict<unknown>): string => (v.ok ? 'accepted' : v.reason);
export const REASONS = new Set<string>(GCS_REJECTION_REASONS);
export const BASIC_KEY = unhex('43497fd7f826957108f4a30fd9cec3ae');
export const BASIC: GcsParams = { p: BIP158_BASIC_P, m: BIP158_BASIC_M, key: BASIC_KEY };

// ---------------------------------------------------------------------------------------------
// A minimal Bitcoin block parser (test-only), enough to extract the BIP158 basic-filter elements.

/** Output scripts of every transaction in a raw block (BIP144 witness serialization understood). */
export function blockOutputScripts(block: Uint8Array): Uint8Array[] {
  let at = 80; // block header
  const varint = (): number => {
    const v = readCompactSize(block, at, 'block');
    if (!v.ok) throw new Error(`bad block varint at ${at}`);
    at = v.value.next;
    return Number(v.value.value);
  };
  const take = (length: number): Uint8Array => {
    if (at + length > block.length) throw new Error('block truncated');
    at += length;
    return block.subarray(at - length, at);
  };
  const scripts: Uint8Array[] = [];
  const txCount = varint();
  for (let t = 0; t < txCount; t++) {
    take(4); // version
    const segwit = block[at] === 0x00 && block[at + 1] === 0x01; // BIP144 marker + flag
    if (segwit) take(2);
    const inputs = varint();
    for (let i = 0; i < inputs; i++) {
      take(36); // prevout
      take(varint()); // scriptSig
      take(4); // sequence
    }
    const outputs = varint();
    for (let o = 0; o < outputs; o++) {
      take(8); // value
      scripts.push(take(varint()));
    }
    if (segwit) for (let i = 0; i < inputs; i++) for (let w = varint(); w > 0; w--) take(varint());
    take(4); // lock time
  }
  expect(at).toBe(block.length);
  return scripts;
}

export const OP_RETURN = 0x6a;

/** BIP158 basic filter elements, before de-duplication: output scripts (not empty, not OP_RETURN) + spent scripts (not empty). */
export function basicFilterElements(block: Uint8Array, prevScriptsHex: readonly string[]): Uint8Array[] {
  const outputs = blockOutputScripts(block).filter((s) => s.length > 0 && s[0] !== OP_RETURN);
  return [...outputs, ...prevScriptsHex.map(unhex).filter((s) => s.length > 0)];
}

// ---------------------------------------------------------------------------------------------

export function referenceEncode(n: number, values: readonly bigint[], p: number): Uint8Array {
  const prefix = n < 0xfd ? [n] : n <= 0xffff ? [0xfd, n & 0xff, n >>> 8] : [0xfe, n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24];
  let bits = '';
  let last = 0n;
  for (const value of values) {
    const delta = value - last;
    bits += '1'.repeat(Number(delta / 2n ** BigInt(p))) + '0' + (delta % 2n ** BigInt(p)).toString(2).padStart(p, '0');
    last = value;
  }
  bits = bits.padEnd(Math.ceil(bits.length / 8) * 8, '0');
  const body = Array.from({ length: bits.length / 8 }, (_, i) => parseInt(bits.slice(8 * i, 8 * i + 8), 2));
  return Uint8Array.from([...prefix, ...body]);
}
