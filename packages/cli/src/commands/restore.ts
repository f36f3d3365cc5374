/**
 * `airlock restore`: the vault rebuilt from the recovery phrase under a new passphrase, after the phrase is
 * checked against the store (restoreAirlock in @airlock/server). The phrase comes from an owner-only file or
 * a hidden prompt, never from the command line or the environment (both leak: shell history, /proc).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { AirlockError } from '@airlock/core';
import type { Command } from '../context.ts';
import { printJson } from '../format.ts';
import { hiddenPrompt, readOwnerOnlyFile, readPassphrase } from '../passphrase.ts';

export const restoreCommand: Command = {
  name: 'restore',
  summary: 'Rebuild the vault from the recovery phrase, checked against the store first (offline; the daemon stopped); with AIRLOCK_KEY_BACKEND=pkcs11 the EVM agent keys are checked on the token',
  usage: 'airlock restore [--phrase-file FILE (mode 0600) | --shares-dir DIR | --share-file FILE ...] [--passphrase-file FILE] [--data-dir DIR] [--store URL] [--force]\n  phrase: --phrase-file, else a hidden prompt; or SLIP-39 shares (`airlock vault split`), one per owner-only file, enough to meet the thresholds.\n  new passphrase: the sources `airlock init` takes. --force replaces an existing vault file.',
  options: { 'phrase-file': { type: 'string' }, 'shares-dir': { type: 'string' }, 'share-file': { type: 'string', multiple: true }, 'passphrase-file': { type: 'string' }, 'data-dir': { type: 'string' }, store: { type: 'string' }, force: { type: 'boolean' } },
  async run(ctx, { values, positionals }) {
    if (positionals.length > 0) throw new AirlockError('invalid_request', 'airlock restore takes no arguments: the recovery phrase is read from --phrase-file or a hidden prompt, never from the command line.');
    const { loadConfig, restoreAirlock, restoreAirlockFromShares, refuseExistingVault, redactUrl } = await import('@airlock/server');
    const shareFiles = (values['share-file'] as string[] | undefined) ?? [];
    const byShares = values['shares-dir'] !== undefined || shareFiles.length > 0;
    if (byShares && values['phrase-file'] !== undefined) throw new AirlockError('invalid_request', 'Give the recovery phrase or shares, not both.');
    const config = loadConfig({ ...(values['data-dir'] ? { dataDir: String(values['data-dir']) } : {}), ...(values.store ? { storeUrl: String(values.store) } : {}) });
    // Before anyone types 24 words at a prompt.
    refuseExistingVault(config, { force: values.force === true });
    const shares = byShares ? readShareFiles(values['shares-dir'] as string | undefined, shareFiles) : undefined;
    const phrase = shares ? undefined : await readRecoveryPhrase(values['phrase-file'] as string | undefined);
    const passphrase = await readPassphrase({ ...(values['passphrase-file'] ? { file: String(values['passphrase-file']) } : {}), confirm: true, prompt: 'New vault passphrase (12+ chars): ' });
    if (passphrase === undefined) {
      throw new AirlockError('invalid_request', 'No new vault passphrase: not a terminal and none given.', { hints: ['Pass --passphrase-file FILE or set AIRLOCK_PASSPHRASE (see docs/operations.md, Passphrase sources).'] });
    }
    const result = shares
      ? await restoreAirlockFromShares(config, shares, passphrase, { force: values.force === true })
      : await restoreAirlock(config, phrase!, passphrase, { force: values.force === true });
    if (ctx.json) return printJson(result);
    console.log(`Vault restored: ${result.vaultPath} (fingerprint ${result.fingerprint}${result.replaced ? ', replaced the file that was there' : ''})`);
    if (result.token) {
      // A PKCS#11 deployment: the phrase restored the vault keys; the EVM agent keys were found on the token.
      console.log(`Checked against ${redactUrl(config.storeUrl)}: the ${shares ? 'shares are' : 'phrase is'} this store's vault, and PKCS#11 token "${result.token.label}" holds the recorded key of all ${result.agentsChecked} agent(s) (${result.token.keysFound} EVM key(s)).`);
    } else {
      console.log(`Checked against ${redactUrl(config.storeUrl)}: the ${shares ? 'shares derive' : 'phrase derives'} the recorded address of all ${result.agentsChecked} agent(s) (${result.keysChecked} key(s)).`);
    }
    console.log(`Audit entry ${result.auditSeq}: vault.restored. Start with the new passphrase: airlock start`);
  },
};

/** Every share in DIR (each regular file one share, owner-only) and each --share-file. */
function readShareFiles(dir: string | undefined, files: string[]): string[] {
  const paths = [...(dir ? readdirSync(dir).sort().map((name) => join(dir, name)) : []), ...files];
  if (paths.length === 0) throw new AirlockError('invalid_request', 'No share files: --shares-dir DIR holds none.');
  return paths.map((p) => readOwnerOnlyFile(p, 'share'));
}

/** An owner-only file (no group or other permission bits), else a hidden prompt at a terminal. */
async function readRecoveryPhrase(file: string | undefined): Promise<string> {
  if (file) return readOwnerOnlyFile(file, 'recovery phrase');
  if (!process.stdin.isTTY) {
    throw new AirlockError('invalid_request', 'No recovery phrase: not a terminal and no --phrase-file.', {
      hints: ['Write the words to a file only you can read (chmod 600), pass --phrase-file FILE, and shred it afterwards.'],
    });
  }
  return hiddenPrompt('Recovery phrase (the words are not shown): ');
}
