import { z } from 'zod';
import { matchField, ruleBase } from '../fields.ts';
import { CompiledMatch } from '../match.ts';
import { applies, defineRule } from './types.ts';

/**
 * Off-chain authorizations (EIP-3009 and the like) must expire soon, and must not be expired
 * already (semantics §10). Intents without `validity.validBefore` are not concerned.
 */
export const validityWindowRule = defineRule({
  type: 'validity_window',
  schema: z.strictObject({
    ...ruleBase,
    type: z.literal('validity_window'),
    max_seconds: z.number({ error: 'expected a positive integer number of seconds' }).int('expected a positive integer number of seconds').positive('expected a positive integer number of seconds'),
    match: matchField.optional(),
  }),
  build(options, env) {
    const maxSeconds = options.max_seconds;
    const match = options.match && new CompiledMatch(options.match, env.sets, [...env.path, 'match']);
    return {
      name: options.name,
      type: 'validity_window',
      maxValiditySeconds: maxSeconds,
      windows() {},
      evaluate(ctx) {
        const validBefore = ctx.input.intent.validity?.validBefore;
        if (validBefore === undefined || !applies(match, ctx)) return 'pass';
        const nowSeconds = Math.floor(ctx.input.nowMs / 1000);
        if (validBefore <= nowSeconds) {
          return [{ code: 'validity_expired', message: `the authorization expired at ${validBefore} (now ${nowSeconds})`, limit: String(nowSeconds), requested: String(validBefore) }];
        }
        const seconds = validBefore - nowSeconds;
        if (seconds <= maxSeconds) return 'pass';
        return [{ code: 'validity_too_long', message: `the authorization is valid for ${seconds}s; at most ${maxSeconds}s allowed`, limit: String(maxSeconds), requested: String(seconds) }];
      },
    };
  },
});
