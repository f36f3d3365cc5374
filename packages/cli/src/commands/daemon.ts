import { existsSync } from 'node:fs';
import { AirlockError } from '@airlock/core';
import { readVaultHeader } from '@airlock/keys';
import { initAirlock, loadConfig, redactUrl, serveAirlock, type AirlockConfig } from '@airlock/server';
import type { Command } from '../context.ts';
import { readPassphrase } from '../passphrase.ts';
import { printJson } from '../format.ts';

const storeOptions = {
  'data-dir': { type: 'string' },
  store: { type: 'string' },
  'passphrase-file': { type: 'string' },
} as const;

function configFrom(values: Record<string, unknown>): AirlockConfig {
  return loadConfig({
    ...(values['data-dir'] ? { dataDir: String(values['data-dir']) } : {}),
    ...(values.store ? { storeUrl: String(values.store) } : {}),
    ...(values.host ? { host: String(values.host) } : {}),
    ...(values.port ? { port: Number(values.port) } : {}),
    ...(values.socket ? { socketPath: String(values.socket) } : {}),
  });
}

async function runInit(config: AirlockConfig, passphraseFile: string | undefined, json: boolean): Promise<string> {
  const passphrase = await readPassphrase({ ...(passphraseFile ? { file: passphraseFile } : {}), confirm: true, prompt: 'New vault passphrase (12+ chars): ' });
  if (passphrase === undefined) {
    throw new AirlockError('invalid_request', 'No passphrase: not a terminal and none given.', { hints: ['Pass --passphrase-file FILE or set AIRLOCK_PASSPHRASE (see docs/operations.md).'] });
  }
  const result = await initAirlock(config, passphrase);
  if (json) {
    printJson(result);
  } else {
    console.log(`Vault created: ${config.vaultPath} (fingerprint ${result.fingerprint})`);
    console.log(`Store: ${redactUrl(config.storeUrl)}\n`);
    console.log('RECOVERY PHRASE (write it down offline; it is shown only this once and restores every agent key):');
    console.log(`  ${result.mnemonic}\n`);
    console.log('ADMIN TOKEN (shown only once; only its hash is stored):');
    console.log(`  export AIRLOCK_ADMIN_TOKEN=${result.adminToken}\n`);
    console.log(`Audit public key (publish it so anyone can verify checkpoints): ${result.auditPublicKey}`);
  }
  return passphrase;
}

export const initCommand: Command = {
  name: 'init',
  summary: 'Create the sealed vault (24-word BIP-39 root) and the admin token',
  usage: 'airlock init [--data-dir DIR] [--store URL] [--passphrase-file FILE]',
  options: storeOptions,
  async run(ctx, { values }) {
    const config = configFrom(values);
    if (existsSync(config.vaultPath)) throw new AirlockError('vault_exists', `A vault already exists at ${config.vaultPath}.`);
    await runInit(config, values['passphrase-file'] as string | undefined, ctx.json);
  },
};

export const startCommand: Command = {
  name: 'start',
  summary: 'Run the daemon (unseals the vault; on first run in a terminal, creates it)',
  usage: 'airlock start [--data-dir DIR] [--store URL] [--host H] [--port P] [--socket PATH] [--passphrase-file FILE] [--sealed]',
  options: { ...storeOptions, host: { type: 'string' }, port: { type: 'string' }, socket: { type: 'string' }, sealed: { type: 'boolean' } },
  async run(ctx, { values }) {
    const config = configFrom(values);
    let passphrase: string | undefined;
    if (!existsSync(config.vaultPath)) {
      console.log(`No vault at ${config.vaultPath}: creating one (first run).`);
      passphrase = await runInit(config, values['passphrase-file'] as string | undefined, ctx.json);
    } else if (!values.sealed) {
      passphrase = await readPassphrase({ ...(values['passphrase-file'] ? { file: String(values['passphrase-file']) } : {}) });
      if (passphrase === undefined) console.log('No passphrase available: starting sealed. POST /v1/unseal to unseal.');
    }
    const server = await serveAirlock(config, passphrase);
    console.log(`Airlock listening on ${server.url} (store: ${redactUrl(config.storeUrl)}, ${server.holder.sealed ? 'sealed' : 'unsealed'})`);
    const stop = async (signal: string) => {
      console.log(`${signal}: shutting down (final audit checkpoint)…`);
      await server.close();
      process.exit(0);
    };
    process.once('SIGINT', () => void stop('SIGINT'));
    process.once('SIGTERM', () => void stop('SIGTERM'));
  },
};

export const statusCommand: Command = {
  name: 'status',
  summary: 'Is the daemon up and unsealed; vault file parameters',
  usage: 'airlock status [--data-dir DIR]',
  options: { 'data-dir': { type: 'string' } },
  async run(ctx, { values }) {
    const config = configFrom(values);
    let health: unknown;
    try {
      const res = await fetch(`${ctx.url}/v1/health`);
      health = await res.json();
    } catch {
      health = { status: 'unreachable' };
    }
    const vault = existsSync(config.vaultPath) ? await readVaultHeader(config.vaultPath) : undefined;
    if (ctx.json) return printJson({ url: ctx.url, health, vault: vault ?? null });
    console.log(`daemon  ${ctx.url}: ${(health as { status: string }).status}`);
    console.log(vault ? `vault   ${config.vaultPath}: ${JSON.stringify(vault)}` : `vault   ${config.vaultPath}: none`);
  },
};
