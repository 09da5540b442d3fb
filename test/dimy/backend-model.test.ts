/**
 * Model test of the DIMY backend: seeded random command sequences (register codes, upload CBFs
 * with good, used, unknown and expiring codes, over-full filters, queries with random T_old,
 * time jumps with and without the expire timer firing) run on the machine and on a reference
 * model written from the rules in actors/dimy/backend.ts — plain maps, bloomCommonBits and
 * matchThreshold instead of the prepared fast path. Every reply, the number of CBFs and codes
 * held, and the timer deadline must agree after every command.
 */
import { describe, expect, it } from 'vitest';
import { hex, type DimyBackendContext } from '../../actors/dimy/backend.ts';
import { bloomPopcount, type BloomFilter } from '../../protocol/dimy/bloom.ts';
import { bloomCommonBits } from '../../protocol/dimy/bloom-stats.ts';
import { matchThreshold, resolveMatchRule, type DimyMatchRule, type DimyMatchRuleName } from '../../protocol/dimy/matching.ts';
import type { DimyCbfAck, DimyCodesAck, DimyQbfResult } from '../../protocol/dimy/messages.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { prng } from '../support/test-rng.ts';
import { ackOf, codesAckOf, DAY, digest, expireAt, filterOf, HOUR, query, register, resultOf, start, T0, upload } from './backend-fixtures.ts';

const CONFIG = { maxCbfs: 3, maxCodes: 6, maxSetBits: 1500, retentionMs: 3 * DAY, expiredCodeMemoryMs: DAY };
const CODES = 10;
const SEQUENCES = 24;
const COMMANDS = 60;

interface RefCode {
  readonly expiresAt: number;
  usedAt: number | null;
  hash: string | null;
}
interface RefCbf {
  readonly uploadedAt: number;
  readonly filter: BloomFilter;
}

/** The backend's rules, written out directly (actors/dimy/backend.ts header). */
class Reference {
  readonly codes = new Map<string, RefCode>();
  cbfs: RefCbf[] = [];
  constructor(readonly rule: DimyMatchRule) {}

  housekeep(at: number): void {
    this.cbfs = this.cbfs.filter((c) => c.uploadedAt + CONFIG.retentionMs > at);
    for (const [k, c] of [...this.codes]) if (c.expiresAt + CONFIG.expiredCodeMemoryMs <= at) this.codes.delete(k);
  }

  register(indices: readonly number[], lifetimeMs: number, at: number): DimyCodesAck {
    let registered = 0;
    for (const i of indices) {
      const key = hex(digest(i));
      if (!this.codes.has(key)) {
        if (this.codes.size >= CONFIG.maxCodes) break;
        this.codes.set(key, { expiresAt: at + lifetimeMs, usedAt: null, hash: null });
      }
      registered++;
    }
    return { registered, reason: registered < indices.length ? 'capacity' : '' };
  }

  upload(filter: BloomFilter, codeIndex: number, at: number): DimyCbfAck {
    if (bloomPopcount(filter) > CONFIG.maxSetBits) return { accepted: false, reason: 'too-full' };
    const code = this.codes.get(hex(digest(codeIndex)));
    if (code === undefined) return { accepted: false, reason: 'unknown-code' };
    const hash = hex(nodeSuite.sha256(filter.bits));
    if (code.usedAt !== null) return code.hash === hash ? { accepted: true, reason: '' } : { accepted: false, reason: 'used' };
    if (at >= code.expiresAt) return { accepted: false, reason: 'expired' };
    if (this.cbfs.length >= CONFIG.maxCbfs) return { accepted: false, reason: 'capacity' };
    code.usedAt = at;
    code.hash = hash;
    this.cbfs.push({ uploadedAt: at, filter });
    this.cbfs.sort((a, b) => a.uploadedAt - b.uploadedAt);
    return { accepted: true, reason: '' };
  }

  query(filter: BloomFilter, tOld: number): DimyQbfResult {
    const q = bloomPopcount(filter);
    if (q > CONFIG.maxSetBits) return { matched: false, searched: 0, matches: 0, reason: 'too-full' };
    const searched = this.cbfs.filter((c) => c.uploadedAt >= tOld);
    const matches = searched.filter((c) => bloomCommonBits(filter, c.filter) >= matchThreshold(q, bloomPopcount(c.filter), this.rule)).length;
    return { matched: matches > 0, searched: searched.length, matches, reason: '' };
  }

  deadline(): number | undefined {
    const times = [...this.cbfs.map((c) => c.uploadedAt + CONFIG.retentionMs), ...[...this.codes.values()].map((c) => c.expiresAt + CONFIG.expiredCodeMemoryMs)];
    return times.length === 0 ? undefined : Math.min(...times);
  }
}

/** Filters: EncIDs drawn from a shared pool of 12 (so queries and CBFs overlap) plus private ones; the last is over-full. */
const POOL: BloomFilter[] = (() => {
  const rand = prng(77);
  const filters = Array.from({ length: 14 }, (_, f) => {
    const shared = Array.from({ length: Math.floor(rand() * 7) }, () => Math.floor(rand() * 12));
    return filterOf(shared, 20 + Math.floor(rand() * 120), 900 + f);
  });
  filters.push(filterOf([], 600, 999));
  return filters;
})();

function runSequence(seed: number, ruleName: DimyMatchRuleName): Record<string, number> {
  const rand = prng(seed);
  const pick = (n: number): number => Math.floor(rand() * n);
  const rule = resolveMatchRule({ name: ruleName });
  const h = start({ ...CONFIG, rule: { name: ruleName } });
  const ref = new Reference(rule);
  const seen: Record<string, number> = {};
  const count = (key: string): void => {
    seen[key] = (seen[key] ?? 0) + 1;
  };
  let now = T0;
  const check = (what: string): void => {
    const ctx: DimyBackendContext = h.ctx();
    expect(ctx.cbfs.length, what).toBe(ref.cbfs.length);
    expect(ctx.codeCount, what).toBe(ref.codes.size);
    expect(ctx.timers['expire'], what).toBe(ref.deadline());
  };
  for (let step = 0; step < COMMANDS; step++) {
    const kind = pick(10);
    const what = `seed ${seed} step ${step} kind ${kind}`;
    if (kind <= 1) {
      // Time passes; the host fires the timer at its deadline unless it is "late" (then housekeeping on the next event).
      const target = now + (rand() < 0.2 ? pick(5 * DAY) : pick(8 * HOUR));
      const fire = rand() < 0.7;
      for (let deadline = h.ctx().timers['expire']; fire && deadline !== undefined && deadline <= target; deadline = h.ctx().timers['expire']) {
        h.send(expireAt(deadline));
        ref.housekeep(deadline);
        now = deadline;
        check(`${what} timer`);
        count('timer');
      }
      now = Math.max(now, target);
      continue;
    }
    ref.housekeep(now);
    if (kind <= 3) {
      const indices = Array.from({ length: 1 + pick(4) }, () => pick(CODES));
      const lifetime = 1 + pick(2 * DAY);
      const expected = ref.register(indices, lifetime, now);
      expect(codesAckOf(h.send(register(indices, lifetime, now))), what).toEqual(expected);
      count(`register:${expected.reason}`);
    } else if (kind <= 6) {
      const filter = POOL[pick(POOL.length)]!;
      const codeIndex = pick(CODES + 2);
      const expected = ref.upload(filter, codeIndex, now);
      expect(ackOf(h.send(upload(filter, codeIndex, now))), what).toEqual(expected);
      count(`upload:${expected.reason}`);
    } else {
      const filter = POOL[pick(POOL.length)]!;
      // T_old: often exactly a stored CBF's upload time (the ≥ boundary), else up to 4 days back.
      const at = ref.cbfs[pick(ref.cbfs.length + 1)]?.uploadedAt;
      const tOld = at !== undefined && rand() < 0.5 ? at : now - pick(4 * DAY);
      const expected = ref.query(filter, tOld);
      expect(resultOf(h.send(query(filter, tOld, now))), what).toEqual(expected);
      count(`query:${expected.reason}:${expected.matched}`);
    }
    check(what);
  }
  return seen;
}

describe('dimy backend against a reference model', () => {
  it(`${SEQUENCES} random sequences of ${COMMANDS} commands under the tail, z-score and min-common-bits rules`, () => {
    const totals: Record<string, number> = {};
    const rules: DimyMatchRuleName[] = ['tail', 'z-score', 'min-common-bits'];
    for (let s = 0; s < SEQUENCES; s++) {
      for (const [k, n] of Object.entries(runSequence(4242 + s, rules[s % rules.length]!))) totals[k] = (totals[k] ?? 0) + n;
    }
    // The sequences reach every outcome.
    for (const outcome of [
      'timer',
      'register:',
      'register:capacity',
      'upload:',
      'upload:too-full',
      'upload:unknown-code',
      'upload:used',
      'upload:expired',
      'upload:capacity',
      'query::true',
      'query::false',
      'query:too-full:false',
    ]) {
      expect(totals[outcome] ?? 0, outcome).toBeGreaterThan(0);
    }
  });
});
