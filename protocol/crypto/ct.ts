/**
 * Constant-time comparison for secrets (MACs, tokens, shared keys): DESIGN.md
 * "Crypto suite" asks that secrets are never compared with an early exit,
 * which would tell an attacker how many leading bytes they guessed right.
 * Pure JS (protocol/ may not import node:crypto.timingSafeEqual).
 */

/**
 * True iff `a` and `b` hold the same bytes. Time depends only on the lengths:
 * different lengths return false at once (lengths are public — a MAC's size
 * is fixed by the protocol), equal lengths always scan every byte.
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) {
    // Both indices are in range; `?? 0` only satisfies noUncheckedIndexedAccess.
    diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  }
  return diff === 0;
}
