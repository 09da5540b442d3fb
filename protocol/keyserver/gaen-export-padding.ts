/**
 * Padding an export with fake keys, so its size does not tell how many people
 * reported (the rule of google/exposure-notifications-server
 * `internal/export/worker.go` `ensureMinNumExposures`, read at commit
 * 02a136a7cf2f70f3d9f79ab6da44a72bbd9637e5; defaults in
 * `internal/export/config.go`: EXPORT_FILE_MIN_RECORDS 1000,
 * EXPORT_FILE_PADDING_RANGE 100):
 *
 *   target = minKeys + uniform integer in [0, jitter]           (drawn first, always)
 *   no padding when there are no real keys or already ≥ target keys
 *   otherwise fake keys are added, walking the real keys in order and
 *   starting over at the end: fake i copies transmission risk, rolling start,
 *   rolling period, report type and days since onset from real key i mod n,
 *   with 16 fresh random bytes as key_data                     (one rng.bytes(16) each)
 *
 * The export then sorts all keys by key_data (gaen-export.ts, as the
 * reference's `marshalContents`), which mixes the fakes in with the real keys.
 * Revised keys are never padded (the reference: padding them "doesn't provide
 * any useful protection").
 *
 * One deliberate difference: the reference checks the target only after a
 * full pass over the real keys, so it overshoots by up to n − 1 and its total
 * is then a multiple of n — a hint at n, the very thing padding hides. We
 * stop exactly at the target.
 *
 * Randomness is an argument (DESIGN.md): a seeded Rng gives the same fake
 * keys every time; production passes a CSPRNG-backed one.
 */
import { ensure } from '../errors.ts';
import { MAX_INT32, TEK_BYTES, type ExportKey } from './gaen-export-schema.ts';

/** The part of the Rng port (actors/ports.ts) padding needs; protocol/ cannot import actors/. */
export interface PaddingRng {
  bytes(length: number): Uint8Array;
  /** Uniform integer in [0, maxExclusive), maxExclusive ≤ 2^32. */
  int(maxExclusive: number): number;
}

export interface PaddingOptions {
  /** Pad to at least this many keys (the reference's EXPORT_FILE_MIN_RECORDS). */
  readonly minKeys: number;
  /** Add a uniform 0…jitter extra keys to the target (EXPORT_FILE_PADDING_RANGE). */
  readonly jitter: number;
  readonly rng: PaddingRng;
}

export interface PaddedKeys {
  /** The real keys (in the order given) followed by the fake ones. */
  readonly keys: readonly ExportKey[];
  readonly fakeKeys: number;
}

/** Upper bound on minKeys + jitter: a fake key costs ~30 bytes of export.bin. */
export const MAX_PADDING_TARGET = 1_000_000;

export function padWithFakeKeys(keys: readonly ExportKey[], padding: PaddingOptions): PaddedKeys {
  const { minKeys, jitter, rng } = padding;
  ensure(Number.isSafeInteger(minKeys) && minKeys >= 0, 'padding.minKeys', 'must be a non-negative integer');
  ensure(Number.isSafeInteger(jitter) && jitter >= 0, 'padding.jitter', 'must be a non-negative integer');
  ensure(minKeys + jitter <= Math.min(MAX_PADDING_TARGET, MAX_INT32), 'padding.minKeys', `minKeys + jitter must be at most ${MAX_PADDING_TARGET}`);
  ensure(typeof rng === 'object' && rng !== null && typeof rng.bytes === 'function' && typeof rng.int === 'function', 'padding.rng', 'must provide bytes(n) and int(max)');

  const target = minKeys + rng.int(jitter + 1);
  if (keys.length === 0 || keys.length >= target) return { keys, fakeKeys: 0 };
  const out: ExportKey[] = [...keys];
  for (let i = 0; out.length < target; i = (i + 1) % keys.length) {
    const { keyData: _real, ...source } = keys[i] as ExportKey;
    const keyData = rng.bytes(TEK_BYTES);
    ensure(keyData instanceof Uint8Array && keyData.length === TEK_BYTES, 'padding.rng', `bytes(${TEK_BYTES}) must return ${TEK_BYTES} bytes`);
    out.push({ ...source, keyData: Uint8Array.from(keyData) });
  }
  return { keys: out, fakeKeys: out.length - keys.length };
}
