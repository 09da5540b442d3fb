/**
 * The DIMY backend as a deployment spawns it next to DIMY phones (the tracing city:
 * services/city/tracing/protocols.ts): the backend machine (actors/dimy/backend.ts) at the
 * inbox the phones' exchange writes to (role app-backend, id config.backendId), with the health
 * authority's codes registered from the start.
 *
 * Codes: the health authority prints one-time codes; the backend stores only
 * HMAC-SHA-256(pepper, label ‖ code) digests (protocol/keyserver/upload-code.ts). The pepper is
 * drawn from the deployment's DRBG here and handed to the machine as a dependency (never into
 * its context); the same pepper makes the digests, so an upload's code is found.
 */
import { drbgDraw, type DrbgState } from '../../protocol/crypto/drbg.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import { dimyMessages } from '../../protocol/dimy/messages.ts';
import { ensure } from '../../protocol/errors.ts';
import { parseUploadCode, UPLOAD_CODE_PEPPER_MIN_BYTES, uploadCodeDigest } from '../../protocol/keyserver/upload-code.ts';
import { createDimyBackendMachine, type DimyBackendInput } from '../dimy/backend.ts';
import type { DimyEngineConfig } from './dimy-config.ts';
import { DIMY_BACKEND_ROLE } from './dimy-exchange.ts';

export { dimyEngine, dimyEngineConfig } from './dimy-engine.ts';
export { dimyMessages };

export interface DimyBackendEnv {
  readonly crypto: CryptoSuite;
  readonly drbg: DrbgState;
  /** The health authority's upload codes, printed form. */
  readonly codes: readonly string[];
  /** The codes are refused from this time on, ms. */
  readonly endMs: number;
}

/** The backend actor (role, id, machine, input) for phones running `config`. */
export function dimyBackendActor(env: DimyBackendEnv, config: DimyEngineConfig, backend: DimyBackendInput['config'] = {}) {
  const pepper = drbgDraw(env.drbg, UPLOAD_CODE_PEPPER_MIN_BYTES).bytes;
  const digests = env.codes.map((text, i) => {
    const code = parseUploadCode(text);
    ensure(code.ok, `env.codes[${i}]`, 'must be a printed upload code');
    return uploadCodeDigest(env.crypto, code.value, pepper);
  });
  const input: DimyBackendInput = { id: config.backendId, config: backend, codes: { digests, expiresAt: env.endMs } };
  return { role: DIMY_BACKEND_ROLE, id: config.backendId, machine: createDimyBackendMachine({ crypto: env.crypto, pepper }), input } as const;
}
