import { z } from 'zod';
import { toAmount } from '../amount.ts';
import { amountField, assetField, matchField, ruleBase } from '../fields.ts';
import { CompiledMatch } from '../match.ts';
import { applies, defineRule } from './types.ts';

/**
 * Above the threshold a human must approve (semantics §11): not a deny. The finding's code is
 * `approval_required`; the evaluator turns it into a `require_approval` decision when nothing denies.
 */
export const approvalTierRule = defineRule({
  type: 'approval_tier',
  schema: z.strictObject({ ...ruleBase, type: z.literal('approval_tier'), asset: assetField, above: amountField, match: matchField.optional() }),
  build(options, env) {
    const asset = options.asset.toLowerCase();
    const above = toAmount(options.above);
    const match = options.match && new CompiledMatch(options.match, env.sets, [...env.path, 'match']);
    return {
      name: options.name,
      type: 'approval_tier',
      windows() {},
      evaluate(ctx) {
        if (!applies(match, ctx)) return 'pass';
        const requested = ctx.facts.requestedByAsset.get(asset) ?? 0n;
        if (requested <= above) return 'pass';
        return [
          {
            code: 'approval_required',
            message: `requests ${requested} base units of ${asset}; above ${above} a human must approve`,
            limit: above.toString(),
            requested: requested.toString(),
            asset,
          },
        ];
      },
    };
  },
});
