import { parseAbi, parseAbiItem, type PublicClient } from 'viem';
import { AirlockError, type ChainReader } from '@airlock/core';
import { rpcPublicClient } from './evm-rpc-client.ts';
import { chainIdMatches, checkedOnce } from './http/json-rpc-upstream.ts';

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

/**
 * A node of AIRLOCK_EVM_RPC that answers `eth_chainId` with another chain's id than its network names. Its
 * `name` is what the reconciler's `alert.reconciler` (reason `rpc_error`) records as `failure`.
 */
export class UpstreamChainMismatchError extends AirlockError {
  constructor(network: string, chainId: number, answered: unknown) {
    const said = typeof answered === 'string' && /^0x[0-9a-f]{1,64}$/i.test(answered) ? BigInt(answered).toString() : 'no chain id';
    super('upstream_chain_mismatch', `The RPC node configured for ${network} (AIRLOCK_EVM_RPC) is on another chain: it answers eth_chainId ${said}, not ${chainId}. Nothing is read from it until it does.`, {
      details: { network, expectedChainId: chainId, answeredChainId: said },
    });
    this.name = 'UpstreamChainMismatchError';
  }
}

/**
 * One viem public client per network of AIRLOCK_EVM_RPC, each handed out only once its node answered
 * `eth_chainId` with the network's chain id (the JSON-RPC endpoint's check, json-rpc-upstream.ts). The check runs
 * before a network's first read; a success is kept, a failure (node down, wrong chain) is tried again on the next
 * read, and a wrong chain throws UpstreamChainMismatchError. The error never names the URL (it can hold an API key).
 */
export function checkedRpcClients(rpc: Record<string, string>): { supports(network: string): boolean; networks(): string[]; client(network: string): Promise<PublicClient> } {
  const clients = new Map<string, { client: PublicClient; check: () => Promise<void> }>();
  for (const [network, url] of Object.entries(rpc)) {
    const client = rpcPublicClient(url);
    // config.ts admits only eip155:<decimal> keys; anything else can match no node's answer.
    const chainId = /^eip155:[1-9][0-9]{0,15}$/.test(network) ? Number(network.slice('eip155:'.length)) : Number.NaN;
    clients.set(network, {
      client,
      check: checkedOnce(async () => {
        const answered = await client.request({ method: 'eth_chainId' });
        if (!Number.isSafeInteger(chainId) || !chainIdMatches(answered, chainId)) throw new UpstreamChainMismatchError(network, chainId, answered);
      }),
    });
  }
  return {
    supports: (network) => clients.has(network),
    networks: () => [...clients.keys()],
    async client(network) {
      const entry = clients.get(network);
      if (!entry) throw new Error(`no RPC configured for ${network}`);
      await entry.check();
      return entry.client;
    },
  };
}

/** ChainReader over JSON-RPC: one viem public client per configured network (eth_call, eth_getLogs; no keys), each on its network's chain (checkedRpcClients). */
export function rpcChainReader(rpc: Record<string, string>, options: RpcChainReaderOptions = {}): ChainReader {
  const blockTag = options.blockTag ?? 'finalized';
  const lookback = BigInt(options.logLookbackBlocks ?? 100_000);
  const clients = checkedRpcClients(rpc);
  const clientFor = clients.client;
  return {
    supports: clients.supports,
    async authorizationState(network, token, from, nonce, blockNumber) {
      return (await clientFor(network)).readContract({
        address: token as `0x${string}`,
        abi: AUTHORIZATION_STATE_ABI,
        functionName: 'authorizationState',
        args: [from as `0x${string}`, nonce as `0x${string}`],
        ...(blockNumber !== undefined ? { blockNumber } : {}),
      });
    },
    async erc20Allowance(network, token, owner, spender) {
      return (await clientFor(network)).readContract({ address: token as `0x${string}`, abi: GRANT_STATE_ABI, functionName: 'allowance', args: [owner as `0x${string}`, spender as `0x${string}`] });
    },
    async eip2612Nonce(network, token, owner) {
      return (await clientFor(network)).readContract({ address: token as `0x${string}`, abi: GRANT_STATE_ABI, functionName: 'nonces', args: [owner as `0x${string}`] });
    },
    async permit2Allowance(network, permit2, owner, token, spender) {
      const [amount, expiration, nonce] = await (await clientFor(network)).readContract({ address: permit2 as `0x${string}`, abi: PERMIT2_STATE_ABI, functionName: 'allowance', args: [owner as `0x${string}`, token as `0x${string}`, spender as `0x${string}`] });
      return { amount, expiration: Number(expiration), nonce: BigInt(nonce) };
    },
    async permit2NonceBitmap(network, permit2, owner, wordPos) {
      return (await clientFor(network)).readContract({ address: permit2 as `0x${string}`, abi: PERMIT2_STATE_ABI, functionName: 'nonceBitmap', args: [owner as `0x${string}`, wordPos] });
    },
    async latestBlockTimestamp(network) {
      return Number((await (await clientFor(network)).getBlock({ blockTag: 'latest' })).timestamp);
    },
    async pinnedBlock(network) {
      const block = await (await clientFor(network)).getBlock({ blockTag });
      return { tag: blockTag, number: block.number, timestamp: Number(block.timestamp) };
    },
    async findAuthorizationUse(network, token, from, nonce) {
      const client = await clientFor(network);
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
