// Builds the configured Lightning backend (docs/lightning.md). Credentials are read here, from files, once:
// the LND macaroon and certificate by LndRestBackend, the NWC connection string from its file below.
import { readFileSync } from 'node:fs';
import { AirlockError, type LightningBackend } from '@airlock/core';
import type { LightningConfig } from '../config.ts';
import { LndRestBackend } from './lnd-rest.ts';
import { NwcBackend } from './nwc-client.ts';

export async function lightningBackendFrom(config: LightningConfig, log: (message: string) => void = (m) => console.error(`[airlock] ${m}`)): Promise<LightningBackend> {
  if (config.backend === 'lnd') {
    const lnd = config.lnd!;
    return new LndRestBackend({ url: lnd.url, macaroon: { path: lnd.macaroonPath }, tlsCert: { path: lnd.tlsCertPath }, network: config.network });
  }
  let uri: string;
  try {
    uri = readFileSync(config.nwcUrlFile!, 'utf8').trim();
  } catch {
    // The path is the operator's own setting; the file's content is a secret and is never echoed.
    throw new AirlockError('config_invalid', `AIRLOCK_NWC_URL_FILE: cannot read ${config.nwcUrlFile}.`);
  }
  return NwcBackend.connect({ connectionUri: uri, network: config.network, log });
}
