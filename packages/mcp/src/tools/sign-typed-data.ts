import { z } from 'zod';
import { defineTool } from './tool.ts';
import { dryRun, explainViolations } from './dry-run.ts';

const typedDataField = z
  .object({
    domain: z.record(z.string(), z.unknown()).describe('EIP-712 domain: name, version, chainId, verifyingContract (as the dapp or API gave them).'),
    types: z.record(z.string(), z.array(z.object({ name: z.string(), type: z.string() }))).describe('Struct definitions, e.g. {"TransferWithAuthorization":[{"name":"from","type":"address"},…]}. EIP712Domain may be left out.'),
    primaryType: z.string().describe('The struct being signed, e.g. "TransferWithAuthorization" or "Permit".'),
    message: z.record(z.string(), z.unknown()).describe('The values; large integers as decimal strings.'),
  })
  .describe('EIP-712 typed data, exactly as it is to be signed.');

export const signTypedDataTool = defineTool({
  name: 'sign_typed_data',
  title: 'Sign typed data (EIP-712)',
  description:
    'Sign EIP-712 typed data (a permit, an EIP-3009 payment authorization, an order, a Safe SafeTx you co-sign as one owner, an ERC-4337 PackedUserOperation of the smart account your key owns) with your Airlock key. Airlock decodes it and applies your policy: known payment authorizations count against budgets; a SafeTx or a user operation is judged call by call (every call must be allowed) and charged for their sum; unknown typed data is refused unless a rule names it. Set dryRun to only ask whether it would be signed.',
  input: {
    typedData: typedDataField,
    dryRun: z.boolean().default(false).describe('Only evaluate: nothing is signed or reserved. Default false.'),
  },
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
  async run(ctx, args) {
    const { domain, types, primaryType, message } = args.typedData;
    if (args.dryRun) {
      const answer = await dryRun(ctx, 'evm.typed_data', { typedData: { domain, types, primaryType, message } });
      const { decision, violations, allowedBy } = answer.decision;
      return { decision, wouldSign: decision === 'allow', ...(answer.intent.summary ? { summary: answer.intent.summary } : {}), violations: explainViolations(violations), allowedBy, digest: answer.digest };
    }
    const account = await ctx.account();
    const signature = await account.signTypedData({ domain, types, primaryType, message } as never);
    return { signature, signer: account.address, primaryType };
  },
});
