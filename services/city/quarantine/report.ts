/**
 * The readable report of a quarantine city run (Markdown): what was
 * simulated, how alerts score against the ground truth, what each part of
 * the chain did, and the limitations the seed design cannot overcome.
 */
import type { QuarantineProtocol } from './actors.ts';
import type { QuarantineAdversarySummary, QuarantineSummary } from './run.ts';

const fmt = (n: number | null): string => (n === null ? 'n/a' : Number.isInteger(n) ? String(n) : n.toFixed(1));

export function formatQuarantineReport(s: QuarantineSummary, p: QuarantineProtocol, wallS: number): string {
  const h = s.households;
  const sc = s.score;
  const rows = (entries: [string, string | number][]): string => entries.map(([k, v]) => `| ${k} | ${v} |`).join('\n');
  const invalid = (s.appBackend['tokensInvalid'] ?? {}) as Record<string, number>;
  return `# tracecity — quarantine enforcement, seed ${s.seed}

${s.interrupted !== undefined ? `**Interrupted** after ${s.interrupted.simulatedDays} of ${s.simulated.days} simulated days: everything below covers the run up to there.\n\n` : ''}${h.total} quarantined households for ${s.simulated.days} simulated days: ${h.violators} violators, ${h.flakyPhones} flaky phones, ${h.beaconsLosingPower} beacons losing power.
Window ${p.windowMin} min + ${p.toleranceS} s tolerance; beacon token every ${p.beaconPeriodS} s; phones scan up to ${p.scanWindowS} s every ${p.scanPeriodS} s${p.scanUntilTokens ? ' (until every beacon heard delivered a token)' : ''} and forward every ${p.forwardPeriodS} s. Wall time ${wallS.toFixed(1)} s.

## Alerts (scored against the plan)
| | |
| --- | --- |
${rows([
  ['alerts raised', sc.alerts],
  ['true alerts (window overlaps a violation)', sc.trueAlerts],
  ['explained by a phone outage (network, bluetooth, power)', sc.explainedByPhoneOutage],
  ['explained by a beacon losing power', sc.explainedByBeaconOutage],
  ['**unexplained false alerts**', sc.unexplainedFalseAlerts],
])}

## Violations
| | |
| --- | --- |
${rows([
  ['violations', sc.violations],
  ['detectable (≥ window + tolerance)', sc.detectableViolations],
  ['detected', sc.detectedViolations],
  ['**missed**', sc.missedViolations],
  ['too short to detect by design', sc.undetectableShortViolations],
  ['detection latency p50 / p90 / max (s)', `${fmt(sc.latencyS.p50)} / ${fmt(sc.latencyS.p90)} / ${fmt(sc.latencyS.max)}`],
  ['detection latency distribution (detected violations)', Object.entries(sc.latencyHistogram).map(([k, v]) => `${k}: ${v}`).join(', ')],
])}

## Chain
| | |
| --- | --- |
${rows([
  ['app backend: valid tokens', Number(s.appBackend['tokensValid'] ?? 0)],
  ['app backend: rejected tokens', Object.entries(invalid).map(([k, v]) => `${k} ${v}`).join(', ') || '0'],
  ['app backend: replays rejected', Number(s.appBackend['replays'] ?? 0)],
  ['phones: frames received / tokens buffered / batches acked', `${s.phones['framesReceived'] ?? 0} / ${s.phones['tokensBuffered'] ?? 0} / ${s.phones['batchesAcked'] ?? 0}`],
  ['police: alerts received / duplicates', `${s.police['alertsReceived'] ?? 0} / ${s.police['alertsDuplicate'] ?? 0}`],
  ['air: advertisements evaluated / delivered', `${s.air['sent'] ?? 0} / ${s.air['delivered'] ?? 0}`],
  ['bus: sent / received / rejected', `${s.bus.sent} / ${s.bus.received} / ${s.bus.rejected}`],
])}

${s.adversaries !== undefined ? adversariesSection(s.adversaries, invalid, Number(s.appBackend['replays'] ?? 0)) : ''}## Limitations of the seed design
- A relay of live tokens from an accomplice at home while the patient is out is indistinguishable from presence${measured(s.adversaries, 'relay')}.
- A phone left at home proves only that the phone is at home${measured(s.adversaries, 'phone-at-home')}.
- An alert means "no valid token reached the backend within window + tolerance": a phone offline longer than that raises alerts by design (counted above as explained).
`;
}

function measured(a: QuarantineAdversarySummary | undefined, kind: string): string {
  const v = a?.score.violations[kind];
  if (v === undefined) return '';
  return ` (measured: ${v.missed} of ${v.detectable} detectable violations with ${kind} went undetected)`;
}

function adversariesSection(a: QuarantineAdversarySummary, invalid: Record<string, number>, replays: number): string {
  const kinds = ['replay', 'forge', 'relay', 'phone-at-home', 'none'].filter((k) => a.score.violations[k] !== undefined);
  const lines = kinds.map((k) => {
    const v = a.score.violations[k];
    return v === undefined ? '' : `| ${k} | ${v.violations} | ${v.detectable} | ${v.detected} | ${v.missed} | ${v.short} |`;
  });
  const f = a.score.floods;
  const p = a.floodedPhones;
  const devices = Object.entries(a.devices).map(([k, c]) => `${k}: ${Object.entries(c).map(([n, v]) => `${n} ${v}`).join(', ')}`);
  return `## Adversaries
| attack | violations | detectable | detected | **undetected** | too short |
| --- | --- | --- | --- | --- | --- |
${lines.join('\n') || '| (no violations) | 0 | 0 | 0 | 0 | 0 |'}

- App backend rejections: ${Object.entries(invalid).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}; replays (by hash) ${replays}.
- Floods: ${f.episodes} episodes, ${f.floodedMinutes} min in total; alerts during a flood ${f.alertsDuringFlood} (unexplained ${f.unexplainedAlertsDuringFlood}). Flooded phones at most: ${p.maxSources} flood sources tracked, ${p.maxPendingFrames} frames / ${p.maxPendingBytes} bytes in reassembly, ${p.maxBuffer} tuples buffered, ${p.maxSeen} dedupe digests.
- Devices: ${devices.join('; ') || 'none'}.
- replay and forge are rejected (expired / replay by hash, bad-hmac) and the violation is still detected; relay and phone-at-home cannot be detected by the seed design (below).

`;
}
