/**
 * The vault and its SLIP-39 shares. What is split is the vault's BIP-39 entropy (the master secret the vault
 * file seals): combined shares give back that entropy, hence the same 24 words, seed and BIP-32 root.
 */
import { AirlockError } from '@airlock/core';
import { ENTROPY_LENGTHS, mnemonicFromEntropy } from './seed.ts';
import { MIN_SHARES_TO_RECOVER, ShareCollector, checkGroupLayout, combineShares, type GroupLayout, type SplitOptions } from './slip39/shamir.ts';
import { UnsealedVault } from './unsealed-vault.ts';

// The share collector applies it again to the shares entered at unseal and combined at restore.
export { MIN_SHARES_TO_RECOVER };

/** The fewest shares that recover a secret under this layout (the smallest member thresholds of enough groups). */
export function fewestSharesToRecover(groupThreshold: number, groups: readonly GroupLayout[]): number {
  return groups.map((g) => g.memberThreshold).sort((a, b) => a - b).slice(0, groupThreshold).reduce((a, b) => a + b, 0);
}

/** Refuses a layout SLIP-39 does not allow (invalid_request), or one that a single share (or any set below MIN_SHARES_TO_RECOVER) could open. */
export function checkShareLayout(options: Pick<SplitOptions, 'groupThreshold' | 'groups'>): void {
  checkGroupLayout(options.groupThreshold, options.groups);
  const fewest = fewestSharesToRecover(options.groupThreshold, options.groups);
  if (fewest < MIN_SHARES_TO_RECOVER) {
    throw new AirlockError('slip39_layout_too_weak', `with this layout ${fewest} share${fewest === 1 ? '' : 's'} would recover the vault; at least ${MIN_SHARES_TO_RECOVER} must be needed`, {
      hints: ['raise a threshold so that no single share opens the vault, e.g. --groups 2of3, or --groups "2of3,1of1" --group-threshold 2'],
    });
  }
}

/** Parses "2of3,1of1" into group layouts. */
export function parseGroupLayouts(text: string): GroupLayout[] {
  return text.split(',').map((part, i) => {
    const m = /^\s*(\d+)\s*of\s*(\d+)\s*$/i.exec(part);
    if (!m) throw new AirlockError('invalid_request', `group ${i + 1} ("${part.trim()}") is not of the form TofN, e.g. 2of3`);
    return { memberThreshold: Number(m[1]), memberCount: Number(m[2]) };
  });
}

/** A vault from recovered entropy; refuses a secret no Airlock vault could have split. Takes ownership of `entropy`. */
function vaultFromEntropy(entropy: Uint8Array): UnsealedVault {
  if (!ENTROPY_LENGTHS.includes(entropy.length)) {
    entropy.fill(0);
    throw new AirlockError('vault_mismatch', 'the shares combine to a secret of a length no Airlock vault has: they are not shares of a vault');
  }
  try {
    return new UnsealedVault(entropy);
  } catch (error) {
    entropy.fill(0);
    throw error;
  }
}

/**
 * The vault a complete collector holds (the caller checks its fingerprint against the store, and wipes it). Its
 * PBKDF2 runs on the thread pool: a sealed daemon keeps answering while the shares combine.
 */
export async function unsealCollectedShares(collector: ShareCollector): Promise<UnsealedVault> {
  return vaultFromEntropy(await collector.recover());
}

/** The vault a whole set of shares rebuilds, in memory only. */
export function unsealShares(mnemonics: readonly string[]): UnsealedVault {
  return vaultFromEntropy(combineShares(mnemonics));
}

/**
 * The 24 (or 12..21) recovery words the shares stand for, for `airlock restore --shares-dir`, which then seals
 * them like a typed phrase. A JS string cannot be zeroed; it is dropped as soon as the vault is written.
 */
export function recoveryPhraseFromShares(mnemonics: readonly string[]): string {
  const entropy = combineShares(mnemonics);
  try {
    if (!ENTROPY_LENGTHS.includes(entropy.length)) throw new AirlockError('vault_mismatch', 'the shares combine to a secret of a length no Airlock vault has: they are not shares of a vault');
    return mnemonicFromEntropy(entropy);
  } finally {
    entropy.fill(0);
  }
}
