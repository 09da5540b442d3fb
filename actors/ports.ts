/**
 * The ports the actor core needs (hexagonal architecture: the core owns its
 * interfaces, adapters in hardware/ and services/ implement them).
 *
 * Machines themselves never call a port: they emit effects as data
 * (actors/effects.ts) and the host interprets them with these adapters.
 *
 * Time everywhere is *simulated* milliseconds since the Unix epoch
 * (`SimMillis`): under the virtual scheduler it jumps between deadlines, under
 * wall × speed it is t0 + (wall − wall0) × speed.
 */

/** Simulated time in milliseconds since the Unix epoch. */
export type SimMillis = number;

// ---------------------------------------------------------------- Radio

/** What a radio can put in the air. */
export interface RadioCapabilities {
  /** Largest payload (bytes) one advertisement carries as service data. */
  readonly maxAdvertisementPayload: number;
  /** Whether extended (BLE 5) advertising is available. */
  readonly extendedAdvertising: boolean;
}

/** One advertisement received while scanning. */
export interface ReceivedFrame {
  /** Service-data bytes of the advertisement (one fragment, see protocol/wire/framing). */
  readonly payload: Uint8Array;
  /** Received signal strength, integer dBm (controllers report whole dB). */
  readonly rssi: number;
  /** When it was received, simulated ms. */
  readonly at: SimMillis;
  /**
   * Link-layer source address as seen on the air (BLE: the advertiser's
   * current, possibly random, MAC; simulation: the radio's address).
   * Reassembly keys fragments by it.
   */
  readonly address: string;
}

export type FrameListener = (frame: ReceivedFrame) => void;

/** How advertise() puts a new set in the air. */
export interface AdvertiseOptions {
  /**
   * Switch to a fresh random link-layer address together with this set
   * (GAEN, DP-3T, TCN: identifier rotation and address change must coincide,
   * or the address links the old identifier to the new one). Default false.
   */
  readonly newAddress?: boolean;
}

/**
 * Scan parameters (BLE LE Set Scan Parameters window/interval; Android scan
 * modes; the OS-scheduled scans of GAEN). Default: scan continuously, report
 * every advertisement.
 */
export interface ScanOptions {
  /** Duty cycle: listen `windowMs` out of every `intervalMs`, windows starting when the scan starts. Both or neither. */
  readonly windowMs?: number;
  readonly intervalMs?: number;
  /** Report each (address, payload) once per window (BlueZ DuplicateData off; iOS without AllowDuplicates). Default false. */
  readonly filterDuplicates?: boolean;
}

/**
 * A BLE-like radio. Advertising cycles through `payloads`, one per
 * advertising event every `intervalMs`; scanning delivers each received
 * advertisement to the listener until stopped.
 */
export interface Radio {
  /** Stable identifier of this radio (simulation: the actor id). */
  readonly id: string;
  readonly capabilities: RadioCapabilities;
  /**
   * Start advertising (replaces any current advertisement set). Rejects with
   * MisuseError naming `payloads` (empty list, empty payload, payload over
   * capabilities.maxAdvertisementPayload) or `intervalMs` (below 20 ms, the
   * BLE minimum).
   */
  advertise(payloads: readonly Uint8Array[], intervalMs: number, options?: AdvertiseOptions): Promise<void>;
  stopAdvertising(): Promise<void>;
  /**
   * Start scanning; frames go to `listener` until stopScan(). Replaces a
   * previous listener and options. Rejects with MisuseError naming
   * `windowMs`/`intervalMs` (not both given, not 0 < windowMs ≤ intervalMs).
   */
  startScan(listener: FrameListener, options?: ScanOptions): Promise<void>;
  stopScan(): Promise<void>;
  /** Stop everything and release the radio. Idempotent; afterwards every other call rejects with MisuseError. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------- Bus

export type Qos = 0 | 1;

export interface PublishOptions {
  readonly qos?: Qos;
  readonly retain?: boolean;
}

export type BusHandler = (topic: string, payload: Uint8Array) => void;

export interface Subscription {
  /** Stop delivering to this handler. Idempotent. */
  unsubscribe(): Promise<void>;
}

/**
 * Topic-based publish/subscribe with MQTT 3.1.1 semantics (`+` and `#`
 * wildcards, retained messages, QoS 0/1). Request/reply rides on the
 * envelope's `replyTo`/`corr` fields (see services/bus/rpc.ts) because
 * MQTT 3.1.1 has no response topic.
 */
export interface Bus {
  publish(topic: string, payload: Uint8Array, options?: PublishOptions): Promise<void>;
  subscribe(filter: string, handler: BusHandler, options?: { readonly qos?: Qos }): Promise<Subscription>;
  /**
   * Resolves once every message published through this bus instance that a
   * local subscriber will receive has been handed to its handlers. The
   * virtual scheduler advances time only when the bus is idle.
   */
  idle(): Promise<void>;
  /** Disconnect and drop all subscriptions. Idempotent. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------- Time

export interface TimerHandle {
  readonly deadline: SimMillis;
}

/**
 * Simulated time and timers. `at` fires `fn` once, when simulated time
 * reaches `deadline` (absolute); timers with equal deadlines fire in the
 * order they were set.
 */
export interface Scheduler {
  now(): SimMillis;
  at(deadline: SimMillis, fn: () => void): TimerHandle;
  cancel(handle: TimerHandle): void;
}

// ---------------------------------------------------------------- Randomness

/**
 * Randomness for hosts and adapters. Seeded (deterministic) in simulation,
 * a CSPRNG otherwise. Machines keep their own DRBG state in context instead
 * (protocol/crypto/drbg.ts) so snapshots stay serialisable.
 */
export interface Rng {
  bytes(length: number): Uint8Array;
  /** Uniform integer in [0, 2^32). */
  uint32(): number;
  /** Uniform float in [0, 1). */
  float(): number;
  /** Uniform integer in [0, maxExclusive), maxExclusive ≤ 2^32. */
  int(maxExclusive: number): number;
}

// ---------------------------------------------------------------- Storage

export interface StoredRecord {
  /** Position in the stream, starting at 1, strictly increasing. */
  readonly seq: number;
  readonly record: Uint8Array;
}

/**
 * Durable storage. A write (`append`, `truncate`, `put`, `delete`) resolves
 * only once it is durable (acknowledged = durable), and every operation takes
 * effect in call order. Streams are append-only logs that may be truncated at
 * the front; the key/value space holds derived state such as actor snapshots.
 */
export interface Store {
  /** Append `record`; resolves with its seq: the stream's last seq ever assigned + 1 (1 for a new stream). */
  append(stream: string, record: Uint8Array): Promise<number>;
  /**
   * Records of `stream` with seq > afterSeq, in order, at most `limit`. After
   * a truncate only the remaining records are returned, whatever `afterSeq`.
   */
  read(stream: string, afterSeq?: number, limit?: number): Promise<readonly StoredRecord[]>;
  /**
   * Forget the records of `stream` with seq ≤ throughSeq (e.g. a journal
   * prefix a durable snapshot covers). Records already forgotten, a stream
   * never written and a throughSeq past the last seq are fine: it forgets
   * what exists up to throughSeq. Numbering is not reset: the next append
   * still gets the last seq ever assigned + 1, also after every record was
   * forgotten and, for a durable store, after a reopen. Only records that
   * exist when it takes effect are forgotten, not later appends with a seq
   * ≤ throughSeq. Rejects with MisuseError naming `stream` or `throughSeq`
   * (a non-negative integer).
   */
  truncate(stream: string, throughSeq: number): Promise<void>;
  put(key: string, value: Uint8Array): Promise<void>;
  get(key: string): Promise<Uint8Array | undefined>;
  delete(key: string): Promise<void>;
  /** Keys starting with `prefix`, sorted. */
  keys(prefix: string): Promise<readonly string[]>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------- Blobs

/**
 * Immutable named blobs (e.g. the key server's content-addressed files, which
 * a static web server or CDN can serve from the same directory). `put`
 * resolves once the blob is durable; putting a name again is a no-op.
 */
export interface BlobStore {
  put(name: string, bytes: Uint8Array): Promise<void>;
  get(name: string): Promise<Uint8Array | undefined>;
}

// ---------------------------------------------------------------- Logging

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(bindings: LogFields): Logger;
}
