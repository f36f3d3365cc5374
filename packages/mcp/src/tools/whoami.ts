import { defineTool } from './tool.ts';

interface SessionAnswer {
  agent: { id: string; name: string; address: string; status: string };
  session: { id: string; label?: string; expiresAt: string; scope: { actions: string[]; chains: string[]; budgets: { asset: string; max: string; window: string }[] } };
}

export const whoamiTool = defineTool({
  name: 'whoami',
  title: 'Who am I',
  description:
    'Your Airlock identity: the agent name and wallet address, the chains and actions your session may use, its own budgets and when it expires, and the chains this server can broadcast on. Airlock holds the key; you never see it. Call this first.',
  input: {},
  annotations: { readOnlyHint: true, openWorldHint: false },
  async run(ctx) {
    const { body } = await ctx.http.request<SessionAnswer>('GET', '/v1/session');
    const { agent, session } = body;
    return {
      address: agent.address,
      agent: { id: agent.id, name: agent.name, status: agent.status },
      session: {
        id: session.id,
        ...(session.label ? { label: session.label } : {}),
        expiresAt: session.expiresAt,
        actions: session.scope.actions,
        chains: session.scope.chains.length ? session.scope.chains : 'any chain the agent policy allows',
        budgets: session.scope.budgets,
      },
      broadcastChains: [...ctx.config.rpc.keys()].map((id) => `eip155:${id}`),
      notes: [
        'Actions: evm.transaction = send_transfer, evm.typed_data = sign_typed_data and pay_x402 (a Safe SafeTx you co-sign as one owner is typed data too), evm.user_operation = sign_typed_data of an ERC-4337 PackedUserOperation (your key owns a smart account), evm.message and evm.authorization (EIP-7702 delegations) are not offered here. A request needs its action in your session.',
        'The agent policy (allowed payees, per-request caps, budgets) is not shown to agents: ask with dry_run_transfer and remaining_budget.',
      ],
    };
  },
});
