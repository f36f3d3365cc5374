import { z } from 'zod';
import type { Intent } from '../../intent.ts';
import type { IntentFacts } from '../facts.ts';
import { matchField, ruleBase } from '../fields.ts';
import { CompiledMatch, isHashLengthMessage } from '../match.ts';
import { SAFE_TX_PRIMARY_TYPE } from '../../safe.ts';
import { defineRule, type CompiledAllowRule } from './types.ts';

/**
 * Grants requests its `match` matches (semantics §3). Some kinds are granted only by a rule that
 * names them (§4): unknown typed data needs `primary_types` and `domains`, personal messages need
 * `message`, calls to contracts need `contracts`, deploys need `kinds: [contract.deploy]`; typed data
 * that moves tokens over a domain without chainId (replayable on every chain) needs
 * `allow_chainless_domains: true`; Bitcoin transactions signing with SINGLE, NONE or ANYONECANPAY need
 * `bitcoin_sighash` listing them. A call a Safe transaction executes is granted only by a rule naming
 * `primary_types: [SafeTx]` and `domains` (co-signing for a Safe is its own grant, never a side effect of
 * a transaction rule); a DELEGATECALL needs `kinds: [contract.delegatecall]` and `contracts`; a Safe gas
 * refund needs `kinds: [safe.gas_refund]`.
 */
export const allowRule = defineRule({
  type: 'allow',
  schema: z.strictObject({
    ...ruleBase,
    type: z.literal('allow'),
    match: matchField,
    allow_chainless_domains: z
      .boolean()
      .default(false)
      .describe('Also grant EIP-3009, EIP-2612 and Permit2 signatures whose EIP-712 domain has no chainId. Such a signature is valid on every chain where the verifying contract lives.'),
  }),
  build(options, env): CompiledAllowRule {
    const match = new CompiledMatch(options.match, env.sets, [...env.path, 'match']);
    const allowChainless = options.allow_chainless_domains;
    const grantsByName = (intent: Intent, facts: IntentFacts): boolean => {
      if (facts.chainlessValueMoving && !allowChainless) return false;
      if (intent.typedData?.primaryType === SAFE_TX_PRIMARY_TYPE && intent.kind !== 'typed_data.unknown' && !match.namesTypedData) return false;
      switch (intent.kind) {
        case 'typed_data.unknown':
          return match.namesTypedData;
        case 'message.personal':
          return match.namesMessage && (!isHashLengthMessage(intent) || match.allowsHashLength);
        case 'message.bip322':
          return match.namesMessage;
        case 'bitcoin.transaction':
          return match.grantsSighashes(intent);
        case 'contract.call':
          return match.namesContracts;
        case 'contract.deploy':
          return match.namesDeploy;
        case 'contract.delegatecall':
          return match.namesDelegatecall;
        case 'safe.gas_refund':
          return match.namesGasRefund;
        case 'nostr.event':
        case 'nostr.http_auth':
        case 'nostr.nip44':
        case 'nostr.nip04':
          return match.namesNostr;
        case 'lightning.amountless_payment':
          return match.namesAmountless;
        default:
          return true;
      }
    };
    return {
      name: options.name,
      type: 'allow',
      grantsByName,
      missesOnlyByResource(ctx) {
        return match.namesResources && grantsByName(ctx.input.intent, ctx.facts) && match.matches(ctx.input.intent, ctx.facts, true);
      },
      failsOnlyOnArgument(ctx) {
        if (!match.namesArgs || !grantsByName(ctx.input.intent, ctx.facts) || !match.matches(ctx.input.intent, ctx.facts, false, true)) return undefined;
        return match.failingArg(ctx.input.intent);
      },
      windows() {},
      evaluate(ctx) {
        return grantsByName(ctx.input.intent, ctx.facts) && match.matches(ctx.input.intent, ctx.facts) ? 'grant' : 'pass';
      },
    };
  },
});
