/**
 * SmartBeacon presence tokens (issue 3): how many tokens one core verifies
 * and creates per second with each crypto suite. Target: the app backend
 * verifies ≥ 50,000 tokens/s on one core with node:crypto.
 *
 * The verifier sees many distinct tokens under one beacon key (one beacon,
 * one household): the bench rotates through pre-built tokens with distinct
 * IVs and timestamps, as raw bytes (what phones relay) and as base64url text
 * (what logs and the CLI carry).
 */
import { encodeFernetToken, parseFernetKey } from '../protocol/beacon/fernet.ts';
import { createPresenceToken, verifyPresenceToken } from '../protocol/beacon/presence-token.ts';
import { SeededRng } from '../protocol/crypto/drbg.ts';
import { nobleSuite } from '../protocol/crypto/noble.ts';
import type { CryptoSuite } from '../protocol/crypto/suite.ts';
import { nodeSuite } from '../services/crypto/node.ts';
import { opsPerSecond, type BenchModule, type BenchRow } from './report.ts';

const MIN_MS = 500;
/** Issue 3: app backend verification throughput on one core, node:crypto suite. */
const TARGET_VERIFY_PER_S = 50_000;
const TOKENS = 1024;
/** Beacon period of the pre-built tokens; any spacing works, it only makes timestamps distinct. */
const PERIOD_S = 60;
const T0_S = 1_700_000_000;
/** TTL wide enough for every pre-built token at the verifier's `now`. */
const TTL_S = TOKENS * PERIOD_S;
const GROUP = 'beacon-token';

export const tokenBench: BenchModule = () => {
  const rng = new SeededRng(new TextEncoder().encode('tracecity bench token v1'));
  const key = parseFernetKey(rng.bytes(32));
  const ivs = Array.from({ length: TOKENS }, () => rng.bytes(16));
  // Built with noble so neither suite's caches are warmed by setup.
  const raw = ivs.map((iv, i) => createPresenceToken(nobleSuite, key, T0_S + i * PERIOD_S, iv));
  const text = raw.map((t) => encodeFernetToken(t));
  const now = T0_S + TOKENS * PERIOD_S;

  const verifier = (suite: CryptoSuite, tokens: readonly (Uint8Array | string)[]) => {
    let i = 0;
    return () => {
      const verdict = verifyPresenceToken(suite, key, tokens[i++ % TOKENS]!, { now, ttlS: TTL_S });
      if (!verdict.ok) throw new Error(`bench/token: ${verdict.codec}/${verdict.reason}`);
    };
  };
  const creator = (suite: CryptoSuite) => {
    let i = 0;
    return () => {
      const n = i++ % TOKENS;
      createPresenceToken(suite, key, T0_S + n * PERIOD_S, ivs[n]!);
    };
  };

  const pair = (name: string, make: (suite: CryptoSuite) => () => void): BenchRow & { values: { noble: number; node: number } } => {
    const noble = Math.round(opsPerSecond(make(nobleSuite), MIN_MS));
    const node = Math.round(opsPerSecond(make(nodeSuite), MIN_MS));
    return { group: GROUP, name, values: { noble, node }, unit: 'tokens/s', ratio: { label: 'node/noble', value: Math.round((node / noble) * 10) / 10 } };
  };

  const verifyRaw = pair('presence verify, raw 73 B', (s) => verifier(s, raw));
  const verifyText = pair('presence verify, base64url text', (s) => verifier(s, text));
  const create = pair('presence create', creator);
  const target = (row: typeof verifyRaw, name: string): BenchRow => ({
    group: GROUP,
    name,
    values: { node: row.values.node },
    unit: 'tokens/s',
    ratio: { label: 'node / 50k target', value: Math.round((row.values.node / TARGET_VERIFY_PER_S) * 100) / 100, target: '≥ 1.00 (≥ 50,000/s)' },
  });
  return Promise.resolve([
    verifyRaw,
    target(verifyRaw, 'presence verify raw vs target'),
    verifyText,
    target(verifyText, 'presence verify text vs target'),
    create,
  ]);
};
