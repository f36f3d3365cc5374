import { createPublicClient, http, type PublicClient } from 'viem';
import type { ChainReader } from '@airlock/core';

const AUTHORIZATION_STATE_ABI = [
  {
    type: 'function',
    name: 'authorizationState',
    stateMutability: 'view',
    inputs: [{ name: 'authorizer', type: 'address' }, { name: 'nonce', type: 'bytes32' }],
    outputs: [{ name: '', type: 'bool' }],
  },
] as const;

/** ChainReader over JSON-RPC: one viem public client per configured network (eth_call, no keys). */
export function rpcChainReader(rpc: Record<string, string>): ChainReader {
  const clients = new Map<string, PublicClient>();
  for (const [network, url] of Object.entries(rpc)) clients.set(network, createPublicClient({ transport: http(url, { timeout: 10_000, retryCount: 1 }) }));
  return {
    supports: (network) => clients.has(network),
    async authorizationState(network, token, from, nonce) {
      const client = clients.get(network);
      if (!client) throw new Error(`no RPC configured for ${network}`);
      return client.readContract({
        address: token as `0x${string}`,
        abi: AUTHORIZATION_STATE_ABI,
        functionName: 'authorizationState',
        args: [from as `0x${string}`, nonce as `0x${string}`],
      });
    },
    async latestBlockTimestamp(network) {
      const client = clients.get(network);
      if (!client) throw new Error(`no RPC configured for ${network}`);
      return Number((await client.getBlock({ blockTag: 'latest' })).timestamp);
    },
  };
}
