/**
 * The diagnosis-key server (issue 4; docs/decisions/0006): one machine that
 * takes uploads with one-time provider codes, answers status queries, obeys
 * provider and operator commands and publishes signed deltas and full dumps.
 *
 *   idle ──host.start──▶ running ──host.stop──▶ stopped (final)
 *   running: msg.keys.upload | msg.keys.status            (submissions.ts)
 *            msg.keys.provider.add | .revoke | msg.keys.codes.register
 *            msg.keys.upload.withdraw | msg.keys.server.state   (admin.ts)
 *            timer.publish, host.resume                     (publication.ts)
 *
 * Event sourcing: the host journals every input before the machine sees it
 * and runs this actor with `journal: { snapshots: false }` — the journal is
 * the event log, the ledger (ledger.ts) its fold. Everything here is a
 * function of the journaled inputs and the deps (crypto, a deterministic
 * signer, the pepper): replaying the log re-creates the same state, files and
 * tracking ids (`tracecity keyserver rebuild` checks the digest).
 *
 * Rate limits and the input queue bound sit in front of the journal, in the
 * service (services/keyserver/admission.ts): what they refuse never costs a
 * log write.
 */
import type { HostEvent, MessageEvent, TimerEvent } from '../effects.ts';
import { createBackendMachine } from '../quarantine/backend-machine.ts';
import type {
  CodesRegister,
  KeysUpload,
  ProviderRef,
  ProviderRevoke,
  TrackingRef,
  UploadWithdraw,
} from '../../protocol/keyserver/messages.ts';
import type { Envelope } from '../../protocol/wire/envelope.ts';
import { addProvider, registerCodes, revokeProvider, serverState, withdrawUpload } from './admin.ts';
import {
  checkKeyServerDeps,
  initialKeyServerContext,
  NOTHING,
  PUBLISH_TIMER,
  type KeyServerContext,
  type KeyServerDeps,
  type KeyServerInput,
  type Step,
} from './key-server-state.ts';
import { publishTick, resumePublishing, startPublishing } from './publication.ts';
import { status, upload, type Requester } from './submissions.ts';

export type KeyServerEvent =
  | HostEvent
  | TimerEvent
  | MessageEvent<'keys.upload', KeysUpload>
  | MessageEvent<'keys.status', TrackingRef>
  | MessageEvent<'keys.provider.add', ProviderRef>
  | MessageEvent<'keys.provider.revoke', ProviderRevoke>
  | MessageEvent<'keys.codes.register', CodesRegister>
  | MessageEvent<'keys.upload.withdraw', UploadWithdraw>
  | MessageEvent<'keys.server.state', Record<string, never>>;

/** Replies carry the request's own `corr` when it set one (services/bus/rpc.ts does), else its envelope id. */
const requester = (envelope: Envelope): Requester => ({ from: envelope.from, replyTo: envelope.replyTo, corr: envelope.corr ?? envelope.id });

function reduce(deps: KeyServerDeps, context: KeyServerContext, event: KeyServerEvent): Step {
  switch (event.type) {
    case 'host.start':
      return startPublishing(context, event.at);
    case 'host.resume':
      return resumePublishing(context, event.at);
    case 'msg.keys.upload':
      return upload(deps, context, event.body, event.at, requester(event.envelope));
    case 'msg.keys.status':
      return status(context, event.body.trackingId, requester(event.envelope));
    case 'msg.keys.provider.add':
      return addProvider(context, event.body.providerId, event.at, requester(event.envelope));
    case 'msg.keys.provider.revoke':
      return revokeProvider(context, event.body, event.at, requester(event.envelope));
    case 'msg.keys.codes.register':
      return registerCodes(context, event.body, event.at, requester(event.envelope));
    case 'msg.keys.upload.withdraw':
      return withdrawUpload(context, event.body, requester(event.envelope));
    case 'msg.keys.server.state':
      return serverState(deps, context, requester(event.envelope));
    default:
      return event.type === `timer.${PUBLISH_TIMER}` ? publishTick(deps, context, event.at) : NOTHING;
  }
}

export const KEY_SERVER_INPUTS = [
  'msg.keys.upload',
  'msg.keys.status',
  'msg.keys.provider.add',
  'msg.keys.provider.revoke',
  'msg.keys.codes.register',
  'msg.keys.upload.withdraw',
  'msg.keys.server.state',
  `timer.${PUBLISH_TIMER}`,
] as const;

export function createKeyServerMachine(deps: KeyServerDeps) {
  checkKeyServerDeps(deps);
  return createBackendMachine<KeyServerInput, KeyServerContext, KeyServerEvent>({
    id: 'key-server',
    initialContext: initialKeyServerContext,
    reduce: (context, event) => reduce(deps, context, event),
    handles: ['host.start', 'host.resume', ...KEY_SERVER_INPUTS],
  });
}
