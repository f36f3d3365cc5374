import { parseArgs } from 'node:util';
import { AirlockError } from '@airlock/core';
import { AirlockApiError } from '@airlock/sdk';
import { createContext, type Command } from './context.ts';
import { initCommand, startCommand, statusCommand } from './commands/daemon.ts';
import { agentCommand } from './commands/agents.ts';
import { UsageError } from './args.ts';
import { policyCommand } from './commands/policy.ts';
import { sessionCommand } from './commands/sessions.ts';
import { auditCommand } from './commands/audit.ts';
import { approvalsCommand } from './commands/approvals.ts';
import { breakerCommand } from './commands/breakers.ts';
import { lifecycleCommand } from './commands/lifecycle.ts';
import { approverCommand } from './commands/approvers.ts';
import { mcpCommand } from './commands/mcp.ts';
import { storeCommand } from './commands/store.ts';
import { nostrCommand } from './commands/nostr.ts';
import { lightningCommand } from './commands/lightning.ts';
import { bitcoinCommand } from './commands/bitcoin.ts';
import { webhookCommand } from './commands/webhooks.ts';
import { restoreCommand } from './commands/restore.ts';
import { unsealCommand, vaultCommand } from './commands/vault.ts';
import { adminCommand } from './commands/admin.ts';
import { keyProcessCommand } from './commands/key-process.ts';
import { frostCommand } from './commands/frost.ts';

const COMMANDS: Command[] = [initCommand, startCommand, statusCommand, keyProcessCommand, restoreCommand, vaultCommand, unsealCommand, adminCommand, agentCommand, policyCommand, sessionCommand, auditCommand, approvalsCommand, approverCommand, breakerCommand, lifecycleCommand, storeCommand, mcpCommand, nostrCommand, lightningCommand, bitcoinCommand, webhookCommand, frostCommand];
const GLOBAL = { json: { type: 'boolean' }, url: { type: 'string' }, token: { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const;

function help(): string {
  return [
    'airlock: a signing service for AI agents (keys never leave it; every refusal names its rule)',
    '',
    'usage: airlock <command> [options]',
    '',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`),
    '',
    'global options: --json (machine output)  --url URL (default $AIRLOCK_URL or http://127.0.0.1:8420)  --token T (default $AIRLOCK_ADMIN_TOKEN)',
    '               --config FILE (YAML settings under the environment; default $AIRLOCK_CONFIG)  --version',
    'run `airlock <command> --help` for its usage. Exit codes: 0 ok, 1 error, 2 verification failed / usage, 3 dry-run denied, 4 dry-run needs approval, 5 audit verify: the log is not vouched for by signed tree heads.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(help());
    return name ? 0 : 2;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    console.error(`unknown command: ${name}\n\n${help()}`);
    return 2;
  }
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: { ...GLOBAL, ...(command.options ?? {}) }, allowPositionals: true, strict: true });
  } catch (e) {
    console.error(`${(e as Error).message}\n\nusage:\n${command.usage}`);
    return 2;
  }
  const values = parsed.values as Record<string, unknown>;
  if (values.help) {
    console.log(`${command.summary}\n\nusage:\n${command.usage}`);
    return 0;
  }
  const ctx = createContext({ ...(values.url ? { url: String(values.url) } : {}), json: !!values.json, ...(values.token ? { token: String(values.token) } : {}) });
  try {
    await command.run(ctx, { values, positionals: parsed.positionals });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    return reportError(e, !!values.json, urlForErrors(ctx));
  }
}

/** The daemon URL for an error line, or '' when it is refused (reading it throws; the error says why). */
function urlForErrors(ctx: { url: string }): string {
  try {
    return ctx.url;
  } catch {
    return '';
  }
}

/** Turns a failure into what the operator reads: `error [code]: message`, its violations and hints. */
function reportError(e: unknown, json: boolean, url: string): number {
  if (e instanceof UsageError) {
    console.error(e.message);
    return 2;
  }
  const known = e instanceof AirlockError || e instanceof AirlockApiError ? e : undefined;
  const failure = known
    ? { code: known.code, message: known.message, violations: known.violations ?? [], hints: known.hints, issues: issuesOf(known.details) }
    : isUnreachable(e)
      ? { code: 'unreachable', message: `cannot reach the Airlock daemon at ${safeOrigin(url)}${unreachableWhy(e)}.`, violations: [], hints: ['Is it running (`airlock start`)? Is --url / AIRLOCK_URL right?'], issues: [] }
      : { code: 'internal', message: String((e as Error)?.message ?? e), violations: [], hints: [], issues: [] };
  if (json) {
    const { code, message, violations, issues } = failure;
    console.error(JSON.stringify({ error: { code, message, ...(violations.length ? { violations } : {}), ...(issues.length ? { issues } : {}) } }));
    return 1;
  }
  // An unexpected error has no stable code to show; its message is all the operator can act on.
  console.error(known || failure.code !== 'internal' ? `error [${failure.code}]: ${failure.message}` : `error: ${failure.message}`);
  for (const v of failure.violations) console.error(`  ${v.rule}  ${v.code}: ${v.message}`);
  // Every issue of an invalid policy, not only the first one the message names.
  if (failure.issues.length > 1) for (const i of failure.issues) console.error(`  ${i.path}: ${i.message}`);
  for (const h of failure.hints) console.error(`  hint: ${h}`);
  return 1;
}

/** The issues of an `invalid_policy` error (`details.issues`), whether raised here or by the daemon. */
function issuesOf(details: Record<string, unknown> | undefined): { path: string; message: string }[] {
  const issues = details?.issues;
  if (!Array.isArray(issues)) return [];
  return issues.filter((i): i is { path: string; message: string } => typeof i?.path === 'string' && typeof i?.message === 'string').map(({ path, message }) => ({ path, message }));
}

/** undici reports a refused or unresolvable connection as `TypeError: fetch failed` with the cause inside. */
function isUnreachable(e: unknown): boolean {
  return e instanceof TypeError && /fetch failed/.test(e.message);
}

// What the connection's failure was, from the code undici puts on the error's cause (never its message,
// which can carry the address as typed): "nothing listens there" and "it closed the connection" call for
// different fixes, and a test that fails this way says which it was.
const UNREACHABLE_WHY: Record<string, string> = {
  ECONNREFUSED: 'nothing is listening there',
  ECONNRESET: 'the connection was reset before an answer',
  UND_ERR_SOCKET: 'the daemon closed the connection before an answer',
  ENOTFOUND: 'the host name does not resolve',
  EAI_AGAIN: 'the host name could not be resolved now',
  ETIMEDOUT: 'the connection timed out',
  UND_ERR_CONNECT_TIMEOUT: 'the connection timed out',
  UND_ERR_HEADERS_TIMEOUT: 'no answer came in time',
  EHOSTUNREACH: 'the host is unreachable',
  ENETUNREACH: 'the network is unreachable',
};

function unreachableWhy(e: unknown): string {
  const code = (e as { cause?: { code?: unknown } }).cause?.code;
  if (typeof code !== 'string' || !/^[A-Z_]{3,40}$/.test(code)) return '';
  return `: ${UNREACHABLE_WHY[code] ?? 'the connection failed'} (${code})`;
}

/** The URL without credentials or path, fit for an error line. */
function safeOrigin(url: string): string {
  return URL.canParse(url) ? new URL(url).origin : 'the configured URL';
}
