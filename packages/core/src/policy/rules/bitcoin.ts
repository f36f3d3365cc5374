import { z } from 'zod';
import { toAmount } from '../amount.ts';
import { amountField, matchField, percentField, percentToPpm, ruleBase } from '../fields.ts';
import { CompiledMatch } from '../match.ts';
import type { BitcoinInfo, SighashName } from '../../intent.ts';
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
        const basis = maxFee !== undefined || maxPpm !== undefined ? feeBasis(btc) : undefined;
        const feeText = (fee: bigint) => (fee === btc.feeSat ? `the fee is ${fee} sat` : `the signatures allow a fee of up to ${fee} sat (the PSBT shows ${btc.feeSat} sat)`);
        if (maxFee !== undefined && basis!.feeSat > maxFee) {
          findings.push({ code: 'fee_exceeds_cap', message: `${feeText(basis!.feeSat)}; at most ${maxFee} sat allowed`, limit: maxFee.toString(), requested: basis!.feeSat.toString() });
        }
        // feeRate is already rounded up to three decimals: compare in integer milli-sat/vB.
        if (maxRateMilli !== undefined && Math.round(btc.feeRate * MILLI) > maxRateMilli) {
          findings.push({ code: 'fee_rate_exceeds_cap', message: `the fee rate is ${btc.feeRate} sat/vB; at most ${options.max_fee_rate} sat/vB allowed`, limit: String(options.max_fee_rate), requested: String(btc.feeRate) });
        }
        if (maxPpm !== undefined) {
          const { feeSat, sentSat: sent } = basis!;
          if (feeSat * PPM > sent * maxPpm) {
            const allowed = (sent * maxPpm) / PPM;
            const sentText = sent === btc.outputs.reduce((sum, o) => (o.change ? sum : sum + o.amountSat), 0n) ? `the ${sent} sat sent` : `the ${sent} sat the signatures make sure is sent`;
            findings.push({ code: 'fee_exceeds_cap', message: `${feeText(feeSat)}; at most ${options.max_fee_percent}% of ${sentText} (${allowed} sat) allowed`, limit: allowed.toString(), requested: feeSat.toString() });
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

/** Whether a signature with this sighash commits to every output (ALL, or taproot's DEFAULT). */
const commitsToAll = (s: SighashName) => s === 'default' || s === 'all' || s === 'all_anyonecanpay';
const isSingle = (s: SighashName) => s === 'single' || s === 'single_anyonecanpay';
const isAnyoneCanPay = (s: SighashName) => s.endsWith('_anyonecanpay');

/**
 * What max_fee_sat and max_fee_percent judge: the highest fee the agent's signatures allow from the coins the PSBT
 * shows, and the least they make sure is sent to others (outputs not the agent's change), not only the PSBT's
 * figures. Signatures commit to some inputs and outputs; the rest can change after they are made:
 * - an output no signature in the transaction commits to (SIGHASH_NONE, or SINGLE at another index) can be
 *   dropped, its amount going to fee: an uncommitted output carrying the agent's value is fee up to all of it;
 * - under ANYONECANPAY the agent's inputs so signed may be left out (with the outputs only they commit to), and
 *   other signers' inputs removed or added; the highest fee keeps every input shown that adds to it. Inputs no
 *   PSBT shows can always be added, paying what their owner gives away: the cap bounds the fee from shown coins.
 * Of the transactions that keep at least one of the agent's inputs: either one whose signatures commit to every
 *   output (some ALL or DEFAULT signature in it: every input shown, the PSBT's own fee), or one with only NONE
 *   and SINGLE signatures of the agent's (each SINGLE commits to the output at its index, kept; NONE to none):
 *   every input but the agent's ALL ones that can be left out, and the SINGLE|ANYONECANPAY ones whose input pays
 *   less than their output. With only ALL and DEFAULT signatures (ANYONECANPAY or not) this is the PSBT's fee.
 * The least sent counts the external outputs every agent signature commits to: a bound below, which can only
 * make max_fee_percent refuse. What is charged is the PSBT's fee and outputs (psbt-intent.ts), unchanged.
 */
export function feeBasis(btc: BitcoinInfo): { feeSat: bigint; sentSat: bigint } {
  const own = btc.inputs.filter((i) => i.ours && i.sighash !== undefined);
  const allSent = btc.outputs.reduce((sum, o) => (o.change ? sum : sum + o.amountSat), 0n);
  if (own.length === 0 || own.every((i) => commitsToAll(i.sighash!))) return { feeSat: btc.feeSat, sentSat: allSent };
  const outputAt = (index: number) => btc.outputs[index]?.amountSat ?? 0n;
  const required = own.filter((i) => !isAnyoneCanPay(i.sighash!));
  // A transaction where some signature commits to every output: the PSBT's fee at most (every shown input in it).
  const allPossible = own.some((i) => commitsToAll(i.sighash!));
  let fee = allPossible ? btc.feeSat : undefined;
  if (!required.some((i) => commitsToAll(i.sighash!))) {
    // Only NONE and SINGLE signatures of the agent's in the transaction.
    const ownIndex = new Set(own.map((i) => i.index));
    let amount = btc.inputs.reduce((sum, i) => (ownIndex.has(i.index) ? sum : sum + i.amountSat), 0n);
    const gain = (i: (typeof own)[number]) => i.amountSat - (isSingle(i.sighash!) ? outputAt(i.index) : 0n);
    for (const i of required) amount += gain(i);
    const optional = own.filter((i) => isAnyoneCanPay(i.sighash!) && !commitsToAll(i.sighash!)).sort((a, b) => (gain(b) > gain(a) ? 1 : gain(b) < gain(a) ? -1 : 0));
    let kept = required.length;
    for (const i of optional) {
      if (gain(i) > 0n || kept === 0) {
        amount += gain(i);
        kept++;
      }
    }
    if (kept > 0 && (fee === undefined || amount > fee)) fee = amount;
  }
  const every = btc.outputs.filter((o) => !o.change && own.every((i) => commitsToAll(i.sighash!) || (isSingle(i.sighash!) && i.index === o.index)));
  return { feeSat: fee ?? btc.feeSat, sentSat: every.reduce((sum, o) => sum + o.amountSat, 0n) };
}
