// The MCP server: Airlock's agent-side operations as tools. Each tool's result, success or failure, is JSON
// that passes through the redactor, so neither the session token nor an RPC URL reaches the model.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { AirlockApprovalRequiredError } from '@airlock/sdk';
import type { ToolContext } from './context.ts';
import type { Redactor } from './redact.ts';
import { airlockErrorIn, describeError, failure, success } from './results.ts';
import type { AirlockTool } from './tools/tool.ts';
import { whoamiTool } from './tools/whoami.ts';
import { remainingBudgetTool } from './tools/remaining-budget.ts';
import { dryRunTransferTool } from './tools/dry-run-transfer.ts';
import { sendTransferTool } from './tools/send-transfer.ts';
import { signTypedDataTool } from './tools/sign-typed-data.ts';
import { payX402Tool } from './tools/pay-x402.ts';
import { payL402Tool } from './tools/pay-l402.ts';
import { pendingApprovalsTool } from './tools/pending-approvals.ts';

export const AIRLOCK_TOOLS = [whoamiTool, remainingBudgetTool, dryRunTransferTool, sendTransferTool, signTypedDataTool, payX402Tool, payL402Tool, pendingApprovalsTool] as unknown as AirlockTool[];

export const SERVER_INFO = { name: 'airlock', version: '0.1.0' };

const INSTRUCTIONS = [
  'Airlock signs for you: your wallet key lives in Airlock, and every transfer, signature and payment is checked against a policy your operator set (payees, per-request caps, budgets, approval thresholds).',
  'Start with whoami. Before paying, dry_run_transfer or remaining_budget tell you what would be allowed. Amounts are integers in base units.',
  'A refusal (error code policy_denied) names each violated rule with its limit, used and requested amounts: explain it to the user; do not retry the same request or split it to get around a limit.',
  'pay_x402 and pay_l402 say in every result, errors included, whether Airlock signed or paid during the call (paid, with paymentSigned or payment): a call that failed after paying must not simply be retried, as each retry can pay again.',
  'send_transfer likewise: an error after Airlock signed carries paid: true, the transactionHash, the nonce and sent (true or "maybe"); the transfer may be on chain, so do not send it again.',
].join(' ');

/** One McpServer (the SDK wants one per connection); every instance shares `ctx`. */
export function createAirlockMcpServer(ctx: ToolContext, redact: Redactor): McpServer {
  const server = new McpServer(SERVER_INFO, { instructions: INSTRUCTIONS });
  for (const tool of AIRLOCK_TOOLS) {
    server.registerTool(tool.name, { title: tool.title, description: tool.description, inputSchema: tool.input, annotations: tool.annotations }, async (args: unknown) => {
      try {
        return success(await tool.run(ctx, args as never), redact);
      } catch (e) {
        const waiting = airlockErrorIn(e);
        if (waiting instanceof AirlockApprovalRequiredError && !ctx.approvals.has(waiting.approvalId)) {
          ctx.approvals.set(waiting.approvalId, { id: waiting.approvalId, tool: tool.name, requestedAt: new Date().toISOString() });
        }
        return failure(describeError(e), redact);
      }
    });
  }
  return server;
}
