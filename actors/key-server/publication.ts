/**
 * Distribution ticks (issue 4 "Distribution"; docs/decisions/0005, 0006).
 *
 * One host timer, `publish`, fires at every period boundary (multiples of
 * config.periodMs since the epoch). At a boundary T the server
 *   1. drops records past retention at T (deletions) and forgets uploads and
 *      code records that can no longer matter;
 *   2. signs a delta of the period's net change, if there is one;
 *   3. at a full-dump boundary (multiples of config.fullEveryMs) signs a full
 *      dump of every record in distribution, if anything changed since the
 *      last one;
 *   4. emits `blob.publish`: the new files, then the retained index naming
 *      them (the host writes the files durably before announcing);
 *   5. with config.sightingFilters, signs the delta's sighting filter and
 *      announces the retained filter index (`tc/v1/keys/<id>.filters`).
 * The files' bytes stay in the ledger while the index names them, so a
 * restarted server re-announces exactly what clients may already hold; the
 * signer is deterministic, so replaying the log re-creates the same names.
 */
import { publishDelta, publishFull, type Publication } from '../../protocol/keyserver/distribution-publisher.ts';
import { distributionIndexCodec, MAX_INDEX_DELTAS, type DistributionIndex } from '../../protocol/keyserver/distribution-index.ts';
import type { DiagnosisRecord } from '../../protocol/keyserver/distribution-records.ts';
import { filterIndexCodec, MAX_FILTER_INDEX_ENTRIES, signSightingFilter } from '../../protocol/keyserver/sighting-filter.ts';
import { keysTopic } from '../../protocol/wire/topics.ts';
import { timerSet, withTimer, type BlobPublishEffect, type Effect } from '../effects.ts';
import type { SimMillis } from '../ports.ts';
import type { Ledger } from './ledger.ts';
import { PUBLISH_TIMER, type KeyServerContext, type KeyServerDeps, type Step } from './key-server-state.ts';

/** The retained index topic of server `serverId`. */
export function indexTopic(serverId: string): string {
  return keysTopic(serverId);
}

/** The retained sighting-filter index topic of server `serverId` (config.sightingFilters). */
export function filterIndexTopic(serverId: string): string {
  return keysTopic(`${serverId}.filters`);
}

function announceFilters(serverId: string, ledger: Ledger, blobs: BlobPublishEffect['blobs']): BlobPublishEffect {
  const body = filterIndexCodec.encode({ seq: ledger.publisher.seq, entries: ledger.filterIndex });
  return { type: 'blob.publish', blobs, announce: { type: 'bus.send', topic: filterIndexTopic(serverId), msgType: filterIndexCodec.type, body, qos: 1, retain: true } };
}

/**
 * The sighting filter of the delta just published (sighting-filter.ts): every
 * identifier its additions produce. The index keeps the filters of one
 * retention period; bytes are kept for the deltas the main index names.
 */
function publishFilter(deps: KeyServerDeps, context: KeyServerContext, delta: Publication, additions: readonly DiagnosisRecord[]): BlobPublishEffect | undefined {
  const { ledger, config } = context;
  if (!config.sightingFilters || deps.sightingsOf === undefined) return undefined;
  const items = additions.flatMap((record) => deps.sightingsOf?.(record) ?? []);
  const signed = signSightingFilter(deps.signer, delta.file.name, delta.state.seq, items);
  const keep = Math.ceil(config.retentionMs / config.periodMs);
  ledger.filterIndex = [...ledger.filterIndex, { delta: delta.file.name, filter: signed.name }].slice(-Math.min(keep, MAX_FILTER_INDEX_ENTRIES));
  ledger.filterFiles.set(signed.name, signed.bytes);
  const named = new Set(ledger.publisher.deltas);
  for (const entry of ledger.filterIndex) if (!named.has(entry.delta)) ledger.filterFiles.delete(entry.filter);
  return announceFilters(context.serverId, ledger, [{ name: signed.name, bytes: signed.bytes }]);
}

/** The first period boundary strictly after `at`. */
export function nextBoundary(at: SimMillis, periodMs: number): SimMillis {
  return (Math.floor(at / periodMs) + 1) * periodMs;
}

function announce(serverId: string, index: DistributionIndex, blobs: BlobPublishEffect['blobs']): BlobPublishEffect {
  return {
    type: 'blob.publish',
    blobs,
    announce: { type: 'bus.send', topic: indexTopic(serverId), msgType: distributionIndexCodec.type, body: distributionIndexCodec.encode(index), qos: 1, retain: true },
  };
}

/** The index for the ledger's publisher state, stamped `publishedAt`. */
export function currentIndex(ledger: Ledger, publishedAt: SimMillis): DistributionIndex {
  const p = ledger.publisher;
  return { v: 1, latestFull: p.latestFull, deltas: p.deltas, seq: p.seq, publishedAt };
}

/** host.start: arm the first boundary. */
export function startPublishing(context: KeyServerContext, at: SimMillis): Step {
  const deadline = nextBoundary(at, context.config.periodMs);
  if (context.ledger.periodStart === null) context.ledger.periodStart = at;
  return { context: { timers: withTimer(context.timers, PUBLISH_TIMER, deadline) }, effects: [timerSet(PUBLISH_TIMER, deadline)] };
}

/**
 * host.resume: re-announce the files of the current index (a crash may have
 * come between signing them and writing them) — the host re-arms the timer.
 */
export function resumePublishing(context: KeyServerContext, at: SimMillis): Step {
  const { ledger } = context;
  if (ledger.publisher.seq === 0) return { context: {}, effects: [] };
  const blobs = [...ledger.files].map(([name, bytes]) => ({ name, bytes }));
  const index = currentIndex(ledger, at);
  const effects: Effect[] = [announce(context.serverId, index, blobs)];
  if (ledger.filterIndex.length > 0) effects.push(announceFilters(context.serverId, ledger, [...ledger.filterFiles].map(([name, bytes]) => ({ name, bytes }))));
  return { context: {}, effects };
}

function remember(ledger: Ledger, publication: Publication, replacesAll: boolean): void {
  if (replacesAll) ledger.files.clear();
  ledger.files.set(publication.file.name, publication.file.bytes);
  ledger.publisher = publication.state;
  ledger.counters.filesPublished++;
}

/** `timer.publish` at boundary `at` (module header). */
export function publishTick(deps: KeyServerDeps, context: KeyServerContext, at: SimMillis): Step {
  const { ledger, config } = context;
  ledger.sweepExpired(at);
  // Uploads: kept two retention periods (their records are long gone by then); codes: one past expiry.
  ledger.prune(at, 2 * config.retentionMs, config.retentionMs);
  const start = ledger.periodStart ?? at;
  ledger.periodStart = at;
  const written: { name: string; bytes: Uint8Array }[] = [];
  let filter: BlobPublishEffect | undefined;
  if (ledger.added.size > 0 || ledger.removed.size > 0) {
    const additions: DiagnosisRecord[] = [];
    for (const id of ledger.added) {
      const live = ledger.records.get(id);
      if (live === undefined) continue;
      additions.push(live.record);
      live.published = true;
    }
    const publication = publishDelta(deps.signer, ledger.publisher, { createdAt: at, periodStart: start, periodEnd: at, additions, deletions: [...ledger.removed.keys()] }, config.limits);
    ledger.added.clear();
    ledger.removed.clear();
    remember(ledger, publication, false);
    written.push({ name: publication.file.name, bytes: publication.file.bytes });
    filter = publishFilter(deps, context, publication, additions);
  }
  // Crossed a full-dump boundary since the last tick (a wall-clock timer fires a little late, a restarted one much later).
  const fullBoundary = Math.floor(at / config.fullEveryMs) > Math.floor(start / config.fullEveryMs);
  // A full dump is also forced before the index would list more deltas than it may.
  const indexFull = ledger.publisher.deltas.length >= MAX_INDEX_DELTAS - 1;
  if (ledger.publisher.seq >= 1 && ((fullBoundary && ledger.changedSinceFull) || indexFull)) {
    const records = [...ledger.records.values()].map((live) => live.record);
    const publication = publishFull(deps.signer, ledger.publisher, { createdAt: at, periodStart: ledger.lastFullAt ?? 0, periodEnd: at, records }, config.limits);
    remember(ledger, publication, true);
    ledger.lastFullAt = at;
    ledger.changedSinceFull = false;
    written.push({ name: publication.file.name, bytes: publication.file.bytes });
  }
  const deadline = nextBoundary(at, config.periodMs);
  const effects: Effect[] = [timerSet(PUBLISH_TIMER, deadline)];
  if (filter !== undefined) effects.unshift(filter);
  if (written.length > 0) effects.unshift(announce(context.serverId, currentIndex(ledger, at), written));
  return { context: { timers: withTimer(context.timers, PUBLISH_TIMER, deadline) }, effects };
}
