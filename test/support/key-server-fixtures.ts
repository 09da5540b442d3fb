/**
 * A key-server machine driven directly (no host): events in, effects out.
 * Shared by the key-server unit, model and fuzz tests.
 */
import { createActor, type Actor } from 'xstate';
import type { Effect } from '../../actors/effects.ts';
import { createKeyServerMachine, type KeyServerEvent } from '../../actors/key-server/key-server.ts';
import type { KeyServerConfig, KeyServerContext, KeyServerDeps } from '../../actors/key-server/key-server-state.ts';
import { nobleSuite } from '../../protocol/crypto/noble.ts';
import type { DiagnosisRecord, GaenTekRecord } from '../../protocol/keyserver/distribution-records.ts';
import { packRecords } from '../../services/keyserver/client.ts';

export { packRecords };
import type { KeysUpload } from '../../protocol/keyserver/messages.ts';
import { issueUploadCode, parseUploadCode, type IssuedUploadCode } from '../../protocol/keyserver/upload-code.ts';
import type { WireValue } from '../../protocol/wire/msgpack.ts';
import { nodeSuite } from '../../services/crypto/node.ts';

export const PEPPER = nodeSuite.sha256(new TextEncoder().encode('key-server test pepper'));
export const KS_SIGNING_KEY = nodeSuite.sha256(new TextEncoder().encode('key-server test signing key'));
export const KS_KEY_ID = 'ks-test';
export const KS_PUBLIC_KEYS: ReadonlyMap<string, Uint8Array> = new Map([[KS_KEY_ID, nodeSuite.p256PublicKey(KS_SIGNING_KEY)]]);
/** 2026-11-22T00:00:00Z, a period and day boundary. */
export const T0 = Date.UTC(2026, 10, 22);
export const MINUTE = 60_000;
export const DAY = 24 * 60 * MINUTE;
export const REPLY_TO = 'tc/v1/phone/p1/inbox';

export function testDeps(verifyTcnReport: (report: Uint8Array) => boolean = () => true): KeyServerDeps {
  return { crypto: nodeSuite, signer: { crypto: nobleSuite, signingKey: KS_SIGNING_KEY, keyId: KS_KEY_ID }, pepper: PEPPER, verifyTcnReport };
}

/** GAEN TEK number n whose interval starts `daysAgo` days before `at`. */
export function tekAt(n: number, at: number, daysAgo = 1): GaenTekRecord {
  const key = new Uint8Array(16).fill(0x5a);
  new DataView(key.buffer).setUint32(0, n);
  const day = Math.floor(at / DAY) - daysAgo;
  return { protocol: 'gaen-tek', key, rollingStartIntervalNumber: day * 144, rollingPeriod: 144, transmissionRisk: 3 };
}

let codeCounter = 0;
/** A fresh code for `providerId` (deterministic bytes). */
export function freshCode(providerId: string, issuedAt: number, lifetimeMs = DAY): IssuedUploadCode {
  const bytes = nodeSuite.sha256(new TextEncoder().encode(`code ${++codeCounter}`)).slice(0, 10);
  return issueUploadCode(nodeSuite, { providerId, randomBytes: bytes, pepper: PEPPER, issuedAt, lifetimeMs });
}

/** The body of keys.codes.register for one issued code (its lifetime as issued). */
export function registerBody(code: IssuedUploadCode): { providerId: string; digests: Uint8Array[]; lifetimeMs: number } {
  return { providerId: code.record.providerId, digests: [code.record.digest], lifetimeMs: code.record.expiresAt - code.record.issuedAt };
}

export function uploadBody(codeText: string, records: readonly DiagnosisRecord[], chaff = false): KeysUpload {
  const code = parseUploadCode(codeText);
  if (!code.ok) throw new Error(code.detail);
  return { code: code.value, records: packRecords(records), chaff, padding: new Uint8Array(0) };
}

export class KeyServerDriver {
  readonly actor: Actor<ReturnType<typeof createKeyServerMachine>>;
  readonly effects: Effect[] = [];
  private n = 0;

  constructor(deps: KeyServerDeps = testDeps(), config: Partial<KeyServerConfig> = {}, readonly serverId = 'ks1') {
    this.actor = createActor(createKeyServerMachine(deps), { input: { serverId, config } });
    this.actor.on('*', (effect: Effect) => this.effects.push(effect));
    this.actor.start();
  }

  get context(): KeyServerContext {
    return this.actor.getSnapshot().context;
  }

  send(event: KeyServerEvent): Effect[] {
    const before = this.effects.length;
    this.actor.send(event);
    return this.effects.slice(before);
  }

  start(at = T0): Effect[] {
    return this.send({ type: 'host.start', at });
  }

  /** A message event as the host would deliver it; returns the effects it caused. */
  msg(type: string, body: unknown, at: number, from = 'phone/p1'): Effect[] {
    const id = `${from}.${++this.n}`;
    const envelope = { v: 1 as const, type, id, from, at, replyTo: REPLY_TO, body: {} as WireValue };
    return this.send({ type: `msg.${type}`, at, envelope, body } as KeyServerEvent);
  }

  tick(at: number): Effect[] {
    return this.send({ type: 'timer.publish', at });
  }
}

/** The body of the only reply among `effects`. */
export function replyBody<T>(effects: readonly Effect[], msgType: string): T {
  const sends = effects.filter((e) => e.type === 'bus.send' && e.msgType === msgType);
  if (sends.length !== 1) throw new Error(`expected one ${msgType}, got ${sends.length} (${effects.map((e) => e.type).join(', ')})`);
  const send = sends[0];
  if (send?.type !== 'bus.send') throw new Error('unreachable');
  return send.body as T;
}
