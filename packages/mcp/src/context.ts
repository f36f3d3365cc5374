// What every tool shares: one Airlock HTTP client and one viem account for the configured session, the
// x402 fetch, a wallet per configured chain, and the approvals this server has seen requested.
import { createPublicClient, createWalletClient, defineChain, http as rpcTransport, type Chain, type LocalAccount, type PublicClient, type WalletClient } from 'viem';
import { airlockAccount, createAirlockHttp, fetchWithAirlock, type AirlockHttp, type AirlockPaidFetch } from '@airlock/sdk';
import type { McpConfig } from './config.ts';
import { ToolError } from './results.ts';

export interface TrackedApproval {
  id: string;
  /** The tool whose request is waiting. */
  tool: string;
  requestedAt: string;
}

export interface ToolContext {
  config: McpConfig;
  http: AirlockHttp;
  /** The agent as a viem account; its signatures go through Airlock's policy (GET /v1/session once). */
  account(): Promise<LocalAccount>;
  payFetch: AirlockPaidFetch;
  /** Clients for a chain with a configured RPC URL; a `no_rpc_for_chain` ToolError otherwise. */
  chain(chainId: number): { publicClient: PublicClient; wallet(account: LocalAccount): WalletClient };
  /** Approval ids seen in 202 answers, oldest first. Airlock has no agent-side list, so this server keeps one. */
  approvals: Map<string, TrackedApproval>;
}

export function createToolContext(config: McpConfig): ToolContext {
  const options = { url: config.url, token: config.token };
  let account: Promise<LocalAccount> | undefined;
  const chains = new Map<number, Chain>();
  const chainOf = (chainId: number): { chain: Chain; rpcUrl: string } => {
    const rpcUrl = config.rpc.get(chainId);
    if (!rpcUrl) {
      throw new ToolError('no_rpc_for_chain', `No RPC URL is configured for eip155:${chainId}, so nothing can be broadcast there.`, [
        `Configured chains: ${[...config.rpc.keys()].map((id) => `eip155:${id}`).join(', ') || 'none'}. The operator sets AIRLOCK_EVM_RPC="eip155:${chainId}=https://…" for \`airlock mcp\`.`,
      ]);
    }
    let chain = chains.get(chainId);
    if (!chain) {
      // Only the id matters to viem here: it signs with this chain id and asks the RPC for nonce, gas and fees.
      chain = defineChain({ id: chainId, name: `eip155:${chainId}`, nativeCurrency: { name: 'native', symbol: 'ETH', decimals: 18 }, rpcUrls: { default: { http: [rpcUrl] } } });
      chains.set(chainId, chain);
    }
    return { chain, rpcUrl };
  };
  return {
    config,
    http: createAirlockHttp(options),
    account() {
      // A failed first call (daemon down) must not stick: the next tool call tries again.
      account ??= airlockAccount(options).catch((e: unknown) => {
        account = undefined;
        throw e;
      });
      return account;
    },
    payFetch: fetchWithAirlock(fetch, options),
    chain(chainId) {
      const { chain, rpcUrl } = chainOf(chainId);
      return {
        publicClient: createPublicClient({ chain, transport: rpcTransport(rpcUrl) }),
        wallet: (signer) => createWalletClient({ account: signer, chain, transport: rpcTransport(rpcUrl) }),
      };
    },
    approvals: new Map(),
  };
}
