import { AirlockError, isAirlockError } from '@airlock/core';
import { ShareCollector, unsealCollectedShares, type ShareProgress } from '@airlock/keys';
import type { Airlock, VaultUnlock } from '../runtime.ts';
import { AttemptLimiter } from './attempt-limiter.ts';

/** Unseal attempts per remote address per minute (passphrases and shares together), each counted before it is checked. */
export const UNSEAL_ATTEMPTS_PER_MINUTE = 10;

/** Holds the unsealed runtime. While sealed, everything but health, OpenAPI and unseal answers 503. */
export class AirlockHolder {
  private airlock?: Airlock;
  /** Set when the daemon starts shutting down: readiness turns 503 while in-flight requests finish. */
  draining = false;
  private readonly unsealer?: (unlock: VaultUnlock) => Promise<Airlock>;
  /**
   * SLIP-39 shares entered so far (POST /v1/unseal/shares), in memory only; cleared by a reset or any unseal. Its
   * default rules refuse, as each share is entered, an exponent above what `vault split` writes and a set fewer
   * than two shares recover: anyone who reaches the port may send a share, and it picks its own PBKDF2 work.
   */
  private readonly shares = new ShareCollector();

  constructor(airlock?: Airlock, unsealer?: (unlock: VaultUnlock) => Promise<Airlock>) {
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
    const unsealer = this.admitUnsealAttempt(source);
    this.unsealing = (async () => {
      const airlock = await unsealer(passphrase);
      // Audited as share unseals are (vault.unsealed_by_shares): found by review, a passphrase unseal over HTTP left
      // no entry. Unaudited, it does not count: a failed append closes the runtime again and the daemon stays sealed.
      try {
        const fingerprint = await airlock.store.getMeta('vault_fingerprint');
        await airlock.store.transaction((tx) => tx.appendAudit({ at: Date.now(), type: 'vault.unsealed', actor: 'operator', data: { fingerprint, via: 'passphrase', source } }));
      } catch (e) {
        await airlock.close().catch(() => undefined);
        throw e;
      }
      this.airlock = airlock;
      // Shares entered before the passphrase won are secret material no longer needed: wiped now, not kept in
      // memory (and listed by GET /v1/unseal/shares) for the daemon's life (found by review).
      this.shares.reset();
    })();
    try {
      await this.unsealing;
    } finally {
      this.unsealing = undefined;
    }
  }

  /**
   * Passphrases and shares alike: refused at once while another attempt runs, and counted against their source
   * (ten per minute) before anything is read.
   */
  private admitUnsealAttempt(source: string): (unlock: VaultUnlock) => Promise<Airlock> {
    const unsealer = this.unsealer;
    if (!unsealer) throw new AirlockError('sealed', 'This server cannot be unsealed over HTTP.');
    if (this.unsealing) throw new AirlockError('rate_limited', 'An unseal attempt is already running; retry in a moment.', { details: { retryAfterSeconds: 1 } });
    const now = Date.now();
    const wait = this.unsealAttempts.retryAfterMs(source, now);
    if (wait > 0) throw new AirlockError('rate_limited', 'Too many unseal attempts; wait.', { details: { retryAfterSeconds: Math.ceil(wait / 1000) } });
    this.unsealAttempts.record(source, now);
    return unsealer;
  }

  /** Progress of the share ceremony: which groups have how many of the shares they need. */
  shareProgress(): SharesProgress {
    return progressJson(this.shares.progress(), !this.airlock);
  }

  /**
   * One SLIP-39 share, as Vault takes unseal keys: counted against the same per-source limit as passphrases,
   * checked at once (a bad word, checksum, another set's share, a repeat, an exponent or layout `vault split`
   * never writes: refused by code, nothing counted), and once enough groups are complete the master secret is
   * recovered (PBKDF2 off the event loop) and the daemon opened with it. A set that combines to no consistent
   * secret, or to another vault, clears the entered shares: start again.
   */
  async unsealWithShare(share: string, source = 'local'): Promise<SharesProgress> {
    if (this.airlock) return this.shareProgress();
    const unsealer = this.admitUnsealAttempt(source);
    const progress = this.shares.add(share);
    if (!progress.complete) return progressJson(progress, true);
    this.unsealing = (async () => {
      try {
        const vault = await unsealCollectedShares(this.shares);
        const groupsUsed = progress.groups.filter((g) => g.have >= g.need).map((g) => g.index).slice(0, progress.groupThreshold);
        this.airlock = await unsealer({ vault, shares: { identifier: progress.identifier!, groupThreshold: progress.groupThreshold!, groupsUsed } });
      } catch (e) {
        throw isAirlockError(e) ? e : new AirlockError('internal', 'unseal by shares failed', { cause: e });
      } finally {
        this.shares.reset();
      }
    })();
    try {
      await this.unsealing;
    } finally {
      this.unsealing = undefined;
    }
    return { ...progressJson(progress, false), status: 'unsealed' };
  }

  /** Forgets the shares entered so far. */
  resetShares(): SharesProgress {
    this.shares.reset();
    return this.shareProgress();
  }

  async close(): Promise<void> {
    await this.airlock?.close();
  }
}

export interface SharesProgress {
  status: 'collecting' | 'unsealed';
  /** Until the first share is accepted the layout is unknown: null. */
  groupThreshold: number | null;
  groupCount: number | null;
  groupsComplete: number;
  groups: { index: number; have: number; need: number }[];
}

function progressJson(p: ShareProgress, sealed: boolean): SharesProgress {
  return { status: sealed ? 'collecting' : 'unsealed', groupThreshold: p.groupThreshold ?? null, groupCount: p.groupCount ?? null, groupsComplete: p.groupsComplete, groups: p.groups };
}
