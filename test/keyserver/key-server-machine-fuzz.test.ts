/**
 * Issue 4 acceptance, "≥ 10,000 malformed submissions → typed rejections
 * only", at the second gate a submission passes: the machine
 * (actors/key-server/), which sees only decoded bodies. Hostile uploads of
 * valid shape (random record bytes, unknown, used and expired codes, chaff,
 * random senders) never throw or stop it, each gets exactly one ack, its
 * status reason is a documented one, and the ledger's invariants hold. The
 * first gate, the codecs, is fuzzed in key-server-codec-fuzz.test.ts.
 *
 * Seeds are fixed, so the counts and the reasons covered are reproducible.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Effect } from '../../actors/effects.ts';
import type { KeyServerConfig } from '../../actors/key-server/key-server-state.ts';
import { canonicalRecordBytes, type DiagnosisRecord } from '../../protocol/keyserver/distribution-records.ts';
import {
  keysStatusReplyCodec,
  keysUploadAckCodec,
  keysUploadCodec,
  MAX_UPLOAD_RECORD_BYTES,
  MAX_UPLOAD_RECORDS,
  TRACKING_ID_PATTERN,
  type AdminResult,
  type KeysStatusReply,
  type KeysUpload,
} from '../../protocol/keyserver/messages.ts';
import { issueUploadCode } from '../../protocol/keyserver/upload-code.ts';
import type { WireMap } from '../../protocol/wire/msgpack.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { codeText, filled, gaenOfDay, ledgerProblems, mutateBytes, packedRecordsArb, UPLOAD_REJECTION_REASONS, UPLOAD_STATUS_REASONS } from '../support/key-server-arbitraries.ts';
import { DAY, KeyServerDriver, MINUTE, packRecords, PEPPER, registerBody, replyBody, REPLY_TO, T0, testDeps } from '../support/key-server-fixtures.ts';
import { prng } from '../support/test-rng.ts';

const HOUR = 60 * MINUTE;
const TODAY = Math.floor(T0 / DAY);

describe('fuzz: hostile uploads of valid shape → the key-server machine stays up and answers each exactly once', () => {
  const CONFIG: Partial<KeyServerConfig> = { periodMs: HOUR, fullEveryMs: DAY, retentionMs: 2 * DAY, statusMemory: 48, maxRecords: 16, lockoutKeys: 16 };
  const RUNS = 200;
  const UPLOADS_PER_RUN = 50;
  const BAD_TCN = 0xba;
  /** TCN reports whose first byte is BAD_TCN fail verification (deps.verifyTcnReport). */
  const verifyTcnReport = (report: Uint8Array): boolean => report[0] !== BAD_TCN;

  type CodeChoice = { readonly kind: 'registered'; readonly i: number } | { readonly kind: 'unknown'; readonly bytes: Uint8Array } | { readonly kind: 'replay'; readonly i: number };
  type RecordsChoice =
    | { readonly kind: 'valid'; readonly bytes: Uint8Array }
    | { readonly kind: 'random'; readonly bytes: Uint8Array }
    | { readonly kind: 'mutated'; readonly bytes: Uint8Array; readonly seed: number }
    | { readonly kind: 'shared'; readonly i: number }
    | { readonly kind: 'too-many' }
    | { readonly kind: 'future' }
    | { readonly kind: 'bad-tcn'; readonly report: Uint8Array };
  interface Hostile {
    readonly code: CodeChoice;
    readonly records: RecordsChoice;
    readonly chaff: boolean;
    readonly from: string;
    readonly dt: number;
    readonly padding: Uint8Array;
  }

  const codeChoice: fc.Arbitrary<CodeChoice> = fc.oneof(
    { weight: 5, arbitrary: fc.nat(40).map((i): CodeChoice => ({ kind: 'registered', i })) },
    { weight: 3, arbitrary: fc.uint8Array({ minLength: 10, maxLength: 10 }).map((bytes): CodeChoice => ({ kind: 'unknown', bytes })) },
    { weight: 2, arbitrary: fc.nat().map((i): CodeChoice => ({ kind: 'replay', i })) },
  );
  const recordsChoice: fc.Arbitrary<RecordsChoice> = fc.oneof(
    { weight: 5, arbitrary: packedRecordsArb(TODAY, 12).map((bytes): RecordsChoice => ({ kind: 'valid', bytes })) },
    { weight: 2, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 400 }).map((bytes): RecordsChoice => ({ kind: 'random', bytes })) },
    { weight: 3, arbitrary: fc.record({ bytes: packedRecordsArb(TODAY, 12), seed: fc.integer() }).map(({ bytes, seed }): RecordsChoice => ({ kind: 'mutated', bytes, seed })) },
    { weight: 2, arbitrary: fc.nat().map((i): RecordsChoice => ({ kind: 'shared', i })) },
    { weight: 1, arbitrary: fc.constant<RecordsChoice>({ kind: 'too-many' }) },
    { weight: 1, arbitrary: fc.constant<RecordsChoice>({ kind: 'future' }) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 133, maxLength: 388 }).map((rest): RecordsChoice => ({ kind: 'bad-tcn', report: Uint8Array.of(BAD_TCN, ...rest) })) },
  );
  const hostileArb: fc.Arbitrary<Hostile> = fc.record({
    code: codeChoice,
    records: recordsChoice,
    chaff: fc.nat(4).map((n) => n === 0),
    from: fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom('phone/guesser', 'phone/guesser', 'phone/guesser', 'phone/p2', 'phone/p3', '') },
      { weight: 2, arbitrary: fc.string({ maxLength: 40 }) },
      { weight: 1, arbitrary: fc.constantFrom('x'.repeat(300), '\u{1F600}'.repeat(200), 'phone/\u0000') },
    ),
    dt: fc.oneof(
      { weight: 3, arbitrary: fc.constant(0) },
      { weight: 3, arbitrary: fc.integer({ min: 1, max: MINUTE }) },
      { weight: 2, arbitrary: fc.integer({ min: 1, max: 20 * MINUTE }) },
      { weight: 1, arbitrary: fc.integer({ min: 1, max: 3 * HOUR }) },
    ),
    padding: fc.uint8Array({ maxLength: 32 }),
  });

  const ackOf = (effects: readonly Effect[]): string => {
    expect(effects).toHaveLength(1);
    const [send] = effects;
    if (send?.type !== 'bus.send') throw new Error(`expected one bus.send, got ${effects.map((e) => e.type).join(', ')}`);
    expect(send.msgType).toBe('keys.upload.ack');
    expect(send.topic).toBe(REPLY_TO);
    const ack = keysUploadAckCodec.decode(send.body);
    if (!ack.ok) throw new Error(ack.detail);
    expect(Object.keys(send.body as WireMap)).toEqual(['trackingId']);
    expect(ack.value.trackingId).toMatch(TRACKING_ID_PATTERN);
    return ack.value.trackingId;
  };
  const statusOf = (effects: readonly Effect[]): KeysStatusReply => {
    const send = effects.find((e) => e.type === 'bus.send' && e.msgType === 'keys.status.reply');
    if (send?.type !== 'bus.send' || effects.length !== 1) throw new Error('expected one keys.status.reply');
    const reply = keysStatusReplyCodec.decode(send.body);
    if (!reply.ok) throw new Error(reply.detail);
    return reply.value;
  };

  it(`${(RUNS * UPLOADS_PER_RUN).toLocaleString('en-US')} decoded-but-hostile uploads (${RUNS} servers × ${UPLOADS_PER_RUN}): never throw or stop, one ack each, documented reasons, ledger invariants hold`, () => {
    const reasons = new Map<string, number>();
    const states = new Map<string, number>();
    let uploads = 0;
    let run = 0;
    fc.assert(
      fc.property(fc.array(hostileArb, { minLength: UPLOADS_PER_RUN, maxLength: UPLOADS_PER_RUN }), (hostile) => {
        run++;
        const ks = new KeyServerDriver(testDeps(verifyTcnReport), CONFIG);
        const errors: unknown[] = [];
        ks.actor.subscribe({ error: (err: unknown) => errors.push(err) });
        const config = ks.context.config;
        const alive = (): void => {
          expect(errors).toEqual([]);
          expect(ks.actor.getSnapshot().status).toBe('active');
          expect(ks.actor.getSnapshot().value).toBe('running');
        };
        let now = T0;
        ks.start(now);
        for (const p of ['clinic-a', 'clinic-b']) ks.msg('keys.provider.add', { providerId: p }, now, 'operator/op');
        // 16 codes of clinic-a (8 living a day, 8 an hour), 8 of clinic-b (revoked retroactively halfway).
        const codes = Array.from({ length: 24 }, (_, i) => {
          const providerId = i < 16 ? 'clinic-a' : 'clinic-b';
          const bytes = nodeSuite.sha256(new TextEncoder().encode(`fuzz ${run} ${i}`)).slice(0, 10);
          const issued = issueUploadCode(nodeSuite, { providerId, randomBytes: bytes, pepper: PEPPER, issuedAt: now, lifetimeMs: i % 16 < 8 ? DAY : HOUR });
          expect(replyBody<AdminResult>(ks.msg('keys.codes.register', registerBody(issued), now, 'operator/op'), 'keys.admin.result').ok).toBe(true);
          return issued.text;
        });
        const sent: KeysUpload[] = [];
        const issuedIds = new Set<string>();
        alive();
        hostile.forEach((h, step) => {
          // Publish ticks at every period boundary crossed, as the host timer would fire them.
          const target = now + h.dt;
          for (let b = (Math.floor(now / HOUR) + 1) * HOUR; b <= target; b += HOUR) {
            const effects = ks.tick(b);
            expect(effects.filter((e) => e.type === 'timer.set')).toHaveLength(1);
            alive();
          }
          now = target;
          if (step === UPLOADS_PER_RUN / 2) {
            ks.msg('keys.provider.revoke', { providerId: 'clinic-b', retroactive: true, since: T0 }, now, 'operator/op');
          }
          const replayed = h.code.kind === 'replay' && sent.length > 0 ? sent[h.code.i % sent.length] : undefined;
          const body = replayed ?? buildUpload(h, codes, sent, now);
          const decoded = keysUploadCodec.decode(keysUploadCodec.encode(body));
          if (!decoded.ok) throw new Error(decoded.detail);
          sent.push(decoded.value);
          const retriesBefore = ks.context.ledger.counters.uploadRetries;
          const trackingId = ackOf(ks.msg('keys.upload', decoded.value, now, h.from));
          uploads++;
          alive();
          // A retry of an accepted upload gets the original id; anything else a fresh one.
          if (ks.context.ledger.counters.uploadRetries > retriesBefore) expect(issuedIds.has(trackingId)).toBe(true);
          else expect(issuedIds.has(trackingId)).toBe(false);
          issuedIds.add(trackingId);
          const status = statusOf(ks.msg('keys.status', { trackingId }, now, h.from));
          expect(status.trackingId).toBe(trackingId);
          expect(UPLOAD_STATUS_REASONS).toContain(status.reason);
          expect(status.state).not.toBe('unknown');
          if (status.state === 'rejected') expect(UPLOAD_REJECTION_REASONS).toContain(status.reason);
          if (status.state === 'accepted' || status.state === 'expired') expect(status.reason).toBe('');
          if (status.state === 'withdrawn') expect(['provider-revoked', 'withdrawn-by-provider']).toContain(status.reason);
          reasons.set(status.reason, (reasons.get(status.reason) ?? 0) + 1);
          states.set(status.state, (states.get(status.state) ?? 0) + 1);
          expect(ledgerProblems(ks.context.ledger, config)).toEqual([]);
        });
        ks.tick((Math.floor(now / HOUR) + 1) * HOUR);
        alive();
        expect(ledgerProblems(ks.context.ledger, config)).toEqual([]);
        expect(ks.context.ledger.counters.uploadsReceived).toBe(UPLOADS_PER_RUN);
      }),
      { numRuns: RUNS, seed: 4_100_004 },
    );
    expect(uploads).toBeGreaterThanOrEqual(10_000);
    // Every rejection path of submissions.ts was exercised.
    for (const r of UPLOAD_REJECTION_REASONS) expect([...reasons.keys()]).toContain(r);
    for (const s of ['accepted', 'rejected', 'withdrawn']) expect([...states.keys()]).toContain(s);
  }, 60_000);

  function buildUpload(h: Hostile, codes: readonly string[], sent: readonly KeysUpload[], now: number): KeysUpload {
    const text = h.code.kind === 'registered' ? (codes[h.code.i % codes.length] ?? '') : h.code.kind === 'unknown' ? codeText(h.code.bytes) : (codes[h.code.i % codes.length] ?? '');
    const today = Math.floor(now / DAY);
    let records: Uint8Array;
    switch (h.records.kind) {
      case 'valid':
      case 'random':
        records = h.records.bytes;
        break;
      case 'mutated':
        records = mutateBytes(h.records.bytes, prng(h.records.seed));
        break;
      case 'shared':
        records = sent.length > 0 ? (sent[h.records.i % sent.length]?.records ?? Uint8Array.of(0)) : Uint8Array.of(0);
        break;
      case 'too-many':
        records = packRecords(Array.from({ length: MAX_UPLOAD_RECORDS + 1 }, (_, i) => gaenOfDay(filled(16, i), today - 1)));
        break;
      case 'future':
        records = packRecords([gaenOfDay(filled(16, 0xfe), today - 1), gaenOfDay(filled(16, 0xff), today + 2)]);
        break;
      case 'bad-tcn':
        records = canonicalRecordBytes({ protocol: 'tcn-report', report: h.records.report } satisfies DiagnosisRecord);
        break;
    }
    if (records.length === 0) records = Uint8Array.of(0x01);
    if (records.length > MAX_UPLOAD_RECORD_BYTES) records = records.subarray(0, MAX_UPLOAD_RECORD_BYTES);
    const wire = { code: text, records, chaff: h.chaff, padding: h.padding };
    const decoded = keysUploadCodec.decode(wire);
    if (!decoded.ok) throw new Error(`test bug: ${decoded.detail}`);
    return decoded.value;
  }
});
