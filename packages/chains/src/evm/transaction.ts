// evm.transaction: reads an unsigned EIP-1559, EIP-2930, EIP-7702 (type 4) or legacy (EIP-155) transaction, from
// JSON fields or from its serialized form, and decodes it into an intent. The digest is keccak256 of the unsigned serialization.
import { AirlockError, nativeAsset } from '@airlock/core';
import type { DecodedRequest, DelegationEntry, FeeFields, Intent, SignerContext, Spend } from '@airlock/core';
import { getContractAddress, hexToBytes, parseTransaction, serializeTransaction } from 'viem';
import { keccak256Bytes } from './keccak.ts';
import type { AccessList, Hex, SignedAuthorization, TransactionSerializable } from 'viem';
import type { AbiRegistry } from './abi-registry.ts';
import { decodeCall } from './calldata.ts';
import type { DecodedCall } from './calldata.ts';
import type { PreparedTransaction } from './signed-transaction.ts';
import { readAuthorizationList } from './eip7702.ts';
import {
  caip2, readAddress, readChainId, readHex, readQuantity, readRecord, readSafeInteger, rejectUnknownKeys,
} from './fields.ts';

/** A fully validated unsigned transaction: exactly what gets serialized and signed. */
export interface EvmTransaction {
  type: TransactionType;
  chainId: number;
  to?: `0x${string}`;
  value: bigint;
  data: Hex;
  nonce: number;
  gas: bigint;
  maxFeePerGas?: bigint;
  maxPriorityFeePerGas?: bigint;
  gasPrice?: bigint;
  accessList?: AccessList;
  /** Type 4 (EIP-7702): the signed authorizations the transaction carries, each already signed by its authority. */
  authorizationList?: SignedAuthorization[];
  /** What each of those authorizations delegates, and whose account (the recovered authority). */
  delegations?: DelegationEntry[];
}

/** EIP-2930 (type 1) only adds an access list (which cannot move value); EIP-7702 (type 4) carries delegations. */
export type TransactionType = 'eip1559' | 'legacy' | 'eip2930' | 'eip7702';

/** A Map, not an object literal: 'toString' or 'constructor' must not look up an inherited property. */
const TYPE_NAMES = new Map<string, TransactionType | 'unsupported'>([
  ['eip1559', 'eip1559'], ['0x2', 'eip1559'], ['legacy', 'legacy'], ['0x0', 'legacy'],
  ['eip2930', 'eip2930'], ['0x1', 'eip2930'], ['eip4844', 'unsupported'], ['0x3', 'unsupported'],
  ['eip7702', 'eip7702'], ['0x4', 'eip7702'],
]);

/**
 * A numeric type as TYPE_NAMES spells it: parsed and re-emitted without leading zeros. The JSON-RPC spec types
 * `type` as a byte, so wallets send '0x02' as well as '0x2' (found by review: '0x00' and '0x02' were refused
 * while '0x0' and '0x2' signed). Names are left as they are.
 */
function canonicalType(value: string): string {
  return /^0x[0-9a-f]+$/i.test(value) ? `0x${BigInt(value).toString(16)}` : value;
}

/** The transaction type `value` spells (a name, or a number however padded); undefined for none we know. */
export function transactionTypeOf(value: string): TransactionType | 'unsupported' | undefined {
  return TYPE_NAMES.get(canonicalType(value));
}

const TRANSACTION_FIELDS = [
  'type', 'chainId', 'from', 'to', 'value', 'data', 'input', 'nonce', 'gas', 'gasLimit',
  'maxFeePerGas', 'maxPriorityFeePerGas', 'gasPrice', 'accessList', 'authorizationList',
] as const;
/** Fields of transaction types we do not sign: named so the error says why instead of "unsupported field". */
const UNSUPPORTED_TYPE_FIELDS = ['blobs', 'blobVersionedHashes', 'maxFeePerBlobGas', 'sidecars'];
const SIGNATURE_FIELDS = ['r', 's', 'v', 'yParity'];

/** Reads the request payload into a validated transaction. `signer` lets a `from` field be checked, not trusted. */
export function readTransactionRequest(payload: unknown, signer?: SignerContext): EvmTransaction {
  return readTransaction(payload, signer).tx;
}

/** A validated transaction and its unsigned serialization (the bytes the digest hashes), serialized once. */
interface ReadTransaction {
  tx: EvmTransaction;
  unsigned: Hex;
}

function readTransaction(payload: unknown, signer?: SignerContext): ReadTransaction {
  const request = readRecord(payload, 'payload');
  rejectUnknownKeys(request, ['chainId', 'transaction', 'serializedTransaction'], 'payload');
  const chainId = request.chainId === undefined ? undefined : readChainId(request.chainId, 'chainId');
  if ((request.transaction === undefined) === (request.serializedTransaction === undefined)) {
    throw new AirlockError('invalid_request', 'payload needs exactly one of transaction or serializedTransaction');
  }
  if (request.serializedTransaction !== undefined) return readSerialized(request.serializedTransaction, chainId);
  if (chainId === undefined) throw new AirlockError('invalid_request', 'chainId is required');
  const tx = readFields(readRecord(request.transaction, 'transaction'), chainId, signer);
  return { tx, unsigned: unsignedSerialization(tx) };
}

function readFields(tx: Record<string, unknown>, chainId: number, signer: SignerContext | undefined): EvmTransaction {
  for (const key of UNSUPPORTED_TYPE_FIELDS) {
    if (key in tx) throw new AirlockError('undecodable_payload', `transaction.${key}: blob transactions are not supported`);
  }
  for (const key of SIGNATURE_FIELDS) {
    if (key in tx) throw new AirlockError('invalid_request', `transaction.${key}: the transaction must be unsigned`);
  }
  rejectUnknownKeys(tx, TRANSACTION_FIELDS, 'transaction');

  if (tx.chainId !== undefined && readChainId(tx.chainId, 'transaction.chainId') !== chainId) {
    throw new AirlockError('chain_mismatch', 'transaction.chainId differs from chainId');
  }
  if (tx.from !== undefined && signer && readAddress(tx.from, 'transaction.from') !== signer.address.toLowerCase()) {
    throw new AirlockError('invalid_request', 'transaction.from is not the signing agent');
  }

  const hasLegacyFee = tx.gasPrice !== undefined;
  const has1559Fee = tx.maxFeePerGas !== undefined || tx.maxPriorityFeePerGas !== undefined;
  const type = readType(tx.type, hasLegacyFee, has1559Fee, tx.authorizationList !== undefined);

  if (tx.gas !== undefined && tx.gasLimit !== undefined && readQuantity(tx.gas, 'transaction.gas') !== readQuantity(tx.gasLimit, 'transaction.gasLimit')) {
    throw new AirlockError('invalid_request', 'transaction.gas and transaction.gasLimit differ');
  }
  if (tx.gas === undefined && tx.gasLimit === undefined) throw new AirlockError('invalid_request', 'transaction.gas is required');
  if (tx.nonce === undefined) throw new AirlockError('invalid_request', 'transaction.nonce is required');
  if (tx.data !== undefined && tx.input !== undefined && readHex(tx.data, 'transaction.data') !== readHex(tx.input, 'transaction.input')) {
    throw new AirlockError('invalid_request', 'transaction.data and transaction.input differ');
  }
  const rawData = tx.data ?? tx.input;

  const result: EvmTransaction = {
    type,
    chainId,
    value: tx.value === undefined ? 0n : readQuantity(tx.value, 'transaction.value'),
    data: rawData === undefined ? '0x' : readHex(rawData, tx.data === undefined ? 'transaction.input' : 'transaction.data'),
    nonce: readSafeInteger(tx.nonce, 'transaction.nonce'),
    gas: tx.gas !== undefined ? readQuantity(tx.gas, 'transaction.gas') : readQuantity(tx.gasLimit, 'transaction.gasLimit'),
  };
  if (tx.to !== undefined && tx.to !== null) result.to = readAddress(tx.to, 'transaction.to');

  if (tx.authorizationList !== undefined && type !== 'eip7702') throw new AirlockError('invalid_request', `transaction.authorizationList is not allowed on an ${type} transaction`);
  if (type === 'eip1559' || type === 'eip7702') {
    if (hasLegacyFee) throw new AirlockError('invalid_request', `transaction.gasPrice is not allowed on an ${type} transaction`);
    if (tx.maxFeePerGas === undefined) throw new AirlockError('invalid_request', 'transaction.maxFeePerGas is required');
    if (tx.maxPriorityFeePerGas === undefined) throw new AirlockError('invalid_request', 'transaction.maxPriorityFeePerGas is required');
    result.maxFeePerGas = readQuantity(tx.maxFeePerGas, 'transaction.maxFeePerGas');
    result.maxPriorityFeePerGas = readQuantity(tx.maxPriorityFeePerGas, 'transaction.maxPriorityFeePerGas');
    if (tx.accessList !== undefined) result.accessList = readAccessList(tx.accessList);
    if (type === 'eip7702') {
      // EIP-7702: a type-4 transaction has a destination and at least one authorization.
      if (result.to === undefined) throw new AirlockError('invalid_request', 'transaction.to is required on an eip7702 transaction');
      const { list, entries } = readAuthorizationList(tx.authorizationList);
      result.authorizationList = list;
      result.delegations = entries;
    }
  } else if (type === 'eip2930') {
    if (has1559Fee) throw new AirlockError('invalid_request', 'transaction.maxFeePerGas is not allowed on an eip2930 transaction');
    if (!hasLegacyFee) throw new AirlockError('invalid_request', 'transaction.gasPrice is required');
    result.gasPrice = readQuantity(tx.gasPrice, 'transaction.gasPrice');
    result.accessList = tx.accessList === undefined ? [] : readAccessList(tx.accessList);
  } else {
    if (has1559Fee) throw new AirlockError('invalid_request', 'transaction.maxFeePerGas is not allowed on a legacy transaction');
    if (tx.accessList !== undefined) throw new AirlockError('invalid_request', 'transaction.accessList is not allowed on a legacy transaction');
    if (!hasLegacyFee) throw new AirlockError('invalid_request', 'transaction.gasPrice is required');
    result.gasPrice = readQuantity(tx.gasPrice, 'transaction.gasPrice');
  }
  assertFeeOrder(result);
  return result;
}

function readType(value: unknown, hasLegacyFee: boolean, has1559Fee: boolean, hasAuthorizations: boolean): TransactionType {
  if (value === undefined) {
    if (hasAuthorizations) return 'eip7702';
    if (hasLegacyFee && !has1559Fee) return 'legacy';
    if (has1559Fee && !hasLegacyFee) return 'eip1559';
    throw new AirlockError('invalid_request', 'transaction.type is required unless exactly one of gasPrice or maxFeePerGas is given');
  }
  const type = typeof value === 'string' ? transactionTypeOf(value) : undefined;
  if (type === undefined) throw new AirlockError('invalid_request', "transaction.type must be 'eip1559', 'eip2930', 'eip7702' or 'legacy'");
  if (type === 'unsupported') throw new AirlockError('undecodable_payload', 'transaction.type: blob (eip4844) transactions are not supported');
  return type;
}

function readAccessList(value: unknown): AccessList {
  if (!Array.isArray(value)) throw new AirlockError('invalid_request', 'transaction.accessList must be an array');
  return value.map((entry, i) => {
    const path = `transaction.accessList[${i}]`;
    const item = readRecord(entry, path);
    rejectUnknownKeys(item, ['address', 'storageKeys'], path);
    if (!Array.isArray(item.storageKeys)) throw new AirlockError('invalid_request', `${path}.storageKeys must be an array`);
    return {
      address: readAddress(item.address, `${path}.address`),
      storageKeys: item.storageKeys.map((key, j) => readHex(key, `${path}.storageKeys[${j}]`, 32)),
    };
  });
}

function assertFeeOrder(tx: EvmTransaction): void {
  if (tx.maxPriorityFeePerGas !== undefined && tx.maxFeePerGas !== undefined && tx.maxPriorityFeePerGas > tx.maxFeePerGas) {
    throw new AirlockError('invalid_request', 'transaction.maxPriorityFeePerGas is above transaction.maxFeePerGas');
  }
}

function readSerialized(value: unknown, chainId: number | undefined): ReadTransaction {
  const hex = readHex(value, 'serializedTransaction');
  let parsed: ReturnType<typeof parseTransaction>;
  try {
    parsed = parseTransaction(hex);
  } catch (cause) {
    throw new AirlockError('undecodable_payload', 'serializedTransaction is not a valid transaction encoding', { cause });
  }
  if (parsed.type !== 'eip1559' && parsed.type !== 'legacy' && parsed.type !== 'eip2930' && parsed.type !== 'eip7702') {
    throw new AirlockError('undecodable_payload', 'serializedTransaction: blob (eip4844) transactions are not supported');
  }
  if (parsed.r !== undefined || parsed.s !== undefined || parsed.yParity !== undefined || (parsed.v !== undefined && parsed.type !== 'legacy')) {
    throw new AirlockError('invalid_request', 'serializedTransaction must be unsigned');
  }
  if (parsed.chainId !== undefined && chainId !== undefined && parsed.chainId !== chainId) {
    throw new AirlockError('chain_mismatch', 'serializedTransaction names a different chain than chainId');
  }
  const txChain = parsed.chainId ?? chainId;
  if (txChain === undefined) throw new AirlockError('invalid_request', 'chainId is required for a legacy transaction without one');
  const tx: EvmTransaction = {
    type: parsed.type,
    chainId: txChain,
    value: parsed.value ?? 0n,
    data: (parsed.data ?? '0x').toLowerCase() as Hex,
    nonce: parsed.nonce ?? 0,
    gas: parsed.gas ?? 0n,
  };
  if (parsed.to) tx.to = parsed.to.toLowerCase() as `0x${string}`;
  const accessList = (parsed.type !== 'legacy' ? parsed.accessList ?? [] : []).map((a) => ({ address: a.address.toLowerCase() as `0x${string}`, storageKeys: a.storageKeys.map((k) => k.toLowerCase() as Hex) }));
  if (parsed.type === 'eip1559' || parsed.type === 'eip7702') {
    tx.maxFeePerGas = parsed.maxFeePerGas ?? 0n;
    tx.maxPriorityFeePerGas = parsed.maxPriorityFeePerGas ?? 0n;
    if (accessList.length > 0) tx.accessList = accessList;
    if (parsed.type === 'eip7702') {
      if (tx.to === undefined) throw new AirlockError('invalid_request', 'serializedTransaction: an eip7702 transaction needs a destination');
      const { list, entries } = readAuthorizationList(parsed.authorizationList ?? []);
      tx.authorizationList = list;
      tx.delegations = entries;
    }
  } else {
    tx.gasPrice = parsed.gasPrice ?? 0n;
    if (parsed.type === 'eip2930') tx.accessList = accessList;
  }
  assertFeeOrder(tx);
  // What we sign must be what was sent: re-serializing must give the same bytes (legacy pre-EIP-155 input excepted,
  // since we always sign legacy transactions with the EIP-155 chain id).
  const unsigned = unsignedSerialization(tx);
  if ((parsed.type !== 'legacy' || parsed.chainId !== undefined) && unsigned !== hex) {
    throw new AirlockError('undecodable_payload', 'serializedTransaction is not in canonical form');
  }
  return { tx, unsigned };
}

/** The unsigned serialization, lowercase hex (EIP-2718 typed envelope, or EIP-155 RLP for legacy). */
function unsignedSerialization(tx: EvmTransaction): Hex {
  return serializeTransaction(toSerializable(tx)).toLowerCase() as Hex;
}

export function toSerializable(tx: EvmTransaction): TransactionSerializable {
  const base = { chainId: tx.chainId, nonce: tx.nonce, gas: tx.gas, value: tx.value, data: tx.data, to: tx.to ?? null };
  if (tx.type === 'legacy') return { ...base, type: 'legacy', gasPrice: tx.gasPrice };
  if (tx.type === 'eip2930') return { ...base, type: 'eip2930', gasPrice: tx.gasPrice, accessList: tx.accessList ?? [] };
  if (tx.type === 'eip7702') {
    return {
      ...base,
      to: tx.to!,
      type: 'eip7702',
      maxFeePerGas: tx.maxFeePerGas,
      maxPriorityFeePerGas: tx.maxPriorityFeePerGas,
      authorizationList: tx.authorizationList ?? [],
      ...(tx.accessList ? { accessList: tx.accessList } : {}),
    };
  }
  return {
    ...base,
    type: 'eip1559',
    maxFeePerGas: tx.maxFeePerGas,
    maxPriorityFeePerGas: tx.maxPriorityFeePerGas,
    ...(tx.accessList ? { accessList: tx.accessList } : {}),
  };
}

/** The sighash: keccak256 of the unsigned serialization (EIP-1559 typed envelope, or EIP-155 RLP for legacy). */
export function transactionDigest(tx: EvmTransaction): Uint8Array {
  return keccak256Bytes(hexToBytes(unsignedSerialization(tx)));
}

/**
 * Reads, serializes (once) and hashes the transaction. The unsigned bytes travel in `prepared`: finalize builds
 * the signed transaction from exactly them, so what is broadcast is what was hashed, approved and signed.
 */
export function decodeTransactionRequest(payload: unknown, signer: SignerContext, abis?: AbiRegistry): DecodedRequest {
  const { tx, unsigned: unsignedHex } = readTransaction(payload, signer);
  const unsigned = hexToBytes(unsignedHex);
  const prepared: PreparedTransaction = { kind: 'evm.transaction', type: tx.type, chainId: tx.chainId, unsigned };
  const chain = caip2(tx.chainId);
  const from = signer.address.toLowerCase();

  let decoded: Omit<DecodedCall, 'call' | 'to'> & { to?: string; call?: DecodedCall['call'] };
  // A contract creation sends its value to the contract it creates, whose init code can forward it anywhere. That
  // address is known before signing (CREATE: keccak256(rlp([sender, nonce]))), so it is the counterparty: intent.to
  // and the value's recipient, judged by destinations, per_destination budgets and `to` denies like any other. With
  // no recipient, a destinations allowlist saw no counterparty at all and passed the value (found by review).
  const recipient = tx.to ?? createdContract(from, tx.nonce);
  if (tx.to === undefined) decoded = { kind: 'contract.deploy', to: recipient, spends: [], approvals: [] };
  else if (tx.data === '0x') decoded = { kind: 'native.transfer', to: tx.to, spends: [], approvals: [] };
  else decoded = decodeCall(chain, tx.to, tx.data, abis, 'transaction.data');

  const spends: Spend[] = [];
  // Native value always leaves the agent, whatever the call does with it.
  if (tx.value > 0n) spends.push({ asset: nativeAsset(chain), amount: tx.value, to: recipient, kind: 'value' });
  spends.push(...decoded.spends);
  const fees = feeFields(tx);
  if (fees.maxTotalFee !== undefined && fees.maxTotalFee > 0n) spends.push({ asset: nativeAsset(chain), amount: fees.maxTotalFee, kind: 'fee' });

  const intent: Intent = {
    action: 'evm.transaction',
    chain,
    kind: decoded.kind,
    from,
    ...(decoded.to ? { to: decoded.to } : {}),
    spends,
    approvals: decoded.approvals,
    ...(decoded.call ? { call: decoded.call } : {}),
    fees,
    ...(tx.delegations ? { delegation: { authorizations: tx.delegations } } : {}),
    summary: '',
  };
  intent.summary = summarise(intent, tx);
  if (intent.delegation) intent.summary += `, installing ${intent.delegation.authorizations.map((a) => `${a.delegate} in ${a.authority}`).join(', ')} (EIP-7702)`;
  return { intent, digest: keccak256Bytes(unsigned), prepared };
}

/** The address a CREATE from `from` at `nonce` deploys to (lowercase), as the chain computes it. */
function createdContract(from: string, nonce: number): `0x${string}` {
  return getContractAddress({ opcode: 'CREATE', from: from as `0x${string}`, nonce: BigInt(nonce) }).toLowerCase() as `0x${string}`;
}

function feeFields(tx: EvmTransaction): FeeFields {
  const perGas = tx.maxFeePerGas ?? tx.gasPrice ?? 0n;
  const fees: FeeFields = { gasLimit: tx.gas, maxTotalFee: tx.gas * perGas };
  if (tx.type === 'eip1559' || tx.type === 'eip7702') {
    fees.maxFeePerGas = tx.maxFeePerGas;
    fees.maxPriorityFeePerGas = tx.maxPriorityFeePerGas;
  } else fees.gasPrice = tx.gasPrice;
  return fees;
}

function summarise(intent: Intent, tx: EvmTransaction): string {
  const on = `on ${intent.chain}`;
  const fee = `max fee ${intent.fees?.maxTotalFee ?? 0n}`;
  const valueNote = tx.value > 0n ? ` with value ${tx.value}` : '';
  const main = intent.spends.find((s) => s.kind === 'transfer');
  const approval = intent.approvals[0];
  switch (intent.kind) {
    case 'native.transfer':
      return `transfer ${tx.value} of ${nativeAsset(intent.chain)} to ${intent.to} ${on} (${fee})`;
    case 'erc20.transfer':
    case 'erc20.transfer_from':
      return `transfer ${main?.amount} of ${main?.asset} to ${main?.to}${intent.kind === 'erc20.transfer_from' ? ` from ${String(intent.call?.args?.from)}` : ''}${valueNote} ${on} (${fee})`;
    case 'erc20.approve':
    case 'erc20.increase_allowance':
      return `${intent.kind === 'erc20.approve' ? 'approve' : 'increase allowance of'} ${approval?.spender} to spend ${approval?.unlimited ? 'UNLIMITED' : approval?.amount} of ${approval?.asset}${valueNote} ${on} (${fee})`;
    case 'contract.deploy':
      return `deploy a contract at ${intent.to} (${(tx.data.length - 2) / 2} bytes of init code)${valueNote} ${on} (${fee})`;
    default:
      return `call ${intent.call?.functionName ?? intent.call?.selector} on ${intent.to}${valueNote} ${on} (${fee})`;
  }
}
