import { AirlockError } from '@airlock/core';
import type { Airlock } from '../runtime.ts';
import { AttemptLimiter } from './attempt-limiter.ts';

/** Unseal attempts per remote address per minute, each counted before its argon2id run. */
export const UNSEAL_ATTEMPTS_PER_MINUTE = 10;

/** Holds the unsealed runtime. While sealed, everything but health, OpenAPI and unseal answers 503. */
export class AirlockHolder {
  private airlock?: Airlock;
  /** Set when the daemon starts shutting down: readiness turns 503 while in-flight requests finish. */
  draining = false;
  private readonly unsealer?: (passphrase: string) => Promise<Airlock>;

  constructor(airlock?: Airlock, unsealer?: (passphrase: string) => Promise<Airlock>) {
    if (airlock) this.airlock = airlock;
    if (unsealer) this.unsealer = unsealer;
  }

  get sealed(): boolean {
    return !this.airlock;
  }

  get(): Airlock {
    if (!this.airlock) throw new AirlockError('sealed', 'The vault is sealed.', { hints: ['POST /v1/unseal with the passphrase, or restart with it.'] });
    return this.airlock;
  }

  private unsealing?: Promise<void>;
  private readonly unsealAttempts = new AttemptLimiter(UNSEAL_ATTEMPTS_PER_MINUTE);

  /**
   * One unseal at a time. Each attempt is an argon2id run (64 MiB, about a second): a call while one runs is
   * refused at once rather than queued, and every attempt counts against its source before it runs, so a
   * flood of guesses costs at most one run at a time and ten per source per minute.
   */
  async unseal(passphrase: string, source = 'local'): Promise<void> {
    if (this.airlock) return;
    if (!this.unsealer) throw new AirlockError('sealed', 'This server cannot be unsealed over HTTP.');
    if (this.unsealing) throw new AirlockError('rate_limited', 'An unseal attempt is already running; retry in a moment.', { details: { retryAfterSeconds: 1 } });
    const now = Date.now();
    const wait = this.unsealAttempts.retryAfterMs(source, now);
    if (wait > 0) throw new AirlockError('rate_limited', 'Too many unseal attempts; wait.', { details: { retryAfterSeconds: Math.ceil(wait / 1000) } });
    this.unsealAttempts.record(source, now);
    const unsealer = this.unsealer;
    this.unsealing = (async () => {
      this.airlock = await unsealer(passphrase);
    })();
    try {
      await this.unsealing;
    } finally {
      this.unsealing = undefined;
    }
  }

  async close(): Promise<void> {
    await this.airlock?.close();
  }
}
