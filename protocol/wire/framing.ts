/**
 * Framing (DESIGN.md "Radio" → Framing): a payload larger than one BLE
 * advertisement is cut into fragments (one per advertisement's service data)
 * and reassembled by the receiver. Simulated and BlueZ radios carry exactly
 * these bytes, so the simulation loses fragments the way the air does.
 *
 * Fragment layout, version 1 (integers big-endian):
 *   offset size field
 *   0      1    magic/version 0xC1: high nibble 0xC = tracecity framing, low nibble = version 1;
 *               anything else is rejected cheaply (other apps' service data, future versions)
 *   1      2    frame id 0..65535, chosen by the sender (a counter; wraps)
 *   3      1    index of this fragment, 0..count−1
 *   4      1    count of fragments in the frame, 1..255
 *   5      n≥1  chunk: bytes [index·chunkSize, …) of the frame body
 *   frame body = payload ‖ CRC-32(payload)  (4 bytes big-endian, CRC-32/ISO-HDLC as zlib)
 *   chunkSize  = budget − 5; every fragment but the last carries exactly chunkSize bytes
 *
 * Integrity: the CRC-32 trailer is checked on completion, so fragments of two
 * frames sharing (source, frame id) — id wrap, two senders behind one address,
 * a stale fragment — are not glued into a corrupt payload (undetected ≈ 2⁻³²).
 * 4 bytes per frame, not per fragment. Against accidents, not forgery:
 * authenticity is the payload's business (tokens are MACed/signed).
 *
 * Reassembly state is plain data (records, arrays, Uint8Array, numbers) for a
 * persisted xstate context. `reassemble`/`expireReassembly` never mutate their
 * input: they return a new top-level state sharing every unchanged frame, chunk
 * and chunk (copy-on-write). Cost per call: a scan of the pending and
 * remembered lists (bounded by the limits) and a chunk comparison; a new
 * fragment also copies the pending list and its frame's chunk list;
 * completion adds O(frame bytes). maxPendingBytes counts chunk bytes; each
 * pending frame also holds a `count`-slot array (≤ 255 slots).
 */
import { MisuseError, accept, ensure, reject, type Rejection, type Verdict } from '../errors.ts';

export const LEGACY_ADVERTISEMENT_DATA_BYTES = 31; // legacy (BLE 4.x) advertising payload: AD structures
export const FLAGS_AD_BYTES = 3; // Flags AD: length, type 0x01, flags
export const SERVICE_DATA_AD_OVERHEAD_BYTES = 4; // Service Data AD: length, type 0x16, 16-bit UUID
/** Service-data bytes one legacy advertisement carries: 31 − 3 − 4 = 24. The default budget. */
export const LEGACY_SERVICE_DATA_BYTES = LEGACY_ADVERTISEMENT_DATA_BYTES - FLAGS_AD_BYTES - SERVICE_DATA_AD_OVERHEAD_BYTES;
export const DEFAULT_FRAGMENT_BUDGET_BYTES = LEGACY_SERVICE_DATA_BYTES;
/** Largest budget: an AD length octet (≤ 255) covers type (1) + UUID (2) + 252 bytes, even when extended. */
export const MAX_FRAGMENT_BUDGET_BYTES = 255 - 1 - 2;

export const FRAMING_VERSION = 1;
export const FRAGMENT_MAGIC_V1 = 0xc0 | FRAMING_VERSION; // first byte of every version-1 fragment
export const FRAGMENT_HEADER_BYTES = 5;
export const MIN_FRAGMENT_BUDGET_BYTES = FRAGMENT_HEADER_BYTES + 1; // a header and one chunk byte
export const FRAME_CHECK_BYTES = 4; // CRC-32 trailer appended to the payload
export const MAX_FRAGMENTS = 255;
export const MAX_FRAME_ID = 0xffff;

const CODEC = 'fragment';

// ---------------------------------------------------------------- CRC-32

const CRC_TABLE: readonly number[] = (() => {
  const table: number[] = [];
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table.push(c >>> 0);
  }
  return table;
})();

/** CRC-32/ISO-HDLC (zlib, PNG): crc32("123456789") = 0xCBF43926. */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = (CRC_TABLE[(c ^ (bytes[i] ?? 0)) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ---------------------------------------------------------------- Fragmenting

function checkBudget(budget: number): number {
  const ok = Number.isInteger(budget) && budget >= MIN_FRAGMENT_BUDGET_BYTES && budget <= MAX_FRAGMENT_BUDGET_BYTES;
  ensure(ok, 'budget', `must be an integer in [${MIN_FRAGMENT_BUDGET_BYTES}, ${MAX_FRAGMENT_BUDGET_BYTES}], got ${String(budget)}`);
  return budget - FRAGMENT_HEADER_BYTES;
}

/** Fragments needed for a payload of `payloadLength` bytes (may exceed 255). */
export function fragmentCount(payloadLength: number, budget = DEFAULT_FRAGMENT_BUDGET_BYTES): number {
  ensure(Number.isInteger(payloadLength) && payloadLength >= 0, 'payloadLength', 'must be a non-negative integer');
  return Math.ceil((payloadLength + FRAME_CHECK_BYTES) / checkBudget(budget));
}

/** Largest payload one frame carries at `budget` (4841 bytes at the legacy 24). */
export function maxPayloadBytes(budget = DEFAULT_FRAGMENT_BUDGET_BYTES): number {
  return MAX_FRAGMENTS * checkBudget(budget) - FRAME_CHECK_BYTES;
}

/** The frame id after `frameId` (wraps at 65535). */
export function nextFrameId(frameId: number): number {
  return (frameId + 1) & MAX_FRAME_ID;
}

/** Cut `payload` into advertisements of ≤ `budget` bytes. MisuseError: bad frameId/budget, > 255 fragments. */
export function fragment(payload: Uint8Array, frameId: number, budget = DEFAULT_FRAGMENT_BUDGET_BYTES): Uint8Array[] {
  ensure(payload instanceof Uint8Array, 'payload', 'must be a Uint8Array');
  ensure(Number.isInteger(frameId) && frameId >= 0 && frameId <= MAX_FRAME_ID, 'frameId', `must be an integer in [0, ${MAX_FRAME_ID}]`);
  const chunkSize = checkBudget(budget);
  const body = new Uint8Array(payload.length + FRAME_CHECK_BYTES);
  body.set(payload);
  new DataView(body.buffer).setUint32(payload.length, crc32(payload));
  const count = Math.ceil(body.length / chunkSize);
  if (count > MAX_FRAGMENTS) {
    throw new MisuseError('payload', `${payload.length} bytes need ${count} fragments at budget ${budget}; at most ${MAX_FRAGMENTS}`);
  }
  const out: Uint8Array[] = [];
  for (let index = 0; index < count; index++) {
    const chunk = body.subarray(index * chunkSize, Math.min(body.length, (index + 1) * chunkSize));
    const f = new Uint8Array(FRAGMENT_HEADER_BYTES + chunk.length);
    f.set([FRAGMENT_MAGIC_V1, frameId >>> 8, frameId & 0xff, index, count]);
    f.set(chunk, FRAGMENT_HEADER_BYTES);
    out.push(f);
  }
  return out;
}

export interface Fragment {
  readonly frameId: number;
  readonly index: number;
  readonly count: number;
  readonly chunk: Uint8Array; // a copy: never aliases the decoded bytes
}

/** Parse one advertisement's service data. Never throws. */
export function decodeFragment(bytes: Uint8Array): Verdict<Fragment> {
  if (!(bytes instanceof Uint8Array)) return reject(CODEC, 'not-bytes', 'expected a Uint8Array');
  if (bytes.length < MIN_FRAGMENT_BUDGET_BYTES) return reject(CODEC, 'too-short', `${bytes.length} bytes, need ≥ ${MIN_FRAGMENT_BUDGET_BYTES}`);
  if (bytes.length > MAX_FRAGMENT_BUDGET_BYTES) return reject(CODEC, 'too-long', `${bytes.length} bytes, over ${MAX_FRAGMENT_BUDGET_BYTES}`);
  const magic = bytes[0] ?? 0;
  if ((magic & 0xf0) !== (FRAGMENT_MAGIC_V1 & 0xf0)) return reject(CODEC, 'bad-magic', `first byte 0x${magic.toString(16)}`, 'magic');
  if (magic !== FRAGMENT_MAGIC_V1) return reject(CODEC, 'unknown-version', `framing version ${magic & 0x0f}`, 'version');
  const frameId = ((bytes[1] ?? 0) << 8) | (bytes[2] ?? 0);
  const index = bytes[3] ?? 0;
  const count = bytes[4] ?? 0;
  if (count === 0) return reject(CODEC, 'bad-count', 'count must be 1..255', 'count');
  if (index >= count) return reject(CODEC, 'bad-index', `index ${index} not below count ${count}`, 'index');
  return accept({ frameId, index, count, chunk: new Uint8Array(bytes.subarray(FRAGMENT_HEADER_BYTES)) });
}

// ---------------------------------------------------------------- Reassembly

export interface ReassemblyLimits {
  /** An incomplete frame that gained no new fragment for this long (ms) expires. */
  readonly expiryMs: number;
  /** Incomplete frames held in total; beyond it the least recently progressed frame of the source holding most is evicted. */
  readonly maxPendingFrames: number;
  /** Chunk bytes held by incomplete frames in total (same eviction). */
  readonly maxPendingBytes: number;
  /** Completed (source, frame id)s remembered so their repeats are duplicates; oldest forgotten first. */
  readonly maxCompletedRemembered: number;
  /** How long (ms) a completion is remembered; default 60 s. A repeating frame completes again after it. */
  readonly completedMemoryMs?: number;
}

export const DEFAULT_REASSEMBLY_LIMITS: Required<ReassemblyLimits> = {
  expiryMs: 10_000, maxPendingFrames: 64, maxPendingBytes: 64 * 1024, maxCompletedRemembered: 256, completedMemoryMs: 60_000,
};

export interface ReassemblyCounters {
  readonly fragments: number; // calls to reassemble
  readonly completed: number;
  readonly partial: number; // new fragments stored without completing a frame
  readonly duplicates: number; // repeats of a stored or remembered fragment, ignored
  readonly rejected: number; // undecodable fragments + integrity failures
  readonly integrityFailures: number; // CRC-32 trailer mismatch on completion
  readonly conflicts: number; // fragment disagreeing with a held frame (count, bytes, size): that frame is dropped
  readonly evicted: number; // incomplete frames dropped to stay within the limits
  readonly expired: number; // incomplete frames dropped after expiryMs without progress
}

export interface PendingFrame {
  readonly source: string;
  readonly frameId: number;
  readonly count: number;
  readonly chunks: readonly (Uint8Array | null)[]; // chunk per index; null while missing
  readonly chunkSize: number | null; // length of every non-last chunk, once one has arrived
  readonly received: number;
  readonly bytes: number; // chunk bytes held
  readonly progressAt: number; // when the frame last gained a fragment (ms)
}

export interface CompletedMark {
  readonly source: string;
  readonly frameId: number;
  readonly at: number; // when the frame completed (ms)
  readonly count: number;
  readonly chunkChecks: readonly number[]; // CRC-32 per chunk: a repeat with other bytes is a new frame
}

/**
 * Lists, not records keyed by source: copying a short array per change is far
 * cheaper than spreading a dictionary-mode object, and a linear scan over
 * ≤ maxPendingFrames entries comparing the frame id first is fast.
 */
export interface ReassemblyState {
  readonly limits: Required<ReassemblyLimits>;
  /** Incomplete frames, at most one per (source, frame id), least recently progressed first. */
  readonly pending: readonly PendingFrame[];
  readonly pendingFrames: number; // = pending.length, for reporting
  readonly pendingBytes: number;
  /** Recent completions, in completion order (oldest first). */
  readonly completed: readonly CompletedMark[];
  /** Nothing expires before this time (a lower bound; null when nothing is held): arm a timer, call expireReassembly. */
  readonly nextDeadline: number | null;
  readonly counters: ReassemblyCounters;
}

export type ReassemblyOutcome =
  | { readonly kind: 'completed'; readonly source: string; readonly frameId: number; readonly payload: Uint8Array }
  /** `restarted`: the fragment conflicted with a held frame, which was dropped. */
  | { readonly kind: 'partial'; readonly source: string; readonly frameId: number; readonly received: number; readonly count: number; readonly restarted: boolean }
  | { readonly kind: 'duplicate'; readonly source: string; readonly frameId: number }
  | { readonly kind: 'rejected'; readonly source: string; readonly rejection: Rejection }
  /** The fragment's own frame alone exceeds maxPendingBytes and was dropped. */
  | { readonly kind: 'evicted'; readonly source: string; readonly frameId: number };

type Step = { state: ReassemblyState; outcome: ReassemblyOutcome };
type Counter = keyof ReassemblyCounters;

const ZERO_COUNTERS: ReassemblyCounters = {
  fragments: 0, completed: 0, partial: 0, duplicates: 0, rejected: 0, integrityFailures: 0, conflicts: 0, evicted: 0, expired: 0,
};

/** An empty reassembler; missing limits take DEFAULT_REASSEMBLY_LIMITS. Throws MisuseError naming a bad limit. */
export function createReassembly(limits: Partial<ReassemblyLimits> = {}): ReassemblyState {
  const l: Required<ReassemblyLimits> = { ...DEFAULT_REASSEMBLY_LIMITS, ...limits };
  const int = (v: number, min: number): boolean => Number.isSafeInteger(v) && v >= min;
  ensure(Number.isFinite(l.expiryMs) && l.expiryMs > 0, 'limits.expiryMs', 'must be a positive number of ms');
  ensure(int(l.maxPendingFrames, 1), 'limits.maxPendingFrames', 'must be an integer ≥ 1');
  ensure(int(l.maxPendingBytes, 1), 'limits.maxPendingBytes', 'must be an integer ≥ 1');
  ensure(int(l.maxCompletedRemembered, 0), 'limits.maxCompletedRemembered', 'must be an integer ≥ 0');
  ensure(Number.isFinite(l.completedMemoryMs) && l.completedMemoryMs >= 0, 'limits.completedMemoryMs', 'must be ≥ 0 ms');
  return { limits: l, pending: [], pendingFrames: 0, pendingBytes: 0, completed: [], nextDeadline: null, counters: ZERO_COUNTERS };
}

function tally(s: ReassemblyState, names: readonly Counter[], outcome: ReassemblyOutcome, patch: Partial<ReassemblyState> = {}): Step {
  const counters: { -readonly [K in Counter]: number } = { ...s.counters };
  counters.fragments += 1;
  for (const n of names) counters[n] += 1;
  const pending = patch.pending ?? s.pending;
  return { state: { ...s, ...patch, pendingFrames: pending.length, counters }, outcome };
}

const find = (list: readonly { readonly source: string; readonly frameId: number }[], source: string, frameId: number): number =>
  list.findIndex((e) => e.frameId === frameId && e.source === source);

const earliest = (a: number | null, b: number): number => (a === null || b < a ? b : a);

function sameBytes(a: Uint8Array | null | undefined, b: Uint8Array): boolean {
  if (a === null || a === undefined || a.length !== b.length) return false;
  for (let i = 0; i < b.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Whether a new chunk fits a held frame: same count, empty slot, consistent chunk sizes. */
function fits(f: PendingFrame, count: number, index: number, length: number): boolean {
  if (f.count !== count || f.chunks[index] !== null) return false;
  const last = count - 1;
  if (index === last) return f.chunkSize === null || length <= f.chunkSize;
  return f.chunkSize === null ? (f.chunks[last]?.length ?? 0) <= length : f.chunkSize === length;
}

/**
 * Drop incomplete frames without progress for `expiryMs` and forget
 * completions older than `completedMemoryMs`. Returns `state` itself when
 * nothing is due (cheap to call on every event).
 */
export function expireReassembly(state: ReassemblyState, now: number): ReassemblyState {
  ensure(Number.isFinite(now), 'now', 'must be a finite time in ms');
  if (state.nextDeadline === null || now < state.nextDeadline) return state;
  const { expiryMs, completedMemoryMs } = state.limits;
  const pending = state.pending.filter((f) => f.progressAt + expiryMs > now);
  const completed = state.completed.filter((m) => m.at + completedMemoryMs > now);
  let nextDeadline: number | null = null;
  for (const f of pending) nextDeadline = earliest(nextDeadline, f.progressAt + expiryMs);
  for (const m of completed) nextDeadline = earliest(nextDeadline, m.at + completedMemoryMs);
  const pendingBytes = pending.reduce((sum, f) => sum + f.bytes, 0);
  const expired = state.counters.expired + state.pending.length - pending.length;
  const pendingFrames = pending.length;
  return { ...state, pending, pendingFrames, pendingBytes, completed, nextDeadline, counters: { ...state.counters, expired } };
}

/**
 * Offer one received advertisement from `sourceAddress` at time `now` (ms).
 * Never throws on hostile bytes (MisuseError only for a bad address or time).
 * Frames are keyed by (source, frame id); see the file header for cost.
 */
export function reassemble(state: ReassemblyState, sourceAddress: string, bytes: Uint8Array, now: number): Step {
  ensure(typeof sourceAddress === 'string' && sourceAddress.length > 0, 'sourceAddress', 'must be a non-empty string');
  const source = sourceAddress;
  let s = expireReassembly(state, now);
  const decoded = decodeFragment(bytes);
  if (!decoded.ok) return tally(s, ['rejected'], { kind: 'rejected', source, rejection: decoded });
  const { frameId, index, count, chunk } = decoded.value;
  const names: Counter[] = [];
  const duplicate: ReassemblyOutcome = { kind: 'duplicate', source, frameId };

  const markAt = find(s.completed, source, frameId);
  const mark = s.completed[markAt];
  if (mark !== undefined) {
    if (mark.count === count && mark.chunkChecks[index] === crc32(chunk)) return tally(s, ['duplicates'], duplicate);
    // Same (source, frame id), other content: a new frame (id wrap, a second sender).
    s = { ...s, completed: s.completed.filter((_, i) => i !== markAt) };
    names.push('conflicts');
  }
  const heldAt = find(s.pending, source, frameId);
  const held = s.pending[heldAt];
  if (held !== undefined && held.count === count && sameBytes(held.chunks[index], chunk)) return tally(s, ['duplicates'], duplicate);
  const base = held !== undefined && fits(held, count, index, chunk.length) ? held : undefined;
  if (held !== undefined && base === undefined) names.push('conflicts');
  const restarted = names.length > 0;

  const chunks = base !== undefined ? base.chunks.slice() : new Array<Uint8Array | null>(count).fill(null);
  chunks[index] = chunk;
  const chunkSize = index !== count - 1 ? chunk.length : (base?.chunkSize ?? null);
  const received = (base?.received ?? 0) + 1;
  const progressAt = Math.max(base?.progressAt ?? now, now);
  const frame: PendingFrame = { source, frameId, count, chunks, chunkSize, received, bytes: (base?.bytes ?? 0) + chunk.length, progressAt };
  const pending = s.pending.slice();
  let pendingBytes = s.pendingBytes - (held?.bytes ?? 0);
  if (held !== undefined) pending.splice(heldAt, 1);
  if (received === count) return complete({ ...s, pending, pendingBytes }, frame, names, now);

  pending.push(frame);
  pendingBytes += frame.bytes;
  let evictedSelf = false;
  while (pending.length > s.limits.maxPendingFrames || pendingBytes > s.limits.maxPendingBytes) {
    const [dropped] = pending.splice(victim(pending), 1);
    pendingBytes -= dropped?.bytes ?? 0;
    names.push('evicted');
    evictedSelf ||= dropped === frame;
  }
  const nextDeadline = earliest(s.nextDeadline, frame.progressAt + s.limits.expiryMs);
  const patch = { pending, pendingBytes, nextDeadline };
  if (evictedSelf) return tally(s, names, { kind: 'evicted', source, frameId }, patch);
  const outcome: ReassemblyOutcome = { kind: 'partial', source, frameId, received, count, restarted };
  return tally(s, [...names, 'partial'], outcome, patch);
}

/**
 * Which incomplete frame to evict: the least recently progressed frame of the
 * source holding the most (ties: the source whose oldest frame is oldest).
 * With one frame per source this is plain LRU; under a flood of never-completing
 * fragments from a few addresses, the flooders lose their own frames and a
 * beacon's single frame in progress survives.
 */
function victim(pending: readonly PendingFrame[]): number {
  const counts = new Map<string, number>();
  for (const f of pending) counts.set(f.source, (counts.get(f.source) ?? 0) + 1);
  let best = 0;
  let bestCount = 0;
  for (let i = 0; i < pending.length; i++) {
    const n = counts.get(pending[i]?.source ?? '') ?? 0;
    if (n > bestCount) {
      best = i;
      bestCount = n;
    }
  }
  return best;
}

/** All chunks are in: check the CRC-32 trailer, remember the completion. */
function complete(s: ReassemblyState, frame: PendingFrame, names: Counter[], now: number): Step {
  const { source, frameId, count } = frame;
  const body = new Uint8Array(frame.bytes);
  const chunkChecks: number[] = [];
  let offset = 0;
  for (const chunk of frame.chunks) {
    if (chunk === null) continue; // unreachable: received === count
    body.set(chunk, offset);
    offset += chunk.length;
    chunkChecks.push(crc32(chunk));
  }
  const payloadLength = body.length - FRAME_CHECK_BYTES;
  const payload = body.slice(0, Math.max(0, payloadLength));
  if (payloadLength < 0 || new DataView(body.buffer).getUint32(payloadLength) !== crc32(payload)) {
    const detail = `frame ${frameId} from ${source}: CRC-32 trailer mismatch (fragments of different frames?)`;
    const rejection = reject('frame', 'integrity', detail, 'crc32');
    return tally(s, [...names, 'rejected', 'integrityFailures'], { kind: 'rejected', source, rejection });
  }
  const outcome: ReassemblyOutcome = { kind: 'completed', source, frameId, payload };
  const { maxCompletedRemembered, completedMemoryMs } = s.limits;
  if (maxCompletedRemembered === 0 || completedMemoryMs === 0) return tally(s, [...names, 'completed'], outcome);
  const kept = s.completed.length >= maxCompletedRemembered ? s.completed.slice(s.completed.length - maxCompletedRemembered + 1) : s.completed;
  const completed = [...kept, { source, frameId, at: now, count, chunkChecks }];
  const nextDeadline = earliest(s.nextDeadline, now + completedMemoryMs);
  return tally(s, [...names, 'completed'], outcome, { completed, nextDeadline });
}
