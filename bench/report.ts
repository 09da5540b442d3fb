/**
 * Bench results: every bench module returns rows; bench/main.ts prints them
 * side by side in one run (and writes out/bench.json).
 */
export interface BenchRow {
  /** Section, e.g. `bus/aedes`, `crypto`. */
  readonly group: string;
  /** What was measured, e.g. `round-trip p50`, `aes-128-ecb 16B`. */
  readonly name: string;
  /** Measured numbers by variant, e.g. { adapter: 0.21, raw: 0.19 }. */
  readonly values: Readonly<Record<string, number>>;
  readonly unit: string;
  /** Optional ratio column, e.g. adapter / raw. */
  readonly ratio?: { readonly label: string; readonly value: number; readonly target?: string };
}

export type BenchModule = () => Promise<readonly BenchRow[]>;

/** Time `fn` for at least `minMs`, returning operations per second. */
export function opsPerSecond(fn: () => void, minMs = 300): number {
  // warm-up
  for (let i = 0; i < 50; i++) fn();
  let ops = 0;
  const start = process.hrtime.bigint();
  let elapsedNs = 0n;
  const budget = BigInt(minMs) * 1_000_000n;
  while (elapsedNs < budget) {
    for (let i = 0; i < 100; i++) fn();
    ops += 100;
    elapsedNs = process.hrtime.bigint() - start;
  }
  return ops / (Number(elapsedNs) / 1e9);
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx] ?? Number.NaN;
}
