/**
 * Seeded deterministic random bit generator for simulation (DESIGN.md
 * "Actors": randomness comes from a seeded Rng; same seed ⇒ identical run).
 * NOT a CSPRNG replacement for production keys: its whole output follows
 * from the seed, which is the point.
 *
 * Construction (v1 — changing any step changes every simulated run):
 *   key      = SHA-256("tracecity-drbg-v1" ‖ 0x00 ‖ seed)            (seed ≥ 16 bytes)
 *   stream   = ChaCha20 keystream (RFC 8439 §2.4) under `key`, nonce = 12 zero
 *              bytes, block counter 0, 1, 2, … — i.e. ChaCha20-encrypting zeros
 *   position = number of stream bytes consumed so far (`DrbgState.counter`);
 *              a draw of n bytes returns stream[position, position + n)
 *   fork(l)  = key' = SHA-256("tracecity-drbg-v1/fork" ‖ 0x00 ‖ key ‖ UTF-8(l)),
 *              position' = 0. A child depends on the parent's key and the label
 *   only, not on how much the parent has drawn, so adding a draw somewhere
 *   does not reshuffle every actor's stream. (`key` is fixed-size, so the
 *   concatenation is unambiguous.)
 *   uint32   = next 4 bytes, little-endian
 *   float    = (a >>> 5) · 2^26 + (b >>> 6), divided by 2^53, for two uint32 a, b
 *              (53 random bits: every double in [0, 1) on the 2^-53 grid)
 *   int(m)   = rejection sampling: draw uint32 x until x < 2^32 − (2^32 mod m),
 *              return x mod m (no modulo bias)
 *
 * Because the state is a byte position, the functional form (drbgDraw on a
 * plain-data state, for xstate machine context) and the buffered class form
 * (SeededRng, for hosts and adapters) produce the same bytes for any mix of
 * draw sizes. The class structurally implements `Rng` from actors/ports.ts
 * (protocol/ may not import actors/).
 */
import { chacha20 } from '@noble/ciphers/chacha.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { ensure, MisuseError } from '../errors.ts';

/**
 * Plain-data DRBG state (serialises with structured clone and msgpack; JSON
 * turns the key into an index object, which drbgDraw rejects loudly).
 */
export interface DrbgState {
  /** ChaCha20 key, 32 bytes. Never mutated. */
  readonly key: Uint8Array;
  /** Keystream bytes consumed so far (the stream position), a non-negative integer. */
  readonly counter: number;
}

/** Minimum seed length: 128 bits, so distinct runs cannot share a stream by accident. */
export const DRBG_MIN_SEED_LENGTH = 16;

const BLOCK = 64;
/**
 * Stream length cap: 2^31 ChaCha20 blocks (128 GiB), well inside the 32-bit
 * block counter noble refuses to wrap. A simulation never gets close; fork
 * instead of drawing more from one stream.
 */
const MAX_POSITION = 2 ** 31 * BLOCK;
/** The class refills its buffer 4 KiB (64 blocks) at a time. */
const BUFFER_SIZE = 4096;
const ZERO_NONCE = new Uint8Array(12);
/** ChaCha20 input for buffer refills; only read (the keystream lands in the output array). */
const ZEROS = new Uint8Array(BUFFER_SIZE);
const INIT_LABEL = utf8ToBytes('tracecity-drbg-v1\u0000');
const FORK_LABEL = utf8ToBytes('tracecity-drbg-v1/fork\u0000');
const TWO_POW_32 = 2 ** 32;

export function drbgInit(seed: Uint8Array): DrbgState {
  ensure(
    seed instanceof Uint8Array && seed.length >= DRBG_MIN_SEED_LENGTH,
    'seed',
    `must be at least ${DRBG_MIN_SEED_LENGTH} bytes`,
  );
  return { key: sha256(concatBytes(INIT_LABEL, seed)), counter: 0 };
}

/** Derive an independent child state for `label` (e.g. an actor id); see the header. */
export function drbgFork(state: DrbgState, label: string): DrbgState {
  checkState(state);
  return { key: sha256(concatBytes(FORK_LABEL, state.key, utf8ToBytes(label))), counter: 0 };
}

/** Draw `n` bytes. Pure: returns the bytes and a new state, `state` is untouched. */
export function drbgDraw(state: DrbgState, n: number): { readonly bytes: Uint8Array; readonly state: DrbgState } {
  checkState(state);
  checkDraw(state.counter, n, 'n');
  return { bytes: keystream(state.key, state.counter, n), state: { key: state.key, counter: state.counter + n } };
}

// The checks below run on every draw: messages are built only on failure.
function checkState(state: DrbgState): void {
  if (!(state.key instanceof Uint8Array) || state.key.length !== 32) {
    throw new MisuseError('state.key', 'must be a 32-byte Uint8Array');
  }
  const { counter } = state;
  if (!Number.isSafeInteger(counter) || counter < 0 || counter > MAX_POSITION) {
    throw new MisuseError('state.counter', `must be an integer in [0, 2^37], got ${counter}`);
  }
}

function checkDraw(position: number, n: number, field: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new MisuseError(field, `must be a non-negative integer, got ${n}`);
  if (position + n > MAX_POSITION) throw new MisuseError(field, 'DRBG stream exhausted: fork a child stream instead');
}

/** stream[position, position + n) as a fresh array. */
function keystream(key: Uint8Array, position: number, n: number): Uint8Array {
  if (n === 0) return new Uint8Array(0);
  const firstBlock = Math.floor(position / BLOCK);
  const skip = position - firstBlock * BLOCK;
  const blocks = Math.ceil((skip + n) / BLOCK);
  // Encrypting zeros yields the raw keystream.
  const out = chacha20(key, ZERO_NONCE, new Uint8Array(blocks * BLOCK), undefined, firstBlock);
  return skip === 0 && out.length === n ? out : out.slice(skip, skip + n);
}

/**
 * Buffered seeded Rng (structurally `Rng` of actors/ports.ts) plus `fork`.
 * Same stream as the functional form: `new SeededRng(seed)` and
 * `drbgInit(seed)` yield identical bytes.
 */
export class SeededRng {
  private readonly key: Uint8Array;
  /** Stream position of the next byte handed out. */
  private position: number;
  /**
   * Keystream bytes [bufferStart, bufferStart + BUFFER_SIZE), bufferStart
   * block-aligned; allocated on first use, as many forks never draw.
   */
  private buffer: Uint8Array | undefined;
  private bufferStart = 0;

  /** From a seed (≥ 16 bytes, as drbgInit) or from a functional state (e.g. one restored from a snapshot). */
  constructor(seedOrState: Uint8Array | DrbgState) {
    const state = seedOrState instanceof Uint8Array ? drbgInit(seedOrState) : seedOrState;
    checkState(state);
    // Copy (not .slice(), which is a view on a Buffer, e.g. a key decoded by msgpackr).
    this.key = new Uint8Array(state.key);
    this.position = state.counter;
  }

  static fromState(state: DrbgState): SeededRng {
    return new SeededRng(state);
  }

  /** The functional state at the current position (plain data, independent copy). */
  state(): DrbgState {
    return { key: new Uint8Array(this.key), counter: this.position };
  }

  /** A deterministic child stream for `label`, independent of this stream's position. */
  fork(label: string): SeededRng {
    return SeededRng.fromState(drbgFork(this.state(), label));
  }

  bytes(length: number): Uint8Array {
    checkDraw(this.position, length, 'length');
    const out = new Uint8Array(length);
    // Large draws bypass the buffer: one ChaCha20 call, same stream.
    if (length > BUFFER_SIZE) {
      out.set(keystream(this.key, this.position, length));
      this.position += length;
      return out;
    }
    let written = 0;
    while (written < length) {
      const offset = this.bufferOffset();
      const take = Math.min(length - written, BUFFER_SIZE - offset);
      out.set(this.filledBuffer().subarray(offset, offset + take), written);
      written += take;
      this.position += take;
    }
    return out;
  }

  /** Uniform integer in [0, 2^32). */
  uint32(): number {
    checkDraw(this.position, 4, 'uint32');
    const offset = this.bufferOffset();
    const buf = this.filledBuffer();
    if (offset + 4 > BUFFER_SIZE) {
      // Straddles a refill: rare, take the general path.
      const b = this.bytes(4);
      return ((b[0] ?? 0) | ((b[1] ?? 0) << 8) | ((b[2] ?? 0) << 16) | ((b[3] ?? 0) << 24)) >>> 0;
    }
    this.position += 4;
    return (
      ((buf[offset] ?? 0) | ((buf[offset + 1] ?? 0) << 8) | ((buf[offset + 2] ?? 0) << 16) | ((buf[offset + 3] ?? 0) << 24)) >>>
      0
    );
  }

  /** Uniform float in [0, 1) with 53 random bits. */
  float(): number {
    return uniformFloat(this);
  }

  /** Uniform integer in [0, maxExclusive), 1 ≤ maxExclusive ≤ 2^32, without modulo bias. */
  int(maxExclusive: number): number {
    return uniformInt(this, maxExclusive);
  }

  /** Offset of `position` inside the buffer, refilling when it lies outside. */
  private bufferOffset(): number {
    const offset = this.position - this.bufferStart;
    if (this.buffer !== undefined && offset >= 0 && offset < BUFFER_SIZE) return offset;
    const firstBlock = Math.floor(this.position / BLOCK);
    this.bufferStart = firstBlock * BLOCK;
    this.buffer ??= new Uint8Array(BUFFER_SIZE);
    // Near MAX_POSITION the buffer may run past the cap; checkDraw keeps callers inside it.
    chacha20(this.key, ZERO_NONCE, ZEROS, this.buffer, firstBlock);
    return this.position - this.bufferStart;
  }

  /** The buffer, after bufferOffset() has filled it. */
  private filledBuffer(): Uint8Array {
    if (this.buffer === undefined) throw new Error('SeededRng: buffer read before fill');
    return this.buffer;
  }
}

/** A source of uniform 32-bit words (SeededRng, hardware/sim's KeyedRng). */
export interface Uint32Source {
  uint32(): number;
}

/** Uniform float in [0, 1) with 53 random bits from two words: (hi · 2^26 + lo) / 2^53. */
export function uniformFloat(source: Uint32Source): number {
  const hi = source.uint32() >>> 5; // 27 bits
  const lo = source.uint32() >>> 6; // 26 bits
  return (hi * 67108864 + lo) / 9007199254740992;
}

/** Uniform integer in [0, maxExclusive), 1 ≤ maxExclusive ≤ 2^32, without modulo bias. */
export function uniformInt(source: Uint32Source, maxExclusive: number): number {
  ensure(
    Number.isSafeInteger(maxExclusive) && maxExclusive >= 1 && maxExclusive <= TWO_POW_32,
    'maxExclusive',
    `must be an integer in [1, 2^32], got ${maxExclusive}`,
  );
  // Accept only the largest multiple of maxExclusive below 2^32; expected draws < 2.
  const limit = TWO_POW_32 - (TWO_POW_32 % maxExclusive);
  for (;;) {
    const x = source.uint32();
    if (x < limit) return x % maxExclusive;
  }
}
