// Airlock has no endpoint that reports an agent's remaining budget (GET /v1/session shows the session's own
// budget rules, not what is used; agents cannot read their policy). Every rule runs on every request and a
// budget refusal carries its limit and what is used, so a dry-run of the largest possible transfer makes every
// budget and per-request cap on that asset and payee answer with its numbers.
import { defineTool } from './tool.ts';
import { addressField, chainIdField, tokenField } from './fields.ts';
import { dryRun, explainViolations, transferTransaction } from './dry-run.ts';
import { transferAsset } from './transfer-request.ts';

const PROBE_AMOUNT = (2n ** 256n - 1n).toString();

export const remainingBudgetTool = defineTool({
  name: 'remaining_budget',
  title: 'My remaining budgets',
  description:
    'How much you may still send of one asset to one payee: every budget rule (limit, used in its window, remaining) and every per-request cap that applies, computed by Airlock from a dry-run (nothing is signed or reserved). Also says when a transfer to that payee would be refused whatever the amount.',
  input: {
    chainId: chainIdField,
    token: tokenField,
    to: addressField.describe('The payee you have in mind: budgets and allow rules can depend on it.'),
  },
  annotations: { readOnlyHint: true, openWorldHint: false },
  async run(ctx, args) {
    const transfer = { chainId: args.chainId, to: args.to, amount: PROBE_AMOUNT, token: args.token };
    // Fixed zero fees: the probe is about the asset moved, and gas estimation would fail for an amount nobody holds.
    const { transaction } = await transferTransaction(ctx, transfer, { feesFromChain: false });
    const answer = await dryRun(ctx, 'evm.transaction', { chainId: args.chainId, transaction });
    const violations = answer.decision.violations;
    const budgets = violations
      .filter((v) => v.code === 'budget_exceeded' && v.limit !== undefined && v.used !== undefined)
      .map((v) => {
        const remaining = BigInt(v.limit!) - BigInt(v.used!);
        return { rule: v.rule, asset: v.asset, limit: v.limit, used: v.used, remaining: (remaining > 0n ? remaining : 0n).toString() };
      });
    const perRequestCaps = violations.filter((v) => v.code === 'amount_exceeds_max').map((v) => ({ rule: v.rule, asset: v.asset, limit: v.limit }));
    const blockers = violations.filter((v) => v.code !== 'budget_exceeded' && v.code !== 'amount_exceeds_max' && v.code !== 'approval_required');
    const approvalThresholds = violations.filter((v) => v.code === 'approval_required').map((v) => ({ rule: v.rule, asset: v.asset, above: v.limit }));
    const sendable = blockers.length === 0 && (budgets.length || perRequestCaps.length) ? [...budgets.map((b) => BigInt(b.remaining)), ...perRequestCaps.map((c) => BigInt(c.limit ?? '0'))].reduce((a, b) => (b < a ? b : a)).toString() : undefined;
    return {
      asset: transferAsset(args),
      to: args.to,
      budgets,
      perRequestCaps,
      ...(approvalThresholds.length ? { approvalThresholds } : {}),
      ...(sendable !== undefined ? { maxSendableNow: sendable } : {}),
      refusedWhateverTheAmount: blockers.length > 0,
      ...(blockers.length ? { blockers: explainViolations(blockers) } : {}),
      ...(answer.decision.decision === 'allow' ? { note: 'No budget or per-request cap limits this asset for this payee.' } : {}),
      computedFrom:
        'Airlock reports no remaining budget directly: this is a dry-run of the largest possible transfer (nothing signed or reserved), whose refusal names every budget with its limit and the amount used in its window. Gas fees are left out, and x402 per-origin budgets do not appear (they need a resource URL).',
    };
  },
});
