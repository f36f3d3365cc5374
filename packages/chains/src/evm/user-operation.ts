// evm.user_operation: an ERC-4337 user operation for EntryPoint v0.6, v0.7 or v0.8, sent whole (never as a bare
// hash). Airlock reads every field, recomputes the EntryPoint's userOpHash itself (v0.6/v0.7: keccak of the
// ABI-encoded packed fields, EntryPoint and chain id; v0.8: the EIP-712 hash of PackedUserOperation under the
// "ERC4337" domain), decodes the account's execute/executeBatch into the calls it runs, and signs that hash
// (raw, as Coinbase Smart Wallet and Simple7702Account verify it, or EIP-191 over it, as SimpleAccount v0.7 and
// Solady verify it). The same reading serves PackedUserOperation typed data (typed-data.ts).
import { AirlockError, nativeAsset, nonceKey } from '@airlock/core';
import type { AbiDeclaration, Action, DecodedRequest, Intent, SignerContext, Spend, UserOperationInfo } from '@airlock/core';
import { concat, encodeAbiParameters, hashMessage, hashTypedData, hexToBytes, keccak256, pad, toHex } from 'viem';
import type { Hex, TypedDataDomain, TypedDataParameter } from 'viem';
import type { AbiRegistry } from './abi-registry.ts';
import { enrichBatchCalls, enrichCall } from './abi-moves.ts';
import { decodeAccountCalls, type AccountCall } from './account-calls.ts';
import { decodeCall } from './calldata.ts';
import {
  caip2, readAddress, readChainId, readHex, readQuantity, readRecord, rejectUnknownKeys,
} from './fields.ts';

export type EntryPointVersion = '0.6' | '0.7' | '0.8';
const VERSIONS: readonly string[] = ['0.6', '0.7', '0.8'];
const MAX_UINT128 = (1n << 128n) - 1n;
/** EntryPoint v0.8: an initCode starting with this 20-byte marker means "the sender is an EIP-7702 account". */
const EIP7702_MARKER = '0x7702000000000000000000000000000000000000';

/** A user operation after validation, in the terms the hash and policy use (the v0.7+ packed layout, unpacked). */
export interface NormalisedUserOperation {
  version: EntryPointVersion;
  entryPoint: `0x${string}`;
  chainId: number;
  sender: `0x${string}`;
  nonce: bigint;
  /** initCode as the hash covers it (v0.8, EIP-7702: the delegate in place of the marker). */
  initCode: Hex;
  callData: Hex;
  callGasLimit: bigint;
  verificationGasLimit: bigint;
  preVerificationGas: bigint;
  maxFeePerGas: bigint;
  maxPriorityFeePerGas: bigint;
  paymasterAndData: Hex;
  /**
   * The paymaster that pays for gas, absent when none does. The EntryPoint (v0.6, v0.7, v0.8) reads a paymasterAndData
   * naming the zero address as no paymaster (the account pays, v0.6 multiplies verification gas by 1): so does this,
   * the bytes staying as sent in `paymasterAndData` (found by review: the prefund was dropped from the spends).
   */
  paymaster?: `0x${string}`;
  paymasterVerificationGasLimit: bigint;
  paymasterPostOpGasLimit: bigint;
  /** The initCode named the EIP-7702 marker (factory `0x7702`). */
  eip7702: boolean;
}

/** The v0.8 EIP-712 type of a user operation (also what typed-data requests must match exactly). */
export const PACKED_USER_OPERATION_TYPE = [
  { name: 'sender', type: 'address' },
  { name: 'nonce', type: 'uint256' },
  { name: 'initCode', type: 'bytes' },
  { name: 'callData', type: 'bytes' },
  { name: 'accountGasLimits', type: 'bytes32' },
  { name: 'preVerificationGas', type: 'uint256' },
  { name: 'gasFees', type: 'bytes32' },
  { name: 'paymasterAndData', type: 'bytes' },
] as const;

const V06_FIELDS = ['sender', 'nonce', 'initCode', 'callData', 'callGasLimit', 'verificationGasLimit', 'preVerificationGas', 'maxFeePerGas', 'maxPriorityFeePerGas', 'paymasterAndData', 'signature'];
const UNPACKED_FIELDS = [
  'sender', 'nonce', 'factory', 'factoryData', 'callData', 'callGasLimit', 'verificationGasLimit', 'preVerificationGas', 'maxFeePerGas',
  'maxPriorityFeePerGas', 'paymaster', 'paymasterVerificationGasLimit', 'paymasterPostOpGasLimit', 'paymasterData', 'signature', 'authorization',
];
const PACKED_FIELDS = ['sender', 'nonce', 'initCode', 'callData', 'accountGasLimits', 'preVerificationGas', 'gasFees', 'paymasterAndData', 'signature'];

export interface UserOperationRequest {
  op: NormalisedUserOperation;
  signing: 'raw' | 'eip191';
}

export function readUserOperationRequest(payload: unknown): UserOperationRequest {
  const request = readRecord(payload, 'payload');
  rejectUnknownKeys(request, ['chainId', 'entryPoint', 'entryPointVersion', 'userOperation', 'signing'], 'payload');
  if (request.chainId === undefined) throw new AirlockError('invalid_request', 'chainId is required');
  const chainId = readChainId(request.chainId, 'chainId');
  const entryPoint = readAddress(request.entryPoint, 'entryPoint');
  if (typeof request.entryPointVersion !== 'string' || !VERSIONS.includes(request.entryPointVersion)) {
    throw new AirlockError('invalid_request', "entryPointVersion must be '0.6', '0.7' or '0.8'");
  }
  const version = request.entryPointVersion as EntryPointVersion;
  const signing = request.signing ?? 'raw';
  if (signing !== 'raw' && signing !== 'eip191') throw new AirlockError('invalid_request', "signing must be 'raw' (the userOpHash itself) or 'eip191' (a personal message over it)");
  const op = readRecord(request.userOperation, 'userOperation');
  const base = { version, entryPoint, chainId };
  if (version === '0.6') return { op: readV06(op, base), signing };
  return { op: 'accountGasLimits' in op ? readPacked(op, base, 'userOperation') : readUnpacked(op, base), signing };
}

type Base = Pick<NormalisedUserOperation, 'version' | 'entryPoint' | 'chainId'>;

const ZERO_ADDRESS = '0x0000000000000000000000000000000000000000';

/** The `paymaster` field for an address the operation names: none for the zero address, which the EntryPoint reads as no paymaster. */
function paymasterField(address: `0x${string}` | undefined): { paymaster?: `0x${string}` } {
  return address === undefined || address.toLowerCase() === ZERO_ADDRESS ? {} : { paymaster: address };
}

const gas = (v: unknown, path: string) => readQuantity(v ?? 0, path, MAX_UINT128);

function readV06(op: Record<string, unknown>, base: Base): NormalisedUserOperation {
  rejectUnknownKeys(op, V06_FIELDS, 'userOperation');
  const initCode = readHex(op.initCode ?? '0x', 'userOperation.initCode');
  const paymasterAndData = readHex(op.paymasterAndData ?? '0x', 'userOperation.paymasterAndData');
  if (paymasterAndData.length > 2 && paymasterAndData.length < 42) throw new AirlockError('undecodable_payload', 'userOperation.paymasterAndData is shorter than a paymaster address');
  return {
    ...base,
    ...readCommon(op),
    initCode,
    paymasterAndData,
    ...paymasterField(paymasterAndData.length > 2 ? paymasterAndData.slice(0, 42) as `0x${string}` : undefined),
    paymasterVerificationGasLimit: 0n,
    paymasterPostOpGasLimit: 0n,
    eip7702: false,
  };
}

function readCommon(op: Record<string, unknown>) {
  return {
    sender: readAddress(op.sender, 'userOperation.sender'),
    nonce: readQuantity(op.nonce, 'userOperation.nonce'),
    callData: readHex(op.callData ?? '0x', 'userOperation.callData'),
    preVerificationGas: readQuantity(op.preVerificationGas ?? 0, 'userOperation.preVerificationGas'),
    callGasLimit: gas(op.callGasLimit, 'userOperation.callGasLimit'),
    verificationGasLimit: gas(op.verificationGasLimit, 'userOperation.verificationGasLimit'),
    maxFeePerGas: gas(op.maxFeePerGas, 'userOperation.maxFeePerGas'),
    maxPriorityFeePerGas: gas(op.maxPriorityFeePerGas, 'userOperation.maxPriorityFeePerGas'),
  };
}

/** viem's UserOperation form for v0.7/v0.8: factory and paymaster fields apart. */
function readUnpacked(op: Record<string, unknown>, base: Base): NormalisedUserOperation {
  rejectUnknownKeys(op, UNPACKED_FIELDS, 'userOperation');
  const factory = op.factory === undefined || op.factory === null ? undefined : readHex(op.factory, 'userOperation.factory');
  const factoryData = readHex(op.factoryData ?? '0x', 'userOperation.factoryData');
  let initCode: Hex = '0x';
  let eip7702 = false;
  if (factory === '0x7702' || factory === EIP7702_MARKER) {
    if (base.version !== '0.8') throw new AirlockError('undecodable_payload', 'userOperation.factory 0x7702 (an EIP-7702 account) needs EntryPoint v0.8');
    // The v0.8 EntryPoint hashes the sender's delegate in place of the marker: the request must name it.
    const authorization = readRecord(op.authorization, 'userOperation.authorization');
    initCode = concat([readAddress(authorization.address, 'userOperation.authorization.address'), factoryData]).toLowerCase() as Hex;
    eip7702 = true;
  } else if (factory !== undefined) {
    initCode = concat([readAddress(factory, 'userOperation.factory'), factoryData]).toLowerCase() as Hex;
  } else if (factoryData !== '0x') throw new AirlockError('invalid_request', 'userOperation.factoryData needs userOperation.factory');
  const paymaster = op.paymaster === undefined || op.paymaster === null ? undefined : readAddress(op.paymaster, 'userOperation.paymaster');
  const paymasterVerificationGasLimit = gas(op.paymasterVerificationGasLimit, 'userOperation.paymasterVerificationGasLimit');
  const paymasterPostOpGasLimit = gas(op.paymasterPostOpGasLimit, 'userOperation.paymasterPostOpGasLimit');
  const paymasterData = readHex(op.paymasterData ?? '0x', 'userOperation.paymasterData');
  if (!paymaster && (paymasterData !== '0x' || paymasterVerificationGasLimit !== 0n || paymasterPostOpGasLimit !== 0n)) {
    throw new AirlockError('invalid_request', 'userOperation paymaster fields need userOperation.paymaster');
  }
  const paymasterAndData = paymaster ? concat([paymaster, pad(toHex(paymasterVerificationGasLimit), { size: 16 }), pad(toHex(paymasterPostOpGasLimit), { size: 16 }), paymasterData]).toLowerCase() as Hex : '0x';
  return {
    ...base,
    ...readCommon(op),
    initCode,
    paymasterAndData,
    ...paymasterField(paymaster),
    paymasterVerificationGasLimit,
    paymasterPostOpGasLimit,
    eip7702,
  };
}

/** The PackedUserOperation layout (what the EntryPoint receives and v0.8 hashes). `signature` is not hashed and is dropped. */
export function readPacked(op: Record<string, unknown>, base: Base, path: string): NormalisedUserOperation {
  rejectUnknownKeys(op, PACKED_FIELDS, path);
  const initCode = readHex(op.initCode ?? '0x', `${path}.initCode`);
  if (initCode.startsWith(EIP7702_MARKER)) {
    throw new AirlockError('undecodable_payload', `${path}.initCode carries the EIP-7702 marker: send the operation unpacked with authorization.address (the delegate the EntryPoint hashes)`);
  }
  const accountGasLimits = readHex(op.accountGasLimits, `${path}.accountGasLimits`, 32);
  const gasFees = readHex(op.gasFees, `${path}.gasFees`, 32);
  const paymasterAndData = readHex(op.paymasterAndData ?? '0x', `${path}.paymasterAndData`);
  const high = (word: Hex) => BigInt(`0x${word.slice(2, 34)}`);
  const low = (word: Hex) => BigInt(`0x${word.slice(34)}`);
  let paymaster: `0x${string}` | undefined;
  let paymasterVerificationGasLimit = 0n;
  let paymasterPostOpGasLimit = 0n;
  if (paymasterAndData !== '0x') {
    // paymaster (20 bytes) || verification gas (16) || postOp gas (16) || paymaster data.
    if (paymasterAndData.length < 2 + 52 * 2) throw new AirlockError('undecodable_payload', `${path}.paymasterAndData is shorter than paymaster + its two gas limits`);
    paymaster = paymasterAndData.slice(0, 42) as `0x${string}`;
    paymasterVerificationGasLimit = BigInt(`0x${paymasterAndData.slice(42, 74)}`);
    paymasterPostOpGasLimit = BigInt(`0x${paymasterAndData.slice(74, 106)}`);
  }
  return {
    ...base,
    sender: readAddress(op.sender, `${path}.sender`),
    nonce: readQuantity(op.nonce, `${path}.nonce`),
    callData: readHex(op.callData ?? '0x', `${path}.callData`),
    preVerificationGas: readQuantity(op.preVerificationGas ?? 0, `${path}.preVerificationGas`),
    initCode,
    verificationGasLimit: high(accountGasLimits),
    callGasLimit: low(accountGasLimits),
    maxPriorityFeePerGas: high(gasFees),
    maxFeePerGas: low(gasFees),
    paymasterAndData,
    ...paymasterField(paymaster),
    paymasterVerificationGasLimit,
    paymasterPostOpGasLimit,
    eip7702: false,
  };
}

const packWords = (hi: bigint, lo: bigint) => concat([pad(toHex(hi), { size: 16 }), pad(toHex(lo), { size: 16 })]);

/** The v0.8 typed data of an operation (the EIP-712 message the account's owner signs). */
export function userOperationTypedData(op: NormalisedUserOperation) {
  return {
    domain: { name: 'ERC4337', version: '1', chainId: op.chainId, verifyingContract: op.entryPoint },
    types: { PackedUserOperation: PACKED_USER_OPERATION_TYPE },
    primaryType: 'PackedUserOperation' as const,
    message: {
      sender: op.sender,
      nonce: op.nonce,
      initCode: op.initCode,
      callData: op.callData,
      accountGasLimits: packWords(op.verificationGasLimit, op.callGasLimit),
      preVerificationGas: op.preVerificationGas,
      gasFees: packWords(op.maxPriorityFeePerGas, op.maxFeePerGas),
      paymasterAndData: op.paymasterAndData,
    },
  };
}

/** The EntryPoint's getUserOpHash, computed here from the fields (ERC-4337; EntryPoint v0.6, v0.7, v0.8 sources). */
export function userOperationHash(op: NormalisedUserOperation): Hex {
  if (op.version === '0.8') return hashTypedData(userOperationTypedData(op));
  const inner = op.version === '0.6'
    ? encodeAbiParameters(
      [{ type: 'address' }, { type: 'uint256' }, { type: 'bytes32' }, { type: 'bytes32' }, { type: 'uint256' }, { type: 'uint256' }, { type: 'uint256' }, { type: 'uint256' }, { type: 'uint256' }, { type: 'bytes32' }],
      [op.sender, op.nonce, keccak256(op.initCode), keccak256(op.callData), op.callGasLimit, op.verificationGasLimit, op.preVerificationGas, op.maxFeePerGas, op.maxPriorityFeePerGas, keccak256(op.paymasterAndData)],
    )
    : encodeAbiParameters(
      [{ type: 'address' }, { type: 'uint256' }, { type: 'bytes32' }, { type: 'bytes32' }, { type: 'bytes32' }, { type: 'uint256' }, { type: 'bytes32' }, { type: 'bytes32' }],
      [op.sender, op.nonce, keccak256(op.initCode), keccak256(op.callData), packWords(op.verificationGasLimit, op.callGasLimit), op.preVerificationGas, packWords(op.maxPriorityFeePerGas, op.maxFeePerGas), keccak256(op.paymasterAndData)],
    );
  return keccak256(encodeAbiParameters([{ type: 'bytes32' }, { type: 'address' }, { type: 'uint256' }], [keccak256(inner), op.entryPoint, BigInt(op.chainId)]));
}

/** All the gas the operation may buy: what the EntryPoint's prefund multiplies by maxFeePerGas. */
export function totalGasOf(op: NormalisedUserOperation): bigint {
  // v0.6 charges verificationGasLimit three times when a paymaster is used (validation, postOp, and margin).
  if (op.version === '0.6') return op.callGasLimit + op.verificationGasLimit * (op.paymaster ? 3n : 1n) + op.preVerificationGas;
  return op.callGasLimit + op.verificationGasLimit + op.preVerificationGas + op.paymasterVerificationGasLimit + op.paymasterPostOpGasLimit;
}

/** One call the account makes, as the intent a transaction from the account making it would decode to. */
function callIntent(action: Action, chain: string, sender: string, call: AccountCall, abis: AbiRegistry | undefined, path: string): Intent {
  const decoded = call.data === '0x'
    ? { kind: 'native.transfer' as const, to: call.to, spends: [] as Spend[], approvals: [], call: undefined }
    : decodeCall(chain, call.to, call.data, abis, path);
  const spends: Spend[] = [];
  if (call.value > 0n) spends.push({ asset: nativeAsset(chain), amount: call.value, to: call.to, kind: 'value' });
  spends.push(...decoded.spends);
  const intent: Intent = {
    action,
    chain,
    kind: decoded.kind,
    from: sender,
    to: decoded.to,
    spends,
    approvals: decoded.approvals,
    ...(decoded.call ? { call: decoded.call } : {}),
    summary: '',
  };
  intent.summary = callSummary(intent, call.value);
  return intent;
}

function callSummary(intent: Intent, value: bigint): string {
  const moved = intent.spends.filter((s) => s.kind === 'transfer').map((s) => `${s.amount} of ${s.asset} to ${s.to}`);
  const approved = intent.approvals.map((a) => `approve ${a.spender} for ${a.unlimited ? 'UNLIMITED' : a.amount} of ${a.asset}`);
  const what = intent.kind === 'native.transfer' ? `transfer ${value} of ${nativeAsset(intent.chain)} to ${intent.to}`
    : [...moved.map((m) => `transfer ${m}`), ...approved].join(', ') || `call ${intent.call?.functionName ?? intent.call?.selector} on ${intent.to}`;
  return value > 0n && intent.kind !== 'native.transfer' ? `${what} with value ${value}` : what;
}

/**
 * The intent of an operation: its calls (each an intent), and as a whole the calls' spends and approvals added
 * up plus the prefund (a fee, unless a paymaster pays gas). `signing` says how the hash is signed.
 */
export function userOperationIntent(op: NormalisedUserOperation, signing: UserOperationInfo['signing'], signer: SignerContext, abis: AbiRegistry | undefined): Intent {
  const action: Action = 'evm.user_operation';
  const chain = caip2(op.chainId);
  const decoded = decodeAccountCalls(op.callData, 'userOperation.callData');
  const calls = decoded.calls.map((c, i) => callIntent(action, chain, op.sender, c, abis, `userOperation.callData call ${i + 1}`));
  const totalGas = totalGasOf(op);
  const prefund = totalGas * op.maxFeePerGas;
  const spends: Spend[] = calls.flatMap((c) => c.spends);
  // With a paymaster, gas is the paymaster's: the account's exposure to it is what the paymaster allowlist is for.
  if (!op.paymaster && prefund > 0n) spends.push({ asset: nativeAsset(chain), amount: prefund, kind: 'fee' });
  const factory = op.initCode.length >= 42 ? (op.eip7702 ? '0x7702' : op.initCode.slice(0, 42)) : undefined;
  const info: UserOperationInfo = {
    entryPoint: op.entryPoint,
    entryPointVersion: op.version,
    sender: op.sender,
    nonce: op.nonce,
    hash: userOperationHash(op),
    signing,
    accountCall: decoded.accountCall,
    calls,
    ...(op.paymaster ? { paymaster: op.paymaster } : {}),
    ...(factory ? { factory } : {}),
    totalGas,
    prefund,
  };
  return {
    action,
    chain,
    kind: 'erc4337.user_operation',
    from: signer.address.toLowerCase(),
    spends,
    approvals: calls.flatMap((c) => c.approvals),
    fees: { gasLimit: totalGas, maxFeePerGas: op.maxFeePerGas, maxPriorityFeePerGas: op.maxPriorityFeePerGas, maxTotalFee: prefund },
    // The EntryPoint runs one operation per (sender, nonce): of two signed over one nonce at most one can run, so
    // the second is released only as a byte-identical replay (same digest), never charged twice.
    nonceKeys: [nonceKey('user-operation', chain, op.entryPoint, op.sender, op.nonce, [signer.address])],
    userOperation: info,
    summary: userOperationSummary(chain, info),
  };
}

/** One line for humans: every call the operation runs, in order, as its (enriched) summary says it. */
function userOperationSummary(chain: string, op: UserOperationInfo): string {
  const what = op.calls.length === 0 ? 'undecoded callData' : op.calls.map((c, i) => `(${i + 1}) ${c.summary}`).join('; ');
  return `user operation of ${op.sender} via EntryPoint v${op.entryPointVersion} on ${chain}: ${what} (prefund up to ${op.prefund}${op.paymaster ? `, paid by paymaster ${op.paymaster}` : ''})`;
}

/** The digest the agent's key signs for an operation: the userOpHash, or EIP-191 over it. */
export function userOperationDigest(hash: Hex, signing: 'raw' | 'eip191'): Uint8Array {
  return hexToBytes(signing === 'raw' ? hash : hashMessage({ raw: hash }));
}

export function decodeUserOperationRequest(payload: unknown, signer: SignerContext, abis?: AbiRegistry): DecodedRequest {
  const { op, signing } = readUserOperationRequest(payload);
  const intent = userOperationIntent(op, signing, signer, abis);
  return { intent, digest: userOperationDigest(intent.userOperation!.hash as Hex, signing) };
}

/**
 * PackedUserOperation typed data (what v0.8 accounts such as Simple7702Account have their owner sign): the exact
 * type under the "ERC4337" version "1" domain of an EntryPoint. Anything else named PackedUserOperation stays
 * unknown typed data. The message's initCode is already the hashed form (a 7702 account's delegate in place).
 */
export function readUserOperationTypedData(data: {
  domain: TypedDataDomain;
  types: Record<string, readonly TypedDataParameter[]>;
  primaryType: string;
  message: Record<string, unknown>;
}): NormalisedUserOperation | undefined {
  const { domain, types, primaryType } = data;
  if (primaryType !== 'PackedUserOperation' || domain.name !== 'ERC4337' || domain.version !== '1' || !domain.verifyingContract || domain.chainId === undefined || domain.salt !== undefined) return undefined;
  const fields = types.PackedUserOperation;
  if (!fields || fields.length !== PACKED_USER_OPERATION_TYPE.length || !PACKED_USER_OPERATION_TYPE.every((f, i) => fields[i]?.name === f.name && fields[i]?.type === f.type)) return undefined;
  const message = data.message;
  const op = readPacked(
    { ...message, nonce: message.nonce as bigint, preVerificationGas: message.preVerificationGas as bigint },
    { version: '0.8', entryPoint: domain.verifyingContract.toLowerCase() as `0x${string}`, chainId: Number(domain.chainId) },
    'typedData.message',
  );
  return op;
}

/**
 * The ABIs policies register decode an operation's calls as they decode a transaction's (enrichCall): each call
 * is enriched, and the operation's spends, approvals and summary are built again from the enriched calls (a module
 * call's summary names the call it makes its account execute).
 */
export function enrichUserOperation(intent: Intent, abis: readonly AbiDeclaration[]): Intent {
  const op = intent.userOperation;
  if (!op) return enrichCall(intent, abis);
  const batch = enrichBatchCalls(intent, op.calls, abis);
  if (!batch) return intent;
  const userOperation = { ...op, calls: batch.calls };
  return { ...intent, spends: batch.spends, approvals: batch.approvals, userOperation, summary: userOperationSummary(intent.chain, userOperation) };
}
