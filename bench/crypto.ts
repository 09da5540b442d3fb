/**
 * Crypto suite bench: ops/s of @noble vs node:crypto for each primitive on
 * the sizes the protocols use (DESIGN.md "Crypto suite" quotes the ratios).
 * Inputs are fixed (derived from a seeded DRBG) so runs are comparable.
 *
 * Key reuse matters for node:crypto, which caches imported keys (see
 * services/crypto/node.ts): the plain rows reuse one key pair, as a phone
 * does with its own keys and a server's signing key; the "new … key" rows
 * rotate through more keys than the cache holds, as when every peer or
 * report brings its own key.
 */
import { SeededRng } from '../protocol/crypto/drbg.ts';
import { nobleSuite } from '../protocol/crypto/noble.ts';
import type { CryptoSuite } from '../protocol/crypto/suite.ts';
import { nodeSuite } from '../services/crypto/node.ts';
import { opsPerSecond, type BenchModule, type BenchRow } from './report.ts';

const MIN_MS = 250;
/** More distinct keys than node.ts's LRU caches (256 entries) keep. */
const ROTATING_KEYS = 512;

interface Case {
  readonly name: string;
  /** Build the operation for one suite; setup (keys, signatures) stays outside the timing. */
  readonly make: (suite: CryptoSuite) => () => void;
}

function cases(): Case[] {
  const rng = new SeededRng(new TextEncoder().encode('tracecity bench crypto v1'));
  const key16 = rng.bytes(16);
  const key32 = rng.bytes(32);
  const iv = rng.bytes(16);
  const data16 = rng.bytes(16);
  const data32 = rng.bytes(32);
  const data64 = rng.bytes(64);
  const seed = rng.bytes(32);
  const peerPrivate = rng.bytes(32);
  // A valid P-256 scalar: the top byte below 0xff keeps it under the group order.
  const p256Private = Uint8Array.from([0x42, ...rng.bytes(31)]);
  const rotating = Array.from({ length: ROTATING_KEYS }, () => rng.bytes(32));

  // Public keys and signatures come from noble so neither suite's cache is warmed by setup.
  const peerPublic = nobleSuite.x25519PublicKey(peerPrivate);
  const rotatingX25519 = rotating.map((k) => nobleSuite.x25519PublicKey(k));
  const edPublic = nobleSuite.ed25519PublicKey(seed);
  const edSignature = nobleSuite.ed25519Sign(seed, data64);
  const rotatingEd = rotating.map((k) => ({ pub: nobleSuite.ed25519PublicKey(k), sig: nobleSuite.ed25519Sign(k, data64) }));
  const p256Public = nobleSuite.p256PublicKey(p256Private);
  const p256Signature = nobleSuite.p256Sign(p256Private, data64);

  const check = (ok: boolean, what: string): void => {
    if (!ok) throw new Error(`bench/crypto: ${what} failed`);
  };
  let i = 0;
  const next = <T>(items: readonly T[]): T => items[i++ % items.length] as T;

  return [
    { name: 'sha256 64B', make: (s) => () => s.sha256(data64) },
    { name: 'hmac 64B', make: (s) => () => s.hmacSha256(key32, data64) },
    { name: 'hkdf 32B', make: (s) => () => s.hkdfSha256(key32, new Uint8Array(0), data16, 32) },
    { name: 'aes-128-ecb 16B block', make: (s) => () => s.aesEcbEncrypt(key16, data16) },
    { name: 'aes-128-cbc 64B', make: (s) => () => s.aesCbcEncrypt(key16, iv, data64) },
    { name: 'aes-128-ctr 64B', make: (s) => () => s.aesCtr(key16, iv, data64) },
    { name: 'x25519 shared', make: (s) => () => s.x25519(key32, peerPublic) },
    { name: 'x25519 shared, new peer key', make: (s) => () => s.x25519(key32, next(rotatingX25519)) },
    { name: 'ed25519 sign', make: (s) => () => s.ed25519Sign(seed, data32) },
    { name: 'ed25519 verify', make: (s) => () => check(s.ed25519Verify(edPublic, data64, edSignature), 'ed25519 verify') },
    {
      name: 'ed25519 verify, new key',
      make: (s) => () => {
        const { pub, sig } = next(rotatingEd);
        check(s.ed25519Verify(pub, data64, sig), 'ed25519 verify');
      },
    },
    { name: 'p256 sign', make: (s) => () => s.p256Sign(p256Private, data32) },
    { name: 'p256 verify', make: (s) => () => check(s.p256Verify(p256Public, data64, p256Signature), 'p256 verify') },
  ];
}

export const cryptoBench: BenchModule = () => {
  const rows: BenchRow[] = [];
  for (const c of cases()) {
    const noble = opsPerSecond(c.make(nobleSuite), MIN_MS);
    const node = opsPerSecond(c.make(nodeSuite), MIN_MS);
    rows.push({
      group: 'crypto',
      name: c.name,
      values: { noble: Math.round(noble), node: Math.round(node) },
      unit: 'ops/s',
      ratio: { label: 'node/noble', value: Math.round((node / noble) * 10) / 10 },
    });
  }
  return Promise.resolve(rows);
};
