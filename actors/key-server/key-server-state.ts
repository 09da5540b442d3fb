/**
 * Configuration, context and dependencies of the key-server machine (issue 4,
 * docs/decisions/0006). Every interval is configuration in simulated ms.
 */
import { ensure } from '../../protocol/errors.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import type { DistributionLimits } from '../../protocol/keyserver/distribution-file.ts';
import type { DiagnosisRecord } from '../../protocol/keyserver/distribution-records.ts';
import type { DistributionSigner } from '../../protocol/keyserver/distribution-publisher.ts';
import { checkLockoutConfig, DEFAULT_LOCKOUT_CONFIG, MAX_TRACKED_KEYS, type LockoutConfig } from '../../protocol/keyserver/rate-limit.ts';
import { UPLOAD_CODE_PEPPER_MIN_BYTES } from '../../protocol/keyserver/upload-code.ts';
import { SEGMENT_PATTERN } from '../../protocol/wire/topics.ts';
import type { Effect } from '../effects.ts';
import type { SimMillis } from '../ports.ts';
import { Ledger } from './ledger.ts';

const MINUTE_MS = 60_000;
const DAY_MS = 24 * 60 * MINUTE_MS;

export interface KeyServerConfig {
  /** Delta period (issue 4: 15 simulated minutes). */
  readonly periodMs: number;
  /** Full dump period (issue 4: daily); a multiple of periodMs. */
  readonly fullEveryMs: number;
  /** Keys leave distribution this long after their own time (issue 4: 14 days). */
  readonly retentionMs: number;
  /** A key whose own time lies further ahead than this is refused (clock skew allowance). */
  readonly futureSlackMs: number;
  /** Statuses of rejected and chaff uploads remembered (oldest forgotten first). */
  readonly statusMemory: number;
  /** Clients the brute-force lockout tracks. */
  readonly lockoutKeys: number;
  readonly lockout: LockoutConfig;
  /** Records in distribution at most (an upload past it is refused as `capacity`). */
  readonly maxRecords: number;
  /** Caps of every file published. */
  readonly limits: DistributionLimits;
  /**
   * Also publish a sighting filter (GCS) per delta (protocol/keyserver/
   * sighting-filter.ts): the alternative distribution. Off by default: it
   * derives every identifier the keys produce (144 RPIs per GAEN key), which
   * the fold of the log repeats.
   */
  readonly sightingFilters: boolean;
}

export const DEFAULT_KEY_SERVER_CONFIG: KeyServerConfig = {
  periodMs: 15 * MINUTE_MS,
  fullEveryMs: DAY_MS,
  retentionMs: 14 * DAY_MS,
  futureSlackMs: DAY_MS,
  statusMemory: 100_000,
  lockoutKeys: 100_000,
  lockout: DEFAULT_LOCKOUT_CONFIG,
  maxRecords: 1_000_000,
  limits: { maxFileBytes: 64 * 1024 * 1024, maxAdditions: 1_000_000, maxDeletions: 1_000_000 },
  sightingFilters: false,
};

export interface KeyServerInput {
  /** The server's id: its topics are `key-server/<id>/…`, its index `keys/<id>`. */
  readonly serverId: string;
  readonly config?: Partial<KeyServerConfig>;
}

/**
 * Closed over by the machine's actions, never in context: secrets stay out of
 * snapshots and logs. `signer.crypto` must sign deterministically (RFC 6979,
 * the @noble suite) so a rebuild re-creates the very files clients hold.
 */
export interface KeyServerDeps {
  readonly crypto: CryptoSuite;
  readonly signer: DistributionSigner;
  /** Upload-code pepper (≥ 32 bytes), also keys the tracking ids. */
  readonly pepper: Uint8Array;
  /** Verify a signed TCN report on arrival (SPECS §3). */
  readonly verifyTcnReport: (report: Uint8Array) => boolean;
  /** The 16-byte identifiers phones hear from a record (GAEN RPIs, TCNs, DP-3T EphIDs); needed for config.sightingFilters. */
  readonly sightingsOf?: (record: DiagnosisRecord) => readonly Uint8Array[];
}

export interface KeyServerContext {
  readonly timers: Readonly<Record<string, SimMillis>>;
  readonly serverId: string;
  readonly config: KeyServerConfig;
  /** Mutable, derived from the journal (ledger.ts header). */
  readonly ledger: Ledger;
}

export interface Step {
  readonly context: Partial<KeyServerContext>;
  readonly effects: readonly Effect[];
}

export const NOTHING: Step = { context: {}, effects: [] };
export const PUBLISH_TIMER = 'publish';

const positiveInt = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;

/** Resolve and check the configuration; MisuseError names the first bad field. */
export function resolveKeyServerConfig(partial: Partial<KeyServerConfig> = {}): KeyServerConfig {
  const config: KeyServerConfig = { ...DEFAULT_KEY_SERVER_CONFIG, ...partial, limits: { ...DEFAULT_KEY_SERVER_CONFIG.limits, ...partial.limits } };
  for (const field of ['periodMs', 'fullEveryMs', 'retentionMs', 'statusMemory', 'maxRecords'] as const) {
    ensure(positiveInt(config[field]), `config.${field}`, 'must be a positive integer');
  }
  ensure(Number.isSafeInteger(config.futureSlackMs) && config.futureSlackMs >= 0, 'config.futureSlackMs', 'must be a non-negative integer');
  ensure(config.fullEveryMs % config.periodMs === 0, 'config.fullEveryMs', 'must be a multiple of config.periodMs');
  ensure(positiveInt(config.lockoutKeys) && config.lockoutKeys <= MAX_TRACKED_KEYS, 'config.lockoutKeys', `must be an integer in [1, ${MAX_TRACKED_KEYS}]`);
  checkLockoutConfig(config.lockout, 'config.lockout');
  for (const [name, value] of Object.entries(config.limits)) ensure(positiveInt(value), `config.limits.${name}`, 'must be a positive integer');
  ensure(config.maxRecords <= config.limits.maxAdditions, 'config.maxRecords', 'must fit in one full dump (≤ config.limits.maxAdditions)');
  ensure(typeof config.sightingFilters === 'boolean', 'config.sightingFilters', 'must be a boolean');
  return config;
}

export function checkKeyServerDeps(deps: KeyServerDeps): void {
  ensure(deps.pepper instanceof Uint8Array && deps.pepper.length >= UPLOAD_CODE_PEPPER_MIN_BYTES, 'deps.pepper', `must be at least ${UPLOAD_CODE_PEPPER_MIN_BYTES} bytes`);
  ensure(typeof deps.verifyTcnReport === 'function', 'deps.verifyTcnReport', 'must be a function');
}

export function initialKeyServerContext(input: KeyServerInput): KeyServerContext {
  ensure(typeof input === 'object' && input !== null, 'input', 'must be a KeyServerInput');
  ensure(typeof input.serverId === 'string' && SEGMENT_PATTERN.test(input.serverId), 'input.serverId', `must match ${String(SEGMENT_PATTERN)}`);
  const config = resolveKeyServerConfig(input.config);
  return { timers: {}, serverId: input.serverId, config, ledger: new Ledger(config.lockoutKeys, config.statusMemory, config.periodMs) };
}
