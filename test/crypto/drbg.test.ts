/**
 * protocol/crypto/drbg.ts: the seeded DRBG that makes simulations
 * reproducible. Checks the documented construction against an independent
 * ChaCha20 (OpenSSL), determinism, purity and serialisability of the
 * functional state, class ≡ functional stream, distribution sanity, forks
 * and misuse.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { pack, unpack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { drbgDraw, drbgFork, drbgInit, SeededRng, type DrbgState } from '../../protocol/crypto/drbg.ts';
import { MisuseError } from '../../protocol/errors.ts';

const seed = (byte: number, length = 16): Uint8Array => new Uint8Array(length).fill(byte);
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function expectMisuse(fn: () => unknown, field: string): void {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(MisuseError);
    expect((error as MisuseError).field).toBe(field);
    return;
  }
  expect.fail(`expected MisuseError on ${field}`);
}

/** Draw `sizes` in turn from the functional form; returns all bytes and the final state. */
function drawAll(state: DrbgState, sizes: readonly number[]): { bytes: Uint8Array; state: DrbgState } {
  const parts: Uint8Array[] = [];
  for (const n of sizes) {
    const r = drbgDraw(state, n);
    parts.push(r.bytes);
    state = r.state;
  }
  return { bytes: Uint8Array.from(Buffer.concat(parts)), state };
}

const SIZES = [0, 1, 3, 64, 65, 7, 4095, 4097, 10_000, 2, 4096, 31];

describe('construction (header of drbg.ts)', () => {
  it('is ChaCha20 (RFC 8439) under SHA-256("tracecity-drbg-v1" ‖ 0x00 ‖ seed), zero nonce, counter 0', () => {
    const s = Uint8Array.from({ length: 20 }, (_, i) => i);
    const key = createHash('sha256').update('tracecity-drbg-v1\u0000').update(s).digest();
    // OpenSSL's chacha20 IV = 32-bit little-endian block counter ‖ 96-bit nonce.
    const expected = createCipheriv('chacha20', key, new Uint8Array(16)).update(new Uint8Array(300));
    expect(toHex(drbgDraw(drbgInit(s), 300).bytes)).toBe(toHex(expected));
    expect(toHex(new SeededRng(s).bytes(300))).toBe(toHex(expected));
  });

  it('forks to SHA-256("tracecity-drbg-v1/fork" ‖ 0x00 ‖ parent key ‖ UTF-8 label)', () => {
    const parent = drbgInit(seed(9));
    const key = createHash('sha256').update('tracecity-drbg-v1/fork\u0000').update(parent.key).update('phone-7').digest();
    expect(toHex(drbgFork(parent, 'phone-7').key)).toBe(toHex(key));
    expect(drbgFork(parent, 'phone-7').counter).toBe(0);
  });
});

describe('determinism', () => {
  it('same seed → same stream, different seed → different stream', () => {
    expect(toHex(drawAll(drbgInit(seed(1)), SIZES).bytes)).toBe(toHex(drawAll(drbgInit(seed(1)), SIZES).bytes));
    expect(toHex(drbgDraw(drbgInit(seed(1)), 64).bytes)).not.toBe(toHex(drbgDraw(drbgInit(seed(2)), 64).bytes));
    // Seeds of different lengths are different seeds (no zero-padding collision).
    expect(toHex(drbgDraw(drbgInit(seed(0, 16)), 32).bytes)).not.toBe(toHex(drbgDraw(drbgInit(seed(0, 17)), 32).bytes));
    const a = new SeededRng(seed(3));
    const b = new SeededRng(seed(3));
    for (let i = 0; i < 1000; i++) expect(a.uint32()).toBe(b.uint32());
  });

  it('a draw of n bytes advances the position by n, whatever the draw sizes', () => {
    const total = SIZES.reduce((a, b) => a + b, 0);
    const one = drbgDraw(drbgInit(seed(4)), total).bytes;
    const many = drawAll(drbgInit(seed(4)), SIZES);
    expect(many.state.counter).toBe(total);
    expect(toHex(many.bytes)).toBe(toHex(one));
  });
});

describe('functional state is pure plain data', () => {
  it('drbgDraw does not mutate its input and is repeatable', () => {
    const state = drbgInit(seed(5));
    const keyBefore = toHex(state.key);
    const first = drbgDraw(state, 100);
    const second = drbgDraw(state, 100);
    expect(toHex(state.key)).toBe(keyBefore);
    expect(state.counter).toBe(0);
    expect(toHex(first.bytes)).toBe(toHex(second.bytes));
    expect(first.state.counter).toBe(100);
    expect(Object.getPrototypeOf(state)).toBe(Object.prototype);
    expect(Object.keys(state).sort()).toEqual(['counter', 'key']);
  });

  it('survives structured clone and msgpack, continuing the same stream', () => {
    const { state } = drawAll(drbgInit(seed(6)), [77]);
    const expected = toHex(drbgDraw(state, 200).bytes);
    expect(toHex(drbgDraw(structuredClone(state), 200).bytes)).toBe(expected);
    expect(toHex(drbgDraw(unpack(pack(state)) as DrbgState, 200).bytes)).toBe(expected);
    expect(toHex(new SeededRng(unpack(pack(state)) as DrbgState).bytes(200))).toBe(expected);
  });

  it('a JSON round trip (key becomes an index object) is refused loudly, not misread', () => {
    const mangled = JSON.parse(JSON.stringify(drbgInit(seed(6)))) as DrbgState;
    expectMisuse(() => drbgDraw(mangled, 1), 'state.key');
  });
});

describe('class and functional forms', () => {
  it('produce the same stream for any mix of draw sizes', () => {
    const rng = new SeededRng(seed(7));
    const fromClass = Uint8Array.from(Buffer.concat(SIZES.map((n) => rng.bytes(n))));
    const functional = drawAll(drbgInit(seed(7)), SIZES);
    expect(toHex(fromClass)).toBe(toHex(functional.bytes));
    expect(rng.state().counter).toBe(functional.state.counter);
    expect(toHex(rng.state().key)).toBe(toHex(functional.state.key));
  });

  it('uint32 is the next 4 stream bytes little-endian, across buffer refills', () => {
    const rng = new SeededRng(seed(8));
    rng.bytes(4094); // the next uint32 straddles the 4 KiB buffer edge
    const values = Array.from({ length: 3000 }, () => rng.uint32());
    const bytes = drbgDraw(drawAll(drbgInit(seed(8)), [4094]).state, 12_000).bytes;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    expect(values).toEqual(Array.from({ length: 3000 }, (_, i) => view.getUint32(4 * i, true)));
  });

  it('a class resumed from a mid-stream functional state continues it', () => {
    const mid = drawAll(drbgInit(seed(9)), [1234]).state;
    expect(toHex(SeededRng.fromState(mid).bytes(5000))).toBe(toHex(drbgDraw(mid, 5000).bytes));
  });
});

describe('distributions', () => {
  it('int(m) stays in [0, m) for small, odd and huge m', () => {
    const rng = new SeededRng(seed(10));
    for (const m of [1, 2, 3, 7, 1000, 2 ** 31 + 1, 2 ** 32 - 1, 2 ** 32]) {
      const outside = Array.from({ length: 500 }, () => rng.int(m)).filter((v) => !(Number.isInteger(v) && v >= 0 && v < m));
      expect(outside).toEqual([]);
    }
    expect(rng.int(1)).toBe(0);
  });

  it('int(10) passes a chi-square test (fixed seed, loose bound)', () => {
    const rng = new SeededRng(seed(11));
    const draws = 100_000;
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < draws; i++) {
      const v = rng.int(10);
      counts[v] = (counts[v] ?? 0) + 1;
    }
    const expected = draws / 10;
    const chi2 = counts.reduce((sum, c) => sum + (c - expected) ** 2 / expected, 0);
    // 9 degrees of freedom: p = 0.001 at 27.9; a biased generator lands in the hundreds.
    expect(chi2).toBeLessThan(30);
  });

  it('int(3·2^30) has no modulo bias (x mod m would put half the mass below 2^30)', () => {
    const rng = new SeededRng(seed(12));
    const m = 3 * 2 ** 30;
    let low = 0;
    const draws = 30_000;
    for (let i = 0; i < draws; i++) if (rng.int(m) < 2 ** 30) low++;
    expect(Math.abs(low / draws - 1 / 3)).toBeLessThan(0.02);
  });

  it('float is in [0, 1), on the 2^-53 grid, with more than 32 bits of resolution', () => {
    const rng = new SeededRng(seed(13));
    let sum = 0;
    let fineBits = 0;
    let offGrid = 0;
    const draws = 20_000;
    for (let i = 0; i < draws; i++) {
      const f = rng.float();
      const scaled = f * 2 ** 53;
      if (!(f >= 0 && f < 1) || !Number.isInteger(scaled)) offGrid++;
      if (scaled % 2 ** 21 !== 0) fineBits++;
      sum += f;
    }
    expect(offGrid).toBe(0);
    expect(Math.abs(sum / draws - 0.5)).toBeLessThan(0.01);
    expect(fineBits).toBeGreaterThan(draws * 0.99);
  });
});

describe('fork', () => {
  it('is deterministic per label and independent of the parent position', () => {
    const parent = new SeededRng(seed(14));
    const early = parent.fork('phone-1').bytes(64);
    parent.bytes(999);
    expect(toHex(parent.fork('phone-1').bytes(64))).toBe(toHex(early));
    expect(toHex(SeededRng.fromState(drbgFork(drbgInit(seed(14)), 'phone-1')).bytes(64))).toBe(toHex(early));
  });

  it('gives distinct streams for distinct labels, parents and from the parent itself', () => {
    const parent = new SeededRng(seed(15));
    const streams = [
      parent.fork('a').bytes(32),
      parent.fork('b').bytes(32),
      parent.fork('ab').bytes(32),
      parent.fork('').bytes(32),
      new SeededRng(seed(16)).fork('a').bytes(32),
      new SeededRng(seed(15)).bytes(32),
      parent.fork('a').fork('a').bytes(32),
    ].map(toHex);
    expect(new Set(streams).size).toBe(streams.length);
  });
});

describe('misuse', () => {
  it.each([
    ['seed shorter than 16 bytes', 'seed', () => drbgInit(new Uint8Array(15))],
    ['class seed shorter than 16 bytes', 'seed', () => new SeededRng(new Uint8Array(0))],
    ['negative n', 'n', () => drbgDraw(drbgInit(seed(1)), -1)],
    ['fractional n', 'n', () => drbgDraw(drbgInit(seed(1)), 1.5)],
    ['negative counter', 'state.counter', () => drbgDraw({ key: new Uint8Array(32), counter: -1 }, 1)],
    ['short key', 'state.key', () => drbgDraw({ key: new Uint8Array(16), counter: 0 }, 1)],
    ['stream exhausted', 'n', () => drbgDraw({ key: new Uint8Array(32), counter: 2 ** 37 }, 1)],
    ['bytes(-1)', 'length', () => new SeededRng(seed(1)).bytes(-1)],
    ['int(0)', 'maxExclusive', () => new SeededRng(seed(1)).int(0)],
    ['int(2^32 + 1)', 'maxExclusive', () => new SeededRng(seed(1)).int(2 ** 32 + 1)],
    ['int(2.5)', 'maxExclusive', () => new SeededRng(seed(1)).int(2.5)],
  ] as const)('%s', (_name, field, fn) => expectMisuse(fn, field));
});
