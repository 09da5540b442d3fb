import { connect as rawConnect } from 'node:net';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../services/broker/aedes.ts';
import { connectMqttBus, type MqttBus } from '../../services/bus/mqtt.ts';
import { createRpc } from '../../services/bus/rpc.ts';
import { busContract, waitFor } from '../contract/bus.contract.ts';

busContract('MqttBus on embedded aedes', async () => {
  const broker = await startEmbeddedBroker();
  return {
    connect: (clientId) => connectMqttBus({ url: broker.url, clientId, onError: () => undefined }),
    teardown: () => broker.close(),
  };
});

const b = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('MqttBus + aedes specifics', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });
  const broker = async (port = 0): Promise<EmbeddedBroker> => {
    const started = await startEmbeddedBroker({ port });
    cleanup.push(() => started.close());
    return started;
  };
  const bus = async (url: string, clientId: string, extra: { reconnectPeriodMs?: number } = {}): Promise<MqttBus> => {
    const opened = await connectMqttBus({ url, clientId, onError: () => undefined, ...extra });
    cleanup.push(() => opened.close());
    return opened;
  };

  it('aedes sends one copy for overlapping subscriptions: the probe says "single"', async () => {
    const { url } = await broker();
    expect((await bus(url, 'probe')).overlapMode).toBe('single');
  });

  it('closes the embedded broker idempotently and refuses a port in use', async () => {
    const first = await broker();
    await expect(startEmbeddedBroker({ port: first.port })).rejects.toThrow(/EADDRINUSE/);
    await first.close();
    await first.close();
  });

  it('keeps subscriptions across a broker restart on the same port', async () => {
    const first = await startEmbeddedBroker();
    const sub = await bus(first.url, 'survivor', { reconnectPeriodMs: 50 });
    const exact: string[] = [];
    const wild: string[] = [];
    await sub.subscribe('t/restart/x', (_t, p) => exact.push(new TextDecoder().decode(p)), { qos: 1 });
    await sub.subscribe('t/restart/#', (_t, p) => wild.push(new TextDecoder().decode(p)));
    await first.close();
    const second = await broker(first.port);
    const pub = await bus(second.url, 'publisher');
    // until the survivor has re-subscribed, messages go nowhere: keep publishing until one arrives
    for (let i = 0; exact.length === 0 && i < 200; i++) {
      await pub.publish('t/restart/x', b(`probe${i}`), { qos: 1 });
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(exact.length).toBeGreaterThan(0);
    await pub.publish('t/restart/x', b('after'), { qos: 1 });
    await waitFor(() => exact.includes('after') && wild.includes('after'));
    await sub.publish('t/restart/x', b('own'));
    await sub.idle();
    expect(exact.at(-1)).toBe('own');
    expect(wild.at(-1)).toBe('own');
  });

  it('survives garbage on the wire and oversized or malformed payloads', async () => {
    const { url, port } = await broker();
    const victim = await bus(url, 'victim');
    const rpc = await createRpc(victim, { address: 'host/victim', inbox: 't/victim/inbox' });
    const seen: number[] = [];
    await victim.subscribe('t/victim/#', (_t, p) => seen.push(p.length));
    // not MQTT at all: aedes drops the connection, nobody crashes
    await new Promise<void>((resolve) => {
      const socket = rawConnect(port, '127.0.0.1', () => socket.end(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3])));
      socket.on('error', () => resolve());
      socket.on('close', () => resolve());
    });
    const raw = await mqtt.connectAsync(url, { protocolVersion: 4, clientId: 'raw' });
    cleanup.push(() => raw.endAsync());
    await raw.publishAsync('t/victim/inbox', Buffer.alloc(2 * 1024 * 1024, 0xc1), { qos: 1 }); // 2 MiB, not msgpack
    await raw.publishAsync('t/victim/inbox', Buffer.from([0x85, 0xa1]), { qos: 1 }); // truncated map
    await raw.publishAsync('t/victim/inbox', Buffer.alloc(0), { qos: 1 });
    await waitFor(() => seen.length === 3);
    expect(seen).toEqual([2 * 1024 * 1024, 2, 0]);
    expect(rpc.stats.malformed).toBe(3);
    await victim.publish('t/victim/ok', b('still alive'));
    await victim.idle();
    expect(seen.at(-1)).toBe(11);
  });

  it('delivers hundreds of retained messages to a late subscriber exactly once', async () => {
    const { url } = await broker();
    const pub = await bus(url, 'retainer');
    for (let i = 0; i < 500; i++) await pub.publish(`t/many/${i}`, b(String(i)), { retain: true, qos: 1 });
    const sub = await bus(url, 'late');
    const first = new Map<string, number>();
    const second = new Map<string, number>();
    const count = (m: Map<string, number>) => (t: string): void => void m.set(t, (m.get(t) ?? 0) + 1);
    await sub.subscribe('t/many/#', count(first));
    await sub.subscribe('t/many/+', count(second));
    await waitFor(() => first.size === 500 && second.size === 500);
    await pub.publish('t/many/0', b('live'));
    await waitFor(() => first.get('t/many/0') === 2);
    expect([...first.values(), ...second.values()].filter((n) => n !== 1)).toEqual([2, 2]);
    expect(sub.stats.duplicatesDropped).toBe(0);
  });
});
