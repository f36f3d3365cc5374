// The lifecycle path's chain access (core/ports/lifecycle.ts) over viem's public client, one per network of
// AIRLOCK_EVM_RPC. It holds no keys: it reads nonces, fees, balances and receipts, and broadcasts bytes the
// core signed and committed before. Each node is asked its chain id before the first read or broadcast
// (checkedRpcClients): a node of another chain answers upstream_chain_mismatch, and nothing is read from it.
import { erc20Abi, parseAbiItem, type Hex } from 'viem';
import type { EvmSubmitter, IncomingTransfer } from '@airlock/core';
import { checkedRpcClients } from './evm-chain-reader.ts';

const TRANSFER = parseAbiItem('event Transfer(address indexed from, address indexed to, uint256 value)');

/** Messages nodes answer when they already hold (or mined) exactly these bytes: the broadcast did its job. */
const ALREADY_KNOWN = /already known|already imported|known transaction|transaction already exists/i;

/** How many recent blocks eth_feeHistory reads to bound a lifecycle transaction's gas price. */
const FEE_HISTORY_BLOCKS = 10;

export function rpcEvmSubmitter(rpc: Record<string, string>): EvmSubmitter {
  const clients = checkedRpcClients(rpc);
  const clientFor = clients.client;
  const address = (a: string) => a as `0x${string}`;
  return {
    supports: clients.supports,
    chains: () => clients.networks().sort(),
    pendingNonce: async (chain, a) => (await clientFor(chain)).getTransactionCount({ address: address(a), blockTag: 'pending' }),
    gasPrice: async (chain) => (await clientFor(chain)).getGasPrice(),
    async recentFees(chain) {
      try {
        const h = await (await clientFor(chain)).getFeeHistory({ blockCount: FEE_HISTORY_BLOCKS, rewardPercentiles: [50], blockTag: 'latest' });
        if (h.baseFeePerGas.length === 0) return undefined;
        const max = (xs: readonly bigint[]) => xs.reduce((a, b) => (b > a ? b : a), 0n);
        return { maxBaseFee: max(h.baseFeePerGas), maxPriorityFee: max((h.reward ?? []).map((r) => r[0] ?? 0n)) };
      } catch {
        return undefined; // no fee history (a pre-London chain, a node without the method): max_gas_price alone bounds the fee
      }
    },
    estimateGas: async (chain, call) => (await clientFor(chain)).estimateGas({ account: address(call.from), to: address(call.to), data: call.data as Hex, value: call.value }),
    nativeBalance: async (chain, a) => (await clientFor(chain)).getBalance({ address: address(a) }),
    tokenBalance: async (chain, token, a) => (await clientFor(chain)).readContract({ address: address(token), abi: erc20Abi, functionName: 'balanceOf', args: [address(a)] }),
    async sendRawTransaction(chain, raw) {
      const client = await clientFor(chain);
      try {
        await client.sendRawTransaction({ serializedTransaction: raw as Hex });
      } catch (e) {
        const text = e instanceof Error ? `${e.message} ${(e as { details?: string }).details ?? ''}` : String(e);
        if (ALREADY_KNOWN.test(text)) return;
        throw e;
      }
    },
    async receipt(chain, hash) {
      const client = await clientFor(chain);
      try {
        const r = await client.getTransactionReceipt({ hash: hash as Hex });
        return { status: r.status, blockNumber: r.blockNumber, gasUsed: r.gasUsed };
      } catch (e) {
        if ((e as { name?: string }).name === 'TransactionReceiptNotFoundError') return undefined;
        throw e;
      }
    },
    blockNumber: async (chain) => (await clientFor(chain)).getBlockNumber({ cacheTime: 0 }),
    async incomingTransfers(chain, tokens, addresses, fromBlock, toBlock) {
      if (tokens.length === 0 || addresses.length === 0) return [];
      const logs = await (await clientFor(chain)).getLogs({ address: tokens.map(address), event: TRANSFER, args: { to: addresses.map(address) }, fromBlock, toBlock });
      return logs
        .filter((l) => !l.removed && l.args.to !== undefined && l.args.value !== undefined && l.blockNumber !== null)
        .map((l): IncomingTransfer => ({ asset: `${chain}/erc20:${l.address.toLowerCase()}`, to: l.args.to!.toLowerCase(), value: l.args.value!, blockNumber: l.blockNumber! }));
    },
  };
}
