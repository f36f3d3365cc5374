import { AirlockError } from '@airlock/core';
import type { Command } from '../context.ts';
import { streamTaken } from '../log-grace.ts';
import { readPassphrase } from '../passphrase.ts';

/**
 * `airlock key-process`: the vault in a process of its own (docs/custody.md, "Separate key process"). The daemon
 * reaches it with AIRLOCK_KEY_PROCESS_SOCKET and opens no vault itself.
 */
export const keyProcessCommand: Command = {
  name: 'key-process',
  summary: 'Hold the keys in a separate process on a Unix socket; sign only committed decisions',
  usage: 'airlock key-process --socket PATH [--data-dir DIR] [--store URL] [--passphrase-file FILE] [--group] [--head-file FILE] [--forget-signed-head]\n  --group: socket mode 0660, for a daemon running as another user in the socket\'s group (default 0600)\n  --head-file: its record of the last tree head it signed (default key-process-head.json beside the vault); at start the log must still hold that head\n  --forget-signed-head: start on the log as it is (a store restored from an older backup, after `airlock audit verify`)\n  AIRLOCK_KEY_PROCESS_HEAD_DEADLINE (default 2m): it stops signing once leaves read that long ago are under no tree head it signed\n  rates: AIRLOCK_KEY_PROCESS_AGENT_RATE/_AGENT_BURST (default 50/s, 100), _GLOBAL_RATE/_GLOBAL_BURST (500/s, 1000)\n  AIRLOCK_KEY_PROCESS_LIFECYCLE_MAX_FEE (e.g. eip155:1=5000000000000000,*=1000000000000000): its own ceiling, in wei per chain, on a lifecycle transaction\'s worst-case fee\n  AIRLOCK_KEY_PROCESS_TREASURY (e.g. eip155:8453=0xabc…,*=0xdef…): the only treasury a sweep may pay (default: the fleet policy\'s)',
  options: { 'data-dir': { type: 'string' }, store: { type: 'string' }, socket: { type: 'string' }, 'passphrase-file': { type: 'string' }, group: { type: 'boolean' }, 'head-file': { type: 'string' }, 'forget-signed-head': { type: 'boolean' } },
  async run(_ctx, { values }) {
    const { loadConfig, startKeyProcess, keyProcessRatesFrom, keyProcessHeadDeadlineFrom, keyProcessLifecycleMaxFeeFrom, keyProcessTreasuryFrom, createLogger } = await import('@airlock/server');
    const config = loadConfig({
      ...(values['data-dir'] ? { dataDir: String(values['data-dir']) } : {}),
      ...(values.store ? { storeUrl: String(values.store) } : {}),
    });
    const socketPath = values.socket ? String(values.socket) : process.env.AIRLOCK_KEY_PROCESS_SOCKET;
    if (!socketPath) throw new AirlockError('invalid_request', 'Name the socket to listen on: --socket PATH (or AIRLOCK_KEY_PROCESS_SOCKET).');
    const passphrase = await readPassphrase({ ...(values['passphrase-file'] ? { file: String(values['passphrase-file']) } : {}) });
    if (passphrase === undefined) throw new AirlockError('invalid_request', 'No passphrase: not a terminal and none given.', { hints: ['Pass --passphrase-file FILE or set AIRLOCK_PASSPHRASE_FILE (docs/operations.md).'] });
    // Log lines to stderr: stdout stays free for whoever supervises it.
    const logger = createLogger(config.logLevel, process.stderr, config.logQueueBytes);
    const running = await startKeyProcess({
      storeUrl: config.storeUrl, vaultPath: config.vaultPath, passphrase, socketPath, logger,
      socketMode: values.group ? 0o660 : 0o600, rates: keyProcessRatesFrom(process.env), headDeadlineMs: keyProcessHeadDeadlineFrom(process.env),
      lifecycleMaxFee: keyProcessLifecycleMaxFeeFrom(process.env), lifecycleTreasury: keyProcessTreasuryFrom(process.env),
      ...(values['head-file'] ? { headRecordPath: String(values['head-file']) } : {}),
      ...(values['forget-signed-head'] ? { forgetSignedHead: true } : {}),
    });
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.log('info', `${signal}: key process stopping`);
      await running.close().catch(() => undefined);
      // Its log is on stderr: the reader gets up to 2 s to take what is queued, as the daemon's reader does.
      await streamTaken(process.stderr);
      process.exit(0);
    };
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void stop(signal));
    console.log(`Key process listening on ${running.socketPath} (vault ${running.fingerprint})`);
  },
};
