/**
 * Clean shutdown on SIGINT/SIGTERM: run `close` once, then resolve so the
 * command returns and the process exits on its own (nothing left open).
 * A second signal during shutdown exits at once with 130.
 */
import type { Logger } from '../../actors/ports.ts';

export function onShutdown(logger: Logger, close: () => Promise<void>, until?: Promise<void>): Promise<void> {
  return new Promise((resolve, reject) => {
    let closing = false;
    const stop = (reason: string): void => {
      if (closing) {
        if (reason !== 'done') process.exit(130);
        return;
      }
      closing = true;
      logger.info('shutting down', { reason });
      close().then(() => {
        process.off('SIGINT', onSigint);
        process.off('SIGTERM', onSigterm);
        resolve();
      }, reject);
    };
    const onSigint = (): void => stop('SIGINT');
    const onSigterm = (): void => stop('SIGTERM');
    process.on('SIGINT', onSigint);
    process.on('SIGTERM', onSigterm);
    void until?.then(() => stop('done'));
  });
}
