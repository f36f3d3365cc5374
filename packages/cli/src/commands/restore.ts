/**
 * `airlock restore`: the vault rebuilt from the recovery phrase under a new passphrase, after the phrase is
 * checked against the store (restoreAirlock in @airlock/server). The phrase comes from an owner-only file or
 * a hidden prompt, never from the command line or the environment (both leak: shell history, /proc).
 */
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { AirlockError } from '@airlock/core';
import type { Command } from '../context.ts';
import { printJson } from '../format.ts';
import { hiddenPrompt, readPassphrase } from '../passphrase.ts';

export const restoreCommand: Command = {
  name: 'restore',
  summary: 'Rebuild the vault from the recovery phrase, checked against the store first (offline; the daemon stopped)',
  usage: 'airlock restore [--phrase-file FILE (mode 0600)] [--passphrase-file FILE] [--data-dir DIR] [--store URL] [--force]\n  phrase: --phrase-file, else a hidden prompt; new passphrase: the sources `airlock init` takes. --force replaces an existing vault file.',
  options: { 'phrase-file': { type: 'string' }, 'passphrase-file': { type: 'string' }, 'data-dir': { type: 'string' }, store: { type: 'string' }, force: { type: 'boolean' } },
  async run(ctx, { values, positionals }) {
    if (positionals.length > 0) throw new AirlockError('invalid_request', 'airlock restore takes no arguments: the recovery phrase is read from --phrase-file or a hidden prompt, never from the command line.');
    const { loadConfig, restoreAirlock, refuseExistingVault, redactUrl } = await import('@airlock/server');
    const config = loadConfig({ ...(values['data-dir'] ? { dataDir: String(values['data-dir']) } : {}), ...(values.store ? { storeUrl: String(values.store) } : {}) });
    // Before anyone types 24 words at a prompt.
    refuseExistingVault(config, { force: values.force === true });
    const phrase = await readRecoveryPhrase(values['phrase-file'] as string | undefined);
    const passphrase = await readPassphrase({ ...(values['passphrase-file'] ? { file: String(values['passphrase-file']) } : {}), confirm: true, prompt: 'New vault passphrase (12+ chars): ' });
    if (passphrase === undefined) {
      throw new AirlockError('invalid_request', 'No new vault passphrase: not a terminal and none given.', { hints: ['Pass --passphrase-file FILE or set AIRLOCK_PASSPHRASE (see docs/operations.md, Passphrase sources).'] });
    }
    const result = await restoreAirlock(config, phrase, passphrase, { force: values.force === true });
    if (ctx.json) return printJson(result);
    console.log(`Vault restored: ${result.vaultPath} (fingerprint ${result.fingerprint}${result.replaced ? ', replaced the file that was there' : ''})`);
    console.log(`Checked against ${redactUrl(config.storeUrl)}: the phrase derives the recorded address of all ${result.agentsChecked} agent(s) (${result.keysChecked} key(s)).`);
    console.log(`Audit entry ${result.auditSeq}: vault.restored. Start with the new passphrase: airlock start`);
  },
};

/** An owner-only file (no group or other permission bits), else a hidden prompt at a terminal. */
async function readRecoveryPhrase(file: string | undefined): Promise<string> {
  if (file) {
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch (e) {
      throw new AirlockError('invalid_request', 'Cannot read the recovery phrase file.', { cause: e });
    }
    try {
      const stat = fstatSync(fd);
      if (!stat.isFile()) throw new AirlockError('invalid_request', 'The recovery phrase file is not a regular file.');
      if ((stat.mode & 0o077) !== 0) {
        throw new AirlockError('invalid_request', `The recovery phrase file can be read by other users (mode ${(stat.mode & 0o777).toString(8)}); nothing was done.`, {
          hints: [`chmod 600 ${file}`],
        });
      }
      return readFileSync(fd, 'utf8');
    } finally {
      closeSync(fd);
    }
  }
  if (!process.stdin.isTTY) {
    throw new AirlockError('invalid_request', 'No recovery phrase: not a terminal and no --phrase-file.', {
      hints: ['Write the words to a file only you can read (chmod 600), pass --phrase-file FILE, and shred it afterwards.'],
    });
  }
  return hiddenPrompt('Recovery phrase (the words are not shown): ');
}
