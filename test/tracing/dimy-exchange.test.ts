/**
 * The DIMY engine's exchange with its backend (actors/tracing/dimy-exchange.ts; SPECS §4.1 QBF,
 * CBF; §4.2): the QBF is the OR of the DBFs with tOld = the oldest DBF's start, queried once a
 * period and skipped while empty; the CBF is the OR of the DBFs since infectiousFrom's day, sent
 * with the code, re-sent until acknowledged; no QBF after it; results become exposures.
 */
import { describe, expect, it } from 'vitest';
import type { EngineDeps, EngineStep } from '../../actors/tracing/engine.ts';
import { dimyEngine, dimyEngineConfig, type DimyState } from '../../actors/tracing/dimy-engine.ts';
import { dimyBackendInbox } from '../../actors/tracing/dimy-exchange.ts';
import { insertEncIds, unionOf } from '../../actors/tracing/dimy-filters.ts';
import { drbgInit } from '../../protocol/crypto/drbg.ts';
import { bloomContains } from '../../protocol/dimy/bloom.ts';
import { dimyCbfAckCodec, dimyCbfUploadCodec, dimyQbfQueryCodec, dimyQbfResultCodec } from '../../protocol/dimy/messages.ts';
import type { WireValue } from '../../protocol/wire/msgpack.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { freshCode } from '../support/key-server-fixtures.ts';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const D0 = Date.UTC(2026, 0, 5);
const deps: EngineDeps = { crypto: nodeSuite };
const config = dimyEngineConfig();
const exchange = dimyEngine.exchange;
if (exchange === undefined) throw new Error('DIMY has an exchange');
const encId = (i: number): Uint8Array => nodeSuite.sha256(new Uint8Array([i, 0xd1]));

/** A phone state with EncIDs 10·d … 10·d + 2 in the DBF of day d, for days 0..3. */
function withDbfs(): DimyState {
  let state = dimyEngine.init(deps, config, 0, drbgInit(new Uint8Array(32).fill(1))).state;
  for (let d = 0; d < 4; d++) state = { ...state, dbfs: insertEncIds(state.dbfs, D0 + d * DAY, [encId(10 * d), encId(10 * d + 1), encId(10 * d + 2)], config.dbfCount) };
  return state;
}

function only(step: EngineStep<DimyState>, msgType: string): WireValue {
  expect(step.sends?.map((s) => s.msgType)).toEqual([msgType]);
  expect(step.sends?.[0]?.topic).toBe(dimyBackendInbox(config));
  return step.sends?.[0]?.body as WireValue;
}

const result = (matched: boolean, matches: number): WireValue => dimyQbfResultCodec.encode({ matched, searched: 5, matches, reason: '' });

describe('DIMY QBF (dimy-exchange.ts)', () => {
  it('the first tick only schedules; then one QBF a day = OR of every DBF, tOld = the oldest DBF start; 100,001 bytes up', () => {
    let state = withDbfs();
    const t1 = D0 + 4 * DAY + 3 * HOUR;
    let step = exchange.periodic(deps, config, state, t1, 'p1');
    expect(step.sends ?? []).toEqual([]);
    state = step.state;
    step = exchange.periodic(deps, config, state, t1 + 23 * HOUR, 'p1');
    expect(step.sends ?? []).toEqual([]);
    step = exchange.periodic(deps, config, step.state, t1 + DAY, 'p1');
    const query = dimyQbfQueryCodec.decode(only(step, 'dimy.qbf.query'));
    if (!query.ok) throw new Error(query.detail);
    expect(query.value.tOld).toBe(D0);
    expect(Buffer.from(query.value.filter.bits).equals(Buffer.from(unionOf(state.dbfs).bits))).toBe(true);
    for (let i = 0; i < 4; i++) expect(bloomContains(query.value.filter, encId(10 * i + 2))).toBe(true);
    expect(step.bytesUp).toBe(100_001);
    expect(step.state.exchange.awaiting).toBe(t1 + DAY);
    // The next one a day later, on the same phase (a late tick does not shift it).
    const late = exchange.periodic(deps, config, step.state, t1 + 2 * DAY + 2 * HOUR, 'p1');
    expect(late.sends).toHaveLength(1);
    expect(late.state.exchange.nextQueryAt).toBe(t1 + 3 * DAY);
  });

  it('skips the query while the DBFs are empty (an empty filter matches nothing)', () => {
    let state = dimyEngine.init(deps, config, 0, drbgInit(new Uint8Array(32).fill(2))).state;
    state = exchange.periodic(deps, config, state, D0, 'p1').state;
    const step = exchange.periodic(deps, config, state, D0 + DAY, 'p1');
    expect(step.sends ?? []).toEqual([]);
    expect(step.state.counters.queriesSkipped).toBe(1);
  });

  it('a matched result raises one high-risk exposure on the query day; no new one until more CBFs match; stray results ignored', () => {
    let state = withDbfs();
    state = exchange.periodic(deps, config, state, D0 + 4 * DAY, 'p1').state;
    const asked = D0 + 5 * DAY;
    state = exchange.periodic(deps, config, state, asked, 'p1').state;
    let step = exchange.onMessage(deps, config, state, 'dimy.qbf.result', result(true, 1), asked + 1000);
    expect(step.exposures).toEqual([{ recordId: `dimy-qbf-${asked}`, dayNumber: Math.floor(asked / DAY), firstAt: asked, lastAt: asked, minutes: 10, risk: 'high' }]);
    expect(step.bytesDown).toBeGreaterThan(0);
    // A redelivered result answers nothing outstanding.
    const again = exchange.onMessage(deps, config, step.state, 'dimy.qbf.result', result(true, 1), asked + 2000);
    expect(again.exposures ?? []).toEqual([]);
    expect(again.state.counters.resultsIgnored).toBe(1);
    // Next day, same single match: already notified. Then two matches: a new positive.
    state = exchange.periodic(deps, config, again.state, asked + DAY, 'p1').state;
    step = exchange.onMessage(deps, config, state, 'dimy.qbf.result', result(true, 1), asked + DAY + 5);
    expect(step.exposures ?? []).toEqual([]);
    state = exchange.periodic(deps, config, step.state, asked + 2 * DAY, 'p1').state;
    step = exchange.onMessage(deps, config, state, 'dimy.qbf.result', result(true, 2), asked + 2 * DAY + 5);
    expect(step.exposures).toHaveLength(1);
    expect(step.state.counters).toMatchObject({ queries: 3, results: 3, resultsMatched: 2 });
    // Malformed bodies are counted, not trusted.
    expect(exchange.onMessage(deps, config, step.state, 'dimy.qbf.result', { matched: 'yes' }, asked).state.counters.messagesIgnored).toBe(1);
  });
});

describe('DIMY CBF (dimy-exchange.ts)', () => {
  const code = freshCode('clinic', D0).text;

  it('is the OR of the DBFs since infectiousFrom’s day only, uploaded with the code; no QBF after it', () => {
    const state = withDbfs();
    const step = exchange.diagnosed(deps, config, state, D0 + 2 * DAY + 15 * HOUR, D0 + 4 * DAY, code, 'p1');
    const upload = dimyCbfUploadCodec.decode(only(step, 'dimy.cbf.upload'));
    if (!upload.ok) throw new Error(upload.detail);
    expect(upload.value.code.text).toBe(code);
    for (let d = 0; d < 4; d++) for (let i = 0; i < 3; i++) expect(bloomContains(upload.value.filter, encId(10 * d + i))).toBe(d >= 2);
    expect(Buffer.from(upload.value.filter.bits).equals(Buffer.from(unionOf(state.dbfs.slice(2)).bits))).toBe(true);
    expect(step.bytesUp).toBeGreaterThan(100_000);
    expect(step.state.exchange.reported).toBe(true);
    // Ticks re-send the pending CBF, not QBFs; after the ack nothing more goes out.
    const resend = exchange.periodic(deps, config, step.state, D0 + 4 * DAY + HOUR, 'p1');
    expect(only(resend, 'dimy.cbf.upload')).toBe(only(step, 'dimy.cbf.upload'));
    const acked = exchange.onMessage(deps, config, resend.state, 'dimy.cbf.ack', dimyCbfAckCodec.encode({ accepted: true, reason: '' }), D0 + 4 * DAY + HOUR);
    expect(acked.state.exchange.pending).toBeNull();
    let s = acked.state;
    for (let h = 2; h < 60; h++) {
      const tick = exchange.periodic(deps, config, s, D0 + 4 * DAY + h * HOUR, 'p1');
      expect(tick.sends ?? []).toEqual([]);
      s = tick.state;
    }
    expect(s.counters).toMatchObject({ cbfSent: 1, cbfResent: 1, cbfAccepted: 1, queries: 0 });
  });

  it('a refused CBF stops (capacity: keeps trying); re-sends end after maxCbfAttempts; it expires with its oldest DBF', () => {
    const state = withDbfs();
    const sent = exchange.diagnosed(deps, config, state, D0, D0 + 4 * DAY, code, 'p1');
    const full = exchange.onMessage(deps, config, sent.state, 'dimy.cbf.ack', dimyCbfAckCodec.encode({ accepted: false, reason: 'capacity' }), D0 + 4 * DAY);
    expect(full.state.exchange.pending).not.toBeNull();
    const used = exchange.onMessage(deps, config, full.state, 'dimy.cbf.ack', dimyCbfAckCodec.encode({ accepted: false, reason: 'used' }), D0 + 4 * DAY);
    expect(used.state.exchange.pending).toBeNull();
    expect(used.state.counters.cbfRefused).toBe(1);
    let s = sent.state;
    for (let h = 1; h <= config.maxCbfAttempts; h++) s = exchange.periodic(deps, config, s, D0 + 4 * DAY + h * HOUR, 'p1').state;
    expect(s.counters).toMatchObject({ cbfResent: config.maxCbfAttempts - 1, cbfAbandoned: 1 });
    const expired = dimyEngine.expire(config, sent.state, D0 + (config.dbfCount + 3) * DAY);
    expect(expired.exchange.pending).toBeNull();
    expect(expired.dbfs).toEqual([]);
  });
});
