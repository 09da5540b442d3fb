/**
 * A key-client machine driven directly against a key-server machine driven
 * the same way (key-server-fixtures.ts): the server's announcements go to the
 * client as `msg.keys.index`, the client's `keys.file.get` requests are
 * answered from the files the server's ledger holds.
 */
import { expect } from 'vitest';
import { createActor, type Actor } from 'xstate';
import type { BusSendEffect, Effect } from '../../actors/effects.ts';
import { createKeyClientMachine, heldRecordIds, type KeyClientContext, type KeyClientEvent, type KeyClientInput } from '../../actors/key-client/key-client.ts';
import { distributionIndexCodec, type DistributionIndex } from '../../protocol/keyserver/distribution-index.ts';
import type { AdminResult, FileReply, TrackingRef } from '../../protocol/keyserver/messages.ts';
import type { WireValue } from '../../protocol/wire/msgpack.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { freshCode, KeyServerDriver, KS_PUBLIC_KEYS, MINUTE, registerBody, replyBody, T0, tekAt, testDeps, uploadBody } from './key-server-fixtures.ts';

export const PERIOD = 15 * MINUTE;
export const TIMEOUT = 30_000;

export class KeyClientDriver {
  readonly actor: Actor<ReturnType<typeof createKeyClientMachine>>;
  readonly effects: Effect[] = [];

  constructor(input: Partial<KeyClientInput> = {}, at = T0) {
    this.actor = createActor(createKeyClientMachine({ crypto: nodeSuite, publicKeys: KS_PUBLIC_KEYS }), { input: { serverId: 'ks1', clientId: 'p1', ...input } });
    this.actor.on('*', (effect: Effect) => this.effects.push(effect));
    this.actor.start();
    this.send({ type: 'host.start', at });
  }

  get context(): KeyClientContext {
    return this.actor.getSnapshot().context;
  }

  send(event: KeyClientEvent): Effect[] {
    const before = this.effects.length;
    this.actor.send(event);
    return this.effects.slice(before);
  }

  index(body: DistributionIndex, at: number): Effect[] {
    const envelope = { v: 1 as const, type: 'keys.index', id: `ks1.${at}.0`, from: 'key-server/ks1', at, body: {} as WireValue };
    return this.send({ type: 'msg.keys.index', at, envelope, body });
  }

  /** A `keys.file` reply; corr is the request envelope's id, which the client never saw. */
  file(body: FileReply, at: number): Effect[] {
    const envelope = { v: 1 as const, type: 'keys.file', id: `ks1.files.${at}`, from: 'key-server/ks1', at, corr: `p1.${at}.7`, body: {} as WireValue };
    return this.send({ type: 'msg.keys.file', at, envelope, body });
  }

  fire(at: number): Effect[] {
    return this.send({ type: 'timer.fetch', at });
  }

  ids(): string[] {
    return heldRecordIds(this.context);
  }
}

export const liveIds = (ks: KeyServerDriver): string[] => [...ks.context.ledger.records.keys()].sort();

/** The index a tick announced (undefined when nothing was published). */
export function announced(effects: readonly Effect[]): DistributionIndex | undefined {
  const publish = effects.find((e) => e.type === 'blob.publish');
  if (publish?.type !== 'blob.publish') return undefined;
  const index = distributionIndexCodec.decode(publish.announce.body);
  if (!index.ok) throw new Error(index.detail);
  return index.value;
}

export function mustAnnounce(effects: readonly Effect[]): DistributionIndex {
  const index = announced(effects);
  if (index === undefined) throw new Error('the tick published nothing');
  return index;
}

export const requests = (effects: readonly Effect[]): BusSendEffect[] => effects.filter((e): e is BusSendEffect => e.type === 'bus.send' && e.msgType === 'keys.file.get');
export const requestedNames = (effects: readonly Effect[]): string[] => requests(effects).map((r) => (r.body as { name: string }).name);

/** What the server's file responder answers: the bytes its ledger holds under `name`. */
export function serve(ks: KeyServerDriver, name: string): FileReply {
  const bytes = ks.context.ledger.files.get(name);
  return bytes === undefined ? { name, found: false, bytes: new Uint8Array(0) } : { name, found: true, bytes };
}

export interface PumpOptions {
  /** Lose this request (or its reply). */
  readonly lose?: (name: string) => boolean;
  /** Fire timer.fetch whenever a request is outstanding and unanswered. */
  readonly fireTimers?: boolean;
}

/** Answer the client's requests until it asks for nothing more; returns the client's clock. */
export function pump(client: KeyClientDriver, ks: KeyServerDriver, effects: readonly Effect[], at: number, options: PumpOptions = {}): number {
  const queue = requestedNames(effects);
  let now = at;
  for (let guard = 0; guard < 10_000; guard++) {
    const name = queue.shift();
    if (name === undefined) {
      const pending = client.context.pending;
      if (pending === null || options.fireTimers !== true) return now;
      now = Math.max(now, pending.deadline);
      queue.push(...requestedNames(client.fire(now)));
      continue;
    }
    now += 10;
    if (options.lose?.(name) === true) continue;
    const sent = client.file(serve(ks, name), now);
    expect(requests(sent).length).toBeLessThanOrEqual(1); // one request in flight
    queue.push(...requestedNames(sent));
  }
  throw new Error('pump did not settle');
}

export function withProvider(ks: KeyServerDriver, providerId: string, at = T0): void {
  expect(replyBody<AdminResult>(ks.msg('keys.provider.add', { providerId }, at, 'operator/op'), 'keys.admin.result').ok).toBe(true);
}

export function upload(ks: KeyServerDriver, providerId: string, first: number, at: number, count = 3): string {
  const code = freshCode(providerId, at);
  const registered = replyBody<AdminResult>(ks.msg('keys.codes.register', registerBody(code), at, 'operator/op'), 'keys.admin.result');
  expect(registered.ok).toBe(true);
  const records = Array.from({ length: count }, (_, i) => tekAt(first + i, at, 1 + (i % 13)));
  return replyBody<TrackingRef>(ks.msg('keys.upload', uploadBody(code.text, records), at, 'phone/up'), 'keys.upload.ack').trackingId;
}

export function server(config: { fullEveryMs?: number } = {}): KeyServerDriver {
  const ks = new KeyServerDriver(testDeps(), config);
  ks.start();
  withProvider(ks, 'clinic-a');
  withProvider(ks, 'clinic-b');
  return ks;
}

