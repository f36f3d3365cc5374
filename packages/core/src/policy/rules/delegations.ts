import { z } from 'zod';
import { addressListField, matchField, ruleBase } from '../fields.ts';
import { CompiledMatch } from '../match.ts';
import { resolveAddressList } from '../sets.ts';
import { applies, defineRule, type Finding } from './types.ts';

/**
 * EIP-7702 delegations: which contracts an account may hand its code to. A delegation to an unlisted
 * contract gives that contract the whole account, so every authorization (signed alone, or carried by a
 * type-4 transaction whatever its authority) must name a listed delegate; one with chain id 0 is valid on
 * every chain and is refused unless `allow_any_chain` says otherwise. An authorization is refused when no
 * rule of this type applies to it in any layer (`governsDelegations`: a rule whose `match` leaves the request out
 * lists no delegate for it).
 */
export const delegationsRule = defineRule({
  type: 'delegations',
  schema: z.strictObject({
    ...ruleBase,
    type: z.literal('delegations'),
    allow: addressListField.describe('Delegate contracts an EIP-7702 authorization may name (the zero address, which clears a delegation, only when listed).'),
    allow_any_chain: z.boolean().default(false).describe('Also sign authorizations with chain id 0, valid on every chain where the delegate address holds code (possibly other code).'),
    match: matchField.optional(),
  }),
  build(options, env) {
    const allow = resolveAddressList(options.allow, env.sets, [...env.path, 'allow']);
    const match = options.match && new CompiledMatch(options.match, env.sets, [...env.path, 'match']);
    return {
      name: options.name,
      type: 'delegations',
      governsDelegations: (ctx) => applies(match, ctx),
      windows() {},
      evaluate(ctx) {
        const delegation = ctx.input.intent.delegation;
        if (!delegation || !applies(match, ctx)) return 'pass';
        let findings: Finding[] | undefined;
        for (const auth of delegation.authorizations) {
          if (!allow.has(auth.delegate)) {
            (findings ??= []).push({ code: 'delegate_not_allowed', message: `delegate ${auth.delegate} is not in the delegation allowlist` });
          }
          if (auth.chainId === 0 && !options.allow_any_chain) {
            (findings ??= []).push({ code: 'delegation_any_chain', message: 'the authorization has chain id 0 (valid on every chain); this rule does not allow_any_chain' });
          }
        }
        return findings ?? 'pass';
      },
    };
  },
});
