/**
 * Warnings about a valid document that is unsafe as written: an allow rule that lets value move with
 * no asset list, no per-request cap or no budget in the document, or authorizations with no validity
 * bound. They look at one document: a fleet policy may hold the ceilings an agent policy leaves out,
 * so a warning informs, it never refuses.
 */
import type { z } from 'zod';
import type { PolicyWarningCode } from '../codes.ts';
import { INTENT_KINDS, type IntentKind } from '../intent.ts';
import type { MatchOptions } from './fields.ts';
import { formatPath } from './path.ts';
import type { policySchema } from './schema.ts';

export interface PolicyWarning {
  code: PolicyWarningCode;
  /** The allow rule concerned. */
  rule: string;
  /** Where, written the way the document is (`rules[0].match.assets[1]`). */
  path: string;
  message: string;
}

/** Kinds whose intent carries no amount: unknown typed data and personal messages. */
const NO_VALUE_KINDS: ReadonlySet<IntentKind> = new Set(['typed_data.unknown', 'message.personal']);
const VALUE_KINDS: ReadonlySet<IntentKind> = new Set(INTENT_KINDS.filter((k) => !NO_VALUE_KINDS.has(k)));
/** Signed off-chain authorizations: valid until their deadline, whoever holds them. */
const AUTHORIZATION_KINDS: ReadonlySet<IntentKind> = new Set(INTENT_KINDS.filter((k) => k.startsWith('eip3009.') || k.startsWith('permit2.') || k === 'eip2612.permit'));

type Document = z.output<typeof policySchema>;
type Rule = Document['rules'][number];

/** Whether a match can grant an intent of one of `kinds` (conservative: unknown means yes). */
function mayGrant(match: MatchOptions, kinds: ReadonlySet<IntentKind>, typedData: boolean): boolean {
  if (match.message !== undefined) return false;
  // contracts, selectors and args only match calls, which are transactions.
  const callOnly = match.contracts !== undefined || match.selectors !== undefined || match.args !== undefined;
  if (typedData && callOnly) return false;
  if (match.actions && !match.actions.some((a) => a === 'evm.transaction' || (a === 'evm.typed_data' && !callOnly))) return false;
  if (typedData && match.actions && !match.actions.includes('evm.typed_data')) return false;
  return match.kinds === undefined || match.kinds.some((k) => kinds.has(k));
}

/** `doc` must be a valid document (compile it first). */
export function policyWarnings(doc: Document): PolicyWarning[] {
  const rules: readonly Rule[] = doc.rules;
  const capped = new Set(rules.flatMap((r) => (r.type === 'max_amount' ? [r.asset.toLowerCase()] : [])));
  const budgeted = new Set(rules.flatMap((r) => (r.type === 'budget' ? [r.asset.toLowerCase()] : [])));
  const validityBounded = rules.some((r) => r.type === 'validity_window');
  const warnings: PolicyWarning[] = [];

  rules.forEach((rule, i) => {
    if (rule.type !== 'allow') return;
    const { match } = rule;
    const at = (...path: (string | number)[]) => formatPath(['rules', i, 'match', ...path]);
    if (mayGrant(match, VALUE_KINDS, false)) {
      if (match.assets === undefined) {
        warnings.push({
          code: 'allow_without_assets',
          rule: rule.name,
          path: at(),
          message: `allow rule ${rule.name} lets value move in any asset: list the assets it may move under match.assets`,
        });
      } else {
        match.assets.forEach((asset, j) => {
          const a = asset.toLowerCase();
          if (!capped.has(a)) warnings.push({ code: 'value_without_cap', rule: rule.name, path: at('assets', j), message: `no max_amount rule caps ${a} per request` });
          if (!budgeted.has(a)) warnings.push({ code: 'value_without_budget', rule: rule.name, path: at('assets', j), message: `no budget rule bounds ${a} over time` });
        });
      }
    }
    if (!validityBounded && mayGrant(match, AUTHORIZATION_KINDS, true)) {
      warnings.push({
        code: 'validity_unbounded',
        rule: rule.name,
        path: at(),
        message: `allow rule ${rule.name} grants signed authorizations and no validity_window rule bounds their validity`,
      });
    }
  });
  return warnings;
}
