/**
 * protocol/wire/framing.ts under pressure: bounded memory, plain persistable
 * state that is never mutated, fuzzed hostile streams, and eviction under a
 * flood (DESIGN.md "Radio" → Framing).
 */
import { prng } from '../support/test-rng.ts';
import { misuseField } from '../support/misuse.ts';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FRAGMENT_HEADER_BYTES,
  FRAGMENT_MAGIC_V1,
  createReassembly,
  fragment,
  reassemble,
} from '../../protocol/wire/framing.ts';
import { bytesOf, completions, feed, LIMITS } from '../support/framing-fixtures.ts';

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
