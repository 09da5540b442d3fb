/**
 * protocol/wire/framing.ts: fragment layout, decoding of hostile service data,
 * and reassembly under loss, duplication, reordering, interleaving and
 * conflicts (DESIGN.md "Radio" → Framing). Memory bounds, persistence, fuzz
 * and floods: framing-limits.test.ts.
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
} from '../../protocol/wire/framing.ts';
import { bytesOf, completions, feed, LIMITS } from '../support/framing-fixtures.ts';

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

