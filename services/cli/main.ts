/**
 * The `tracecity` command line. Every command has --help; errors in flags
 * exit 2 with a message naming the flag, configuration errors list every
 * problem at once.
 */
import { Command, CommanderError } from 'commander';
import { registerBroker } from './broker-command.ts';
import { registerHost } from './host-command.ts';
import { registerKeyserver } from './keyserver-command.ts';
import { ConfigError } from './options.ts';
import { registerProto } from './proto-command.ts';
import { registerQuarantine } from './quarantine-command.ts';
import { registerRun } from './run-command.ts';
import { registerSecurity } from './security-command.ts';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('tracecity')
    .description('Testbed for privacy-preserving contact tracing and quarantine enforcement')
    .version('0.1.0')
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();
  registerRun(program);
  registerBroker(program);
  registerHost(program);
  registerSecurity(program);
  registerProto(program);
  registerQuarantine(program);
  registerKeyserver(program);
  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  try {
    await buildProgram().parseAsync([...argv], { from: 'user' });
    // A command may end with a status of its own (an interrupted run: 130).
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof ConfigError) {
      process.stderr.write(`tracecity: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`tracecity: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}
