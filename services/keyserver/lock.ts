/**
 * One writer per event log: `serve` and the offline admin commands take
 * `<db>.lock` (created exclusively, holding the pid). Two writers on one log
 * would each fold only their own appends and answer from a state that is
 * not the log's. A lock whose pid is gone (a SIGKILLed server) is stale and
 * taken over.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';

export class LogLockedError extends Error {
  override readonly name = 'LogLockedError';
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Take the lock of `dbPath`; returns its release. Throws LogLockedError while a live process holds it. */
export function lockLog(dbPath: string): () => void {
  const path = `${dbPath}.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: 'wx' });
      let released = false;
      return () => {
        if (released) return;
        released = true;
        rmSync(path, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number.parseInt(readFileSync(path, 'utf8'), 10);
      if (Number.isSafeInteger(holder) && holder !== process.pid && alive(holder)) {
        throw new LogLockedError(`${dbPath} is in use by process ${holder} (a running key server: pass --broker to talk to it)`);
      }
      rmSync(path, { force: true }); // stale: its process is gone
    }
  }
  throw new LogLockedError(`could not take ${path}`);
}
