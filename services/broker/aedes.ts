/**
 * Embedded MQTT 3.1.1 broker: aedes 1.x (`Aedes.createBroker()`, in-memory
 * persistence) behind a node:net TCP server. The `dev` profile's zero-config
 * default (DESIGN.md "Security profiles"): plain TCP, anonymous.
 *
 * Good to know about aedes 1.x (checked by test/bus/aedes.test.ts):
 * - overlapping subscriptions of one client get ONE copy of a message;
 * - retained messages are streamed asynchronously after SUBACK, and
 *   pipelined SUBSCRIBE/UNSUBSCRIBE may be answered out of order.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { Aedes, type AedesOptions } from 'aedes';
import type { Logger } from '../../actors/ports.ts';

export interface EmbeddedBrokerOptions {
  /** TCP port; 0 (default) picks a free one. */
  readonly port?: number;
  /** Address to listen on (default 127.0.0.1). */
  readonly host?: string;
  readonly logger?: Logger;
  /** Extra aedes options (authenticate/authorize hooks for the secure profile, ...). */
  readonly aedes?: AedesOptions;
}

export interface EmbeddedBroker {
  /** e.g. `mqtt://127.0.0.1:40123`. */
  readonly url: string;
  readonly port: number;
  readonly host: string;
  readonly broker: Aedes;
  /** Disconnect every client, stop listening and close aedes. Idempotent. */
  close(): Promise<void>;
}

export async function startEmbeddedBroker(options: EmbeddedBrokerOptions = {}): Promise<EmbeddedBroker> {
  const host = options.host ?? '127.0.0.1';
  const log = options.logger;
  const broker = await Aedes.createBroker(options.aedes);
  broker.on('clientError', (client, error) => log?.debug('broker: client error', { clientId: client.id, error: error.message }));
  broker.on('connectionError', (_client, error) => log?.debug('broker: connection error', { error: error.message }));

  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => undefined); // aedes reports it; never crash on a reset
    socket.setNoDelay(true); // MQTT packets are small: Nagle + delayed ACK would add ~40 ms per round trip
    broker.handle(socket);
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
  const url = `mqtt://${host.includes(':') ? `[${host}]` : host}:${port}`;
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
  return { url, port, host, broker, close };
}
