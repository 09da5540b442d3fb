/**
 * The DIMY backend machine (actors/dimy/backend.ts): pure transitions — codes, uploads and every
 * refusal, queries with T_old and the default rule, retention and the expire timer, bounds —
 * then persist → restore through the host's snapshot codec and xstate/graph shortest paths.
 */
import { createActor, type AnyStateMachine } from 'xstate';
import { describe, expect, it } from 'vitest';
import {
  createDimyBackendMachine,
  DIMY_DEFAULT_EXPIRED_CODE_MEMORY_MS,
  DIMY_DEFAULT_RETENTION_MS,
  hex,
  initialDimyBackendContext,
  type DimyBackendContext,
  type DimyBackendEvent,
} from '../../actors/dimy/backend.ts';
import { decodeSnapshot, encodeSnapshot } from '../../services/host/snapshots.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { misuseField } from '../support/misuse.ts';
import { exploreModel } from '../support/model.ts';
import { ackOf, code, codesAckOf, DAY, deps, digest, expireAt, filterOf, HOUR, msg, query, register, resultOf, start, T0, timerEffects, upload } from './backend-fixtures.ts';

const MEMORY = DIMY_DEFAULT_EXPIRED_CODE_MEMORY_MS;
const timerSet = (deadline: number) => ({ type: 'timer.set', name: 'expire', deadline });
/** A positive's CBF: pool EncIDs 0–9 and 300 private ones. */
const CBF = filterOf([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 300, 11);

describe('dimy backend: codes', () => {
  it('register stores digests, acks with the count, arms the timer at the first code drop; a re-send changes nothing', () => {
    const h = start();
    const fx = h.send(register([0, 1, 2], DAY, T0));
    expect(codesAckOf(fx)).toEqual({ registered: 3, reason: '' });
    expect(fx).toContainEqual(timerSet(T0 + DAY + MEMORY));
    expect(h.ctx().codeCount).toBe(3);
    expect(h.ctx().codes[hex(digest(1))]).toEqual({ expiresAt: T0 + DAY, usedAt: null, cbfHash: null });
    const again = h.send(register([0, 1, 2], 2 * DAY, T0 + HOUR));
    expect(codesAckOf(again)).toEqual({ registered: 3, reason: '' });
    expect(timerEffects(again)).toEqual([]);
    expect(h.ctx().codes[hex(digest(1))]?.expiresAt).toBe(T0 + DAY);
  });

  it('beyond maxCodes the rest are refused (capacity)', () => {
    const h = start({ maxCodes: 2 });
    expect(codesAckOf(h.send(register([0, 1, 2], DAY, T0)))).toEqual({ registered: 2, reason: 'capacity' });
    expect(h.ctx().counters).toMatchObject({ codesRegistered: 2, codesRefused: 1 });
  });
});

describe('dimy backend: uploads', () => {
  it('a registered code authorizes one CBF; the same CBF re-sent is acked again, another CBF is refused `used`', () => {
    const h = start();
    h.send(register([0], DAY, T0));
    const fx = h.send(upload(CBF, 0, T0 + HOUR));
    expect(ackOf(fx)).toEqual({ accepted: true, reason: '' });
    expect(h.ctx().cbfs.map((c) => [c.seq, c.uploadedAt, c.setBits])).toEqual([[1, T0 + HOUR, expect.any(Number) as number]]);
    expect(h.ctx().codes[hex(digest(0))]?.usedAt).toBe(T0 + HOUR);
    expect(ackOf(h.send(upload(CBF, 0, T0 + 2 * HOUR)))).toEqual({ accepted: true, reason: '' });
    expect(ackOf(h.send(upload(filterOf([1], 5), 0, T0 + 2 * HOUR)))).toEqual({ accepted: false, reason: 'used' });
    expect(h.ctx().cbfs).toHaveLength(1);
    expect(h.ctx().counters).toMatchObject({ uploadsAccepted: 1, uploadRetries: 1, uploadsRefused: { used: 1 } });
  });

  it('unknown, expired (remembered for a week), then unknown again', () => {
    const h = start();
    expect(ackOf(h.send(upload(CBF, 0, T0)))).toEqual({ accepted: false, reason: 'unknown-code' });
    h.send(register([1], HOUR, T0));
    expect(ackOf(h.send(upload(CBF, 1, T0 + HOUR - 1))).accepted).toBe(true);
    h.send(register([2], HOUR, T0));
    expect(ackOf(h.send(upload(CBF, 2, T0 + HOUR)))).toEqual({ accepted: false, reason: 'expired' });
    expect(ackOf(h.send(upload(CBF, 2, T0 + HOUR + MEMORY)))).toEqual({ accepted: false, reason: 'unknown-code' });
    expect(h.ctx().codeCount).toBe(0);
  });

  it('too-full and capacity refusals leave the code unused', () => {
    const h = start({ maxSetBits: 1000, maxCbfs: 1, retentionMs: HOUR });
    h.send(register([0, 1], DAY, T0));
    expect(ackOf(h.send(upload(filterOf([], 400), 0, T0)))).toEqual({ accepted: false, reason: 'too-full' });
    expect(ackOf(h.send(upload(CBF, 0, T0)))).toEqual({ accepted: true, reason: '' });
    const second = filterOf([20, 21, 22], 10, 12);
    expect(ackOf(h.send(upload(second, 1, T0 + 1)))).toEqual({ accepted: false, reason: 'capacity' });
    expect(h.ctx().codes[hex(digest(1))]?.usedAt).toBeNull();
    // The first CBF leaves at T0 + 1 h: there is room again for code 1.
    h.send(expireAt(T0 + HOUR));
    expect(h.ctx().cbfs).toHaveLength(0);
    expect(ackOf(h.send(upload(second, 1, T0 + HOUR)))).toEqual({ accepted: true, reason: '' });
  });

  it('without replyTo the upload is processed silently', () => {
    const h = start();
    h.send(register([0], DAY, T0));
    const fx = h.send(msg('dimy.cbf.upload', { filter: CBF, code: code(0) }, T0, null));
    expect(fx.filter((e) => e.type === 'bus.send')).toEqual([]);
    expect(h.ctx().cbfs).toHaveLength(1);
  });
});

describe('dimy backend: queries', () => {
  function withCbfs() {
    const h = start();
    h.send(register([0, 1], DAY, T0));
    h.send(upload(CBF, 0, T0 + HOUR));
    h.send(upload(filterOf([50, 51, 52, 53], 300, 12), 1, T0 + 2 * HOUR));
    return h;
  }

  it('matched iff the QBF shares enough EncIDs (default rule); searched counts CBFs at or after T_old', () => {
    const h = withCbfs();
    const corr = query(filterOf([0, 1, 2, 3], 100, 21), T0 - DAY, T0 + 3 * HOUR);
    const fx = h.send(corr);
    expect(resultOf(fx)).toEqual({ matched: true, searched: 2, matches: 1, reason: '' });
    expect(fx).toContainEqual(expect.objectContaining({ type: 'bus.send', topic: corr.envelope.replyTo, corr: corr.envelope.id, qos: 1 }));
    expect(resultOf(h.send(query(filterOf([0, 1, 2, 3, 50, 51, 52], 100, 21), T0, T0 + 3 * HOUR)))).toEqual({ matched: true, searched: 2, matches: 2, reason: '' });
    expect(resultOf(h.send(query(filterOf([], 100, 22), T0, T0 + 3 * HOUR)))).toEqual({ matched: false, searched: 2, matches: 0, reason: '' });
    // One shared EncID at this fill is below the default threshold (matching.ts header).
    expect(resultOf(h.send(query(filterOf([5], 100, 23), T0, T0 + 3 * HOUR))).matched).toBe(false);
    expect(resultOf(h.send(query(filterOf([0, 1, 2, 3], 100, 21), T0 + HOUR + 1, T0 + 3 * HOUR)))).toEqual({ matched: false, searched: 1, matches: 0, reason: '' });
    expect(resultOf(h.send(query(filterOf([0, 1, 2, 3], 100, 21), T0 + HOUR, T0 + 3 * HOUR))).searched).toBe(2);
    expect(h.ctx().counters).toMatchObject({ queries: 6, queriesMatched: 3, queriesRefused: 0 });
  });

  it('an over-full QBF is refused; the configured rule applies', () => {
    const h = start({ maxSetBits: 2000, rule: { name: 'min-common-bits' } });
    h.send(register([0], DAY, T0));
    h.send(upload(CBF, 0, T0));
    expect(resultOf(h.send(query(filterOf([], 700), T0, T0)))).toEqual({ matched: false, searched: 0, matches: 0, reason: 'too-full' });
    expect(resultOf(h.send(query(filterOf([5], 100, 23), T0, T0))).matched).toBe(true);
  });
});

describe('dimy backend: retention and the expire timer', () => {
  it('CBFs leave 21 days after upload; the timer follows the earliest expiry and is cancelled when nothing is held', () => {
    const h = start({ expiredCodeMemoryMs: 0 });
    expect(h.send(register([0, 1], 30 * 60_000, T0))).toContainEqual(timerSet(T0 + 30 * 60_000));
    h.send(upload(CBF, 0, T0 + 60_000));
    h.send(upload(filterOf([7], 3), 1, T0 + 120_000));
    const fired = h.send(expireAt(T0 + 30 * 60_000));
    expect(h.ctx().codeCount).toBe(0);
    expect(timerEffects(fired)).toEqual([timerSet(T0 + 60_000 + DIMY_DEFAULT_RETENTION_MS)]);
    expect(h.send(expireAt(T0 + 60_000 + DIMY_DEFAULT_RETENTION_MS))).toContainEqual(timerSet(T0 + 120_000 + DIMY_DEFAULT_RETENTION_MS));
    expect(h.ctx().cbfs.map((c) => c.seq)).toEqual([2]);
    // The last CBF leaves with a query that arrives before the timer fires: the timer is cancelled.
    expect(timerEffects(h.send(query(filterOf([0]), 0, T0 + 120_000 + DIMY_DEFAULT_RETENTION_MS)))).toEqual([{ type: 'timer.cancel', name: 'expire' }]);
    expect(h.ctx()).toMatchObject({ cbfs: [], timers: {}, counters: { cbfsExpired: 2, codesExpired: 2 } });
    // A fired timer needs no cancel.
    const h2 = start();
    h2.send(register([0], DAY, T0));
    expect(timerEffects(h2.send(expireAt(T0 + DAY + MEMORY)))).toEqual([]);
    expect(h2.ctx()).toMatchObject({ codeCount: 0, timers: {} });
  });

  it('housekeeping also runs on any event: a query after the retention searches nothing', () => {
    const h = start();
    h.send(register([0], DAY, T0));
    h.send(upload(CBF, 0, T0));
    expect(resultOf(h.send(query(filterOf([0, 1, 2]), 0, T0 + DIMY_DEFAULT_RETENTION_MS))).searched).toBe(0);
  });
});

describe('dimy backend: misuse, snapshots, model paths', () => {
  it('bad deps, input and config name the field', () => {
    expect(misuseField(() => createDimyBackendMachine({ crypto: nodeSuite, pepper: new Uint8Array(8) }))).toBe('deps.pepper');
    expect(misuseField(() => initialDimyBackendContext({ id: 'a/b' }))).toBe('input.id');
    expect(misuseField(() => initialDimyBackendContext({ id: 'd', config: { maxCbfs: 0 } }))).toBe('config.maxCbfs');
    expect(misuseField(() => initialDimyBackendContext({ id: 'd', config: { maxCbfs: 1_000_001 } }))).toBe('config.maxCbfs');
    expect(misuseField(() => initialDimyBackendContext({ id: 'd', config: { expiredCodeMemoryMs: -1 } }))).toBe('config.expiredCodeMemoryMs');
    expect(misuseField(() => initialDimyBackendContext({ id: 'd', config: { rule: { alpha: 2 } } }))).toBe('rule.alpha');
  });

  it('persist → restore: the restored backend answers the same and keeps its timer deadline', () => {
    const h = start();
    h.send(register([0, 1], DAY, T0));
    h.send(upload(CBF, 0, T0 + HOUR));
    const restored = createActor(createDimyBackendMachine(deps) as AnyStateMachine, { input: { id: 'dimy1' }, snapshot: decodeSnapshot(encodeSnapshot(h.actor.getPersistedSnapshot())).snapshot });
    const effects: unknown[] = [];
    restored.on('*', (e) => effects.push(e));
    restored.start();
    const q = filterOf([0, 1, 2, 3], 100, 21);
    restored.send(query(q, T0, T0 + 2 * HOUR));
    expect(resultOf(effects as never)).toEqual(resultOf(h.send(query(q, T0, T0 + 2 * HOUR))));
    const ctx = (restored.getSnapshot() as { context: DimyBackendContext }).context;
    expect(ctx.timers).toEqual(h.ctx().timers);
    restored.send(upload(filterOf([9], 2), 1, T0 + 3 * HOUR));
    expect((restored.getSnapshot() as { context: DimyBackendContext }).context.cbfs).toHaveLength(2);
  });

  it('xstate/graph: every shortest path keeps the invariants and survives persist → restore', () => {
    const events: DimyBackendEvent[] = [
      { type: 'host.start', at: T0 },
      register([0], DAY, T0),
      upload(filterOf([0, 1, 2], 5, 3), 0, T0 + 1),
      query(filterOf([0, 1, 2], 5, 4), T0, T0 + 2),
      expireAt(T0 + DIMY_DEFAULT_RETENTION_MS + 1),
      { type: 'host.stop', at: T0 + 3 },
    ];
    const reached = exploreModel<DimyBackendContext, DimyBackendEvent>(createDimyBackendMachine(deps) as AnyStateMachine, {
      input: { id: 'dimy1' },
      events,
      serialize: (value, ctx) => `${JSON.stringify(value)}|${ctx.cbfs.length}|${ctx.codeCount}|${ctx.counters.queries > 0}`,
      invariant: ({ context, effects }) => {
        expect(context.cbfs.length).toBeLessThanOrEqual(context.config.maxCbfs);
        expect(context.codeCount).toBe(Object.keys(context.codes).length);
        const deadline = context.timers['expire'];
        const first = context.cbfs[0];
        if (first !== undefined) expect(deadline).toBeLessThanOrEqual(first.uploadedAt + context.config.retentionMs);
        if (first === undefined && context.codeCount === 0) expect(deadline).toBeUndefined();
        for (const e of effects) if (e.type === 'bus.send') expect(e.qos).toBe(1);
      },
      everyEvent: true,
    });
    expect(reached.size).toBeGreaterThanOrEqual(6);
  });
});
