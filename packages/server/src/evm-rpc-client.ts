// The viem public client the daemon's own chain reads go through (the x402 reconciler's `rpcChainReader`,
// the lifecycle path's `rpcEvmSubmitter`), one per network of AIRLOCK_EVM_RPC. Its limits are written out
// here rather than left to viem's defaults: the node is outside Airlock, and a compromised or broken one
// answering without end must cost a bounded read, not the daemon's memory.
import { createPublicClient, http, type PublicClient } from 'viem';
import { UPSTREAM_MAX_ANSWER_BYTES } from './http/json-rpc-upstream.ts';

/** How long one call may take, reading the answer's body included (viem times the body's read too). */
export const CHAIN_RPC_TIMEOUT_MS = 10_000;

export function rpcPublicClient(url: string): PublicClient {
  return createPublicClient({
    // viem follows a contract's OffchainLookup revert (EIP-3668, CCIP-Read) by default: GETs or POSTs to whatever
    // URLs the revert names. The daemon reads contracts an agent chose (the allowance and nonce reads of the
    // dependency map, an x402 token's authorization state), so that was a request to any host the daemon reaches,
    // internal ones included (found by review 2026-12-05). No read of the daemon's needs an offchain answer.
    ccipRead: false,
    transport: http(url, {
      timeout: CHAIN_RPC_TIMEOUT_MS,
      retryCount: 1,
      // viem reads the answer as a stream and cancels it past this many bytes (ResponseBodyTooLargeError),
      // checking Content-Length first. Its default is 10 MiB; the same cap as answers the JSON-RPC endpoint
      // relays, since the reads here (one contract value, the logs of one authorization) are far smaller.
      maxResponseBodySize: UPSTREAM_MAX_ANSWER_BYTES,
    }),
  });
}
