/**
 * Counts asynchronous work in flight so a caller can wait until there is
 * none (the virtual scheduler's quiescence check). Work added while waiting
 * extends the wait.
 */
export class WorkTracker {
  private inFlight = 0;
  /** Work ever added (quiescence checks compare it across a settle pass). */
  started = 0;
  private waiters: (() => void)[] = [];

  get pending(): number {
    return this.inFlight;
  }

  /** Track `op`; it must not reject (handle errors before adding). */
  add(op: Promise<void>): void {
    this.inFlight++;
    this.started++;
    void op.finally(() => {
      this.inFlight--;
      if (this.inFlight === 0) {
        const waiters = this.waiters;
        this.waiters = [];
        for (const resolve of waiters) resolve();
      }
    });
  }

  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}
