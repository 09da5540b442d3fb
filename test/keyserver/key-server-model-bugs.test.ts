/**
 * Four key-server ledger bugs the reference model
 * (test/keyserver/key-server-model.test.ts) found, each pinned by the smallest
 * case. All four are fixed in actors/key-server/ (ledger.ts `liveSince` and
 * `sweepExpired`, submissions.ts `refuseRecords`), and the model's random
 * sequences now reach each case too; the comments say what went wrong before.
 */
import { describe, expect, it } from 'vitest';
import type { KeyServerConfig } from '../../actors/key-server/key-server-state.ts';
import type { DiagnosisRecord } from '../../protocol/keyserver/distribution-records.ts';
import type { AdminResult, KeysStatusReply, TrackingRef } from '../../protocol/keyserver/messages.ts';
import { issueUploadCode } from '../../protocol/keyserver/upload-code.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import { DAY, KeyServerDriver, MINUTE, PEPPER, registerBody, replyBody, T0, tekAt, testDeps, uploadBody } from '../support/key-server-fixtures.ts';

const HOUR = 60 * MINUTE;

describe('key server: bugs found by the model', () => {
  function server(config: Partial<KeyServerConfig> = {}): KeyServerDriver {
    const ks = new KeyServerDriver(testDeps(), config);
    ks.start(T0);
    ks.msg('keys.provider.add', { providerId: 'clinic-a' }, T0, 'operator/op');
    return ks;
  }
  let n = 0;
  function code(ks: KeyServerDriver, at: number): string {
    const issued = issueUploadCode(nodeSuite, { providerId: 'clinic-a', randomBytes: nodeSuite.sha256(Uint8Array.of(++n)).slice(0, 10), pepper: PEPPER, issuedAt: at });
    ks.msg('keys.codes.register', registerBody(issued), at, 'operator/op');
    return issued.text;
  }
  function upload(ks: KeyServerDriver, records: DiagnosisRecord[], at: number): string {
    return replyBody<TrackingRef>(ks.msg('keys.upload', uploadBody(code(ks, at), records), at, `phone/${at}`), 'keys.upload.ack').trackingId;
  }
  const statusOf = (ks: KeyServerDriver, trackingId: string, at: number): KeysStatusReply =>
    replyBody<KeysStatusReply>(ks.msg('keys.status', { trackingId }, at, 'phone/asker'), 'keys.status.reply');

  it('bug: withdrawing an upload whose TCN report expired removes the same report re-uploaded later by another live upload', () => {
    const ks = server();
    const report: DiagnosisRecord = { protocol: 'tcn-report', report: new Uint8Array(150).fill(7) };
    const first = upload(ks, [report], T0 + 1);
    // Ticks past the 14-day retention: the report leaves distribution (refs → 0, record deleted).
    for (let t = T0 + 6 * HOUR; t <= T0 + 15 * DAY; t += 6 * HOUR) ks.tick(t);
    expect(ks.context.ledger.records.size).toBe(0);
    expect(statusOf(ks, first, T0 + 15 * DAY).state).toBe('expired');
    // The same report uploaded again (TCN reports expire from their upload time): live again, refs 1.
    const second = upload(ks, [report], T0 + 15 * DAY + 1);
    expect(ks.context.ledger.records.size).toBe(1);
    // The provider withdraws the first, expired upload (allowed: its state is still 'accepted').
    const result = replyBody<AdminResult>(ks.msg('keys.upload.withdraw', { providerId: 'clinic-a', trackingId: first }, T0 + 15 * DAY + 2, 'operator/op'), 'keys.admin.result');
    expect(result.ok).toBe(true);
    // The second upload still holds its report. Before the fix, withdraw() dropped a reference the first
    // upload no longer held (sweepExpired zeroed it), so the report left distribution and the second,
    // one-millisecond-old upload read 'expired'.
    expect(ks.context.ledger.records.size).toBe(1);
    expect(statusOf(ks, second, T0 + 15 * DAY + 3)).toMatchObject({ state: 'accepted', records: 1 });
  });

  it('bug: a publish tick off a period boundary (a late timer) keeps TCN reports that expired since the last boundary', () => {
    const ks = server();
    const report: DiagnosisRecord = { protocol: 'tcn-report', report: new Uint8Array(150).fill(9) };
    const id = upload(ks, [report], T0 + 1); // past retention from T0 + 14 days + 1 ms
    for (let t = T0 + 6 * HOUR; t <= T0 + 14 * DAY; t += 6 * HOUR) ks.tick(t);
    expect(ks.context.ledger.records.size).toBe(1);
    // The timer due at the next boundary fires five minutes late (publication.ts: "a wall-clock timer fires a little late").
    ks.tick(T0 + 14 * DAY + 5 * MINUTE);
    // Gone, a deletion in this tick's delta (publication.ts step 1, Ledger.sweepExpired: "every record past retention
    // at `now`"). Before the fix, sweepExpired only visited buckets ≤ floor(now / periodMs), and the report's bucket is
    // ceil(expiresAt / periodMs), one more: it stayed in distribution until the next tick.
    expect(ks.context.ledger.records.size).toBe(0);
    expect(statusOf(ks, id, T0 + 14 * DAY + 6 * MINUTE).state).toBe('expired');
  });

  it('bug: the capacity check counts a record repeated within one upload once per copy', () => {
    const ks = server({ maxRecords: 2 });
    // Two distinct new records, one of them twice: distribution would hold 2 ≤ maxRecords.
    const id = upload(ks, [tekAt(1, T0), tekAt(1, T0), tekAt(2, T0)], T0 + 1);
    expect(statusOf(ks, id, T0 + 2)).toMatchObject({ state: 'accepted' });
    expect(ks.context.ledger.records.size).toBe(2);
  });

  it('bug: the capacity check counts stale records, which never enter distribution', () => {
    const ks = server({ maxRecords: 1 });
    // One fresh key and two past retention (skipped as stale): distribution would hold 1 ≤ maxRecords.
    const id = upload(ks, [tekAt(1, T0, 1), tekAt(2, T0, 20), tekAt(3, T0, 21)], T0 + 1);
    expect(statusOf(ks, id, T0 + 2)).toMatchObject({ state: 'accepted', records: 1 });
    expect(ks.context.ledger.records.size).toBe(1);
  });
});
