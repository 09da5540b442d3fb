/**
 * The police backend of the quarantine extension (issue 3; topics and
 * durability in docs/decisions/0002). It knows where beacons are installed
 * and receives the app backend's alerts, which carry only a beacon id, a
 * window and a reason; it joins them to an address for an officer. It never
 * sees or stores a phone key (the privacy split of DESIGN.md).
 *
 * Inputs (the host subscribes the topics; the ACL decides who may write them):
 *   police-backend/<id>/alerts  app backend: alert.raise
 *   police-backend/<id>/inbox   officers:   beacon.register, beacon.resolve,
 *                                           alert.close, monitoring.disable
 *                                           (the stand-in for a future beacon.unregister)
 * Outputs: replies to the envelope's replyTo (alert.ack, beacon.address) and
 * monitoring.enable / monitoring.disable on the app backend's control topic.
 *
 * State chart (top level; beacons and alerts live in context because a
 * backend holds many at once):
 *
 *   idle ──host.start──▶ running ──host.stop──▶ stopped (final)
 *   per beacon (context.beacons[beaconId]):
 *     ∅ ──beacon.register──▶ enabled ──monitoring.disable──▶ disabled
 *     disabled ──beacon.register──▶ enabled   (re-install; address replaced)
 *   per alert (context.alerts[alertId]):
 *     ∅ ──alert.raise──▶ open ──alert.close──▶ closed
 *     open/closed ──alert.raise (same alertId)──▶ unchanged, re-acked
 *
 * Timers: only with input.controlResendMs (backing off to controlResendMaxMs), one `enable:<beaconId>` per
 * enabled beacon, taken by the wildcard `timer.*` transition (same scheme as
 * the app backend); a firing before its recorded deadline is stale.
 *
 * No crypto is needed; `createPoliceBackendMachine()` is a factory anyway so
 * every quarantine role is built the same way by the host.
 */
import { createBackendMachine } from './backend-machine.ts';
import type { HostEvent, MessageEvent, TimerEvent } from '../effects.ts';
import type { AlertRaise, AlertRef, BeaconRef, BeaconRegister } from '../../protocol/quarantine/messages.ts';
import {
  alertClosed,
  alertRaised,
  beaconDisabled,
  beaconRegistered,
  beaconResolved,
  enableTimerFired,
  initialContext,
  parseTimerName,
  type PoliceBackendContext,
  type PoliceBackendInput,
  type Step,
} from './police-backend-logic.ts';

export {
  timerName,
  type PoliceBackendContext,
  type PoliceBackendCounters,
  type PoliceBackendInput,
  type StoredAlert,
  type StoredBeacon,
} from './police-backend-logic.ts';

export type PoliceBackendEvent =
  | HostEvent
  | TimerEvent
  | MessageEvent<'alert.raise', AlertRaise>
  | MessageEvent<'alert.close', AlertRef>
  | MessageEvent<'beacon.register', BeaconRegister>
  | MessageEvent<'beacon.resolve', BeaconRef>
  | MessageEvent<'monitoring.disable', BeaconRef>;

/** Route one input to its reducer. */
function reduce(context: PoliceBackendContext, event: PoliceBackendEvent): Step {
  switch (event.type) {
    case 'msg.alert.raise':
      return alertRaised(context, event.body, event.at, event.envelope.replyTo, event.envelope.id);
    case 'msg.alert.close':
      return alertClosed(context, event.body.alertId, event.at);
    case 'msg.beacon.register':
      return beaconRegistered(context, event.body, event.at, event.envelope.replyTo, event.envelope.id);
    case 'msg.beacon.resolve':
      return beaconResolved(context, event.body.beaconId, event.envelope.replyTo, event.envelope.id);
    case 'msg.monitoring.disable':
      return beaconDisabled(context, event.body.beaconId);
    default: {
      if (!event.type.startsWith('timer.')) return { context: {}, effects: [] };
      const timer = parseTimerName(event.type.slice('timer.'.length));
      return timer === undefined ? { context: {}, effects: [] } : enableTimerFired(context, timer.beaconId, event.at);
    }
  }
}

export function createPoliceBackendMachine() {
  return createBackendMachine<PoliceBackendInput, PoliceBackendContext, PoliceBackendEvent>({
    id: 'police-backend',
    initialContext,
    reduce,
    handles: ['msg.alert.raise', 'msg.alert.close', 'msg.beacon.register', 'msg.beacon.resolve', 'msg.monitoring.disable', 'timer.*'],
  });
}

export type PoliceBackendMachine = ReturnType<typeof createPoliceBackendMachine>;
