/**
 * `airlock restore`: a vault rebuilt from the recovery phrase, under a new passphrase, but only once the
 * phrase is proven to be this store's: the store's vault fingerprint, and every key the store says the vault
 * derives (recordedKeys), must come out of the phrase. Until then nothing is written and no vault is opened.
 *
 * A PKCS#11 deployment (AIRLOCK_KEY_BACKEND=pkcs11): the phrase restores the vault (the audit key, Bitcoin and
 * Nostr keys, the webhook secret key), but the EVM agent keys were generated in the token and no phrase derives
 * them; a token does not export them either, so they come back with the HSM's own backup or replication. Restore
 * then checks every recorded EVM key against the TOKEN instead: each must be there with the recorded address, or
 * the restore is refused naming the first one that is not, and nothing is written.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { AirlockError, isAirlockError, type Store } from '@airlock/core';
import { createEvmAdapter } from '@airlock/chains';
import { NativeKeyBackend, Pkcs11KeyBackend, checkPassphrase, isTokenPath, restoreVault, unsealRecoveryPhrase, type Pkcs11Options, type UnsealedVault } from '@airlock/keys';
import { openStore, storeTarget } from '@airlock/store';
import type { AirlockConfig } from './config.ts';
import { chooseKeyBackend, type VaultOptions } from './runtime.ts';
import { storeRecordsAgentKey } from './token-key-records.ts';

/** One key the store says the vault derives: m/44'/60'/{accountIndex}'/0/{keyIndex} must be `address`. */
export interface RecordedKey {
  agentId: string;
  agentName: string;
  accountIndex: number;
  keyIndex: number;
  /** Lowercase EVM address, as the store recorded it. */
  address: string;
}

const PAGE = 1000;

/**
 * Every (account index, key index, address) the store recorded, with the agent it belongs to: each agent's
 * current key and every earlier one in the key registry (rotated, retired), retired agents included. This is
 * the one place a restore learns what to check.
 */
export async function* recordedKeys(store: Store): AsyncGenerator<RecordedKey> {
  let after: string | undefined;
  for (;;) {
    const agents = await store.listAgents({ limit: PAGE, ...(after ? { after } : {}) });
    for (const a of agents) {
      yield { agentId: a.id, agentName: a.name, accountIndex: a.accountIndex, keyIndex: a.keyIndex, address: a.address };
      // Every earlier key too (rotated, retired): the registry records the address each index derived.
      for (const k of await store.listAgentKeys(a.id)) {
        if (k.keyIndex !== a.keyIndex) yield { agentId: a.id, agentName: a.name, accountIndex: a.accountIndex, keyIndex: k.keyIndex, address: k.address };
      }
    }
    if (agents.length < PAGE) return;
    after = agents.at(-1)!.id;
  }
}

export interface PhraseCheck {
  fingerprint: string;
  /** Distinct agents whose keys were checked. */
  agentsChecked: number;
  /** Keys checked (each agent's current key and every earlier one in the key registry). */
  keysChecked: number;
  /** A PKCS#11 deployment: the token the EVM agent keys were found on, and how many (all of keysChecked). */
  token?: { label: string; keysFound: number };
}

/**
 * Checks the keys a recovery phrase derives against the store, reading only: `vault_mismatch` if the store
 * is bound to another root, `restore_key_mismatch` naming the first agent whose recorded address the phrase
 * does not derive. With `token` (a PKCS#11 deployment) the EVM agent keys are looked up in the token instead
 * (never created there): `restore_key_mismatch` names the first one it does not hold, or holds with another address.
 */
export async function checkPhraseAgainstStore(store: Store, vault: UnsealedVault, token?: Pkcs11KeyBackend): Promise<PhraseCheck> {
  const bound = await boundFingerprint(store);
  if (!bound) {
    throw new AirlockError('vault_missing', 'This store is bound to no vault: there is nothing to check the recovery phrase against.', {
      hints: ['Restore the store first (docs/operations.md, Restore), or point --store / AIRLOCK_STORE at it.'],
    });
  }
  const fingerprint = vault.fingerprint();
  if (fingerprint !== bound) {
    throw new AirlockError('vault_mismatch', 'The recovery phrase is not the one this store was created with (its vault fingerprint differs); nothing was written.', {
      hints: ['Check the words and their order; a phrase with a valid checksum can still be another vault\'s.'],
    });
  }
  const evm = createEvmAdapter();
  // Same keys either way; libsecp256k1 derives a large fleet several times faster.
  const keys = vault.keyBackend(NativeKeyBackend.available() ? 'native' : 'hd');
  const agents = new Set<string>();
  let keysChecked = 0;
  let keysFound = 0;
  for await (const key of recordedKeys(store)) {
    const path = evm.derivationPath(key.accountIndex, key.keyIndex);
    const details = { agent: key.agentName, agentId: key.agentId, accountIndex: key.accountIndex, keyIndex: key.keyIndex };
    if (token && isTokenPath(path)) {
      const publicKey = await token.findPublicKey(path);
      const found = publicKey && evm.addressFromPublicKey(publicKey);
      if (found?.toLowerCase() !== key.address.toLowerCase()) {
        throw new AirlockError('restore_key_mismatch', `The PKCS#11 token "${token.token}" ${found ? 'holds another key' : 'holds no key'} for agent ${key.agentName} (account ${key.accountIndex}, key ${key.keyIndex}, ${path}); nothing was written.`, {
          details: { ...details, path, token: token.token, onToken: found ? 'other_address' : 'missing' },
          hints: ['The EVM agent keys of a PKCS#11 deployment come back with the token\'s own backup (the HSM vendor\'s backup, cloning or replication; SoftHSM2: its token directory), not with the recovery phrase: restore the token first (docs/custody.md, HSM backup and restore).'],
        });
      }
      keysFound++;
    } else {
      const derived = evm.addressFromPublicKey(await keys.getPublicKey(path));
      if (derived.toLowerCase() !== key.address.toLowerCase()) {
        throw new AirlockError('restore_key_mismatch', `The recovery phrase does not derive the address the store records for agent ${key.agentName} (account ${key.accountIndex}, key ${key.keyIndex}); nothing was written.`, {
          details,
          hints: [
            'The store may have been altered, or restored from another deployment: compare it with your backups before going on.',
            'A deployment whose EVM agent keys live in a PKCS#11 token: set AIRLOCK_KEY_BACKEND=pkcs11 and AIRLOCK_PKCS11_* as for `airlock start`, so the keys are checked against the token (docs/custody.md).',
          ],
        });
      }
    }
    agents.add(key.agentId);
    keysChecked++;
  }
  return { fingerprint, agentsChecked: agents.size, keysChecked, ...(token ? { token: { label: token.token, keysFound } } : {}) };
}

/** The store's vault fingerprint; undefined for a store that holds no Airlock data yet (not even its tables). */
async function boundFingerprint(store: Store): Promise<string | undefined> {
  try {
    return await store.getMeta('vault_fingerprint');
  } catch (e) {
    // An outage stays an outage; anything else here is a database without Airlock's tables (restore never migrates first).
    if (isAirlockError(e) && e.code === 'store_unavailable') throw e;
    return undefined;
  }
}

export interface RestoreOptions {
  /** Replace an existing vault file (atomically). Without it an existing file is refused (`vault_exists`). */
  force?: boolean;
  vault?: VaultOptions;
  /**
   * The PKCS#11 token of a deployment whose EVM agent keys live there; default: what AIRLOCK_KEY_BACKEND=pkcs11
   * and AIRLOCK_PKCS11_* name (the settings `airlock start` reads), none otherwise.
   */
  pkcs11?: Pkcs11Options;
}

export interface RestoreResult extends PhraseCheck {
  vaultPath: string;
  /** An existing vault file was replaced (only with `force`). */
  replaced: boolean;
  /** The `vault.restored` audit entry. */
  auditSeq: number;
}

/**
 * Rebuilds config.vaultPath from `mnemonic`, sealed with `passphrase`. In order: the new passphrase is long
 * enough, the vault file is absent (or `force`), the phrase parses, and checkPhraseAgainstStore passes; only
 * then is the store migrated, the vault written and `vault.restored` appended (fingerprint and counts, no
 * secret). A crash between writing the vault and the audit entry leaves a correct vault without its entry.
 */
export async function restoreAirlock(config: AirlockConfig, mnemonic: string, passphrase: string, options: RestoreOptions = {}): Promise<RestoreResult> {
  checkPassphrase(passphrase);
  refuseExistingVault(config, options);
  refuseMissingSqliteFile(config.storeUrl);
  const pkcs11 = options.pkcs11 ?? chooseKeyBackend(process.env).pkcs11;
  const vault = unsealRecoveryPhrase(mnemonic);
  const store = await openStore(config.storeUrl);
  try {
    let check: PhraseCheck;
    let token: Pkcs11KeyBackend | undefined;
    try {
      // The token serves lookups only; its vault side (the phrase's keys) is never asked here.
      // Its keys are found under this vault's fingerprint, or under the legacy id where the store records them.
      token = pkcs11 ? Pkcs11KeyBackend.open(pkcs11, vault.keyBackend('hd'), { fingerprint: vault.fingerprint(), recordsKey: storeRecordsAgentKey(store) }) : undefined;
      check = await checkPhraseAgainstStore(store, vault, token);
    } finally {
      token?.close();
      vault.wipe();
    }
    await store.migrate();
    mkdirSync(dirname(config.vaultPath), { recursive: true, mode: 0o700 });
    const { replaced } = await restoreVault(config.vaultPath, passphrase, mnemonic, { ...options.vault, replace: options.force === true });
    const entry = await store.transaction((tx) =>
      tx.appendAudit({ at: Date.now(), type: 'vault.restored', actor: 'operator', data: { fingerprint: check.fingerprint, agentsChecked: check.agentsChecked, keysChecked: check.keysChecked, replaced, ...(check.token ? { token: check.token } : {}) } }),
    );
    return { ...check, vaultPath: config.vaultPath, replaced, auditSeq: entry.seq };
  } finally {
    await store.close();
  }
}

/** `vault_exists` unless `force`: checked again by the CLI before it asks for the phrase at a terminal. */
export function refuseExistingVault(config: AirlockConfig, options: RestoreOptions = {}): void {
  if (options.force || !existsSync(config.vaultPath)) return;
  throw new AirlockError('vault_exists', `A vault already exists at ${config.vaultPath}; nothing was written.`, {
    hints: ['Start with it and its passphrase, or move it away; `airlock restore --force` replaces it (atomically) once the phrase checks out.'],
  });
}

/** Opening a SQLite store creates its file: a mistyped path must not become an empty store (nor pass as one). */
export function refuseMissingSqliteFile(storeUrl: string): void {
  const target = storeTarget(storeUrl);
  if ('sqlite' in target && target.sqlite !== ':memory:' && !existsSync(target.sqlite)) {
    throw new AirlockError('not_found', 'No SQLite store at that path; nothing was written.', { hints: ['Restore the store first (docs/operations.md, Restore), or pass --store / --data-dir.'] });
  }
}
