/**
 * A local PKI for the secure profile: a CA, a server certificate for the
 * broker (SAN: the given host names and IP addresses) and optional client
 * certificates, all ECDSA P-256 / SHA-256. node:crypto can make keys but not
 * certificates, so @peculiar/x509 builds them over WebCrypto.
 *
 * A security directory (`tracecity security init`) holds:
 *   ca.pem, ca.key          the CA (keep ca.key offline once users have their certs)
 *   server.pem, server.key  the broker's certificate and key
 *   credentials.json        users and scrypt hashes (credentials.ts)
 * Keys and credentials are 0600, the directory 0700.
 */
import { createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { CREDENTIALS_FILE, emptyCredentials, readCredentialsFile, writeCredentialsFile, type CredentialsFile } from './credentials.ts';

export interface CertifiedKey {
  /** PEM certificate. */
  readonly cert: string;
  /** PEM PKCS#8 private key. */
  readonly key: string;
}

export interface CertificateAuthority extends CertifiedKey {
  readonly certificate: x509.X509Certificate;
  readonly signingKey: webcrypto.CryptoKey;
}

/** Passed explicitly rather than set globally (x509.cryptoProvider): nothing else in the process is affected. */
const crypto = webcrypto;
const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;
/** Tolerate a little clock skew between the machine that issues and the one that checks. */
const BACKDATE_MS = 5 * 60_000;

export const SECURITY_FILES = {
  caCert: 'ca.pem',
  caKey: 'ca.key',
  serverCert: 'server.pem',
  serverKey: 'server.key',
  credentials: CREDENTIALS_FILE,
} as const;

/** A positive 128-bit serial (RFC 5280 §4.1.2.2: unique per CA, at most 20 octets). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return bytes.toString('hex');
}

function validity(days: number): { notBefore: Date; notAfter: Date } {
  if (!Number.isInteger(days) || days < 1) throw new Error(`validity must be a positive number of days, got ${days}`);
  const now = Date.now();
  return { notBefore: new Date(now - BACKDATE_MS), notAfter: new Date(now + days * DAY_MS) };
}

async function keyPair(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
}

async function pkcs8Pem(key: webcrypto.CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

/** Distinguished-name values are put in quotes so a ',' or '=' in a name cannot add attributes. */
function cn(commonName: string): string {
  if (!/^[\w .@:/-]{1,64}$/.test(commonName)) throw new Error(`common name ${JSON.stringify(commonName)}: 1-64 of [A-Za-z0-9_ .@:/-]`);
  return `CN="${commonName}"`;
}

export async function createCertificateAuthority(options: { commonName?: string; validDays?: number } = {}): Promise<CertificateAuthority> {
  const keys = await keyPair();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serialNumber(),
      name: cn(options.commonName ?? 'tracecity local CA'),
      ...validity(options.validDays ?? 3650),
      signingAlgorithm: SIGNING,
      keys,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true), // may sign end-entity certificates only
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return { certificate, signingKey: keys.privateKey, cert: certificate.toString('pem'), key: await pkcs8Pem(keys.privateKey) };
}

/** Reload a CA written by initSecurityDir, to issue more certificates. */
export async function loadCertificateAuthority(pem: CertifiedKey): Promise<CertificateAuthority> {
  const der = createPrivateKey(pem.key).export({ type: 'pkcs8', format: 'der' });
  const signingKey = await webcrypto.subtle.importKey('pkcs8', der, EC, false, ['sign']);
  return { certificate: new x509.X509Certificate(pem.cert), signingKey, cert: pem.cert, key: pem.key };
}

async function issue(
  ca: CertificateAuthority,
  commonName: string,
  usage: x509.ExtendedKeyUsage,
  days: number,
  extra: readonly x509.Extension[] = [],
): Promise<CertifiedKey> {
  const keys = await keyPair();
  const certificate = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serialNumber(),
      subject: cn(commonName),
      issuer: ca.certificate.subjectName,
      ...validity(days),
      signingAlgorithm: SIGNING,
      publicKey: keys.publicKey,
      signingKey: ca.signingKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true), // ECDHE-ECDSA: the key only signs
        new x509.ExtendedKeyUsageExtension([usage], false),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
        await x509.AuthorityKeyIdentifierExtension.create(ca.certificate, false, crypto),
        ...extra,
      ],
    },
    crypto,
  );
  return { cert: certificate.toString('pem'), key: await pkcs8Pem(keys.privateKey) };
}

/** The broker's certificate: `hosts` are DNS names or IP addresses (all go into the SAN; the first is the CN). */
export async function issueServerCertificate(ca: CertificateAuthority, options: { hosts: readonly string[]; validDays?: number }): Promise<CertifiedKey> {
  const hosts = options.hosts.map((h) => h.trim()).filter((h) => h !== '');
  if (hosts.length === 0) throw new Error('a server certificate needs at least one host name or IP address');
  for (const h of hosts) if (isIP(h) === 0 && !/^[A-Za-z0-9*]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(h)) {
    throw new Error(`${JSON.stringify(h)} is neither a DNS name nor an IP address`);
  }
  const san = new x509.SubjectAlternativeNameExtension(hosts.map((value) => ({ type: isIP(value) === 0 ? 'dns' : 'ip', value })), false);
  return issue(ca, hosts[0] as string, x509.ExtendedKeyUsage.serverAuth, options.validDays ?? 825, [san]);
}

/** A client certificate (for mutual TLS), e.g. with the user's name `phone/p3-1` as CN. */
export async function issueClientCertificate(ca: CertificateAuthority, options: { commonName: string; validDays?: number }): Promise<CertifiedKey> {
  return issue(ca, options.commonName, x509.ExtendedKeyUsage.clientAuth, options.validDays ?? 825);
}

/** Write a PEM: private keys 0600 (chmod too: an existing file keeps its old mode otherwise). */
export async function writePem(path: string, text: string, secret: boolean): Promise<void> {
  const mode = secret ? 0o600 : 0o644;
  await writeFile(path, text, { mode });
  await chmod(path, mode);
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

export interface SecurityDir {
  readonly dir: string;
  readonly tls: { readonly cert: string; readonly key: string; readonly ca: string };
  readonly credentials: CredentialsFile;
}

/**
 * Create a security directory: CA, server certificate for `hosts` (default
 * localhost and 127.0.0.1), empty credentials. Refuses to overwrite an
 * existing one unless `force` (a new CA invalidates every issued certificate).
 */
export async function initSecurityDir(dir: string, options: { hosts?: readonly string[]; force?: boolean } = {}): Promise<SecurityDir> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const path = (name: string): string => join(dir, name);
  if (options.force !== true) {
    for (const name of Object.values(SECURITY_FILES)) {
      if (await exists(path(name))) throw new Error(`${path(name)} exists: refusing to overwrite (use --force for a new CA)`);
    }
  }
  const ca = await createCertificateAuthority();
  const server = await issueServerCertificate(ca, { hosts: options.hosts ?? ['localhost', '127.0.0.1'] });
  await writePem(path(SECURITY_FILES.caKey), ca.key, true);
  await writePem(path(SECURITY_FILES.caCert), ca.cert, false);
  await writePem(path(SECURITY_FILES.serverKey), server.key, true);
  await writePem(path(SECURITY_FILES.serverCert), server.cert, false);
  const credentials = emptyCredentials();
  await writeCredentialsFile(path(SECURITY_FILES.credentials), credentials);
  return { dir, tls: { cert: server.cert, key: server.key, ca: ca.cert }, credentials };
}

/** Read what the broker needs from a security directory (validating the credentials). */
export async function loadSecurityDir(dir: string): Promise<SecurityDir> {
  const read = (name: string): Promise<string> => readFile(join(dir, name), 'utf8');
  const [cert, key, ca] = await Promise.all([read(SECURITY_FILES.serverCert), read(SECURITY_FILES.serverKey), read(SECURITY_FILES.caCert)]);
  return { dir, tls: { cert, key, ca }, credentials: await readCredentialsFile(join(dir, SECURITY_FILES.credentials)) };
}
