/**
 * Provider and operator commands (issue 4 "Providers and codes",
 * "Expiry and de-registration"; docs/decisions/0006). Each answers
 * `keys.admin.result` to the requester; a refused command changes nothing.
 *
 *   keys.provider.add      a new provider (re-adding an active one is ok, a revoked one is refused:
 *                          revocation is final, so a provider's past cannot be revived by accident)
 *   keys.provider.revoke   prospective: its codes authorize nothing from now on;
 *                          retroactive: also withdraw every upload it authorized at or after `since`
 *                          (deletions in the next delta). Revoking again may widen `since`.
 *   keys.codes.register    digests of codes the provider printed (the server never sees a code
 *                          before its upload); they expire lifetimeMs (≤ config.retentionMs) after
 *                          registration, by the server's clock
 *   keys.upload.withdraw   one upload, by its own provider only
 *   keys.server.state      the canonical state digest and counts (for rebuild checks)
 */
import { toHex } from '../../protocol/keyserver/distribution-records.ts';
import { adminResultCodec, type AdminResult, type CodesRegister, type ProviderRevoke, type UploadWithdraw } from '../../protocol/keyserver/messages.ts';
import type { SimMillis } from '../ports.ts';
import type { Ledger, Upload } from './ledger.ts';
import { stateDigest } from './ledger.ts';
import { type KeyServerContext, type KeyServerDeps, type Step } from './key-server-state.ts';
import { reply, type Requester } from './submissions.ts';

function answer(to: Requester, result: Partial<AdminResult> & Pick<AdminResult, 'ok'>): Step {
  const body: AdminResult = { reason: '', detail: '', count: 0, stateDigest: '', ...result };
  return { context: {}, effects: reply(to, adminResultCodec.type, adminResultCodec.encode(body)) };
}

const refuse = (to: Requester, reason: string, detail: string): Step => answer(to, { ok: false, reason, detail });

export function addProvider(context: KeyServerContext, providerId: string, at: SimMillis, to: Requester): Step {
  const existing = context.ledger.providers.get(providerId);
  if (existing?.revokedAt !== undefined && existing.revokedAt !== null) return refuse(to, 'provider-revoked', `${providerId} was revoked at ${existing.revokedAt}`);
  if (existing === undefined) context.ledger.providers.set(providerId, { id: providerId, addedAt: at, revokedAt: null, withdrawnSince: null });
  return answer(to, { ok: true, count: existing === undefined ? 1 : 0 });
}

/** Withdraw one accepted upload; returns the records that left distribution. */
export function withdraw(ledger: Ledger, upload: Upload, reason: string): number {
  if (upload.state !== 'accepted') return 0;
  upload.state = 'withdrawn';
  upload.reason = reason;
  ledger.counters.uploadsWithdrawn++;
  let dropped = 0;
  for (const id of upload.recordIds) if (ledger.dropRecord(id, upload.at)) dropped++;
  return dropped;
}

export function revokeProvider(context: KeyServerContext, msg: ProviderRevoke, at: SimMillis, to: Requester): Step {
  const { ledger } = context;
  const provider = ledger.providers.get(msg.providerId);
  if (provider === undefined) return refuse(to, 'unknown-provider', `no provider ${msg.providerId}`);
  provider.revokedAt ??= at;
  let withdrawn = 0;
  if (msg.retroactive) {
    provider.withdrawnSince = provider.withdrawnSince === null ? msg.since : Math.min(provider.withdrawnSince, msg.since);
    for (const trackingId of ledger.providerUploads(msg.providerId)) {
      const upload = ledger.uploads.get(trackingId);
      if (upload !== undefined && upload.at >= msg.since && upload.state === 'accepted') {
        withdraw(ledger, upload, 'provider-revoked');
        withdrawn++;
      }
    }
  }
  return answer(to, { ok: true, count: withdrawn, detail: msg.retroactive ? `withdrew ${withdrawn} uploads authorized since ${msg.since}` : 'prospective' });
}

export function registerCodes(context: KeyServerContext, msg: CodesRegister, at: SimMillis, to: Requester): Step {
  const { ledger, config } = context;
  const provider = ledger.providers.get(msg.providerId);
  if (provider === undefined) return refuse(to, 'unknown-provider', `no provider ${msg.providerId}`);
  if (provider.revokedAt !== null) return refuse(to, 'provider-revoked', `${msg.providerId} was revoked at ${provider.revokedAt}`);
  if (msg.lifetimeMs > config.retentionMs) return refuse(to, 'too-long', `codes may live at most ${config.retentionMs} ms`);
  const expiresAt = at + msg.lifetimeMs;
  const hexes = msg.digests.map(toHex);
  if (hexes.some((h) => ledger.codes.has(h)) || new Set(hexes).size !== hexes.length) return refuse(to, 'duplicate-code', 'a digest is already registered');
  for (const digest of hexes) ledger.codes.set(digest, { providerId: msg.providerId, issuedAt: at, expiresAt, usedAt: null, trackingId: null, contentHash: null });
  return answer(to, { ok: true, count: hexes.length });
}

export function withdrawUpload(context: KeyServerContext, msg: UploadWithdraw, to: Requester): Step {
  const { ledger } = context;
  const upload = ledger.uploads.get(msg.trackingId);
  // Another provider's upload reads as unknown: a provider learns nothing about uploads it did not authorize.
  if (upload === undefined || upload.providerId !== msg.providerId) return refuse(to, 'unknown-upload', `no upload ${msg.trackingId} authorized by ${msg.providerId}`);
  if (upload.state !== 'accepted') return refuse(to, 'not-accepted', `upload is ${upload.state}`);
  withdraw(ledger, upload, 'withdrawn-by-provider');
  return answer(to, { ok: true, count: 1 });
}

export function serverState(deps: KeyServerDeps, context: KeyServerContext, to: Requester): Step {
  const { ledger } = context;
  return answer(to, { ok: true, count: ledger.records.size, stateDigest: stateDigest(deps.crypto, ledger), detail: `uploads ${ledger.uploads.size}, seq ${ledger.publisher.seq}` });
}
