/**
 * TCN backend messages (protocol/tcn/messages.ts): round trips, the typed rejections, encoder
 * misuse, the O(1) contact-log check agreeing with decodeTcnContactLog, and fuzz — random and
 * TCN-shaped wire bodies into every decoder and random byte strings through unpackWire give
 * verdicts only: accepted, or a rejection of that codec with a documented reason.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Verdict } from '../../protocol/errors.ts';
import { formatUploadCode, parseUploadCode, UPLOAD_CODE_REJECTION_REASONS, type UploadCode } from '../../protocol/keyserver/upload-code.ts';
import { decodeTcnContactLog, encodeTcnContactLog, TCN_CONTACT_LOG_REJECTION_REASONS, type TcnContact } from '../../protocol/tcn/contact-log.ts';
import {
  contactLogProblem,
  tcnContactsAckCodec,
  tcnContactsUploadCodec,
  tcnExposureNotifyCodec,
  tcnLogAckCodec,
  tcnLogPublishedCodec,
  tcnLogUploadCodec,
  tcnMessages,
  tcnReportAckCodec,
  tcnReportUploadCodec,
  TCN_MAX_LOG_ENTRIES_PER_MESSAGE,
  TCN_MESSAGE_CODECS,
  TCN_MESSAGE_REJECTION_REASONS,
} from '../../protocol/tcn/messages.ts';
import { createTcnReport, TCN_MEMO_TYPES, TCN_REPORT_REJECTION_REASONS } from '../../protocol/tcn/report.ts';
import { BODY_REJECTION_REASONS } from '../../protocol/wire/body.ts';
import { packWire, unpackWire, type WireMap, type WireValue } from '../../protocol/wire/msgpack.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { wireValueArb } from '../support/key-server-arbitraries.ts';
import { misuseField } from '../support/misuse.ts';
import { prng, seededRng } from '../support/test-rng.ts';

const REASONS: ReadonlySet<string> = new Set([...BODY_REJECTION_REASONS, ...TCN_MESSAGE_REJECTION_REASONS]);
const TYPES = TCN_MESSAGE_CODECS.map((c) => c.type);
const registry = tcnMessages();
const reasonOf = (v: Verdict<unknown>): string => (v.ok ? 'accepted' : v.reason);

function code(seed: number): UploadCode {
  const parsed = parseUploadCode(formatUploadCode(seededRng(seed).bytes(10)));
  if (!parsed.ok) throw new Error(parsed.detail);
  return parsed.value;
}
const contacts = (n: number, seed = 1): TcnContact[] => {
  const rng = seededRng(seed);
  return Array.from({ length: n }, (_, i) => ({ tcn: rng.bytes(16), atMinute: 29_000_000 + i, rssiDbm: -40 - (i % 60) }));
};
const LOG = encodeTcnContactLog(contacts(20));
const REPORT = createTcnReport(nodeSuite, seededRng(9).bytes(32), 3, 7, { type: TCN_MEMO_TYPES.covidWatchV1, data: new TextEncoder().encode('positive') });

/** Problem with a verdict of `type`'s decoder, or undefined. */
function problem(type: string, v: Verdict<unknown>): string | undefined {
  if (v.ok) return undefined;
  if (v.codec !== (v.reason === 'unknown-type' ? 'message' : type)) return `codec ${v.codec}`;
  if (!REASONS.has(v.reason) && v.reason !== 'unknown-type') return `reason ${v.reason}`;
  if (typeof v.detail !== 'string' || v.detail.length === 0) return 'no detail';
  if (v.reason === 'bad-code' && !UPLOAD_CODE_REJECTION_REASONS.some((r) => v.detail.startsWith(`${r}:`))) return `bad-code detail ${v.detail}`;
  if (v.reason === 'bad-log' && (v.field !== 'log' || !TCN_CONTACT_LOG_REJECTION_REASONS.some((r) => v.detail.startsWith(`${r}:`)))) return `bad-log ${v.detail}`;
  if (v.reason === 'bad-report' && !TCN_REPORT_REJECTION_REASONS.some((r) => v.detail.startsWith(`${r}:`))) return `bad-report ${v.detail}`;
  return undefined;
}

describe('round trips', () => {
  it('every message', () => {
    const c = code(3);
    const cases: [(typeof TCN_MESSAGE_CODECS)[number], unknown][] = [
      [tcnContactsUploadCodec, { batch: 7, log: LOG }],
      [tcnContactsAckCodec, { batch: 7, accepted: true, reason: '' }],
      [tcnContactsAckCodec, { batch: 0, accepted: false, reason: 'capacity' }],
      [tcnReportUploadCodec, { code: c, reports: [REPORT, REPORT] }],
      [tcnReportAckCodec, { accepted: false, reason: 'bad-signature' }],
      [tcnExposureNotifyCodec, { reportId: 2 ** 32 - 1, log: LOG }],
      [tcnLogUploadCodec, { code: c, part: 1, parts: 3, log: LOG }],
      [tcnLogAckCodec, { part: 1, accepted: false, reason: 'used' }],
      [tcnLogPublishedCodec, { logId: 4, part: 0, parts: 1, log: LOG }],
    ];
    for (const [codec, value] of cases) expect(codec.decode(codec.encode(value as never))).toEqual({ ok: true, value });
  });

  it('a code typed in lower case with spaces decodes to its canonical form', () => {
    const wire = unpackWire(packWire({ code: ` ${code(4).text.toLowerCase()} `, part: 0, parts: 1, log: LOG }), 'test');
    const v = wire.ok ? tcnLogUploadCodec.decode(wire.value) : wire;
    expect(v.ok && v.value.code.text).toBe(code(4).text);
  });

  it('the registry knows the eight types and rejects others', () => {
    expect(TYPES).toEqual(['tcn.contacts.upload', 'tcn.report.upload', 'tcn.log.upload', 'tcn.contacts.ack', 'tcn.report.ack', 'tcn.exposure.notify', 'tcn.log.ack', 'tcn.log.published']);
    expect(registry.decodeBody('tcn.nope', {})).toMatchObject({ ok: false, codec: 'message', reason: 'unknown-type' });
  });
});

describe('typed rejections', () => {
  it.each([
    ['not a map', [1] as WireValue, 'not-a-map', undefined],
    ['log version 2', { batch: 1, log: Uint8Array.from(LOG, (b, i) => (i === 0 ? 2 : b)) }, 'bad-log', 'log'],
    ['log one byte short', { batch: 1, log: LOG.subarray(1) }, 'bad-log', 'log'],
    ['log of 4 bytes', { batch: 1, log: new Uint8Array(4) }, 'field-length', 'log'],
    ['batch negative', { batch: -1, log: LOG }, 'field-range', 'batch'],
    ['batch above u32', { batch: 2 ** 32, log: LOG }, 'field-range', 'batch'],
    ['an extra field', { batch: 1, log: LOG, x: 1 }, 'unknown-field', 'x'],
  ])('tcn.contacts.upload: %s', (_name, wire, reason, field) => {
    const v = tcnContactsUploadCodec.decode(wire);
    expect(v.ok ? 'accepted' : [v.codec, v.reason, v.field]).toEqual(['tcn.contacts.upload', reason, field]);
  });

  it('a log over 10,000 entries is refused (bad-log too-many) or too long for the field', () => {
    const big = encodeTcnContactLog(contacts(TCN_MAX_LOG_ENTRIES_PER_MESSAGE + 1));
    expect(reasonOf(tcnContactsUploadCodec.decode({ batch: 1, log: big }))).toBe('field-length');
    const claim = new Uint8Array(LOG);
    new DataView(claim.buffer).setUint32(1, TCN_MAX_LOG_ENTRIES_PER_MESSAGE + 1, true);
    const v = tcnContactsUploadCodec.decode({ batch: 1, log: claim });
    expect(v.ok ? '' : v.detail.split(':')[0]).toBe('too-many');
  });

  it('tcn.report.upload: bad code, no report, a malformed report, too many reports', () => {
    expect(reasonOf(tcnReportUploadCodec.decode({ code: 'NOT-A-CODE', reports: [{ report: REPORT }] }))).toBe('bad-code');
    expect(reasonOf(tcnReportUploadCodec.decode({ code: code(1).text, reports: [] }))).toBe('field-length');
    const badMemo = Uint8Array.from(REPORT, (b, i) => (i === 68 ? 9 : b));
    const v = tcnReportUploadCodec.decode({ code: code(1).text, reports: [{ report: REPORT }, { report: badMemo }] });
    expect(v.ok ? 'accepted' : [v.reason, v.field, v.detail.split(':')[0]]).toEqual(['bad-report', 'reports[1].report', 'unknown-memo-type']);
    expect(reasonOf(tcnReportUploadCodec.decode({ code: code(1).text, reports: Array.from({ length: 31 }, () => ({ report: REPORT })) }))).toBe('too-many');
    expect(reasonOf(tcnReportUploadCodec.decode({ code: code(1).text, reports: [{ report: REPORT.subarray(0, 133) }] }))).toBe('field-length');
  });

  it('log parts: part ≥ parts, zero parts, more than 14', () => {
    expect(reasonOf(tcnLogUploadCodec.decode({ code: code(1).text, part: 2, parts: 2, log: LOG }))).toBe('bad-part');
    expect(reasonOf(tcnLogPublishedCodec.decode({ logId: 1, part: 0, parts: 0, log: LOG }))).toBe('field-range');
    expect(reasonOf(tcnLogPublishedCodec.decode({ logId: 1, part: 0, parts: 15, log: LOG }))).toBe('field-range');
  });

  it('acks: reason empty exactly when accepted, only listed reasons', () => {
    expect(reasonOf(tcnContactsAckCodec.decode({ batch: 1, accepted: true, reason: 'capacity' }))).toBe('field-format');
    expect(reasonOf(tcnReportAckCodec.decode({ accepted: false, reason: '' }))).toBe('field-format');
    expect(reasonOf(tcnLogAckCodec.decode({ part: 0, accepted: false, reason: 'capacity' }))).toBe('field-format');
  });

  it('encoders check through the decoder (MisuseError names the field)', () => {
    expect(misuseField(() => tcnContactsUploadCodec.encode({ batch: 1.5, log: LOG }))).toBe('value.batch');
    expect(misuseField(() => tcnLogPublishedCodec.encode({ logId: 1, part: 3, parts: 2, log: LOG }))).toBe('value.part');
    expect(misuseField(() => tcnReportUploadCodec.encode({ code: code(1), reports: [] }))).toBe('value.reports');
  });
});

describe('contactLogProblem agrees with decodeTcnContactLog', () => {
  it('on random and mutated logs', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }),
          fc.record({ n: fc.integer({ min: 0, max: 8 }), cut: fc.integer({ min: -3, max: 3 }), version: fc.integer({ min: 0, max: 3 }) }).map(({ n, cut, version }) => {
            const log = encodeTcnContactLog(contacts(n));
            const out = cut >= 0 ? Uint8Array.from([...log, ...new Uint8Array(cut)]) : log.slice(0, Math.max(0, log.length + cut));
            if (out.length > 0 && version !== 1) out[0] = version;
            return out;
          }),
        ),
        (bytes) => {
          const quick = contactLogProblem(bytes);
          const full = decodeTcnContactLog(bytes, { maxEntries: TCN_MAX_LOG_ENTRIES_PER_MESSAGE });
          return full.ok ? quick === undefined : quick?.startsWith(`${full.reason}:`) === true;
        },
      ),
      { numRuns: 3000, seed: 3 },
    );
  });
});

describe('fuzz: hostile bodies give typed verdicts only', () => {
  const logArb = fc.oneof(fc.uint8Array({ maxLength: 80 }), fc.constant(LOG), fc.integer({ min: 0, max: LOG.length - 1 }).map((i) => Uint8Array.from(LOG, (b, k) => (k === i ? b ^ 0xff : b))));
  const reportArb = fc.oneof(fc.uint8Array({ minLength: 130, maxLength: 140 }), fc.constant(REPORT), fc.integer({ min: 0, max: REPORT.length - 1 }).map((i) => Uint8Array.from(REPORT, (b, k) => (k === i ? b ^ 0x5a : b))));
  const field: fc.Arbitrary<WireValue> = fc.oneof(wireValueArb, logArb, fc.constantFrom(code(1).text, code(2).text, 'x'), fc.array(fc.record({ report: reportArb }), { maxLength: 3 }), fc.integer({ min: -2, max: 20 }));
  const names = fc.constantFrom('batch', 'log', 'code', 'reports', 'part', 'parts', 'logId', 'reportId', 'accepted', 'reason', 'x');
  const bodyArb: fc.Arbitrary<WireValue> = fc.oneof(
    { weight: 4, arbitrary: fc.array(fc.tuple(names, field), { maxLength: 5 }).map((entries): WireMap => Object.fromEntries(entries)) },
    { weight: 2, arbitrary: fc.record({ batch: fc.nat(), log: logArb }) },
    { weight: 2, arbitrary: fc.record({ code: fc.constantFrom(code(5).text, 'ZZZZ-ZZZZ-ZZZZ-ZZZZ-Z'), reports: fc.array(fc.record({ report: reportArb }), { maxLength: 3 }) }) },
    { weight: 2, arbitrary: fc.record({ code: fc.constant(code(6).text), part: fc.integer({ min: -1, max: 15 }), parts: fc.integer({ min: -1, max: 15 }), log: logArb }) },
    { weight: 1, arbitrary: wireValueArb },
  );

  it('10,000 bodies into every decoder', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(fc.constantFrom(...TYPES), bodyArb, (type, body) => {
        const v = registry.decodeBody(type, body);
        seen.add(reasonOf(v));
        return problem(type, v) === undefined;
      }),
      { numRuns: 10_000, seed: 11 },
    );
    for (const r of ['accepted', 'not-a-map', 'field-type', 'field-length', 'field-range', 'unknown-field', 'bad-log', 'bad-report', 'bad-code', 'bad-part']) expect(seen).toContain(r);
  });

  it('3,000 random byte strings through unpackWire and every decoder', () => {
    const rand = prng(29);
    for (let i = 0; i < 3000; i++) {
      const bytes = Uint8Array.from({ length: 1 + Math.floor(rand() * 64) }, () => Math.floor(rand() * 256));
      if (i % 3 === 0) bytes[0] = 0x80 | (bytes[0]! & 0x0f);
      const wire = unpackWire(bytes, 'fuzz');
      if (!wire.ok) continue;
      for (const type of TYPES) expect(problem(type, registry.decodeBody(type, wire.value))).toBeUndefined();
    }
  });
});
