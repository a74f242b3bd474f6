/**
 * The two clocks of the watcher: one that waits for a burst of file events to go quiet, and
 * one that retries with growing delays while the manifest dir is missing. Neither runs when
 * nothing is happening, so an idle daemon sets no timers at all.
 */

/**
 * Calls `onSettled` once `quietMs` have passed since the last `trigger()`. A burst that never
 * goes quiet (a process rewriting a file in a loop) is still flushed after `maxWaitMs`, so the
 * view cannot fall behind forever.
 */
export class BurstDebounce {
  readonly #quietMs: number;
  readonly #maxWaitMs: number;
  readonly #onSettled: () => void;
  #timer: NodeJS.Timeout | undefined;
  #burstStartedAt = 0;

  constructor(quietMs: number, maxWaitMs: number, onSettled: () => void) {
    this.#quietMs = quietMs;
    this.#maxWaitMs = Math.max(quietMs, maxWaitMs);
    this.#onSettled = onSettled;
  }

  trigger(): void {
    const now = Date.now();
    if (this.#timer === undefined) this.#burstStartedAt = now;
    clearTimeout(this.#timer);

    const untilDeadline = this.#burstStartedAt + this.#maxWaitMs - now;
    const delay = Math.max(0, Math.min(this.#quietMs, untilDeadline));
    this.#timer = setTimeout(() => this.#settle(), delay);
  }

  cancel(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #settle(): void {
    this.#timer = undefined;
    this.#onSettled();
  }
}

/**
 * Calls `onTick` after `initialMs`, then again after twice that, and so on up to `maxMs`
 * between calls, until `disarm()`. `arm()` while already armed keeps the current schedule.
 */
export class RetryBackoff {
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #onTick: () => void;
  #timer: NodeJS.Timeout | undefined;
  #nextDelayMs: number;

  constructor(initialMs: number, maxMs: number, onTick: () => void) {
    this.#initialMs = initialMs;
    this.#maxMs = maxMs;
    this.#onTick = onTick;
    this.#nextDelayMs = initialMs;
  }

  get armed(): boolean {
    return this.#timer !== undefined;
  }

  arm(): void {
    if (this.#timer !== undefined) return;
    this.#schedule();
  }

  disarm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#nextDelayMs = this.#initialMs;
  }

  #schedule(): void {
    const delay = this.#nextDelayMs;
    this.#nextDelayMs = Math.min(delay * 2, this.#maxMs);
    this.#timer = setTimeout(() => this.#tick(), delay);
  }

  #tick(): void {
    this.#schedule();
    this.#onTick();
  }
}
