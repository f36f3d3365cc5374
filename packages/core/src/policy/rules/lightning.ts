import { z } from 'zod';
import { toAmount } from '../amount.ts';
import { parseDuration } from '../duration.ts';
import { amountField, durationField, matchField, percentField, percentToPpm, ruleBase } from '../fields.ts';
import { CompiledMatch } from '../match.ts';
import { applies, defineRule, type Finding } from './types.ts';

const PPM = 1_000_000n;

/**
 * Limits that only mean something for a Lightning payment (`lightning.pay`): the routing fee the payment may
 * cost, absolute and as a share of the amount, and how long the invoice may still be valid. An invoice that
 * expires in seconds may time out half-routed (its hold then waits for the backend); one valid for a month is
 * not what a paid API issues. Other intents are not concerned. Amounts are millisatoshis.
 */
export const lightningRule = defineRule({
  type: 'lightning',
  schema: z
    .strictObject({
      ...ruleBase,
      type: z.literal('lightning'),
      max_routing_fee: amountField.optional().describe('Most the route may cost, in millisatoshis (the fee limit Airlock hands the backend is checked against it).'),
      max_routing_fee_percent: percentField
        .optional()
        .describe('Most the route may cost as a share of the amount, in percent (0.5 = 0.5 %).'),
      min_expiry_remaining: durationField.optional().describe('Refuse invoices that expire sooner than this from now.'),
      max_expiry: durationField.optional().describe('Refuse invoices that stay valid longer than this from now.'),
      match: matchField.optional(),
    })
    .refine(
      (o) => o.max_routing_fee !== undefined || o.max_routing_fee_percent !== undefined || o.min_expiry_remaining !== undefined || o.max_expiry !== undefined,
      'expected at least one of max_routing_fee, max_routing_fee_percent, min_expiry_remaining, max_expiry',
    ),
  build(options, env) {
    const maxFee = options.max_routing_fee === undefined ? undefined : toAmount(options.max_routing_fee);
    // Parts per million, integer: the comparison below stays exact in bigint.
    const maxPpm = options.max_routing_fee_percent === undefined ? undefined : percentToPpm(options.max_routing_fee_percent);
    const minRemainingMs = options.min_expiry_remaining === undefined ? undefined : parseDuration(options.min_expiry_remaining);
    const maxExpiryMs = options.max_expiry === undefined ? undefined : parseDuration(options.max_expiry);
    const match = options.match && new CompiledMatch(options.match, env.sets, [...env.path, 'match']);
    return {
      name: options.name,
      type: 'lightning',
      windows() {},
      evaluate(ctx) {
        const ln = ctx.input.intent.lightning;
        if (!ln || !applies(match, ctx)) return 'pass';
        const findings: Finding[] = [];
        if (maxFee !== undefined && ln.maxFeeMsat > maxFee) {
          findings.push({ code: 'routing_fee_exceeds_cap', message: `the routing fee limit is ${ln.maxFeeMsat} msat; at most ${maxFee} msat allowed`, limit: maxFee.toString(), requested: ln.maxFeeMsat.toString() });
        }
        if (maxPpm !== undefined && ln.maxFeeMsat * PPM > ln.amountMsat * maxPpm) {
          const allowed = (ln.amountMsat * maxPpm) / PPM;
          findings.push({ code: 'routing_fee_exceeds_cap', message: `the routing fee limit is ${ln.maxFeeMsat} msat; at most ${options.max_routing_fee_percent}% of ${ln.amountMsat} msat (${allowed} msat) allowed`, limit: allowed.toString(), requested: ln.maxFeeMsat.toString() });
        }
        const remainingMs = ln.expiresAt * 1000 - ctx.input.nowMs;
        if (minRemainingMs !== undefined && remainingMs < minRemainingMs) {
          findings.push({ code: 'invoice_expiry_out_of_bounds', message: `the invoice expires in ${Math.max(0, Math.floor(remainingMs / 1000))}s; at least ${minRemainingMs / 1000}s required`, limit: String(minRemainingMs / 1000), requested: String(Math.floor(remainingMs / 1000)) });
        }
        if (maxExpiryMs !== undefined && remainingMs > maxExpiryMs) {
          findings.push({ code: 'invoice_expiry_out_of_bounds', message: `the invoice stays valid for ${Math.floor(remainingMs / 1000)}s; at most ${maxExpiryMs / 1000}s allowed`, limit: String(maxExpiryMs / 1000), requested: String(Math.floor(remainingMs / 1000)) });
        }
        return findings.length > 0 ? findings : 'pass';
      },
    };
  },
});
