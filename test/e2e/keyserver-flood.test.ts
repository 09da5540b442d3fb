/**
 * Issue 4 acceptance: "Flood test: with garbage and wrong codes arriving at
 * ≥ 10× the valid rate, ≥ 99% of valid uploads are accepted and memory stays
 * bounded."
 *
 * Real parts in one process, on wall time (WallScheduler at speed 1: the
 * admission buckets and the lockout run on it): an embedded aedes broker with
 * MqttBus clients over TCP (what users run), the key-server service on a
 * SqliteStore in a temp dir (its journal is the durable event log, an fsync
 * per commit), a MemoryBlobStore.
 *
 * Valid phones (a distinct `from` and inbox each, an own code from
 * issueCodes) start at VALID_RATE per second, upload 14 TEKs, retry after a
 * timeout with back-off and the same code and records, then ask
 * `keys.status`. The flood runs at ATTACK_RATE from before the first phone
 * until the last one is done: raw garbage, malformed bodies, random
 * well-formed codes, replays of used codes (captured exactly, or with other
 * records), status floods and admin commands on the uploads topic — from a
 * few hammering identities, from fresh senders sharing a few inboxes, and
 * from a fresh identity (`from` and `replyTo`) per message. Then two
 * attack-only phases of equal message count measure the heap after a forced
 * GC: with the bounded tables already full, the flood must not grow it.
 *
 * "Arriving" is measured at the server: what its host took in while the
 * phones were starting, less every valid message sent. Broker, server, SQLite
 * fsyncs, phones and attacker share one event loop, and test files run in
 * parallel, so the rates are modest and two guards keep the premise true on a
 * loaded machine instead of letting it fail quietly: attack messages not yet
 * taken in are capped (MAX_ATTACK_IN_FLIGHT, as TCP would hold a sender back),
 * and a phone starts only while the attack taken in is ≥ ARRIVAL_RATIO_GATE×
 * the valid messages (on an unloaded machine neither binds; `gateWaitMs`).
 *
 * Bounds are set small (statusMemory, lockoutKeys, trackedKeys) so the flood
 * fills and evicts them. The measured numbers are printed.
 */
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockoutStatus } from '../../protocol/keyserver/rate-limit.ts';
import { inboxTopic } from '../../protocol/wire/topics.ts';
import { startEmbeddedBroker } from '../../services/broker/aedes.ts';
import { connectMqttBus, type MqttBus } from '../../services/bus/mqtt.ts';
import { RpcTimeoutError } from '../../services/bus/rpc.ts';
import { silentLogger } from '../../services/log.ts';
import { DEFAULT_ADMISSION_CONFIG, type AdmissionConfig } from '../../services/keyserver/admission.ts';
import { MemoryBlobStore } from '../../services/keyserver/blobs.ts';
import { KeyServerClient, packRecords } from '../../services/keyserver/client.ts';
import { startKeyServerService, uploadsTopic } from '../../services/keyserver/service.ts';
import { realTime } from '../../services/keyserver/session.ts';
import { openSqliteStore } from '../../services/store/sqlite.ts';
import { KS_KEY_ID, KS_SIGNING_KEY, PEPPER } from '../support/key-server-fixtures.ts';
import {
  attackArrived,
  FloodAttacker,
  forceGc,
  fourteenTeks,
  limiters,
  MB,
  paced,
  report,
  watchIntakeBacklog,
  type FloodRun,
  type HeapMark,
  type LeakedUpload,
  type PhoneOutcome,
} from '../support/keyserver-flood.ts';
import { prng } from '../support/test-rng.ts';

const SERVER_ID = 'ks-flood';
const PROVIDER = 'lab1';
/** Valid uploads started per second, and how many (each phone sends ≥ 2 messages: upload and status). */
const VALID_RATE = 25;
const PHONES = 200;
/** Attack messages per second: ~24× the valid messages. */
const ATTACK_RATE = 1_200;
/**
 * A phone starts only while the attack messages the server took in are at
 * least this many times the valid messages sent so far: when the shared CPU
 * cannot move the flood as fast as it is sent, the phones slow down rather
 * than the premise "≥ 10× arriving" quietly failing. It does not bind on an
 * unloaded machine (the printed `gateWaitMs`).
 */
const ARRIVAL_RATIO_GATE = 12;
/** Attack messages sent but not yet taken in by the server, at most (~1 s of flood). */
const MAX_ATTACK_IN_FLIGHT = 1_200;
/** A phone waits this long for a reply, then backs off (doubling from BACKOFF_MS) and retries. */
const RPC_TIMEOUT_MS = 2_000;
const BACKOFF_MS = 250;
/** A phone gives up on its upload this long after it started, and on its status this long after the ack. */
const PATIENCE_MS = 12_000;
/** Attack messages in each of the two attack-only phases measuring the heap. */
const HEAP_PHASE_MESSAGES = 4_000;
const PHONE_CONNECTIONS = 4;
const ATTACK_CONNECTIONS = 2;
/** Hammering identities (half upload wrong codes, half flood status queries), and inboxes shared by fresh senders. */
const HAMMERERS = 4;
const SHARED_INBOXES = 4;

const CONFIG = { statusMemory: 1_000, lockoutKeys: 500 };
const ADMISSION: AdmissionConfig = { ...DEFAULT_ADMISSION_CONFIG, trackedKeys: 500 };
const MAX_PENDING = 500;
const MIX = { garbage: 0.2, malformed: 0.15, 'wrong-code': 0.3, replay: 0.1, status: 0.15, admin: 0.1 } as const;

const cleanup: (() => Promise<unknown>)[] = [];
let run: FloodRun;

async function scenario(): Promise<FloodRun> {
  const dir = await mkdtemp(join(tmpdir(), 'ks-flood-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  const logPath = join(dir, 'keys.sqlite');
  const store = await openSqliteStore(logPath);
  const logBytes = (): number => [logPath, `${logPath}-wal`].reduce((n, path) => n + (existsSync(path) ? statSync(path).size : 0), 0);
  cleanup.push(() => store.close());
  const broker = await startEmbeddedBroker();
  cleanup.push(() => broker.close());
  const bus = async (clientId: string): Promise<MqttBus> => {
    const opened = await connectMqttBus({ url: broker.url, clientId, onError: () => undefined });
    cleanup.push(() => opened.close());
    return opened;
  };
  const scheduler = realTime();
  cleanup.push(() => Promise.resolve(scheduler.cancelAll()));
  const service = await startKeyServerService({
    serverId: SERVER_ID,
    bus: await bus(`key-server.${SERVER_ID}`),
    store,
    blobs: new MemoryBlobStore(),
    scheduler,
    logger: silentLogger,
    secrets: { pepper: PEPPER, signingKey: KS_SIGNING_KEY, keyId: KS_KEY_ID },
    config: CONFIG,
    admission: ADMISSION,
    maxPending: MAX_PENDING,
  });
  cleanup.push(() => service.stop());
  const backlog = watchIntakeBacklog(service.host, service.address);

  const provider = await KeyServerClient.connect(await bus('host.provider'), { serverId: SERVER_ID, address: 'host/provider', inbox: inboxTopic('host', 'provider') });
  cleanup.push(() => provider.close());
  expect((await provider.admin('keys.provider.add', { providerId: PROVIDER })).ok).toBe(true);
  const codes = await provider.issueCodes(PROVIDER, PHONES, PEPPER, 3_600_000, scheduler.now());
  const setupMessages = 2; // provider.add and one codes.register batch

  const phoneBuses = await Promise.all(Array.from({ length: PHONE_CONNECTIONS }, (_, i) => bus(`phone.valid${i}`)));
  const clients = await Promise.all(
    Array.from({ length: PHONES }, (_, i) =>
      KeyServerClient.connect(phoneBuses[i % PHONE_CONNECTIONS]!, { serverId: SERVER_ID, address: `phone/v${i}`, inbox: inboxTopic('phone', `v${i}`), timeoutMs: RPC_TIMEOUT_MS }),
    ),
  );
  cleanup.push(() => Promise.all(clients.map((c) => c.close())));

  const leaked: LeakedUpload[] = [];
  const attacker = new FloodAttacker({
    buses: await Promise.all(Array.from({ length: ATTACK_CONNECTIONS }, (_, i) => bus(`phone.attacker${i}`))),
    qos: 1,
    uploadsTopic: uploadsTopic(SERVER_ID),
    providerId: PROVIDER,
    mix: MIX,
    hammerers: HAMMERERS,
    sharedInboxes: SHARED_INBOXES,
    hammerShare: 0.4,
    sharedInboxShare: 0.2,
    random: prng(20_260_404),
    leaked,
    now: () => scheduler.now(),
  });

  let validSent = 0;
  /** Call until it answers (a timeout: back off, doubling, and call again) or `deadline` (performance.now()) passes. */
  const retrying = async <T>(call: () => Promise<T>, deadline: number): Promise<{ value: T | undefined; tries: number }> => {
    let tries = 0;
    for (let backoff = BACKOFF_MS; performance.now() < deadline; backoff *= 2) {
      tries++;
      validSent++;
      try {
        return { value: await call(), tries };
      } catch (error) {
        if (!(error instanceof RpcTimeoutError)) throw error;
      }
      await sleep(backoff * (0.5 + Math.random()));
    }
    return { value: undefined, tries };
  };

  /**
   * Attack messages not yet taken in by the server are capped (as TCP's window
   * would hold a real sender back; mqtt.js buffers without bound): a flood the
   * shared CPU cannot move is not sent, rather than queued in the broker to
   * arrive after the phones are done.
   */
  const fire = (): void => {
    const attackTakenIn = service.host.stats.received - setupMessages - validSent;
    if (attacker.stats.sent - attackTakenIn < MAX_ATTACK_IN_FLIGHT) attacker.fire();
  };

  const gc = forceGc();
  const heap: HeapMark[] = [];
  const mark = async (label: string): Promise<void> => {
    const sent = setupMessages + validSent + attacker.stats.sent;
    const start = performance.now();
    for (let i = 0; i < 400 && (service.host.stats.received < sent || backlog.current() > 0); i++) await sleep(25);
    const drainMs = performance.now() - start;
    gc?.();
    heap.push({ label, heapUsed: process.memoryUsage().heapUsed, attackSent: attacker.stats.sent, drainMs, logBytes: logBytes(), admitted: service.admission.stats.admitted });
  };
  await mark('before the flood');

  // the flood starts first and runs until the last phone is done
  let phonesDone = false;
  const flood = paced(ATTACK_RATE, 120_000, fire, () => phonesDone);
  await sleep(500);

  const validStart = performance.now();
  const at = { attack: attacker.stats.sent, received: service.host.stats.received };
  const phone = async (i: number): Promise<PhoneOutcome> => {
    const client = clients[i]!;
    const code = codes[i]!.text;
    const records = fourteenTeks(scheduler.now());
    const started = performance.now();
    const ack = await retrying(() => client.upload(code, records), started + PATIENCE_MS);
    const ackMs = performance.now() - started;
    if (ack.value === undefined) return { acked: false, uploadTries: ack.tries, statusTries: 0, ackMs, state: 'no-ack', reason: '' };
    leaked.push({ code, records: packRecords(records) }); // an eavesdropper captured it
    const trackingId = ack.value;
    const status = await retrying(() => client.status(trackingId), performance.now() + PATIENCE_MS);
    return { acked: true, uploadTries: ack.tries, statusTries: status.tries, ackMs, state: status.value?.state ?? 'no-status', reason: status.value?.reason ?? '' };
  };
  const outcomes: Promise<PhoneOutcome>[] = [];
  // phone i starts at i / VALID_RATE s, or later while the gate holds it back
  const attackArrived = (): number => service.host.stats.received - at.received - validSent; // at least (valid messages count as taken in once sent)
  let gateWaitMs = 0;
  for (let last = validStart; outcomes.length < PHONES; ) {
    await sleep(4);
    const now = performance.now();
    const due = Math.min(PHONES, Math.floor(((now - validStart) / 1000) * VALID_RATE));
    if (outcomes.length < due && attackArrived() < ARRIVAL_RATIO_GATE * (validSent + 2)) gateWaitMs += now - last;
    while (outcomes.length < due && attackArrived() >= ARRIVAL_RATIO_GATE * (validSent + 2)) outcomes.push(phone(outcomes.length));
    last = now;
  }
  const steady = { ms: performance.now() - validStart, valid: validSent, attackSent: attacker.stats.sent - at.attack, received: service.host.stats.received - at.received, gateWaitMs };
  const phones = await Promise.all(outcomes);
  phonesDone = true;
  await flood;
  await mark('after the phones');

  // two attack-only phases of equal message count: the tables are full, the heap must not follow the flood
  for (const label of ['attack phase A', 'attack phase B']) {
    const target = attacker.stats.sent + HEAP_PHASE_MESSAGES;
    await paced(ATTACK_RATE, 60_000, fire, () => attacker.stats.sent >= target);
    await mark(label);
  }

  return {
    phones,
    steady,
    attacker,
    service,
    context: service.context(),
    backlog,
    heap,
    gc: gc !== undefined,
    published: setupMessages + validSent + attacker.stats.sent,
    received: service.host.stats.received,
  };
}


describe('key server under a flood of garbage and wrong codes (issue 4 acceptance)', () => {
  beforeAll(async () => {
    run = await scenario();
    console.log(report(run));
  }, 90_000);

  afterAll(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  it('accepts at least 99 % of valid uploads: acknowledged within the run, status accepted', () => {
    const accepted = run.phones.filter((p) => p.acked && p.state === 'accepted').length;
    expect(accepted / run.phones.length).toBeGreaterThanOrEqual(0.99);
    // an acknowledged valid upload is never rejected
    expect(run.phones.filter((p) => p.acked && p.state !== 'accepted' && p.state !== 'no-status')).toEqual([]);
    // the machine accepted each acknowledged upload once (retries and exact replays added nothing)
    expect(run.context.ledger.counters.uploadsAccepted).toBeGreaterThanOrEqual(run.phones.filter((p) => p.acked).length);
    expect(run.context.ledger.counters.uploadsAccepted).toBeLessThanOrEqual(PHONES);
  });

  it('takes in attack traffic at 10× the valid message rate or more while the phones upload, and loses none of it', () => {
    // at the server (the sent rate, printed, is higher whenever the server lags)
    expect(attackArrived(run)).toBeGreaterThanOrEqual(10 * run.steady.valid);
    expect(run.attacker.stats.publishErrors).toBe(0);
    expect(run.received).toBe(run.published);
  });

  it('keeps the status memory, lockout table and admission limiters within their bounds, having filled them', () => {
    const { ledger } = run.context;
    expect(ledger.statuses.size).toBe(CONFIG.statusMemory);
    expect(ledger.lockouts.size).toBeLessThanOrEqual(CONFIG.lockoutKeys);
    expect(ledger.lockouts.evicted).toBeGreaterThan(0);
    const { clients } = limiters(run.service.admission);
    expect(clients.size).toBeLessThanOrEqual(ADMISSION.trackedKeys);
    expect(clients.size).toBe(run.service.admission.trackedClients);
    expect(clients.evicted).toBeGreaterThan(0);
  });

  it('never lets the journal backlog exceed maxPending', () => {
    expect(run.backlog.max).toBeLessThanOrEqual(MAX_PENDING);
  });

  it('does not grow the heap over a further attack phase once the bounded tables are full', () => {
    expect(run.heap.map((h) => h.label)).toEqual(['before the flood', 'after the phones', 'attack phase A', 'attack phase B']);
    const [, , a, b] = run.heap;
    const grown = b!.heapUsed - a!.heapUsed;
    const messages = b!.attackSent - a!.attackSent;
    // With a GC before each reading the bounded server's heap moves by ±0.2 MB over a phase
    // of 4 000 messages; the same run with statusMemory, lockoutKeys and trackedKeys at 10⁶
    // (nothing forgotten) grows by ~0.85 MB (~220 B per message). Without a GC (the flag
    // refused) only a gross leak can be told from garbage not yet collected.
    const limit = run.gc ? 0.4 * MB : 8 * MB;
    expect(grown, `heap grew ${(grown / MB).toFixed(2)} MB over ${messages} attack messages`).toBeLessThan(limit);
  });

  it('sheds each hostile kind where designed: garbage at the envelope, malformed bodies at the codec, admin commands as wrong-channel, hammerers locked out or rate-limited, replies aimed at other inboxes refused, wrong and replayed codes in the machine', () => {
    const { stats } = run.service.host;
    const { byKind } = run.attacker.stats;
    const count = (prefix: string): number => Object.entries(stats.rejections).reduce((n, [reason, k]) => n + (reason.startsWith(prefix) ? k : 0), 0);
    expect(count('envelope.')).toBe(byKind.garbage);
    expect(stats.rejectedBodies).toBe(byKind.malformed);
    const queueFull = stats.rejections['admit.queue-full'] ?? 0;
    expect(stats.rejections['admit.wrong-channel'] ?? 0).toBeGreaterThanOrEqual(byKind.admin - queueFull);
    expect(stats.rejections['admit.wrong-channel'] ?? 0).toBeLessThanOrEqual(byKind.admin);
    const { ledger, config } = run.context;
    expect(ledger.providers.get(PROVIDER)?.revokedAt).toBeNull(); // the revocations sent on the uploads topic did nothing
    expect(ledger.providers.has('evil')).toBe(false);
    const { refused } = run.service.admission.stats;
    expect(refused['locked-out'] ?? 0).toBeGreaterThan(0);
    expect(refused['client-rate'] ?? 0).toBeGreaterThan(0); // the status hammerers
    expect(refused['foreign-inbox'] ?? 0).toBeGreaterThan(0); // fresh senders aiming replies at shared inboxes
    for (let i = 0; i < HAMMERERS / 2; i++) expect(lockoutStatus(ledger.lockouts, config.lockout, `phone/hammer${i}`, Date.now()).locked).toBe(true);
    expect(ledger.counters.rejected['unknown-code'] ?? 0).toBeGreaterThan(0);
    expect(ledger.counters.rejected['used'] ?? 0).toBeGreaterThan(0);
    expect(ledger.counters.uploadRetries).toBeGreaterThan(0); // exact replays: answered with the original tracking id
  });
});
