import { z } from 'zod';
import { toAmount } from '../amount.ts';
import { addressListField, amountField, assetField, matchField, ruleBase } from '../fields.ts';
import { CompiledMatch } from '../match.ts';
import { resolveAddressList } from '../sets.ts';
import type { Approval, Intent } from '../../intent.ts';
import { intentFacts } from '../facts.ts';
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
 * of the capped asset always exceeds the cap. An unlimited approval no approvals rule with `allow_unlimited: true`
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
        for (const a of approvals) {
          const asset = a.asset.toLowerCase();
          const spender = a.spender.toLowerCase();
          if (a.unlimited && !allowUnlimited) {
            findings.push({ code: 'unlimited_approval', message: `unlimited approval of ${asset} to ${spender}`, asset });
          }
          if (cap !== undefined && asset === capAsset && (a.unlimited || a.amount > cap)) {
            findings.push({
              code: 'approval_exceeds_cap',
              message: `approval of ${a.unlimited ? 'an unlimited amount' : `${a.amount} base units`} of ${asset} exceeds the cap of ${cap}`,
              limit: cap.toString(),
              requested: a.amount.toString(),
              asset,
            });
          }
          if (spenders !== undefined && !spenders.has(spender)) {
            findings.push({ code: 'spender_not_allowed', message: `spender ${spender} is not in the allowed spenders` });
          }
        }
        return findings.length > 0 ? findings : 'pass';
      },
    };
  },
});
