/**
 * The comparison table of `tracecity run --protocol …` (issue 5): one row per
 * protocol run on the same city (same seed, plan, radio and positives), as
 * Markdown for people and JSON for scripts.
 */
import type { TracingRunSummary } from './run.ts';

export interface TracingComparison {
  readonly seed: number;
  readonly phones: number;
  readonly days: number;
  readonly positives: number;
  readonly closeContacts: number;
  /** Phones the ground truth says should be notified. */
  readonly expectedNotified: number;
  readonly runs: readonly TracingRunSummary[];
}

const fixed = (n: number | null, digits: number): string => (n === null ? 'n/a' : n.toFixed(digits));

function bytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${Math.round(n)} B`;
}

export function comparisonOf(seed: number, runs: readonly TracingRunSummary[]): TracingComparison {
  const first = runs[0];
  if (first === undefined) throw new Error('no runs to compare');
  return {
    seed,
    phones: first.phones,
    days: first.days,
    positives: first.positives,
    closeContacts: first.closeContacts,
    expectedNotified: first.score.truePositives + first.score.falseNegatives,
    runs,
  };
}

/** Markdown table, one row per protocol. */
export function comparisonMarkdown(c: TracingComparison): string {
  const header = [
    `# Contact-tracing comparison — seed ${c.seed}, ${c.phones} phones, ${c.days} days`,
    '',
    `${c.positives} positives diagnosed; ${c.closeContacts} close contacts (pair-days) in the ground truth; ${c.expectedNotified} phones should be notified.`,
    '',
    '| protocol | precision | recall | TP | FP | FN | time to notification median / p90 (h) | up B/phone/day | down B/phone/day | storage/phone mean (max) | matching CPU ms/phone/day | wall s |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  const rows = c.runs.map((r) => {
    const s = r.score;
    const ttn = `${fixed(s.timeToNotification.medianH, 2)} / ${fixed(s.timeToNotification.p90H, 2)}`;
    return `| ${r.label} | ${fixed(s.precision, 3)} | ${fixed(s.recall, 3)} | ${s.truePositives} | ${s.falsePositives} | ${s.falseNegatives} | ${ttn} | ${r.bytesUpPerPhoneDay.toFixed(1)} | ${r.bytesDownPerPhoneDay.toFixed(1)} | ${bytes(r.storagePerPhone.meanBytes)} (${bytes(r.storagePerPhone.maxBytes)}) | ${r.matchingCpuMs.perPhoneDay.toFixed(3)} | ${r.wallS.toFixed(1)} |`;
  });
  const notes = c.runs.flatMap((r) => (r.limits === undefined ? [] : [`- **${r.label}**: ${r.limits}`]));
  const n = (r: (typeof c.runs)[number], k: string): number => r.counters[k] ?? 0;
  const health = c.runs.map(
    (r) => `- ${r.label}: green ${n(r, 'health.green')}, yellow ${n(r, 'health.yellow')}, red ${n(r, 'health.red')}; ${n(r, 'health.changes')} changes logged; ${n(r, 'movement.deniedEntries')} of ${n(r, 'movement.venueChecks')} venue checks refused`,
  );
  return [...header, ...rows, '', 'Health codes at the end of the run (venues check them with --venue-check):', ...health, ...(notes.length > 0 ? ['', 'What limits each protocol here:', ...notes] : []), ''].join('\n');
}
