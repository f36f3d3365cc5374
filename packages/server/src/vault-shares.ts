/**
 * The Shamir backup ceremony (`airlock vault split`) and restore from shares (`airlock restore --shares-dir`).
 * What is split is the vault's BIP-39 entropy, so the shares stand for the recovery phrase: they rebuild the
 * same seed and BIP-32 root, hence every agent address (docs/custody.md, "Shamir backup and k-of-n unseal").
 */
import { AirlockError } from '@airlock/core';
import { checkShareLayout, openVault, recoveryPhraseFromShares, type GroupLayout } from '@airlock/keys';
import { openStore } from '@airlock/store';
import type { AirlockConfig } from './config.ts';
import { restoreAirlock, type RestoreOptions, type RestoreResult } from './restore.ts';
import type { VaultOptions } from './runtime.ts';

export interface SplitVaultOptions {
  groupThreshold: number;
  groups: GroupLayout[];
  /** Where the shares go, for the audit entry only: `terminal` or `files`. */
  output: 'terminal' | 'files';
  vault?: VaultOptions;
  /** Test-only: PBKDF2 work of the SLIP-39 encryption (default 1, as SLIP-39 suggests). */
  iterationExponent?: number;
}

export interface SplitVaultResult {
  fingerprint: string;
  identifier: number;
  groupThreshold: number;
  groups: { memberThreshold: number; memberCount: number; shares: string[] }[];
  /** The `vault.shares_created` audit entry (layout and identifier, never a share). */
  auditSeq: number;
}

/**
 * Opens the vault with its passphrase, checks it is the store's, splits its master secret and appends
 * `vault.shares_created`. The layout is checked first (slip39_layout_too_weak, invalid_request), before the
 * passphrase is tried. The caller prints or writes each share once and drops it.
 */
export async function splitVaultIntoShares(config: AirlockConfig, passphrase: string, options: SplitVaultOptions): Promise<SplitVaultResult> {
  checkShareLayout(options);
  const store = await openStore(config.storeUrl);
  try {
    const bound = await store.getMeta('vault_fingerprint');
    if (!bound) throw new AirlockError('vault_missing', 'This store is bound to no vault: run `airlock init` first.');
    const vault = await openVault(config.vaultPath, passphrase, options.vault ?? {});
    let set;
    try {
      if (vault.fingerprint() !== bound) throw new AirlockError('vault_mismatch', 'The vault file does not belong to this store.');
      set = vault.splitIntoShares({ groupThreshold: options.groupThreshold, groups: options.groups, iterationExponent: options.iterationExponent ?? 1 });
    } finally {
      vault.wipe();
    }
    const layout = options.groups.map((g) => ({ memberThreshold: g.memberThreshold, memberCount: g.memberCount }));
    const entry = await store.transaction((tx) =>
      tx.appendAudit({ at: Date.now(), type: 'vault.shares_created', actor: 'operator', data: { fingerprint: bound, identifier: set.identifier, groupThreshold: options.groupThreshold, groups: layout, output: options.output } }),
    );
    return { fingerprint: bound, identifier: set.identifier, groupThreshold: set.groupThreshold, groups: layout.map((g, i) => ({ ...g, shares: set.groups[i]! })), auditSeq: entry.seq };
  } finally {
    await store.close();
  }
}

/**
 * `airlock restore --shares-dir`: the shares combine to the recovery phrase, which then goes through exactly the
 * checks and writes of a typed phrase (restoreAirlock: fingerprint, every recorded address, then the vault).
 */
export async function restoreAirlockFromShares(config: AirlockConfig, shares: readonly string[], passphrase: string, options: RestoreOptions = {}): Promise<RestoreResult> {
  return restoreAirlock(config, recoveryPhraseFromShares(shares), passphrase, options);
}
