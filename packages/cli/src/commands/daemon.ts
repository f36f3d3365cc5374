import { join } from 'node:path';
import { closeSync, existsSync, fstatSync, lstatSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { AirlockError } from '@airlock/core';
import type { readVaultHeader } from '@airlock/keys';
import type { AirlockConfig, InitResult } from '@airlock/server';
import type { Command } from '../context.ts';
import { streamTaken } from '../log-grace.ts';
import { readPassphrase } from '../passphrase.ts';
import { printJson } from '../format.ts';

const storeOptions = {
  'data-dir': { type: 'string' },
  store: { type: 'string' },
  'passphrase-file': { type: 'string' },
} as const;

// The daemon's modules load on demand: every other command starts faster without them (~0.4 s).
const serverModule = () => import('@airlock/server');

const FIRST_RUN_SECRETS = 'first-run-secrets.txt';

/** While the first-run file exists, the recovery phrase and admin token sit in clear beside the vault. */
function warnFirstRunSecrets(config: AirlockConfig): void {
  const file = join(config.dataDir, FIRST_RUN_SECRETS);
  if (!existsSync(file)) return;
  console.error(`warning: ${file} holds the recovery phrase and the admin token in clear, next to the vault.`);
  console.error('  Copy them somewhere safe and offline, then delete that file.');
}

async function configFrom(values: Record<string, unknown>): Promise<AirlockConfig> {
  const { loadConfig } = await serverModule();
  return loadConfig({
    ...(values['data-dir'] ? { dataDir: String(values['data-dir']) } : {}),
    ...(values.store ? { storeUrl: String(values.store) } : {}),
    ...(values.host ? { host: String(values.host) } : {}),
    ...(values.port ? { port: Number(values.port) } : {}),
    ...(values.socket ? { socketPath: String(values.socket) } : {}),
  });
}

/**
 * `secretsToFile`: on a first `start` whose stdout is not a terminal (a service manager, a log), the recovery
 * phrase and admin token must not land in the log: they go to an owner-only file in the data directory instead.
 */
async function runInit(config: AirlockConfig, passphraseFile: string | undefined, json: boolean, secretsToFile = false): Promise<string> {
  const file = join(config.dataDir, FIRST_RUN_SECRETS);
  // Refused before the passphrase is asked for, and the name claimed before the vault is created: once initAirlock
  // has run, the new phrase and token have nowhere else to go.
  if (secretsToFile && lstatSync(file, { throwIfNoEntry: false })) throw staleFirstRunSecrets(file);
  const passphrase = await readPassphrase({ ...(passphraseFile ? { file: passphraseFile } : {}), confirm: true, prompt: 'New vault passphrase (12+ chars): ' });
  if (passphrase === undefined) {
    throw new AirlockError('invalid_request', 'No passphrase: not a terminal and none given.', { hints: ['Pass --passphrase-file FILE or set AIRLOCK_PASSPHRASE (see docs/operations.md).'] });
  }
  const { initAirlock, redactUrl, explainStoreFailure } = await serverModule();
  const claimed = secretsToFile ? claimFirstRunSecretsFile(file) : undefined;
  let result: InitResult;
  try {
    result = await initAirlock(config, passphrase);
  } catch (e) {
    if (claimed !== undefined) releaseFirstRunSecretsFile(file, claimed);
    // As a start with a vault says it (docs/operations.md "Start-up failures"): host:port and what to check,
    // never the URL or its password; the driver's bare "the PostgreSQL store is unavailable" says neither.
    throw explainStoreFailure(e, config.storeUrl);
  }
  if (secretsToFile) {
    if (claimed === undefined) {
      // There was no data directory to claim the name in: initAirlock has just made it, owner-only and empty.
      writeFileSync(file, firstRunSecretsText(result), { mode: 0o600, flag: 'wx' });
    } else {
      try {
        writeFileSync(claimed, firstRunSecretsText(result));
      } finally {
        closeSync(claimed);
      }
    }
    console.log(`Vault created: ${config.vaultPath} (fingerprint ${result.fingerprint})`);
    console.log(`stdout is not a terminal, so the recovery phrase and admin token were written to ${file} (mode 0600).`);
    console.log('Copy them somewhere safe and offline, then delete that file.');
  } else if (json) {
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

/**
 * A first-run secrets file already there holds the phrase and token of the vault an earlier first run created,
 * perhaps the only copy: it is never overwritten, and no vault is created whose secrets would have nowhere to go.
 */
function staleFirstRunSecrets(file: string): AirlockError {
  return new AirlockError('conflict', `${file} is left from an earlier first run: it holds the recovery phrase and admin token of the vault that run created. No vault was created, nothing was changed.`, {
    hints: [
      'It may be the only copy of that vault\'s recovery phrase: if the vault was lost rather than retired, restore it (`airlock restore`) instead of creating a new one.',
      'Otherwise copy what it holds offline (or keep the file elsewhere), remove it from the data directory and start again; `airlock init` at a terminal prints the new secrets instead.',
    ],
  });
}

/** Creates the secrets file empty and owner-only; undefined when the data directory does not exist yet (initAirlock makes it). */
function claimFirstRunSecretsFile(file: string): number | undefined {
  try {
    return openSync(file, 'wx', 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'EEXIST') throw staleFirstRunSecrets(file);
    throw new AirlockError('invalid_request', `Cannot create ${file} for the first-run secrets; no vault was created.`, { cause: e });
  }
}

/** No vault was created: the claimed (empty) file goes, if the name is still ours, so the next start can claim it. */
function releaseFirstRunSecretsFile(file: string, claimed: number): void {
  try {
    const ours = fstatSync(claimed);
    const there = lstatSync(file, { throwIfNoEntry: false });
    if (there && there.ino === ours.ino && there.dev === ours.dev) rmSync(file);
  } finally {
    closeSync(claimed);
  }
}

/**
 * The first-run secrets file. The admin token line is the same `export AIRLOCK_ADMIN_TOKEN=…` the terminal
 * shows and the README uses, so `source <(grep AIRLOCK_ADMIN_TOKEN FILE)` or a paste sets it.
 */
function firstRunSecretsText(result: { mnemonic: string; adminToken: string; auditPublicKey: string }): string {
  return [
    '# Airlock first-run secrets. Copy them somewhere safe and offline, then delete this file.',
    '# Recovery phrase (restores every agent key):',
    `recovery phrase: ${result.mnemonic}`,
    '# Admin token (only its hash is stored):',
    `export AIRLOCK_ADMIN_TOKEN=${result.adminToken}`,
    '# Audit public key (publish it so anyone can verify checkpoints):',
    `audit public key: ${result.auditPublicKey}`,
    '',
  ].join('\n');
}

export const initCommand: Command = {
  name: 'init',
  summary: 'Create the sealed vault (24-word BIP-39 root) and the admin token',
  usage: 'airlock init [--data-dir DIR] [--store URL] [--passphrase-file FILE]',
  options: storeOptions,
  async run(ctx, { values }) {
    const config = await configFrom(values);
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
    const config = await configFrom(values);
    let passphrase: string | { keyProcess: string } | undefined;
    if (config.keyProcessSocket) {
      // The key process holds the vault: this process opens none, asks for no passphrase and creates no vault.
      passphrase = { keyProcess: config.keyProcessSocket };
    } else if (!existsSync(config.vaultPath)) {
      console.log(`No vault at ${config.vaultPath}: creating one (first run).`);
      passphrase = await runInit(config, values['passphrase-file'] as string | undefined, ctx.json, !process.stdout.isTTY);
    } else if (!values.sealed) {
      passphrase = await readPassphrase({ ...(values['passphrase-file'] ? { file: String(values['passphrase-file']) } : {}) });
      if (passphrase === undefined) console.log('No passphrase available: starting sealed. POST /v1/unseal to unseal.');
    }
    warnFirstRunSecrets(config);
    const { serveAirlock, redactUrl, createLogger } = await serverModule();
    const server = await serveAirlock(config, passphrase, { logger: createLogger(config.logLevel, process.stdout, config.logQueueBytes) });
    let stopping = false;
    const stop = async (signal: string) => {
      // Ctrl-C under the bin/ launcher arrives twice (the terminal and the launcher forward it): shut down once.
      if (stopping) return;
      stopping = true;
      console.log(`${signal}: shutting down (draining requests for up to ${config.shutdownTimeoutMs / 1000}s, then the final audit checkpoint)…`);
      try {
        const { cut } = await server.drainAndClose();
        if (cut > 0) console.error(`${cut} request(s) still running at the shutdown deadline were cut (AIRLOCK_SHUTDOWN_TIMEOUT).`);
        console.log('stopped');
        await streamTaken(process.stdout);
        process.exit(0);
      } catch (e) {
        console.error(`shutdown failed: ${e instanceof Error ? e.message : String(e)}`);
        process.exit(1);
      }
    };
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void stop(signal));
    if (server.metricsUrl) console.log(`Metrics on ${server.metricsUrl}`);
    console.log(`Airlock listening on ${server.url} (store: ${redactUrl(config.storeUrl)}, ${config.keyProcessSocket ? `keys in the key process on ${config.keyProcessSocket}` : server.holder.sealed ? 'sealed' : 'unsealed'})`);
  },
};

export const statusCommand: Command = {
  name: 'status',
  summary: 'Is the daemon up and unsealed; vault file parameters (exit 1 unless up and unsealed)',
  usage: 'airlock status [--data-dir DIR]',
  options: { 'data-dir': { type: 'string' } },
  async run(ctx, { values }) {
    const config = await configFrom(values);
    let health: { status: string; store?: string };
    try {
      const res = await fetch(`${ctx.url}/v1/health`);
      health = (await res.json()) as typeof health;
    } catch {
      health = { status: 'unreachable' };
    }
    const { readVaultHeader } = await import('@airlock/keys');
    const vault = existsSync(config.vaultPath) ? await readVaultHeader(config.vaultPath) : undefined;
    // Scripts can gate on `airlock status`: only a running, unsealed daemon is success.
    if (health.status !== 'ok') process.exitCode = 1;
    warnFirstRunSecrets(config);
    if (ctx.json) return printJson({ url: ctx.url, health, vault: vault ?? null });
    console.log(`daemon  ${ctx.url}: ${health.status}${health.store ? ` (store: ${health.store})` : ''}`);
    console.log(`vault   ${config.vaultPath}: ${vault ? describeVault(vault) : 'none'}`);
  },
};

function describeVault(v: Awaited<ReturnType<typeof readVaultHeader>>): string {
  const k = v.kdf;
  return `${k.alg} (memory ${k.memoryKiB / 1024} MiB, ${k.passes} passes, parallelism ${k.parallelism}), ${v.cipher.alg}`;
}
