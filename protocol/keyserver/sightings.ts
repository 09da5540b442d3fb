/**
 * The 16-byte identifiers phones hear from a diagnosis record — what a
 * sighting filter (sighting-filter.ts) summarizes:
 *   GAEN TEK      its RPIs, one per interval of its rolling period (SPECS §1.3)
 *   DP-3T seed    the EphIDs of its day and the following days up to the
 *                 retention (a published SK_t reveals every later day's key,
 *                 SPECS §2.1), 96 a day
 *   TCN report    tcn_j1..tcn_j2 (SPECS §3); a report that does not verify
 *                 yields none (the server refuses those on arrival anyway)
 */
import type { CryptoSuite } from '../crypto/suite.ts';
import { ephIdsForDays, DP3T_EPHIDS_PER_DAY } from '../dp3t/lowcost.ts';
import { rpisForTek } from '../gaen/keys.ts';
import { tcnsFromReport, verifyTcnReport } from '../tcn/report.ts';
import type { DiagnosisRecord } from './distribution-records.ts';

/** Days of EphIDs a DP-3T seed contributes: the key retention (issue 4: 14 days). */
export const DP3T_SIGHTING_DAYS = 14;

export function sightingIdsOf(crypto: CryptoSuite, record: DiagnosisRecord): Uint8Array[] {
  switch (record.protocol) {
    case 'gaen-tek':
      return rpisForTek(crypto, record.key, record.rollingStartIntervalNumber, record.rollingPeriod);
    case 'dp3t-seed':
      return ephIdsForDays(crypto, record.seed, DP3T_SIGHTING_DAYS, DP3T_EPHIDS_PER_DAY).flat();
    case 'tcn-report': {
      const report = verifyTcnReport(crypto, record.report);
      return report.ok ? tcnsFromReport(crypto, report.value) : [];
    }
  }
}
