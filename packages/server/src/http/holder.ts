import { AirlockError } from '@airlock/core';
import type { Airlock } from '../runtime.ts';

/** Holds the unsealed runtime. While sealed, everything but health, OpenAPI and unseal answers 503. */
export class AirlockHolder {
  private airlock?: Airlock;
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

  /** One unseal at a time: concurrent calls wait for the first instead of opening a second runtime. */
  async unseal(passphrase: string): Promise<void> {
    while (this.unsealing) await this.unsealing.catch(() => undefined);
    if (this.airlock) return;
    if (!this.unsealer) throw new AirlockError('sealed', 'This server cannot be unsealed over HTTP.');
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
