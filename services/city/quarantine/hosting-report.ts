/**
 * What `tracecity host --scenario quarantine` prints per actor at shutdown
 * (one JSON line): the roles' counters plus what the crash test compares —
 * batch numbers applied by the app backend per beacon, batch numbers acked by
 * each phone, and the police backend's stored alerts.
 *
 * Phones: a phone has at most one batch in flight and numbers a fresh batch
 * only after the previous one was acknowledged (actors/quarantine/phone.ts),
 * so the batches it saw acknowledged are exactly 0 .. batchesAcked − 1.
 */
import { liveRecords, type AppBackendContext, type AppBackendCounters } from '../../../actors/quarantine/app-backend-logic.ts';
import type { HealthAuthorityContext } from '../../../actors/quarantine/health-authority.ts';
import type { QuarantinePhoneContext, QuarantinePhoneCounters } from '../../../actors/quarantine/phone.ts';
import type { SmartBeaconContext } from '../../../actors/quarantine/beacon.ts';
import type { PoliceBackendContext } from '../../../actors/quarantine/police-backend-logic.ts';
import type { SimMillis } from '../../../actors/ports.ts';
import type { ActorSpec, Host } from '../../host/host.ts';

export interface AppBackendRecordReport {
  readonly monitoring: boolean;
  /** Batch numbers applied (the backend remembers the newest 64 per record). */
  readonly batches: readonly number[];
  /** Tuples of those batches (accepted + rejected). */
  readonly tuples: number;
  readonly lastValidTokenAt: number | null;
  readonly pendingAlerts: number;
}

export interface AppBackendReport extends AppBackendCounters {
  /** Counters right after this process restored its snapshot and replayed its journal. */
  readonly atStart: { readonly at: SimMillis } & AppBackendCounters;
  /** By beacon id. */
  readonly records: Readonly<Record<string, AppBackendRecordReport>>;
}

export interface AlertReport {
  readonly alertId: string;
  readonly beaconId: string;
  readonly windowStart: number;
  readonly windowEnd: number;
  readonly receivedAt: number;
}

export interface PoliceReport {
  readonly alertsReceived: number;
  readonly alertsDuplicate: number;
  readonly alertsOpen: number;
  readonly beacons: readonly string[];
  readonly alerts: readonly AlertReport[];
}

export interface PhoneReport extends QuarantinePhoneCounters {
  readonly ackedBatches: readonly number[];
  readonly inFlight: number | null;
  readonly buffered: number;
}

/** Captures the app backend's counters after restore/replay, then reports every actor. */
export class QuarantineReporter {
  private atStart: ({ at: SimMillis } & AppBackendCounters) | undefined;

  constructor(private readonly host: Host) {}

  /** Call once every actor is spawned (restored and replayed). */
  started(specs: readonly ActorSpec[], at: SimMillis): void {
    const app = specs.find((s) => s.role === 'app-backend');
    if (app !== undefined) this.atStart = { at, ...(this.host.snapshotOf(app.role, app.id).context as AppBackendContext).counters };
  }

  report(spec: ActorSpec): unknown {
    const context: unknown = this.host.snapshotOf(spec.role, spec.id).context;
    switch (spec.role) {
      case 'app-backend':
        return this.appBackend(context as AppBackendContext);
      case 'police-backend':
        return police(context as PoliceBackendContext);
      case 'phone':
        return phone(context as QuarantinePhoneContext);
      case 'beacon':
        return { tokensMinted: (context as SmartBeaconContext).tokensMinted };
      case 'health-authority':
        return (context as HealthAuthorityContext).counters;
      default:
        return {};
    }
  }

  private appBackend(c: AppBackendContext): AppBackendReport {
    const records: Record<string, AppBackendRecordReport> = {};
    for (const r of liveRecords(c)) {
      const batches = r.batches.map((b) => b.batch).sort((a, b) => a - b);
      const tuples = r.batches.reduce((n, b) => n + b.accepted + b.rejected, 0);
      records[r.beaconId] = { monitoring: r.monitoring, batches, tuples, lastValidTokenAt: r.lastValidTokenAt, pendingAlerts: r.pendingAlerts.length };
    }
    return { ...c.counters, atStart: this.atStart ?? { at: 0, ...c.counters }, records };
  }
}

function police(c: PoliceBackendContext): PoliceReport {
  const alerts = Object.values(c.alerts)
    .map((a) => ({ alertId: a.alertId, beaconId: a.beaconId, windowStart: a.windowStart, windowEnd: a.windowEnd, receivedAt: a.receivedAt }))
    .sort((a, b) => a.beaconId.localeCompare(b.beaconId) || a.windowStart - b.windowStart);
  const { alertsReceived, alertsDuplicate, alertsOpen } = c.counters;
  return { alertsReceived, alertsDuplicate, alertsOpen, beacons: Object.keys(c.beacons).sort(), alerts };
}

function phone(c: QuarantinePhoneContext): PhoneReport {
  return {
    ...c.counters,
    ackedBatches: Array.from({ length: c.counters.batchesAcked }, (_, i) => i),
    inFlight: c.inFlight?.batch ?? null,
    buffered: c.buffer.length,
  };
}
