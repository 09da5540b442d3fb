/**
 * The secure profile end to end, over real sockets: the embedded aedes broker
 * with TLS only, per-actor credentials and the ACL (services/broker/aedes.ts),
 * MqttBus clients with TLS + username/password, the local PKI
 * (services/security/certs.ts), credentials (credentials.ts) and the CLI.
 */
import { execFile, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { connect as rawConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedBroker, type BrokerSecurity, type EmbeddedBroker } from '../../services/broker/aedes.ts';
import { connectMqttBus, type MqttBus } from '../../services/bus/mqtt.ts';
import { clientIdPrefix } from '../../services/security/acl.ts';
import { SECURITY_FILES, createCertificateAuthority, initSecurityDir, issueClientCertificate, loadCertificateAuthority, loadSecurityDir } from '../../services/security/certs.ts';
import { addCredential, emptyCredentials, parseCredentials, verifyPassword, writeCredentialsFile } from '../../services/security/credentials.ts';
import { clientTlsOptions, serverTlsOptions } from '../../services/security/tls.ts';
import { waitFor } from '../contract/bus.contract.ts';

const FAST = { N: 1024, r: 8, p: 1 }; // tests only: the default costs ~50 ms per hash
const USERS = ['phone/p1', 'app-backend/a1', 'police-backend/pb1', 'health-authority/ha1'] as const;
const password = (user: string): string => `pw:${user}:s3cret`;
const b = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (p: Uint8Array): string => new TextDecoder().decode(p);

let dir: string;
let security: BrokerSecurity;
const cleanup: (() => Promise<void>)[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tc-secure-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true })); // runs last
  await initSecurityDir(dir);
  let credentials = emptyCredentials();
  for (const user of USERS) credentials = await addCredential(credentials, { username: user, password: password(user), scrypt: FAST });
  await writeCredentialsFile(join(dir, SECURITY_FILES.credentials), credentials);
  const loaded = await loadSecurityDir(dir);
  security = { tls: { cert: loaded.tls.cert, key: loaded.tls.key }, credentials: loaded.credentials };
});
afterAll(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function broker(extra: Partial<BrokerSecurity> = {}): Promise<EmbeddedBroker> {
  const started = await startEmbeddedBroker({ security: { ...security, ...extra } });
  cleanup.push(() => started.close());
  return started;
}

async function ca(): Promise<string> {
  return readFile(join(dir, SECURITY_FILES.caCert), 'utf8');
}

async function as(url: string, user: string, options: { clientId?: string; password?: string; tls?: ConnectionOptions; connectTimeoutMs?: number } = {}): Promise<MqttBus> {
  const bus = await connectMqttBus({
    url,
    clientId: options.clientId ?? clientIdPrefix(user),
    username: user,
    password: options.password ?? password(user),
    tls: { ...clientTlsOptions({ ca: await ca(), servername: 'localhost' }), ...options.tls },
    connectTimeoutMs: options.connectTimeoutMs ?? 5000,
    onError: () => undefined,
  });
  cleanup.push(() => bus.close());
  return bus;
}

/** A TLS handshake with `options`; resolves with the negotiated protocol or the error message. */
function handshake(port: number, options: ConnectionOptions): Promise<string> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ port, host: '127.0.0.1', servername: 'localhost', ...options }, () => {
      resolve(`ok ${socket.getProtocol() ?? ''}`);
      socket.destroy();
    });
    socket.on('error', (error: Error) => resolve(`error ${error.message}`));
  });
}

describe('secure broker: transport', () => {
  it('plaintext TCP gets no CONNACK: the TLS handshake fails and the socket is closed', async () => {
    const { port, stats } = await broker();
    const connect = Buffer.from([0x10, 13, 0, 4, ...Buffer.from('MQTT'), 4, 2, 0, 60, 0, 1, 0x78]); // MQTT 3.1.1 CONNECT, client id "x"
    const received = await new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      const socket = rawConnect(port, '127.0.0.1', () => socket.write(connect));
      socket.on('data', (d: Buffer) => chunks.push(d));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(Buffer.concat(chunks)));
    });
    expect(received[0]).not.toBe(0x20); // CONNACK
    await waitFor(() => stats.tlsFailures === 1, 2000, 'tlsClientError');
    const plain = await connectMqttBus({ url: `mqtt://127.0.0.1:${port}`, clientId: 'phone.p1', username: 'phone/p1', password: password('phone/p1'), connectTimeoutMs: 1000 }).catch(
      (error: unknown) => error,
    );
    expect(plain).toBeInstanceOf(Error);
  });

  it('refuses TLS 1.1, TLS 1.2 with a CBC suite and TLS 1.3 with CCM; accepts 1.2 GCM/CHACHA20 and 1.3', async () => {
    const { port, stats } = await broker();
    const caPem = await ca();
    const weak = 'DEFAULT@SECLEVEL=0'; // lets this client even try TLS 1.1
    expect(await handshake(port, { ca: caPem, minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: weak })).toMatch(/^error .*protocol version/);
    expect(await handshake(port, { ca: caPem, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA256' })).toMatch(/^error .*handshake failure/);
    expect(await handshake(port, { ca: caPem, ciphers: 'TLS_AES_128_CCM_SHA256' })).toMatch(/^error /);
    expect(stats.tlsFailures).toBe(3); // refused by the server, not by the client
    expect(await handshake(port, { ca: caPem, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' })).toBe('ok TLSv1.2');
    expect(await handshake(port, { ca: caPem, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-CHACHA20-POLY1305' })).toBe('ok TLSv1.2');
    expect(await handshake(port, { ca: caPem })).toBe('ok TLSv1.3');
    expect(await handshake(port, {})).toMatch(/^error .*(self-signed|unable to (get|verify))/i); // a client without our CA
    const other = await createCertificateAuthority();
    expect(await handshake(port, { ca: other.cert })).toMatch(/^error /);
  });

  it('mutual TLS (optional): without a client certificate from the CA, no connection', async () => {
    const caPem = await ca();
    const { url, stats } = await broker({ tls: { ...security.tls, ca: caPem, requireClientCert: true } });
    const authority = await loadCertificateAuthority({ cert: caPem, key: await readFile(join(dir, SECURITY_FILES.caKey), 'utf8') });
    const client = await issueClientCertificate(authority, { commonName: 'phone/p1' });
    // TLS 1.3 finishes the client's side of the handshake first; the server's refusal then ends the connection
    await expect(as(url, 'phone/p1')).rejects.toThrow(/certificate/);
    expect(stats.tlsFailures).toBe(1);
    const stranger = await issueClientCertificate(await createCertificateAuthority(), { commonName: 'phone/p1' });
    await expect(as(url, 'phone/p1', { tls: { cert: stranger.cert, key: stranger.key }, connectTimeoutMs: 1500 })).rejects.toThrow();
    expect(stats.tlsFailures).toBeGreaterThanOrEqual(2); // mqtt.js may retry within the budget
    const bus = await as(url, 'phone/p1', { tls: { cert: client.cert, key: client.key } });
    await bus.publish('tc/v1/phone/p1/status', b('up'), { qos: 1 });
    expect(() => serverTlsOptions({ cert: 'c', key: 'k', requireClientCert: true })).toThrow(/needs the client CA/);
  });
});

describe('secure broker: authentication', () => {
  it('refuses a wrong password (CONNACK 4), an unknown user (4), no credentials (4) and a foreign client id (2)', async () => {
    const { url, stats } = await broker();
    await expect(as(url, 'phone/p1', { password: 'wrong password' })).rejects.toMatchObject({ code: 4 });
    await expect(as(url, 'phone/p9', { password: 'whatever1' })).rejects.toMatchObject({ code: 4 });
    await expect(as(url, 'phone/p1', { clientId: 'app-backend.a1' })).rejects.toMatchObject({ code: 2 });
    await expect(as(url, 'phone/p1', { clientId: 'tcbus-123' })).rejects.toMatchObject({ code: 2 });
    const raw = mqtt.connectAsync(url, { protocolVersion: 4, clientId: 'phone.p1', reconnectPeriod: 0, ca: await ca(), servername: 'localhost' });
    await expect(raw).rejects.toMatchObject({ code: 4 });
    expect(stats.authFailures).toBe(5);
    const ok = await as(url, 'phone/p1', { clientId: 'phone.p1.second' });
    expect(ok.clientId).toBe('phone.p1.second');
  });
});

describe('secure broker: ACL over the wire', () => {
  it('phone: tokens and own status go through; alerts and quarantine publishes are dropped; forbidden SUBSCRIBEs get 0x80', async () => {
    const { url, stats } = await broker();
    const [phone, app, police, health] = (await Promise.all(USERS.map((u) => as(url, u)))) as [MqttBus, MqttBus, MqttBus, MqttBus];
    const appGot: string[] = [];
    const policeGot: string[] = [];
    const statusGot: string[] = [];
    await app.subscribe('tc/v1/app-backend/a1/tokens', (_t, p) => appGot.push(`tokens:${text(p)}`), { qos: 1 });
    await app.subscribe('tc/v1/app-backend/a1/quarantine', (_t, p) => appGot.push(`quarantine:${text(p)}`), { qos: 1 });
    await police.subscribe('tc/v1/police-backend/pb1/alerts', (_t, p) => policeGot.push(text(p)), { qos: 1 });
    await police.subscribe('tc/v1/+/+/status', (t, p) => statusGot.push(`${t}=${text(p)}`));

    await phone.publish('tc/v1/app-backend/a1/tokens', b('batch-1'), { qos: 1 });
    await phone.publish('tc/v1/phone/p1/status', b('online'), { qos: 1, retain: true });
    await waitFor(() => appGot.length === 1 && statusGot.length === 1, 5000, 'tokens and status');
    expect(statusGot).toEqual(['tc/v1/phone/p1/status=online']);

    // refused publishes are acknowledged and delivered to nobody; the connection stays up
    await phone.publish('tc/v1/police-backend/pb1/alerts', b('forged alert'), { qos: 1 });
    await phone.publish('tc/v1/app-backend/a1/quarantine', b('forged registration'), { qos: 1 });
    await phone.publish('tc/v1/app-backend/a2/status', b('not mine'), { qos: 0 });
    await waitFor(() => stats.publishRefused === 3, 2000, 'three refusals'); // QoS 0 resolves when written
    await app.publish('tc/v1/police-backend/pb1/alerts', b('alert from app backend'), { qos: 1 });
    await health.publish('tc/v1/app-backend/a1/quarantine', b('registration from HA'), { qos: 1 });
    await waitFor(() => policeGot.length === 1 && appGot.length === 2, 5000, 'legitimate alert and registration');
    expect(policeGot).toEqual(['alert from app backend']);
    expect(appGot).toEqual(['tokens:batch-1', 'quarantine:registration from HA']);
    expect(statusGot).toEqual(['tc/v1/phone/p1/status=online']);

    // forbidden subscriptions: SUBACK 0x80, MqttBus.subscribe rejects naming the filter
    for (const filter of ['tc/v1/police-backend/pb1/alerts', 'tc/v1/#', 'tc/v1/police-backend/+/alerts', 'tc/v1/app-backend/a1/tokens']) {
      const refused = (await phone.subscribe(filter, () => undefined).catch((error: unknown) => error)) as Error & { code?: number };
      expect(refused.message).toBe(`broker refused SUBSCRIBE ${filter} (SUBACK 0x80: not authorized or invalid)`);
      expect(refused.code).toBe(0x80);
    }
    await expect(police.subscribe('tc/v1/police-backend/pb2/alerts', () => undefined)).rejects.toMatchObject({ code: 128 });
    expect(stats.subscribeRefused).toBe(5);

    // after all that the phone still works
    await phone.subscribe('tc/v1/phone/p1/inbox', () => undefined);
    await phone.publish('tc/v1/app-backend/a1/tokens', b('batch-2'), { qos: 1 });
    await waitFor(() => appGot.length === 3, 5000, 'second batch');
    expect(appGot[2]).toBe('tokens:batch-2');
  });

  it("refusedPublish 'disconnect' keeps aedes' behaviour: the connection is closed", async () => {
    const { url, stats } = await broker({ refusedPublish: 'disconnect' });
    const client = await mqtt.connectAsync(url, {
      protocolVersion: 4,
      clientId: 'phone.p1',
      username: 'phone/p1',
      password: password('phone/p1'),
      reconnectPeriod: 0,
      ca: await ca(),
      servername: 'localhost',
    });
    cleanup.push(() => client.endAsync(true));
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.publish('tc/v1/police-backend/pb1/alerts', 'forged', { qos: 0 });
    await closed;
    expect(stats.publishRefused).toBe(1);
    // why 'drop' is the default: mqtt.js reconnects and re-sends the unacknowledged QoS 1 message, forever
    const bus = await connectMqttBus({ url, clientId: 'phone.p1.loop', username: 'phone/p1', password: password('phone/p1'), tls: clientTlsOptions({ ca: await ca(), servername: 'localhost' }), reconnectPeriodMs: 20 });
    cleanup.push(() => bus.close());
    void bus.publish('tc/v1/police-backend/pb1/alerts', b('forged'), { qos: 1 }).catch(() => undefined); // never acknowledged
    await waitFor(() => stats.publishRefused >= 4, 5000, 'the re-send loop');
  });
});

describe('credentials and certificates', () => {
  it('verifies passwords in constant time, rejects wrong ones and unknown users', async () => {
    const file = await addCredential(emptyCredentials(), { username: 'host/h1', password: 'correct horse', actsAs: ['phone/*'], scrypt: FAST });
    expect(await verifyPassword(file, 'host/h1', 'correct horse')).toMatchObject({ actsAs: ['phone/*'] });
    expect(await verifyPassword(file, 'host/h1', 'correct horsE')).toBeUndefined();
    expect(await verifyPassword(file, 'host/h2', 'correct horse')).toBeUndefined();
    const twice = await addCredential(emptyCredentials(), { username: 'phone/p1', password: 'same password', scrypt: FAST });
    const again = await addCredential(twice, { username: 'phone/p1', password: 'same password', scrypt: FAST, replace: true });
    expect(again.users['phone/p1']!.salt).not.toBe(twice.users['phone/p1']!.salt); // per-user random salt
    await expect(addCredential(twice, { username: 'phone/p1', password: 'other password' })).rejects.toThrow(/exists/);
    await expect(addCredential(twice, { username: 'phone/p2', password: 'x' })).rejects.toThrow(/at least 8/);
    await expect(addCredential(twice, { username: 'phone/p2', password: 'long enough', actsAs: ['beacon/b1'] })).rejects.toThrow(/only host/);
    expect(JSON.stringify(again)).not.toContain('same password');
  });

  it('rejects malformed credentials files listing the problems', () => {
    const message = (file: unknown): string => {
      try {
        parseCredentials(JSON.stringify(file), 'creds');
        return '';
      } catch (error) {
        return (error as Error).message;
      }
    };
    const scrypt = { N: 1024, r: 8, p: 1 };
    const shapes = message({ version: 1, users: { 'king/x': { salt: 'AAAA', hash: 'x', scrypt }, 'phone/p1': { salt: '', hash: '', scrypt } } });
    for (const part of ['users.king/x', 'users.phone/p1.salt: must be 16 bytes', 'users.phone/p1.hash: must be 32 bytes']) expect(shapes).toContain(part);
    const entry = { salt: Buffer.alloc(16).toString('base64'), hash: Buffer.alloc(32).toString('base64') };
    const rules = message({ version: 1, users: { 'phone/p1': { ...entry, scrypt: { ...scrypt, N: 3000 }, actsAs: ['phone/*'] } } });
    for (const part of ['scrypt.N: must be a power of two', 'actsAs: only host users']) expect(rules).toContain(part);
    expect(message({ version: 2, users: {} })).toContain('version');
    expect(() => parseCredentials('{', 'creds')).toThrow(/not JSON/);
  });

  it('init writes a P-256 CA and a server certificate for localhost and 127.0.0.1; secrets are 0600', async () => {
    const server = new X509Certificate(await readFile(join(dir, SECURITY_FILES.serverCert)));
    const caCert = new X509Certificate(await ca());
    expect(server.verify(caCert.publicKey)).toBe(true);
    expect(server.checkHost('localhost')).toBe('localhost');
    expect(server.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(server.checkHost('example.com')).toBeUndefined();
    expect(server.ca).toBe(false);
    expect(caCert.ca).toBe(true);
    expect(server.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    for (const secret of [SECURITY_FILES.caKey, SECURITY_FILES.serverKey, SECURITY_FILES.credentials]) expect((await stat(join(dir, secret))).mode & 0o777).toBe(0o600);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    await expect(initSecurityDir(dir)).rejects.toThrow(/refusing to overwrite/);
  });
});

describe('CLI: security init, add-user, broker --secure', () => {
  const BIN = join(process.cwd(), 'bin', 'tracecity.js');
  const cli = async (args: string[]): Promise<string> => (await promisify(execFile)(process.execPath, [BIN, ...args], { timeout: 60_000 })).stdout;

  it('a user added on the command line connects to the TLS-only broker started with --secure', async () => {
    const cliRoot = await mkdtemp(join(tmpdir(), 'tc-cli-'));
    cleanup.push(() => rm(cliRoot, { recursive: true, force: true }));
    const cliDir = join(cliRoot, 'sec');
    await cli(['security', 'init', '--dir', cliDir, '--hosts', 'localhost,127.0.0.1']);
    const added = await cli(['security', 'add-user', '--dir', cliDir, '--user', 'phone/p7']);
    const generated = /^password (\S+)$/m.exec(added)?.[1];
    expect(generated).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(await readFile(join(cliDir, SECURITY_FILES.credentials), 'utf8')).not.toContain(generated);
    const child = spawn(process.execPath, [BIN, 'broker', '--secure', cliDir, '--port', '0', '--log-level', 'error'], { stdio: ['ignore', 'pipe', 'inherit'] });
    cleanup.push(async () => {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
    });
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /listening (mqtts:\/\/\S+)/.exec(out);
        if (m?.[1] !== undefined) resolve(m[1]);
      });
      child.once('exit', (code) => reject(new Error(`broker exited with ${code}`)));
    });
    const bus = await connectMqttBus({
      url,
      clientId: 'phone.p7',
      username: 'phone/p7',
      password: generated!,
      tls: clientTlsOptions({ ca: await readFile(join(cliDir, SECURITY_FILES.caCert), 'utf8') }),
      onError: () => undefined,
    });
    cleanup.push(() => bus.close());
    const got: string[] = [];
    await bus.subscribe('tc/v1/phone/p7/inbox', (_t, p) => got.push(text(p)));
    await bus.publish('tc/v1/phone/p7/inbox', b('hello'), { qos: 1 });
    await waitFor(() => got.length === 1, 5000, 'own inbox');
    await expect(bus.subscribe('tc/v1/phone/+/inbox', () => undefined)).rejects.toMatchObject({ code: 128 });
  }, 60_000);
});
