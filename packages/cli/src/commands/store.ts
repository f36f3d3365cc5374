import { existsSync } from 'node:fs';
import { AirlockError, verifyStoredAudit, type AuditVerifyResult } from '@airlock/core';
import type { Command } from '../context.ts';
import { printJson, table } from '../format.ts';
import { need, usage } from '../args.ts';

/**
 * `airlock store migrate`: moves a deployment from the embedded SQLite store to PostgreSQL. The vault
 * file and the audit anchor beside it stay where they are; only the database moves.
 */
export const storeCommand: Command = {
  name: 'store',
  summary: 'migrate: copy every row of a SQLite store into an empty PostgreSQL store, then verify the audit log there',
  usage: 'airlock store migrate --from sqlite:PATH --to postgres://USER@HOST:PORT/DB[?schema=NAME] [--data-dir DIR]   (stop the daemon first)',
  options: { from: { type: 'string' }, to: { type: 'string' }, 'data-dir': { type: 'string' } },
  async run(ctx, { values, positionals }) {
    if (positionals[0] !== 'migrate' || positionals.length !== 1) throw usage(this.usage);
    const from = need(values.from as string | undefined, '--from sqlite:PATH');
    const to = need(values.to as string | undefined, '--to postgres://…');
    const [{ loadConfig, verifySchnorr, auditAnchorPath, readAuditAnchorFile, auditVerifyOptions, redactUrl, explainStoreFailure }, store] = await Promise.all([import('@airlock/server'), import('@airlock/store')]);
    const source = store.storeTarget(from);
    const target = store.storeTarget(to);
    if (!('sqlite' in source)) throw new AirlockError('invalid_request', '--from must be a SQLite store URL (sqlite:PATH).');
    if (!('postgres' in target)) throw new AirlockError('invalid_request', '--to must be a PostgreSQL store URL (postgres://…).');
    // Opening a SQLite store creates its file: a mistyped path must not turn into an empty store.
    if (!existsSync(source.sqlite)) throw new AirlockError('not_found', 'No SQLite store at the --from path.');

    // The audit log is checked against the anchor this instance keeps beside the vault (as `audit verify
    // --offline` does), at the source before copying and at the target after: both must give the same tree.
    const config = loadConfig({ ...(values['data-dir'] ? { dataDir: String(values['data-dir']) } : {}), storeUrl: from });
    const anchor = await readAuditAnchorFile(auditAnchorPath(config.vaultPath));
    const verifyAt = async (url: string, publicKey: string | undefined): Promise<{ result: AuditVerifyResult; publicKey: string }> => {
      const opened = await store.openStore(url);
      try {
        const key = publicKey ?? anchor?.publicKey ?? (await opened.getMeta('audit_public_key'));
        if (!key) throw new AirlockError('invalid_request', 'The source store has no audit public key: is it an Airlock store?');
        return { result: await verifyStoredAudit(opened, verifySchnorr, key, anchor ? [anchor] : [], auditVerifyOptions(url)), publicKey: key };
      } finally {
        await opened.close();
      }
    };

    const before = await verifyAt(from, undefined);
    if (!before.result.ok) {
      throw new AirlockError('audit_integrity_failed', `The source audit log does not verify (entry ${before.result.firstBad!.seq}: ${before.result.firstBad!.reason}); nothing was copied.`, {
        hints: ['Run `airlock audit verify --offline` on the source and resolve that first.'],
      });
    }
    // A target that cannot be reached is explained as `airlock start` explains its store (host:port, what to
    // check; never the URL or its password), not as the driver's bare "the PostgreSQL store is unavailable".
    const atTarget = <T>(step: Promise<T>): Promise<T> => step.catch((e: unknown) => Promise.reject(targetFailure(explainStoreFailure(e, to), e)));
    const report = await atTarget(store.copySqliteToPostgres(source.sqlite, target.postgres));
    const after = await atTarget(verifyAt(to, before.publicKey));
    const same = after.result.ok && after.result.rootHash === before.result.rootHash && after.result.entries === before.result.entries;
    if (!same) {
      throw new AirlockError('audit_integrity_failed', `The copied audit log does not verify at the target${after.result.firstBad ? ` (entry ${after.result.firstBad.seq}: ${after.result.firstBad.reason})` : ' (a different tree)'}.`, {
        hints: ['Keep running on the source store; report this as a bug. The target can be dropped.'],
      });
    }
    if (ctx.json) return printJson({ from: redactUrl(from), to: redactUrl(to), tables: report.tables, audit: after.result });
    console.log(table(report.tables, ['table', 'rows']));
    const r = after.result;
    console.log(`\nOK: copied to ${redactUrl(to)}; audit log verified there: ${r.entries} entries, ${r.treeHeads} signed tree heads, root ${r.rootHash.slice(0, 16)}… (same as the source)`);
    console.log(`Start on it: the same data directory and vault, with --store (or AIRLOCK_STORE) set to the --to URL. Keep ${source.sqlite} as a backup; do not start on it again.`);
  },
};

/**
 * explainStoreFailure's answer for the --to store: its hint on where the store is configured names the daemon's
 * settings (AIRLOCK_STORE, --store), which this command does not read; here the store is the --to URL.
 */
function targetFailure(explained: unknown, original: unknown): unknown {
  if (explained === original || !(explained instanceof AirlockError)) return explained;
  const hints = explained.hints.filter((h) => !h.startsWith('The store is AIRLOCK_STORE'));
  return new AirlockError(explained.code, explained.message, { cause: explained.cause, hints: [...hints, 'The PostgreSQL store here is the --to URL.'] });
}
