/**
 * SPECS §4.1 EphID, shares, hash check and EncID; §4.2 (32-byte EphIDs, k = 3, n = 5); §7.18 (X25519),
 * §7.21 (3-byte SHA-256 tag): protocol/dimy/ephid.ts under both crypto suites. RFC 7748 §6.1 pins
 * EphID and EncID bytes; properties: split → encode → decode → reconstruct round trip from any k
 * shares, EncID symmetry; every typed rejection; fuzz: 12,000 random byte strings and 2,000 random
 * share groups give typed rejections only.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nobleSuite } from '../../protocol/crypto/noble.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import {
  decodeDimyShare,
  DIMY_EPHID_CODEC,
  DIMY_EPHID_REJECTION_REASONS,
  DIMY_SHARE_CODEC,
  DIMY_SHARE_PAYLOAD_BYTES,
  DIMY_SHARE_REJECTION_REASONS,
  dimyEncId,
  dimyEphId,
  encodeDimyShare,
  ephIdTag,
  reconstructEphId,
  splitEphId,
  type DimyShare,
} from '../../protocol/dimy/ephid.ts';
import { SHAMIR_CODEC, SHAMIR_REJECTION_REASONS } from '../../protocol/dimy/shamir.ts';
import type { Verdict } from '../../protocol/errors.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { misuseField } from '../support/misuse.ts';
import { prng, seededRng } from '../support/test-rng.ts';
import vectors from '../vectors/crypto-rfc.json' with { type: 'json' };

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
const reasonOf = (v: Verdict<unknown>): string => (v.ok ? 'accepted' : v.reason);
const SUITES: readonly (readonly [string, CryptoSuite])[] = [
  ['noble', nobleSuite],
  ['node', nodeSuite],
];
const TYPED: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  [DIMY_SHARE_CODEC, new Set<string>(DIMY_SHARE_REJECTION_REASONS)],
  [DIMY_EPHID_CODEC, new Set<string>(DIMY_EPHID_REJECTION_REASONS)],
  [SHAMIR_CODEC, new Set<string>(SHAMIR_REJECTION_REASONS)],
]);
const isTyped = (v: Verdict<unknown>): boolean => v.ok || (TYPED.get(v.codec)?.has(v.reason) === true && v.detail.length > 0);

const DH = vectors.x25519.diffieHellman;
const key32 = fc.uint8Array({ minLength: 32, maxLength: 32 });

describe.each(SUITES)('SPECS §4.1 EphID and tag (%s)', (_n, suite) => {
  it('EphID = X25519 public key (RFC 7748 §6.1 Alice and Bob)', () => {
    expect(hex(dimyEphId(suite, unhex(DH.alicePrivate)))).toBe(DH.alicePublic);
    expect(hex(dimyEphId(suite, unhex(DH.bobPrivate)))).toBe(DH.bobPublic);
  });

  it('tag = SHA-256(EphID)[0:3]', () => {
    const ephId = unhex(DH.alicePublic);
    expect(hex(ephIdTag(suite, ephId))).toBe(hex(suite.sha256(ephId)).slice(0, 6));
  });

  it('EncID = X25519(own secret, peer EphID): RFC 7748 §6.1 shared secret, from both sides', () => {
    const ab = dimyEncId(suite, unhex(DH.alicePrivate), unhex(DH.bobPublic));
    const ba = dimyEncId(suite, unhex(DH.bobPrivate), unhex(DH.alicePublic));
    expect(ab.ok && hex(ab.value)).toBe(DH.shared);
    expect(ba.ok && hex(ba.value)).toBe(DH.shared);
  });

  it('EncID symmetry: X25519(a, EphID_b) = X25519(b, EphID_a), and both suites agree (fast-check)', () => {
    fc.assert(
      fc.property(key32, key32, (a, b) => {
        const ab = dimyEncId(suite, a, dimyEphId(suite, b));
        const ba = dimyEncId(suite, b, dimyEphId(suite, a));
        const other = dimyEncId(suite === nodeSuite ? nobleSuite : nodeSuite, a, dimyEphId(suite, b));
        if (!ab.ok || !ba.ok || !other.ok) return false;
        return hex(ab.value) === hex(ba.value) && hex(ab.value) === hex(other.value);
      }),
      { numRuns: 100 },
    );
  });

  it.each([
    '0000000000000000000000000000000000000000000000000000000000000000',
    '0100000000000000000000000000000000000000000000000000000000000000',
    'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
    'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  ])('a low-order peer EphID %s is a typed rejection, not an EncID', (u) => {
    const v = dimyEncId(suite, unhex(DH.alicePrivate), unhex(u));
    expect(v).toMatchObject({ ok: false, codec: 'dimy-encid', reason: 'low-order-ephid', field: 'peerEphId' });
  });

  it('split → encode → decode → reconstruct from any k of n shares (fast-check)', () => {
    const kn = fc.integer({ min: 2, max: 6 }).chain((k) => fc.record({ k: fc.constant(k), n: fc.integer({ min: k, max: 10 }) }));
    fc.assert(
      fc.property(key32, kn, fc.integer(), fc.integer(), (secret, { k, n }, seed, pick) => {
        const ephId = dimyEphId(suite, secret);
        const shares = splitEphId(suite, ephId, seededRng(seed), { k, n });
        expect(shares).toHaveLength(n);
        const received = shares.map((s) => decodeDimyShare(encodeDimyShare(s))).map((v) => (v.ok ? v.value : undefined));
        const chosen = fc.sample(fc.shuffledSubarray(received, { minLength: k, maxLength: k }), { seed: pick, numRuns: 1 })[0] ?? [];
        const v = reconstructEphId(suite, chosen.filter((s): s is DimyShare => s !== undefined), k);
        expect(v.ok && hex(v.value)).toBe(hex(ephId));
      }),
      { numRuns: 100 },
    );
  });
});

describe('SPECS §4.1 share payload layout (version 1, 37 bytes)', () => {
  const ephId = unhex(DH.alicePublic);
  const shares = splitEphId(nodeSuite, ephId, seededRng(7));
  const first = shares[0] as DimyShare;

  it('defaults to k = 3, n = 5 (SPECS §4.2) and tags every share with SHA-256(EphID)[0:3]', () => {
    expect(shares.map((s) => s.index)).toEqual([1, 2, 3, 4, 5]);
    for (const s of shares) expect(hex(s.tag)).toBe(hex(ephIdTag(nodeSuite, ephId)));
    const v = reconstructEphId(nodeSuite, shares.slice(2));
    expect(v.ok && hex(v.value)).toBe(DH.alicePublic);
  });

  it('is version ‖ tag ‖ index ‖ 32 share bytes', () => {
    const payload = encodeDimyShare(first);
    expect(payload).toHaveLength(DIMY_SHARE_PAYLOAD_BYTES);
    expect(DIMY_SHARE_PAYLOAD_BYTES).toBe(37);
    expect(hex(payload)).toBe(`01${hex(first.tag)}01${hex(first.bytes)}`);
  });

  it('decode returns copies', () => {
    const payload = encodeDimyShare(first);
    const v = decodeDimyShare(payload);
    payload.fill(0);
    expect(v.ok && hex(v.value.bytes)).toBe(hex(first.bytes));
  });

  const payload = encodeDimyShare(first);
  it.each([
    ['too-short', undefined, new Uint8Array(0)],
    ['too-short', undefined, payload.subarray(0, 36)],
    ['too-long', undefined, Uint8Array.from([...payload, 0])],
    ['bad-version', 'version', Uint8Array.from(payload, (b, i) => (i === 0 ? 2 : b))],
    ['bad-version', 'version', Uint8Array.from(payload, (b, i) => (i === 0 ? 0 : b))],
    ['bad-index', 'index', Uint8Array.from(payload, (b, i) => (i === 4 ? 0 : b))],
  ])('decode rejects %s (%s)', (reason, field, bytes) => {
    const v = decodeDimyShare(bytes);
    expect(reasonOf(v)).toBe(reason);
    expect(v.ok ? undefined : v.field).toBe(field);
    expect(!v.ok && v.codec).toBe(DIMY_SHARE_CODEC);
  });
});

describe.each(SUITES)('SPECS §4.1 hash check: reconstruction rejections (%s)', (_n, suite) => {
  const ephId = dimyEphId(suite, seededRng(8).bytes(32));
  const shares = splitEphId(suite, ephId, seededRng(9));
  const [a, b, c] = shares as [DimyShare, DimyShare, DimyShare];
  const other = splitEphId(suite, dimyEphId(suite, seededRng(10).bytes(32)), seededRng(11));
  const flipped: DimyShare = { ...c, bytes: c.bytes.map((v, i) => (i === 5 ? v ^ 1 : v)) };
  it.each([
    ['tag-mismatch', 'dimy-ephid', [a, b, flipped]],
    ['tag-mismatch', 'dimy-ephid', [a, b, { ...(other[2] as DimyShare), tag: a.tag }]],
    ['tag-mismatch', 'dimy-ephid', [a, b, { ...c, index: 4 }]],
    ['mixed-tags', 'dimy-ephid', [a, b, other[2] as DimyShare]],
    ['bad-share-length', 'dimy-ephid', [a, b, { ...c, bytes: c.bytes.subarray(0, 31) }]],
    ['too-few-shares', 'shamir', [a, b]],
    ['too-few-shares', 'shamir', []],
    ['duplicate-index', 'shamir', [a, b, a]],
  ] as const)('%s', (reason, codec, input) => {
    const v = reconstructEphId(suite, input, 3);
    expect(reasonOf(v)).toBe(reason);
    expect(!v.ok && v.codec).toBe(codec);
  });

  it('k = 5 shares of a k = 3 EphID reconstruct it; the same 3 shares at k = 2 fail the tag check', () => {
    const five = reconstructEphId(suite, shares, 5);
    expect(five.ok && hex(five.value)).toBe(hex(ephId));
    expect(reasonOf(reconstructEphId(suite, [a, b], 2))).toBe('tag-mismatch');
  });
});

describe('SPECS §4.1 fuzz: hostile share payloads give typed rejections only', () => {
  it('12,000 random byte strings (lengths 0–80, half of them 37 bytes with version 1)', () => {
    const next = prng(41);
    const counts = new Map<string, number>();
    for (let run = 0; run < 12_000; run++) {
      const length = run % 2 === 0 ? DIMY_SHARE_PAYLOAD_BYTES : Math.floor(next() * 81);
      const bytes = Uint8Array.from({ length }, () => Math.floor(next() * 256));
      if (run % 4 === 0 && length > 0) bytes[0] = 1;
      const v = decodeDimyShare(bytes);
      if (!isTyped(v)) throw new Error(`untyped verdict for ${hex(bytes)}`);
      counts.set(reasonOf(v), (counts.get(reasonOf(v)) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual(['accepted', 'bad-index', 'bad-version', 'too-long', 'too-short']);
  });

  it('2,000 random groups of decoded shares (shared or random tags) reconstruct only to typed verdicts (both suites)', () => {
    const next = prng(42);
    const randomBytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => Math.floor(next() * 256));
    for (let run = 0; run < 2_000; run++) {
      const suite = run % 2 === 0 ? nobleSuite : nodeSuite;
      const tag = randomBytes(3);
      const group = Array.from({ length: Math.floor(next() * 6) }, () => {
        const payload = Uint8Array.from([1, ...(next() < 0.8 ? tag : randomBytes(3)), 1 + Math.floor(next() * 255), ...randomBytes(32)]);
        const v = decodeDimyShare(payload);
        if (!v.ok) throw new Error(v.reason);
        return v.value;
      });
      const v = reconstructEphId(suite, group, 1 + Math.floor(next() * 4) + 1);
      if (!isTyped(v)) throw new Error('untyped verdict');
    }
  });
});

describe('SPECS §4.1 caller misuse throws MisuseError naming the field', () => {
  const ephId = unhex(DH.alicePublic);
  const share = (splitEphId(nodeSuite, ephId, seededRng(12)) as [DimyShare])[0];
  it.each([
    ['secret', () => dimyEphId(nodeSuite, new Uint8Array(31))],
    ['ephId', () => ephIdTag(nodeSuite, new Uint8Array(16))],
    ['ephId', () => splitEphId(nodeSuite, new Uint8Array(16), seededRng(1))],
    ['randomness', () => splitEphId(nodeSuite, ephId, new Uint8Array(63))],
    ['k', () => splitEphId(nodeSuite, ephId, seededRng(1), { k: 1 })],
    ['n', () => splitEphId(nodeSuite, ephId, seededRng(1), { k: 3, n: 2 })],
    ['share.tag', () => encodeDimyShare({ ...share, tag: new Uint8Array(4) })],
    ['share.index', () => encodeDimyShare({ ...share, index: 0 })],
    ['share.bytes', () => encodeDimyShare({ ...share, bytes: new Uint8Array(16) })],
    ['bytes', () => decodeDimyShare('x' as unknown as Uint8Array)],
    ['k', () => reconstructEphId(nodeSuite, [share], 1)],
    ['secret', () => dimyEncId(nodeSuite, new Uint8Array(0), ephId)],
    ['peerEphId', () => dimyEncId(nodeSuite, new Uint8Array(32), new Uint8Array(33))],
  ])('%s', (field, fn) => {
    expect(misuseField(fn)).toBe(field);
  });
});
