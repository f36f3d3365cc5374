/** When the next attempt may go out, and when to give up (AIRLOCK_WEBHOOK_* in docs/operations.md). */
export interface RetrySchedule {
  /** Delay after the first failed attempt; doubled after each further one. */
  retryBaseMs: number;
  /** Ceiling of the doubled delay. */
  retryMaxMs: number;
  /** Attempts in all, the first included; after the last failed one the delivery is `failed`. */
  maxAttempts: number;
}

/**
 * Delay before attempt `failedAttempts + 1`: base * 2^(failedAttempts - 1), capped, plus up to half of it again
 * at random (jitter), so receivers coming back from an outage are not hit by every instance's retries at once.
 * Never less than the un-jittered delay: each wait is at least the doubling of the one before, up to the cap.
 */
export function retryDelayMs(failedAttempts: number, schedule: RetrySchedule, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(failedAttempts - 1, 0), 30);
  const delay = Math.min(schedule.retryMaxMs, schedule.retryBaseMs * 2 ** exponent);
  return Math.round(delay + random() * (delay / 2));
}
