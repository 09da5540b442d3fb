/**
 * Per-actor credentials of the secure profile: a JSON file (zod-validated)
 * mapping each username `<role>/<actorId>` to an scrypt hash of its password
 * (per-user random salt, parameters stored with the hash so they can be raised
 * later) and, for `host` users, the actors it may act as (acl.ts).
 * Plaintext passwords are never stored; the file is written 0600.
 *
 * ```json
 * { "version": 1,
 *   "users": { "phone/p3-1": { "salt": "<b64>", "hash": "<b64>", "scrypt": { "N": 16384, "r": 8, "p": 1 }, "actsAs": [] } } }
 * ```
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { chmod, readFile, rename, writeFile } from 'node:fs/promises';
import { z } from 'zod';
import { identityFor, parseActsAs, parseUsername, type Identity } from './acl.ts';

export const CREDENTIALS_FILE = 'credentials.json';

const HASH_BYTES = 32;
const SALT_BYTES = 16;
/** N = 2^14, r = 8: ~16 MiB and tens of ms per check (RFC 7914's interactive setting); runs on the libuv pool. */
export const DEFAULT_SCRYPT = { N: 16_384, r: 8, p: 1 } as const;

const base64Bytes = (n: number) =>
  z.string().refine((s) => /^[A-Za-z0-9+/]+={0,2}$/.test(s) && Buffer.from(s, 'base64').length === n, `must be ${n} bytes, base64`);

const scryptParamsSchema = z
  .object({
    N: z.number().int().min(1024).max(1_048_576).refine((n) => (n & (n - 1)) === 0, 'must be a power of two'),
    r: z.number().int().min(1).max(32),
    p: z.number().int().min(1).max(16),
  })
  .strict();

const entrySchema = z
  .object({
    salt: base64Bytes(SALT_BYTES),
    hash: base64Bytes(HASH_BYTES),
    scrypt: scryptParamsSchema,
    actsAs: z.array(z.string().refine((a) => parseActsAs(a) !== undefined, 'must be <role>/<id> or <role>/* (role not host)')).default([]),
  })
  .strict();

export const credentialsFileSchema = z
  .object({
    version: z.literal(1),
    users: z.record(
      z.string().refine((u) => parseUsername(u) !== undefined, 'username must be <role>/<actorId> (actorId: 1-64 of [A-Za-z0-9_-])'),
      entrySchema,
    ),
  })
  .strict()
  .superRefine((file, ctx) => {
    for (const [user, entry] of Object.entries(file.users)) {
      if (entry.actsAs.length > 0 && !user.startsWith('host/')) {
        ctx.addIssue({ code: 'custom', path: ['users', user, 'actsAs'], message: 'only host users may act as other actors' });
      }
    }
  });

export type ScryptParams = z.infer<typeof scryptParamsSchema>;
export type CredentialEntry = z.infer<typeof entrySchema>;
export type CredentialsFile = z.infer<typeof credentialsFileSchema>;

export function emptyCredentials(): CredentialsFile {
  return { version: 1, users: {} };
}

/** Parse and validate a credentials file's text; throws listing every problem. */
export function parseCredentials(text: string, source = 'credentials'): CredentialsFile {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new Error(`${source}: not JSON (${(error as Error).message})`, { cause: error });
  }
  const result = credentialsFileSchema.safeParse(raw);
  if (result.success) return result.data;
  throw new Error(`${source}: invalid credentials file:\n${result.error.issues.map((i) => `  - ${i.path.join('.') || '(file)'}: ${i.message}`).join('\n')}`);
}

export async function readCredentialsFile(path: string): Promise<CredentialsFile> {
  return parseCredentials(await readFile(path, 'utf8'), path);
}

/** Write atomically (temp file + rename) with mode 0600: readers never see half a file. */
export async function writeCredentialsFile(path: string, file: CredentialsFile): Promise<void> {
  const checked = credentialsFileSchema.parse(file);
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, `${JSON.stringify(checked, null, 2)}\n`, { mode: 0o600 });
  await chmod(tmp, 0o600); // the umask may have narrowed it; never widen
  await rename(tmp, path);
}

function derive(password: string | Uint8Array, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  const maxmem = 256 * params.N * params.r * params.p + 1024 * 1024; // scrypt needs 128·N·r·p; Node's default cap is 32 MiB
  return new Promise((resolve, reject) =>
    scrypt(password, salt, HASH_BYTES, { ...params, maxmem }, (error, key) => (error ? reject(error) : resolve(key))),
  );
}

export async function hashPassword(password: string | Uint8Array, params: ScryptParams = DEFAULT_SCRYPT): Promise<Pick<CredentialEntry, 'salt' | 'hash' | 'scrypt'>> {
  const salt = randomBytes(SALT_BYTES);
  const hash = await derive(password, salt, params);
  return { salt: salt.toString('base64'), hash: hash.toString('base64'), scrypt: { ...params } };
}

/** A fresh random password: 24 base64url characters (144 bits). */
export function generatePassword(): string {
  return randomBytes(18).toString('base64url');
}

export interface AddCredentialOptions {
  readonly username: string;
  readonly password: string;
  readonly actsAs?: readonly string[];
  /** Overwrite an existing user (default: refuse). */
  readonly replace?: boolean;
  readonly scrypt?: ScryptParams;
}

/** Return a copy of `file` with the user added (the input is not modified). */
export async function addCredential(file: CredentialsFile, options: AddCredentialOptions): Promise<CredentialsFile> {
  const { username, password } = options;
  const actsAs = [...(options.actsAs ?? [])];
  const check = identityFor(username, `${parseUsername(username)?.role ?? 'x'}.${parseUsername(username)?.id ?? 'x'}`, actsAs);
  if (!check.ok) throw new Error(check.reason);
  if (password.length < 8) throw new Error('password must be at least 8 characters');
  if (Object.hasOwn(file.users, username) && options.replace !== true) throw new Error(`user ${username} exists (--replace / replace: true overwrites it)`);
  const entry: CredentialEntry = { ...(await hashPassword(password, options.scrypt)), actsAs };
  return credentialsFileSchema.parse({ version: 1, users: { ...file.users, [username]: entry } });
}

/** A fixed entry to hash against for unknown users, so a miss costs as much as a wrong password. */
let decoy: Promise<Pick<CredentialEntry, 'salt' | 'hash' | 'scrypt'>> | undefined;

/**
 * The user's entry when `password` is right, else undefined. Constant time in
 * the password (timingSafeEqual on equal-length hashes); an unknown user
 * costs a full scrypt too, so timing does not reveal which users exist.
 */
export async function verifyPassword(file: CredentialsFile, username: string, password: string | Uint8Array): Promise<CredentialEntry | undefined> {
  const entry = Object.hasOwn(file.users, username) ? file.users[username] : undefined;
  if (entry === undefined) {
    decoy ??= hashPassword('decoy password');
    const d = await decoy;
    await derive(password, Buffer.from(d.salt, 'base64'), d.scrypt);
    return undefined;
  }
  const actual = await derive(password, Buffer.from(entry.salt, 'base64'), entry.scrypt);
  const expected = Buffer.from(entry.hash, 'base64');
  return actual.length === expected.length && timingSafeEqual(actual, expected) ? entry : undefined;
}

export type AuthResult =
  | { readonly ok: true; readonly identity: Identity }
  /** MQTT 3.1.1 CONNACK codes: 2 identifier rejected, 4 bad username or password. */
  | { readonly ok: false; readonly returnCode: 2 | 4; readonly reason: string };

/** Authenticate one MQTT CONNECT: the password first (no hint which part was wrong), then the client-id rule. */
export async function authenticateConnect(
  file: CredentialsFile,
  clientId: string,
  username: string | undefined,
  password: Uint8Array | undefined,
): Promise<AuthResult> {
  if (username === undefined || password === undefined) return { ok: false, returnCode: 4, reason: 'no username or password' };
  const entry = await verifyPassword(file, username, password);
  if (entry === undefined) return { ok: false, returnCode: 4, reason: `bad username or password for ${JSON.stringify(username)}` };
  const built = identityFor(username, clientId, entry.actsAs);
  return built.ok ? built : { ok: false, returnCode: 2, reason: built.reason };
}
