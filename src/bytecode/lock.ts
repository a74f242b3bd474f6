/**
 * In-process ordering of cache work: pulls of the same reference run one after another, pulls
 * of different references run side by side, and garbage collection runs alone.
 */

const settle = (): void => undefined;

export class CacheLock {
  private collecting: Promise<void> = Promise.resolve();
  private readonly active = new Set<Promise<void>>();
  private readonly lastByKey = new Map<string, Promise<void>>();

  /** Runs `work` after earlier work on `key` and after any collection queued before it. */
  shared<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.lastByKey.get(key) ?? Promise.resolve();
    const run = Promise.all([this.collecting, previous]).then(work);

    const settled = run.then(settle, settle);
    this.active.add(settled);
    this.lastByKey.set(key, settled);
    void settled.then(() => {
      this.active.delete(settled);
      if (this.lastByKey.get(key) === settled) this.lastByKey.delete(key);
    });
    return run;
  }

  /** Runs `work` once everything queued before it is done; later work waits for it. */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = Promise.all([this.collecting, ...this.active]).then(work);
    this.collecting = run.then(settle, settle);
    return run;
  }
}
