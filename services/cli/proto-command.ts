/**
 * `tracecity proto …`: protocol codecs on the command line, for interop
 * checks against other implementations and for debugging captured data.
 *
 *   tracecity proto token create --key K --now S --message TEXT [--iv HEX]
 *   tracecity proto token verify --key K --token T --now S [--ttl S]
 *   tracecity proto export verify --file export.zip --public-key key.pem [--key-id ID] [--key-version V]
 *
 * Output is one JSON line on stdout. A verdict on a token or an export file — accepted or
 * rejected — is a result, not an error: exit 0 either way. Malformed flags
 * exit 2 (main.ts maps commander errors) with a message naming the flag.
 *
 * Later issues add their groups next to `token` (e.g. `proto derive …`,
 * `proto export verify`): write a `registerXxx(proto)` and call it in
 * registerProto.
 */
import { createPublicKey, randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { InvalidArgumentError, Option } from 'commander';
import type { Command } from 'commander';
import { registerDerive } from './proto-derive-command.ts';
import {
  createFernetToken,
  encodeFernetToken,
  FERNET_IV_BYTES,
  parseFernetKey,
  verifyFernetToken,
  type FernetKey,
} from '../../protocol/beacon/fernet.ts';
import { MisuseError } from '../../protocol/errors.ts';
import { DEFAULT_EXPORT_LIMITS, parseExportZip, verifyExport, type ExportKey } from '../../protocol/keyserver/gaen-export.ts';
import { cryptoSuiteByName, cryptoSuiteNames, type CryptoSuiteName } from '../crypto/index.ts';
import { intFlag } from './options.ts';

export function registerProto(program: Command): void {
  const proto = program
    .command('proto')
    .description('protocol codecs on the command line (interop and debugging); one JSON line on stdout');
  registerToken(proto);
  registerExport(proto);
  registerDerive(proto);
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

// ------------------------------------------------------------ proto export

interface ExportVerifyFlags {
  file: string;
  publicKey: string;
  keyId?: string;
  keyVersion?: string;
  suite: CryptoSuiteName;
}

/**
 * A P-256 public key from PEM text: exactly one `PUBLIC KEY` block
 * (SubjectPublicKeyInfo, as EN-server's examples/export/public.pem and the
 * keys EN-internals loads), returned as the SEC1 uncompressed point 04 ‖ x ‖ y
 * that protocol/ takes. Throws an Error saying what is wrong.
 */
export function p256PublicKeyFromPem(pem: string): Uint8Array {
  const labels = [...pem.matchAll(/-----BEGIN ([^-\r\n]+)-----/g)].map((m) => m[1]);
  if (labels.length !== 1 || labels[0] !== 'PUBLIC KEY') {
    throw new Error(`expected one "-----BEGIN PUBLIC KEY-----" block, found ${labels.length === 0 ? 'none' : labels.map((l) => JSON.stringify(l)).join(', ')}`);
  }
  let key;
  try {
    key = createPublicKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new Error(`not a valid SubjectPublicKeyInfo (${err instanceof Error ? err.message : String(err)})`, { cause: err });
  }
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType !== 'ec' || curve !== 'prime256v1') {
    throw new Error(`the key is ${key.asymmetricKeyType ?? 'of an unknown type'}${curve === undefined ? '' : ` on ${curve}`}, not ECDSA P-256`);
  }
  const { x, y } = key.export({ format: 'jwk' });
  if (x === undefined || y === undefined) throw new Error('the key exported no coordinates');
  const point = Buffer.concat([Buffer.from([0x04]), Buffer.from(x, 'base64url'), Buffer.from(y, 'base64url')]);
  if (point.length !== 65) throw new Error('the key is not a 65-byte uncompressed P-256 point');
  return Uint8Array.from(point);
}

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

function keyJson(key: ExportKey): Record<string, unknown> {
  return {
    key: Buffer.from(key.keyData).toString('hex'),
    rollingStart: key.rollingStartIntervalNumber,
    rollingPeriod: key.rollingPeriod,
    transmissionRisk: key.transmissionRiskLevel,
    ...(key.reportType === undefined ? {} : { reportType: key.reportType }),
    ...(key.daysSinceOnsetOfSymptoms === undefined ? {} : { daysSinceOnsetOfSymptoms: key.daysSinceOnsetOfSymptoms }),
  };
}

function registerExport(proto: Command): void {
  const exportGroup = proto.command('export').description('GAEN key export files: export.zip = export.bin + export.sig (SPECS §1.7)');

  exportGroup
    .command('verify')
    .description(
      'parse and verify an export.zip; prints {"ok":true,"keys":[{"key":hex,"rollingStart":n,"rollingPeriod":n,"transmissionRisk":n}…],…} ' +
        'or {"ok":false,"reason":…,"detail":…} (exit 0 both); unreadable files or a bad key exit 2',
    )
    .requiredOption('--file <path>', 'the export.zip')
    .requiredOption('--public-key <path>', 'PEM file with the P-256 public key (-----BEGIN PUBLIC KEY-----, SubjectPublicKeyInfo)')
    .option('--key-id <id>', "only signatures with this verification_key_id (e.g. '310')")
    .option('--key-version <version>', "only signatures with this verification_key_version (e.g. 'v1')")
    .addOption(suiteOption())
    .action((flags: ExportVerifyFlags, command: Command) => {
      let pem: string;
      try {
        pem = readFileSync(flags.publicKey, 'utf8');
      } catch (err) {
        command.error(`error: --public-key: cannot read ${flags.publicKey}: ${errorText(err)}`, { exitCode: 2, code: 'tracecity.publicKey' });
      }
      let publicKey: Uint8Array;
      try {
        publicKey = p256PublicKeyFromPem(pem);
      } catch (err) {
        command.error(`error: --public-key: ${flags.publicKey} is not a PEM P-256 public key: ${errorText(err)}`, { exitCode: 2, code: 'tracecity.publicKey' });
      }
      let bytes: Uint8Array;
      try {
        const stat = statSync(flags.file);
        if (!stat.isFile()) throw new Error('not a regular file');
        if (stat.size > DEFAULT_EXPORT_LIMITS.maxZipBytes) {
          // Rejected as an export (like any other oversized archive), without reading it.
          printJson({ ok: false, reason: 'too-large', detail: `archive is ${stat.size} bytes, more than the ${DEFAULT_EXPORT_LIMITS.maxZipBytes}-byte cap`, field: 'zip' });
          return;
        }
        bytes = Uint8Array.from(readFileSync(flags.file));
      } catch (err) {
        command.error(`error: --file: cannot read ${flags.file}: ${errorText(err)}`, { exitCode: 2, code: 'tracecity.file' });
      }
      const parsed = parseExportZip(bytes);
      const verdict = parsed.ok ? verifyExport(cryptoSuiteByName(flags.suite), parsed.value, publicKey, { ...(flags.keyId === undefined ? {} : { keyId: flags.keyId }), ...(flags.keyVersion === undefined ? {} : { keyVersion: flags.keyVersion }) }) : parsed;
      if (!verdict.ok) {
        printJson({ ok: false, reason: verdict.reason, detail: verdict.detail, ...(verdict.field === undefined ? {} : { field: verdict.field }) });
        return;
      }
      const { parsed: file, signature } = verdict.value;
      printJson({
        ok: true,
        keys: file.keys.map(keyJson),
        ...(file.revisedKeys.length === 0 ? {} : { revisedKeys: file.revisedKeys.map(keyJson) }),
        region: file.region,
        startTimestamp: file.startTimestamp,
        endTimestamp: file.endTimestamp,
        batchNum: file.batchNum,
        batchSize: file.batchSize,
        signature: {
          keyId: signature.signatureInfo.verificationKeyId,
          keyVersion: signature.signatureInfo.verificationKeyVersion,
          algorithm: signature.signatureInfo.signatureAlgorithm,
        },
      });
    });
}
