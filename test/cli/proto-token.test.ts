/**
 * `tracecity proto token create|verify` as a user runs it (`node
 * bin/tracecity.js …` in child processes) on the Fernet vectors, and its
 * malformed-flag errors. Each process start costs ~0.5–1 s, so all 12 run
 * once, concurrently, in beforeAll, and the tests read the results; every
 * invalid vector is covered in-process by test/beacon/fernet.test.ts, four
 * of them (one per verification stage) here.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { runTracecity, type CliResult as Result } from '../support/processes.ts';
import { parseFernetKey, verifyFernetToken } from '../../protocol/beacon/fernet.ts';
import { nodeSuite } from '../../services/crypto/node.ts';
import generateVectors from '../vectors/fernet-generate.json' with { type: 'json' };
import invalidVectors from '../vectors/fernet-invalid.json' with { type: 'json' };
import verifyVectors from '../vectors/fernet-verify.json' with { type: 'json' };

function tracecity(args: readonly string[]) {
  return runTracecity(args, 60_000);
}

/** Processes in flight at once: CI machines have few cores, and each start is CPU-bound (tsx). */
const CONCURRENCY = 4;



/** Unix seconds of the vectors' RFC 3339 times (test/vectors/SOURCES.md; parsed properly in fernet.test.ts). */
const VECTOR_NOW: Readonly<Record<string, number>> = {
  '1985-10-26T01:20:00-07:00': 499_162_800,
  '1985-10-26T01:20:01-07:00': 499_162_801,
  '1985-10-26T01:21:31-07:00': 499_162_891,
};
const nowOf = (rfc3339: string): string => String(VECTOR_NOW[rfc3339] ?? Number.NaN);

const gen = generateVectors[0]!;
const ver = verifyVectors[0]!;
const KEY = gen.secret;
const IV_HEX = Buffer.from(gen.iv).toString('hex');

/** One invalid vector per verification stage: decoding, time, HMAC, decryption. */
const CLI_INVALID: readonly (readonly [desc: string, reason: string, suite: string])[] = [
  ['invalid base64', 'bad-base64', 'noble'],
  ['expired TTL', 'expired', 'node'],
  ['incorrect mac', 'bad-hmac', 'noble'],
  ['incorrect IV (causes padding error)', 'bad-padding', 'node'],
];

const invalidArgs = (desc: string, suite: string): string[] => {
  const v = invalidVectors.find((x) => x.desc === desc);
  if (v === undefined) throw new Error(`no invalid vector ${desc}`);
  return ['proto', 'token', 'verify', '--key', v.secret, '--token', v.token, '--now', nowOf(v.now), '--ttl', String(v.ttl_sec), '--suite', suite];
};

const CASES: Readonly<Record<string, readonly string[]>> = {
  generate: ['proto', 'token', 'create', '--key', KEY, '--now', nowOf(gen.now), '--message', gen.src, '--iv', IV_HEX],
  randomIv: ['proto', 'token', 'create', '--key', KEY, '--now', '1700000000', '--message', 'beacon 7', '--suite', 'noble'],
  verify: ['proto', 'token', 'verify', '--key', ver.secret, '--token', ver.token, '--now', nowOf(ver.now), '--ttl', String(ver.ttl_sec)],
  ...Object.fromEntries(CLI_INVALID.map(([desc, , suite]) => [desc, invalidArgs(desc, suite)])),
  badKey: ['proto', 'token', 'verify', '--key', 'c2hvcnQ=', '--token', ver.token, '--now', '1'],
  badIv: ['proto', 'token', 'create', '--key', KEY, '--now', '1', '--message', 'x', '--iv', '000102030405060708090a0b0c0d0e0g'],
  badNow: ['proto', 'token', 'create', '--key', KEY, '--now', '1.5', '--message', 'x'],
  missingToken: ['proto', 'token', 'verify', '--key', KEY, '--now', '1'],
  help: ['proto', 'token', 'create', '--help'],
};

const results = new Map<string, Result>();

beforeAll(async () => {
  const queue = Object.entries(CASES);
  const worker = async (): Promise<void> => {
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) results.set(next[0], await tracecity(next[1]));
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}, 120_000);

function result(name: string): Result {
  const r = results.get(name);
  if (r === undefined) throw new Error(`no result for ${name}`);
  return r;
}

const json = (r: Result): unknown => JSON.parse(r.stdout);

describe('tracecity proto token', () => {
  it('create with the vector IV prints the generate.json token byte for byte', () => {
    const r = result('generate');
    expect(r.code, r.stderr).toBe(0);
    expect(json(r)).toEqual({ token: gen.token });
  });

  it('create without --iv uses a random IV and the token verifies', () => {
    const r = result('randomIv');
    expect(r.code, r.stderr).toBe(0);
    const { token } = json(r) as { token: string };
    const verdict = verifyFernetToken(nodeSuite, parseFernetKey(KEY), token, { now: 1_700_000_000, ttlS: 0 });
    expect(verdict.ok && new TextDecoder().decode(verdict.value.message)).toBe('beacon 7');
    expect(token.slice(0, 11)).not.toBe(gen.token.slice(0, 11)); // different timestamp
  });

  it('verify prints the verify.json message and timestamp', () => {
    const r = result('verify');
    expect(r.code, r.stderr).toBe(0);
    expect(json(r)).toEqual({ ok: true, message: ver.src, timestamp: 499_162_800 });
  });

  it.each(CLI_INVALID)('verify of invalid vector %j prints reason %s with exit 0', (desc, reason) => {
    const r = result(desc);
    expect(r.code, r.stderr).toBe(0);
    expect(json(r)).toMatchObject({ ok: false, reason });
  });

  it.each([
    ['badKey', /--key must be a Fernet key.*32 bytes/],
    ['badIv', /--iv must be 32 hex digits/],
    ['badNow', /--now must be an integer/],
    ['missingToken', /required option '--token/],
  ])('malformed arguments (%s) exit 2 naming the flag', (name, message) => {
    const r = result(name);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
  });

  it('documents itself with --help', () => {
    const r = result('help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: tracecity proto token create/m);
    expect(r.stdout).toMatch(/--iv <hex>/);
    expect(r.stdout).toMatch(/--suite <name>/);
  });
});
