/**
 * Where the TCN backend (modes A and B) listens and publishes. It is an app backend (role
 * `app-backend`: protocol/wire/topics.ts has no TCN role, and the backend of a tracing app is
 * what that role names): phones write to its inbox; it publishes accepted mode-B logs on its
 * `events` channel, which only it may write and every phone reads.
 */
import { actorTopic, inboxTopic } from '../../protocol/wire/topics.ts';

export const TCN_BACKEND_ROLE = 'app-backend';

/** Uploads (contacts, reports, logs) go here. */
export function tcnBackendInbox(backendId: string): string {
  return inboxTopic(TCN_BACKEND_ROLE, backendId);
}

/** Published mode-B logs (tcn.log.published). */
export function tcnLogTopic(backendId: string): string {
  return actorTopic(TCN_BACKEND_ROLE, backendId, 'events');
}
