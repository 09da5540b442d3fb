/**
 * The DIMY backend's rules as plain functions (the chart and the reasons are in backend.ts):
 * every handler takes the whole context and returns the context update plus the effects to
 * emit, in order. Context is plain data (arrays, records, Uint8Array): snapshots need no codec.
 */
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import { bloomPopcount, type BloomFilter } from '../../protocol/dimy/bloom.ts';
import { prepareContact, prepareQuery, resolveMatchRule, searchCbfs, type DimyMatchRule, type SearchableCbf } from '../../protocol/dimy/matching.ts';
import {
  dimyCbfAckCodec,
  dimyCodesAckCodec,
  dimyQbfResultCodec,
  type DimyCbfAck,
  type DimyCbfUpload,
  type DimyCodesRegister,
  type DimyQbfQuery,
  DIMY_MAX_SEARCHED,
  DIMY_UPLOAD_REFUSALS,
} from '../../protocol/dimy/messages.ts';
import { ensure } from '../../protocol/errors.ts';
import { UPLOAD_CODE_DIGEST_BYTES, UPLOAD_CODE_PEPPER_MIN_BYTES, uploadCodeDigest } from '../../protocol/keyserver/upload-code.ts';
import type { Envelope } from '../../protocol/wire/envelope.ts';
import type { WireValue } from '../../protocol/wire/msgpack.ts';
import { SEGMENT_PATTERN } from '../../protocol/wire/topics.ts';
import { withoutTimer, withTimer, type Effect, type TimedContext } from '../effects.ts';
import type { SimMillis } from '../ports.ts';

const DAY_MS = 86_400_000;
/** CBF retention: the 21-day incubation window. SPECS §4.1 "kept 21 days". */
export const DIMY_DEFAULT_RETENTION_MS = 21 * DAY_MS;
/** Stored CBFs at most: 10,000 × 100 KB ≈ 1 GB of bits (plus ≤ 32 KB of positions per sparse CBF). */
export const DIMY_DEFAULT_MAX_CBFS = 10_000;
/** Registered codes at most (used ones stay until they expire). */
export const DIMY_DEFAULT_MAX_CODES = 10_000;
/**
 * Fill bound for QBFs and CBFs, set bits: about twice the paper's 21-day design fill (21,000
 * items → 60,583 bits; 42,000 items → 116,576). A fuller filter is refused (`too-full`): it says
 * little (bloom-stats.ts) and an all-ones filter would overlap everything.
 */
export const DIMY_DEFAULT_MAX_SET_BITS = 120_000;
/**
 * How long an expired code is remembered, so a late upload reads `expired` rather than
 * `unknown-code`; remembered codes count towards maxCodes.
 */
export const DIMY_DEFAULT_EXPIRED_CODE_MEMORY_MS = 7 * DAY_MS;
/** The one timer: at the earliest CBF expiry or code drop. */
export const EXPIRE_TIMER = 'expire';

export interface DimyBackendConfig {
  readonly retentionMs: number;
  readonly maxCbfs: number;
  readonly maxCodes: number;
  readonly maxSetBits: number;
  readonly expiredCodeMemoryMs: number;
  readonly rule: DimyMatchRule;
}

export interface DimyBackendInput {
  /** This backend's actor id (topics are built by the host). */
  readonly id: string;
  readonly config?: Partial<Omit<DimyBackendConfig, 'rule'>> & { readonly rule?: Partial<DimyMatchRule> };
  /**
   * Code digests registered from the start, valid until expiresAt (as if dimy.codes.register had
   * arrived): a deployment (the tracing city) whose health authority hands its codes over at
   * start-up instead of sending them. Beyond maxCodes the rest are refused (counted).
   */
  readonly codes?: { readonly digests: readonly Uint8Array[]; readonly expiresAt: SimMillis };
}

/** Closed over by the machine, never in context: the pepper stays out of snapshots. */
export interface DimyBackendDeps {
  readonly crypto: CryptoSuite;
  /** Pepper of the code digests (≥ 32 bytes), shared with the health authority's code generator. */
  readonly pepper: Uint8Array;
}

export interface StoredCbf {
  /** Upload number, from 1 (traces only). */
  readonly seq: number;
  readonly uploadedAt: SimMillis;
  /** The 100,000 bytes of bits (BloomFilter.bits). */
  readonly bits: Uint8Array;
  readonly setBits: number;
}

export interface CodeRecord {
  /** First instant the code is refused (exclusive end), ms. */
  readonly expiresAt: SimMillis;
  readonly usedAt: SimMillis | null;
  /** hex SHA-256 of the CBF bits it authorized: a re-sent upload is acknowledged again, not refused. */
  readonly cbfHash: string | null;
}

export interface DimyBackendCounters {
  readonly queries: number;
  readonly queriesMatched: number;
  readonly queriesRefused: number;
  readonly uploadsAccepted: number;
  readonly uploadRetries: number;
  readonly uploadsRefused: Readonly<Record<string, number>>;
  readonly codesRegistered: number;
  readonly codesRefused: number;
  readonly cbfsExpired: number;
  readonly codesExpired: number;
}

export interface DimyBackendContext extends TimedContext {
  readonly id: string;
  readonly config: DimyBackendConfig;
  /** Stored CBFs, ascending uploadedAt (equal times in arrival order). */
  readonly cbfs: readonly StoredCbf[];
  /** hex(code digest) → record. */
  readonly codes: Readonly<Record<string, CodeRecord>>;
  readonly codeCount: number;
  /** Earliest expiresAt + expiredCodeMemoryMs among the codes (when the next one is dropped), null when none. */
  readonly nextCodeDrop: SimMillis | null;
  readonly nextSeq: number;
  readonly counters: DimyBackendCounters;
}

export interface Step {
  readonly context: Partial<DimyBackendContext>;
  readonly effects: readonly Effect[];
}

const positiveInt = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;

export function resolveDimyBackendConfig(partial: DimyBackendInput['config'] = {}): DimyBackendConfig {
  const { rule, ...rest } = partial;
  const config: DimyBackendConfig = {
    retentionMs: DIMY_DEFAULT_RETENTION_MS,
    maxCbfs: DIMY_DEFAULT_MAX_CBFS,
    maxCodes: DIMY_DEFAULT_MAX_CODES,
    maxSetBits: DIMY_DEFAULT_MAX_SET_BITS,
    expiredCodeMemoryMs: DIMY_DEFAULT_EXPIRED_CODE_MEMORY_MS,
    ...rest,
    rule: resolveMatchRule(rule),
  };
  for (const field of ['retentionMs', 'maxCbfs', 'maxCodes', 'maxSetBits'] as const) ensure(positiveInt(config[field]), `config.${field}`, 'must be a positive integer');
  ensure(Number.isSafeInteger(config.expiredCodeMemoryMs) && config.expiredCodeMemoryMs >= 0, 'config.expiredCodeMemoryMs', 'must be a non-negative integer');
  ensure(config.maxCbfs <= DIMY_MAX_SEARCHED, 'config.maxCbfs', `must be at most ${DIMY_MAX_SEARCHED} (the result's counter bound)`);
  return config;
}

export function checkDimyBackendDeps(deps: DimyBackendDeps): void {
  ensure(typeof deps === 'object' && deps !== null && typeof deps.crypto === 'object', 'deps.crypto', 'must be a CryptoSuite');
  ensure(deps.pepper instanceof Uint8Array && deps.pepper.length >= UPLOAD_CODE_PEPPER_MIN_BYTES, 'deps.pepper', `must be at least ${UPLOAD_CODE_PEPPER_MIN_BYTES} bytes`);
}

export function initialDimyBackendContext(input: DimyBackendInput): DimyBackendContext {
  ensure(typeof input === 'object' && input !== null, 'input', 'must be a DimyBackendInput');
  ensure(typeof input.id === 'string' && SEGMENT_PATTERN.test(input.id), 'input.id', `must match ${String(SEGMENT_PATTERN)}`);
  const config = resolveDimyBackendConfig(input.config);
  const preset = presetCodes(input.codes, config);
  return {
    timers: {},
    id: input.id,
    config,
    cbfs: [],
    codes: preset.codes,
    codeCount: preset.count,
    nextCodeDrop: preset.count === 0 || input.codes === undefined ? null : input.codes.expiresAt + config.expiredCodeMemoryMs,
    nextSeq: 1,
    counters: {
      queries: 0,
      queriesMatched: 0,
      queriesRefused: 0,
      uploadsAccepted: 0,
      uploadRetries: 0,
      uploadsRefused: Object.fromEntries(DIMY_UPLOAD_REFUSALS.map((r) => [r, 0])),
      codesRegistered: preset.count,
      codesRefused: preset.refused,
      cbfsExpired: 0,
      codesExpired: 0,
    },
  };
}

/** input.codes as code records (distinct digests, at most maxCodes). */
function presetCodes(codes: DimyBackendInput['codes'], config: DimyBackendConfig): { codes: Record<string, CodeRecord>; count: number; refused: number } {
  const out: Record<string, CodeRecord> = {};
  if (codes === undefined) return { codes: out, count: 0, refused: 0 };
  ensure(Number.isSafeInteger(codes.expiresAt) && codes.expiresAt >= 0, 'input.codes.expiresAt', 'must be a time in ms');
  ensure(Array.isArray(codes.digests), 'input.codes.digests', 'must be an array of digests');
  let count = 0;
  let refused = 0;
  codes.digests.forEach((digest, i) => {
    ensure(digest instanceof Uint8Array && digest.length === UPLOAD_CODE_DIGEST_BYTES, `input.codes.digests[${i}]`, `must be ${UPLOAD_CODE_DIGEST_BYTES} bytes`);
    const key = hex(digest);
    if (out[key] !== undefined) return;
    if (count >= config.maxCodes) {
      refused++;
      return;
    }
    out[key] = { expiresAt: codes.expiresAt, usedAt: null, cbfHash: null };
    count++;
  });
  return { codes: out, count, refused };
}

export const NOTHING: Step = { context: {}, effects: [] };

export function hex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

/** The reply to a request: its replyTo, corr = its corr or id; none without replyTo. */
function reply(envelope: Envelope, msgType: string, body: WireValue): Effect[] {
  return envelope.replyTo === undefined ? [] : [{ type: 'bus.send', topic: envelope.replyTo, msgType, body, qos: 1, corr: envelope.corr ?? envelope.id }];
}

/** The context with expired CBFs and long-expired codes dropped (housekeeping before every event). */
export function expire(context: DimyBackendContext, at: SimMillis): DimyBackendContext {
  const { retentionMs, expiredCodeMemoryMs } = context.config;
  let drop = 0;
  while (drop < context.cbfs.length && (context.cbfs[drop]?.uploadedAt ?? 0) + retentionMs <= at) drop++;
  let next = context;
  if (drop > 0) next = { ...next, cbfs: next.cbfs.slice(drop), counters: { ...next.counters, cbfsExpired: next.counters.cbfsExpired + drop } };
  if (next.nextCodeDrop !== null && next.nextCodeDrop <= at) {
    const codes: Record<string, CodeRecord> = {};
    let kept = 0;
    let earliest: number | null = null;
    for (const [digest, record] of Object.entries(next.codes)) {
      const dropAt = record.expiresAt + expiredCodeMemoryMs;
      if (dropAt <= at) continue;
      codes[digest] = record;
      kept++;
      earliest = earliest === null ? dropAt : Math.min(earliest, dropAt);
    }
    next = { ...next, codes, codeCount: kept, nextCodeDrop: earliest, counters: { ...next.counters, codesExpired: next.counters.codesExpired + next.codeCount - kept } };
  }
  return next;
}

/** When the next CBF or code is dropped, or null. */
export function nextExpiry(context: DimyBackendContext): SimMillis | null {
  const oldest = context.cbfs[0];
  const cbf = oldest === undefined ? null : oldest.uploadedAt + context.config.retentionMs;
  if (cbf === null) return context.nextCodeDrop;
  return context.nextCodeDrop === null ? cbf : Math.min(cbf, context.nextCodeDrop);
}

/** Re-arm (or cancel) EXPIRE_TIMER when the earliest expiry moved. */
export function schedule(context: DimyBackendContext, effects: readonly Effect[]): Step {
  const deadline = nextExpiry(context);
  const armed = context.timers[EXPIRE_TIMER];
  if (deadline === (armed ?? null)) return { context, effects };
  if (deadline === null) return { context: { ...context, timers: withoutTimer(context.timers, EXPIRE_TIMER) }, effects: [...effects, { type: 'timer.cancel', name: EXPIRE_TIMER }] };
  return { context: { ...context, timers: withTimer(context.timers, EXPIRE_TIMER, deadline) }, effects: [...effects, { type: 'timer.set', name: EXPIRE_TIMER, deadline }] };
}

/**
 * Derived search data per stored CBF (prepared words and positions), memoised by object identity.
 * A cache, not state: the same CBF always prepares to the same data, and a restored snapshot
 * simply rebuilds it on the first query.
 */
export type SearchCache = WeakMap<StoredCbf, SearchableCbf>;

function searchable(cache: SearchCache, cbf: StoredCbf): SearchableCbf {
  let entry = cache.get(cbf);
  if (entry === undefined) {
    entry = { uploadedAt: cbf.uploadedAt, contact: prepareContact({ bits: cbf.bits }) };
    cache.set(cbf, entry);
  }
  return entry;
}

/** `dimy.qbf.query`: search the CBFs uploaded at or after tOld (refused when too full). */
export function query(context: DimyBackendContext, cache: SearchCache, body: DimyQbfQuery, envelope: Envelope): Step {
  const { counters, config } = context;
  const prepared = prepareQuery(body.filter);
  if (prepared.setBits > config.maxSetBits) {
    const refused = dimyQbfResultCodec.encode({ matched: false, searched: 0, matches: 0, reason: 'too-full' });
    return { context: { counters: { ...counters, queries: counters.queries + 1, queriesRefused: counters.queriesRefused + 1 } }, effects: reply(envelope, dimyQbfResultCodec.type, refused) };
  }
  const result = searchCbfs(prepared, context.cbfs.map((cbf) => searchable(cache, cbf)), body.tOld, config.rule);
  const matches = result.matches.length;
  const answer = dimyQbfResultCodec.encode({ matched: matches > 0, searched: result.searched, matches, reason: '' });
  return {
    context: { counters: { ...counters, queries: counters.queries + 1, queriesMatched: counters.queriesMatched + (matches > 0 ? 1 : 0) } },
    effects: reply(envelope, dimyQbfResultCodec.type, answer),
  };
}

function ack(envelope: Envelope, value: DimyCbfAck, counters: DimyBackendCounters, extra: Partial<DimyBackendContext> = {}): Step {
  return { context: { ...extra, counters }, effects: reply(envelope, dimyCbfAckCodec.type, dimyCbfAckCodec.encode(value)) };
}

/**
 * `dimy.cbf.upload`, checks in order: too-full (more than maxSetBits set), unknown-code (no
 * registered digest, or one expired more than expiredCodeMemoryMs ago), used (another CBF already used the code; the
 * same CBF re-sent is acknowledged again), expired, capacity (maxCbfs held: refused, the code
 * stays unused so the phone can try again later). Only an accepted upload consumes the code.
 */
export function upload(deps: DimyBackendDeps, context: DimyBackendContext, body: DimyCbfUpload, at: SimMillis, envelope: Envelope): Step {
  const { counters, config } = context;
  const refuse = (reason: (typeof DIMY_UPLOAD_REFUSALS)[number]): Step =>
    ack(envelope, { accepted: false, reason }, { ...counters, uploadsRefused: { ...counters.uploadsRefused, [reason]: (counters.uploadsRefused[reason] ?? 0) + 1 } });
  const setBits = bloomPopcount(body.filter);
  if (setBits > config.maxSetBits) return refuse('too-full');
  const digest = hex(uploadCodeDigest(deps.crypto, body.code, deps.pepper));
  const code = context.codes[digest];
  if (code === undefined) return refuse('unknown-code');
  const cbfHash = hex(deps.crypto.sha256(body.filter.bits));
  if (code.usedAt !== null) {
    if (code.cbfHash !== cbfHash) return refuse('used');
    return ack(envelope, { accepted: true, reason: '' }, { ...counters, uploadRetries: counters.uploadRetries + 1 });
  }
  if (at >= code.expiresAt) return refuse('expired');
  if (context.cbfs.length >= config.maxCbfs) return refuse('capacity');
  return ack(envelope, { accepted: true, reason: '' }, { ...counters, uploadsAccepted: counters.uploadsAccepted + 1 }, {
    cbfs: insertByTime(context.cbfs, { seq: context.nextSeq, uploadedAt: at, bits: body.filter.bits, setBits }),
    nextSeq: context.nextSeq + 1,
    codes: { ...context.codes, [digest]: { ...code, usedAt: at, cbfHash } },
  });
}

/** Append keeping ascending uploadedAt (a late event with an older `at` goes before newer ones). */
function insertByTime(cbfs: readonly StoredCbf[], cbf: StoredCbf): StoredCbf[] {
  let i = cbfs.length;
  while (i > 0 && (cbfs[i - 1]?.uploadedAt ?? 0) > cbf.uploadedAt) i--;
  return [...cbfs.slice(0, i), cbf, ...cbfs.slice(i)];
}

/**
 * `dimy.codes.register`: each digest not yet known is stored, valid for lifetimeMs from `at`; a
 * known digest keeps its record (a used code cannot be revived, a re-sent message changes
 * nothing). `registered` counts the message's digests the backend now holds; beyond maxCodes the
 * rest are refused (`capacity`).
 */
export function registerCodes(context: DimyBackendContext, body: DimyCodesRegister, at: SimMillis, envelope: Envelope): Step {
  const codes: Record<string, CodeRecord> = { ...context.codes };
  let codeCount = context.codeCount;
  let registered = 0;
  let added = 0;
  const expiresAt = at + body.lifetimeMs;
  const drop = expiresAt + context.config.expiredCodeMemoryMs;
  for (const digest of body.digests) {
    const key = hex(digest);
    if (codes[key] === undefined) {
      if (codeCount >= context.config.maxCodes) break;
      codes[key] = { expiresAt, usedAt: null, cbfHash: null };
      codeCount++;
      added++;
    }
    registered++;
  }
  const refused = body.digests.length - registered;
  const { counters } = context;
  return {
    context: {
      codes,
      codeCount,
      nextCodeDrop: added === 0 ? context.nextCodeDrop : Math.min(context.nextCodeDrop ?? drop, drop),
      counters: { ...counters, codesRegistered: counters.codesRegistered + added, codesRefused: counters.codesRefused + refused },
    },
    effects: reply(envelope, dimyCodesAckCodec.type, dimyCodesAckCodec.encode({ registered, reason: refused > 0 ? 'capacity' : '' })),
  };
}

/** The stored CBFs as BloomFilters (tests, tools). */
export function storedFilters(context: Pick<DimyBackendContext, 'cbfs'>): BloomFilter[] {
  return context.cbfs.map((cbf) => ({ bits: cbf.bits }));
}
