/**
 * The tracing protocols the city can run: engine, engine configuration and
 * the phone settings each one gets by default.
 */
import type { TracingEngine, TracingProtocol } from '../../../actors/tracing/engine.ts';
import { gaenEngine, gaenEngineConfig } from '../../../actors/tracing/gaen-engine.ts';
import type { TracingPhoneInput } from '../../../actors/tracing/phone-logic.ts';
import type { DrbgState } from '../../../protocol/crypto/drbg.ts';
import type { CryptoSuite } from '../../../protocol/crypto/suite.ts';
import { MisuseError } from '../../../protocol/errors.ts';
import type { MessageRegistry } from '../../../protocol/wire/messages.ts';
import type { ActorSpec } from '../../host/host.ts';

export interface CityProtocol {
  readonly engine: TracingEngine<unknown, unknown>;
  readonly config: unknown;
  /** Phone settings other than ids, seed and engine config. */
  readonly phone: Partial<Omit<TracingPhoneInput<unknown>, 'phoneId' | 'serverId' | 'seed' | 'engine'>>;
  /** Codecs of the engine's own messages (exchange.messages), registered in every host of the city. */
  readonly messages?: (registry: MessageRegistry) => MessageRegistry;
  /** Backends of the protocol's own, spawned in the backend host (e.g. DIMY's QBF/CBF server). */
  readonly backends?: (env: BackendEnv) => readonly ActorSpec[];
}

export interface BackendEnv {
  readonly crypto: CryptoSuite;
  readonly drbg: DrbgState;
  /** Upload codes the health authority issued (printed form), one per positive. */
  readonly codes: readonly string[];
  readonly endMs: number;
}

/**
 * GAEN's risk score calibrated to the city's radio, as a health authority
 * calibrates it to real phones: with TRACING_PROPAGATION (−59 dBm at 1 m,
 * n = 3) and the −19 dBm TX power in the metadata, attenuation is
 * 40 + 30·log10(d): 49 dB at 2 m, 53 dB at 2.9 m, 58 dB at 4 m. Per-scan
 * averaging leaves ~1 dB of noise. So: immediate ≤ 50 dB (≈ 2.15 m) counts
 * fully, near ≤ 53 dB half, farther not at all; 15 weighted minutes a day
 * are high risk (the ground truth's 15 min within 2 m), 5 low.
 */
export const CITY_GAEN_EXPOSURE = Object.freeze({
  attenuationThresholdsDb: Object.freeze([50, 53, 58] as const),
  attenuationWeights: Object.freeze([1, 0.5, 0, 0] as const),
});

export function tracingProtocol(protocol: TracingProtocol): CityProtocol {
  switch (protocol) {
    case 'gaen':
      return { engine: gaenEngine, config: gaenEngineConfig({ exposure: CITY_GAEN_EXPOSURE }), phone: {} };
    default:
      throw new MisuseError('protocol', `${protocol} is not wired into the city yet`);
  }
}
