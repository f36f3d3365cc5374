/**
 * `airlock admin rotate-token`: a new admin token, shown once; the old one stops working (this instance at
 * once, other instances on the same store within the bound the daemon reports). `--offline` is for an
 * operator who lost the token: it runs against the store with the vault passphrase instead.
 */
import { AirlockError } from '@airlock/core';
import type { Command } from '../context.ts';
import { printJson } from '../format.ts';
import { readPassphrase } from '../passphrase.ts';
import { usage } from '../args.ts';

interface RotationJson { token: string; rotatedAt: string; auditSeq: number; otherInstancesWithinSeconds: number }

export const adminCommand: Command = {
  name: 'admin',
  summary: 'rotate-token: replace the admin token (through the daemon, or --offline with the vault passphrase)',
  usage: [
    'airlock admin rotate-token                 (AIRLOCK_ADMIN_TOKEN / --token: the token to replace)',
    'airlock admin rotate-token --offline [--data-dir DIR] [--store URL] [--passphrase-file FILE]   (lost token: proves the vault instead)',
  ].join('\n'),
  options: { offline: { type: 'boolean' }, 'data-dir': { type: 'string' }, store: { type: 'string' }, 'passphrase-file': { type: 'string' } },
  async run(ctx, { values, positionals }) {
    if (positionals[0] !== 'rotate-token' || positionals.length !== 1) throw usage(this.usage);
    const rotation = values.offline ? await rotateOffline(values) : (await ctx.admin().request<RotationJson>('POST', '/v1/admin/token/rotate')).body;
    if (ctx.json) return printJson(rotation);
    console.log('NEW ADMIN TOKEN (shown only once; only its hash is stored):');
    console.log(`  export AIRLOCK_ADMIN_TOKEN=${rotation.token}\n`);
    console.log(values.offline
      ? `Every instance running on this store refuses the old token within ${rotation.otherInstancesWithinSeconds} s.`
      : `The old token is refused from now on by this daemon, and by every other instance on the same store within ${rotation.otherInstancesWithinSeconds} s.`);
    console.log(`Console sessions opened with the old token end with it. Audit entry ${rotation.auditSeq}: admin.token_rotated.`);
  },
};

async function rotateOffline(values: Record<string, unknown>): Promise<RotationJson> {
  const { loadConfig, rotateAdminTokenOffline, ADMIN_TOKEN_STALENESS_MS } = await import('@airlock/server');
  const config = loadConfig({ ...(values['data-dir'] ? { dataDir: String(values['data-dir']) } : {}), ...(values.store ? { storeUrl: String(values.store) } : {}) });
  const passphrase = await readPassphrase({ ...(values['passphrase-file'] ? { file: String(values['passphrase-file']) } : {}) });
  if (passphrase === undefined) {
    throw new AirlockError('invalid_request', 'No vault passphrase: not a terminal and none given.', { hints: ['Pass --passphrase-file FILE or set AIRLOCK_PASSPHRASE (see docs/operations.md).'] });
  }
  const r = await rotateAdminTokenOffline(config, passphrase);
  return { token: r.token, rotatedAt: new Date(r.rotatedAt).toISOString(), auditSeq: r.auditSeq, otherInstancesWithinSeconds: Math.ceil(ADMIN_TOKEN_STALENESS_MS / 1000) };
}
