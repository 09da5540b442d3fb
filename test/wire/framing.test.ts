/**
 * protocol/wire/framing.ts: fragment layout, decoding of hostile service data,
 * and reassembly under loss, duplication, reordering, interleaving, conflicts
 * and floods (DESIGN.md "Radio" → Framing).
 */
import { prng } from '../support/test-rng.ts';
import { misuseField } from '../support/misuse.ts';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_FRAGMENT_BUDGET_BYTES,
  FRAGMENT_HEADER_BYTES,
  FRAGMENT_MAGIC_V1,
  LEGACY_SERVICE_DATA_BYTES,
  MAX_FRAGMENT_BUDGET_BYTES,
  MIN_FRAGMENT_BUDGET_BYTES,
  crc32,
  createReassembly,
  decodeFragment,
  expireReassembly,
  fragment,
  fragmentCount,
  maxPayloadBytes,
  nextFrameId,
  reassemble,
  type ReassemblyLimits,
  type ReassemblyOutcome,
  type ReassemblyState,
} from '../../protocol/wire/framing.ts';

const LIMITS: ReassemblyLimits = { expiryMs: 5_000, maxPendingFrames: 32, maxPendingBytes: 8 * 1024, maxCompletedRemembered: 64, completedMemoryMs: 30_000 };


function bytesOf(length: number, seed: number): Uint8Array {
  const r = prng(seed);
  return Uint8Array.from({ length }, () => Math.floor(r() * 256));
}


/** Feed fragments from one source; return the final state and all outcomes. */
function feed(state: ReassemblyState, source: string, fragments: readonly Uint8Array[], now = 0): { state: ReassemblyState; outcomes: ReassemblyOutcome[] } {
  const outcomes: ReassemblyOutcome[] = [];
  let s = state;
  for (const f of fragments) {
    const step = reassemble(s, source, f, now);
    s = step.state;
    outcomes.push(step.outcome);
  }
  return { state: s, outcomes };
}

const completions = (outcomes: readonly ReassemblyOutcome[]) => outcomes.filter((o) => o.kind === 'completed');

describe('framing: budget derivation and fragment byte layout', () => {
  it('the default budget is one legacy advertisement’s service data: 31 − 3 (Flags) − 4 (Service Data AD) = 24', () => {
    expect(LEGACY_SERVICE_DATA_BYTES).toBe(24);
    expect(DEFAULT_FRAGMENT_BUDGET_BYTES).toBe(24);
    expect(MIN_FRAGMENT_BUDGET_BYTES).toBe(FRAGMENT_HEADER_BYTES + 1);
    expect(maxPayloadBytes()).toBe(255 * 19 - 4);
  });

  it('CRC-32 is CRC-32/ISO-HDLC (check value of "123456789" is 0xCBF43926)', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });

  it('header = magic 0xC1, frame id big-endian, index, count; body = payload ‖ CRC-32 big-endian', () => {
    const payload = bytesOf(40, 1);
    const frags = fragment(payload, 0x1234);
    expect(frags).toHaveLength(fragmentCount(40)); // ceil(44 / 19) = 3
    expect(frags).toHaveLength(3);
    frags.forEach((f, i) => {
      expect(Array.from(f.subarray(0, 5))).toEqual([FRAGMENT_MAGIC_V1, 0x12, 0x34, i, 3]);
      expect(f.length).toBe(i < 2 ? 24 : 5 + 44 - 38);
    });
    const body = new Uint8Array(frags.flatMap((f) => Array.from(f.subarray(5))));
    expect(body.subarray(0, 40)).toEqual(payload);
    expect(new DataView(body.buffer).getUint32(40)).toBe(crc32(payload));
    expect(FRAGMENT_MAGIC_V1).toBe(0xc1);
  });

  it('an empty payload is one fragment carrying only the CRC trailer', () => {
    const frags = fragment(new Uint8Array(0), 7);
    expect(frags).toHaveLength(1);
    expect(frags[0]!.length).toBe(FRAGMENT_HEADER_BYTES + 4);
  });

  it('fragment throws MisuseError naming frameId, budget or payload', () => {
    const p = new Uint8Array(10);
    for (const id of [-1, 65536, 1.5, Number.NaN]) expect(misuseField(() => fragment(p, id))).toBe('frameId');
    for (const b of [0, 5, MAX_FRAGMENT_BUDGET_BYTES + 1, 6.5]) expect(misuseField(() => fragment(p, 1, b))).toBe('budget');
    expect(misuseField(() => fragment(new Uint8Array(maxPayloadBytes() + 1), 1))).toBe('payload');
    expect(fragment(new Uint8Array(maxPayloadBytes()), 1)).toHaveLength(255);
    expect(misuseField(() => fragment(new Uint8Array(252), 1, MIN_FRAGMENT_BUDGET_BYTES))).toBe('payload');
    expect(fragment(new Uint8Array(251), 1, MIN_FRAGMENT_BUDGET_BYTES)).toHaveLength(255);
  });

  it('frame ids wrap at 65535', () => {
    expect(nextFrameId(0)).toBe(1);
    expect(nextFrameId(65535)).toBe(0);
  });
});

describe('framing: decodeFragment rejects hostile service data with typed reasons', () => {
  const good = fragment(bytesOf(30, 2), 9)[0]!;
  const cases: [string, Uint8Array][] = [
    ['too-short', good.subarray(0, 5)],
    ['too-long', new Uint8Array(MAX_FRAGMENT_BUDGET_BYTES + 1).fill(FRAGMENT_MAGIC_V1)],
    ['bad-magic', Uint8Array.from([0x00, 0, 1, 0, 1, 9])],
    ['unknown-version', Uint8Array.from([0xc2, 0, 1, 0, 1, 9])],
    ['bad-count', Uint8Array.from([0xc1, 0, 1, 0, 0, 9])],
    ['bad-index', Uint8Array.from([0xc1, 0, 1, 3, 3, 9])],
  ];
  it.each(cases)('%s', (reason, bytes) => {
    const v = decodeFragment(bytes);
    expect(v.ok).toBe(false);
    if (!v.ok) expect({ codec: v.codec, reason: v.reason }).toEqual({ codec: 'fragment', reason });
  });

  it('the decoded chunk is a copy, not a view of the received buffer', () => {
    const bytes = good.slice();
    const v = decodeFragment(bytes);
    bytes.fill(0);
    expect(v.ok && v.value.chunk[0] === good[5]).toBe(true);
  });
});

describe('framing: reassembly round trip under reordering, duplication and loss', () => {
  it('every payload size 0..1000 completes exactly once from reversed fragments with duplicates', () => {
    for (let size = 0; size <= 1000; size++) {
      const payload = bytesOf(size, size);
      const frags = fragment(payload, size & 0xffff);
      const stream = [...frags].reverse().flatMap((f, i) => (i % 2 === 0 ? [f, f] : [f]));
      const { outcomes, state } = feed(createReassembly(LIMITS), 'aa:bb', stream);
      const done = completions(outcomes);
      expect(done).toHaveLength(1);
      expect(done[0]!.kind === 'completed' && done[0]!.payload).toEqual(payload);
      expect(state.pending.length).toBe(0);
    }
  });

  it('property: all fragments in any order plus duplicates → exactly one completion equal to the payload', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 1000 }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.constantFrom(24, 31, 64, 252),
        fc.infiniteStream(fc.nat()),
        (payload, frameId, budget, noise) => {
          const frags = fragment(payload, frameId, budget);
          const it = noise[Symbol.iterator]();
          const draw = (): number => it.next().value as number;
          const stream = frags.flatMap((f) => (draw() % 3 === 0 ? [f, f, f] : [f]));
          for (let i = stream.length - 1; i > 0; i--) {
            const j = draw() % (i + 1);
            [stream[i], stream[j]] = [stream[j]!, stream[i]!];
          }
          const { outcomes, state } = feed(createReassembly(LIMITS), 'src', stream);
          const done = completions(outcomes);
          expect(done).toHaveLength(1);
          expect(done[0]!.kind === 'completed' && done[0]!.payload).toEqual(payload);
          expect(state.counters.duplicates).toBe(stream.length - frags.length);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('property: one fragment missing → no completion; the frame expires after expiryMs without progress', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 20, maxLength: 1000 }), fc.nat(), (payload, pick) => {
        const frags = fragment(payload, 1);
        const missing = pick % frags.length;
        const { outcomes, state } = feed(createReassembly(LIMITS), 'src', frags.filter((_, i) => i !== missing), 1000);
        expect(completions(outcomes)).toHaveLength(0);
        expect(state.pending.length).toBe(1);
        expect(state.nextDeadline).toBe(1000 + LIMITS.expiryMs);
        expect(expireReassembly(state, 1000 + LIMITS.expiryMs - 1)).toBe(state);
        const later = expireReassembly(state, 1000 + LIMITS.expiryMs);
        expect(later.pending.length).toBe(0);
        expect(later.pendingBytes).toBe(0);
        expect(later.counters.expired).toBe(1);
      }),
      { numRuns: 200 },
    );
  });

  it('expiry counts from the last progress, not from the first fragment', () => {
    const frags = fragment(bytesOf(100, 3), 5);
    let s = createReassembly(LIMITS);
    for (let i = 0; i < frags.length - 1; i++) s = reassemble(s, 'src', frags[i]!, i * (LIMITS.expiryMs - 1)).state;
    const last = reassemble(s, 'src', frags.at(-1)!, (frags.length - 1) * (LIMITS.expiryMs - 1));
    expect(last.outcome.kind).toBe('completed');
  });

  it('a repeat does not count as progress: a stalled frame still expires', () => {
    const frags = fragment(bytesOf(100, 4), 5);
    let s = reassemble(createReassembly(LIMITS), 'src', frags[0]!, 0).state;
    s = reassemble(s, 'src', frags[0]!, LIMITS.expiryMs - 1).state;
    s = expireReassembly(s, LIMITS.expiryMs);
    expect(s.pending.length).toBe(0);
  });

  it('budget variants: every fragment fits its budget and all but the last fill it', () => {
    for (const budget of [MIN_FRAGMENT_BUDGET_BYTES, 7, 24, 31, 100, MAX_FRAGMENT_BUDGET_BYTES]) {
      for (const size of [0, 1, 17, 100, 245]) {
        const payload = bytesOf(size, size + budget);
        const frags = fragment(payload, 3, budget);
        frags.forEach((f, i) => (i < frags.length - 1 ? expect(f.length).toBe(budget) : expect(f.length).toBeLessThanOrEqual(budget)));
        const done = completions(feed(createReassembly(LIMITS), 's', frags).outcomes);
        expect(done.length === 1 && done[0]!.kind === 'completed' && done[0]!.payload).toEqual(payload);
      }
    }
  });
});

describe('framing: frames are keyed by (source address, frame id)', () => {
  it('interleaved frames of many sources and frame ids each complete once with their own payload', () => {
    const r = prng(42);
    const expected = new Map<string, Uint8Array>();
    const stream: [string, Uint8Array][] = [];
    for (let s = 0; s < 6; s++) {
      for (const frameId of [0, 1, 0xffff]) {
        const payload = bytesOf(20 + Math.floor(r() * 300), s * 1000 + frameId);
        expected.set(`${s}/${frameId}`, payload);
        for (const f of fragment(payload, frameId)) stream.push([`radio-${s}`, f]);
      }
    }
    for (let i = stream.length - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [stream[i], stream[j]] = [stream[j]!, stream[i]!];
    }
    let state = createReassembly({ ...LIMITS, maxPendingFrames: 64, maxPendingBytes: 64 * 1024 });
    const got = new Map<string, Uint8Array>();
    for (const [source, f] of stream) {
      const step = reassemble(state, source, f, 0);
      state = step.state;
      if (step.outcome.kind === 'completed') {
        const key = `${step.outcome.source.slice(6)}/${step.outcome.frameId}`;
        expect(got.has(key)).toBe(false);
        got.set(key, step.outcome.payload);
      }
    }
    expect(got).toEqual(expected);
    expect(state.counters.conflicts).toBe(0);
  });
});

describe('framing: integrity and conflicting fragments', () => {
  it('the CRC-32 trailer catches a frame spliced from two frames sharing (source, frame id)', () => {
    const a = fragment(bytesOf(80, 10), 77);
    const b = fragment(bytesOf(80, 11), 77);
    // a's fragment 0, then b's others (a's lost): same count and sizes, so nothing conflicts early.
    const { outcomes, state } = feed(createReassembly(LIMITS), 'src', [a[0]!, ...b.slice(1)]);
    const last = outcomes.at(-1)!;
    expect(last.kind).toBe('rejected');
    if (last.kind === 'rejected') expect([last.rejection.codec, last.rejection.reason]).toEqual(['frame', 'integrity']);
    expect(state.counters.integrityFailures).toBe(1);
    expect(state.pending.length).toBe(0);
    // Recovery: the next advertising cycle of b completes b.
    const again = feed(state, 'src', b);
    expect(completions(again.outcomes)).toHaveLength(1);
  });

  it('same index with different bytes drops the held frame and restarts with the new one', () => {
    const a = fragment(bytesOf(60, 12), 3);
    const b = fragment(bytesOf(60, 13), 3);
    let s = feed(createReassembly(LIMITS), 'src', [a[0]!, a[1]!]).state;
    const step = reassemble(s, 'src', b[1]!, 0);
    expect(step.outcome).toMatchObject({ kind: 'partial', restarted: true, received: 1 });
    s = step.state;
    expect(s.counters.conflicts).toBe(1);
    const rest = feed(s, 'src', [b[0]!, ...b.slice(2)]);
    const done = completions(rest.outcomes);
    expect(done.length === 1 && done[0]!.kind === 'completed' && done[0]!.payload).toEqual(bytesOf(60, 13));
  });

  it('a different fragment count for the same frame is a conflict', () => {
    const a = fragment(bytesOf(60, 14), 3);
    const b = fragment(bytesOf(200, 15), 3);
    const { state, outcomes } = feed(createReassembly(LIMITS), 'src', [a[0]!, b[5]!]);
    expect(outcomes[1]).toMatchObject({ kind: 'partial', restarted: true, count: b.length });
    expect(state.counters.conflicts).toBe(1);
    expect(state.pending.length).toBe(1);
  });

  it('inconsistent chunk sizes (a different budget behind the same key) are a conflict', () => {
    const a = fragment(bytesOf(60, 16), 3, 24); // ceil(64 / 19) = 4 fragments, chunks of 19
    const c = fragment(bytesOf(70, 17), 3, 28); // ceil(74 / 23) = 4 fragments, chunks of 23
    expect(c.length).toBe(a.length);
    const { state, outcomes } = feed(createReassembly(LIMITS), 'src', [a[0]!, c[1]!]);
    expect(outcomes[1]).toMatchObject({ kind: 'partial', restarted: true });
    expect(state.counters.conflicts).toBe(1);
  });
});

describe('framing: completed frames are remembered so repeats do not restart reassembly', () => {
  it('a beacon repeating its fragments every cycle yields one completion per completedMemoryMs', () => {
    const frags = fragment(bytesOf(73, 20), 9);
    let s = createReassembly(LIMITS);
    let done = 0;
    for (let t = 0; t < 100_000; t += 1000) {
      const step = feed(s, 'beacon', frags, t);
      s = step.state;
      done += completions(step.outcomes).length;
    }
    expect(done).toBe(Math.ceil(100_000 / (LIMITS.completedMemoryMs! + 1000)));
    expect(s.counters.duplicates).toBeGreaterThan(0);
    expect(s.pending.length).toBe(0);
  });

  it('after completion, a new frame reusing the id (wrap) is not mistaken for a repeat', () => {
    const a = fragment(bytesOf(73, 21), 9);
    const b = fragment(bytesOf(73, 22), 9);
    const s = feed(createReassembly(LIMITS), 'src', a).state;
    const { outcomes, state } = feed(s, 'src', b);
    const done = completions(outcomes);
    expect(done.length === 1 && done[0]!.kind === 'completed' && done[0]!.payload).toEqual(bytesOf(73, 22));
    expect(state.counters.conflicts).toBe(1);
  });

  it('the memory of completions is bounded by maxCompletedRemembered (oldest forgotten)', () => {
    let s = createReassembly({ ...LIMITS, maxCompletedRemembered: 4 });
    for (let id = 0; id < 10; id++) s = feed(s, 'src', fragment(bytesOf(5, id), id)).state;
    expect(s.completed.length).toBe(4);
    expect(s.completed.map((m) => m.frameId)).toEqual([6, 7, 8, 9]);
  });
});

describe('framing: bounded memory', () => {
  it('evicts the least recently progressed frame beyond maxPendingFrames', () => {
    let s = createReassembly({ ...LIMITS, maxPendingFrames: 2 });
    const f = (id: number) => fragment(bytesOf(100, id), id);
    s = reassemble(s, 'a', f(1)[0]!, 0).state;
    s = reassemble(s, 'a', f(2)[0]!, 10).state;
    s = reassemble(s, 'a', f(1)[1]!, 20).state; // frame 1 progresses: frame 2 is now the stalest
    const step = reassemble(s, 'a', f(3)[0]!, 30);
    expect(step.state.pending.map((f) => f.frameId)).toEqual([1, 3]);
    expect(step.state.counters.evicted).toBe(1);
  });

  it('a frame larger than maxPendingBytes by itself is evicted (outcome `evicted`)', () => {
    const s = createReassembly({ ...LIMITS, maxPendingBytes: 30 });
    const { outcomes, state } = feed(s, 'a', fragment(bytesOf(100, 1), 1).slice(0, 3));
    expect(outcomes.map((o) => o.kind)).toEqual(['partial', 'evicted', 'partial']);
    expect(state.pendingBytes).toBeLessThanOrEqual(30);
  });

  it('a flood of 100k random fragments from many sources never exceeds the limits', () => {
    const limits = { expiryMs: 2_000, maxPendingFrames: 48, maxPendingBytes: 4096, maxCompletedRemembered: 128, completedMemoryMs: 10_000 };
    const r = prng(7);
    let s = createReassembly(limits);
    let worst = { frames: 0, bytes: 0, remembered: 0 };
    for (let i = 0; i < 100_000; i++) {
      const count = 1 + Math.floor(r() * 8);
      const len = 1 + Math.floor(r() * 19);
      const bytes = new Uint8Array(FRAGMENT_HEADER_BYTES + len);
      bytes.set([FRAGMENT_MAGIC_V1, 0, Math.floor(r() * 4), Math.floor(r() * count), count]);
      for (let k = FRAGMENT_HEADER_BYTES; k < bytes.length; k++) bytes[k] = Math.floor(r() * 256);
      s = reassemble(s, `m${Math.floor(r() * 500)}`, bytes, i).state;
      worst = {
        frames: Math.max(worst.frames, s.pending.length),
        bytes: Math.max(worst.bytes, s.pendingBytes),
        remembered: Math.max(worst.remembered, s.completed.length),
      };
      if (i % 1000 === 0) {
        expect(s.pending.reduce((n, f) => n + f.bytes, 0)).toBe(s.pendingBytes);
        expect(s.pendingFrames).toBe(s.pending.length);
        expect(new Set(s.pending.map((f) => `${f.frameId}:${f.source}`)).size).toBe(s.pending.length);
      }
    }
    expect(worst.frames).toBeLessThanOrEqual(limits.maxPendingFrames);
    expect(worst.bytes).toBeLessThanOrEqual(limits.maxPendingBytes);
    expect(worst.remembered).toBeLessThanOrEqual(limits.maxCompletedRemembered);
    expect(s.counters.fragments).toBe(100_000);
    expect(s.counters.evicted).toBeGreaterThan(0);
  });
});

describe('framing: state is plain, persistable data and never mutated', () => {
  it('reassemble leaves its input state untouched and survives structuredClone (persist → restore)', () => {
    const frags = fragment(bytesOf(120, 30), 4);
    let s = feed(createReassembly(LIMITS), 'src', frags.slice(0, 3)).state;
    const before = structuredClone(s);
    const next = reassemble(s, 'src', frags[3]!, 1);
    expect(s).toEqual(before);
    expect(next.state.pending[0]).not.toBe(s.pending[0]);
    expect(next.state.pending[0]!.chunks[0]).toBe(s.pending[0]!.chunks[0]); // chunks are shared, not copied
    const isPlain = (v: unknown): boolean =>
      v === null || typeof v !== 'object' || v instanceof Uint8Array
        ? true
        : (Array.isArray(v) || Object.getPrototypeOf(v) === Object.prototype) && Object.values(v).every(isPlain);
    expect(isPlain(s)).toBe(true);
    s = structuredClone(s);
    const done = completions(feed(s, 'src', frags.slice(3)).outcomes);
    expect(done.length === 1 && done[0]!.kind === 'completed' && done[0]!.payload).toEqual(bytesOf(120, 30));
  });

  it('misuse throws MisuseError naming the argument or limit', () => {
    const s = createReassembly(LIMITS);
    const f = fragment(new Uint8Array(1), 1)[0]!;
    expect(misuseField(() => reassemble(s, '', f, 0))).toBe('sourceAddress');
    expect(misuseField(() => reassemble(s, 'a', f, Number.NaN))).toBe('now');
    expect(misuseField(() => createReassembly({ expiryMs: 0 }))).toBe('limits.expiryMs');
    expect(misuseField(() => createReassembly({ maxPendingFrames: 0 }))).toBe('limits.maxPendingFrames');
    expect(misuseField(() => createReassembly({ maxPendingBytes: 1.5 }))).toBe('limits.maxPendingBytes');
    expect(misuseField(() => createReassembly({ maxCompletedRemembered: -1 }))).toBe('limits.maxCompletedRemembered');
    expect(misuseField(() => createReassembly({ completedMemoryMs: Number.POSITIVE_INFINITY }))).toBe('limits.completedMemoryMs');
  });
});

describe('framing: fuzz — hostile streams yield only typed outcomes', () => {
  const KINDS = new Set(['completed', 'partial', 'duplicate', 'rejected', 'evicted']);

  it('10,000 random byte strings and 10,000 mutated fragment streams never throw', () => {
    const r = prng(99);
    const originals = Array.from({ length: 8 }, (_, i) => bytesOf(10 + i * 23, 500 + i));
    const known = new Set(originals.map((p) => Array.from(p).join(',')));
    let s = createReassembly(LIMITS);
    let now = 0;
    const offer = (source: string, bytes: Uint8Array): void => {
      const step = reassemble(s, source, bytes, (now += 7));
      s = step.state;
      expect(KINDS.has(step.outcome.kind)).toBe(true);
      if (step.outcome.kind === 'rejected') expect(['fragment', 'frame']).toContain(step.outcome.rejection.codec);
      // A completion from mutated data is one of the sent payloads (mutations elsewhere, e.g. the id) —
      // the CRC trailer keeps corrupt payloads out.
      if (step.outcome.kind === 'completed') expect(known.has(Array.from(step.outcome.payload).join(','))).toBe(true);
    };
    for (let i = 0; i < 10_000; i++) {
      const len = Math.floor(r() * 40);
      const bytes = Uint8Array.from({ length: len }, () => Math.floor(r() * 256));
      if (len > 0 && r() < 0.5) bytes[0] = FRAGMENT_MAGIC_V1; // get past the magic often
      offer(`rand${i % 13}`, bytes);
    }
    for (let i = 0; i < 10_000; i++) {
      const payload = originals[i % originals.length]!;
      const frags = fragment(payload, Math.floor(r() * 3), r() < 0.5 ? 24 : 40);
      const victim = frags[Math.floor(r() * frags.length)]!;
      let m: Uint8Array = victim.slice();
      switch (Math.floor(r() * 4)) {
        case 0: // bit flip
          m[Math.floor(r() * m.length)]! ^= 1 << Math.floor(r() * 8);
          break;
        case 1: // truncation
          m = m.subarray(0, Math.floor(r() * m.length));
          break;
        case 2: {
          // insertion
          const at = Math.floor(r() * (m.length + 1));
          m = Uint8Array.from([...m.subarray(0, at), Math.floor(r() * 256), ...m.subarray(at)]);
          break;
        }
        default: {
          // splice with another frame's fragment
          const other = fragment(originals[(i + 1) % originals.length]!, 1)[0]!;
          const cut = Math.floor(r() * m.length);
          m = Uint8Array.from([...m.subarray(0, cut), ...other.subarray(cut)]);
        }
      }
      const source = `mut${i % 5}`;
      for (const f of frags) offer(source, f === victim ? m : f);
    }
    expect(s.counters.fragments).toBeGreaterThan(20_000);
    expect(s.pending.length).toBeLessThanOrEqual(LIMITS.maxPendingFrames);
  });

  it('property: arbitrary byte streams from arbitrary sources never throw', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c'), fc.uint8Array({ maxLength: 30 }), fc.nat(10_000))), (stream) => {
        let s = createReassembly(LIMITS);
        for (const [source, bytes, now] of stream) {
          if (bytes.length > 0 && now % 2 === 0) bytes[0] = FRAGMENT_MAGIC_V1;
          const step = reassemble(s, source, bytes, now);
          s = step.state;
          expect(KINDS.has(step.outcome.kind)).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('reassembly eviction under a flood', () => {
  it('regression: a flood of never-completing frames from a few addresses evicts its own frames, not a beacon frame in progress', () => {
    const beaconFrags = fragment(new Uint8Array(70).fill(7), 42);
    let s = reassemble(createReassembly(LIMITS), 'beacon', beaconFrags[0]!, 0).state;
    // 4 flooding addresses each start 100 different frames, none of which completes.
    for (let i = 0; i < 400; i++) {
      const junk = fragment(new Uint8Array(60).fill(i & 0xff), 1000 + i)[0]!;
      s = reassemble(s, `flood-${i % 4}`, junk, 1 + i).state;
      expect(s.pendingFrames).toBeLessThanOrEqual(LIMITS.maxPendingFrames);
    }
    let completed: Uint8Array | undefined;
    for (const f of beaconFrags.slice(1)) {
      const step = reassemble(s, 'beacon', f, 500);
      s = step.state;
      if (step.outcome.kind === 'completed') completed = step.outcome.payload;
    }
    expect(completed).toEqual(new Uint8Array(70).fill(7));
    expect(s.counters.evicted).toBeGreaterThan(300);
  });
});
