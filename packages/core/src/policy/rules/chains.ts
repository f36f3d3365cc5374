import { z } from 'zod';
import { chainField, matchField, ruleBase } from '../fields.ts';
import { CompiledMatch } from '../match.ts';
import { applies, defineRule } from './types.ts';

/**
 * Allowlist of CAIP-2 chains (semantics §10): every chain the intent names must be listed. A
 * value-moving signature over a domain without chainId, or an EIP-7702 authorization with chain id 0, is valid
 * on every chain, so no list covers it.
 */
export const chainsRule = defineRule({
  type: 'chains',
  schema: z.strictObject({ ...ruleBase, type: z.literal('chains'), allow: z.array(chainField).min(1, 'expected a non-empty list'), match: matchField.optional() }),
  build(options, env) {
    const allow = new Set(options.allow);
    const match = options.match && new CompiledMatch(options.match, env.sets, [...env.path, 'match']);
    return {
      name: options.name,
      type: 'chains',
      windows() {},
      evaluate(ctx) {
        const { chainlessValueMoving, everyChain, chains } = ctx.facts;
        const outside = chains.find((c) => !allow.has(c));
        if ((outside === undefined && !everyChain) || !applies(match, ctx)) return 'pass';
        const what =
          outside !== undefined
            ? `chain ${outside} is`
            : chainlessValueMoving
              ? 'a signature over an EIP-712 domain without chainId is valid on every chain, and is'
              : 'an EIP-7702 authorization with chain id 0 is valid on every chain, and is';
        return [{ code: 'chain_not_allowed', message: `${what} not allowed (allowed: ${options.allow.join(', ')})` }];
      },
    };
  },
});
