/**
 * The tracing protocols the city can run: engine, engine configuration and
 * the phone settings each one gets by default.
 */
import type { TracingEngine, TracingProtocol } from '../../../actors/tracing/engine.ts';
import { dp3tEngine, dp3tEngineConfig } from '../../../actors/tracing/dp3t-engine.ts';
import { gaenEngine, gaenEngineConfig } from '../../../actors/tracing/gaen-engine.ts';
import type { TracingPhoneInput } from '../../../actors/tracing/phone-logic.ts';
import { tcnEngine, tcnEngineConfig, type TcnMode } from '../../../actors/tracing/tcn-engine.ts';
import { createTcnBackendMachine } from '../../../actors/tcn/backend.ts';
import { dimyBackendActor, dimyEngine, dimyEngineConfig, dimyMessages } from '../../../actors/tracing/dimy-backend-spec.ts';
import { drbgDraw } from '../../../protocol/crypto/drbg.ts';
import { tcnMessages } from '../../../protocol/tcn/messages.ts';
import type { DrbgState } from '../../../protocol/crypto/drbg.ts';
import type { CryptoSuite } from '../../../protocol/crypto/suite.ts';
import { MisuseError } from '../../../protocol/errors.ts';
import type { MessageRegistry } from '../../../protocol/wire/messages.ts';
import type { ActorSpec } from '../../host/host.ts';

export interface CityProtocol {
  /** Row label in the comparison table (e.g. `tcn (mode C)`). */
  readonly label: string;
  /** What limits this protocol's accuracy in the city, for the table's notes. */
  readonly limits: string;
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
  attenuationWeights: Object.freeze([1, 0, 0, 0] as const),
});

export function tracingProtocol(protocol: TracingProtocol, options: { readonly tcnMode?: TcnMode } = {}): CityProtocol {
  switch (protocol) {
    case 'gaen':
      return {
        label: 'gaen',
        limits:
          "EN's standard risk score buckets every scan on its own attenuation (±1 dB after averaging a scan's advertisements), so hours at 2.0–2.6 m from a positive (desk and household neighbours) collect enough scans under the 2 m threshold to reach 15 weighted minutes; DP-3T and TCN, which have no standard score, are scored here on runs of scans averaged together. 5-minute scans also quantise durations (a 15-minute contact spans 3–4 scans).",
        engine: gaenEngine,
        config: gaenEngineConfig({ exposure: CITY_GAEN_EXPOSURE }),
        phone: {},
      };
    case 'dp3t':
      // Same radio cadence as GAEN; the RSSI threshold (−68 dBm ≈ 2 m in TRACING_PROPAGATION) is in dp3t-engine.ts.
      return {
        label: 'dp3t (low-cost)',
        limits:
          'RSSI-based distance without TX power (same phones everywhere in the city, so no calibration gap): pairs just beyond 2 m sit ~1 dB under the threshold; short contacts give few windows to average; 5-minute scans quantise durations.',
        engine: dp3tEngine,
        config: dp3tEngineConfig(),
        phone: {},
      };
    case 'tcn': {
      // Mode C (local matching, reports via the key server) unless asked; A and B add the TCN backend, which gets the health authority's codes.
      const config = tcnEngineConfig({ mode: options.tcnMode ?? 'C' });
      const backend = {
        messages: (registry: MessageRegistry) => tcnMessages(registry),
        backends: (env: BackendEnv) => [
          { role: 'app-backend' as const, id: config.backendId, machine: createTcnBackendMachine({ crypto: env.crypto, pepper: drbgDraw(env.drbg, 32).bytes }), input: { id: config.backendId, codes: env.codes, codesExpireAt: env.endMs } },
        ],
      };
      return {
        label: `tcn (mode ${config.mode})`,
        limits:
          'One RSSI per 1-minute scan (4 dB noise), averaged over each run of sightings: exact here, where people sit at fixed spots for hours, but a run that mixes distances (walking, changing seats) averages them and short contacts give few readings. A and B notify at once but move contact logs (A: every phone streams its contacts to the server; B: every positive log goes to every phone).',
        engine: tcnEngine,
        config,
        phone: {},
        ...(config.mode === 'C' ? {} : backend),
      };
    }
    case 'dimy': {
      // One share per 5-minute scan, k = 3 of n = 5 (actors/tracing/dimy-config.ts); the backend's default `tail` rule (protocol/dimy/matching.ts).
      const config = dimyEngineConfig();
      return {
        label: 'dimy',
        limits:
          'No distance at all: any phone heard in k = 3 scan windows of one 25-min epoch (10–15 min) is an encounter — whole offices, classrooms and households, 1 m or 15 m apart; the backend answers matched / not matched on a whole QBF (no day, duration or risk); daily QBFs delay notifications by up to a day; the AND-count threshold rises with filter fill, so contacts that share few EncIDs vanish in full filters; a positive that uploaded its CBF stops querying.',
        engine: dimyEngine,
        config,
        phone: {},
        messages: (registry: MessageRegistry) => dimyMessages(registry),
        backends: (env: BackendEnv) => [dimyBackendActor(env, config)],
      };
    }
    default:
      throw new MisuseError('protocol', `${String(protocol)} is not wired into the city yet`);
  }
}
