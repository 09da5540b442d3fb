/**
 * Open the bus a run asked for: in-memory, an embedded aedes broker started
 * for this process, or any MQTT broker by URL. `close` releases whatever was
 * started, in order (client first, then broker).
 */
import type { Bus, Logger } from '../../actors/ports.ts';
import { startEmbeddedBroker } from '../broker/aedes.ts';
import { MemoryHub } from './memory.ts';
import { connectMqttBus, type MqttBusOptions } from './mqtt.ts';

/** How to log in to a secure-profile broker: `<role>/<actorId>`, its password, TLS (clientTlsOptions). */
export type BusCredentials = Pick<MqttBusOptions, 'username' | 'password' | 'tls'>;

export type BusChoice =
  | { readonly kind: 'memory' }
  | { readonly kind: 'embedded'; readonly port?: number }
  | { readonly kind: 'url'; readonly url: string; readonly credentials?: BusCredentials };

export interface OpenedBus {
  readonly bus: Bus;
  /** Human-readable description, e.g. `embedded aedes at mqtt://127.0.0.1:40123`. */
  readonly description: string;
  close(): Promise<void>;
}

export async function openBus(choice: BusChoice, clientId: string, logger: Logger): Promise<OpenedBus> {
  switch (choice.kind) {
    case 'memory': {
      const bus = new MemoryHub().connect(clientId);
      return { bus, description: 'in-memory bus', close: () => bus.close() };
    }
    case 'embedded': {
      const broker = await startEmbeddedBroker({ port: choice.port ?? 0, logger });
      const bus = await connectMqttBus({ url: broker.url, clientId, logger });
      return {
        bus,
        description: `embedded aedes at ${broker.url}`,
        close: async () => {
          await bus.close();
          await broker.close();
        },
      };
    }
    case 'url': {
      // secure profile: clientId must be `<role>.<actorId>[.<suffix>]` of the username (services/security/acl.ts)
      const bus = await connectMqttBus({ url: choice.url, clientId, logger, ...choice.credentials });
      return { bus, description: `broker at ${choice.url}`, close: () => bus.close() };
    }
  }
}
