/**
 * Runs reconciles one at a time: a trigger during a run queues exactly one more run. A run
 * that leaves work undone (an interface not there yet, a failed load) schedules a retry with
 * exponential backoff; a clean run resets it.
 */
import type { Logger } from './executor.js';
import type { ReconcileResult } from './reconciler.js';

export const RETRY_BASE_MS = 500;
export const RETRY_MAX_MS = 30_000;

export interface LoopOptions {
  logger: Logger;
  retryBaseMs?: number;
  retryMaxMs?: number;
  onResult?: (result: ReconcileResult, durationSeconds: number) => void;
  onFailure?: (err: unknown, durationSeconds: number) => void;
}

export class ReconcileLoop {
  private running: Promise<void> | undefined;
  private pending = false;
  private pendingReasons = new Set<string>();
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelayMs: number;
  private stopped = false;

  constructor(
    private readonly reconcile: () => Promise<ReconcileResult>,
    private readonly options: LoopOptions,
  ) {
    this.retryDelayMs = options.retryBaseMs ?? RETRY_BASE_MS;
  }

  /** Asks for a reconcile; `reason` appears in the log (file change, resync, signal, retry). */
  trigger(reason: string): void {
    if (this.stopped) return;
    this.pendingReasons.add(reason);
    if (this.running) {
      this.pending = true;
      return;
    }
    this.running = this.runUntilSettled().finally(() => {
      this.running = undefined;
    });
  }

  /** Resolves once no run is under way or queued. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
  }

  private async runUntilSettled(): Promise<void> {
    do {
      this.pending = false;
      await this.runOnce();
    } while (this.pending && !this.stopped);
  }

  private async runOnce(): Promise<void> {
    const reasons = [...this.pendingReasons];
    this.pendingReasons.clear();
    clearTimeout(this.retryTimer);
    const started = process.hrtime.bigint();
    const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
    try {
      const result = await this.reconcile();
      this.options.onResult?.(result, seconds());
      this.options.logger.debug(
        { reasons, actions: result.plan.actions.length, seconds: seconds() },
        'reconcile done',
      );
      if (result.retryWanted) this.scheduleRetry();
      else this.retryDelayMs = this.options.retryBaseMs ?? RETRY_BASE_MS;
    } catch (err) {
      this.options.onFailure?.(err, seconds());
      this.options.logger.error(
        { reasons, err: err instanceof Error ? err.message : String(err) },
        'reconcile failed',
      );
      this.scheduleRetry();
    }
  }

  private scheduleRetry(): void {
    if (this.stopped) return;
    const delay = this.retryDelayMs;
    this.retryDelayMs = Math.min(delay * 2, this.options.retryMaxMs ?? RETRY_MAX_MS);
    this.retryTimer = setTimeout(() => this.trigger('retry'), delay);
    this.retryTimer.unref?.();
  }
}
