// eth_sendTransaction / eth_signTransaction: the JSON-RPC transaction object (execution-apis
// GenericTransaction) as an `evm.transaction` payload for SigningService.sign, with what the caller left
// out filled from the upstream node the way a node fills it for an unlocked account.
import { transactionTypeOf } from '@airlock/chains';
import { JsonRpcError, RPC_ERROR } from './json-rpc-errors.ts';
import type { UpstreamNode } from './json-rpc-upstream.ts';

/** The payload POST /v1/sign/transaction takes: `{chainId, transaction}`. */
export interface TransactionPayload {
  chainId: number;
  transaction: Record<string, unknown>;
}


/**
 * Checks `from` and `chainId`, fills nonce, gas and fees that are missing, and returns the payload.
 * Fields the caller gave are kept exactly; anything the decoder does not know (blobs, unknown keys) is passed on
 * so that it refuses them with its own message. An EIP-7702 `authorizationList` is passed on too (the decoder
 * signs type-4 transactions, each authorization judged by the delegations rules).
 *
 * Filling (no upstream configured: nothing is filled, and a missing field is the decoder's error):
 * - nonce: `eth_getTransactionCount(agent, "pending")`;
 * - gas: `eth_estimateGas` of the call (from, to, value, data, accessList, authorizationList: each
 *   authorization costs 25,000 intrinsic gas an estimate without it leaves out);
 * - fees: `gasPrice` given or type 0x0 -> legacy, `eth_gasPrice` if missing; otherwise EIP-1559 when the
 *   latest block has a base fee: priority `eth_maxPriorityFeePerGas`, max `2 * baseFee + priority`
 *   (ethers' rule: room for the base fee to double); a chain without base fee gets a legacy `eth_gasPrice`;
 * - type: when missing, `0x4` for a transaction carrying an `authorizationList` (EIP-7702), else `0x2`.
 */
export async function transactionPayload(raw: unknown, agentAddress: string, chainId: number, upstream: UpstreamNode | undefined): Promise<TransactionPayload> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalidParams('params[0] must be a transaction object');
  const tx: Record<string, unknown> = { ...(raw as Record<string, unknown>) };
  if (tx.from !== undefined && (typeof tx.from !== 'string' || tx.from.toLowerCase() !== agentAddress.toLowerCase())) throw notTheAgent('from');
  delete tx.from;
  if (tx.chainId !== undefined && tx.chainId !== null) {
    const given = quantity(tx.chainId, 'chainId');
    if (given !== BigInt(chainId)) throw new JsonRpcError(RPC_ERROR.invalidParams, `transaction chainId ${given} is not this endpoint's chain ${chainId}`, { code: 'chain_mismatch' });
  }
  delete tx.chainId;
  for (const key of Object.keys(tx)) if (tx[key] === null && key !== 'to') delete tx[key];
  if (upstream) await fill(tx, agentAddress, upstream);
  return { chainId, transaction: tx };
}

async function fill(tx: Record<string, unknown>, from: string, upstream: UpstreamNode): Promise<void> {
  if (tx.nonce === undefined) tx.nonce = await upstream.call('eth_getTransactionCount', [from, 'pending']);
  if (tx.gas === undefined && tx.gasLimit === undefined) {
    const call: Record<string, unknown> = { from };
    for (const key of ['to', 'value', 'data', 'input', 'accessList', 'authorizationList']) if (tx[key] !== undefined) call[key] = tx[key];
    tx.gas = await upstream.call('eth_estimateGas', [call]);
  }
  // Legacy and EIP-2930 fees are a `gasPrice`, however the type is spelled ('0x01', 'eip2930'), read as the decoder
  // reads it (found by review: an EIP-2930 type was filled with EIP-1559 fees, which the decoder then refused).
  const type = typeof tx.type === 'string' ? transactionTypeOf(tx.type) : undefined;
  const legacy = tx.gasPrice !== undefined || type === 'legacy' || type === 'eip2930';
  if (legacy) {
    if (tx.gasPrice === undefined) tx.gasPrice = await upstream.call('eth_gasPrice', []);
    return;
  }
  if (tx.maxFeePerGas !== undefined && tx.maxPriorityFeePerGas !== undefined) return;
  const block = (await upstream.call('eth_getBlockByNumber', ['latest', false])) as { baseFeePerGas?: unknown } | null;
  const baseFee = block?.baseFeePerGas !== undefined && block.baseFeePerGas !== null ? quantity(block.baseFeePerGas, 'the node\'s baseFeePerGas') : undefined;
  if (baseFee === undefined) {
    if (tx.type !== undefined || tx.maxFeePerGas !== undefined || tx.maxPriorityFeePerGas !== undefined) throw invalidParams('this chain has no base fee: send gasPrice (a legacy transaction)');
    tx.gasPrice = await upstream.call('eth_gasPrice', []);
    return;
  }
  if (tx.maxPriorityFeePerGas === undefined) {
    const suggested = quantity(await upstream.call('eth_maxPriorityFeePerGas', []), 'the node\'s eth_maxPriorityFeePerGas');
    // Never above a maxFeePerGas the caller fixed (the decoder refuses priority > max).
    const cap = tx.maxFeePerGas !== undefined ? quantity(tx.maxFeePerGas, 'maxFeePerGas') : undefined;
    tx.maxPriorityFeePerGas = hex(cap !== undefined && suggested > cap ? cap : suggested);
  }
  if (tx.maxFeePerGas === undefined) tx.maxFeePerGas = hex(2n * baseFee + quantity(tx.maxPriorityFeePerGas, 'maxPriorityFeePerGas'));
  // A transaction carrying an authorization list is EIP-7702 (type 4): stamping 0x2 on it had the decoder refuse it.
  tx.type ??= tx.authorizationList !== undefined ? '0x4' : '0x2';
}

/** A hex or decimal quantity as given by a client or a node; anything else is the caller's error. */
function quantity(value: unknown, name: string): bigint {
  if ((typeof value === 'string' && /^(0x[0-9a-f]+|[0-9]+)$/i.test(value)) || (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0)) return BigInt(value);
  throw invalidParams(`${name} must be a non-negative hex or decimal integer`);
}

function hex(n: bigint): string {
  return `0x${n.toString(16)}`;
}

export function invalidParams(message: string): JsonRpcError {
  return new JsonRpcError(RPC_ERROR.invalidParams, message, { code: 'invalid_request' });
}

/** The address a request names for signing is not the session's agent (EIP-1193 4100). */
export function notTheAgent(field: string): JsonRpcError {
  return new JsonRpcError(RPC_ERROR.unauthorized, `${field} is not the address of this session's agent`, { code: 'not_agent_address' });
}
