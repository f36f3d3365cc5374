import { z } from 'zod';
import { toAmount } from '../amount.ts';
import { addressListField, amountField, assetField, matchField, ruleBase } from '../fields.ts';
import { CompiledMatch } from '../match.ts';
import { resolveAddressList } from '../sets.ts';
import type { Approval, Intent } from '../../intent.ts';
import { intentFacts } from '../facts.ts';
import { approvalTotals } from '../approval-totals.ts';
import { applies, defineRule, type Finding, type RuleContext } from './types.ts';

/**
 * Whether `match` covers one unlimited approval of the request: the request reduced to that approval, its main
 * counterparty the spender, must match in the covering reading (every field, as an allow rule grants). Matched
 * against the whole request, a rule for unlimited USDC let an unlimited DAI entry of the same Permit2 PermitBatch
 * through beside a USDC one; in the loose reading `to: [VAULT]` was met by the token contract itself, so
 * `VAULT.approve(anyone, max)` passed for a vault that is an ERC-20 (both found by review).
 */
function coversApproval(match: CompiledMatch | undefined, intent: Intent, approval: Approval): boolean {
  if (match === undefined) return true;
  const reduced: Intent = { ...intent, to: approval.spender, spends: [], approvals: [approval] };
  return match.matches(reduced, intentFacts(reduced));
}

/**
 * Allowances granted by the request: approve, increaseAllowance, EIP-2612 and Permit2 permits
 * (semantics §9). Unlimited approvals are refused unless `allow_unlimited`; an unlimited approval
 * of the capped asset always exceeds the cap. Both are judged per request on the total per token and spender
 * (approvalTotals): an approve sets it, an increaseAllowance adds to it. An unlimited approval no approvals rule with `allow_unlimited: true`
 * covers (`allowsUnlimitedApproval`) is refused by the evaluator itself: it carries no amount a budget or cap could
 * count, so without that default nothing else would stop it.
 */
export const approvalsRule = defineRule({
  type: 'approvals',
  schema: z.strictObject({
    ...ruleBase,
    type: z.literal('approvals'),
    max_allowance: z.strictObject({ asset: assetField, max: amountField }).optional(),
    allow_unlimited: z.boolean().default(false),
    spenders: addressListField.optional(),
    match: matchField.optional(),
  }),
  build(options, env) {
    const capAsset = options.max_allowance?.asset.toLowerCase();
    const cap = options.max_allowance && toAmount(options.max_allowance.max);
    const spenders = options.spenders === undefined ? undefined : resolveAddressList(options.spenders, env.sets, [...env.path, 'spenders']);
    const allowUnlimited = options.allow_unlimited;
    const match = options.match && new CompiledMatch(options.match, env.sets, [...env.path, 'match']);
    return {
      name: options.name,
      type: 'approvals',
      windows() {},
      ...(allowUnlimited ? { allowsUnlimitedApproval: (ctx: RuleContext, approval: Approval) => coversApproval(match, ctx.input.intent, approval) } : {}),
      evaluate(ctx) {
        const { approvals } = ctx.input.intent;
        if (approvals.length === 0 || !applies(match, ctx)) return 'pass';
        const findings: Finding[] = [];
        // Judged per token and spender on the request's total (approvalTotals): the increaseAllowance calls of one
        // batch add up on chain, so each under the cap or the unlimited line could together pass it (found by
        // review: two increases of 2^127 signed as two limited approvals, ten of a cap's worth as ten within it).
        // One approval alone is its own total.
        for (const t of approvalTotals(ctx.input.intent)) {
          const { asset, spender } = t;
          const alone = t.approvals.length === 1 ? t.approvals[0]! : undefined;
          const together = `${t.approvals.length} calls in this request approving ${spender} for ${asset} add up to ${t.amount} base units${t.lowerBound ? ' on top of the allowance already on chain' : ''}`;
          if (t.unlimited && !allowUnlimited) {
            findings.push({
              code: 'unlimited_approval',
              message: alone ? `unlimited approval of ${asset} to ${spender}` : `${together}: an unlimited approval of ${asset} to ${spender}`,
              asset,
            });
          }
          if (cap !== undefined && asset === capAsset && (t.unlimited || t.amount > cap)) {
            findings.push({
              code: 'approval_exceeds_cap',
              message: alone
                ? `approval of ${alone.unlimited ? 'an unlimited amount' : `${alone.amount} base units`} of ${asset} exceeds the cap of ${cap}`
                : `${together}, over the cap of ${cap}`,
              limit: cap.toString(),
              requested: t.amount.toString(),
              asset,
            });
          }
        }
        for (const a of approvals) {
          const spender = a.spender.toLowerCase();
          if (spenders !== undefined && !spenders.has(spender)) {
            findings.push({ code: 'spender_not_allowed', message: `spender ${spender} is not in the allowed spenders` });
          }
        }
        return findings.length > 0 ? findings : 'pass';
      },
    };
  },
});
