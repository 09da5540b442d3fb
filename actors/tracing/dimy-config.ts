/**
 * Configuration of the DIMY engine (dimy-engine.ts), its defaults and why (SPECS §4, §7.17–22).
 *
 * Parameter set (SPECS §7.17: pick one explicitly): 32-byte X25519 EphIDs (§4.2 25T1, §7.18),
 * k = 3 of n = 5 shares (§4.2 22T1), 100 KB Bloom filters with 3 hashes (§4.1), DBFs kept 21
 * days (§4.1; the assignments keep 6, `dbfCount: 6`), one QBF a day (§4.1), CBF uploads with the
 * health authority's one-time code (§4.1 "HA access token").
 *
 * Share schedule — the point of DIMY's k-of-n: reconstructing an EphID should take about the
 * close-contact duration (paper §4.3: one share a minute, k = 15 ⇒ ≥ 15 min). Phones scan 4 s
 * every 5 min (the GAEN cadence), so a receiver collects at most one share per scan window. The
 * sender therefore advertises ONE share at a time and moves to the next every `shareMs` = the
 * scan interval (5 min); a receiver needs k = 3 windows of the same EphID, i.e. a contact of
 * 10–15 min, and the 25-minute epoch (n · shareMs, every share on air once) leaves two spare
 * windows for a contact that starts late in an epoch. Contacts cut by an epoch boundary lose the
 * windows on either side: a 15-minute contact (3 windows) reconstructs in 3 out of 5 phases, a
 * 20-minute one in 4 out of 5, one of 25 minutes or more always (and both sides must, for the
 * EncID to be in both DBFs). Epochs and share slots are aligned to the Unix epoch (as GAEN's
 * intervals; real phones need clocks within seconds, which NTP gives), so every phone's EphIDs
 * change at the same instants: both sides of an encounter then use the secrets of the same
 * epoch, which is what makes the EncID symmetric (dimy-observe.ts). The paper broadcasts two
 * EphIDs at once, staggered (SPECS §4.1, against "address carry-over" losses; it would also
 * rescue boundary-cut contacts); here that would put two EphIDs under one address at every
 * instant and chain all of a phone's EphIDs into one track, so it is not done.
 *
 * Each share goes on the air with a new address (the phone's rotation), which does not hide
 * anything: the 3-byte tag links every share of one EphID, by design.
 */
import { DIMY_DEFAULT_K, DIMY_DEFAULT_N, SHAMIR_MAX_SHARES, SHAMIR_MIN_K } from '../../protocol/dimy/shamir.ts';
import { ensure } from '../../protocol/errors.ts';
import { DEFAULT_FRAGMENT_BUDGET_BYTES, MAX_FRAGMENT_BUDGET_BYTES, MIN_FRAGMENT_BUDGET_BYTES } from '../../protocol/wire/framing.ts';
import { SEGMENT_PATTERN } from '../../protocol/wire/topics.ts';
import type { RadioTiming } from './engine.ts';

export const MINUTE_MS = 60_000;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;

/** Radio: advertise 4 Hz (the EN 200–270 ms), scan 4 s every 5 min; shares need no RSSI averaging, so duplicates are filtered. */
export const DIMY_TIMING: RadioTiming = Object.freeze({
  advertiseIntervalMs: 250,
  scanWindowMs: 4000,
  scanIntervalMs: 5 * MINUTE_MS,
  filterDuplicates: true,
});

/** One share on the air per scan interval (header). SPECS §4.1 (paper: one share per minute). */
export const DEFAULT_DIMY_SHARE_MS = DIMY_TIMING.scanIntervalMs;
/** DBF rotation, ms: one a day. SPECS §4.1 "one DBF per day". */
export const DEFAULT_DIMY_DBF_MS = DAY_MS;
/** DBFs kept (the pool): 21, the incubation period. SPECS §4.1; assignments: 6 (§4.2). */
export const DEFAULT_DIMY_DBF_COUNT = 21;
/** QBF upload period, ms: daily. SPECS §4.1 "uploaded daily". */
export const DEFAULT_DIMY_QBF_PERIOD_MS = DAY_MS;
/** The exchange tick, ms: when a due QBF goes out and an unacknowledged CBF is re-sent. */
export const DEFAULT_DIMY_EXCHANGE_TICK_MS = HOUR_MS;
/** CBF upload attempts at most (the first send and nine re-sends, as the phone's key-server upload). */
export const DEFAULT_DIMY_CBF_ATTEMPTS = 10;
/** Share groups (distinct tags of the current and previous epoch) held at most; a receiver in a crowd of 100 hears ~100. */
export const DEFAULT_DIMY_MAX_GROUPS = 512;
/** The DIMY backend's actor id in the city (role app-backend, like TCN's backend). */
export const DEFAULT_DIMY_BACKEND_ID = 'dimy';

export interface DimyEngineConfig {
  /** Shares needed to reconstruct an EphID. SPECS §4.2 (22T1: 3). */
  readonly k: number;
  /** Shares made per EphID. SPECS §4.2 (22T1: 5). */
  readonly n: number;
  /** How long one share is on the air (then the next, with a new address), ms. */
  readonly shareMs: number;
  /** EphID lifetime, ms: a multiple of shareMs with k ≤ epochMs / shareMs ≤ n (default n · shareMs = 25 min). */
  readonly epochMs: number;
  /** DBF rotation period, ms. */
  readonly dbfMs: number;
  /** DBFs kept; the oldest is dropped when a new period begins beyond it. */
  readonly dbfCount: number;
  readonly qbfPeriodMs: number;
  readonly exchangeTickMs: number;
  readonly maxCbfAttempts: number;
  readonly maxGroups: number;
  /** Service-data bytes per advertisement for the framing (24: legacy advertising). */
  readonly fragmentBudget: number;
  /** The backend's actor id (role app-backend). */
  readonly backendId: string;
}

const positiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;

export function dimyEngineConfig(overrides: Partial<DimyEngineConfig> = {}): DimyEngineConfig {
  const n = overrides.n ?? DIMY_DEFAULT_N;
  const shareMs = overrides.shareMs ?? DEFAULT_DIMY_SHARE_MS;
  const config: DimyEngineConfig = {
    k: DIMY_DEFAULT_K,
    n,
    shareMs,
    epochMs: n * shareMs,
    dbfMs: DEFAULT_DIMY_DBF_MS,
    dbfCount: DEFAULT_DIMY_DBF_COUNT,
    qbfPeriodMs: DEFAULT_DIMY_QBF_PERIOD_MS,
    exchangeTickMs: DEFAULT_DIMY_EXCHANGE_TICK_MS,
    maxCbfAttempts: DEFAULT_DIMY_CBF_ATTEMPTS,
    maxGroups: DEFAULT_DIMY_MAX_GROUPS,
    fragmentBudget: DEFAULT_FRAGMENT_BUDGET_BYTES,
    backendId: DEFAULT_DIMY_BACKEND_ID,
    ...overrides,
  };
  ensure(Number.isInteger(config.k) && config.k >= SHAMIR_MIN_K, 'config.k', `must be an integer ≥ ${SHAMIR_MIN_K}`);
  ensure(Number.isInteger(config.n) && config.n >= config.k && config.n <= SHAMIR_MAX_SHARES, 'config.n', `must be an integer in [k, ${SHAMIR_MAX_SHARES}]`);
  for (const field of ['shareMs', 'epochMs', 'dbfMs', 'dbfCount', 'qbfPeriodMs', 'exchangeTickMs', 'maxCbfAttempts', 'maxGroups'] as const) {
    ensure(positiveInt(config[field]), `config.${field}`, 'must be a positive integer');
  }
  const slots = config.epochMs / config.shareMs;
  ensure(Number.isInteger(slots) && slots >= config.k && slots <= config.n, 'config.epochMs', `must be shareMs × s with k ≤ s ≤ n (got ${slots} shares an epoch)`);
  ensure(
    Number.isInteger(config.fragmentBudget) && config.fragmentBudget >= MIN_FRAGMENT_BUDGET_BYTES && config.fragmentBudget <= MAX_FRAGMENT_BUDGET_BYTES,
    'config.fragmentBudget',
    `must be an integer in [${MIN_FRAGMENT_BUDGET_BYTES}, ${MAX_FRAGMENT_BUDGET_BYTES}]`,
  );
  ensure(typeof config.backendId === 'string' && SEGMENT_PATTERN.test(config.backendId), 'config.backendId', `must match ${String(SEGMENT_PATTERN)}`);
  return config;
}
