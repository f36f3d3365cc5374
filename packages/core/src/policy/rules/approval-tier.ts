import { z } from 'zod';
import { toAmount } from '../amount.ts';
import { amountField, assetField, matchField, ruleBase } from '../fields.ts';
import { CompiledMatch } from '../match.ts';
import { invalidPolicyAt } from '../path.ts';
import { matchedFacts, touchesEveryPartMoving } from '../calls.ts';
import { applies, defineRule, type Finding } from './types.ts';
import { JUDGED_ALL_OF_ASSET } from '../decision.ts';

/** Approver group names, as `airlock approver add --groups` takes them. */
export const APPROVER_GROUP_RE = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
const quorumField = z.strictObject({
  min: z.number().int().min(1).max(20),
  groups: z.array(z.string().regex(APPROVER_GROUP_RE, 'a group name is 1-64 chars of a-z, 0-9, _ . - starting with a letter or digit')).min(1).max(20),
});

/**
 * Above the threshold a human must approve (semantics §11): not a deny. Without `asset` and `above`, every
 * request its (then required) `match` touches needs a human: sensitive Nostr kinds (metadata, contacts,
 * deletions, zap requests) are held this way. The finding's code is
 * `approval_required`; the evaluator turns it into a `require_approval` decision when nothing denies.
 * With `quorum`, the finding carries it: `min` distinct approvers of the named groups must sign their votes
 * (approvals/quorum.ts decides which of several matched tiers apply); without it, an operator approves.
 */
export const approvalTierRule = defineRule({
  type: 'approval_tier',
  schema: z.strictObject({ ...ruleBase, type: z.literal('approval_tier'), asset: assetField.optional(), above: amountField.optional(), match: matchField.optional(), quorum: quorumField.optional() }),
  build(options, env) {
    if ((options.asset === undefined) !== (options.above === undefined)) throw invalidPolicyAt([...env.path, options.asset === undefined ? 'asset' : 'above'], 'asset and above go together');
    if (options.asset === undefined && options.match === undefined) throw invalidPolicyAt([...env.path, 'match'], 'an approval tier without asset and above needs a match (it holds every request the match touches)');
    const match = options.match && new CompiledMatch(options.match, env.sets, [...env.path, 'match']);
    const quorum = options.quorum && { min: options.quorum.min, groups: [...new Set(options.quorum.groups)].sort() };
    const withQuorum = (finding: Finding): Finding => (quorum ? { ...finding, quorum } : finding);
    if (options.asset === undefined || options.above === undefined) {
      return {
        name: options.name,
        type: 'approval_tier',
        windows() {},
        evaluate(ctx) {
          if (!applies(match, ctx)) return 'pass';
          return [withQuorum({ code: 'approval_required', message: `${ctx.input.intent.summary}: ${quorum ? `${quorum.min} of ${quorum.groups.join(', ')} must approve` : 'a human must approve'} requests like this` })];
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
        // A batch whose match touches only some calls: the sum of those calls is compared with `above` (calls.ts).
        const facts = matchedFacts(match, ctx.input.intent, ctx.facts);
        if (facts === undefined) return 'pass';
        // An unlimited approval of the asset is above any threshold (it exposes the whole balance).
        const unlimited = facts.unlimitedApprovals.get(asset);
        const requested = unlimited ?? facts.requestedByAsset.get(asset) ?? 0n;
        if (unlimited === undefined && requested <= above) return 'pass';
        const who = quorum ? `${quorum.min} of ${quorum.groups.join(', ')} must approve` : 'a human must approve';
        return [
          withQuorum({
            [JUDGED_ALL_OF_ASSET]: match === undefined || touchesEveryPartMoving(match, ctx.input.intent, asset),
            code: 'approval_required',
            message: unlimited !== undefined ? `approves an unlimited amount of ${asset}; above ${above} ${who}` : `requests ${requested} base units of ${asset}; above ${above} ${who}`,
            limit: above.toString(),
            requested: requested.toString(),
            asset,
          }),
        ];
      },
    };
  },
});
