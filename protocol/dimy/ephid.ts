/**
 * DIMY ephemeral identifiers, their shares and EncIDs (SPECS §4.1, parameter choices §4.2, §7.17–21).
 *
 *   secret          32 random bytes per epoch (the caller draws them: randomness is an argument)
 *   EphID           X25519 public key of secret (RFC 7748), 32 bytes — the 25T1 size (SPECS §4.2);
 *                   SPECS §7.18: the paper's curve is unnamed and 32-byte EphIDs fit X25519
 *   tag             SHA-256(EphID)[0:3], the paper's hash check (§4.1 footnote 4, §7.21)
 *   shares          Shamir k-out-of-n of the EphID over GF(2^8) (shamir.ts), default k = 3, n = 5
 *   EncID           X25519(own secret, peer EphID), 32 bytes: g^{xy}, equal on both sides (§4.1);
 *                   used raw as in the paper (no KDF), inserted into the DBF and then dropped
 *
 * Share payload (one advertisement's data; the framing fragments it, it exceeds a legacy
 * 31-byte advertisement), version 1, 37 bytes, fixed layout:
 *
 *   offset  len  field
 *        0    1  version = 0x01
 *        1    3  tag = SHA-256(EphID)[0:3]
 *        4    1  share index x, 1–255
 *        5   32  share bytes p_0(x) ‖ … ‖ p_31(x)
 *
 * k and n are deployment parameters, not carried in the payload: every phone of one city uses
 * the same k (a phone with another k fails the tag check, a typed rejection).
 *
 * Hostile bytes never throw. decodeDimyShare rejects with codec `dimy-share`:
 *   too-short / too-long   length ≠ 37
 *   bad-version            byte 0 ≠ 0x01 (field `version`)
 *   bad-index              index 0 (field `index`; 0 would be the secret itself)
 * reconstructEphId rejects with codec `dimy-ephid` (or passes on a `shamir` rejection):
 *   mixed-tags             shares with different tags (field `shares[i].tag`)
 *   bad-share-length       a share that is not 32 bytes (field `shares[i].bytes`)
 *   tag-mismatch           SHA-256(reconstructed)[0:3] ≠ tag: a wrong, corrupt or foreign share
 * dimyEncId rejects with codec `dimy-encid`:
 *   low-order-ephid        the peer EphID is a low-order point (X25519 output all zero)
 * The 24-bit tag detects accidents, not forgery: anyone can grind an EphID to a chosen tag
 * with ~2^24 hashes. Caller misuse (wrong secret length, k/n out of range) throws MisuseError.
 */
import type { CryptoSuite } from '../crypto/suite.ts';
import { accept, ensure, reject, type Rejection, type Verdict } from '../errors.ts';
import { combineShares, DIMY_DEFAULT_K, DIMY_DEFAULT_N, splitSecret, type Randomness, type ShamirShare } from './shamir.ts';

export const DIMY_SHARE_CODEC = 'dimy-share';
export const DIMY_SHARE_REJECTION_REASONS = ['too-short', 'too-long', 'bad-version', 'bad-index'] as const;
export const DIMY_EPHID_CODEC = 'dimy-ephid';
export const DIMY_EPHID_REJECTION_REASONS = ['mixed-tags', 'bad-share-length', 'tag-mismatch'] as const;
export const DIMY_ENCID_CODEC = 'dimy-encid';
export const DIMY_ENCID_REJECTION_REASONS = ['low-order-ephid'] as const;

/** Per-epoch X25519 private key, bytes. RFC 7748; SPECS §4.1 "random X_At". */
export const DIMY_SECRET_BYTES = 32;
/** EphID = X25519 public key, bytes. SPECS §4.2 (25T1: 32 B), §7.18. */
export const DIMY_EPHID_BYTES = 32;
/** EncID = X25519 shared secret, bytes. SPECS §4.1. */
export const DIMY_ENCID_BYTES = 32;
/** Tag = first 3 bytes of SHA-256(EphID). SPECS §4.1 footnote 4, §7.21. */
export const DIMY_TAG_BYTES = 3;
/** Share payload version byte (this file's layout). */
export const DIMY_SHARE_VERSION = 0x01;
/** Share payload offsets and length, bytes (layout in the header). */
const VERSION_OFFSET = 0;
const TAG_OFFSET = 1;
const INDEX_OFFSET = TAG_OFFSET + DIMY_TAG_BYTES;
const BYTES_OFFSET = INDEX_OFFSET + 1;
export const DIMY_SHARE_PAYLOAD_BYTES = BYTES_OFFSET + DIMY_EPHID_BYTES;

/** One received or broadcast share of an EphID. */
export interface DimyShare extends ShamirShare {
  /** SHA-256(EphID)[0:3]: groups shares of one EphID and verifies the reconstruction. */
  readonly tag: Uint8Array;
}

export interface DimySplitOptions {
  /** Shares needed to reconstruct (default 3, SPECS §4.2). */
  readonly k?: number;
  /** Shares broadcast per EphID (default 5, SPECS §4.2). */
  readonly n?: number;
}

function checkBytes(value: Uint8Array, length: number, field: string): void {
  ensure(value instanceof Uint8Array, field, 'must be a Uint8Array');
  ensure(value.length === length, field, `must be ${length} bytes, got ${value.length}`);
}

/** EphID = X25519 public key of the 32-byte epoch secret. SPECS §4.1, §7.18. */
export function dimyEphId(crypto: CryptoSuite, secret: Uint8Array): Uint8Array {
  checkBytes(secret, DIMY_SECRET_BYTES, 'secret');
  return crypto.x25519PublicKey(secret);
}

/** tag = SHA-256(EphID)[0:3]. SPECS §4.1 footnote 4. */
export function ephIdTag(crypto: CryptoSuite, ephId: Uint8Array): Uint8Array {
  checkBytes(ephId, DIMY_EPHID_BYTES, 'ephId');
  return crypto.sha256(ephId).slice(0, DIMY_TAG_BYTES);
}

/**
 * The n tagged shares of an EphID (indices 1…n), any k of which reconstruct it. `randomness`:
 * (k − 1)·32 coefficient bytes or a ByteSource (layout: protocol/dimy/shamir.ts). SPECS §4.1.
 */
export function splitEphId(crypto: CryptoSuite, ephId: Uint8Array, randomness: Randomness, options: DimySplitOptions = {}): DimyShare[] {
  const tag = ephIdTag(crypto, ephId);
  const { k = DIMY_DEFAULT_K, n = DIMY_DEFAULT_N } = options;
  return splitSecret(ephId, k, n, randomness).map((share) => ({ tag: tag.slice(), index: share.index, bytes: share.bytes }));
}

/** The 37-byte version-1 payload of a share (header layout). */
export function encodeDimyShare(share: DimyShare): Uint8Array {
  checkBytes(share.tag, DIMY_TAG_BYTES, 'share.tag');
  ensure(Number.isInteger(share.index) && share.index >= 1 && share.index <= 255, 'share.index', `must be an integer in [1, 255], got ${share.index}`);
  checkBytes(share.bytes, DIMY_EPHID_BYTES, 'share.bytes');
  const out = new Uint8Array(DIMY_SHARE_PAYLOAD_BYTES);
  out[VERSION_OFFSET] = DIMY_SHARE_VERSION;
  out.set(share.tag, TAG_OFFSET);
  out[INDEX_OFFSET] = share.index;
  out.set(share.bytes, BYTES_OFFSET);
  return out;
}

function badShare(reason: (typeof DIMY_SHARE_REJECTION_REASONS)[number], detail: string, field?: string): Rejection {
  return reject(DIMY_SHARE_CODEC, reason, detail, field);
}

/** Parse a share payload from the air. Never throws on hostile bytes; returns copies. */
export function decodeDimyShare(bytes: Uint8Array): Verdict<DimyShare> {
  ensure(bytes instanceof Uint8Array, 'bytes', 'must be a Uint8Array');
  const n = bytes.length;
  if (n < DIMY_SHARE_PAYLOAD_BYTES) return badShare('too-short', `${n} bytes, a share payload has ${DIMY_SHARE_PAYLOAD_BYTES}`);
  if (n > DIMY_SHARE_PAYLOAD_BYTES) return badShare('too-long', `${n} bytes, a share payload has ${DIMY_SHARE_PAYLOAD_BYTES}`);
  const version = bytes[VERSION_OFFSET] ?? 0;
  if (version !== DIMY_SHARE_VERSION) return badShare('bad-version', `version ${version}, only ${DIMY_SHARE_VERSION} is known`, 'version');
  const index = bytes[INDEX_OFFSET] ?? 0;
  if (index === 0) return badShare('bad-index', 'index 0 would carry the secret itself', 'index');
  return accept({ tag: bytes.slice(TAG_OFFSET, INDEX_OFFSET), index, bytes: bytes.slice(BYTES_OFFSET) });
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((v, i) => v === b[i]);

/**
 * Reconstruct an EphID from ≥ k shares of one tag (the first k are used) and verify
 * SHA-256(EphID)[0:3] = tag. Reasons: the header. Shares with another tag belong to another
 * EphID: group by tag before calling (mixing them is rejected, not silently filtered).
 */
export function reconstructEphId(crypto: CryptoSuite, shares: readonly DimyShare[], k: number = DIMY_DEFAULT_K): Verdict<Uint8Array> {
  const tag = shares[0]?.tag;
  for (const [i, share] of shares.entries()) {
    if (tag === undefined || !sameBytes(share.tag, tag)) {
      return reject(DIMY_EPHID_CODEC, 'mixed-tags', `share ${i} has another tag than share 0`, `shares[${i}].tag`);
    }
    if (share.bytes.length !== DIMY_EPHID_BYTES) {
      return reject(DIMY_EPHID_CODEC, 'bad-share-length', `share ${i} has ${share.bytes.length} bytes, EphID shares have ${DIMY_EPHID_BYTES}`, `shares[${i}].bytes`);
    }
  }
  const combined = combineShares(shares, k);
  if (!combined.ok) return combined;
  // shares is non-empty here (combineShares needs k ≥ 2 of them), so tag is defined.
  if (tag === undefined || !sameBytes(crypto.sha256(combined.value).subarray(0, DIMY_TAG_BYTES), tag)) {
    return reject(DIMY_EPHID_CODEC, 'tag-mismatch', 'SHA-256 of the reconstructed EphID does not start with the shares\u2019 tag', 'tag');
  }
  return accept(combined.value);
}

/**
 * EncID = X25519(own secret, peer EphID), 32 bytes; both sides compute the same value. A
 * low-order peer EphID (all-zero shared secret) is a typed rejection. SPECS §4.1.
 */
export function dimyEncId(crypto: CryptoSuite, secret: Uint8Array, peerEphId: Uint8Array): Verdict<Uint8Array> {
  checkBytes(secret, DIMY_SECRET_BYTES, 'secret');
  checkBytes(peerEphId, DIMY_EPHID_BYTES, 'peerEphId');
  const shared = crypto.x25519(secret, peerEphId);
  if (shared === undefined) return reject(DIMY_ENCID_CODEC, 'low-order-ephid', 'the peer EphID is a low-order X25519 point', 'peerEphId');
  return accept(shared);
}
