/**
 * Bus bench: the MqttBus adapter (+ rpc.ts and envelopes for request/reply)
 * against raw mqtt.js doing the same thing with the same bytes, on the
 * embedded aedes broker and on a spawned mosquitto (omitted, with a note on
 * stderr, when mosquitto is not installed).
 *
 * 1. round trip: request/reply ping-pong between two clients, QoS 1,
 *    N sequential requests; p50/p99 in ms. The raw pair sends the very bytes
 *    the adapter sends (one encoded request envelope, one encoded reply).
 * 2. throughput: one client publishes N 100-byte messages to a subscriber
 *    (QoS 0, then QoS 1); msgs/s from the first publish to the last receipt.
 */
import mqtt from 'mqtt';
import type { MqttClient } from 'mqtt';
import { ENVELOPE_VERSION, decodeEnvelope, encodeEnvelope, type Envelope } from '../protocol/wire/envelope.ts';
import { startEmbeddedBroker } from '../services/broker/aedes.ts';
import { connectMqttBus, type MqttBus } from '../services/bus/mqtt.ts';
import { createRpc, replyTo } from '../services/bus/rpc.ts';
import { mosquittoSkipReason, startMosquitto } from '../test/support/mosquitto.ts';
import { percentile, type BenchModule, type BenchRow } from './report.ts';

const ROUND_TRIPS = 2000;
const WARMUP = 200;
const THROUGHPUT_MESSAGES = 20_000;
const MESSAGE_BYTES = 100;
const REQUEST_TOPIC = 'tc/v1/app-backend/bench/inbox';
const INBOX = 'tc/v1/host/bench-req/inbox';

const ms = (ns: bigint): number => Number(ns) / 1e6;
const body = { n: 1, pad: new Uint8Array(32).fill(7) };

async function adapterRoundTrips(url: string, n: number): Promise<number[]> {
  const [req, res] = await Promise.all([connectMqttBus({ url, clientId: 'bench-req' }), connectMqttBus({ url, clientId: 'bench-res' })]);
  try {
    await res.subscribe(REQUEST_TOPIC, (_t, payload) => {
      const request = decodeEnvelope(payload);
      if (request.ok) void replyTo(res, request.value, { type: 'bench.pong', id: request.value.id, from: 'app-backend/bench', at: 0, body });
    }, { qos: 1 });
    const rpc = await createRpc(req, { address: 'host/bench-req', inbox: INBOX, timeoutMs: 5000 });
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const start = process.hrtime.bigint();
      await rpc.request(REQUEST_TOPIC, { type: 'bench.ping', id: `p${i}`, at: 0, body });
      times.push(ms(process.hrtime.bigint() - start));
    }
    await rpc.close();
    return times;
  } finally {
    await Promise.all([req.close(), res.close()]);
  }
}

async function rawClient(url: string, clientId: string): Promise<MqttClient> {
  return mqtt.connectAsync(url, { protocolVersion: 4, clientId, reconnectPeriod: 0 });
}

async function rawRoundTrips(url: string, n: number): Promise<number[]> {
  const template: Envelope = { v: ENVELOPE_VERSION, type: 'bench.ping', id: 'p1', from: 'host/bench-req', at: 0, replyTo: INBOX, corr: '0123456789ab.1', body };
  const requestBytes = Buffer.from(encodeEnvelope(template));
  const replyBytes = Buffer.from(encodeEnvelope({ ...template, type: 'bench.pong', from: 'app-backend/bench', replyTo: undefined as never }));
  const [req, res] = await Promise.all([rawClient(url, 'raw-req'), rawClient(url, 'raw-res')]);
  try {
    res.on('message', () => void res.publish(INBOX, replyBytes, { qos: 1 }));
    await res.subscribeAsync(REQUEST_TOPIC, { qos: 1 });
    let arrived: (() => void) | undefined;
    req.on('message', () => arrived?.());
    await req.subscribeAsync(INBOX, { qos: 1 });
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const start = process.hrtime.bigint();
      const reply = new Promise<void>((resolve) => (arrived = resolve));
      req.publish(REQUEST_TOPIC, requestBytes, { qos: 1 });
      await reply;
      times.push(ms(process.hrtime.bigint() - start));
    }
    return times;
  } finally {
    await Promise.all([req.endAsync(), res.endAsync()]);
  }
}

async function adapterThroughput(url: string, qos: 0 | 1): Promise<number> {
  const [pub, sub]: MqttBus[] = await Promise.all([connectMqttBus({ url, clientId: 'tp-pub' }), connectMqttBus({ url, clientId: 'tp-sub' })]);
  try {
    let count = 0;
    let done: (() => void) | undefined;
    const all = new Promise<void>((resolve) => (done = resolve));
    await sub.subscribe('tc/v1/sim/air/bench', () => ++count === THROUGHPUT_MESSAGES && done?.(), { qos });
    const payload = new Uint8Array(MESSAGE_BYTES).fill(1);
    const start = process.hrtime.bigint();
    const sends: Promise<void>[] = [];
    for (let i = 0; i < THROUGHPUT_MESSAGES; i++) sends.push(pub.publish('tc/v1/sim/air/bench', payload, { qos }));
    await Promise.all([...sends, withTimeout(all, () => count)]);
    return THROUGHPUT_MESSAGES / (ms(process.hrtime.bigint() - start) / 1000);
  } finally {
    await Promise.all([pub.close(), sub.close()]);
  }
}

async function rawThroughput(url: string, qos: 0 | 1): Promise<number> {
  const [pub, sub] = await Promise.all([rawClient(url, 'raw-tp-pub'), rawClient(url, 'raw-tp-sub')]);
  try {
    let count = 0;
    let done: (() => void) | undefined;
    const all = new Promise<void>((resolve) => (done = resolve));
    sub.on('message', () => ++count === THROUGHPUT_MESSAGES && done?.());
    await sub.subscribeAsync('tc/v1/sim/air/bench', { qos });
    const payload = Buffer.alloc(MESSAGE_BYTES, 1);
    const start = process.hrtime.bigint();
    const sends: Promise<void>[] = [];
    for (let i = 0; i < THROUGHPUT_MESSAGES; i++) {
      sends.push(new Promise((resolve, reject) => pub.publish('tc/v1/sim/air/bench', payload, { qos }, (err) => (err ? reject(err) : resolve()))));
    }
    await Promise.all([...sends, withTimeout(all, () => count)]);
    return THROUGHPUT_MESSAGES / (ms(process.hrtime.bigint() - start) / 1000);
  } finally {
    await Promise.all([pub.endAsync(), sub.endAsync()]);
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

const ratio = (value: number, target: string) => ({ label: 'adapter/raw', value: Math.round(value * 1000) / 1000, target });
const round = (x: number, digits: number): number => Number(x.toFixed(digits));

async function benchBroker(group: string, url: string): Promise<BenchRow[]> {
  // warm up both paths (JIT, broker session setup), then measure
  await rawRoundTrips(url, WARMUP);
  await adapterRoundTrips(url, WARMUP);
  const raw = [...(await rawRoundTrips(url, ROUND_TRIPS))].sort((x, y) => x - y);
  const adapter = [...(await adapterRoundTrips(url, ROUND_TRIPS))].sort((x, y) => x - y);
  const rows: BenchRow[] = [];
  for (const p of [50, 99]) {
    const [a, r] = [percentile(adapter, p), percentile(raw, p)];
    rows.push({ group, name: `round trip p${p} (QoS 1, N=${ROUND_TRIPS})`, values: { adapter: round(a, 3), raw: round(r, 3) }, unit: 'ms', ratio: ratio(a / r, '≤ 1.2') });
  }
  for (const qos of [0, 1] as const) {
    const r = await rawThroughput(url, qos);
    const a = await adapterThroughput(url, qos);
    rows.push({
      group,
      name: `throughput QoS ${qos} (${THROUGHPUT_MESSAGES} × ${MESSAGE_BYTES} B)`,
      values: { adapter: Math.round(a), raw: Math.round(r) },
      unit: 'msgs/s',
      ratio: ratio(a / r, '≥ 0.83'),
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
