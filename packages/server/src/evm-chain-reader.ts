import { parseAbi, parseAbiItem, type PublicClient } from 'viem';
import type { ChainReader } from '@airlock/core';
import { rpcPublicClient } from './evm-rpc-client.ts';

const AUTHORIZATION_STATE_ABI = [
  {
    type: 'function',
    name: 'authorizationState',
    stateMutability: 'view',
    inputs: [{ name: 'authorizer', type: 'address' }, { name: 'nonce', type: 'bytes32' }],
    outputs: [{ name: '', type: 'bool' }],
  },
] as const;

// What the dependency map reads (issue 14): ERC-20 allowances, EIP-2612 nonces, Permit2 allowances and nonce bitmaps.
const GRANT_STATE_ABI = parseAbi([
  'function allowance(address owner, address spender) view returns (uint256)',
  'function nonces(address owner) view returns (uint256)',
]);
const PERMIT2_STATE_ABI = parseAbi([
  'function allowance(address owner, address token, address spender) view returns (uint160 amount, uint48 expiration, uint48 nonce)',
  'function nonceBitmap(address owner, uint256 wordPos) view returns (uint256)',
]);

const AUTHORIZATION_USED = parseAbiItem('event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce)');
const TRANSFER = parseAbiItem('event Transfer(address indexed from, address indexed to, uint256 value)');

export interface RpcChainReaderOptions {
  /** The block whose state releases a hold. Default `finalized`. */
  blockTag?: 'finalized' | 'safe';
  /** How many blocks back from the latest the `AuthorizationUsed` event is searched for. Default 100000. */
  logLookbackBlocks?: number;
}

/** ChainReader over JSON-RPC: one viem public client per configured network (eth_call, eth_getLogs; no keys). */
export function rpcChainReader(rpc: Record<string, string>, options: RpcChainReaderOptions = {}): ChainReader {
  const blockTag = options.blockTag ?? 'finalized';
  const lookback = BigInt(options.logLookbackBlocks ?? 100_000);
  const clients = new Map<string, PublicClient>();
  for (const [network, url] of Object.entries(rpc)) clients.set(network, rpcPublicClient(url));
  const clientFor = (network: string): PublicClient => {
    const client = clients.get(network);
    if (!client) throw new Error(`no RPC configured for ${network}`);
    return client;
  };
  return {
    supports: (network) => clients.has(network),
    async authorizationState(network, token, from, nonce, blockNumber) {
      return clientFor(network).readContract({
        address: token as `0x${string}`,
        abi: AUTHORIZATION_STATE_ABI,
        functionName: 'authorizationState',
        args: [from as `0x${string}`, nonce as `0x${string}`],
        ...(blockNumber !== undefined ? { blockNumber } : {}),
      });
    },
    async erc20Allowance(network, token, owner, spender) {
      return clientFor(network).readContract({ address: token as `0x${string}`, abi: GRANT_STATE_ABI, functionName: 'allowance', args: [owner as `0x${string}`, spender as `0x${string}`] });
    },
    async eip2612Nonce(network, token, owner) {
      return clientFor(network).readContract({ address: token as `0x${string}`, abi: GRANT_STATE_ABI, functionName: 'nonces', args: [owner as `0x${string}`] });
    },
    async permit2Allowance(network, permit2, owner, token, spender) {
      const [amount, expiration, nonce] = await clientFor(network).readContract({ address: permit2 as `0x${string}`, abi: PERMIT2_STATE_ABI, functionName: 'allowance', args: [owner as `0x${string}`, token as `0x${string}`, spender as `0x${string}`] });
      return { amount, expiration: Number(expiration), nonce: BigInt(nonce) };
    },
    async permit2NonceBitmap(network, permit2, owner, wordPos) {
      return clientFor(network).readContract({ address: permit2 as `0x${string}`, abi: PERMIT2_STATE_ABI, functionName: 'nonceBitmap', args: [owner as `0x${string}`, wordPos] });
    },
    async latestBlockTimestamp(network) {
      return Number((await clientFor(network).getBlock({ blockTag: 'latest' })).timestamp);
    },
    async pinnedBlock(network) {
      const block = await clientFor(network).getBlock({ blockTag });
      return { tag: blockTag, number: block.number, timestamp: Number(block.timestamp) };
    },
    async findAuthorizationUse(network, token, from, nonce) {
      const client = clientFor(network);
      const latest = await client.getBlockNumber();
      const fromBlock = latest > lookback ? latest - lookback : 0n;
      const address = token as `0x${string}`;
      const authorizer = from as `0x${string}`;
      const used = (await client.getLogs({ address, event: AUTHORIZATION_USED, args: { authorizer, nonce: nonce as `0x${string}` }, fromBlock, toBlock: latest }))
        .filter((l) => !l.removed && l.address.toLowerCase() === address.toLowerCase());
      const event = used[0];
      if (!event || event.blockNumber === null || event.transactionHash === null || event.logIndex === null) return undefined;
      // EIP-3009 emits AuthorizationUsed and then transfers: the first Transfer from the authorizer after
      // the event, in the same transaction, is what this authorization moved (a batch may hold several).
      const transfers = (await client.getLogs({ address, event: TRANSFER, args: { from: authorizer }, fromBlock: event.blockNumber, toBlock: event.blockNumber }))
        .filter((l) => !l.removed && l.transactionHash === event.transactionHash && l.logIndex !== null && l.logIndex > event.logIndex!)
        .sort((a, b) => a.logIndex! - b.logIndex!);
      const transfer = transfers[0];
      return {
        transactionHash: event.transactionHash.toLowerCase(),
        blockNumber: event.blockNumber,
        ...(transfer && transfer.args.to !== undefined && transfer.args.value !== undefined ? { transfer: { to: transfer.args.to.toLowerCase(), value: transfer.args.value } } : {}),
      };
    },
  };
}
