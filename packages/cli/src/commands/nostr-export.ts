/**
 * `airlock agent nostr-export <agent>`: the operator's backup ceremony for an agent's Nostr key (NIP-49).
 *
 * It runs offline, on the machine that holds the vault file, with the vault passphrase: there is no HTTP
 * route for it, so an agent (whose only credential is a session token) can never reach it. Steps:
 *   1. find the agent in the store and check the vault file belongs to that store (its bound fingerprint);
 *   2. read the vault passphrase and, separately, the export password (twice at a terminal);
 *   3. unseal, derive the NIP-06 key at m/44'/1237'/{accountIndex}'/0/0, encrypt it (scrypt + XChaCha20-Poly1305),
 *      zero the key and wipe the vault;
 *   4. append `nostr.identity_exported` (agent id, npub, path, scrypt cost: never the key or the ncryptsec)
 *      through the store's audit append, so the Merkle log stays verifiable;
 *   5. only then print the `ncryptsec1…`, once. Any failure before 5 prints nothing secret and writes nothing.
 */
import { existsSync } from 'node:fs';
import { AirlockError } from '@airlock/core';
import { DEFAULT_LOG_N, KeySecurity, MAX_LOG_N, MIN_ENCRYPT_LOG_N, MIN_PASSPHRASE_LENGTH, encodeNpub, encryptNcryptsec, nostrPath, nostrPublicKey, openVault } from '@airlock/keys';
import type { CliContext } from '../context.ts';
import { UsageError, need } from '../args.ts';
import { hiddenPrompt, readOwnerOnlyFile, readPassphrase } from '../passphrase.ts';
import { printJson } from '../format.ts';

export const NOSTR_EXPORT_USAGE = 'airlock agent nostr-export <id|name> [--data-dir DIR | --store URL] [--passphrase-file FILE] [--log-n 16..22]   (offline; export password: prompt or AIRLOCK_EXPORT_PASSWORD_FILE)';

export const nostrExportOptions = {
  'data-dir': { type: 'string' },
  store: { type: 'string' },
  'passphrase-file': { type: 'string' },
  'log-n': { type: 'string' },
} as const;

export const NOSTR_EXPORTED = 'nostr.identity_exported';

export async function nostrExport(ctx: CliContext, values: Record<string, unknown>, target: string | undefined): Promise<void> {
  const agentRef = need(target, 'agent');
  const logN = parseLogN(values['log-n']);
  const [{ loadConfig }, { openStore }] = await Promise.all([import('@airlock/server'), import('@airlock/store')]);
  const config = loadConfig({ ...(values['data-dir'] ? { dataDir: String(values['data-dir']) } : {}), ...(values.store ? { storeUrl: String(values.store) } : {}) });
  const store = await openStore(config.storeUrl);
  try {
    const bound = await store.getMeta('vault_fingerprint');
    if (!bound) throw new AirlockError('vault_missing', 'This store has no vault yet.', { hints: ['Run `airlock init` first, or point --data-dir / --store at the deployment.'] });
    const agent = await store.getAgent(agentRef);
    if (!agent) throw new AirlockError('not_found', 'No such agent.', { hints: ['`airlock agent list` shows the ids and names.'] });
    // A threshold-bound agent's identity is the cluster's group key, which no one holds whole: exporting the vault
    // key would hand out a key that is not the agent's identity while bound (and becomes it again if unbound).
    const threshold = await store.getThresholdBinding(agent.id, 'nostr');
    if (threshold) {
      throw new AirlockError('invalid_request', `This agent's Nostr identity is the group key of a threshold cluster (${threshold.groupKey}); no whole key exists to export.`, {
        hints: ["Back up each signer node's sealed state file instead (docs/custody.md, \"Threshold cluster (FROST)\")."],
      });
    }
    if (!existsSync(config.vaultPath)) throw new AirlockError('vault_missing', `No vault file at ${config.vaultPath}.`);

    const passphrase = await readPassphrase({ ...(values['passphrase-file'] ? { file: String(values['passphrase-file']) } : {}) });
    if (passphrase === undefined) {
      throw new AirlockError('invalid_request', 'No vault passphrase: not a terminal and none given.', { hints: ['Pass --passphrase-file FILE or set AIRLOCK_PASSPHRASE (see docs/operations.md).'] });
    }
    const password = await readExportPassword();
    // The backup must not open with the vault passphrase: whoever learns one secret must not hold both. Compared as
    // both are used: NIP-49 encrypts under NFKC(password), and the vault derives its key from NFKC(passphrase) too
    // (found by review: a full-width letter made the strings differ, and the vault passphrase opened the backup).
    if (password.normalize('NFKC') === passphrase.normalize('NFKC')) throw new AirlockError('invalid_request', 'The export password must differ from the vault passphrase.');

    const vault = await openVault(config.vaultPath, passphrase);
    let npub: string;
    let ncryptsec: string;
    try {
      if (vault.fingerprint() !== bound) throw new AirlockError('vault_mismatch', 'The vault file does not belong to this store.');
      ({ npub, ncryptsec } = await vault.withNostrSecretKey(agent.accountIndex, async (secretKey) => ({
        npub: encodeNpub(nostrPublicKey(secretKey)),
        // The key lived only in memory, derived from the sealed root: nothing is known to have exposed it.
        ncryptsec: await encryptNcryptsec(secretKey, password, { logN, keySecurity: KeySecurity.notKnownInsecure }),
      })));
    } finally {
      vault.wipe();
    }

    const path = nostrPath(agent.accountIndex);
    // Audited before it is shown: an export that is printed is always on the record (the reverse, an entry
    // for an export whose output was lost, is the harmless direction).
    const entry = await store.transaction((tx) =>
      tx.appendAudit({ at: Date.now(), type: NOSTR_EXPORTED, actor: 'operator', agentId: agent.id, data: { npub, path, format: 'nip49', logN, keySecurity: KeySecurity.notKnownInsecure, by: 'offline-cli' } }),
    );

    if (ctx.json) return printJson({ agentId: agent.id, name: agent.name, npub, path, logN, ncryptsec, auditSeq: entry.seq });
    console.log(`agent  ${agent.name} (${agent.id}), account ${agent.accountIndex}`);
    console.log(`npub   ${npub}`);
    console.log(`path   ${path}`);
    console.log(`NCRYPTSEC (NIP-49, scrypt log_n ${logN}; shown only this once; opens with the export password in any NIP-49 client):`);
    console.log(`  ${ncryptsec}`);
    console.log(`audit  entry ${entry.seq} (${NOSTR_EXPORTED})`);
  } finally {
    await store.close();
  }
}

function parseLogN(v: unknown): number {
  if (v === undefined) return DEFAULT_LOG_N;
  const n = Number(v);
  if (!/^\d+$/.test(String(v)) || n < MIN_ENCRYPT_LOG_N || n > MAX_LOG_N) throw new UsageError(`--log-n: expected an integer ${MIN_ENCRYPT_LOG_N}..${MAX_LOG_N}`);
  return n;
}

/**
 * The export password: AIRLOCK_EXPORT_PASSWORD_FILE (scripts, tests), else asked twice at a terminal.
 * Deliberately not AIRLOCK_PASSPHRASE or --passphrase-file: those hold the vault passphrase.
 */
async function readExportPassword(): Promise<string> {
  const file = process.env.AIRLOCK_EXPORT_PASSWORD_FILE;
  let password: string;
  if (file) {
    password = readOwnerOnlyFile(file, 'export password').replace(/\r?\n$/, '');
  } else if (process.stdin.isTTY) {
    password = await hiddenPrompt(`Export password for the ncryptsec (${MIN_PASSPHRASE_LENGTH}+ chars): `);
    if ((await hiddenPrompt('Repeat export password: ')) !== password) throw new AirlockError('invalid_request', 'The export passwords do not match.');
  } else {
    throw new AirlockError('invalid_request', 'No export password: not a terminal and none given.', { hints: ['Set AIRLOCK_EXPORT_PASSWORD_FILE to a file holding it (mode 0600).'] });
  }
  if ([...password.normalize('NFKC')].length < MIN_PASSPHRASE_LENGTH) {
    throw new AirlockError('invalid_request', `The export password must have at least ${MIN_PASSPHRASE_LENGTH} characters.`);
  }
  return password;
}
