/**
 * Progress for long runs: a cli-progress bar on a terminal, a line every 10 %
 * otherwise (CI logs), nothing with --quiet. Always on stderr: stdout carries
 * the program's output.
 */
import { SingleBar, Presets } from 'cli-progress';

export interface Progress {
  update(fraction: number, label: string): void;
  stop(): void;
}

export function createProgress(quiet: boolean): Progress {
  if (quiet) return { update: () => undefined, stop: () => undefined };
  if (process.stderr.isTTY) {
    const bar = new SingleBar({ format: ' {bar} {percentage}% | ETA {eta_formatted} | {label}', etaBuffer: 50, stream: process.stderr, hideCursor: true }, Presets.shades_classic);
    bar.start(1000, 0, { label: '' });
    return {
      update: (fraction, label) => bar.update(Math.round(fraction * 1000), { label }),
      stop: () => bar.stop(),
    };
  }
  let nextTenth = 1;
  return {
    update(fraction, label) {
      while (fraction * 10 >= nextTenth && nextTenth <= 10) {
        process.stderr.write(`progress ${nextTenth * 10}% ${label}\n`);
        nextTenth++;
      }
    },
    stop: () => undefined,
  };
}
