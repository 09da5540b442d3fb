/**
 * The DIMY backend as the city spawns it (actors/tracing/dimy-backend-spec.ts) and the backend's
 * codes registered from the start (DimyBackendInput.codes, actors/dimy/backend-logic.ts): the
 * health authority's printed codes become digests under a pepper drawn from the deployment's
 * DRBG; an upload with one of them is accepted once, others are refused; the codes expire.
 */
import { describe, expect, it } from 'vitest';
import { createActor, type AnyStateMachine } from 'xstate';
import type { Effect } from '../../actors/effects.ts';
import { initialDimyBackendContext, type DimyBackendContext } from '../../actors/dimy/backend.ts';
import { dimyBackendActor, dimyEngineConfig } from '../../actors/tracing/dimy-backend-spec.ts';
import { drbgInit } from '../../protocol/crypto/drbg.ts';
import { createBloom } from '../../protocol/dimy/bloom.ts';
import { dimyCbfAckCodec } from '../../protocol/dimy/messages.ts';
import { parseUploadCode } from '../../protocol/keyserver/upload-code.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { freshCode } from '../support/key-server-fixtures.ts';
import { misuseField } from '../support/misuse.ts';

const T0 = Date.UTC(2026, 10, 23);
const DAY = 86_400_000;
const config = dimyEngineConfig();

function start(codes: readonly string[], endMs: number) {
  const spec = dimyBackendActor({ crypto: nodeSuite, drbg: drbgInit(new Uint8Array(32).fill(7)), codes, endMs }, config);
  const actor = createActor(spec.machine as AnyStateMachine, { input: spec.input });
  const effects: Effect[] = [];
  actor.on('*', (e: Effect) => effects.push(e));
  actor.start();
  actor.send({ type: 'host.start', at: T0 });
  return { spec, actor, effects };
}

function upload(b: ReturnType<typeof start>, text: string, at: number, fill = 1) {
  const code = parseUploadCode(text);
  if (!code.ok) throw new Error(code.detail);
  const filter = createBloom();
  filter.bits[fill] = 1;
  const envelope = { v: 1, type: 'dimy.cbf.upload', id: `u${at}`, from: 'phone/p1', at, replyTo: 'tc/v1/phone/p1/inbox', body: null };
  const from = b.effects.length;
  b.actor.send({ type: 'msg.dimy.cbf.upload', at, envelope, body: { filter, code: code.value } });
  const ack = b.effects.slice(from).find((e) => e.type === 'bus.send');
  if (ack?.type !== 'bus.send') throw new Error('no ack');
  const decoded = dimyCbfAckCodec.decode(ack.body);
  if (!decoded.ok) throw new Error(decoded.detail);
  return decoded.value;
}

describe('DIMY backend spawned for the city', () => {
  it('listens as app-backend/<backendId>; the issued codes authorize one CBF each; unknown codes are refused; the codes expire at endMs', () => {
    const codes = [freshCode('ha', T0).text, freshCode('ha', T0).text];
    const b = start(codes, T0 + 5 * DAY);
    expect(b.spec.role).toBe('app-backend');
    expect(b.spec.id).toBe(config.backendId);
    const context = (b.actor.getSnapshot() as { context: DimyBackendContext }).context;
    expect(context.codeCount).toBe(2);
    expect(context.counters.codesRegistered).toBe(2);
    expect(context.nextCodeDrop).toBe(T0 + 5 * DAY + context.config.expiredCodeMemoryMs);
    expect(upload(b, codes[0] ?? '', T0 + DAY)).toEqual({ accepted: true, reason: '' });
    expect(upload(b, codes[0] ?? '', T0 + DAY, 2)).toEqual({ accepted: false, reason: 'used' });
    expect(upload(b, freshCode('other', T0).text, T0 + DAY)).toEqual({ accepted: false, reason: 'unknown-code' });
    expect(upload(b, codes[1] ?? '', T0 + 5 * DAY)).toEqual({ accepted: false, reason: 'expired' });
  });

  it('a malformed printed code is the deployment’s bug (MisuseError)', () => {
    expect(misuseField(() => start(['not a code'], T0 + DAY))).toBe('env.codes[0]');
  });
});

describe('DimyBackendInput.codes (backend-logic.ts)', () => {
  const digest = (i: number): Uint8Array => new Uint8Array(32).fill(i);

  it('registers distinct digests up to maxCodes, counts the rest as refused, and checks digest lengths', () => {
    const context = initialDimyBackendContext({ id: 'd1', config: { maxCodes: 2 }, codes: { digests: [digest(1), digest(1), digest(2), digest(3)], expiresAt: T0 } });
    expect(context.codeCount).toBe(2);
    expect(Object.keys(context.codes)).toHaveLength(2);
    expect(context.counters).toMatchObject({ codesRegistered: 2, codesRefused: 1 });
    expect(misuseField(() => initialDimyBackendContext({ id: 'd1', codes: { digests: [new Uint8Array(31)], expiresAt: T0 } }))).toBe('input.codes.digests[0]');
    expect(misuseField(() => initialDimyBackendContext({ id: 'd1', codes: { digests: [], expiresAt: -1 } }))).toBe('input.codes.expiresAt');
    const none = initialDimyBackendContext({ id: 'd1' });
    expect(none.codeCount).toBe(0);
    expect(none.nextCodeDrop).toBeNull();
  });
});
