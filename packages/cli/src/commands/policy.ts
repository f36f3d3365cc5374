import { readFileSync } from 'node:fs';
import { AirlockError, parsePolicyText, validatePolicy, type PolicyWarning } from '@airlock/core';
import { checkAbiDeclarations } from '@airlock/chains';
import type { Command } from '../context.ts';
import { printJson, table } from '../format.ts';
import { need, usage } from '../args.ts';

function readSource(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new AirlockError('invalid_request', `Cannot read ${file}.`, { cause: e });
  }
}

/** `policy dry-run` exit codes for a decision other than allow (0); 1 and 2 stay error and usage. */
export const DRY_RUN_EXIT = { deny: 3, require_approval: 4 } as const;

/** One line each, on stderr: the document is valid, these are what it lets through unchecked. */
function printWarnings(warnings: readonly PolicyWarning[]): void {
  for (const w of warnings) console.error(`warning ${w.code} at ${w.path}: ${w.message}`);
}

export const policyCommand: Command = {
  name: 'policy',
  summary: 'validate | set | show | versions | diff | dry-run policies (scope: fleet or an agent)',
  usage: [
    'airlock policy validate <file.yaml|json>              (offline)',
    'airlock policy set <fleet|agent> <file>',
    'airlock policy show <fleet|agent> [--version N]         (the text as set; --json: the normalised document)',
    'airlock policy versions <fleet|agent>',
    'airlock policy diff <fleet|agent> [--from N] [--to N]',
    'airlock policy dry-run --agent <agent> --action evm.transaction|evm.typed_data|evm.message <payload.json>',
    `  exit code: 0 allow, ${DRY_RUN_EXIT.deny} deny, ${DRY_RUN_EXIT.require_approval} require_approval (1 error, 2 usage)`,
  ].join('\n'),
  options: { version: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, agent: { type: 'string' }, action: { type: 'string' } },
  async run(ctx, { values, positionals }) {
    const [sub, a, b] = positionals;
    switch (sub) {
      case 'validate': {
        const { warnings } = validatePolicy(parsePolicyText(readSource(need(a, 'file'))), checkAbiDeclarations);
        if (ctx.json) return printJson({ valid: true, warnings });
        console.log(`${a}: valid`);
        return printWarnings(warnings);
      }
      case 'set': {
        const { body } = await ctx.admin().request<{ record: { scope: string; version: number; hash: string }; changed: boolean; warnings?: PolicyWarning[] }>('PUT', `/v1/policies/${encodeURIComponent(need(a, 'scope'))}`, { source: readSource(need(b, 'file')) });
        if (ctx.json) return printJson(body);
        console.log(body.changed ? `${a}: now version ${body.record.version} (${body.record.hash.slice(0, 12)})` : `${a}: unchanged (version ${body.record.version})`);
        return printWarnings(body.warnings ?? []);
      }
      case 'show': {
        const q = values.version ? `?version=${values.version}` : '';
        const { body } = await ctx.admin().request<{ version: number; hash: string; author: string; document: unknown; source?: string }>('GET', `/v1/policies/${encodeURIComponent(need(a, 'scope'))}${q}`);
        if (ctx.json) {
          const { source: _source, ...normalised } = body;
          return printJson(normalised);
        }
        console.log(`# ${a} version ${body.version} (${body.hash.slice(0, 12)}) by ${body.author}`);
        // The text as the operator wrote it (comments, order, YAML); a version set as a JSON document through
        // the API has no text: its normalised document is shown instead.
        if (body.source !== undefined) return void process.stdout.write(body.source.endsWith('\n') ? body.source : `${body.source}\n`);
        return printJson(body.document);
      }
      case 'versions': {
        const { body } = await ctx.admin().request<{ versions: { version: number; hash: string; author: string; createdAt: number }[] }>('GET', `/v1/policies/${encodeURIComponent(need(a, 'scope'))}/versions`);
        if (ctx.json) return printJson(body);
        return console.log(table(body.versions.map((v) => ({ ...v, hash: v.hash.slice(0, 12), createdAt: new Date(v.createdAt).toISOString() })), ['version', 'hash', 'author', 'createdAt']));
      }
      case 'diff': {
        const q = new URLSearchParams({ ...(values.from ? { from: String(values.from) } : {}), ...(values.to ? { to: String(values.to) } : {}) });
        const { body } = await ctx.admin().request<{ from: number; to: number; diff: string }>('GET', `/v1/policies/${encodeURIComponent(need(a, 'scope'))}/diff?${q}`);
        if (ctx.json) return printJson(body);
        console.log(`--- ${a} v${body.from}\n+++ ${a} v${body.to}`);
        return console.log(body.diff);
      }
      case 'dry-run': {
        const payload = JSON.parse(readSource(need(a, 'payload.json')));
        const { body } = await ctx.admin().request<{ decision: { decision: string; violations: { rule: string; code: string; message: string }[]; policyVersion: string }; intent: { summary?: string } }>('POST', '/v1/policies/dry-run', { agent: need(values.agent as string, 'agent'), action: need(values.action as string, 'action'), payload });
        // Scripts gate on the exit code: only an allow is success.
        const exit = DRY_RUN_EXIT[body.decision.decision as keyof typeof DRY_RUN_EXIT];
        if (exit !== undefined) process.exitCode = exit;
        if (ctx.json) return printJson(body);
        console.log(`${body.decision.decision.toUpperCase()}  ${body.intent.summary ?? ''}  (${body.decision.policyVersion})`);
        for (const v of body.decision.violations) console.log(`  ${v.rule}  ${v.code}: ${v.message}`);
        return;
      }
      default:
        throw usage(this.usage);
    }
  },
};
