import { z } from 'zod';
import type { Intent } from '../../intent.ts';
import { matchField, ruleBase } from '../fields.ts';
import { CompiledMatch } from '../match.ts';
import { defineRule, type CompiledAllowRule } from './types.ts';

/**
 * Grants requests its `match` matches (semantics §3). Some kinds are granted only by a rule that
 * names them (§4): unknown typed data needs `primary_types` and `domains`, personal messages need
 * `message`, calls to contracts need `contracts`, deploys need `kinds: [contract.deploy]`.
 */
export const allowRule = defineRule({
  type: 'allow',
  schema: z.strictObject({ ...ruleBase, type: z.literal('allow'), match: matchField }),
  build(options, env): CompiledAllowRule {
    const match = new CompiledMatch(options.match, env.sets, [...env.path, 'match']);
    const grantsByName = (intent: Intent): boolean => {
      switch (intent.kind) {
        case 'typed_data.unknown':
          return match.namesTypedData;
        case 'message.personal':
          return match.namesMessage;
        case 'contract.call':
          return match.namesContracts;
        case 'contract.deploy':
          return match.namesDeploy;
        default:
          return true;
      }
    };
    return {
      name: options.name,
      type: 'allow',
      grantsByName,
      missesOnlyByResource(ctx) {
        return match.namesResources && grantsByName(ctx.input.intent) && match.matches(ctx.input.intent, ctx.facts, true);
      },
      failsOnlyOnArgument(ctx) {
        if (!match.namesArgs || !grantsByName(ctx.input.intent) || !match.matches(ctx.input.intent, ctx.facts, false, true)) return undefined;
        return match.failingArg(ctx.input.intent);
      },
      windows() {},
      evaluate(ctx) {
        return grantsByName(ctx.input.intent) && match.matches(ctx.input.intent, ctx.facts) ? 'grant' : 'pass';
      },
    };
  },
});
