// Builds the configured Lightning backend (docs/lightning.md). Credentials are read here, from files, once.
import { AirlockError, type LightningBackend } from '@airlock/core';
import type { LightningConfig } from '../config.ts';

export async function lightningBackendFrom(config: LightningConfig): Promise<LightningBackend> {
  throw new AirlockError('lightning_not_configured', `The ${config.backend} Lightning backend is not available in this build.`);
}
