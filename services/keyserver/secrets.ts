/**
 * The key server's secrets: the upload-code pepper (also keys tracking ids)
 * and the P-256 key that signs distribution files and export.zip. They live
 * in one JSON file outside the database and the log (a leaked log can print
 * no code and forge no file), created with mode 0600 on first use; the public
 * key is written next to it as PEM (`<file>.pub.pem`) for clients and for
 * `tracecity proto export verify --public-key`.
 */
import { randomBytes, createPublicKey } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import { KEY_ID_PATTERN } from '../../protocol/keyserver/distribution-signing.ts';
import { UPLOAD_CODE_PEPPER_MIN_BYTES } from '../../protocol/keyserver/upload-code.ts';
import { nodeSuite } from '../crypto/node.ts';
import { ConfigError } from '../cli/options.ts';

export interface KeyServerSecrets {
  readonly pepper: Uint8Array;
  /** P-256 private scalar, 32 bytes. */
  readonly signingKey: Uint8Array;
  readonly keyId: string;
}

const hexBytes = (min: number, max: number) =>
  z
    .string()
    .regex(/^[0-9a-f]*$/, 'lowercase hex')
    .refine((s) => s.length >= 2 * min && s.length <= 2 * max && s.length % 2 === 0, `${min}–${max} bytes of hex`);

const secretsSchema = z.strictObject({
  v: z.literal(1),
  pepper: hexBytes(UPLOAD_CODE_PEPPER_MIN_BYTES, 64),
  signingKey: hexBytes(32, 32),
  keyId: z.string().regex(KEY_ID_PATTERN),
});

const fromHex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));

/** PEM SubjectPublicKeyInfo of a SEC1 uncompressed P-256 point. */
export function p256PublicKeyPem(point: Uint8Array): string {
  const x = Buffer.from(point.subarray(1, 33)).toString('base64url');
  const y = Buffer.from(point.subarray(33, 65)).toString('base64url');
  return createPublicKey({ key: { kty: 'EC', crv: 'P-256', x, y }, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString();
}

export function publicKeyPath(secretsPath: string): string {
  return `${secretsPath}.pub.pem`;
}

/** Load the secrets file; ConfigError when it is missing (a read-only command must not mint secrets). */
export function loadSecrets(path: string): KeyServerSecrets {
  if (!existsSync(path)) throw new ConfigError([`no secrets file at ${path} (it is created beside the log by \`tracecity keyserver init\` or \`serve\`)`]);
  return loadOrCreateSecrets(path);
}

/** Load the secrets file, or create it (fresh CSPRNG secrets, mode 0600) when it does not exist. */
export function loadOrCreateSecrets(path: string, keyId = 'tracecity-ks-1'): KeyServerSecrets {
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true });
    let signingKey: Uint8Array;
    do signingKey = Uint8Array.from(randomBytes(32));
    while (!isValidScalar(signingKey));
    const json = { v: 1, pepper: Buffer.from(randomBytes(32)).toString('hex'), signingKey: Buffer.from(signingKey).toString('hex'), keyId };
    writeFileSync(path, `${JSON.stringify(json, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError([`${path}: not a JSON secrets file (${err instanceof Error ? err.message : String(err)})`]);
  }
  const parsed = secretsSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map((i) => `${path}: ${i.path.join('.') || '(file)'}: ${i.message}`));
  const secrets = { pepper: fromHex(parsed.data.pepper), signingKey: fromHex(parsed.data.signingKey), keyId: parsed.data.keyId };
  if (!isValidScalar(secrets.signingKey)) throw new ConfigError([`${path}: signingKey: not a valid P-256 private key`]);
  const pem = publicKeyPath(path);
  if (!existsSync(pem)) writeFileSync(pem, p256PublicKeyPem(nodeSuite.p256PublicKey(secrets.signingKey)));
  return secrets;
}

function isValidScalar(key: Uint8Array): boolean {
  try {
    nodeSuite.p256PublicKey(key);
    return true;
  } catch {
    return false;
  }
}
