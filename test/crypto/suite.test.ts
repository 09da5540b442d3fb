/**
 * Both CryptoSuites against the official vectors (test/vectors/crypto-rfc.json), misuse and hostile
 * input, and fast-check properties that noble and node:crypto agree byte for byte.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { constantTimeEqual } from '../../protocol/crypto/ct.ts';
import { nobleSuite } from '../../protocol/crypto/noble.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import { MisuseError } from '../../protocol/errors.ts';
import { cryptoSuiteByName, defaultCryptoSuite } from '../../services/crypto/index.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import vectors from '../vectors/crypto-rfc.json' with { type: 'json' };

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

/** DER `SEQUENCE { INTEGER r, INTEGER s }` from big-endian r, s (short-form lengths suffice for P-256). */
function derSignature(r: Uint8Array, s: Uint8Array): Uint8Array {
  const integer = (v: Uint8Array): number[] => {
    let i = 0;
    while (i < v.length - 1 && v[i] === 0) i++;
    const body = [...v.subarray(i)];
    if ((body[0] ?? 0) >= 0x80) body.unshift(0);
    return [0x02, body.length, ...body];
  };
  const content = [...integer(r), ...integer(s)];
  return Uint8Array.from([0x30, content.length, ...content]);
}

const bigintTo32 = (v: bigint): Uint8Array => hex(v.toString(16).padStart(64, '0'));

function expectMisuse(fn: () => unknown, field: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(MisuseError);
  expect((thrown as MisuseError).field).toBe(field);
}

/** RFC 7748 §6.1 / libsodium blocklist: u-coordinates whose X25519 output is all zero. */
const LOW_ORDER_U = [
  '0000000000000000000000000000000000000000000000000000000000000000', // 0
  '0100000000000000000000000000000000000000000000000000000000000000', // 1
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800', // order 8
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157', // order 8
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // p - 1
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // p (non-canonical 0)
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // p + 1 (non-canonical 1)
  '0000000000000000000000000000000000000000000000000000000000000080', // 0 with the masked top bit set
];

/** The 8 small-order Ed25519 points (RFC 8032 strict verification refuses them as public keys). */
const ED25519_SMALL_ORDER = [
  '0100000000000000000000000000000000000000000000000000000000000000', // identity
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // order 2
  '0000000000000000000000000000000000000000000000000000000000000000', // order 4
  '0000000000000000000000000000000000000000000000000000000000000080',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a', // order 8
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
];
/** y ≥ p encodings: p + 2, p + 3, 2^255 − 1 and one with the sign bit set. */
const ED25519_NON_CANONICAL = [
  'efffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'f0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'f3ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
];

const P256 = vectors.p256;
const p256Public = hex(`04${P256.publicKeyX}${P256.publicKeyY}`);
const p256Compressed = Uint8Array.from([
  ((hex(P256.publicKeyY)[31] ?? 0) & 1) === 1 ? 0x03 : 0x02,
  ...hex(P256.publicKeyX),
]);

describe.each([nobleSuite, nodeSuite])('$name suite', (suite: CryptoSuite) => {
  it.each(vectors.sha256.cases)('$name', (c) => {
    expect(toHex(suite.sha256(hex(c.message)))).toBe(c.digest);
  });

  it.each(vectors.hkdfSha256.cases)('$name', (c) => {
    expect(toHex(suite.hkdfSha256(hex(c.ikm), hex(c.salt), hex(c.info), c.length))).toBe(c.okm);
    // PRK = HMAC(salt, IKM) (RFC 5869 §2.2); an empty salt stands for HashLen zeros.
    const salt = c.salt === '' ? new Uint8Array(32) : hex(c.salt);
    expect(toHex(suite.hmacSha256(salt, hex(c.ikm)))).toBe(c.prk);
  });

  it.each(vectors.hmacSha256.cases)('$name', (c) => {
    expect(toHex(suite.hmacSha256(hex(c.key), hex(c.data))).slice(0, c.mac.length)).toBe(c.mac);
  });

  describe('NIST SP 800-38A Appendix F', () => {
    const run = (c: (typeof vectors.aes.cases)[number], input: Uint8Array, encrypt: boolean): Uint8Array => {
      const key = hex(c.key);
      if (c.mode === 'ecb') return encrypt ? suite.aesEcbEncrypt(key, input) : suite.aesEcbDecrypt(key, input);
      if (c.mode === 'cbc') {
        const iv = hex(c.iv ?? '');
        return encrypt ? suite.aesCbcEncrypt(key, iv, input) : suite.aesCbcDecrypt(key, iv, input);
      }
      return suite.aesCtr(key, hex(c.counter ?? ''), input);
    };
    it.each(vectors.aes.cases)('$name', (c) => {
      expect(toHex(run(c, hex(c.plaintext), true))).toBe(c.ciphertext);
    });
    it.each(vectors.aes.cases)('$decryptName', (c) => {
      expect(toHex(run(c, hex(c.ciphertext), false))).toBe(c.plaintext);
    });
  });

  it('AES-CTR increments the whole 128-bit counter block (SP 800-38A B.1), with carries and wrap', () => {
    const key = hex('2b7e151628aed2a6abf7158809cf4f3c');
    for (const [start, next] of [
      ['ffffffffffffffffffffffffffffffff', '00000000000000000000000000000000'],
      ['000000000000000000000000ffffffff', '00000000000000000000000100000000'],
      ['00000000ffffffffffffffffffffffff', '00000001000000000000000000000000'],
    ] as const) {
      const stream = suite.aesCtr(key, hex(start), new Uint8Array(32));
      expect(toHex(stream)).toBe(toHex(suite.aesEcbEncrypt(key, hex(start + next))));
    }
  });

  describe('RFC 7748 X25519', () => {
    it.each(vectors.x25519.scalarMult)('$name', (c) => {
      expect(toHex(suite.x25519(hex(c.scalar), hex(c.u)) ?? new Uint8Array())).toBe(c.output);
    });
    it('6.1 Alice and Bob derive the same shared secret', () => {
      const v = vectors.x25519.diffieHellman;
      expect(toHex(suite.x25519PublicKey(hex(v.alicePrivate)))).toBe(v.alicePublic);
      expect(toHex(suite.x25519PublicKey(hex(v.bobPrivate)))).toBe(v.bobPublic);
      expect(toHex(suite.x25519(hex(v.alicePrivate), hex(v.bobPublic)) ?? new Uint8Array())).toBe(v.shared);
      expect(toHex(suite.x25519(hex(v.bobPrivate), hex(v.alicePublic)) ?? new Uint8Array())).toBe(v.shared);
    });
    it.each(LOW_ORDER_U)('6.1 all-zero check: low-order peer key %s gives undefined', (u) => {
      expect(suite.x25519(hex(vectors.x25519.diffieHellman.alicePrivate), hex(u))).toBeUndefined();
    });
  });

  describe('RFC 8032 7.1 Ed25519', () => {
    it.each(vectors.ed25519.cases)('$name', (c) => {
      const message = hex(c.message);
      expect(toHex(suite.ed25519PublicKey(hex(c.secretKey)))).toBe(c.publicKey);
      expect(toHex(suite.ed25519Sign(hex(c.secretKey), message))).toBe(c.signature);
      expect(suite.ed25519Verify(hex(c.publicKey), message, hex(c.signature))).toBe(true);
      const tampered = hex(c.signature);
      tampered[0] = (tampered[0] ?? 0) ^ 1;
      expect(suite.ed25519Verify(hex(c.publicKey), message, tampered)).toBe(false);
      expect(suite.ed25519Verify(hex(c.publicKey), Uint8Array.from([...message, 0]), hex(c.signature))).toBe(false);
    });
  });

  it.each(ED25519_SMALL_ORDER)('RFC 8032 5.1.7 strict: small-order public key %s verifies nothing', (key) => {
    // With A = identity, R = identity and S = 0 satisfy the cofactorless equation for every message.
    const forged = hex(ED25519_SMALL_ORDER[0]! + '00'.repeat(32));
    expect(suite.ed25519Verify(hex(key), new Uint8Array(0), forged)).toBe(false);
    expect(suite.ed25519Verify(hex(key), ascii('any message'), forged)).toBe(false);
  });

  describe('RFC 6979 A.2.5 ECDSA P-256 / SHA-256', () => {
    it('A.2.5 public key U = xG', () => {
      expect(toHex(suite.p256PublicKey(hex(P256.privateKey)))).toBe(toHex(p256Public));
    });
    it.each(P256.cases)('$name verifies (DER-encoded r, s; uncompressed and compressed key)', (c) => {
      const sig = derSignature(hex(c.r), hex(c.s));
      expect(suite.p256Verify(p256Public, hex(c.message), sig)).toBe(true);
      expect(suite.p256Verify(p256Compressed, hex(c.message), sig)).toBe(true);
      expect(suite.p256Verify(p256Public, ascii('other'), sig)).toBe(false);
      // (r, n − s) is the other valid signature: high and low S are both accepted, as OpenSSL does.
      const flipped = bigintTo32(P256_N - BigInt(`0x${c.s}`));
      expect(suite.p256Verify(p256Public, hex(c.message), derSignature(hex(c.r), flipped))).toBe(true);
    });
    it.each(P256.cases)('$name: a fresh signature verifies on both suites', (c) => {
      const sig = suite.p256Sign(hex(P256.privateKey), hex(c.message));
      expect(sig[0]).toBe(0x30);
      expect(nobleSuite.p256Verify(p256Public, hex(c.message), sig)).toBe(true);
      expect(nodeSuite.p256Verify(p256Public, hex(c.message), sig)).toBe(true);
      // noble signs with RFC 6979 deterministic k and no low-S normalisation: the RFC's exact bytes.
      if (suite === nobleSuite) expect(toHex(sig)).toBe(toHex(derSignature(hex(c.r), hex(c.s))));
    });
  });

  describe('misuse throws MisuseError naming the argument', () => {
    const k16 = new Uint8Array(16);
    const k32 = new Uint8Array(32).fill(1);
    it.each([
      ['aesEcbEncrypt key', 'key', () => suite.aesEcbEncrypt(new Uint8Array(24), k16)],
      ['aesEcbDecrypt data', 'data', () => suite.aesEcbDecrypt(k16, new Uint8Array(15))],
      ['aesCtr key', 'key', () => suite.aesCtr(new Uint8Array(15), k16, k16)],
      ['aesCtr counter', 'counter', () => suite.aesCtr(k16, new Uint8Array(12), k16)],
      ['aesCbcEncrypt iv', 'iv', () => suite.aesCbcEncrypt(k16, new Uint8Array(8), k16)],
      ['aesCbcDecrypt data', 'data', () => suite.aesCbcDecrypt(k32, k16, new Uint8Array(17))],
      ['hkdfSha256 length too long', 'length', () => suite.hkdfSha256(k16, k16, k16, 255 * 32 + 1)],
      ['hkdfSha256 length negative', 'length', () => suite.hkdfSha256(k16, k16, k16, -1)],
      ['x25519PublicKey privateKey', 'privateKey', () => suite.x25519PublicKey(k16)],
      ['x25519 privateKey', 'privateKey', () => suite.x25519(new Uint8Array(31), k32)],
      ['x25519 peerPublicKey', 'peerPublicKey', () => suite.x25519(k32, new Uint8Array(33))],
      ['ed25519PublicKey seed', 'seed', () => suite.ed25519PublicKey(new Uint8Array(64))],
      ['ed25519Sign seed', 'seed', () => suite.ed25519Sign(k16, k16)],
      ['p256PublicKey privateKey', 'privateKey', () => suite.p256PublicKey(k16)],
      ['p256Sign privateKey zero', 'privateKey', () => suite.p256Sign(new Uint8Array(32), k16)],
      ['p256Sign privateKey ≥ n', 'privateKey', () => suite.p256Sign(bigintTo32(P256_N), k16)],
      ['randomBytes length', 'length', () => suite.randomBytes(-1)],
    ] as const)('%s', (_name, field, fn) => expectMisuse(fn, field));
  });

  describe('hostile signatures and keys: verify returns false, never throws', () => {
    const msg = ascii('sample');
    const edCase = vectors.ed25519.cases[0]!;
    const goodDer = derSignature(hex(P256.cases[0]!.r), hex(P256.cases[0]!.s));
    it.each([
      ['empty signature', hex(edCase.publicKey), new Uint8Array(0)],
      ['63-byte signature', hex(edCase.publicKey), new Uint8Array(63)],
      ['65-byte signature', hex(edCase.publicKey), new Uint8Array(65)],
      ['all-0xff signature (S ≥ L)', hex(edCase.publicKey), new Uint8Array(64).fill(0xff)],
      ['31-byte key', new Uint8Array(31), hex(edCase.signature)],
      ['all-0xff key (not a point)', new Uint8Array(32).fill(0xff), hex(edCase.signature)],
      ['zero key', new Uint8Array(32), new Uint8Array(64)],
    ])('Ed25519: %s', (_name, key, sig) => {
      expect(suite.ed25519Verify(key, msg, sig)).toBe(false);
    });
    it.each([
      ['empty signature', p256Public, new Uint8Array(0)],
      ['garbage signature', p256Public, ascii('garbage')],
      ['trailing byte after DER', p256Public, Uint8Array.from([...goodDer, 0])],
      ['r = s = 0', p256Public, derSignature(new Uint8Array(1), new Uint8Array(1))],
      ['s = n', p256Public, derSignature(hex(P256.cases[0]!.r), bigintTo32(P256_N))],
      ['raw 64-byte r‖s instead of DER', p256Public, hex(P256.cases[0]!.r + P256.cases[0]!.s)],
      ['empty key', new Uint8Array(0), goodDer],
      ['x-only 32-byte key', hex(P256.publicKeyX), goodDer],
      ['hybrid 0x06 prefix', Uint8Array.from([0x06, ...p256Public.subarray(1)]), goodDer],
      ['point off the curve', Uint8Array.from([0x04, ...new Uint8Array(64).fill(7)]), goodDer],
      ['compressed x not on the curve', Uint8Array.from([0x02, ...new Uint8Array(32).fill(0xff)]), goodDer],
      ['infinity 0x00', Uint8Array.of(0), goodDer],
    ])('P-256: %s', (_name, key, sig) => {
      expect(suite.p256Verify(key, msg, sig)).toBe(false);
    });
  });

  it('randomBytes gives fresh bytes of the asked length', () => {
    expect(suite.randomBytes(0)).toHaveLength(0);
    const big = suite.randomBytes(70_000);
    expect(big).toHaveLength(70_000);
    expect(toHex(suite.randomBytes(32))).not.toBe(toHex(suite.randomBytes(32)));
  });
});

describe('test lists', () => {
  it('ED25519_SMALL_ORDER holds 8 distinct small-order points (per noble)', () => {
    const points = ED25519_SMALL_ORDER.map((e) => ed25519.Point.fromBytes(hex(e), false));
    expect(points.every((point) => point.isSmallOrder())).toBe(true);
    expect(new Set(points.map((point) => toHex(point.toBytes()))).size).toBe(8);
  });
});

describe('constantTimeEqual (protocol/crypto/ct.ts)', () => {
  it('is byte equality; a length mismatch is unequal', () => {
    expect(constantTimeEqual(hex('00ff10'), hex('00ff10'))).toBe(true);
    expect(constantTimeEqual(new Uint8Array(0), new Uint8Array(0))).toBe(true);
    expect(constantTimeEqual(hex('00ff10'), hex('00ff11'))).toBe(false);
    expect(constantTimeEqual(hex('80ff10'), hex('00ff10'))).toBe(false);
    expect(constantTimeEqual(hex('00ff'), hex('00ff10'))).toBe(false);
    expect(constantTimeEqual(hex('00ff10').subarray(1), hex('ff10'))).toBe(true);
  });
});

describe('services/crypto/index', () => {
  it('looks suites up by name; node is the default', () => {
    expect(cryptoSuiteByName('noble')).toBe(nobleSuite);
    expect(cryptoSuiteByName('node')).toBe(nodeSuite);
    expect(defaultCryptoSuite).toBe(nodeSuite);
    expectMisuse(() => cryptoSuiteByName('openssl' as 'node'), 'name');
  });
});

describe('noble and node:crypto agree on random inputs (fast-check)', () => {
  const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });
  const k32 = bytes(32, 32);
  const aesKey = fc.oneof(bytes(16, 16), k32);
  const blocks = fc.integer({ min: 0, max: 8 }).chain((n) => bytes(16 * n, 16 * n));
  // Counters near the top of the block exercise the carry across bytes and the 2^128 wrap.
  const counter = fc.oneof(bytes(16, 16), bytes(1, 15).map((low) => Uint8Array.from([...new Uint8Array(16 - low.length).fill(0xff), ...low])));
  const p256Key = k32.filter((k) => {
    const d = BigInt(`0x${toHex(k)}`);
    return d > 0n && d < P256_N;
  });
  const same = (a: Uint8Array | undefined, b: Uint8Array | undefined): void =>
    expect(a === undefined ? undefined : toHex(a)).toBe(b === undefined ? undefined : toHex(b));
  const runs = { numRuns: 100 };
  const slowRuns = { numRuns: 25 };

  it('FIPS 180-4 SHA-256', () => fc.assert(fc.property(bytes(0, 300), (d) => { same(nobleSuite.sha256(d), nodeSuite.sha256(d)); }), runs));
  it('RFC 2104 HMAC-SHA256', () =>
    fc.assert(fc.property(bytes(0, 200), bytes(0, 200), (k, d) => { same(nobleSuite.hmacSha256(k, d), nodeSuite.hmacSha256(k, d)); }), runs));
  it('RFC 5869 HKDF-SHA256 (incl. info > 1024 bytes)', () =>
    fc.assert(
      fc.property(bytes(0, 80), bytes(0, 80), fc.oneof(bytes(0, 80), bytes(1025, 1100)), fc.integer({ min: 0, max: 300 }), (ikm, salt, info, len) => {
        same(nobleSuite.hkdfSha256(ikm, salt, info, len), nodeSuite.hkdfSha256(ikm, salt, info, len));
      }),
      runs,
    ));
  it('SP 800-38A ECB encrypt/decrypt round trip', () =>
    fc.assert(
      fc.property(aesKey, blocks, (key, data) => {
        const ct = nobleSuite.aesEcbEncrypt(key, data);
        same(ct, nodeSuite.aesEcbEncrypt(key, data));
        same(nobleSuite.aesEcbDecrypt(key, ct), data);
        same(nodeSuite.aesEcbDecrypt(key, ct), data);
      }),
      runs,
    ));
  it('SP 800-38A CBC encrypt/decrypt round trip', () =>
    fc.assert(
      fc.property(aesKey, bytes(16, 16), blocks, (key, iv, data) => {
        const ct = nobleSuite.aesCbcEncrypt(key, iv, data);
        same(ct, nodeSuite.aesCbcEncrypt(key, iv, data));
        same(nobleSuite.aesCbcDecrypt(key, iv, ct), data);
        same(nodeSuite.aesCbcDecrypt(key, iv, ct), data);
      }),
      runs,
    ));
  it('SP 800-38A CTR (any length, counters near wrap) round trip', () =>
    fc.assert(
      fc.property(aesKey, counter, fc.oneof(bytes(0, 100), bytes(1000, 1100)), (key, ctr, data) => {
        const ct = nobleSuite.aesCtr(key, ctr, data);
        same(ct, nodeSuite.aesCtr(key, ctr, data));
        same(nodeSuite.aesCtr(key, ctr, ct), data);
      }),
      runs,
    ));
  it('SP 800-38A CBC and CTR agree on both sides of node.ts\'s ECB fast-path thresholds', () => {
    const key = Uint8Array.from({ length: 16 }, (_, i) => i * 7);
    const iv = Uint8Array.from({ length: 16 }, (_, i) => 0xf0 + i);
    for (const length of [1008, 1024, 1040, 4080, 4096, 4112, 8192]) {
      const data = Uint8Array.from({ length }, (_, i) => (i * 31) & 0xff);
      same(nobleSuite.aesCtr(key, iv, data), nodeSuite.aesCtr(key, iv, data));
      same(nobleSuite.aesCtr(key, iv, data.subarray(1)), nodeSuite.aesCtr(key, iv, data.subarray(1)));
      const ct = nobleSuite.aesCbcEncrypt(key, iv, data);
      same(ct, nodeSuite.aesCbcEncrypt(key, iv, data));
      same(nodeSuite.aesCbcDecrypt(key, iv, ct), data);
    }
  });
  it('RFC 7748 X25519 public keys and shared secrets', () =>
    fc.assert(
      fc.property(k32, k32, (a, u) => {
        same(nobleSuite.x25519PublicKey(a), nodeSuite.x25519PublicKey(a));
        same(nobleSuite.x25519(a, u), nodeSuite.x25519(a, u));
      }),
      slowRuns,
    ));
  it('RFC 8032 Ed25519 keys, deterministic signatures, cross-verification', () =>
    fc.assert(
      fc.property(k32, bytes(0, 200), (seed, msg) => {
        const pub = nobleSuite.ed25519PublicKey(seed);
        same(pub, nodeSuite.ed25519PublicKey(seed));
        const sig = nodeSuite.ed25519Sign(seed, msg);
        same(nobleSuite.ed25519Sign(seed, msg), sig);
        expect(nobleSuite.ed25519Verify(pub, msg, sig)).toBe(true);
        expect(nodeSuite.ed25519Verify(pub, msg, sig)).toBe(true);
        const other = Uint8Array.from([...msg, 1]);
        expect(nobleSuite.ed25519Verify(pub, other, sig)).toBe(false);
        expect(nodeSuite.ed25519Verify(pub, other, sig)).toBe(false);
      }),
      slowRuns,
    ));
  it('Ed25519 verify agrees on garbage, small-order and non-canonical keys and signatures', () => {
    const key = fc.oneof(k32, fc.constantFrom(...ED25519_SMALL_ORDER, ...ED25519_NON_CANONICAL).map(hex));
    const sig = fc.oneof(bytes(64, 64), fc.constantFrom(...ED25519_SMALL_ORDER).map((r) => hex(r + '00'.repeat(32))));
    fc.assert(
      fc.property(key, bytes(0, 40), sig, (pub, msg, s) => {
        expect(nodeSuite.ed25519Verify(pub, msg, s)).toBe(nobleSuite.ed25519Verify(pub, msg, s));
      }),
      { numRuns: 200 },
    );
  });
  it('FIPS 186-4 ECDSA P-256 keys and cross-verified signatures', () =>
    fc.assert(
      fc.property(p256Key, bytes(0, 200), (priv, msg) => {
        const pub = nobleSuite.p256PublicKey(priv);
        same(pub, nodeSuite.p256PublicKey(priv));
        const byNode = nodeSuite.p256Sign(priv, msg);
        const byNoble = nobleSuite.p256Sign(priv, msg);
        for (const suite of [nobleSuite, nodeSuite]) {
          expect(suite.p256Verify(pub, msg, byNode)).toBe(true);
          expect(suite.p256Verify(pub, msg, byNoble)).toBe(true);
          expect(suite.p256Verify(pub, Uint8Array.from([...msg, 1]), byNoble)).toBe(false);
        }
      }),
      slowRuns,
    ));
});
