/**
 * The TCN backend (actors/tcn/backend.ts) driven as an xstate actor: a code authorizes one
 * upload (re-sends acknowledged, anything else `used`; a refused upload leaves it usable), mode A
 * matching in both orders (report after the contacts, contacts after the report), senders that are
 * not phones, bounded memory, retention with its timer, and mode B log parts published once.
 */
import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import type { BusSendEffect, Effect } from '../../actors/effects.ts';
import { createTcnBackendMachine, type TcnBackendContext, type TcnBackendInput } from '../../actors/tcn/backend.ts';
import { tcnLogTopic } from '../../actors/tcn/topics.ts';
import { formatUploadCode, parseUploadCode, type UploadCode } from '../../protocol/keyserver/upload-code.ts';
import { decodeTcnContactLog, encodeTcnContactLog, tcnContactMinute, type TcnContact } from '../../protocol/tcn/contact-log.ts';
import { tckAt, tcnOf } from '../../protocol/tcn/keys.ts';
import { tcnContactsUploadCodec, tcnLogUploadCodec, tcnMessages, tcnReportUploadCodec } from '../../protocol/tcn/messages.ts';
import { createTcnReport, TCN_MEMO_TYPES } from '../../protocol/tcn/report.ts';
import type { WireValue } from '../../protocol/wire/msgpack.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { seededRng } from '../support/test-rng.ts';

const MIN = 60_000;
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 5, 9);
const PEPPER = nodeSuite.sha256(new TextEncoder().encode('tcn backend test pepper'));
const registry = tcnMessages();
const memo = { type: TCN_MEMO_TYPES.covidWatchV1, data: new Uint8Array([1]) };
const rak = seededRng(1).bytes(32);
/** tcn_1 … tcn_8 of `rak`. */
const TCNS = Array.from({ length: 8 }, (_, i) => tcnOf(nodeSuite, tckAt(nodeSuite, rak, i + 1)));
const REPORT = createTcnReport(nodeSuite, rak, 1, 8, memo);

function code(seed: number): UploadCode {
  const parsed = parseUploadCode(formatUploadCode(seededRng(100 + seed).bytes(10)));
  if (!parsed.ok) throw new Error(parsed.detail);
  return parsed.value;
}

class Backend {
  readonly actor;
  private n = 0;
  constructor(input: Partial<TcnBackendInput> = {}) {
    this.actor = createActor(createTcnBackendMachine({ crypto: nodeSuite, pepper: PEPPER }), { input: { id: 'tcn-backend', codes: [code(1).text, code(2).text], codesExpireAt: T0 + DAY, ...input } });
    this.actor.start();
    this.actor.send({ type: 'host.start', at: T0 });
  }
  get context(): TcnBackendContext {
    return this.actor.getSnapshot().context;
  }
  /** A message as the host delivers it (body through the registry's decoder); the effects it caused. */
  msg(type: string, wire: WireValue, at: number, from = 'phone/p1'): Effect[] {
    const body = registry.decodeBody(type, wire);
    if (!body.ok) throw new Error(body.detail);
    const effects: Effect[] = [];
    const sub = this.actor.on('*', (e: Effect) => effects.push(e));
    const envelope = { v: 1 as const, type, id: `${from}.${++this.n}`, from, at, replyTo: `tc/v1/${from}/inbox`, body: {} as WireValue };
    this.actor.send({ type: `msg.${type}`, at, envelope, body: body.value } as never);
    sub.unsubscribe();
    return effects;
  }
  contacts(contacts: readonly TcnContact[], at: number, from = 'phone/p1'): Effect[] {
    return this.msg('tcn.contacts.upload', tcnContactsUploadCodec.encode({ batch: this.n, log: encodeTcnContactLog(contacts) }), at, from);
  }
  reports(c: UploadCode, reports: readonly Uint8Array[], at: number): Effect[] {
    return this.msg('tcn.report.upload', tcnReportUploadCodec.encode({ code: c, reports }), at, 'phone/positive');
  }
}

const sends = (effects: readonly Effect[], msgType: string): BusSendEffect[] => effects.filter((e): e is BusSendEffect => e.type === 'bus.send' && e.msgType === msgType);
const ackOf = (effects: readonly Effect[], msgType: string): { accepted: boolean; reason: string } => {
  const [ack] = sends(effects, msgType);
  if (ack === undefined) throw new Error(`no ${msgType}`);
  return ack.body as { accepted: boolean; reason: string };
};
const heard = (tcns: readonly Uint8Array[], at: number, rssiDbm = -62): TcnContact[] => tcns.map((tcn, i) => ({ tcn, atMinute: tcnContactMinute(at) + i, rssiDbm }));
const noise = (n: number, seed: number): TcnContact[] => heard(Array.from({ length: n }, (_, i) => seededRng(seed * 1000 + i).bytes(16)), T0);

describe('codes', () => {
  it('a code authorizes one upload; the same upload re-sent is acknowledged again', () => {
    const b = new Backend();
    b.contacts(heard(TCNS.slice(0, 3), T0), T0);
    const first = b.reports(code(1), [REPORT], T0 + MIN);
    expect(ackOf(first, 'tcn.report.ack')).toEqual({ accepted: true, reason: '' });
    expect(sends(first, 'tcn.exposure.notify')).toHaveLength(1);
    const again = b.reports(code(1), [REPORT], T0 + 2 * MIN);
    expect(ackOf(again, 'tcn.report.ack').accepted).toBe(true);
    expect(sends(again, 'tcn.exposure.notify')).toHaveLength(0);
    const other = createTcnReport(nodeSuite, seededRng(2).bytes(32), 1, 4, memo);
    expect(ackOf(b.reports(code(1), [other], T0 + 3 * MIN), 'tcn.report.ack').reason).toBe('used');
    expect(ackOf(b.reports(code(9), [other], T0 + 3 * MIN), 'tcn.report.ack').reason).toBe('unknown-code');
    expect(ackOf(b.reports(code(2), [other], T0 + DAY), 'tcn.report.ack').reason).toBe('expired');
    expect(b.context.counters.reportRetries).toBe(1);
    expect(b.context.reports).toHaveLength(1);
  });

  it('a report that does not verify is refused and leaves the code usable', () => {
    const b = new Backend();
    const forged = Uint8Array.from(REPORT, (x, i) => (i === 40 ? x ^ 1 : x));
    expect(ackOf(b.reports(code(2), [REPORT, forged], T0), 'tcn.report.ack').reason).toBe('bad-signature');
    expect(ackOf(b.reports(code(2), [REPORT], T0), 'tcn.report.ack').accepted).toBe(true);
    expect(b.context.counters.reportsRefused['bad-signature']).toBe(1);
  });

  it('keeps peppered digests, never the codes', () => {
    const b = new Backend();
    const snapshot = JSON.stringify(b.actor.getPersistedSnapshot(), (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v));
    expect(snapshot).not.toContain(code(1).text);
    expect(snapshot).not.toContain(Buffer.from(code(1).bytes).toString('hex'));
    expect(snapshot).not.toContain(Buffer.from(PEPPER).toString('hex'));
  });
});

describe('mode A matching', () => {
  it('notifies the uploaders that heard a reported TCN, whichever arrives first', () => {
    const b = new Backend();
    b.contacts([...heard(TCNS.slice(0, 4), T0), ...noise(5, 1)], T0, 'phone/early');
    b.contacts(noise(5, 2), T0, 'phone/stranger');
    const reported = b.reports(code(1), [REPORT], T0 + 10 * MIN);
    const notices = sends(reported, 'tcn.exposure.notify');
    expect(notices.map((n) => n.topic)).toEqual(['tc/v1/phone/early/inbox']);
    const body = notices[0]!.body as { reportId: number; log: Uint8Array };
    const log = decodeTcnContactLog(body.log);
    expect(log.ok && log.value.map((c) => Buffer.from(c.tcn).toString('hex'))).toEqual(TCNS.slice(0, 4).map((t) => Buffer.from(t).toString('hex')));
    // A phone that uploads its contacts after the report is told at once.
    const late = b.contacts(heard(TCNS.slice(5, 7), T0 + 5 * MIN), T0 + 20 * MIN, 'phone/late');
    expect(sends(late, 'tcn.exposure.notify').map((n) => [n.topic, (n.body as { reportId: number }).reportId])).toEqual([['tc/v1/phone/late/inbox', body.reportId]]);
    expect(ackOf(late, 'tcn.contacts.ack').accepted).toBe(true);
    expect(b.context.counters.contactsNotified).toBe(6);
  });

  it('refuses uploads from senders that are not phones', () => {
    const b = new Backend();
    expect(ackOf(b.contacts(heard(TCNS, T0), T0, 'app-backend/evil'), 'tcn.contacts.ack').reason).toBe('not-a-phone');
    const log = tcnLogUploadCodec.encode({ code: code(1), part: 0, parts: 1, log: encodeTcnContactLog([]) });
    expect(ackOf(b.msg('tcn.log.upload', log, T0, 'health-authority/ha'), 'tcn.log.ack').reason).toBe('not-a-phone');
    expect(b.context.uploads.flatMap((h) => h.uploads)).toHaveLength(0);
  });
});

describe('bounded memory and retention', () => {
  it('refuses contacts beyond maxContacts and reports beyond maxReports', () => {
    const b = new Backend({ config: { maxContacts: 50, maxReports: 1 } });
    expect(ackOf(b.contacts(noise(40, 3), T0), 'tcn.contacts.ack').accepted).toBe(true);
    expect(ackOf(b.contacts(noise(20, 4), T0), 'tcn.contacts.ack').reason).toBe('capacity');
    expect(ackOf(b.contacts(noise(10, 5), T0), 'tcn.contacts.ack').accepted).toBe(true);
    expect(b.context.contactCount).toBe(50);
    const two = createTcnReport(nodeSuite, seededRng(3).bytes(32), 1, 2, memo);
    expect(ackOf(b.reports(code(1), [REPORT, two], T0), 'tcn.report.ack').reason).toBe('capacity');
    expect(ackOf(b.reports(code(1), [REPORT], T0), 'tcn.report.ack').accepted).toBe(true);
  });

  it('a hostile j2 regenerates at most maxTcnsPerReport TCNs', () => {
    const b = new Backend({ config: { maxTcnsPerReport: 100 } });
    b.reports(code(1), [createTcnReport(nodeSuite, rak, 1, 65_535, memo)], T0);
    expect(b.context.reports[0]!.tcns).toHaveLength(100 * 16);
  });

  it('forgets uploads and reports after the retention, with the expire timer', () => {
    const b = new Backend({ config: { retentionMs: DAY } });
    const effects = b.contacts(noise(10, 6), T0);
    expect(effects).toContainEqual({ type: 'timer.set', name: 'expire', deadline: T0 + DAY });
    b.contacts(noise(5, 7), T0 + 30 * MIN); // the same hour: only the older one expires first
    b.reports(code(1), [REPORT], T0 + 60 * MIN);
    const fired: Effect[] = [];
    const sub = b.actor.on('*', (e: Effect) => fired.push(e));
    const uploads = (): number => b.context.uploads.flatMap((h) => h.uploads).length;
    b.actor.send({ type: 'timer.expire', at: T0 + DAY });
    expect([uploads(), b.context.contactCount, b.context.reports.length]).toEqual([1, 5, 1]);
    expect(fired).toContainEqual({ type: 'timer.set', name: 'expire', deadline: T0 + 30 * MIN + DAY });
    b.actor.send({ type: 'timer.expire', at: T0 + 30 * MIN + DAY });
    expect([uploads(), b.context.contactCount, b.context.reports.length]).toEqual([0, 0, 1]);
    expect(fired).toContainEqual({ type: 'timer.set', name: 'expire', deadline: T0 + 60 * MIN + DAY });
    b.actor.send({ type: 'timer.expire', at: T0 + 60 * MIN + DAY });
    sub.unsubscribe();
    expect(b.context.reports).toHaveLength(0);
    // Nothing left to expire: the fired timer is not re-armed.
    expect(b.context.timers).toEqual({});
    expect(b.context.counters.uploadsExpired).toBe(2);
  });
});

describe('mode B logs', () => {
  const part = (c: UploadCode, p: number, parts: number, contacts: TcnContact[]): WireValue => tcnLogUploadCodec.encode({ code: c, part: p, parts, log: encodeTcnContactLog(contacts) });

  it('publishes each part once, for the phone the code was first used by', () => {
    const b = new Backend();
    const first = b.msg('tcn.log.upload', part(code(1), 0, 2, heard(TCNS.slice(0, 2), T0)), T0, 'phone/positive');
    const published = sends(first, 'tcn.log.published');
    expect(published.map((p) => p.topic)).toEqual([tcnLogTopic('tcn-backend')]);
    expect(published[0]!.body).toMatchObject({ part: 0, parts: 2 });
    const again = b.msg('tcn.log.upload', part(code(1), 0, 2, heard(TCNS.slice(0, 2), T0)), T0 + 1, 'phone/positive');
    expect([ackOf(again, 'tcn.log.ack').accepted, sends(again, 'tcn.log.published').length]).toEqual([true, 0]);
    expect(ackOf(b.msg('tcn.log.upload', part(code(1), 1, 2, []), T0, 'phone/other'), 'tcn.log.ack').reason).toBe('used');
    expect(ackOf(b.msg('tcn.log.upload', part(code(1), 1, 3, []), T0, 'phone/positive'), 'tcn.log.ack').reason).toBe('used');
    const second = b.msg('tcn.log.upload', part(code(1), 1, 2, heard(TCNS.slice(2, 4), T0)), T0 + 2, 'phone/positive');
    expect(sends(second, 'tcn.log.published')[0]!.body).toMatchObject({ logId: (published[0]!.body as { logId: number }).logId, part: 1 });
    expect(ackOf(b.msg('tcn.log.upload', part(code(2), 0, 1, []), T0 + DAY, 'phone/positive'), 'tcn.log.ack').reason).toBe('expired');
    expect(b.context.counters.logPartsPublished).toBe(2);
    expect(b.context.counters.logPartRetries).toBe(1);
  });
});
