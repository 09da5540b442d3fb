/**
 * The crypto suite every protocol file calls (DESIGN.md "Crypto suite").
 * Two implementations pass the same vectors: @noble (protocol/crypto/noble.ts,
 * pure JS, runs anywhere) and node:crypto (services/crypto/node.ts, OpenSSL,
 * ~30× faster on Node) which is injected on hot paths.
 *
 * All functions are synchronous and total over well-formed arguments; a
 * wrong-length key or IV is caller misuse and throws MisuseError naming the
 * argument. Verification functions never throw on hostile signatures or
 * keys: they return false.
 */
export interface CryptoSuite {
  /** Implementation name for reports and benches, e.g. `noble`, `node`. */
  readonly name: string;

  sha256(data: Uint8Array): Uint8Array;
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;
  /** HKDF-SHA256 (RFC 5869). `salt` may be empty (= HashLen zero bytes). */
  hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array;
  /**
   * hkdfSha256 of many IKMs under one salt and info: `ikms` holds n IKMs of `ikmLength` bytes back to
   * back; OKM i goes to bytes i·length … of the result (`out` when given, ≥ n·length bytes). Equal to
   * n hkdfSha256 calls, without their per-call setup (GAEN: one RPIK per diagnosis key, SPECS §1.3).
   */
  hkdfSha256Batch(ikms: Uint8Array, ikmLength: number, salt: Uint8Array, info: Uint8Array, length: number, out?: Uint8Array): Uint8Array;

  /** AES-128/256 (key length selects), ECB, no padding; data length a multiple of 16. */
  aesEcbEncrypt(key: Uint8Array, data: Uint8Array): Uint8Array;
  aesEcbDecrypt(key: Uint8Array, data: Uint8Array): Uint8Array;
  /**
   * AES-ECB, no padding, of n segments under n keys used once each (no key caching): segment i is
   * blockCounts[i] blocks of `data` (segments back to back), its key bytes i·keyLength … of `keys`
   * (keyLength 16 or 32). The ciphertext keeps the layout of `data` (in `out` when given). Equal to
   * n aesEcbEncrypt calls (GAEN: the RPIs of many diagnosis keys, SPECS §1.3).
   */
  aesEcbEncryptBatch(keys: Uint8Array, keyLength: number, data: Uint8Array, blockCounts: ArrayLike<number>, out?: Uint8Array): Uint8Array;
  /** AES-CTR with a full 16-byte initial counter block (big-endian increment of the whole block). */
  aesCtr(key: Uint8Array, counter: Uint8Array, data: Uint8Array): Uint8Array;
  /** AES-CBC, no padding (callers pad, e.g. PKCS#7 for Fernet); data length a multiple of 16. */
  aesCbcEncrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array;
  aesCbcDecrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array;

  /** X25519 public key (32 bytes) from a 32-byte private scalar (RFC 7748 clamping). */
  x25519PublicKey(privateKey: Uint8Array): Uint8Array;
  /** X25519 shared secret. Returns undefined for a low-order peer key (all-zero output). */
  x25519(privateKey: Uint8Array, peerPublicKey: Uint8Array): Uint8Array | undefined;

  /** Ed25519 public key from a 32-byte seed (RFC 8032). */
  ed25519PublicKey(seed: Uint8Array): Uint8Array;
  ed25519Sign(seed: Uint8Array, message: Uint8Array): Uint8Array;
  ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;

  /** ECDSA P-256 public key, SEC1 uncompressed (65 bytes), from a 32-byte private key. */
  p256PublicKey(privateKey: Uint8Array): Uint8Array;
  /** ECDSA P-256 / SHA-256 signature, DER-encoded (as in GAEN export.sig). */
  p256Sign(privateKey: Uint8Array, message: Uint8Array): Uint8Array;
  /** Verify a DER signature; `publicKey` SEC1 compressed or uncompressed. Never throws. */
  p256Verify(publicKey: Uint8Array, message: Uint8Array, derSignature: Uint8Array): boolean;

  /** Cryptographically secure random bytes (never used in simulation: seeded Rng there). */
  randomBytes(length: number): Uint8Array;
}
