/**
 * The Bus contract (actors/ports.ts) every adapter passes: call
 * `busContract(name, setup)` from a test file. `setup` starts a "broker" once
 * for the suite; `connect(clientId)` opens one more client on it.
 *
 * Cross-client checks never sleep: they publish a sentinel after the messages
 * under test and wait for it (one publisher → one subscriber is ordered), so
 * anything that should have arrived has arrived by then.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Bus, BusHandler } from '../../actors/ports.ts';
import { MisuseError } from '../../protocol/errors.ts';
import { decodeEnvelope, type Envelope } from '../../protocol/wire/envelope.ts';
import { RpcTimeoutError, createRpc, replyTo } from '../../services/bus/rpc.ts';
import { seededRng } from '../support/test-rng.ts';

export interface BusFixture {
  connect(clientId: string): Promise<Bus>;
  teardown(): Promise<void>;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const b = (s: string): Uint8Array => enc.encode(s);
const s = (u: Uint8Array): string => dec.decode(u);

/** Resolves when `cond()` holds; fails after `ms`. */
export async function waitFor(cond: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** A handler recording `payload` strings (or `topic=payload` with `withTopic`). */
function recorder(withTopic = false): { log: string[]; handler: BusHandler } {
  const log: string[] = [];
  return { log, handler: (topic, payload) => log.push(withTopic ? `${topic}=${s(payload)}` : s(payload)) };
}

export function busContract(name: string, setup: () => Promise<BusFixture>): void {
  describe(`Bus contract: ${name}`, () => {
    let fx: BusFixture;
    let opened: Bus[] = [];
    let seq = 0;
    /** A fresh topic prefix per test: retained state lives as long as the broker. */
    let P = '';
    const client = async (): Promise<Bus> => {
      const bus = await fx.connect(`c${++seq}-${process.pid}`);
      opened.push(bus);
      return bus;
    };

    beforeAll(async () => {
      fx = await setup();
    });
    afterAll(async () => {
      await fx.teardown();
    });
    afterEach(async () => {
      await Promise.all(opened.map((bus) => bus.close()));
      opened = [];
      P = '';
    });
    const topicPrefix = (): string => (P = P === '' ? `tc/test/${++seq}` : P);

    it('delivers an exact topic to another client, and nothing else', async () => {
      const [pub, sub] = [await client(), await client()];
      const t = topicPrefix();
      const r = recorder(true);
      await sub.subscribe(`${t}/a`, r.handler);
      await pub.publish(`${t}/b`, b('no'));
      await pub.publish(`${t}/a/x`, b('no'));
      await pub.publish(`${t}/a`, b('yes'));
      await waitFor(() => r.log.length > 0);
      expect(r.log).toEqual([`${t}/a=yes`]);
    });

    it('matches + (one level) and # (the rest, including the parent level)', async () => {
      const [pub, sub] = [await client(), await client()];
      const t = topicPrefix();
      const plus = recorder(true);
      const hash = recorder(true);
      await sub.subscribe(`${t}/+/x`, plus.handler);
      await sub.subscribe(`${t}/h/#`, hash.handler);
      for (const topic of [`${t}/1/x`, `${t}/1/y`, `${t}/1/x/z`, `${t}/h`, `${t}/h/a`, `${t}/h/a/b`, `${t}/2/x`]) {
        await pub.publish(topic, b('m'));
      }
      await waitFor(() => plus.log.length === 2 && hash.log.length === 3);
      expect(plus.log).toEqual([`${t}/1/x=m`, `${t}/2/x=m`]);
      expect(hash.log).toEqual([`${t}/h=m`, `${t}/h/a=m`, `${t}/h/a/b=m`]);
    });

    it('keeps the order of one publisher (QoS 0 and QoS 1)', async () => {
      const [pub, sub] = [await client(), await client()];
      const t = topicPrefix();
      const r0 = recorder();
      const r1 = recorder();
      await sub.subscribe(`${t}/q0`, r0.handler);
      await sub.subscribe(`${t}/q1`, r1.handler, { qos: 1 });
      const sends: Promise<void>[] = [];
      for (let i = 0; i < 300; i++) {
        sends.push(pub.publish(`${t}/q0`, b(String(i))), pub.publish(`${t}/q1`, b(String(i)), { qos: 1 }));
      }
      await Promise.all(sends);
      await waitFor(() => r0.log.length >= 300 && r1.log.length >= 300, 10_000, '300 + 300 messages');
      const expected = Array.from({ length: 300 }, (_, i) => String(i));
      expect(r0.log).toEqual(expected);
      expect(r1.log).toEqual(expected);
    });

    it('delivers to several clients', async () => {
      const pub = await client();
      const subs = [await client(), await client(), await client()];
      const t = topicPrefix();
      const logs = await Promise.all(subs.map(async (bus) => {
        const r = recorder();
        await bus.subscribe(`${t}/all`, r.handler);
        return r.log;
      }));
      await pub.publish(`${t}/all`, b('hello'), { qos: 1 });
      await waitFor(() => logs.every((log) => log.length > 0));
      for (const log of logs) expect(log).toEqual(['hello']);
    });

    it('gives each of several overlapping handlers on one client each message exactly once', async () => {
      const [pub, sub] = [await client(), await client()];
      const t = topicPrefix();
      const filters = [`${t}/#`, `${t}/+/c`, `${t}/b/c`, `${t}/b/c`, `${t}/b/+`];
      const rs = filters.map(() => recorder());
      for (const [i, filter] of filters.entries()) await sub.subscribe(filter, rs[i]!.handler, { qos: i % 2 === 0 ? 0 : 1 });
      for (let i = 0; i < 5; i++) await pub.publish(`${t}/b/c`, b(`m${i}`), { qos: i % 2 === 0 ? 0 : 1 });
      await pub.publish(`${t}/b/c`, b('same'));
      await pub.publish(`${t}/b/c`, b('same'));
      await pub.publish(`${t}/b/c`, b('end'));
      await waitFor(() => rs.every((r) => r.log.includes('end')));
      for (const r of rs) expect(r.log).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'same', 'same', 'end']);
      // and from the subscriber itself, settled by idle()
      await sub.publish(`${t}/b/c`, b('own'));
      await sub.idle();
      for (const r of rs) expect(r.log.filter((m) => m === 'own')).toEqual(['own']);
    });

    it('stops delivery on unsubscribe (idempotent), per handler then per filter', async () => {
      const [pub, sub] = [await client(), await client()];
      const t = topicPrefix();
      const [h1, h2, all] = [recorder(), recorder(), recorder()];
      const s1 = await sub.subscribe(`${t}/u`, h1.handler);
      const s2 = await sub.subscribe(`${t}/u`, h2.handler);
      await sub.subscribe(`${t}/#`, all.handler);
      await s1.unsubscribe();
      await s1.unsubscribe();
      await pub.publish(`${t}/u`, b('one'));
      await waitFor(() => all.log.length === 1);
      await s2.unsubscribe();
      await pub.publish(`${t}/u`, b('two'));
      await waitFor(() => all.log.length === 2);
      expect([h1.log, h2.log, all.log]).toEqual([[], ['one'], ['one', 'two']]);
    });

    it('delivers retained messages to late subscribers, once per handler, and clears them with an empty retained publish', async () => {
      const [pub, sub, late] = [await client(), await client(), await client()];
      const t = topicPrefix();
      await pub.publish(`${t}/r`, b('v1'), { qos: 1, retain: true });
      const [h1, h2, h3] = [recorder(), recorder(), recorder()];
      await sub.subscribe(`${t}/r`, h1.handler);
      await waitFor(() => h1.log.length === 1);
      await sub.subscribe(`${t}/r`, h2.handler); // same filter: gets the retained value too
      await sub.subscribe(`${t}/+`, h3.handler); // overlapping filter
      await waitFor(() => h2.log.length === 1 && h3.log.length === 1);
      await pub.publish(`${t}/r`, new Uint8Array(0), { qos: 1, retain: true }); // clear: still delivered
      await waitFor(() => h3.log.length === 2);
      expect([h1.log, h2.log, h3.log]).toEqual([['v1', ''], ['v1', ''], ['v1', '']]);
      const h4 = recorder();
      await late.subscribe(`${t}/r`, h4.handler);
      await pub.publish(`${t}/r`, b('live'));
      await waitFor(() => h4.log.length > 0);
      expect(h4.log).toEqual(['live']);
    });

    it('resolves a QoS 1 publish and delivers it', async () => {
      const [pub, sub] = [await client(), await client()];
      const t = topicPrefix();
      const r = recorder();
      await sub.subscribe(`${t}/q`, r.handler, { qos: 1 });
      await expect(pub.publish(`${t}/q`, b('acked'), { qos: 1 })).resolves.toBeUndefined();
      await waitFor(() => r.log.length === 1);
      expect(r.log).toEqual(['acked']);
    });

    it('carries binary payloads byte for byte (0 B … 64 KiB)', async () => {
      const [pub, sub] = [await client(), await client()];
      const t = topicPrefix();
      const rng = seededRng(7);
      const sizes = [0, 1, 2, 3, 127, 128, 255, 256, 1000, 4096, 65_535, 65_536];
      const sent = sizes.map((n) => rng.bytes(n));
      const got: Uint8Array[] = [];
      await sub.subscribe(`${t}/bin`, (_topic, payload) => got.push(payload instanceof Uint8Array ? Uint8Array.from(payload) : new Uint8Array(1)), { qos: 1 });
      for (const payload of sent) await pub.publish(`${t}/bin`, payload, { qos: 1 });
      await waitFor(() => got.length === sent.length);
      // Buffer.compare, not toEqual: a deep diff of 64 KiB arrays is slow
      expect(got.map((g, i) => `${g.length}:${Buffer.compare(g, sent[i]!)}`)).toEqual(sizes.map((n) => `${n}:0`));
    });

    it('idle(): after publish + idle the local handlers have run, also for idle() called from a handler', async () => {
      const bus = await client();
      const t = topicPrefix();
      await bus.idle(); // nothing pending
      const [exact, wild] = [recorder(), recorder()];
      let idleFromHandler = false;
      await bus.subscribe(`${t}/i`, exact.handler);
      await bus.subscribe(`${t}/#`, (topic, payload) => {
        wild.handler(topic, payload);
        if (s(payload) === '0') void bus.idle().then(() => (idleFromHandler = true));
      });
      for (let i = 0; i < 50; i++) void bus.publish(`${t}/i`, b(String(i)), { qos: (i % 2) as 0 | 1 });
      await bus.idle();
      expect(exact.log).toHaveLength(50);
      expect(wild.log).toHaveLength(50);
      await bus.idle();
      expect(idleFromHandler).toBe(true);
    });

    it('reports a throwing handler and keeps delivering to it and to the others', async () => {
      const [pub, sub] = [await client(), await client()];
      const t = topicPrefix();
      let calls = 0;
      const other = recorder();
      await sub.subscribe(`${t}/x`, () => {
        calls++;
        throw new Error('handler bug (expected in this test)');
      });
      await sub.subscribe(`${t}/x`, other.handler);
      for (const m of ['a', 'b', 'c']) await pub.publish(`${t}/x`, b(m));
      await waitFor(() => other.log.length === 3);
      expect(calls).toBe(3);
      expect(other.log).toEqual(['a', 'b', 'c']);
    });

    it('request/reply through rpc.ts: replies, concurrency, timeout, malformed and late replies', async () => {
      const [requester, responder, stranger] = [await client(), await client(), await client()];
      const t = topicPrefix();
      let delayMs = 0;
      await responder.subscribe(`${t}/svc`, (_topic, payload) => {
        const request = decodeEnvelope(payload);
        if (!request.ok) return;
        const answer = (): Promise<boolean> => replyTo(responder, request.value, { type: 'test.pong', id: `r-${request.value.id}`, from: 'host/svc', at: 1, body: request.value.body });
        setTimeout(() => void answer(), delayMs);
      }, { qos: 1 });
      const inbox = `${t}/inbox`;
      let n = 0;
      const rpc = await createRpc(requester, { address: 'host/req', inbox, timeoutMs: 2000, idFactory: () => 'fixed' });
      const ping = (body: string, timeoutMs?: number): Promise<Envelope> =>
        rpc.request(`${t}/svc`, { type: 'test.ping', id: `q${++n}`, at: 1, body }, timeoutMs === undefined ? {} : { timeoutMs });

      const reply = await ping('hello');
      expect(reply).toMatchObject({ type: 'test.pong', body: 'hello', corr: 'fixed.1', from: 'host/svc' });
      const bodies = Array.from({ length: 20 }, (_, i) => `p${i}`);
      expect((await Promise.all(bodies.map((body) => ping(body)))).map((r) => r.body)).toEqual(bodies);

      await expect(rpc.request(`${t}/nobody`, { type: 'test.ping', id: 'lost', at: 1, body: null }, { timeoutMs: 150 })).rejects.toBeInstanceOf(RpcTimeoutError);
      await stranger.publish(inbox, b('not msgpack \u0000\u00ff'));
      await waitFor(() => rpc.stats.malformed === 1, 5000, 'malformed reply counted');
      delayMs = 300;
      await expect(ping('slow', 100)).rejects.toBeInstanceOf(RpcTimeoutError);
      await waitFor(() => rpc.stats.unmatched === 1, 5000, 'late reply counted');
      delayMs = 0;
      expect((await ping('still works')).body).toBe('still works');
      await rpc.close();
      await rpc.close();
    });

    it('close() is idempotent; a closed client gets nothing and refuses publish/subscribe', async () => {
      const [pub, gone, stays] = [await client(), await client(), await client()];
      const t = topicPrefix();
      const [g, k] = [recorder(), recorder()];
      await gone.subscribe(`${t}/c`, g.handler);
      await stays.subscribe(`${t}/c`, k.handler);
      await pub.publish(`${t}/c`, b('before'));
      await waitFor(() => g.log.length === 1 && k.log.length === 1);
      await gone.close();
      await gone.close();
      await pub.publish(`${t}/c`, b('after'));
      await waitFor(() => k.log.length === 2);
      expect(g.log).toEqual(['before']);
      await expect(gone.publish(`${t}/c`, b('x'))).rejects.toBeInstanceOf(MisuseError);
      await expect(gone.subscribe(`${t}/c`, g.handler)).rejects.toBeInstanceOf(MisuseError);
      await gone.idle();
    });

    it('rejects invalid topics and filters with MisuseError', async () => {
      const bus = await client();
      await expect(bus.publish('a/+/b', b('x'))).rejects.toBeInstanceOf(MisuseError);
      await expect(bus.publish('', b('x'))).rejects.toBeInstanceOf(MisuseError);
      await expect(bus.subscribe('a/#/b', () => undefined)).rejects.toBeInstanceOf(MisuseError);
      await expect(bus.subscribe('a/b+', () => undefined)).rejects.toBeInstanceOf(MisuseError);
    });
  });
}
