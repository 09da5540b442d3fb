/**
 * Shared helpers of the framing tests (test/wire/framing*.test.ts): reassembly
 * limits small enough to hit, deterministic bytes, and feeding one source.
 */
import { prng } from './test-rng.ts';
import { reassemble, type ReassemblyLimits, type ReassemblyOutcome, type ReassemblyState } from '../../protocol/wire/framing.ts';

export const LIMITS: ReassemblyLimits = { expiryMs: 5_000, maxPendingFrames: 32, maxPendingBytes: 8 * 1024, maxCompletedRemembered: 64, completedMemoryMs: 30_000 };

export function bytesOf(length: number, seed: number): Uint8Array {
  const r = prng(seed);
  return Uint8Array.from({ length }, () => Math.floor(r() * 256));
}

/** Feed fragments from one source; return the final state and all outcomes. */
export function feed(state: ReassemblyState, source: string, fragments: readonly Uint8Array[], now = 0): { state: ReassemblyState; outcomes: ReassemblyOutcome[] } {
  const outcomes: ReassemblyOutcome[] = [];
  let s = state;
  for (const f of fragments) {
    const step = reassemble(s, source, f, now);
    s = step.state;
    outcomes.push(step.outcome);
  }
  return { state: s, outcomes };
}

export const completions = (outcomes: readonly ReassemblyOutcome[]) => outcomes.filter((o) => o.kind === 'completed');
