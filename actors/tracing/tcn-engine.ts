/**
 * TCN on the tracing phone (SPECS §3; protocol/tcn/), in the seed's three operating modes
 * (protocol/tcn/matching.ts explains their privacy trade-offs; config.mode, default 'C'):
 *
 *   keys      a rak (Ed25519 seed from the phone's DRBG) per UTC day, its tck ratchet advanced
 *             once per rotation; the TCN of the current tck is the whole advertised payload
 *             (16 bytes), re-advertised — with a new address, by the phone — every 15 minutes
 *             (tcn-keys.ts; choices and calibration in tcn-config.ts)
 *   observe   each TCN heard in a scan window with the window's time and RSSI, packed in hour
 *             blocks (tcn-observations.ts); frames that are not 16 bytes are refused
 *   exposure  per positive and UTC day: runs of sightings whose mean RSSI puts the positive within
 *             2 m, each sighting standing for one scan period; ≥ 15 min high, ≥ 5 min low (tcn-exposure.ts)
 *   mode C    report(): one signed report per rak on the air since infectiousFrom (tcn_{j1}..tcn_{j2})
 *             as `tcn-report` records for the key server; the reported rak is never used again.
 *             match(): verify each downloaded report, regenerate its TCNs, look up what was heard.
 *   mode A/B  the phone's exchange with the TCN backend (tcn-exchange.ts): A streams contacts and
 *             uploads reports there, B uploads the positive's contact log and matches the
 *             published logs against its own sent TCNs. Nothing goes to the key server.
 */
import type { IdentifiedRecord } from '../../protocol/keyserver/distribution-records.ts';
import { pruneSentTcns, recordSentTcn } from '../../protocol/tcn/matching.ts';
import { verifyTcnReport, type TcnReport } from '../../protocol/tcn/report.ts';
import type { Exposure, TracingEngine } from './engine.ts';
import { checkTcnEngineConfig, DAY_MS, TCN_TIMING, type TcnEngineConfig } from './tcn-config.ts';
import { tcnExchange } from './tcn-exchange.ts';
import { expireNotified, freshExposures, tcnExposures } from './tcn-exposure.ts';
import { expireKeys, reportKeys, rotateKeys } from './tcn-keys.ts';
import { expireBlocks, observeBlocks, oldestEntry, sightingsOfReports } from './tcn-observations.ts';
import { countTcn, initialTcnState, tcnStorageBytes, type TcnExchangeState, type TcnState } from './tcn-state.ts';

export { tcnEngineConfig, type TcnEngineConfig, type TcnMode } from './tcn-config.ts';
export type { TcnState } from './tcn-state.ts';

/** Sightings the backend reported (modes A/B) heard before `horizon` are forgotten. */
function expireMatched(exchange: TcnExchangeState, horizon: number): TcnExchangeState {
  let changed = false;
  const matched: Record<string, TcnExchangeState['matched'][string]> = {};
  for (const [source, list] of Object.entries(exchange.matched)) {
    const kept = list.filter((s) => s.atMs >= horizon);
    changed ||= kept.length !== list.length;
    if (kept.length > 0) matched[source] = kept;
  }
  return changed ? { ...exchange, matched } : exchange;
}

export const tcnEngine: TracingEngine<TcnState, TcnEngineConfig> = {
  protocol: 'tcn',
  timing: TCN_TIMING,

  init(_deps, config, _at, drbg) {
    checkTcnEngineConfig(config);
    return { state: initialTcnState(), drbg };
  },

  rotate(deps, config, state, at, drbg) {
    const r = rotateKeys(deps.crypto, config, state.raks, at, drbg);
    // Mode B recognises its own TCNs in published logs; the other modes need no list of them.
    const sent = config.mode === 'B' ? recordSentTcn(state.sent, r.tcn, at) : state.sent;
    return { state: { ...state, raks: r.raks, sent }, drbg: r.drbg, payloads: [r.tcn], nextAt: r.nextAt };
  },

  observe(_deps, _config, state, frames, at) {
    const r = observeBlocks(state.blocks, state.nextSeq, frames, at);
    if (r.blocks === state.blocks) return { state, refused: r.refused };
    return { state: { ...state, blocks: r.blocks, nextSeq: state.nextSeq + 1 }, refused: r.refused };
  },

  expire(config, state, at) {
    const horizon = at - config.retentionDays * DAY_MS;
    return {
      ...state,
      raks: expireKeys(config, state.raks, horizon),
      blocks: expireBlocks(state.blocks, horizon),
      // Sent TCNs are kept per UTC day: the days ≥ today − retentionDays (protocol/tcn/matching.ts).
      sent: pruneSentTcns(state.sent, at, config.retentionDays),
      exchange: expireMatched(state.exchange, horizon),
      notified: expireNotified(state.notified, Math.floor(horizon / DAY_MS)),
    };
  },

  oldestHeld(state) {
    const times: number[] = [];
    const rak = state.raks[0]?.starts[0];
    if (rak !== undefined) times.push(rak);
    const entry = oldestEntry(state.blocks);
    if (entry !== undefined) times.push(entry);
    const day = state.sent.days[0]?.day;
    if (day !== undefined) times.push(day * DAY_MS);
    for (const list of Object.values(state.exchange.matched)) for (const s of list) times.push(s.atMs);
    return times.length === 0 ? undefined : Math.min(...times);
  },

  report(deps, config, state, infectiousFrom, at, drbg) {
    // Modes A and B upload to the TCN backend (exchange.diagnosed), never to the key server.
    if (config.mode !== 'C') return { state, drbg, records: [] };
    const made = reportKeys(deps.crypto, config, state.raks, infectiousFrom, at);
    return { state: { ...state, raks: made.raks }, drbg, records: made.reports.map((report) => ({ protocol: 'tcn-report' as const, report })) };
  },

  match(deps, config, state, records) {
    const reports = records.filter((r): r is Extract<IdentifiedRecord, { protocol: 'tcn-report' }> => r.protocol === 'tcn-report');
    if (config.mode !== 'C' || reports.length === 0) return { state, exposures: [] };
    const run = (): { state: TcnState; exposures: readonly Exposure[] } => {
      const verified: TcnReport[] = [];
      const ids: string[] = [];
      for (const record of reports) {
        const verdict = verifyTcnReport(deps.crypto, record.report);
        if (!verdict.ok) continue;
        verified.push(verdict.value);
        ids.push(record.id);
      }
      const { sightings, derived } = sightingsOfReports(deps.crypto, state.blocks, verified, config.maxTcnsPerReport);
      const found = sightings.flatMap((list, i) => tcnExposures(config, ids[i] as string, list));
      let next = countTcn(countTcn(countTcn(state, 'reportsInvalid', reports.length - verified.length), 'reportsVerified', verified.length), 'tcnsDerived', derived);
      const fresh = freshExposures(next.notified, found);
      next = { ...next, notified: fresh.notified };
      return { state: next, exposures: fresh.fresh };
    };
    return deps.meter === undefined ? run() : deps.meter.time('match', run);
  },

  storageBytes: tcnStorageBytes,

  exchange: tcnExchange,
};
