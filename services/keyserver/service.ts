/**
 * The key server as a service (issue 4; docs/decisions/0006): the key-server
 * machine in a host, journaled with `snapshots: false` on the given Store (the
 * event log: SQLite in production), admission in front of the journal, files
 * written to a BlobStore (a directory) before the retained index names them,
 * and the file responder answering reads from the same BlobStore.
 *
 * A thin composition root: the caller opens the bus, store, blob store and
 * scheduler (the CLI's `keyserver serve`, tests, benches) and closes them
 * after `stop()`.
 */
import type { BlobStore, Bus, Logger, Scheduler, Store } from '../../actors/ports.ts';
import { createKeyServerMachine } from '../../actors/key-server/key-server.ts';
import type { KeyServerConfig, KeyServerContext, KeyServerDeps } from '../../actors/key-server/key-server-state.ts';
import { nobleSuite } from '../../protocol/crypto/noble.ts';
import type { CryptoSuite } from '../../protocol/crypto/suite.ts';
import { MisuseError } from '../../protocol/errors.ts';
import { keyServerMessages } from '../../protocol/keyserver/messages.ts';
import { sightingIdsOf } from '../../protocol/keyserver/sightings.ts';
import { verifyTcnReport } from '../../protocol/tcn/report.ts';
import { distributionIndexCodec } from '../../protocol/keyserver/distribution-index.ts';
import { actorAddress, actorTopic } from '../../protocol/wire/topics.ts';
import { nodeSuite } from '../crypto/node.ts';
import { Host, type ActorSpec } from '../host/host.ts';
import { Admission, type AdmissionConfig, DEFAULT_ADMISSION_CONFIG } from './admission.ts';
import { FileResponder } from './file-responder.ts';
import type { KeyServerSecrets } from './secrets.ts';

/** Inputs waiting for the journal at most (beyond: `admit.queue-full`, the client retries). */
export const DEFAULT_MAX_PENDING = 20_000;

export interface KeyServerServiceOptions {
  readonly serverId: string;
  readonly bus: Bus;
  /** The event log (the actor's journal) lives here. */
  readonly store: Store;
  readonly blobs: BlobStore;
  readonly scheduler: Scheduler;
  readonly logger: Logger;
  readonly secrets: KeyServerSecrets;
  readonly config?: Partial<KeyServerConfig>;
  readonly admission?: AdmissionConfig;
  readonly maxPending?: number;
  /** Hashing, HMAC and TCN verification (default node:crypto); signing is always @noble (deterministic). */
  readonly crypto?: CryptoSuite;
}

/** The machine's deps for these secrets (also what `rebuild` folds the log with). */
export function keyServerDeps(secrets: KeyServerSecrets, crypto: CryptoSuite = nodeSuite): KeyServerDeps {
  return {
    crypto,
    signer: { crypto: nobleSuite, signingKey: secrets.signingKey, keyId: secrets.keyId },
    pepper: secrets.pepper,
    verifyTcnReport: (report) => verifyTcnReport(crypto, report).ok,
    sightingsOf: (record) => sightingIdsOf(crypto, record),
  };
}

/** The parent of every phone's upload topic (keyServerUploadTopic): `…/uploads/<phoneId>`. */
export function uploadsTopic(serverId: string): string {
  return actorTopic('key-server', serverId, 'uploads');
}

export function adminTopic(serverId: string): string {
  return actorTopic('key-server', serverId, 'admin');
}

/** The key-server actor spec for a host (the machine, its journal mode, topics and admission). */
export function keyServerSpec(options: Pick<KeyServerServiceOptions, 'serverId' | 'secrets' | 'config' | 'crypto' | 'maxPending'>, admission: Admission): ActorSpec {
  return {
    role: 'key-server',
    id: options.serverId,
    machine: createKeyServerMachine(keyServerDeps(options.secrets, options.crypto)),
    input: { serverId: options.serverId, ...(options.config !== undefined ? { config: options.config } : {}) },
    journal: { snapshots: false },
    subscribe: [`${uploadsTopic(options.serverId)}/+`, adminTopic(options.serverId)],
    admit: (event, state) => admission.admit(event, state.topic, state.context as KeyServerContext),
    maxPending: options.maxPending ?? DEFAULT_MAX_PENDING,
    // Queries change nothing: a flood of them must not grow the event log.
    readOnly: ['msg.keys.status', 'msg.keys.server.state'],
  };
}

export interface KeyServerService {
  readonly host: Host;
  readonly admission: Admission;
  readonly files: FileResponder;
  readonly address: string;
  /** The machine's current context (its ledger is live: read, never write). */
  context(): KeyServerContext;
  /** Stop taking inputs, finish what is journaled, stop the responder. Idempotent. */
  stop(): Promise<void>;
}

export async function startKeyServerService(options: KeyServerServiceOptions): Promise<KeyServerService> {
  if (typeof options.serverId !== 'string') throw new MisuseError('serverId', 'must be a topic segment');
  const admission = new Admission(uploadsTopic(options.serverId), adminTopic(options.serverId), options.admission ?? DEFAULT_ADMISSION_CONFIG);
  const messages = keyServerMessages().register(distributionIndexCodec);
  const host = new Host({ scheduler: options.scheduler, bus: options.bus, messages, logger: options.logger, store: options.store, blobs: options.blobs });
  const files = new FileResponder({ serverId: options.serverId, bus: options.bus, blobs: options.blobs, scheduler: options.scheduler, logger: options.logger });
  await files.start();
  await host.spawn(keyServerSpec(options, admission));
  let stopped: Promise<void> | undefined;
  return {
    host,
    admission,
    files,
    address: actorAddress('key-server', options.serverId),
    context: () => host.snapshotOf('key-server', options.serverId).context as KeyServerContext,
    stop: () =>
      (stopped ??= (async () => {
        await host.stop();
        await files.stop();
      })()),
  };
}
