// Like the SDK's viem account in an agent's own code: viem fills nonce, gas and fees from the chain, Airlock
// decides and signs (policy, budget, audit), and the signed transaction is broadcast to the RPC.
//
// The steps are viem's sendTransaction taken apart (found by review): once Airlock has signed, the transfer is
// charged and may be on its way, so a failure after that point (the RPC lost its reply to the broadcast, the
// receipt read failed) must not read as "nothing sent", or a model retries and a second transfer is signed and
// sent. The hash is computed here from the signed bytes before broadcasting, so every answer after signing
// carries it, with the nonce and whether the transaction was sent (`true`, or `'maybe'` when the broadcast's
// answer was lost). Airlock's signing answer is bounded by the call's deadline as well (found by review: a slow
// Airlock pushed the answer past the MCP client's timeout, and the late signature was broadcast anyway): cut off,
// the transfer is never broadcast, and the error says Airlock may have signed it (`paid: 'maybe'`, `sent: false`).
import { z } from 'zod';
import { encodeFunctionData, erc20Abi, keccak256, WaitForTransactionReceiptTimeoutError, type Address, type Hex } from 'viem';
import type { ToolContext } from '../context.ts';
import { PaidThenFailedError, ToolError } from '../results.ts';
import { defineTool } from './tool.ts';
import { transferShape } from './fields.ts';
import { startDeadline, type CallDeadline } from './time-limit.ts';
import { transferAsset } from './transfer-request.ts';

/** The broadcast gets at least this long, even when signing ran close to the time limit. */
const MIN_BROADCAST_MS = 5_000;

const input = {
  ...transferShape,
  waitForReceipt: z.boolean().default(true).describe('Wait until the transaction is mined and report its status, at most until the call\'s time limit (40 s in all by default); not mined by then: status "sent" with the hash. Default true.'),
};
type SendTransferArgs = z.infer<z.ZodObject<typeof input>>;

export const sendTransferTool = defineTool({
  name: 'send_transfer',
  title: 'Send a transfer',
  description:
    'Send native coin or an ERC-20 token. Airlock checks the request against your policy and budgets and signs it; this server then broadcasts it on the chain and (by default) waits for the receipt. A refusal returns an error naming the rule with its limit, used and requested amounts; nothing is sent then. An error after Airlock signed carries `paid: true`, the `transactionHash`, the `nonce` and `sent` (true, or "maybe"): the transfer may be on chain, so do not send it again; look the hash up instead. An error with `paid: "maybe"` and `sent: false` means the time limit ran out while Airlock was deciding: it may have signed and charged the budget, but nothing was sent; tell the user rather than sending it again. Amounts are in base units.',
  input,
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
  async run(ctx, args) {
    const deadline = startDeadline(ctx.config, 'send_transfer');
    try {
      return await ctx.withinDeadline(deadline, () => sendTransfer(ctx, args, deadline));
    } finally {
      deadline.end();
    }
  },
});

async function sendTransfer(ctx: ToolContext, args: SendTransferArgs, callDeadline: CallDeadline): Promise<Record<string, unknown>> {
  const started = Date.now();
  const deadline = callDeadline.at;
  const { publicClient, wallet } = ctx.chain(args.chainId);
  const account = await ctx.account();
  const client = wallet(account);
  const amount = BigInt(args.amount);
  const call = args.token
    ? { to: args.token as Address, data: encodeFunctionData({ abi: erc20Abi, functionName: 'transfer', args: [args.to as Address, amount] }) }
    : { to: args.to as Address, value: amount };
  // Nonce, gas and fees from the RPC within the first half of the time limit, leaving the rest for signing, the
  // broadcast and the receipt; a slow RPC here costs only this call: nothing is signed yet.
  const request = await settleBy(client.prepareTransactionRequest({ account, chain: client.chain, ...call }), started + (deadline - started) / 2, () =>
    new ToolError('chain_timeout', 'The RPC did not give the nonce, gas and fees in time; nothing was signed or sent.', ['The RPC is slow or unreachable; try again later.']),
  );
  let signed: Hex;
  try {
    signed = (await account.signTransaction(request as never)) as Hex;
  } catch (e) {
    const undecided = callDeadline.undecided;
    if (!undecided) throw e;
    throw new PaidThenFailedError(
      e,
      { sent: false, nonce: request.nonce, idempotencyKey: undecided.idempotencyKey, chain: `eip155:${args.chainId}`, to: args.to, amount: args.amount, asset: transferAsset(args) },
      `Airlock had not answered the request to sign this transfer (nonce ${request.nonce}, Idempotency-Key ${undecided.idempotencyKey}) when the time limit ran out; it may still sign it and charge the budget. Nothing was sent: a signature that comes after the limit is never broadcast. Do not send it again blindly: tell the user (the operator finds the request in Airlock's audit log by its key); a new call is a new request, charged again if this one was signed.`,
      'maybe',
    );
  }
  // The transaction hash is the keccak-256 of the signed transaction's bytes (every envelope type).
  const transactionHash = keccak256(signed);
  const sent = { transactionHash, nonce: request.nonce, chain: `eip155:${args.chainId}`, from: account.address, to: args.to, amount: args.amount, asset: transferAsset(args) };
  const doNotRetry = (how: string) =>
    `Airlock signed this transfer (nonce ${request.nonce}, hash ${transactionHash}) and it ${how}; the budget is charged. Do not send it again: a retry signs and sends a second transfer. Look the hash up on the chain (a block explorer, or later calls) and tell the user.`;
  try {
    await settleBy(client.sendRawTransaction({ serializedTransaction: signed }), Math.max(deadline, Date.now() + MIN_BROADCAST_MS), () =>
      new ToolError('chain_timeout', 'The RPC did not answer the broadcast in time.'),
    );
  } catch (e) {
    // The RPC may have taken it (and passed it on) before its answer was lost.
    throw new PaidThenFailedError(e, { ...sent, sent: 'maybe' }, doNotRetry('may have been broadcast: the RPC did not confirm it'));
  }
  if (!args.waitForReceipt) return { ...sent, status: 'sent' };
  const notMinedYet = { ...sent, status: 'sent', notes: ['Broadcast, not yet mined within this call\'s time limit. Do not send it again; look the transaction hash up later.'] };
  const waitMs = deadline - Date.now();
  if (waitMs <= 0) return notMinedYet;
  // viem's timeout ends the wait, not its polling: the transaction read it retries six times over 12.6 s runs on
  // after the answer (found in CI: a late poll reached the RPC after the call had answered). Aborting stops it.
  const stopPolling = new AbortController();
  try {
    const receipt = await publicClient.waitForTransactionReceipt({ hash: transactionHash, timeout: waitMs, signal: stopPolling.signal });
    return { ...sent, status: receipt.status, blockNumber: receipt.blockNumber.toString(), gasUsed: receipt.gasUsed.toString() };
  } catch (e) {
    if (e instanceof WaitForTransactionReceiptTimeoutError) return notMinedYet;
    throw new PaidThenFailedError(e, { ...sent, sent: true }, doNotRetry('was broadcast, but its receipt could not be read'));
  } finally {
    stopPolling.abort();
  }
}

/** `work`, or the error `late()` makes when it has not settled by `at` (epoch ms); `work` itself runs on. */
function settleBy<T>(work: Promise<T>, at: number, late: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(late()), Math.max(0, at - Date.now()));
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
