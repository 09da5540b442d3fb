/**
 * Bus bench: the MqttBus adapter against raw mqtt.js doing the same thing
 * with the same bytes, on the embedded aedes broker and on a spawned mosquitto
 * (omitted, with a note on stderr, when mosquitto is not installed).
 *
 * 1. Round trip, QoS 1, N sequential request/reply ping-pongs between two
 *    clients, p50/p99 in ms. "adapter" = MqttBus + rpc.ts + envelope codec
 *    (encode/decode at both ends); "raw" = two mqtt.js clients sending the very
 *    bytes the adapter sends (one encoded request envelope, one encoded reply),
 *    decoding nothing. A third row, "MqttBus alone", ping-pongs those same
 *    bytes through MqttBus without rpc/codec: the adapter's own overhead.
 *    The pingers alternate ping by ping, so machine noise hits both alike.
 * 2. Throughput: one client publishes N 100-byte messages to a subscriber
 *    (QoS 0, then QoS 1), at most WINDOW unsettled; msgs/s from the first
 *    publish to the last receipt; best of two runs each.
 *
 * Raw clients get TCP_NODELAY like MqttBus does (without it, Nagle + delayed
 * ACK add ~40 ms per round trip), so the comparison is about code, not sockets.
 */
import type { Socket } from 'node:net';
import mqtt from 'mqtt';
import type { MqttClient } from 'mqtt';
import { ENVELOPE_VERSION, decodeEnvelope, encodeEnvelope, type Envelope } from '../protocol/wire/envelope.ts';
import { startEmbeddedBroker } from '../services/broker/aedes.ts';
import { connectMqttBus } from '../services/bus/mqtt.ts';
import { createRpc, replyTo } from '../services/bus/rpc.ts';
import { mosquittoSkipReason, startMosquitto } from '../test/support/mosquitto.ts';
import { percentile, type BenchModule, type BenchRow } from './report.ts';

const ROUND_TRIPS = 2000;
const WARMUP = 300;
const THROUGHPUT_MESSAGES = 20_000;
const MESSAGE_BYTES = 100;
const WINDOW = 500;
const AIR = 'tc/v1/sim/air/bench';

interface Pinger {
  ping(i: number): Promise<void>;
  close(): Promise<void>;
}

const body = { n: 1, pad: new Uint8Array(32).fill(7) };
const template: Envelope = { v: ENVELOPE_VERSION, type: 'bench.ping', id: 'p1', from: 'host/bench', at: 0, replyTo: '', corr: '0123456789ab.1', body };
const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;
let pairs = 0;

/** MqttBus + rpc.ts + envelopes. */
async function adapterPinger(url: string): Promise<Pinger> {
  const id = ++pairs;
  const [req, res] = await Promise.all([connectMqttBus({ url, clientId: `b${id}-req` }), connectMqttBus({ url, clientId: `b${id}-res` })]);
  const service = `tc/v1/app-backend/b${id}/inbox`;
  await res.subscribe(service, (_t, payload) => {
    const request = decodeEnvelope(payload);
    if (request.ok) void replyTo(res, request.value, { type: 'bench.pong', id: request.value.id, from: 'app-backend/bench', at: 0, body });
  }, { qos: 1 });
  const rpc = await createRpc(req, { address: 'host/bench', inbox: `tc/v1/host/b${id}/inbox` });
  return {
    ping: async (i) => void (await rpc.request(service, { type: 'bench.ping', id: `p${i}`, at: 0, body })),
    close: async () => {
      await rpc.close();
      await Promise.all([req.close(), res.close()]);
    },
  };
}

/** Connections for raw and bus-only pingers: the same bytes, no codec. */
function fixedBytes(id: number): { service: string; inbox: string; request: Buffer; reply: Buffer } {
  const inbox = `tc/v1/host/r${id}/inbox`;
  const request = Buffer.from(encodeEnvelope({ ...template, replyTo: inbox }));
  const { replyTo: _unused, ...noReplyTo } = template;
  return { service: `tc/v1/app-backend/r${id}/inbox`, inbox, request, reply: Buffer.from(encodeEnvelope({ ...noReplyTo, type: 'bench.pong' })) };
}

/** MqttBus alone, forwarding fixed bytes. */
async function busOnlyPinger(url: string): Promise<Pinger> {
  const id = ++pairs;
  const { service, inbox, request, reply } = fixedBytes(id);
  const [req, res] = await Promise.all([connectMqttBus({ url, clientId: `o${id}-req` }), connectMqttBus({ url, clientId: `o${id}-res` })]);
  await res.subscribe(service, () => void res.publish(inbox, reply, { qos: 1 }), { qos: 1 });
  let arrived: (() => void) | undefined;
  await req.subscribe(inbox, () => arrived?.(), { qos: 1 });
  return {
    ping: () => {
      const answered = new Promise<void>((resolve) => (arrived = resolve));
      void req.publish(service, request, { qos: 1 });
      return answered;
    },
    close: () => Promise.all([req.close(), res.close()]).then(() => undefined),
  };
}

/** A raw mqtt.js client with TCP_NODELAY, like MqttBus. */
async function rawClient(url: string, clientId: string): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, { protocolVersion: 4, clientId, reconnectPeriod: 0 });
  (client.stream as Partial<Socket>).setNoDelay?.(true);
  return client;
}

async function rawPinger(url: string): Promise<Pinger> {
  const id = ++pairs;
  const { service, inbox, request, reply } = fixedBytes(id);
  const [req, res] = await Promise.all([rawClient(url, `r${id}-req`), rawClient(url, `r${id}-res`)]);
  res.on('message', () => void res.publish(inbox, reply, { qos: 1 }));
  await res.subscribeAsync(service, { qos: 1 });
  let arrived: (() => void) | undefined;
  req.on('message', () => arrived?.());
  await req.subscribeAsync(inbox, { qos: 1 });
  return {
    ping: () => {
      const answered = new Promise<void>((resolve) => (arrived = resolve));
      req.publish(service, request, { qos: 1 });
      return answered;
    },
    close: () => Promise.all([req.endAsync(), res.endAsync()]).then(() => undefined),
  };
}

/** Round-trip times (ms, sorted) per pinger, pinging them in turn. */
async function roundTrips(pingers: readonly Pinger[], n: number): Promise<number[][]> {
  const times = pingers.map(() => [] as number[]);
  for (let i = 0; i < n; i++) {
    for (const [k, pinger] of pingers.entries()) {
      const start = nowMs();
      await pinger.ping(i);
      times[k]!.push(nowMs() - start);
    }
  }
  return times.map((t) => t.sort((x, y) => x - y));
}

type Publisher = { publish(payload: Buffer): Promise<void>; close(): Promise<void> };

async function throughput(url: string, qos: 0 | 1, adapter: boolean): Promise<number> {
  const id = ++pairs;
  let count = 0;
  let done: (() => void) | undefined;
  const all = new Promise<void>((resolve) => (done = resolve));
  const onMessage = (): void => void (++count === THROUGHPUT_MESSAGES && done?.());
  let pub: Publisher;
  let closeSub: () => Promise<void>;
  if (adapter) {
    const [p, s] = await Promise.all([connectMqttBus({ url, clientId: `t${id}-pub` }), connectMqttBus({ url, clientId: `t${id}-sub` })]);
    await s.subscribe(AIR, onMessage, { qos });
    pub = { publish: (payload) => p.publish(AIR, payload, { qos }), close: () => p.close() };
    closeSub = () => s.close();
  } else {
    const [p, s] = await Promise.all([rawClient(url, `t${id}-pub`), rawClient(url, `t${id}-sub`)]);
    s.on('message', onMessage);
    await s.subscribeAsync(AIR, { qos });
    pub = {
      publish: (payload) => new Promise((resolve, reject) => p.publish(AIR, payload, { qos }, (err) => (err ? reject(err) : resolve()))),
      close: () => p.endAsync(),
    };
    closeSub = () => s.endAsync();
  }
  try {
    const payload = Buffer.alloc(MESSAGE_BYTES, 1);
    const start = nowMs();
    const sends: Promise<void>[] = [];
    for (let i = 0; i < THROUGHPUT_MESSAGES; i++) {
      if (i >= WINDOW) await sends[i - WINDOW];
      sends.push(pub.publish(payload));
    }
    await Promise.all(sends);
    await withTimeout(all, () => count);
    return THROUGHPUT_MESSAGES / ((nowMs() - start) / 1000);
  } finally {
    await Promise.all([pub.close(), closeSub()]);
  }
}

async function withTimeout(promise: Promise<void>, progress: () => number, timeoutMs = 20_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`only ${progress()}/${THROUGHPUT_MESSAGES} messages arrived in ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const r3 = (x: number): number => Math.round(x * 1000) / 1000;

async function benchBroker(group: string, url: string): Promise<BenchRow[]> {
  const pingers = [await adapterPinger(url), await busOnlyPinger(url), await rawPinger(url)];
  const rows: BenchRow[] = [];
  try {
    await roundTrips(pingers, WARMUP);
    const [adapter, busOnly, raw] = (await roundTrips(pingers, ROUND_TRIPS)) as [number[], number[], number[]];
    for (const p of [50, 99]) {
      const [a, o, r] = [percentile(adapter, p), percentile(busOnly, p), percentile(raw, p)];
      const name = `round trip p${p} (QoS 1, N=${ROUND_TRIPS})`;
      // The target compares the Bus adapter with raw mqtt.js moving the same bytes.
      rows.push({ group, name: `${name}, MqttBus`, values: { adapter: r3(o), raw: r3(r) }, unit: 'ms', ratio: { label: 'adapter/raw', value: r3(o / r), target: '≤ 1.2' } });
      // Informational: request/reply with the envelope codec at both ends (raw decodes nothing).
      rows.push({ group, name: `${name}, rpc + envelope codec`, values: { rpc: r3(a), raw: r3(r) }, unit: 'ms', ratio: { label: 'rpc/raw', value: r3(a / r) } });
    }
  } finally {
    for (const pinger of pingers) await pinger.close();
  }
  for (const qos of [0, 1] as const) {
    let [a, r] = [0, 0];
    for (let run = 0; run < 2; run++) {
      r = Math.max(r, await throughput(url, qos, false));
      a = Math.max(a, await throughput(url, qos, true));
    }
    rows.push({
      group,
      name: `throughput QoS ${qos} (${THROUGHPUT_MESSAGES} × ${MESSAGE_BYTES} B)`,
      values: { adapter: Math.round(a), raw: Math.round(r) },
      unit: 'msgs/s',
      ratio: { label: 'adapter/raw', value: r3(a / r), target: '≥ 0.83' },
    });
  }
  return rows;
}

export const busBench: BenchModule = async () => {
  const rows: BenchRow[] = [];
  const aedes = await startEmbeddedBroker();
  try {
    rows.push(...(await benchBroker('bus/aedes', aedes.url)));
  } finally {
    await aedes.close();
  }
  if (mosquittoSkipReason !== undefined) {
    process.stderr.write(`bench/bus: mosquitto rows omitted: ${mosquittoSkipReason}\n`);
    return rows;
  }
  const mosquitto = await startMosquitto();
  try {
    rows.push(...(await benchBroker('bus/mosquitto', mosquitto.url)));
  } finally {
    await mosquitto.stop();
  }
  return rows;
};
