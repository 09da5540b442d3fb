/**
 * `tracecity broker`: a standalone embedded aedes broker until SIGINT/SIGTERM.
 * Dev profile by default (plain TCP, anonymous); `--secure <dir>` (a
 * directory made by `tracecity security init`) listens with TLS only and
 * enforces that directory's credentials and the ACL.
 */
import type { Command } from 'commander';
import { startEmbeddedBroker, type BrokerSecurity } from '../broker/aedes.ts';
import { loadSecurityDir } from '../security/certs.ts';
import { createLogger } from '../log.ts';
import { ConfigError, intFlag, logLevelFlag, type LogLevel } from './options.ts';
import { onShutdown } from './shutdown.ts';

interface BrokerFlags {
  port?: number;
  host: string;
  secure?: string;
  logLevel: LogLevel;
}

export function registerBroker(program: Command): void {
  program
    .command('broker')
    .description('run a standalone embedded MQTT broker (aedes, MQTT 3.1.1; plain TCP, or TLS with --secure) until interrupted')
    .option('--port <p>', 'TCP port (0 = any free port; default 1883, 8883 with --secure)', intFlag('--port', 0, 65_535))
    .option('--host <addr>', 'address to listen on', '127.0.0.1')
    .option('--secure <dir>', 'secure profile: TLS only, credentials and ACL from this directory (tracecity security init)')
    .option('--log-level <level>', 'debug | info | warn | error', logLevelFlag, 'info')
    .action(async (flags: BrokerFlags) => {
      const logger = createLogger({ name: 'broker', level: flags.logLevel });
      let security: BrokerSecurity | undefined;
      if (flags.secure !== undefined) {
        try {
          const dir = await loadSecurityDir(flags.secure);
          security = { tls: dir.tls, credentials: dir.credentials };
        } catch (error) {
          throw new ConfigError([`--secure ${flags.secure}: ${(error as Error).message}`]);
        }
      }
      const port = flags.port ?? (security === undefined ? 1883 : 8883);
      const broker = await startEmbeddedBroker({ port, host: flags.host, logger, ...(security === undefined ? {} : { security }) });
      // The URL on stdout, alone on a line, lets scripts and tests find a free port's number.
      process.stdout.write(`listening ${broker.url}\n`);
      await onShutdown(logger, () => broker.close());
    });
}
