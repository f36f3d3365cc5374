import { defineTool } from './tool.ts';
import { transferShape } from './fields.ts';
import { dryRun, explainViolations, transferTransaction } from './dry-run.ts';
import { transferAsset } from './transfer-request.ts';

export const dryRunTransferTool = defineTool({
  name: 'dry_run_transfer',
  title: 'Dry-run a payment',
  description:
    'Ask Airlock whether a transfer (native coin or ERC-20) would be signed right now, without signing, reserving budget or sending anything. Answers allow, deny (with each violated rule and its limit, used and requested amounts) or require_approval (a human must approve above a threshold).',
  input: transferShape,
  annotations: { readOnlyHint: true, openWorldHint: false },
  async run(ctx, args) {
    const { transaction, feesFromChain } = await transferTransaction(ctx, args, { feesFromChain: true });
    const answer = await dryRun(ctx, 'evm.transaction', { chainId: args.chainId, transaction });
    const { decision, violations, allowedBy, policyVersion } = answer.decision;
    return {
      decision,
      wouldSign: decision === 'allow',
      asset: transferAsset(args),
      ...(answer.intent.summary ? { summary: answer.intent.summary } : {}),
      violations: explainViolations(violations),
      allowedBy,
      policyVersion,
      feesFromChain,
      ...(feesFromChain ? {} : { note: `No RPC URL for eip155:${args.chainId}: judged without gas fees (nonce 0, fee 0); a fee cap or a native-coin budget may still refuse the real transaction.` }),
    };
  },
});
