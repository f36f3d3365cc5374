import { z } from 'zod';
import { toAmount } from '../amount.ts';
import { amountField, assetField, matchField, ruleBase } from '../fields.ts';
import { CompiledMatch } from '../match.ts';
import { invalidPolicyAt } from '../path.ts';
import { applies, defineRule } from './types.ts';

/**
 * Above the threshold a human must approve (semantics §11): not a deny. Without `asset` and `above`, every
 * request its (then required) `match` touches needs a human: sensitive Nostr kinds (metadata, contacts,
 * deletions, zap requests) are held this way. The finding's code is
 * `approval_required`; the evaluator turns it into a `require_approval` decision when nothing denies.
 */
export const approvalTierRule = defineRule({
  type: 'approval_tier',
  schema: z.strictObject({ ...ruleBase, type: z.literal('approval_tier'), asset: assetField.optional(), above: amountField.optional(), match: matchField.optional() }),
  build(options, env) {
    if ((options.asset === undefined) !== (options.above === undefined)) throw invalidPolicyAt([...env.path, options.asset === undefined ? 'asset' : 'above'], 'asset and above go together');
    if (options.asset === undefined && options.match === undefined) throw invalidPolicyAt([...env.path, 'match'], 'an approval tier without asset and above needs a match (it holds every request the match touches)');
    const match = options.match && new CompiledMatch(options.match, env.sets, [...env.path, 'match']);
    if (options.asset === undefined || options.above === undefined) {
      return {
        name: options.name,
        type: 'approval_tier',
        windows() {},
        evaluate(ctx) {
          if (!applies(match, ctx)) return 'pass';
          return [{ code: 'approval_required', message: `${ctx.input.intent.summary}: a human must approve requests like this` }];
        },
      };
    }
    const asset = options.asset.toLowerCase();
    const above = toAmount(options.above);
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
