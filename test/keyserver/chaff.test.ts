/**
 * Chaff (issue 4 "Submission"): a fake upload is indistinguishable on the
 * wire from a real one — same topic, same envelope size (records padded to one
 * size bucket) — and the server answers it through the same path with the
 * same ack shape (key-server.test.ts: accepted and discarded).
 */
import { describe, expect, it } from 'vitest';
import { decodeEnvelope } from '../../protocol/wire/envelope.ts';
import { MemoryHub } from '../../services/bus/memory.ts';
import { KeyServerClient, UPLOAD_SIZE_BUCKET_BYTES } from '../../services/keyserver/client.ts';
import { freshCode, T0, tekAt } from '../support/key-server-fixtures.ts';
import type { DiagnosisRecord } from '../../protocol/keyserver/distribution-records.ts';

async function published(send: (client: KeyServerClient) => Promise<unknown>): Promise<{ topic: string; size: number; bodySize: number }> {
  const hub = new MemoryHub();
  const spy = hub.connect('spy');
  const seen: { topic: string; size: number; bodySize: number }[] = [];
  await spy.subscribe('tc/v1/key-server/ks1/uploads/+', (topic, payload) => {
    const envelope = decodeEnvelope(payload);
    const body = envelope.ok ? (envelope.value.body as { records: Uint8Array; padding: Uint8Array }) : undefined;
    seen.push({ topic, size: payload.length, bodySize: (body?.records.length ?? 0) + (body?.padding.length ?? 0) });
  });
  const client = await KeyServerClient.connect(hub.connect('phone.p7'), { serverId: 'ks1', address: 'phone/p7', inbox: 'tc/v1/phone/p7/inbox', timeoutMs: 50 });
  await send(client).catch(() => undefined); // no server: the request times out, the bytes are what matters
  await hub.idle();
  await client.close();
  expect(seen).toHaveLength(1);
  return seen[0] as { topic: string; size: number; bodySize: number };
}

describe('chaff uploads look like real ones on the wire', () => {
  const cases: [string, DiagnosisRecord[]][] = [
    ['14 GAEN keys', Array.from({ length: 14 }, (_, i) => tekAt(i, T0, 1 + (i % 13)))],
    ['3 GAEN keys', Array.from({ length: 3 }, (_, i) => tekAt(i, T0))],
    ['a TCN report', [{ protocol: 'tcn-report', report: new Uint8Array(200).fill(9) }]],
  ];
  for (const [name, records] of cases) {
    it(`${name}: same topic, same size, records + padding fill one ${UPLOAD_SIZE_BUCKET_BYTES}-byte bucket`, async () => {
      const real = await published((c) => c.upload(freshCode('clinic-a', T0).text, records));
      const chaff = await published((c) => c.chaff(records));
      expect(chaff.topic).toBe(real.topic);
      expect(chaff.size).toBe(real.size);
      expect(real.bodySize % UPLOAD_SIZE_BUCKET_BYTES).toBe(0);
      expect(chaff.bodySize).toBe(real.bodySize);
    });
  }
});
