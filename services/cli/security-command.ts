/**
 * `tracecity security …`: set up the secure profile (DESIGN.md "Security
 * profiles") in one directory that `tracecity broker --secure <dir>` reads:
 *   security init --dir d [--hosts localhost,127.0.0.1] [--force]
 *       a new local CA, a server certificate for the hosts, empty credentials;
 *   security add-user --dir d --user role/actorId [--password p] [--acts-as a,b] [--replace]
 *       add a user; without --password one is generated and printed once.
 * Clients verify the broker with <dir>/ca.pem and connect with client id
 * `<role>.<actorId>` (or `<role>.<actorId>.<suffix>`).
 */
import { InvalidArgumentError, type Command } from 'commander';
import { join } from 'node:path';
import { clientIdPrefix, parseActsAs, parseUsername } from '../security/acl.ts';
import { SECURITY_FILES, initSecurityDir } from '../security/certs.ts';
import { addCredential, generatePassword, readCredentialsFile, writeCredentialsFile } from '../security/credentials.ts';
import { ConfigError } from './options.ts';

interface InitFlags {
  dir: string;
  hosts: string[];
  force?: boolean;
}

interface AddUserFlags {
  dir: string;
  user: string;
  password?: string;
  actsAs: string[];
  replace?: boolean;
}

function listFlag(name: string) {
  return (value: string): string[] => {
    const items = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
    if (items.length === 0) throw new InvalidArgumentError(`${name} needs at least one comma-separated value`);
    return items;
  };
}

function userFlag(value: string): string {
  if (parseUsername(value) === undefined) {
    throw new InvalidArgumentError(`--user must be <role>/<actorId> (a known role; actorId 1-64 of [A-Za-z0-9_-]), got ${JSON.stringify(value)}`);
  }
  return value;
}

function actsAsFlag(value: string): string[] {
  const items = listFlag('--acts-as')(value);
  for (const item of items) {
    if (parseActsAs(item) === undefined) throw new InvalidArgumentError(`--acts-as: ${JSON.stringify(item)} is not <role>/<id> or <role>/* (role not host)`);
  }
  return items;
}

export function registerSecurity(program: Command): void {
  const security = program.command('security').description('secure profile: local CA, broker certificate, per-actor credentials');

  security
    .command('init')
    .description('create a security directory: CA, server certificate (ECDSA P-256) and an empty credentials file')
    .requiredOption('--dir <dir>', 'directory to create (mode 0700)')
    .option('--hosts <list>', 'comma-separated DNS names / IP addresses for the server certificate', listFlag('--hosts'), ['localhost', '127.0.0.1'])
    .option('--force', 'overwrite an existing directory (a new CA: every issued certificate becomes invalid)')
    .action(async (flags: InitFlags) => {
      try {
        await initSecurityDir(flags.dir, { hosts: flags.hosts, force: flags.force === true });
      } catch (error) {
        throw new ConfigError([(error as Error).message]);
      }
      process.stdout.write(
        [
          `security directory ${flags.dir}`,
          `  CA certificate      ${join(flags.dir, SECURITY_FILES.caCert)} (give to clients)`,
          `  CA key              ${join(flags.dir, SECURITY_FILES.caKey)} (secret)`,
          `  server certificate  ${join(flags.dir, SECURITY_FILES.serverCert)} for ${flags.hosts.join(', ')}`,
          `  server key          ${join(flags.dir, SECURITY_FILES.serverKey)} (secret)`,
          `  credentials         ${join(flags.dir, SECURITY_FILES.credentials)} (no users yet: security add-user)`,
          '',
        ].join('\n'),
      );
    });

  security
    .command('add-user')
    .description('add a user <role>/<actorId> with an scrypt-hashed password')
    .requiredOption('--dir <dir>', 'security directory (security init)')
    .requiredOption('--user <role/actorId>', 'username, e.g. phone/p3-1 or host/h1', userFlag)
    .option('--password <p>', 'password (at least 8 characters; visible in the process list: prefer the generated one)')
    .option('--acts-as <list>', 'host users only: comma-separated actors it may act as, e.g. phone/p1,beacon/*', actsAsFlag, [])
    .option('--replace', 'replace an existing user (new password)')
    .action(async (flags: AddUserFlags) => {
      const path = join(flags.dir, SECURITY_FILES.credentials);
      const password = flags.password ?? generatePassword();
      try {
        const before = await readCredentialsFile(path);
        const after = await addCredential(before, { username: flags.user, password, actsAs: flags.actsAs, replace: flags.replace === true });
        await writeCredentialsFile(path, after);
      } catch (error) {
        throw new ConfigError([(error as Error).message]);
      }
      const lines = [`added ${flags.user}: connect with client id ${clientIdPrefix(flags.user)} (or ${clientIdPrefix(flags.user)}.<suffix>)`];
      // printed once: only the hash is stored
      if (flags.password === undefined) lines.push(`password ${password}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
