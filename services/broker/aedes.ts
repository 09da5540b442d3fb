/**
 * Embedded MQTT 3.1.1 broker: aedes 1.x (`Aedes.createBroker()`, in-memory
 * persistence) behind a node:net TCP server. The `dev` profile's zero-config
 * default (DESIGN.md "Security profiles"): plain TCP, anonymous.
 *
 * With `security` (the `secure` profile) it listens with TLS only (no
 * plaintext listener; services/security/tls.ts), authenticates every CONNECT
 * against the credentials file and enforces the ACL of
 * services/security/acl.ts in aedes' hooks:
 * - bad username/password: CONNACK 4; a client id that is not the user's
 *   (`<role>.<actorId>[.<suffix>]`): CONNACK 2; then aedes closes the socket;
 * - refused SUBSCRIBE: SUBACK 0x80 for that filter (authorizeSubscribe
 *   answers a null subscription), the connection stays up. (Mosquitto 2.0
 *   with an acl_file differs: it grants the SUBSCRIBE and drops each message
 *   the user may not read at delivery; neither leaks a message.)
 * - refused PUBLISH: aedes itself can only disconnect (an authorizePublish
 *   error closes the connection, nothing tells the client why, MQTT-3.3.5-2).
 *   mqtt.js then reconnects and re-sends the unacknowledged QoS 1 message,
 *   which is refused again: a loop. So by default ('drop') the message is
 *   acknowledged and delivered to nobody, as Mosquitto does for MQTT 3.1.1;
 *   'disconnect' keeps aedes' behaviour.
 * Every refusal is counted (`stats`) and logged at warn.
 *
 * Good to know about aedes 1.x (checked by test/bus/aedes.test.ts):
 * - overlapping subscriptions of one client get ONE copy of a message;
 * - retained messages are streamed asynchronously after SUBACK, and
 *   pipelined SUBSCRIBE/UNSUBSCRIBE may be answered out of order.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { Aedes, type AedesOptions, type Client } from 'aedes';
import type { Logger } from '../../actors/ports.ts';
import { ACL_RULES, authorize, type AclRule, type Identity } from '../security/acl.ts';
import { authenticateConnect, type CredentialsFile } from '../security/credentials.ts';
import { serverTlsOptions, type ServerTlsMaterial } from '../security/tls.ts';

export interface EmbeddedBrokerOptions {
  /** TCP port; 0 (default) picks a free one. */
  readonly port?: number;
  /** Address to listen on (default 127.0.0.1). */
  readonly host?: string;
  readonly logger?: Logger;
  /** Extra aedes options (with `security`, its hooks replace any given here). */
  readonly aedes?: AedesOptions;
  /** The secure profile: TLS only, per-actor credentials, ACL. Absent: dev profile. */
  readonly security?: BrokerSecurity;
}

export interface BrokerSecurity {
  readonly tls: ServerTlsMaterial;
  readonly credentials: CredentialsFile;
  /** Default: ACL_RULES. */
  readonly acl?: readonly AclRule[];
  /** What a refused PUBLISH does (see the module comment); default 'drop'. */
  readonly refusedPublish?: 'drop' | 'disconnect';
}

export type BrokerStats = Record<'tlsFailures' | 'authFailures' | 'publishRefused' | 'subscribeRefused', number>;

/** A refused publish in 'drop' mode goes here: a `$` topic no wildcard matches and no ACL rule lets anyone read. */
export const REFUSED_TOPIC = '$tracecity/refused';

export interface EmbeddedBroker {
  /** e.g. `mqtt://127.0.0.1:40123` (`mqtts://` in the secure profile). */
  readonly url: string;
  readonly port: number;
  readonly host: string;
  readonly broker: Aedes;
  /** Security refusals so far (all zero in the dev profile). */
  readonly stats: BrokerStats;
  /** Disconnect every client, stop listening and close aedes. Idempotent. */
  close(): Promise<void>;
}

export async function startEmbeddedBroker(options: EmbeddedBrokerOptions = {}): Promise<EmbeddedBroker> {
  const host = options.host ?? '127.0.0.1';
  const log = options.logger;
  const stats: BrokerStats = { tlsFailures: 0, authFailures: 0, publishRefused: 0, subscribeRefused: 0 };
  const security = options.security;
  const hooks = security === undefined ? {} : securityHooks(security, stats, log);
  const broker = await Aedes.createBroker({ ...options.aedes, ...hooks });
  broker.on('clientError', (client, error) => log?.debug('broker: client error', { clientId: client.id, error: error.message }));
  broker.on('connectionError', (_client, error) => log?.debug('broker: connection error', { error: error.message }));

  const onClient = (socket: Socket): void => {
    socket.on('error', () => undefined); // aedes reports it; never crash on a reset
    socket.setNoDelay(true); // MQTT packets are small: Nagle + delayed ACK would add ~40 ms per round trip
    broker.handle(socket);
  };
  const server: Server = security === undefined ? createServer(onClient) : createTlsServer(serverTlsOptions(security.tls), onClient);
  // raw TCP sockets, also those still in the TLS handshake, so close() can end them all
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => undefined); // a reset mid-handshake is reported as tlsClientError
  });
  server.on('tlsClientError', (error: Error) => {
    stats.tlsFailures++;
    log?.warn('broker: TLS handshake failed', { error: error.message });
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    throw error;
  }
  server.on('error', (error) => log?.error('broker: server error', { error: error.message }));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : (options.port ?? 0);
  const url = `${security === undefined ? 'mqtt' : 'mqtts'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log?.info('embedded broker listening', { url });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      for (const socket of sockets) socket.destroy(); // connections aedes had not registered yet
      await serverClosed;
      log?.info('embedded broker closed', { url });
    })();
    return closing;
  };
  return { url, port, host, broker, stats, close };
}

/** aedes authenticate / authorizePublish / authorizeSubscribe enforcing credentials and ACL (module comment). */
function securityHooks(security: BrokerSecurity, stats: BrokerStats, log: Logger | undefined): Partial<AedesOptions> {
  const rules = security.acl ?? ACL_RULES;
  const drop = (security.refusedPublish ?? 'drop') === 'drop';
  const identities = new WeakMap<Client, Identity>();
  const decide = (client: Client | null, action: 'publish' | 'subscribe', topic: string) => {
    const identity = client === null ? undefined : identities.get(client);
    return identity === undefined ? { allowed: false, reason: 'not authenticated' } : authorize(identity, action, topic, rules);
  };
  return {
    authenticate: (client, username, password, done) => {
      const refuse = (returnCode: 2 | 3 | 4, reason: string): void => {
        stats.authFailures++;
        log?.warn('broker: connection refused', { clientId: client.id, username: username ?? null, returnCode, reason });
        done(Object.assign(new Error(reason), { returnCode }), false);
      };
      authenticateConnect(security.credentials, client.id, username, password).then(
        (result) => {
          if (!result.ok) return refuse(result.returnCode, result.reason);
          identities.set(client, result.identity);
          done(null, true);
        },
        (error: unknown) => refuse(3, `authentication failed: ${error instanceof Error ? error.message : String(error)}`),
      );
    },
    authorizePublish: (client, packet, done) => {
      const decision = decide(client, 'publish', packet.topic);
      if (decision.allowed) return done(null);
      stats.publishRefused++;
      log?.warn('broker: publish refused', { clientId: client?.id ?? null, topic: packet.topic, reason: decision.reason ?? '', action: drop ? 'dropped' : 'disconnected' });
      if (!drop) return done(new Error(`publish to ${packet.topic} refused: ${decision.reason ?? ''}`));
      // acknowledged (QoS 1/2) but delivered to nobody and never retained
      packet.topic = REFUSED_TOPIC;
      packet.retain = false;
      packet.payload = Buffer.alloc(0);
      done(null);
    },
    authorizeSubscribe: (client, subscription, done) => {
      const decision = decide(client, 'subscribe', subscription.topic);
      if (decision.allowed) return done(null, subscription);
      stats.subscribeRefused++;
      log?.warn('broker: subscribe refused', { clientId: client.id, filter: subscription.topic, reason: decision.reason ?? '' });
      done(null, null); // SUBACK 0x80 for this filter
    },
  };
}
