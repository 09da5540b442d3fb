/**
 * `tracecity keyserver …` as an operator runs it (child processes): offline
 * commands on the log, `serve` holding the log's lock while admin commands go
 * through --broker, SIGTERM shutdown, `rebuild` reproducing the served state's
 * digest, `export` writing export.zip files that `proto export verify`
 * accepts, and flag errors exiting 2 naming the flag.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { connectMqttBus } from '../../services/bus/mqtt.ts';
import { KeyServerClient } from '../../services/keyserver/client.ts';
import { silentLogger } from '../../services/log.ts';
import { tekAt } from '../support/key-server-fixtures.ts';
import { exited, killLeftovers, runTracecity, tracecity, type Proc } from '../support/processes.ts';

const dir = mkdtempSync(join(tmpdir(), 'tc-keyserver-cli-'));
afterEach(killLeftovers);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const json = <T>(text: string): T => JSON.parse(text.trim().split('\n').at(-1) ?? '') as T;

interface AdminResult {
  ok: boolean;
  reason: string;
  count: number;
  stateDigest: string;
}

async function waitForLine(proc: Proc, pattern: RegExp, timeoutMs: number): Promise<string> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    const line = proc.stdout().split('\n').find((l) => pattern.test(l));
    if (line !== undefined) return line;
    if (proc.child.exitCode !== null) throw new Error(`exited ${proc.child.exitCode}: ${proc.stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no line matching ${String(pattern)} within ${timeoutMs} ms: ${proc.stderr()}`);
}

describe('tracecity keyserver (issue 4 "CLI")', () => {
  it('offline: refuses a missing log, init creates it; adds a provider, issues codes (printed once), reports state; rebuild gives the same digest and says how long it took', async () => {
    const db = join(dir, 'offline.sqlite');
    // No log yet: admin commands and rebuild refuse (exit 2) and create nothing.
    for (const args of [['provider', 'add', 'clinic-a'], ['rebuild']]) {
      const refused = await runTracecity(['keyserver', ...args, '--db', db]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain('keyserver init');
    }
    expect(readdirSync(dir).filter((f) => f.startsWith('offline'))).toEqual([]);
    const created = json<{ config: { periodMs: number } }>((await runTracecity(['keyserver', 'init', '--db', db, '--period-s', '60'])).stdout);
    expect(created.config.periodMs).toBe(60_000);
    expect(json<AdminResult>((await runTracecity(['keyserver', 'provider', 'add', 'clinic-a', '--db', db])).stdout)).toMatchObject({ ok: true, count: 1 });
    const issued = await runTracecity(['keyserver', 'codes', 'issue', '--provider', 'clinic-a', '--count', '5', '--db', db]);
    expect(issued.code).toBe(0);
    const { codes } = json<{ codes: string[] }>(issued.stdout);
    expect(codes).toHaveLength(5);
    for (const code of codes) expect(code).toMatch(/^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}-[0-9A-HJKMNP-TV-Z]$/);
    const state = json<AdminResult>((await runTracecity(['keyserver', 'state', '--db', db])).stdout);
    const rebuilt = json<{ events: number; ms: number; stateDigest: string; providers: number }>((await runTracecity(['keyserver', 'rebuild', '--db', db])).stdout);
    expect(rebuilt.stateDigest).toBe(state.stateDigest);
    expect(rebuilt.providers).toBe(1);
    // host.start, provider.add, codes.register: the state query is read-only and not journaled.
    expect(rebuilt.events).toBe(3);
    expect(rebuilt.ms).toBeGreaterThanOrEqual(0);
    // An unknown provider is a refused command: exit 1 with the reason.
    const refused = await runTracecity(['keyserver', 'codes', 'issue', '--provider', 'nobody', '--count', '1', '--db', db]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('unknown-provider');
  }, 60_000);

  it('serve holds the log: offline commands are refused, --broker commands reach it; SIGTERM stops it cleanly; rebuild reproduces its state', async () => {
    const db = join(dir, 'served.sqlite');
    const server = tracecity(['keyserver', 'serve', '--db', db, '--port', '0', '--period-s', '1']);
    const ready = json<{ ready: boolean; bus: string }>(await waitForLine(server, /"ready":true/, 30_000));
    const broker = /mqtt:\/\/[0-9.]+:\d+/.exec(ready.bus)?.[0];
    expect(broker).toBeDefined();
    const locked = await runTracecity(['keyserver', 'provider', 'add', 'clinic-a', '--db', db]);
    expect(locked.code).toBe(1);
    expect(locked.stderr).toMatch(/in use by process \d+/);
    const added = await runTracecity(['keyserver', 'provider', 'add', 'clinic-a', '--db', db, '--broker', String(broker)]);
    expect(json<AdminResult>(added.stdout)).toMatchObject({ ok: true });
    const revoked = await runTracecity(['keyserver', 'provider', 'revoke', 'clinic-a', '--retroactive', '--since', '2026-01-01T00:00:00Z', '--db', db, '--broker', String(broker)]);
    expect(json<AdminResult>(revoked.stdout)).toMatchObject({ ok: true, count: 0 });
    const served = json<AdminResult>((await runTracecity(['keyserver', 'state', '--db', db, '--broker', String(broker)])).stdout);
    expect(served.stateDigest).toMatch(/^[0-9a-f]{64}$/);
    server.child.kill('SIGTERM');
    expect(await exited(server, 20_000)).toBe(0);
    // The digest at shutdown (publication ticks every second may follow the state query).
    const stopped = json<{ stopped: boolean; stateDigest: string }>(server.stdout());
    expect(stopped.stopped).toBe(true);
    const rebuilt = json<{ stateDigest: string }>((await runTracecity(['keyserver', 'rebuild', '--db', db])).stdout);
    expect(rebuilt.stateDigest).toBe(stopped.stateDigest);
  }, 90_000);

  it('export writes export.zip files of the uploaded keys, padded and signed with the server key, that proto export verify accepts', async () => {
    const db = join(dir, 'export.sqlite');
    const server = tracecity(['keyserver', 'serve', '--db', db, '--port', '0']);
    const ready = json<{ bus: string }>(await waitForLine(server, /"ready":true/, 30_000));
    const broker = String(/mqtt:\/\/[0-9.]+:\d+/.exec(ready.bus)?.[0]);
    await runTracecity(['keyserver', 'provider', 'add', 'clinic-a', '--db', db, '--broker', broker]);
    const { codes } = json<{ codes: string[] }>((await runTracecity(['keyserver', 'codes', 'issue', '--provider', 'clinic-a', '--count', '1', '--db', db, '--broker', broker])).stdout);
    const bus = await connectMqttBus({ url: broker, clientId: 'phone.cli-test', logger: silentLogger });
    const client = await KeyServerClient.connect(bus, { serverId: 'ks1', address: 'phone/cli-test', inbox: 'tc/v1/phone/cli-test/inbox' });
    const records = Array.from({ length: 14 }, (_, i) => tekAt(i, Date.now(), 1 + (i % 13)));
    const trackingId = await client.upload(String(codes[0]), records);
    expect((await client.status(trackingId)).state).toBe('accepted');
    await client.close();
    await bus.close();
    server.child.kill('SIGTERM');
    expect(await exited(server, 20_000)).toBe(0);

    const out = join(dir, 'exports');
    const exported = await runTracecity(['keyserver', 'export', '--db', db, '--out', out]);
    expect(exported.code).toBe(0);
    const summary = json<{ keys: number; files: string[]; publicKey: string }>(exported.stdout);
    expect(summary.keys).toBe(14);
    expect(readdirSync(out)).toEqual(['export-1-of-1.zip']);
    const verified = await runTracecity(['proto', 'export', 'verify', '--file', join(out, 'export-1-of-1.zip'), '--public-key', summary.publicKey]);
    const result = json<{ ok: boolean; keys: { key: string }[] }>(verified.stdout);
    expect(result.ok).toBe(true);
    // Padded with fake keys to at least 1,000 (EN-server's minimum); every real key is among them.
    expect(result.keys.length).toBeGreaterThanOrEqual(1000);
    const listed = new Set(result.keys.map((k) => k.key));
    for (const r of records) expect(listed.has(Buffer.from(r.key).toString('hex'))).toBe(true);
  }, 90_000);

  it('rejects bad flags with exit 2 naming the flag', async () => {
    const db = join(dir, 'flags.sqlite');
    const cases: [string[], string][] = [
      [['keyserver', 'codes', 'issue', '--provider', 'a', '--count', 'zero', '--db', db], '--count'],
      [['keyserver', 'provider', 'revoke', 'a', '--retroactive', '--db', db], '--since'],
      [['keyserver', 'provider', 'revoke', 'a', '--since', 'yesterday-ish', '--db', db], '--since'],
      [['keyserver', 'serve', '--port', '70000', '--db', db], '--port'],
      [['keyserver', 'state', '--broker', 'http://x', '--db', db], '--broker'],
    ];
    for (const [args, flag] of cases) {
      const r = await runTracecity(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toContain(flag);
    }
  }, 60_000);
});
