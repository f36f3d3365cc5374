// Like the SDK's viem account in an agent's own code: viem fills nonce, gas and fees from the chain, Airlock
// decides and signs (policy, budget, audit), and viem broadcasts the signed transaction to the RPC.
import { z } from 'zod';
import { erc20Abi, type Address } from 'viem';
import { defineTool } from './tool.ts';
import { transferShape } from './fields.ts';
import { transferAsset } from './transfer-request.ts';

const RECEIPT_TIMEOUT_MS = 60_000;

export const sendTransferTool = defineTool({
  name: 'send_transfer',
  title: 'Send a transfer',
  description:
    'Send native coin or an ERC-20 token. Airlock checks the request against your policy and budgets and signs it; this server then broadcasts it on the chain and (by default) waits for the receipt. A refusal returns an error naming the rule with its limit, used and requested amounts; nothing is sent then. Amounts are in base units.',
  input: {
    ...transferShape,
    waitForReceipt: z.boolean().default(true).describe('Wait (up to 60 s) until the transaction is mined and report its status. Default true.'),
  },
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
  async run(ctx, args) {
    const { publicClient, wallet } = ctx.chain(args.chainId);
    const account = await ctx.account();
    const client = wallet(account);
    const amount = BigInt(args.amount);
    const hash = args.token
      ? await client.writeContract({ account, chain: client.chain, address: args.token as Address, abi: erc20Abi, functionName: 'transfer', args: [args.to as Address, amount] })
      : await client.sendTransaction({ account, chain: client.chain, to: args.to as Address, value: amount });
    const sent = { transactionHash: hash, chain: `eip155:${args.chainId}`, from: account.address, to: args.to, amount: args.amount, asset: transferAsset(args) };
    if (!args.waitForReceipt) return { ...sent, status: 'sent' };
    const receipt = await publicClient.waitForTransactionReceipt({ hash, timeout: RECEIPT_TIMEOUT_MS });
    return { ...sent, status: receipt.status, blockNumber: receipt.blockNumber.toString(), gasUsed: receipt.gasUsed.toString() };
  },
});
