import { z } from 'zod';
import { toAmount } from '../amount.ts';
import { amountField, matchField, percentField, percentToPpm, ruleBase } from '../fields.ts';
import { CompiledMatch } from '../match.ts';
import { applies, defineRule, type Finding } from './types.ts';

const PPM = 1_000_000n;
/** Fee rates are compared in millisatoshis per virtual byte: exact in integers for rates with up to three decimals. */
const MILLI = 1000;

/**
 * Limits that only mean something for a Bitcoin transaction (`bitcoin.psbt`): the fee it pays, absolute, per
 * virtual byte and as a share of what it sends, and how many inputs it may spend. A fee is value that leaves
 * the agent like a payment (a PSBT can hide most of its inputs' value in the fee); an agent spending a hundred
 * inputs is consolidating or being used to sweep. Amounts are SATOSHIS here (budgets and max_amount count the
 * bitcoin asset in millisatoshis, as Lightning does: 1 sat = 1000).
 */
export const bitcoinRule = defineRule({
  type: 'bitcoin',
  schema: z
    .strictObject({
      ...ruleBase,
      type: z.literal('bitcoin'),
      max_fee_sat: amountField.optional().describe('Most the transaction fee (inputs minus outputs) may be, in satoshis.'),
      max_fee_rate: z
        .number({ error: 'expected a fee rate in sat/vB' })
        .positive('a fee rate is above 0')
        .max(1_000_000, 'a fee rate is at most 1,000,000 sat/vB')
        .refine((r) => Math.abs(r * MILLI - Math.round(r * MILLI)) < 1e-6, 'at most three decimal places')
        .optional()
        .describe('Most the fee rate may be, in sat/vB (fee over the estimated virtual size of the signed transaction).'),
      max_fee_percent: percentField
        .optional()
        .describe('Most the fee may be as a share of what the transaction sends to others (external outputs), in percent.'),
      max_inputs: z.number({ error: 'expected a number of inputs' }).int('expected an integer').min(1, 'at least 1').optional().describe('Most inputs one transaction may spend.'),
      match: matchField.optional(),
    })
    .refine(
      (o) => o.max_fee_sat !== undefined || o.max_fee_rate !== undefined || o.max_fee_percent !== undefined || o.max_inputs !== undefined,
      'expected at least one of max_fee_sat, max_fee_rate, max_fee_percent, max_inputs',
    ),
  build(options, env) {
    const maxFee = options.max_fee_sat === undefined ? undefined : toAmount(options.max_fee_sat);
    const maxRateMilli = options.max_fee_rate === undefined ? undefined : Math.round(options.max_fee_rate * MILLI);
    const maxPpm = options.max_fee_percent === undefined ? undefined : percentToPpm(options.max_fee_percent);
    const match = options.match && new CompiledMatch(options.match, env.sets, [...env.path, 'match']);
    return {
      name: options.name,
      type: 'bitcoin',
      windows() {},
      evaluate(ctx) {
        const btc = ctx.input.intent.bitcoin;
        if (!btc || ctx.input.intent.kind !== 'bitcoin.transaction' || !applies(match, ctx)) return 'pass';
        const findings: Finding[] = [];
        if (maxFee !== undefined && btc.feeSat > maxFee) {
          findings.push({ code: 'fee_exceeds_cap', message: `the fee is ${btc.feeSat} sat; at most ${maxFee} sat allowed`, limit: maxFee.toString(), requested: btc.feeSat.toString() });
        }
        // feeRate is already rounded up to three decimals: compare in integer milli-sat/vB.
        if (maxRateMilli !== undefined && Math.round(btc.feeRate * MILLI) > maxRateMilli) {
          findings.push({ code: 'fee_rate_exceeds_cap', message: `the fee rate is ${btc.feeRate} sat/vB; at most ${options.max_fee_rate} sat/vB allowed`, limit: String(options.max_fee_rate), requested: String(btc.feeRate) });
        }
        if (maxPpm !== undefined) {
          const sent = btc.outputs.reduce((sum, o) => (o.change ? sum : sum + o.amountSat), 0n);
          if (btc.feeSat * PPM > sent * maxPpm) {
            const allowed = (sent * maxPpm) / PPM;
            findings.push({ code: 'fee_exceeds_cap', message: `the fee is ${btc.feeSat} sat; at most ${options.max_fee_percent}% of the ${sent} sat sent (${allowed} sat) allowed`, limit: allowed.toString(), requested: btc.feeSat.toString() });
          }
        }
        if (options.max_inputs !== undefined && btc.inputs.length > options.max_inputs) {
          findings.push({ code: 'too_many_inputs', message: `the transaction spends ${btc.inputs.length} inputs; at most ${options.max_inputs} allowed`, limit: String(options.max_inputs), requested: String(btc.inputs.length) });
        }
        return findings.length > 0 ? findings : 'pass';
      },
    };
  },
});
