/**
 * Key-server export (issue 4: ≤ 30 s to sign and encode the distribution of
 * 1,000,000 GAEN keys): a day of 15-minute deltas (96 × ~10,417 keys) plus
 * one full dump of all of them, through protocol/keyserver/distribution-publisher.ts
 * with the signer the server uses (@noble suite: RFC 6979 deterministic ECDSA,
 * and — as keyServerDeps wires it — noble's SHA-256 for record ids and names).
 *
 * Also, for where the time goes: the full dump again with a signer that
 * hashes with node:crypto and signs with noble (still deterministic: only
 * ECDSA's nonce needs RFC 6979), and what a client pays to open and verify
 * the full dump (node:crypto suite).
 */
import type { GaenTekRecord } from '../protocol/keyserver/distribution-records.ts';
import { initialPublisherState, publishDelta, publishFull, type DistributionSigner, type PublisherState } from '../protocol/keyserver/distribution-publisher.ts';
import { openDistributionFile } from '../protocol/keyserver/distribution-signing.ts';
import { nobleSuite } from '../protocol/crypto/noble.ts';
import { nodeSuite } from '../services/crypto/node.ts';
import { benchSecrets, configFor, cpuSeconds, KeyBytes, KEYS_PER_UPLOAD, mb, note, round, seconds, T0, uploadKeys } from './keyserver-fixtures.ts';
import type { BenchRow } from './report.ts';

const TARGET_S = 30;
const PERIOD_MS = 15 * 60_000;
const GROUP = 'keyserver/export';

export interface ExportRun {
  readonly keys: number;
  readonly deltas: number;
}

/** `count` distinct GAEN keys, 14 per simulated upload over the day after T0. */
export function gaenKeys(count: number): GaenTekRecord[] {
  const out: GaenTekRecord[] = [];
  const bytes = new KeyBytes();
  for (let u = 0; out.length < count; u++) {
    for (const key of uploadKeys(T0 + u * 1000, bytes.next())) if (out.length < count) out.push(key);
  }
  return out;
}

export function exportBench(run: ExportRun): BenchRow[] {
  const secrets = benchSecrets();
  const limits = configFor(run.keys).limits ?? {};
  const server: DistributionSigner = { crypto: nobleSuite, signingKey: secrets.signingKey, keyId: secrets.keyId };
  const hybrid: DistributionSigner = { ...server, crypto: { ...nobleSuite, sha256: (data) => nodeSuite.sha256(data) } };
  const keys = gaenKeys(run.keys);
  note(`export: ${run.keys} keys generated (${run.keys / KEYS_PER_UPLOAD} uploads' worth); ${run.deltas} deltas + full dump…`);

  let state: PublisherState = initialPublisherState();
  const perDelta = Math.ceil(run.keys / run.deltas);
  let deltaBytes = 0;
  let deltas = 0;
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  for (let d = 0; d < run.deltas; d++) {
    const additions = keys.slice(d * perDelta, (d + 1) * perDelta);
    const periodStart = T0 + d * PERIOD_MS;
    const published = publishDelta(server, state, { createdAt: periodStart + PERIOD_MS, periodStart, periodEnd: periodStart + PERIOD_MS, additions, deletions: [] }, limits);
    state = published.state;
    deltaBytes += published.file.bytes.length;
    deltas++;
  }
  const deltasS = seconds(start);
  const fullStart = process.hrtime.bigint();
  const snapshot = { createdAt: T0 + run.deltas * PERIOD_MS, periodStart: T0, periodEnd: T0 + run.deltas * PERIOD_MS, records: keys };
  const full = publishFull(server, state, snapshot, limits);
  const fullS = seconds(fullStart);
  const totalS = seconds(start);
  const cpuS = cpuSeconds(cpu);

  const hybridStart = process.hrtime.bigint();
  const fullHybrid = publishFull(hybrid, state, snapshot, limits);
  const hybridS = seconds(hybridStart);
  if (fullHybrid.file.name !== full.file.name) throw new Error('bench/keyserver export: node-hashed full dump differs from the noble one');

  const openStart = process.hrtime.bigint();
  const opened = openDistributionFile(nodeSuite, new Map([[secrets.keyId, nodeSuite.p256PublicKey(secrets.signingKey)]]), full.file.name, full.file.bytes, limits);
  const openS = seconds(openStart);
  if (!opened.ok || opened.value.additions.length !== run.keys) throw new Error(`bench/keyserver export: the full dump does not open: ${opened.ok ? 'wrong count' : opened.detail}`);
  note(`export: deltas ${round(deltasS, 2)} s, full ${round(fullS, 2)} s (node-hashed ${round(hybridS, 2)} s), client open ${round(openS, 2)} s`);

  return [
    {
      group: GROUP,
      name: `${deltas} deltas + full dump, ${run.keys.toLocaleString('en-US')} keys`,
      values: { seconds: round(totalS, 2), deltasS: round(deltasS, 2), fullS: round(fullS, 2), keysEncodedPerS: Math.round((2 * run.keys) / totalS), cpuS: round(cpuS, 2) },
      unit: 's',
      ratio: { label: `seconds ÷ ${TARGET_S}`, value: round(totalS / TARGET_S, 2), target: '≤ 1.00' },
    },
    {
      group: GROUP,
      name: 'file sizes',
      values: { deltasMB: mb(deltaBytes), perDeltaKB: round(deltaBytes / deltas / 1000, 1), fullMB: mb(full.file.bytes.length), bytesPerKey: round(full.file.bytes.length / run.keys, 2) },
      unit: '',
    },
    {
      group: GROUP,
      name: 'full dump: noble vs node SHA-256',
      values: { nobleS: round(fullS, 2), nodeHashS: round(hybridS, 2) },
      unit: 's',
      ratio: { label: 'noble / node-hashed', value: round(fullS / hybridS, 2) },
    },
    { group: GROUP, name: 'client: open + verify full dump', values: { seconds: round(openS, 2), keysPerS: Math.round(run.keys / openS) }, unit: 'node:crypto' },
  ];
}
