/**
 * `tracecity broker`: a standalone embedded aedes broker (dev profile: plain
 * TCP, anonymous) until SIGINT/SIGTERM.
 */
import type { Command } from 'commander';
import { startEmbeddedBroker } from '../broker/aedes.ts';
import { createLogger } from '../log.ts';
import { intFlag } from './options.ts';
import { onShutdown } from './shutdown.ts';

interface BrokerFlags {
  port: number;
  host: string;
  logLevel: string;
}

export function registerBroker(program: Command): void {
  program
    .command('broker')
    .description('run a standalone embedded MQTT broker (aedes, MQTT 3.1.1, plain TCP) until interrupted')
    .option('--port <p>', 'TCP port (0 = any free port)', intFlag('--port', 0, 65_535), 1883)
    .option('--host <addr>', 'address to listen on', '127.0.0.1')
    .option('--log-level <level>', 'debug | info | warn | error', 'info')
    .action(async (flags: BrokerFlags) => {
      const logger = createLogger({ name: 'broker', level: flags.logLevel as 'info' });
      const broker = await startEmbeddedBroker({ port: flags.port, host: flags.host, logger });
      // The URL on stdout, alone on a line, lets scripts and tests find a free port's number.
      process.stdout.write(`listening ${broker.url}\n`);
      await onShutdown(logger, () => broker.close());
    });
}
