/**
 * `tracecity proto export verify` as a user runs it (`node bin/tracecity.js
 * …` in child processes): the two SPECS §1.7 sample exports
 * (test/vectors/gaen-export.json, wrapped in zips here: the vector file holds
 * export.bin and export.sig, not the archives) verify with exit 0 and their
 * keys; rejected exports are results (`ok:false`, exit 0), as for `proto
 * token verify`; unreadable files and bad keys exit 2 naming the flag. Every
 * process starts in beforeAll, a few at a time; the cases' in-process
 * counterparts are in test/keyserver/gaen-export.test.ts.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Zip, ZipDeflate } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeExportZip } from '../../protocol/keyserver/gaen-export-zip.ts';
import { runTracecity, type CliResult } from '../support/processes.ts';
import vectors from '../vectors/gaen-export.json' with { type: 'json' };

/** Processes in flight at once: CI machines have few cores, and each start is CPU-bound (tsx). */
const CONCURRENCY = 4;

const unhex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
const [first, second] = vectors.cases as [(typeof vectors.cases)[0], (typeof vectors.cases)[1]];
const bin1 = unhex(first.export_bin_hex);
const sig1 = unhex(first.export_sig_hex);

interface VectorKey {
  readonly key_data: string;
  readonly transmission_risk_level: number;
  readonly rolling_start_interval_number: number;
  readonly rolling_period?: number;
}

/** The JSON keys the command prints for a vector case (absent rolling_period = 144, SPECS §7.5). */
const expectedKeys = (keys: readonly VectorKey[]): object[] =>
  keys.map((k) => ({ key: k.key_data, rollingStart: k.rolling_start_interval_number, rollingPeriod: k.rolling_period ?? 144, transmissionRisk: k.transmission_risk_level }));

/** As EN-server's Go archive/zip writes it: deflated, CRC and sizes in data descriptors. */
function goStyleZip(bin: Uint8Array, sig: Uint8Array): Uint8Array {
  const chunks: Uint8Array[] = [];
  const zip = new Zip((err, chunk) => {
    if (err) throw err;
    chunks.push(chunk);
  });
  for (const [name, data] of [['export.bin', bin], ['export.sig', sig]] as const) {
    const entry = new ZipDeflate(name, { level: 6 });
    zip.add(entry);
    entry.push(data, true);
  }
  zip.end();
  return Uint8Array.from(Buffer.concat(chunks));
}

const dir = mkdtempSync(join(tmpdir(), 'tracecity-export-'));
const file = (name: string, content: Uint8Array | string): string => {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
};

const flipped = (bytes: Uint8Array, at: number): Uint8Array => {
  const t = bytes.slice();
  t[at]! ^= 0x01;
  return t;
};

const present = (value: string | undefined, what: string): string => {
  if (value === undefined) throw new Error(`gaen-export.json: no ${what}`);
  return value;
};
const pem1 = file('first.pem', present(first.public_key_pem, 'public_key_pem in case 1'));
const spki = present(second.public_key_spki_b64, 'public_key_spki_b64 in case 2');
const pem2 = file('310-v1.pem', `-----BEGIN PUBLIC KEY-----\n${spki.match(/.{1,64}/g)?.join('\n') ?? ''}\n-----END PUBLIC KEY-----\n`);
const zip1 = file('first.zip', writeExportZip(bin1, sig1));
const zip2 = file('second.zip', goStyleZip(unhex(second.export_bin_hex), unhex(second.export_sig_hex)));
const keyByte = first.export_bin_hex.indexOf(first.decoded_export_bin.keys[0]!.key_data) / 2 + 5;
const tamperedBin = file('tampered-bin.zip', writeExportZip(flipped(bin1, keyByte), sig1));
const tamperedSig = file('tampered-sig.zip', writeExportZip(bin1, flipped(sig1, sig1.length - 1)));
const container = writeExportZip(bin1, sig1);
const tamperedZip = file('tampered-zip.zip', flipped(container, Buffer.from(container).indexOf(Buffer.from('504b0102', 'hex')) + 16));
const notZip = file('not-a.zip', 'this is not a zip archive\n');
const garbagePem = file('garbage.pem', '-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n');
const ed25519Pem = file('ed25519.pem', generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString());
const missing = join(dir, 'missing.zip');

const verify = (zip: string, pem: string, ...extra: string[]): string[] => ['proto', 'export', 'verify', '--file', zip, '--public-key', pem, ...extra];

const CASES: Readonly<Record<string, readonly string[]>> = {
  first: verify(zip1, pem1),
  second: verify(zip2, pem2, '--key-id', '310', '--key-version', 'v1', '--suite', 'noble'),
  wrongKey: verify(zip1, pem2),
  otherKeyId: verify(zip2, pem2, '--key-id', '311'),
  tamperedBin: verify(tamperedBin, pem1),
  tamperedSig: verify(tamperedSig, pem1, '--suite', 'noble'),
  tamperedZip: verify(tamperedZip, pem1),
  notZip: verify(notZip, pem1),
  missingFile: verify(missing, pem1),
  missingPem: verify(zip1, join(dir, 'missing.pem')),
  garbagePem: verify(zip1, garbagePem),
  ed25519Pem: verify(zip1, ed25519Pem),
  noFileFlag: ['proto', 'export', 'verify', '--public-key', pem1],
  help: ['proto', 'export', 'verify', '--help'],
};

const results = new Map<string, CliResult>();

beforeAll(async () => {
  const queue = Object.entries(CASES);
  const worker = async (): Promise<void> => {
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) results.set(next[0], await runTracecity(next[1], 60_000));
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}, 180_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function result(name: string): CliResult {
  const r = results.get(name);
  if (r === undefined) throw new Error(`no result for ${name}`);
  return r;
}

const json = (r: CliResult): unknown => JSON.parse(r.stdout);

describe('tracecity proto export verify (SPECS §1.7)', () => {
  it('verifies the exposure-notifications-server sample and prints its 2 keys (exit 0)', () => {
    const r = result('first');
    expect(r.code, r.stderr).toBe(0);
    expect(json(r)).toEqual({
      ok: true,
      keys: expectedKeys(first.decoded_export_bin.keys),
      region: 'US',
      startTimestamp: 1_590_159_600,
      endTimestamp: 1_590_246_000,
      batchNum: 1,
      batchSize: 1,
      signature: { keyId: 'some_id', keyVersion: '1', algorithm: '1.2.840.10045.4.3.2' },
    });
  });

  it('verifies the exposure-notifications-internals sample (Go-style zip, key 310-v1, noble suite) and prints its 140 keys', () => {
    const r = result('second');
    expect(r.code, r.stderr).toBe(0);
    const out = json(r) as { ok: boolean; keys: object[]; signature: object };
    expect(out.ok).toBe(true);
    expect(out.keys).toHaveLength(140);
    expect(out.keys).toEqual(expectedKeys(second.decoded_export_bin.keys as readonly VectorKey[]));
    expect(out.signature).toEqual({ keyId: '310', keyVersion: 'v1', algorithm: '1.2.840.10045.4.3.2' });
  });

  it.each([
    ['wrongKey', 'bad-signature', /does not verify export\.bin/],
    ['otherKeyId', 'no-signature-for-key', /no signature for key id "311"/],
    ['tamperedBin', 'bad-signature', /does not verify export\.bin/],
    ['tamperedSig', 'bad-signature', /does not verify export\.bin/],
    ['tamperedZip', 'zip', /export\.bin: local and central CRC or sizes differ/],
    ['notZip', 'zip', /no end-of-central-directory record/],
  ])('a rejected export (%s) prints ok:false with reason %s and exits 0', (name, reason, detail) => {
    const r = result(name);
    expect(r.code, r.stderr).toBe(0);
    const out = json(r) as { ok: boolean; reason: string; detail: string };
    expect(out).toMatchObject({ ok: false, reason });
    expect(out.detail).toMatch(detail);
  });

  it.each([
    ['missingFile', /--file: cannot read .*missing\.zip/],
    ['missingPem', /--public-key: cannot read .*missing\.pem/],
    ['garbagePem', /--public-key: .*garbage\.pem is not a PEM P-256 public key/],
    ['ed25519Pem', /--public-key: .*is not a PEM P-256 public key: the key is ed25519, not ECDSA P-256/],
    ['noFileFlag', /required option '--file <path>' not specified/],
  ])('unreadable input or bad arguments (%s) exit 2 naming the flag', (name, message) => {
    const r = result(name);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
  });

  it('--help documents the flags and the output', () => {
    const r = result('help');
    expect(r.code).toBe(0);
    for (const flag of ['--file', '--public-key', '--key-id', '--key-version', '--suite', '"ok":false']) expect(r.stdout).toContain(flag);
  });
});
