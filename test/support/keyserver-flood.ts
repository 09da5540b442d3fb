/**
 * Traffic and probes for the key-server flood test (test/e2e/keyserver-flood.test.ts):
 * - `FloodAttacker`: hostile messages of every kind the front door must shed
 *   (raw garbage, malformed bodies, random well-formed codes, replays of used
 *   codes, status floods, admin commands on the phones' topic), sent by a few
 *   hammering identities, by fresh senders sharing a few inboxes, or by a
 *   fresh identity (`from` and `replyTo`) per message; published without
 *   waiting for replies.
 * - `paced`: calls a function at a steady rate on wall time (catching up in
 *   bursts when the event loop lagged, so the achieved rate is what was asked).
 * - `watchIntakeBacklog`: the exact maximum of the host's journal backlog (the
 *   host exposes no gauge; this reaches into it, and fails loudly if its shape
 *   changed).
 * - `forceGc`: V8's gc() without --expose-gc (flag set at run time, the
 *   function taken from a fresh context).
 * - `FloodRun` and `report`: what a run measured, printed as JSON.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { KeyServerContext } from '../../actors/key-server/key-server-state.ts';
import type { Bus } from '../../actors/ports.ts';
import type { GaenTekRecord } from '../../protocol/keyserver/distribution-records.ts';
import type { KeyedLimiter } from '../../protocol/keyserver/rate-limit.ts';
import { formatUploadCode, CROCKFORD_ALPHABET, UPLOAD_CODE_BYTES } from '../../protocol/keyserver/upload-code.ts';
import { encodeEnvelope, ENVELOPE_VERSION } from '../../protocol/wire/envelope.ts';
import type { WireValue } from '../../protocol/wire/msgpack.ts';
import { packWire } from '../../protocol/wire/msgpack.ts';
import { inboxTopic } from '../../protocol/wire/topics.ts';
import type { Host } from '../../services/host/host.ts';
import type { Admission } from '../../services/keyserver/admission.ts';
import { packRecords, paddingFor } from '../../services/keyserver/client.ts';
import type { KeyServerService } from '../../services/keyserver/service.ts';

const DAY_MS = 86_400_000;
const GAEN_INTERVALS_PER_DAY = 144;

/** 14 daily GAEN TEKs ending yesterday (by `now`), random keys: what a phone uploads. */
export function fourteenTeks(now: number): GaenTekRecord[] {
  const today = Math.floor(now / DAY_MS);
  return Array.from({ length: 14 }, (_, i) => ({
    protocol: 'gaen-tek' as const,
    key: Uint8Array.from(randomBytes(16)),
    rollingStartIntervalNumber: (today - 14 + i) * GAEN_INTERVALS_PER_DAY,
    rollingPeriod: GAEN_INTERVALS_PER_DAY,
    transmissionRisk: 3,
  }));
}

export const ATTACK_KINDS = ['garbage', 'malformed', 'wrong-code', 'replay', 'status', 'admin'] as const;
export type AttackKind = (typeof ATTACK_KINDS)[number];

/** A code an honest phone has redeemed, as an eavesdropper would have captured it. */
export interface LeakedUpload {
  readonly code: string;
  readonly records: Uint8Array;
}

export interface FloodAttackerOptions {
  /** Connections the attack is spread over (round robin). */
  readonly buses: readonly Bus[];
  readonly qos: 0 | 1;
  /** `key-server/<id>/uploads`. */
  readonly uploadsTopic: string;
  /** The real provider (the admin commands try to revoke it). */
  readonly providerId: string;
  /** Share of each kind (normalised). */
  readonly mix: Readonly<Record<AttackKind, number>>;
  /**
   * Identities that keep hammering, each with its own inbox: the first half
   * sends the uploads (wrong codes, replays: they get locked out), the second
   * half the status queries (no failure to lock them: the per-sender bucket
   * must hold them).
   */
  readonly hammerers: number;
  /** Inboxes shared by fresh senders (a rotating `from` still needs an inbox it can read: the per-inbox bucket). */
  readonly sharedInboxes: number;
  /** Shares of the envelope-carrying messages by sender: hammerers, fresh `from` on a shared inbox; the rest a fresh identity each. */
  readonly hammerShare: number;
  readonly sharedInboxShare: number;
  readonly random: () => number;
  /** Replays pick from here (an empty list: the replay becomes a wrong code). */
  readonly leaked: readonly LeakedUpload[];
  readonly now: () => number;
}

export interface AttackStats {
  sent: number;
  readonly byKind: Record<AttackKind, number>;
  hammered: number;
  sharedInbox: number;
  rotated: number;
  publishErrors: number;
}

/** Another symbol in the check position: Damm catches every single substitution, so the code is refused by the codec. */
function breakCheckSymbol(code: string): string {
  const last = code.at(-1) ?? '0';
  const other = CROCKFORD_ALPHABET[(CROCKFORD_ALPHABET.indexOf(last) + 1) % CROCKFORD_ALPHABET.length] ?? '0';
  return code.slice(0, -1) + other;
}

const randomCode = (): string => formatUploadCode(Uint8Array.from(randomBytes(UPLOAD_CODE_BYTES)));

export class FloodAttacker {
  readonly stats: AttackStats = { sent: 0, byKind: { garbage: 0, malformed: 0, 'wrong-code': 0, replay: 0, status: 0, admin: 0 }, hammered: 0, sharedInbox: 0, rotated: 0, publishErrors: 0 };
  private readonly cumulative: [AttackKind, number][];
  private fresh = 0;
  private n = 0;
  private next = 0;
  /** A few record packs reused by wrong-code uploads (the attacker's CPU is not what is measured). */
  private readonly packs: Uint8Array[];

  constructor(private readonly options: FloodAttackerOptions) {
    const total = ATTACK_KINDS.reduce((sum, kind) => sum + options.mix[kind], 0);
    let acc = 0;
    this.cumulative = ATTACK_KINDS.map((kind) => [kind, (acc += options.mix[kind] / total)]);
    this.packs = Array.from({ length: 8 }, () => packRecords(fourteenTeks(options.now())));
  }

  /** Publish one attack message (not awaited; a failed publish is counted). */
  fire(): void {
    const r = this.options.random();
    const kind = (this.cumulative.find(([, upTo]) => r < upTo) ?? this.cumulative[this.cumulative.length - 1]!)[0];
    this.stats.sent++;
    this.stats.byKind[kind]++;
    // Each message goes to the upload topic of the phone it claims to be (`…/uploads/<phoneId>`).
    const [payload, phoneId] = kind === 'garbage' ? [this.garbage(), `junk${this.n++ % 64}`] : this.envelope(kind);
    const bus = this.options.buses[this.next++ % this.options.buses.length]!;
    bus.publish(`${this.options.uploadsTopic}/${phoneId}`, payload, { qos: this.options.qos }).catch(() => this.stats.publishErrors++);
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.options.random() * items.length)]!;
  }

  /** Not an envelope: random bytes, or well-formed msgpack of the wrong shape. */
  private garbage(): Uint8Array {
    const r = this.options.random();
    if (r < 0.6) return Uint8Array.from(randomBytes(1 + Math.floor(this.options.random() * 600)));
    if (r < 0.8) return packWire({ hello: 'world', n: this.n++ });
    // an envelope cut short
    const whole = encodeEnvelope({ v: ENVELOPE_VERSION, type: 'keys.upload', id: 'x', from: 'phone/x', at: 1, body: {} });
    return whole.subarray(0, Math.max(1, Math.floor(whole.length / 2)));
  }

  private identity(type: string): { from: string; replyTo: string } {
    const r = this.options.random();
    const fresh = `rot${(this.fresh++).toString(36)}`;
    if (r < this.options.hammerShare) {
      this.stats.hammered++;
      const half = Math.max(1, Math.floor(this.options.hammerers / 2));
      const k = Math.floor(this.options.random() * half) + (type === 'keys.status' ? half : 0);
      return { from: `phone/hammer${k}`, replyTo: inboxTopic('phone', `hammer${k}`) };
    }
    if (r < this.options.hammerShare + this.options.sharedInboxShare) {
      this.stats.sharedInbox++;
      return { from: `phone/${fresh}`, replyTo: inboxTopic('phone', `shared${Math.floor(this.options.random() * this.options.sharedInboxes)}`) };
    }
    this.stats.rotated++;
    return { from: `phone/${fresh}`, replyTo: inboxTopic('phone', fresh) };
  }

  private envelope(kind: Exclude<AttackKind, 'garbage'>): [Uint8Array, string] {
    const [type, body] = this.message(kind);
    const { from, replyTo } = this.identity(type);
    const id = `a${(this.n++).toString(36)}`;
    return [encodeEnvelope({ v: ENVELOPE_VERSION, type, id, from, at: this.options.now(), replyTo, corr: id, body }), from.slice('phone/'.length)];
  }

  private upload(code: string, records: Uint8Array): WireValue {
    return { code, records, chaff: false, padding: paddingFor(records.length) };
  }

  private message(kind: Exclude<AttackKind, 'garbage'>): [string, WireValue] {
    switch (kind) {
      case 'malformed':
        return this.pick<() => [string, WireValue]>([
          () => ['keys.upload', { code: randomCode() }], // no records
          () => ['keys.upload', this.upload(breakCheckSymbol(randomCode()), this.pick(this.packs))], // mistyped code
          () => ['keys.upload', { code: randomCode(), records: 'not bytes', chaff: false, padding: new Uint8Array(0) }],
          () => ['keys.upload', 42],
          () => ['keys.status', { trackingId: 'not-a-tracking-id' }],
          () => ['keys.nope', {}],
        ])();
      case 'wrong-code':
        return ['keys.upload', this.upload(randomCode(), this.pick(this.packs))];
      case 'replay': {
        if (this.options.leaked.length === 0) return this.message('wrong-code');
        const leaked = this.pick(this.options.leaked);
        // half exact replays of a captured upload, half the used code with other records
        return ['keys.upload', this.upload(leaked.code, this.options.random() < 0.5 ? leaked.records : this.pick(this.packs))];
      }
      case 'status':
        return ['keys.status', { trackingId: Buffer.from(randomBytes(16)).toString('hex') }];
      case 'admin':
        return this.pick<() => [string, WireValue]>([
          () => ['keys.provider.revoke', { providerId: this.options.providerId, retroactive: true, since: 0 }],
          () => ['keys.provider.add', { providerId: 'evil' }],
          () => ['keys.codes.register', { providerId: this.options.providerId, digests: Uint8Array.from(randomBytes(32)), lifetimeMs: 3_600_000 }],
          () => ['keys.server.state', {}],
        ])();
    }
  }
}

/**
 * Call `fire` `ratePerSecond` times a second for `durationMs` of wall time
 * (or until `until()` holds); returns how many calls and the elapsed ms.
 * Calls due while the event loop was busy are made as soon as it is back.
 */
export async function paced(ratePerSecond: number, durationMs: number, fire: () => void, until: () => boolean = () => false): Promise<{ count: number; ms: number }> {
  const start = performance.now();
  let count = 0;
  for (;;) {
    const elapsed = performance.now() - start;
    if (until()) return { count, ms: elapsed };
    if (elapsed >= durationMs) {
      // a late last tick: make up the calls still due, so the count is the rate times the duration
      for (const total = Math.floor((durationMs / 1000) * ratePerSecond); count < total; count++) fire();
      return { count, ms: elapsed };
    }
    const due = Math.floor((elapsed / 1000) * ratePerSecond);
    while (count < due) {
      fire();
      count++;
    }
    await sleep(4);
  }
}

export interface BacklogProbe {
  /** Inputs waiting for the journal or to be applied, now. */
  current(): number;
  /** Largest backlog right after any input was taken in, since the probe was set. */
  readonly max: number;
}

interface IntakeLike {
  readonly pending: number;
  push(event: never): void;
}

/**
 * The journal intake of `address` in `host`, with `push` wrapped to record
 * the backlog after every input (bus messages, timers, host events alike).
 */
export function watchIntakeBacklog(host: Host, address: string): BacklogProbe {
  const actors = (host as unknown as { actors?: unknown }).actors;
  const running = actors instanceof Map ? (actors.get(address) as { intake?: unknown } | undefined) : undefined;
  const intake = running?.intake as IntakeLike | undefined;
  if (intake === undefined || typeof intake.push !== 'function' || typeof intake.pending !== 'number') {
    throw new Error(`cannot find the journal intake of ${address}: Host internals changed (give Host a backlog gauge)`);
  }
  const push = intake.push.bind(intake);
  const probe = { max: 0, current: () => intake.pending };
  intake.push = (event: never): void => {
    push(event);
    if (intake.pending > probe.max) probe.max = intake.pending;
  };
  return probe;
}

/** V8's garbage collector, or undefined where the flag cannot be set. */
export function forceGc(): (() => void) | undefined {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (typeof exposed === 'function') return exposed;
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    return typeof gc === 'function' ? () => void (gc as () => unknown)() : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- the run and its report

export const MB = 1024 * 1024;

export interface PhoneOutcome {
  readonly acked: boolean;
  readonly uploadTries: number;
  readonly statusTries: number;
  readonly ackMs: number;
  /** keys.status state, or 'no-ack' / 'no-status'. */
  readonly state: string;
  readonly reason: string;
}

export interface HeapMark {
  readonly label: string;
  readonly heapUsed: number;
  readonly attackSent: number;
  /** How long the server took to take in everything sent so far and drain its journal backlog. */
  readonly drainMs: number;
  /** The event log on disk (SQLite file and WAL), and inputs the admission let through so far. */
  readonly logBytes: number;
  readonly admitted: number;
}

export interface FloodRun {
  readonly phones: readonly PhoneOutcome[];
  /** The steady window (phones starting): valid messages sent, attack messages sent, messages the server took in. */
  readonly steady: { readonly ms: number; readonly valid: number; readonly attackSent: number; readonly received: number; readonly gateWaitMs: number };
  readonly attacker: FloodAttacker;
  readonly service: KeyServerService;
  readonly context: KeyServerContext;
  readonly backlog: BacklogProbe;
  readonly heap: readonly HeapMark[];
  readonly gc: boolean;
  /** Messages published to the server's topics (provider setup, phones, attacker) and taken in by its host. */
  readonly published: number;
  readonly received: number;
}

/** Admission's keyed limiters (private: read for the bounds only). */
export function limiters(admission: Admission): { clients: KeyedLimiter } {
  return admission as unknown as { clients: KeyedLimiter };
}

/** Attack messages the server took in during the steady window, at least (every valid message sent counts as taken in). */
export const attackArrived = (r: FloodRun): number => r.steady.received - r.steady.valid;

/** The measured numbers of a run, as printed JSON. */
export function report(r: FloodRun): string {
  const { phones, steady, attacker, service, context, backlog, heap } = r;
  const accepted = phones.filter((p) => p.state === 'accepted').length;
  const ackMs = phones
    .filter((p) => p.acked)
    .map((p) => Math.round(p.ackMs))
    .sort((a, b) => a - b);
  const perSecond = (n: number): number => Math.round((1000 * n) / steady.ms);
  const { clients } = limiters(service.admission);
  return JSON.stringify(
    {
      phones: phones.length,
      accepted,
      acceptedPct: (100 * accepted) / phones.length,
      phoneRetries: { upload: phones.reduce((n, p) => n + p.uploadTries - 1, 0), status: phones.reduce((n, p) => n + p.statusTries - 1, 0) },
      ackMs: { p50: ackMs[Math.floor(ackMs.length / 2)], p99: ackMs[Math.floor(ackMs.length * 0.99)], max: ackMs.at(-1) },
      steadyWindow: {
        ms: Math.round(steady.ms),
        gateWaitMs: Math.round(steady.gateWaitMs),
        validUploadsPerSecond: perSecond(phones.length),
        validMessagesPerSecond: perSecond(steady.valid),
        attackSentPerSecond: perSecond(steady.attackSent),
        attackArrivedPerSecond: perSecond(attackArrived(r)),
        ratioSent: +(steady.attackSent / steady.valid).toFixed(1),
        ratioArrived: +(attackArrived(r) / steady.valid).toFixed(1),
      },
      attack: attacker.stats,
      published: r.published,
      received: r.received,
      hostRejections: service.host.stats.rejections,
      admission: { admitted: service.admission.stats.admitted, refused: service.admission.stats.refused },
      machineRejected: context.ledger.counters.rejected,
      counters: { ...context.ledger.counters, rejected: undefined },
      statuses: context.ledger.statuses.size,
      lockouts: { size: context.ledger.lockouts.size, evicted: context.ledger.lockouts.evicted },
      limiters: { clients: clients.size, clientsEvicted: clients.evicted },
      backlogMax: backlog.max,
      gc: r.gc,
      heap: heap.map((h) => ({ at: h.label, MB: +(h.heapUsed / MB).toFixed(2), attackSent: h.attackSent, drainMs: Math.round(h.drainMs), logMB: +(h.logBytes / MB).toFixed(2), admitted: h.admitted })),
    },
    null,
    1,
  );
}
