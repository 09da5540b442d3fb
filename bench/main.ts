/**
 * `npm run bench`: every bench module in one run, printed side by side with
 * ratios, and written to out/bench.json. Numbers, not pass/fail: targets are
 * shown next to the measured ratio.
 *
 *   npm run bench                 all groups
 *   npm run bench -- bus crypto   only these groups
 *   npm run bench -- city         the full 200 × 14-day city alone (long: minutes)
 *   npm run bench -- keyserver    issue 4's key-server sizes (minutes; KS_BENCH_SCALE=0.05 for a quick run)
 *   npm run bench -- gaen         issue 5's GAEN matching: 100k and 1M diagnosis keys against a 14-day store
 *   npm run bench -- dp3t tcn     issue 5's DP-3T matching and TCN report verification / local matching
 *   npm run bench -- dimy         issue 5's DIMY backend: one QBF against 10,000 CBFs (city and paper fill)
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { busBench } from './bus.ts';
import { cityBench } from './city.ts';
import { cryptoBench } from './crypto.ts';
import { dimyBench } from './dimy.ts';
import { dp3tBench } from './dp3t.ts';
import { gaenBench } from './gaen-matching.ts';
import { keyserverBench } from './keyserver.ts';
import { radioBench } from './radio.ts';
import type { BenchModule, BenchRow } from './report.ts';
import { storeBench } from './store.ts';
import { tcnBench } from './tcn.ts';
import { tokenBench } from './token.ts';

const MODULES: Record<string, BenchModule> = { bus: busBench, crypto: cryptoBench, store: storeBench, radio: radioBench, city: cityBench, token: tokenBench, keyserver: keyserverBench, gaen: gaenBench, dp3t: dp3tBench, tcn: tcnBench, dimy: dimyBench };

function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Number.isInteger(n)) return n.toLocaleString('en-US');
  const abs = Math.abs(n);
  if (abs >= 1000) return Math.round(n).toLocaleString('en-US');
  if (abs >= 10) return n.toFixed(1);
  return n.toFixed(3);
}

function print(rows: readonly BenchRow[]): void {
  let group = '';
  for (const r of rows) {
    if (r.group !== group) {
      group = r.group;
      process.stdout.write(`\n== ${group}\n`);
    }
    const values = Object.entries(r.values).map(([k, v]) => `${k} ${fmt(v)}`).join('  |  ');
    const ratio = r.ratio === undefined ? '' : `  →  ${r.ratio.label} ${r.ratio.value.toFixed(2)}${r.ratio.target !== undefined ? ` (target ${r.ratio.target})` : ''}`;
    process.stdout.write(`  ${r.name.padEnd(34)} ${values} ${r.unit}${ratio}\n`);
  }
}

const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !(w in MODULES));
if (unknown.length > 0) {
  process.stderr.write(`unknown bench group(s): ${unknown.join(', ')}; known: ${Object.keys(MODULES).join(', ')}\n`);
  process.exit(2);
}
const all: BenchRow[] = [];
for (const [name, run] of Object.entries(MODULES)) {
  if (wanted.length > 0 && !wanted.includes(name)) continue;
  process.stderr.write(`running ${name} bench…\n`);
  const rows = await run();
  print(rows);
  all.push(...rows);
}
await mkdir('out', { recursive: true });
await writeFile('out/bench.json', `${JSON.stringify({ node: process.version, rows: all }, null, 2)}\n`);
process.stdout.write('\nwritten out/bench.json\n');
