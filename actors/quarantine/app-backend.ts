/**
 * The app backend of the quarantine extension (issue 3; topics and
 * durability in docs/decisions/0002). Per quarantine record, keyed by
 * SK_DP3T: the health authority registers it, the police backend turns
 * monitoring on and off, phones forward presence tokens they heard from the
 * household's SmartBeacon, and a silence longer than window + tolerance
 * raises an `alert.raise` to the police backend carrying only the beacon id.
 *
 * State chart (top level; each record's state lives in context because a
 * backend holds many records at once):
 *
 *   idle ──host.start──▶ running ──host.stop──▶ stopped (final)
 *   per record (a slot of context.records, found by hex(sk) or beacon id):
 *     ∅ ──register──▶ registered ──monitoring.enable──▶ monitoring
 *     monitoring ──monitoring.disable──▶ registered
 *     any ──quarantine.end | endsAt passed──▶ ∅ (record and its deadlines deleted)
 *     pendingAlerts ≠ [] while an alert waits for `alert.ack` (retried)
 *
 * Timer design: deadlines live in the records — the window deadline
 * (windowStart + windowMs + toleranceMs while monitoring), `retryAt` while an
 * alert is unacknowledged, and `endsAt` — and the machine keeps ONE host
 * timer, `due`, at the earliest of them (scheduleDue re-arms it after every
 * step that changed a record). When `timer.due` fires, every passed deadline
 * is handled in (deadline, window < retry < end, beaconId) order — a window
 * that closed during the quarantine is reported even when its grace period
 * ends exactly as the quarantine does. One timer
 * instead of three per record keeps a step's context update small: copying a
 * timers map with hundreds of entries per batch dominated the city's run time.

 * Alert rule ("an alert iff no valid token reached the backend within
 * window + tolerance"): windowStart = monitoring start or the arrival time of
 * the last batch holding a fresh (age ≤ window + tolerance), unreplayed valid
 * token; such a batch moves windowStart to its arrival and re-arms
 * its deadline to windowStart + windowMs + toleranceMs. When that deadline
 * passes, no valid token arrived inside the window: one `alert.raise` with
 * alertId `<beaconId>:<windowStart>` goes out and the next window starts at
 * the window's end (or at a newer token already seen beyond it). Alerts are
 * resent every alertRetryMs until `alert.ack` (the police dedupes by alertId).
 *
 * Crypto: the CryptoSuite is a dependency closed over by the actions
 * (`createAppBackendMachine`), never context, so snapshots stay plain data.
 */
import { createBackendMachine } from './backend-machine.ts';
import type { HostEvent, MessageEvent, TimerEvent } from '../effects.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import type { AlertRef, BeaconRef, QuarantineRegister, TokensForward } from '../../protocol/quarantine/messages.ts';
import {
  alertAcked,
  DUE_TIMER,
  disableMonitoring,
  dueFired,
  enableMonitoring,
  endQuarantine,
  forwardTokens,
  initialContext,
  register,
  scheduleDue,
  type AppBackendContext,
  type AppBackendInput,
  type Step,
} from './app-backend-logic.ts';

export {
  DEFAULT_TOLERANCE_MS,
  DEFAULT_WINDOW_MS,
  MAX_PENDING_ALERTS,
  MAX_REMEMBERED_BATCHES,
  DUE_TIMER,
  hex,
  liveRecords,
  nextDeadline,
  recordBySk,
  windowDeadline,
  type AppBackendContext,
  type AppBackendCounters,
  type AppliedBatch,
  type AppBackendInput,
  type QuarantineRecord,
} from './app-backend-logic.ts';

export interface AppBackendDeps {
  readonly crypto: CryptoSuite;
}

export type AppBackendEvent =
  | HostEvent
  | TimerEvent
  | MessageEvent<'quarantine.register', QuarantineRegister>
  | MessageEvent<'quarantine.end', BeaconRef>
  | MessageEvent<'monitoring.enable', BeaconRef>
  | MessageEvent<'monitoring.disable', BeaconRef>
  | MessageEvent<'tokens.forward', TokensForward>
  | MessageEvent<'alert.ack', AlertRef>;

/** Route one input to its reducer. */
function reduce(deps: AppBackendDeps, context: AppBackendContext, event: AppBackendEvent): Step {
  switch (event.type) {
    case 'msg.quarantine.register':
      return register(context, event.body, event.at, event.envelope.replyTo, event.envelope.id);
    case 'msg.quarantine.end':
      return endQuarantine(context, event.body.beaconId);
    case 'msg.monitoring.enable':
      return enableMonitoring(context, event.body.beaconId, event.at);
    case 'msg.monitoring.disable':
      return disableMonitoring(context, event.body.beaconId);
    case 'msg.tokens.forward':
      return forwardTokens(deps, context, event.body, event.at, event.envelope.replyTo, event.envelope.id);
    case 'msg.alert.ack':
      return alertAcked(context, event.body.alertId);
    default:
      return event.type === `timer.${DUE_TIMER}` ? dueFired(context, event.at) : { context: {}, effects: [] };
  }
}

export function createAppBackendMachine(deps: AppBackendDeps) {
  return createBackendMachine<AppBackendInput, AppBackendContext, AppBackendEvent>({
    id: 'app-backend',
    initialContext,
    reduce: (context, event) => scheduleDue(context, reduce(deps, context, event)),
    handles: ['msg.quarantine.register', 'msg.quarantine.end', 'msg.monitoring.enable', 'msg.monitoring.disable', 'msg.tokens.forward', 'msg.alert.ack', `timer.${DUE_TIMER}`],
  });
}
