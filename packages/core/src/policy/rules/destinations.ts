import { z } from 'zod';
import { addressListField, matchField, ruleBase } from '../fields.ts';
import { CompiledMatch } from '../match.ts';
import { resolveAddressList } from '../sets.ts';
import { applies, defineRule, type Finding } from './types.ts';

const UNKNOWN_RECIPIENT = 'whoever submits the transaction (a Safe gas refund to tx.origin: refundReceiver is zero)';

/**
 * Allowlist or denylist of counterparties (semantics §8). An allowlist must cover `intent.to` and
 * every spend recipient and approval spender; a denylist refuses when any party is listed, the call
 * target and the x402 payTo included (an ERC-20 transfer's call target is the token, which an
 * allowlist of payees does not list, but a denylist of contracts must catch). A recipient unknown at
 * signing (`unknownRecipient`: a Safe refund to tx.origin) is refused by both: fail closed.
 */
export const destinationsRule = defineRule({
  type: 'destinations',
  schema: z
    .strictObject({ ...ruleBase, type: z.literal('destinations'), allow: addressListField.optional(), deny: addressListField.optional(), match: matchField.optional() })
    .refine((o) => (o.allow === undefined) !== (o.deny === undefined), { message: 'expected exactly one of allow or deny', path: ['allow'] }),
  build(options, env) {
    const isAllowList = options.allow !== undefined;
    const list = resolveAddressList((options.allow ?? options.deny)!, env.sets, [...env.path, isAllowList ? 'allow' : 'deny']);
    const match = options.match && new CompiledMatch(options.match, env.sets, [...env.path, 'match']);
    return {
      name: options.name,
      type: 'destinations',
      windows() {},
      evaluate(ctx) {
        if (!applies(match, ctx)) return 'pass';
        let findings: Finding[] | undefined;
        for (const party of isAllowList ? ctx.facts.counterparties : ctx.facts.parties) {
          if (list.has(party) === isAllowList) continue;
          (findings ??= []).push(
            isAllowList
              ? { code: 'destination_not_allowed', message: `${party} is not in the destination allowlist` }
              : { code: 'destination_denied', message: `${party} is in the destination denylist` },
          );
        }
        // Fail closed on a recipient no one can name at signing (a Safe refund to tx.origin): no allowlist covers
        // it, and it may be an address a denylist lists.
        if (ctx.facts.unknownRecipient) {
          (findings ??= []).push(
            isAllowList
              ? { code: 'destination_not_allowed', message: `${UNKNOWN_RECIPIENT} is in no destination allowlist` }
              : { code: 'destination_denied', message: `${UNKNOWN_RECIPIENT} may be an address in the destination denylist` },
          );
        }
        return findings ?? 'pass';
      },
    };
  },
});
