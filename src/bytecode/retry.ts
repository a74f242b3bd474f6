/** Retries with exponential backoff; the delay function is injectable so tests never sleep. */

export interface RetryPolicy {
  /** Tries in all, at least 1. */
  attempts: number;
  baseDelayMs: number;
  sleep: (ms: number) => Promise<void>;
}

export const DEFAULT_RETRY_ATTEMPTS = 3;
export const DEFAULT_RETRY_BASE_DELAY_MS = 500;
export const MAX_RETRY_DELAY_MS = 10_000;

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The delay before try number `attempt + 1` (attempt counts from 1): base, 2×base, 4×base... */
export function backoffDelay(policy: RetryPolicy, attempt: number): number {
  return Math.min(policy.baseDelayMs * 2 ** (attempt - 1), MAX_RETRY_DELAY_MS);
}

/**
 * Runs `work` until it succeeds, throws an error `isTransient` refuses, or the tries run out;
 * then the last error is thrown.
 */
export async function withRetries<T>(
  policy: RetryPolicy,
  work: () => Promise<T>,
  isTransient: (error: unknown) => boolean,
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void,
): Promise<T> {
  const attempts = Math.max(1, policy.attempts);
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await work();
    } catch (error) {
      if (attempt >= attempts || !isTransient(error)) throw error;
      const delayMs = backoffDelay(policy, attempt);
      onRetry?.(error, attempt, delayMs);
      await policy.sleep(delayMs);
    }
  }
}
