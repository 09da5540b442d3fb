/**
 * Shamir k-out-of-n secret sharing over GF(2^8), byte by byte (SPECS §4.1 "Shares", §4.2 k/n;
 * field and its choice: protocol/dimy/gf256.ts).
 *
 * For each secret byte s_j (j = 0…L−1) a polynomial of degree k − 1 is drawn,
 *
 *   p_j(x) = s_j + a_{1,j}·x + a_{2,j}·x^2 + … + a_{k−1,j}·x^{k−1}     (arithmetic in GF(2^8))
 *
 * and share i (index x = i, 1 ≤ i ≤ n ≤ 255) carries the L bytes p_0(i) ‖ … ‖ p_{L−1}(i).
 * Randomness is an argument: the coefficients are (k − 1)·L bytes, laid out coefficient-major,
 *
 *   randomness[(c − 1)·L + j] = a_{c,j}        c = 1…k−1, j = 0…L−1
 *
 * so a seeded test vector fixes every share byte. All coefficients are uniform bytes, zero
 * included (a zero leading coefficient is what makes k − 1 shares perfectly uniform: any
 * k − 1 shares are independent of the secret). Defaults k = 3, n = 5 follow the 22T1
 * assignment profile (SPECS §4.2); the paper uses k = 15, n = 30 (§4.1); both are options.
 *
 * Reconstruction is Lagrange interpolation at x = 0 over the first k shares given:
 *   s_j = Σ_i y_{i,j} · λ_i,   λ_i = Π_{m ≠ i} x_m / (x_m + x_i)     (char 2: − is +)
 * Extra shares beyond k are checked for shape (index, length, duplicates) but not used; a
 * wrong share yields a wrong secret, which DIMY detects with the EphID hash tag (ephid.ts).
 *
 * Shares are data from the air, so combineShares never throws on them: it returns a Rejection
 * with codec `shamir` and one of SHAMIR_REJECTION_REASONS, checked in this order:
 *   too-few-shares       fewer than k shares
 *   bad-index            an index that is not an integer in [1, 255] (field `shares[i].index`)
 *   empty-share          a share of 0 bytes (field `shares[i].bytes`)
 *   inconsistent-length  a share whose length differs from the first's (field `shares[i].bytes`)
 *   duplicate-index      two shares with the same index (field `shares[i].index`)
 * Caller misuse (k or n out of range, wrong randomness length) throws MisuseError naming the field.
 */
import { accept, ensure, reject, type Rejection, type Verdict } from '../errors.ts';
import { gfDiv, gfMul } from './gf256.ts';

export const SHAMIR_CODEC = 'shamir';
export const SHAMIR_REJECTION_REASONS = ['too-few-shares', 'bad-index', 'empty-share', 'inconsistent-length', 'duplicate-index'] as const;
export type ShamirRejectionReason = (typeof SHAMIR_REJECTION_REASONS)[number];

/** Default threshold k: shares needed to reconstruct. SPECS §4.2 (22T1: k = 3). */
export const DIMY_DEFAULT_K = 3;
/** Default share count n per EphID. SPECS §4.2 (22T1: n = 5). */
export const DIMY_DEFAULT_N = 5;
/** Largest share count: indices are the non-zero field elements 1…255. */
export const SHAMIR_MAX_SHARES = 255;
/** Smallest threshold: k = 1 would put the secret itself in every share. */
export const SHAMIR_MIN_K = 2;

/** One share: its x coordinate (1…255) and the L bytes p_j(index). */
export interface ShamirShare {
  readonly index: number;
  readonly bytes: Uint8Array;
}

/** Where coefficient bytes come from: exact bytes, or a source such as SeededRng (`bytes(n)`). */
export interface ByteSource {
  bytes(length: number): Uint8Array;
}
export type Randomness = Uint8Array | ByteSource;

/** Random bytes splitSecret consumes for an L-byte secret at threshold k: (k − 1)·L. */
export function shamirRandomBytesNeeded(secretLength: number, k: number): number {
  return (k - 1) * secretLength;
}

function checkThreshold(k: number, field: string): void {
  ensure(Number.isInteger(k) && k >= SHAMIR_MIN_K && k <= SHAMIR_MAX_SHARES, field, `must be an integer in [${SHAMIR_MIN_K}, ${SHAMIR_MAX_SHARES}], got ${k}`);
}

/** Exactly `length` bytes from `randomness`, or MisuseError on `field`. */
export function drawRandomness(randomness: Randomness, length: number, field: string): Uint8Array {
  const bytes = randomness instanceof Uint8Array ? randomness : randomness.bytes(length);
  ensure(bytes instanceof Uint8Array, field, 'must be a Uint8Array or return one from bytes(n)');
  ensure(bytes.length === length, field, `must supply exactly ${length} bytes, got ${bytes.length}`);
  return bytes;
}

/**
 * Split `secret` (≥ 1 byte) into shares 1…n, any k of which reconstruct it (2 ≤ k ≤ n ≤ 255).
 * `randomness`: (k − 1)·L coefficient bytes (layout in the header) or a ByteSource to draw them from.
 */
export function splitSecret(secret: Uint8Array, k: number, n: number, randomness: Randomness): ShamirShare[] {
  ensure(secret instanceof Uint8Array, 'secret', 'must be a Uint8Array');
  ensure(secret.length > 0, 'secret', 'must not be empty');
  checkThreshold(k, 'k');
  ensure(Number.isInteger(n) && n >= k && n <= SHAMIR_MAX_SHARES, 'n', `must be an integer in [k = ${k}, ${SHAMIR_MAX_SHARES}], got ${n}`);
  const length = secret.length;
  const coefficients = drawRandomness(randomness, shamirRandomBytesNeeded(length, k), 'randomness');
  const shares: ShamirShare[] = [];
  for (let x = 1; x <= n; x++) {
    const bytes = new Uint8Array(length);
    for (let j = 0; j < length; j++) {
      // Horner from the highest coefficient down to the secret byte.
      let y = 0;
      for (let c = k - 1; c >= 1; c--) y = gfMul(y, x) ^ (coefficients[(c - 1) * length + j] ?? 0);
      bytes[j] = gfMul(y, x) ^ (secret[j] ?? 0);
    }
    shares.push({ index: x, bytes });
  }
  return shares;
}

function bad(reason: ShamirRejectionReason, detail: string, field?: string): Rejection {
  return reject(SHAMIR_CODEC, reason, detail, field);
}

/** Shape checks on hostile shares, in the header's order (after too-few-shares). */
function checkShares(shares: readonly ShamirShare[]): Rejection | undefined {
  for (const [i, share] of shares.entries()) {
    if (!Number.isInteger(share.index) || share.index < 1 || share.index > SHAMIR_MAX_SHARES) {
      return bad('bad-index', `index ${share.index} is not an integer in [1, ${SHAMIR_MAX_SHARES}]`, `shares[${i}].index`);
    }
  }
  const length = shares[0]?.bytes.length ?? 0;
  if (length === 0) return bad('empty-share', 'a share of 0 bytes carries no secret', 'shares[0].bytes');
  for (const [i, share] of shares.entries()) {
    if (share.bytes.length !== length) {
      return bad('inconsistent-length', `share ${i} has ${share.bytes.length} bytes, share 0 has ${length}`, `shares[${i}].bytes`);
    }
  }
  const seen = new Set<number>();
  for (const [i, share] of shares.entries()) {
    if (seen.has(share.index)) return bad('duplicate-index', `index ${share.index} appears twice`, `shares[${i}].index`);
    seen.add(share.index);
  }
  return undefined;
}

/** Lagrange basis values at x = 0 for the indices `xs` (distinct, non-zero). */
function lagrangeAtZero(xs: readonly number[]): number[] {
  return xs.map((xi, i) => {
    let lambda = 1;
    for (const [m, xm] of xs.entries()) if (m !== i) lambda = gfMul(lambda, gfDiv(xm, xm ^ xi));
    return lambda;
  });
}

/**
 * The secret from at least k shares (the first k are used, see the header). Hostile shares
 * give a typed Rejection, never a throw; k itself is the caller's parameter (MisuseError on `k`).
 */
export function combineShares(shares: readonly ShamirShare[], k: number): Verdict<Uint8Array> {
  checkThreshold(k, 'k');
  if (shares.length < k) return bad('too-few-shares', `${shares.length} shares, at least k = ${k} are needed`);
  const rejection = checkShares(shares);
  if (rejection !== undefined) return rejection;
  const used = shares.slice(0, k);
  const lambdas = lagrangeAtZero(used.map((s) => s.index));
  const length = used[0]?.bytes.length ?? 0;
  const secret = new Uint8Array(length);
  for (const [i, share] of used.entries()) {
    const lambda = lambdas[i] ?? 0;
    for (let j = 0; j < length; j++) secret[j] = (secret[j] ?? 0) ^ gfMul(share.bytes[j] ?? 0, lambda);
  }
  return accept(secret);
}
