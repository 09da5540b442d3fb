/**
 * What a contact-tracing protocol plugs into the phone's tracing machine
 * (actors/tracing/phone.ts). The machine owns everything the protocols
 * share — the radio duty cycle, identifier rotation together with the
 * address, retention timers, the diagnosis upload with retries, following
 * the key server, the exposure log and the health code — and asks the
 * engine only the protocol questions:
 *
 *   rotate     which payloads to advertise from now, and until when
 *   observe    what to keep of a scan window's frames
 *   expire     forget what is older than the retention
 *   report     what to upload on a positive diagnosis (and the state after it)
 *   match      which downloaded records were met, and how closely
 *   storage    bytes of tracing data held (for the comparison table)
 *
 * Protocols with a backend of their own (DIMY's QBF/CBF server, TCN's modes
 * A and B) add an `exchange`: periodic sends, replies, and a diagnosis that
 * goes to that backend instead of (or besides) the key server.
 *
 * Engines are pure functions over plain-data state (Uint8Array, numbers,
 * strings, arrays, plain objects), so the phone's snapshot holds them.
 * Randomness comes from the DRBG state threaded through every call.
 */
import type { DrbgState } from '../../protocol/crypto/drbg.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import type { DiagnosisRecord, IdentifiedRecord } from '../../protocol/keyserver/distribution-records.ts';
import type { WireValue } from '../../protocol/wire/msgpack.ts';
import type { ReceivedFrame, SimMillis } from '../ports.ts';

export const TRACING_PROTOCOLS = ['gaen', 'dp3t', 'tcn', 'dimy'] as const;
export type TracingProtocol = (typeof TRACING_PROTOCOLS)[number];

/** Risk of one exposure as the engine rates it (GAEN: the risk score's none/low/high). */
export type ExposureRisk = 'low' | 'high';

/** One exposure the engine found: a positive's record met on `dayNumber` for `minutes` (its estimate). */
export interface Exposure {
  /** The downloaded record (id) that matched. */
  readonly recordId: string;
  /** UTC day of the contact (days since the Unix epoch). */
  readonly dayNumber: number;
  /** First and last sighting of the contact that day, simulated ms. */
  readonly firstAt: SimMillis;
  readonly lastAt: SimMillis;
  /** The engine's duration estimate (GAEN: weighted minutes). */
  readonly minutes: number;
  readonly risk: ExposureRisk;
}

/** Measures CPU time of pure work (injected by the host layer; a machine cannot read a clock). */
export interface WorkMeter {
  time<T>(label: string, work: () => T): T;
}

export interface EngineDeps {
  readonly crypto: CryptoSuite;
  readonly meter?: WorkMeter;
}

/** Radio timing an engine asks for (defaults per protocol, overridable in the phone's input). */
export interface RadioTiming {
  readonly advertiseIntervalMs: number;
  readonly scanWindowMs: number;
  readonly scanIntervalMs: number;
  /** Report each (address, payload) once per scan window (ScanOptions.filterDuplicates). */
  readonly filterDuplicates: boolean;
}

export interface Rotation<S> {
  readonly state: S;
  readonly drbg: DrbgState;
  /** Payloads for the advertising set (round-robin, one per event). */
  readonly payloads: readonly Uint8Array[];
  /** When to rotate next (> at). */
  readonly nextAt: SimMillis;
}

export interface Report<S> {
  readonly state: S;
  readonly drbg: DrbgState;
  /** Records for the key server (1..MAX_UPLOAD_RECORDS). */
  readonly records: readonly DiagnosisRecord[];
}

export interface MatchOutcome<S> {
  readonly state: S;
  readonly exposures: readonly Exposure[];
}

export interface TracingEngine<S, C> {
  readonly protocol: TracingProtocol;
  readonly timing: RadioTiming;
  /** Fresh state for a phone started at `at`; `config` is the engine's own (validated) configuration. */
  init(deps: EngineDeps, config: C, at: SimMillis, drbg: DrbgState): { readonly state: S; readonly drbg: DrbgState };
  rotate(deps: EngineDeps, config: C, state: S, at: SimMillis, drbg: DrbgState): Rotation<S>;
  /** Keep what the protocol stores of these frames; returns the frames it refused (not its protocol, malformed). */
  observe(deps: EngineDeps, config: C, state: S, frames: readonly ReceivedFrame[], at: SimMillis): { readonly state: S; readonly refused: number };
  /** Forget own keys and observations older than the retention. */
  expire(config: C, state: S, at: SimMillis): S;
  /**
   * Oldest time of anything held — an observation's time, the last moment an
   * own key was in use — so that after expire(at) it is ≥ at − retention
   * (the retention invariant the model tests check).
   */
  oldestHeld(state: S): SimMillis | undefined;
  /** What a positive uploads for contacts since `infectiousFrom`. */
  report(deps: EngineDeps, config: C, state: S, infectiousFrom: SimMillis, at: SimMillis, drbg: DrbgState): Report<S>;
  /** Match records downloaded since the last call against what was observed. */
  match(deps: EngineDeps, config: C, state: S, records: readonly IdentifiedRecord[], at: SimMillis): MatchOutcome<S>;
  /** Bytes of tracing data held: own keys plus observations. */
  storageBytes(state: S): number;
  /** A backend of the protocol's own (optional). */
  readonly exchange?: EngineExchange<S, C>;
}

/** A message the engine wants sent (the phone adds its inbox as replyTo). */
export interface EngineSend {
  readonly topic: string;
  readonly msgType: string;
  readonly body: WireValue;
}

export interface EngineStep<S> {
  readonly state: S;
  readonly sends?: readonly EngineSend[];
  readonly exposures?: readonly Exposure[];
  /** Bytes this step moved to (up) and from (down) the network, for the comparison table. */
  readonly bytesUp?: number;
  readonly bytesDown?: number;
}

export interface EngineExchange<S, C> {
  /** Message types handed to onMessage (their codecs must be registered in the phone's host). */
  readonly messages: readonly string[];
  /** Topics to subscribe to besides the key server's index. */
  subscriptions(config: C, phoneId: string): readonly string[];
  /** Period of `periodic`, ms; undefined: none. */
  periodMs(config: C): number | undefined;
  periodic(deps: EngineDeps, config: C, state: S, at: SimMillis, phoneId: string): EngineStep<S>;
  onMessage(deps: EngineDeps, config: C, state: S, msgType: string, body: unknown, at: SimMillis): EngineStep<S>;
  /** On a positive diagnosis, after report(): what goes to the engine's own backend. */
  diagnosed(deps: EngineDeps, config: C, state: S, infectiousFrom: SimMillis, at: SimMillis, code: string, phoneId: string): EngineStep<S>;
}
