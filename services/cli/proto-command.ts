/**
 * `tracecity proto …`: protocol codecs on the command line, for interop
 * checks against other implementations and for debugging captured data.
 *
 *   tracecity proto token create --key K --now S --message TEXT [--iv HEX]
 *   tracecity proto token verify --key K --token T --now S [--ttl S]
 *
 * Output is one JSON line on stdout. A verdict on a token — accepted or
 * rejected — is a result, not an error: exit 0 either way. Malformed flags
 * exit 2 (main.ts maps commander errors) with a message naming the flag.
 *
 * Later issues add their groups next to `token` (e.g. `proto derive …`,
 * `proto export verify`): write a `registerXxx(proto)` and call it in
 * registerProto.
 */
import { randomBytes } from 'node:crypto';
import { InvalidArgumentError, Option } from 'commander';
import type { Command } from 'commander';
import {
  createFernetToken,
  encodeFernetToken,
  FERNET_IV_BYTES,
  parseFernetKey,
  verifyFernetToken,
  type FernetKey,
} from '../../protocol/beacon/fernet.ts';
import { MisuseError } from '../../protocol/errors.ts';
import { cryptoSuiteByName, cryptoSuiteNames, type CryptoSuiteName } from '../crypto/index.ts';
import { intFlag } from './options.ts';

export function registerProto(program: Command): void {
  const proto = program
    .command('proto')
    .description('protocol codecs on the command line (interop and debugging); one JSON line on stdout');
  registerToken(proto);
}

// ------------------------------------------------------------ flags

function suiteOption(): Option {
  return new Option('--suite <name>', 'crypto suite').choices(cryptoSuiteNames).default('node' satisfies CryptoSuiteName);
}

/** A Fernet key in its usual text form: base64url of 32 bytes with `=` padding (44 characters). */
function fernetKeyFlag(value: string): FernetKey {
  try {
    return parseFernetKey(value.trim());
  } catch (err) {
    if (err instanceof MisuseError) {
      throw new InvalidArgumentError(`--key must be a Fernet key: base64url of 32 bytes with '=' padding (44 characters); ${err.message}`);
    }
    throw err;
  }
}

function ivFlag(value: string): Uint8Array {
  const hexLength = FERNET_IV_BYTES * 2;
  if (!new RegExp(`^[0-9a-fA-F]{${hexLength}}$`).test(value.trim())) {
    throw new InvalidArgumentError(`--iv must be ${hexLength} hex digits (${FERNET_IV_BYTES} bytes), got ${JSON.stringify(value)}`);
  }
  return Uint8Array.from(Buffer.from(value.trim(), 'hex'));
}

function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

// ------------------------------------------------------------ proto token

interface TokenCreateFlags {
  key: FernetKey;
  now: number;
  message: string;
  iv?: Uint8Array;
  suite: CryptoSuiteName;
}

interface TokenVerifyFlags {
  key: FernetKey;
  token: string;
  now: number;
  ttl?: number;
  suite: CryptoSuiteName;
}

function registerToken(proto: Command): void {
  const token = proto.command('token').description('Fernet tokens (SmartBeacon quarantine check, SPECS §5)');

  token
    .command('create')
    .description('create a Fernet token; prints {"token":"<base64url>"}')
    .requiredOption('--key <base64url>', 'Fernet key: base64url of signing key (16 B) ‖ encryption key (16 B), with = padding', fernetKeyFlag)
    .requiredOption('--now <unix-s>', 'token timestamp, Unix seconds', intFlag('--now', 0))
    .requiredOption('--message <text>', 'message, encoded as UTF-8')
    .option('--iv <hex>', `IV, ${FERNET_IV_BYTES * 2} hex digits (default: random from node:crypto)`, ivFlag)
    .addOption(suiteOption())
    .action((flags: TokenCreateFlags) => {
      const suite = cryptoSuiteByName(flags.suite);
      const iv = flags.iv ?? new Uint8Array(randomBytes(FERNET_IV_BYTES));
      const bytes = createFernetToken(suite, flags.key, { now: flags.now, iv, message: new TextEncoder().encode(flags.message) });
      printJson({ token: encodeFernetToken(bytes) });
    });

  token
    .command('verify')
    .description('verify a Fernet token; prints {"ok":true,"message":…,"timestamp":N} or {"ok":false,"reason":…} (exit 0 both)')
    .requiredOption('--key <base64url>', 'Fernet key: base64url of signing key (16 B) ‖ encryption key (16 B), with = padding', fernetKeyFlag)
    .requiredOption('--token <base64url>', 'the token (base64url with = padding)')
    .requiredOption('--now <unix-s>', "verifier's clock, Unix seconds", intFlag('--now', 0))
    .option('--ttl <s>', 'maximum token age in seconds; without it no time checks (pyca)', intFlag('--ttl', 0))
    .addOption(suiteOption())
    .action((flags: TokenVerifyFlags) => {
      const suite = cryptoSuiteByName(flags.suite);
      const verdict = verifyFernetToken(suite, flags.key, flags.token, { now: flags.now, ttlS: flags.ttl });
      if (!verdict.ok) {
        printJson({ ok: false, reason: verdict.reason, detail: verdict.detail });
        return;
      }
      const { message, timestamp } = verdict.value;
      try {
        printJson({ ok: true, message: new TextDecoder('utf-8', { fatal: true }).decode(message), timestamp });
      } catch {
        // Not UTF-8: say so with the exact bytes rather than print replacement characters.
        printJson({ ok: true, message: null, messageHex: Buffer.from(message).toString('hex'), timestamp });
      }
    });
}
