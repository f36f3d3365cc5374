import { readFileSync } from 'node:fs';
import { ACTIONS, AirlockError, parsePolicyText, validatePolicy, type PolicyWarning } from '@airlock/core';
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
  summary: 'validate | set | show | versions | diff | dry-run | shadow policies (scope: fleet or an agent)',
  usage: [
    'airlock policy validate <file.yaml|json>              (offline)',
    'airlock policy set <fleet|agent> <file>',
    'airlock policy show <fleet|agent> [--version N]         (the text as set; --json: the normalised document)',
    'airlock policy versions <fleet|agent>',
    'airlock policy diff <fleet|agent> [--from N] [--to N]',
    'airlock policy dry-run --agent <agent> --action <action> <payload.json>   (the body the sign endpoint of that action takes)',
    `  --action: ${ACTIONS.join(', ')}`,
    `  exit code: 0 allow, ${DRY_RUN_EXIT.deny} deny, ${DRY_RUN_EXIT.require_approval} require_approval (1 error, 2 usage)`,
    'airlock policy shadow set <fleet|agent> <file>         (stage a candidate: evaluated on every request, decides nothing)',
    'airlock policy shadow show <fleet|agent>               (the candidate and its summary)',
    'airlock policy shadow diff <fleet|agent> [--after SEQ] [--limit N]   (requests it would decide differently)',
    'airlock policy shadow clear <fleet|agent>',
    'airlock policy shadow promote <fleet|agent>            (make it the active policy: a new version)',
  ].join('\n'),
  options: { version: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, agent: { type: 'string' }, action: { type: 'string' }, after: { type: 'string' }, limit: { type: 'string' } },
  async run(ctx, { values, positionals }) {
    const [sub, a, b] = positionals;
    switch (sub) {
      case 'shadow':
        return shadowCommand(ctx, positionals.slice(1), values, this.usage);
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
        const { body } = await ctx.admin().request<{ decision: { decision: string; violations: Violation[]; policyVersion: string }; intent: { summary?: string }; shadow?: { scope: string; kind: string; candidate?: { decision: string; violations: Violation[] }; error?: string }[] }>('POST', '/v1/policies/dry-run', { agent: need(values.agent as string, 'agent'), action: need(values.action as string, 'action'), payload });
        // Scripts gate on the exit code: only an allow is success.
        const exit = DRY_RUN_EXIT[body.decision.decision as keyof typeof DRY_RUN_EXIT];
        if (exit !== undefined) process.exitCode = exit;
        if (ctx.json) return printJson(body);
        console.log(`${body.decision.decision.toUpperCase()}  ${body.intent.summary ?? ''}  (${body.decision.policyVersion})`);
        for (const v of body.decision.violations) console.log(`  ${v.rule}  ${v.code}: ${v.message}`);
        // A staged candidate's decision, beside the one that counts (it sets no exit code).
        for (const c of body.shadow ?? []) {
          console.log(`shadow ${c.scope}: ${c.candidate ? c.candidate.decision.toUpperCase() : 'ERROR'}  (${c.kind}${c.error ? `: ${c.error}` : ''})`);
          for (const v of c.candidate?.violations ?? []) console.log(`  ${v.rule}  ${v.code}: ${v.message}`);
        }
        return;
      }
      default:
        throw usage(this.usage);
    }
  },
};

interface Violation {
  rule: string;
  code: string;
  message: string;
}

interface ShadowSummary {
  evaluated: number;
  outcomes: Record<'same' | 'rules_differ' | 'would_allow' | 'would_deny' | 'would_require_approval' | 'error', number>;
}

interface ShadowSide {
  decision: string;
  violations: Violation[];
  allowedBy: string[];
}

/** One line of counts: what the candidate would have changed, out of how many requests. */
function summaryLine(s: ShadowSummary): string {
  const o = s.outcomes;
  return `${s.evaluated} evaluated: ${o.same} same, ${o.would_allow} would allow, ${o.would_deny} would deny, ${o.would_require_approval} would require approval, ${o.rules_differ} other rules, ${o.error} errors`;
}

/** Why a side decided as it did, in one short phrase. */
function why(side: ShadowSide): string {
  if (side.decision === 'allow') return side.allowedBy.join(', ');
  return side.violations.map((v) => `${v.rule} ${v.code}`).join(', ');
}

/** `policy shadow set|show|diff|clear|promote`: a candidate policy tried on real traffic (docs/policy.md). */
async function shadowCommand(ctx: Parameters<Command['run']>[0], args: string[], values: Record<string, unknown>, usageText: string): Promise<void> {
  const [action, scope, file] = args;
  const path = () => `/v1/policies/${encodeURIComponent(need(scope, 'scope'))}/shadow`;
  switch (action) {
    case 'set': {
      const { body } = await ctx.admin().request<{ candidate: { id: string; hash: string }; changed: boolean; warnings?: PolicyWarning[] }>('PUT', path(), { source: readSource(need(file, 'file')) });
      if (ctx.json) return printJson(body);
      console.log(body.changed ? `${scope}: candidate ${body.candidate.id} staged (${body.candidate.hash.slice(0, 12)}); every request is now evaluated under it too, the active policy still decides` : `${scope}: this candidate is already staged (${body.candidate.id})`);
      return printWarnings(body.warnings ?? []);
    }
    case 'show': {
      const { body } = await ctx.admin().request<{ candidate: { id: string; hash: string; author: string; createdAt: number }; active?: { version: number; hash: string }; summary: ShadowSummary; document: unknown; source?: string }>('GET', path());
      if (ctx.json) return printJson(body);
      console.log(`# ${scope} candidate ${body.candidate.id} (${body.candidate.hash.slice(0, 12)}) by ${body.candidate.author}, staged ${new Date(body.candidate.createdAt).toISOString()}`);
      console.log(`# would replace ${body.active ? `version ${body.active.version} (${body.active.hash.slice(0, 12)})` : 'no policy (the scope has none)'}`);
      console.log(`# ${summaryLine(body.summary)}`);
      if (body.source !== undefined) return void process.stdout.write(body.source.endsWith('\n') ? body.source : `${body.source}\n`);
      return printJson(body.document);
    }
    case 'diff': {
      const q = new URLSearchParams({ ...(values.after ? { after: String(values.after) } : {}), ...(values.limit ? { limit: String(values.limit) } : {}) });
      const { body } = await ctx.admin().request<{ differences: { auditSeq: number; agentId: string; kind: string; summary?: string; active: ShadowSide; candidate?: ShadowSide; error?: string }[]; next?: number }>('GET', `${path()}/differences?${q}`);
      if (ctx.json) return printJson(body);
      if (body.differences.length === 0) return console.log(`${scope}: no differences`);
      for (const d of body.differences) {
        console.log(`#${d.auditSeq}  ${d.agentId}  ${d.kind}  ${d.summary ?? ''}`);
        console.log(`  active     ${d.active.decision.toUpperCase()}  ${why(d.active)}`);
        console.log(d.candidate ? `  candidate  ${d.candidate.decision.toUpperCase()}  ${why(d.candidate)}` : `  candidate  ERROR  ${d.error ?? ''}`);
      }
      if (body.next !== undefined) console.log(`more: --after ${body.next}`);
      return;
    }
    case 'clear': {
      const { body } = await ctx.admin().request<{ candidate: { id: string }; summary: ShadowSummary }>('DELETE', path());
      if (ctx.json) return printJson(body);
      return console.log(`${scope}: candidate ${body.candidate.id} unstaged (${summaryLine(body.summary)})`);
    }
    case 'promote': {
      const { body } = await ctx.admin().request<{ record: { version: number; hash: string }; changed: boolean; warnings?: PolicyWarning[]; summary: ShadowSummary }>('POST', `${path()}/promote`);
      if (ctx.json) return printJson(body);
      console.log(body.changed ? `${scope}: candidate promoted, now version ${body.record.version} (${body.record.hash.slice(0, 12)})` : `${scope}: the candidate was the active version ${body.record.version} already; unstaged`);
      console.log(`  while staged: ${summaryLine(body.summary)}`);
      return printWarnings(body.warnings ?? []);
    }
    default:
      throw usage(usageText);
  }
}
