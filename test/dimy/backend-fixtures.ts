/**
 * Fixtures for the DIMY backend tests: codes and their digests, filters with chosen EncIDs,
 * message events and reply decoding.
 */
import type { AnyStateMachine } from 'xstate';
import type { Effect } from '../../actors/effects.ts';
import { createDimyBackendMachine, type DimyBackendContext, type DimyBackendEvent, type DimyBackendInput } from '../../actors/dimy/backend.ts';
import { bloomInsert, createBloom, type BloomFilter } from '../../protocol/dimy/bloom.ts';
import {
  dimyCbfAckCodec,
  dimyCodesAckCodec,
  dimyQbfResultCodec,
  type DimyCbfAck,
  type DimyCodesAck,
  type DimyQbfResult,
} from '../../protocol/dimy/messages.ts';
import { formatUploadCode, parseUploadCode, uploadCodeDigest, type UploadCode } from '../../protocol/keyserver/upload-code.ts';
import type { MessageCodec } from '../../protocol/wire/messages.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { startMachine, type Harness } from '../support/harness.ts';
import { seededRng } from '../support/test-rng.ts';

export const T0 = 1_767_225_600_000;
export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;
export const PEPPER = new Uint8Array(32).map((_, i) => 0xa0 ^ i);
export const INBOX = 'tc/v1/phone/p1/inbox';
export const HA_INBOX = 'tc/v1/health-authority/ha/inbox';
export const deps = { crypto: nodeSuite, pepper: PEPPER };

export function code(i: number): UploadCode {
  const parsed = parseUploadCode(formatUploadCode(seededRng(1000 + i).bytes(10)));
  if (!parsed.ok) throw new Error(parsed.detail);
  return parsed.value;
}
export const digest = (i: number): Uint8Array => uploadCodeDigest(nodeSuite, code(i), PEPPER);

/** EncID number i of a shared pool (the same bytes in every filter that holds i). */
export function encId(i: number): Uint8Array {
  return seededRng(5000 + i).bytes(32);
}

/** A filter holding the pool EncIDs `shared` plus `privateItems` random ones drawn from `seed`. */
export function filterOf(shared: readonly number[], privateItems = 0, seed = 1): BloomFilter {
  const filter = createBloom();
  for (const i of shared) bloomInsert(filter, encId(i));
  const bytes = seededRng(seed).bytes(32 * privateItems);
  for (let i = 0; i < privateItems; i++) bloomInsert(filter, bytes.subarray(32 * i, 32 * i + 32));
  return filter;
}

let msgId = 0;
/** A decoded message event as the host delivers it (replyTo null: none). */
export function msg<T extends string, B>(type: T, body: B, at: number, replyTo: string | null = INBOX) {
  const id = `m${++msgId}`;
  const envelope = { v: 1 as const, type, id, from: 'phone/p1', at, body: null, ...(replyTo === null ? {} : { replyTo }) };
  return { type: `msg.${type}` as const, at, envelope, body };
}
export const query = (filter: BloomFilter, tOld: number, at: number) => msg('dimy.qbf.query', { filter, tOld }, at);
export const upload = (filter: BloomFilter, codeIndex: number, at: number) => msg('dimy.cbf.upload', { filter, code: code(codeIndex) }, at);
export const register = (indices: readonly number[], lifetimeMs: number, at: number) => msg('dimy.codes.register', { digests: indices.map(digest), lifetimeMs }, at, HA_INBOX);
export const expireAt = (at: number) => ({ type: 'timer.expire' as const, at });

export function start(config: DimyBackendInput['config'] = {}, at = T0): Harness<DimyBackendContext, DimyBackendEvent> {
  const machine = createDimyBackendMachine(deps);
  return startMachine<DimyBackendContext, DimyBackendEvent>(machine as AnyStateMachine, { id: 'dimy1', config }, at);
}

function replyOf<T>(effects: readonly Effect[], codec: MessageCodec<T>): T {
  const sends = effects.filter((e) => e.type === 'bus.send' && e.msgType === codec.type);
  if (sends.length !== 1) throw new Error(`expected one ${codec.type}, got ${sends.length}`);
  const send = sends[0];
  if (send?.type !== 'bus.send') throw new Error('unreachable');
  const v = codec.decode(send.body);
  if (!v.ok) throw new Error(v.detail);
  return v.value;
}
export const resultOf = (effects: readonly Effect[]): DimyQbfResult => replyOf(effects, dimyQbfResultCodec);
export const ackOf = (effects: readonly Effect[]): DimyCbfAck => replyOf(effects, dimyCbfAckCodec);
export const codesAckOf = (effects: readonly Effect[]): DimyCodesAck => replyOf(effects, dimyCodesAckCodec);
export const timerEffects = (effects: readonly Effect[]): Effect[] => effects.filter((e) => e.type === 'timer.set' || e.type === 'timer.cancel');
