/**
 * `airlock vault split`: the Shamir backup ceremony (SLIP-39 shares of the vault's master secret), and
 * `airlock unseal`: one share (or the passphrase) handed to a daemon started sealed. Shares come from
 * owner-only files or a hidden prompt, never from the command line (shell history, /proc).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { AirlockError } from '@airlock/core';
import type { Command } from '../context.ts';
import { printJson } from '../format.ts';
import { positiveInt, usage } from '../args.ts';
import { hiddenPrompt, readOwnerOnlyFile, readPassphrase } from '../passphrase.ts';

export const vaultCommand: Command = {
  name: 'vault',
  summary: 'split: SLIP-39 shares of the vault root for a k-of-n backup and unseal (offline; the vault passphrase is needed)',
  usage: 'airlock vault split --groups "2of3[,1of1…]" [--group-threshold N (default 1)] [--out-dir DIR] [--passphrase-file FILE] [--data-dir DIR] [--store URL]\n  Without --out-dir each share is shown once at the terminal, one holder at a time; with it, each share goes to its own new 0600 file.',
  options: { groups: { type: 'string' }, 'group-threshold': { type: 'string' }, 'out-dir': { type: 'string' }, 'passphrase-file': { type: 'string' }, 'data-dir': { type: 'string' }, store: { type: 'string' } },
  async run(ctx, { values, positionals }) {
    if (positionals[0] !== 'split' || positionals.length !== 1) throw usage(this.usage);
    if (typeof values.groups !== 'string') throw usage(this.usage);
    const { parseGroupLayouts, checkShareLayout } = await import('@airlock/keys');
    const groups = parseGroupLayouts(values.groups);
    const groupThreshold = values['group-threshold'] === undefined ? 1 : positiveInt(values['group-threshold'], '--group-threshold');
    checkShareLayout({ groupThreshold, groups });
    const outDir = values['out-dir'] as string | undefined;
    if (!outDir && !process.stdout.isTTY) {
      throw new AirlockError('invalid_request', 'Shares are shown only at a terminal: stdout is not one (a pipe or a log would keep them).', {
        hints: ['Run it at a terminal, or pass --out-dir DIR to write each share to its own 0600 file.'],
      });
    }
    if (outDir) {
      mkdirSync(outDir, { recursive: true, mode: 0o700 });
      const taken = groups.flatMap((g, gi) => Array.from({ length: g.memberCount }, (_, mi) => shareFileName(gi, mi))).filter((f) => existsSync(join(outDir, f)));
      if (taken.length > 0) throw new AirlockError('invalid_request', `${join(outDir, taken[0]!)} exists; shares are never written over a file.`, { hints: ['Use an empty directory.'] });
    }
    const { loadConfig, splitVaultIntoShares } = await import('@airlock/server');
    const config = loadConfig({ ...(values['data-dir'] ? { dataDir: String(values['data-dir']) } : {}), ...(values.store ? { storeUrl: String(values.store) } : {}) });
    const passphrase = await readPassphrase({ ...(values['passphrase-file'] ? { file: String(values['passphrase-file']) } : {}) });
    if (passphrase === undefined) throw new AirlockError('invalid_request', 'No vault passphrase: not a terminal and none given.', { hints: ['Pass --passphrase-file FILE or set AIRLOCK_PASSPHRASE.'] });
    const result = await splitVaultIntoShares(config, passphrase, { groupThreshold, groups, output: outDir ? 'files' : 'terminal' });
    const summary = {
      fingerprint: result.fingerprint,
      identifier: result.identifier,
      groupThreshold: result.groupThreshold,
      groups: result.groups.map((g, i) => ({ index: i, memberThreshold: g.memberThreshold, memberCount: g.memberCount, ...(outDir ? { files: g.shares.map((_, m) => join(outDir, shareFileName(i, m))) } : {}) })),
      auditSeq: result.auditSeq,
    };
    if (outDir) {
      for (const [gi, g] of result.groups.entries()) {
        for (const [mi, share] of g.shares.entries()) writeFileSync(join(outDir, shareFileName(gi, mi)), `${share}\n`, { mode: 0o600, flag: 'wx' });
      }
      if (ctx.json) return printJson(summary);
      console.log(`Wrote ${result.groups.reduce((n, g) => n + g.shares.length, 0)} shares to ${outDir} (one 0600 file each). Hand each file to its holder, then delete it here.`);
    } else {
      await showSharesOneHolderAtATime(result.groups, result.groupThreshold);
    }
    console.log(`Vault ${result.fingerprint}: ${describeLayout(result.groupThreshold, result.groups)}. Audit entry ${result.auditSeq}: vault.shares_created.`);
  },
};

const shareFileName = (group: number, member: number) => `share-g${group + 1}-m${member + 1}.txt`;

function describeLayout(groupThreshold: number, groups: { memberThreshold: number; memberCount: number }[]): string {
  return `any ${groupThreshold} of ${groups.length} group(s) [${groups.map((g, i) => `group ${i + 1}: ${g.memberThreshold} of ${g.memberCount}`).join('; ')}] recover it`;
}

/** Each share on a cleared screen, once; the next holder presses Enter. Nothing stays in the scrollback. */
async function showSharesOneHolderAtATime(groups: { memberThreshold: number; memberCount: number; shares: string[] }[], groupThreshold: number): Promise<void> {
  const clear = () => process.stdout.write('\x1b[2J\x1b[3J\x1b[H');
  const enter = (q: string) => new Promise<void>((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    rl.question(q, () => {
      rl.close();
      resolve();
    });
  });
  for (const [gi, g] of groups.entries()) {
    for (const [mi, share] of g.shares.entries()) {
      clear();
      await enter(`Holder of group ${gi + 1}, share ${mi + 1} of ${g.memberCount}: press Enter when only you can see the screen.`);
      console.log(`\nGroup ${gi + 1} needs ${g.memberThreshold} of its ${g.memberCount} shares; ${groupThreshold} group(s) are needed.\n`);
      const words = share.split(' ');
      for (let i = 0; i < words.length; i += 5) console.log(words.slice(i, i + 5).map((w, k) => `${String(i + k + 1).padStart(2)}. ${w.padEnd(10)}`).join(' '));
      await enter('\nWrite the words down in order, then press Enter to clear the screen.');
    }
  }
  clear();
}

export const unsealCommand: Command = {
  name: 'unseal',
  summary: 'Hand one SLIP-39 share to a daemon started sealed (run once per holder), show progress, or reset',
  usage: 'airlock unseal [--share-file FILE (mode 0600)] [--progress] [--reset] [--url URL]\n  One share per call, from the file or a hidden prompt; the daemon unseals when the thresholds are met.',
  options: { 'share-file': { type: 'string' }, progress: { type: 'boolean' }, reset: { type: 'boolean' } },
  async run(ctx, { values, positionals }) {
    if (positionals.length > 0) throw usage(this.usage);
    const call = async (method: 'GET' | 'POST', path: string, body?: unknown) => {
      const res = await fetch(`${ctx.url}${path}`, { method, headers: body ? { 'content-type': 'application/json' } : {}, ...(body ? { body: JSON.stringify(body) } : {}) });
      const json = (await res.json()) as { error?: { code: string; message: string; hints?: string[] } } & SharesProgress;
      if (json.error) throw new AirlockError(json.error.code as never, json.error.message, json.error.hints ? { hints: json.error.hints } : {});
      return json;
    };
    let progress: SharesProgress;
    if (values.reset) progress = await call('POST', '/v1/unseal/shares/reset');
    else if (values.progress) progress = await call('GET', '/v1/unseal/shares');
    else {
      const file = values['share-file'] as string | undefined;
      if (!file && !process.stdin.isTTY) throw new AirlockError('invalid_request', 'No share: not a terminal and no --share-file.');
      const share = file ? readOwnerOnlyFile(file, 'share') : await hiddenPrompt('Share (the words are not shown): ');
      progress = await call('POST', '/v1/unseal/shares', { share: share.trim() });
    }
    if (ctx.json) return printJson(progress);
    if (progress.status === 'unsealed') return console.log('Unsealed.');
    if (progress.groupThreshold === null) return console.log('Sealed: no share entered.');
    console.log(`Sealed: ${progress.groupsComplete} of ${progress.groupThreshold} group(s) complete. ${progress.groups.map((g) => `group ${g.index + 1}: ${g.have}/${g.need}`).join(', ')}`);
  },
};

interface SharesProgress {
  status: 'collecting' | 'unsealed';
  groupThreshold: number | null;
  groupCount: number | null;
  groupsComplete: number;
  groups: { index: number; have: number; need: number }[];
}
