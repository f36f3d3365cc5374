// Safe multisig transactions (EIP-712 `SafeTx`, Safe 1.3.0 and later): the agent co-signs as one owner, so what
// the Safe will execute is decoded before anything is signed. The outer call is read like a transaction from the
// Safe; a DELEGATECALL to a canonical MultiSend is read as its batch, every entry a call of its own; any other
// DELEGATECALL is a `contract.delegatecall` call (its code runs as the Safe: granted only by name); a gas refund
// is a `safe.gas_refund` call paying its worst case. Policy runs on each call and on their sum (Intent.safe).
import { AirlockError, SAFE_TX_FIELDS, SAFE_TX_PRIMARY_TYPE, erc20Asset, nativeAsset } from '@airlock/core';
import type { Approval, Intent, IntentKind, SafeTransactionInfo, Spend, TypedDataInfo } from '@airlock/core';
import { getMultiSendCallOnlyDeployments, getMultiSendDeployments } from '@safe-global/safe-deployments';
import { parseAbi, toFunctionSelector } from 'viem';
import type { Hex } from 'viem';
import type { AbiRegistry } from './abi-registry.ts';
import { decodeAccountCall } from './account-call.ts';
import { decodeStrict } from './calldata.ts';
import type { NormalisedTypedData } from './typed-data.ts';

const ZERO_ADDRESS = '0x0000000000000000000000000000000000000000';
const MULTI_SEND_ABI = parseAbi(['function multiSend(bytes transactions) payable']);
const MULTI_SEND_SELECTOR = toFunctionSelector(MULTI_SEND_ABI[0]);

/**
 * The Safe versions whose SafeTx this decoder reads (the EIP-712 domain carries chainId from 1.3.0 on), and so
 * whose MultiSend deployments it recognises. Addresses come from @safe-global/safe-deployments: every address
 * type (canonical, eip155, zkSync) of every listed version. They are deterministic deployments, so the code at
 * such an address is Safe's MultiSend on every chain that has code there.
 */
const SAFE_VERSIONS = ['1.3.0', '1.4.1', '1.5.0'] as const;

type MultiSendKind = 'MultiSend' | 'MultiSendCallOnly';

function knownMultiSends(): ReadonlyMap<string, MultiSendKind> {
  const known = new Map<string, MultiSendKind>();
  for (const version of SAFE_VERSIONS) {
    for (const [kind, deployments] of [['MultiSend', getMultiSendDeployments({ version })], ['MultiSendCallOnly', getMultiSendCallOnlyDeployments({ version })]] as const) {
      for (const d of Object.values(deployments?.deployments ?? {})) if (d) known.set(d.address.toLowerCase(), kind);
    }
  }
  if (known.size === 0) throw new Error('@safe-global/safe-deployments lists no MultiSend deployment');
  return known;
}
const MULTI_SENDS = knownMultiSends();

/** Whether `address` (any case) is a canonical MultiSend or MultiSendCallOnly deployment. */
export function isCanonicalMultiSend(address: string): boolean {
  return MULTI_SENDS.has(address.toLowerCase());
}

/**
 * What executing `execute()` inside execTransaction may cost beyond safeTxGas, for the refund's worst case: the
 * CALL itself (cold account 2,600, value transfer 9,000, new account 25,000) and Safe's bookkeeping around it,
 * plus copying `data` into memory (3 gas a word, and memory expansion: 3 a word + words^2/512). Safe measures
 * gasUsed around exactly that, and pays (gasUsed + baseGas) x gasPrice; over-estimating only charges more.
 */
const EXECUTE_OVERHEAD_GAS = 50_000n;

function worstCaseExecuteGas(safeTxGas: bigint, dataBytes: number): bigint {
  const words = BigInt(Math.ceil(dataBytes / 32) + 1);
  return safeTxGas + EXECUTE_OVERHEAD_GAS + 6n * words + (words * words) / 512n;
}

export interface DecodedSafeTransaction {
  kind: IntentKind;
  to?: string;
  spends: Spend[];
  approvals: Approval[];
  safe: SafeTransactionInfo;
  nonce: bigint;
  summary: string;
}

/** The SafeTx shape (primary type and exact fields), or nothing when the primary type is another. */
export function isSafeTxRequest(data: NormalisedTypedData): boolean {
  return data.primaryType === SAFE_TX_PRIMARY_TYPE;
}

/**
 * Decodes a SafeTx into the calls the Safe would execute. A typed-data request naming `SafeTx` with any other
 * field list or domain is refused rather than left as unknown typed data: a lookalike would otherwise be granted
 * by a rule written for Safe co-signing without its calls being read.
 */
export function decodeSafeTransaction(data: NormalisedTypedData, chain: string, abis: AbiRegistry | undefined): DecodedSafeTransaction {
  const fields = data.types[SAFE_TX_PRIMARY_TYPE];
  const sameShape = !!fields && fields.length === SAFE_TX_FIELDS.length && SAFE_TX_FIELDS.every(([name, type], i) => fields[i]?.name === name && fields[i]?.type === type);
  if (!sameShape) throw new AirlockError('undecodable_payload', 'SafeTx typed data must have the Safe 1.3+ fields (to, value, data, operation, safeTxGas, baseGas, gasPrice, gasToken, refundReceiver, nonce)');
  const { domain } = data;
  if (domain.chainId === undefined || domain.verifyingContract === undefined || domain.name !== undefined || domain.version !== undefined || domain.salt !== undefined) {
    throw new AirlockError('undecodable_payload', 'SafeTx typed data must have the Safe 1.3+ domain: exactly chainId and verifyingContract (the Safe)');
  }
  const safe = domain.verifyingContract.toLowerCase();
  const m = data.message;
  const to = m.to as string;
  const value = m.value as bigint;
  const callData = m.data as Hex;
  const operation = m.operation as bigint;
  const nonce = m.nonce as bigint;
  if (operation !== 0n && operation !== 1n) throw new AirlockError('undecodable_payload', 'typedData.message.operation must be 0 (CALL) or 1 (DELEGATECALL)');

  const typedData: TypedDataInfo = { primaryType: SAFE_TX_PRIMARY_TYPE, domain: { chainId: Number(domain.chainId), verifyingContract: safe } };
  const base = { chain, safe, typedData, abis };
  const calls: Intent[] = [];
  let multiSend: string | undefined;
  if (operation === 0n) calls.push(decodeSafeCall(base, 'call', to, value, callData, 'typedData.message.data'));
  else {
    if (value !== 0n) throw new AirlockError('undecodable_payload', 'typedData.message.value must be 0 with DELEGATECALL (a delegatecall sends no value)');
    const kind = MULTI_SENDS.get(to);
    if (kind && callData.startsWith(MULTI_SEND_SELECTOR)) {
      multiSend = to;
      calls.push(...decodeMultiSend(base, kind, callData));
    } else calls.push(decodeSafeCall(base, 'delegatecall', to, 0n, callData, 'typedData.message.data'));
  }
  const refund = gasRefund(base, m, callData);
  if (refund) calls.push(refund);

  const spends = calls.flatMap((c) => c.spends);
  const single = calls.length === 1 ? calls[0] : undefined;
  const info: SafeTransactionInfo = { address: safe, nonce, operation: operation === 0n ? 'call' : 'delegatecall', ...(multiSend ? { multiSend } : {}), calls };
  const what = calls.map((c) => c.summary).join('; ');
  return {
    kind: 'safe.transaction',
    ...(single?.to ? { to: single.to } : {}),
    spends,
    approvals: calls.flatMap((c) => c.approvals),
    safe: info,
    nonce,
    summary: `co-sign Safe ${safe} transaction #${nonce} on ${chain}${multiSend ? ` (MultiSend batch of ${calls.length - (refund ? 1 : 0)})` : ''}: ${what}`,
  };
}

interface SafeCallContext {
  chain: string;
  safe: string;
  typedData: TypedDataInfo;
  abis: AbiRegistry | undefined;
}

/** One call the Safe makes (`from` = the Safe), decoded like a transaction making it. */
function decodeSafeCall(ctx: SafeCallContext, operation: 'call' | 'delegatecall', to: string, value: bigint, data: Hex, path: string): Intent {
  return decodeAccountCall({ action: 'evm.typed_data', chain: ctx.chain, from: ctx.safe, accountLabel: 'the Safe', typedData: ctx.typedData, abis: ctx.abis }, operation, to, value, data, path);
}

/**
 * MultiSend's packed batch (Safe's MultiSend.sol): per entry, operation (1 byte), to (20), value (32), data
 * length (32), data. Read strictly: the ABI wrapper must be canonical, every entry complete, nothing trailing.
 */
function decodeMultiSend(ctx: SafeCallContext, kind: MultiSendKind, callData: Hex): Intent[] {
  const [transactions] = decodeStrict(MULTI_SEND_ABI[0], callData, 'typedData.message.data') as [Hex];
  const bytes = transactions.slice(2);
  const calls: Intent[] = [];
  let i = 0;
  while (i < bytes.length) {
    const path = `typedData.message.data (MultiSend entry ${calls.length + 1})`;
    if (bytes.length - i < 85 * 2) throw new AirlockError('undecodable_payload', `${path} is truncated`);
    const operation = Number.parseInt(bytes.slice(i, i + 2), 16);
    const to = `0x${bytes.slice(i + 2, i + 42)}`;
    const value = BigInt(`0x${bytes.slice(i + 42, i + 106)}`);
    const length = BigInt(`0x${bytes.slice(i + 106, i + 170)}`);
    if (length > BigInt(bytes.length - i - 170) / 2n) throw new AirlockError('undecodable_payload', `${path} data runs past the batch`);
    const data = `0x${bytes.slice(i + 170, i + 170 + Number(length) * 2)}` as Hex;
    i += 170 + Number(length) * 2;
    // MultiSend reads a zero `to` as the Safe itself from 1.4.1 on, as address zero before: name the address.
    if (to === ZERO_ADDRESS) throw new AirlockError('undecodable_payload', `${path} names the zero address (the Safe itself or address zero, by MultiSend version): name the target`);
    if (operation === 0) calls.push(decodeSafeCall(ctx, 'call', to, value, data, path));
    else if (operation === 1 && kind === 'MultiSend') {
      if (MULTI_SENDS.has(to)) throw new AirlockError('undecodable_payload', `${path} nests another MultiSend batch; flatten it`);
      if (value !== 0n) throw new AirlockError('undecodable_payload', `${path} has value with DELEGATECALL (a delegatecall sends no value)`);
      calls.push(decodeSafeCall(ctx, 'delegatecall', to, 0n, data, path));
    } else throw new AirlockError('undecodable_payload', `${path} has operation ${operation}, which ${kind} reverts on`);
  }
  return calls;
}

/** The refund a SafeTx pays its submitter when gasPrice > 0, at its worst case, as a call of its own. */
function gasRefund(ctx: SafeCallContext, m: Record<string, unknown>, callData: Hex): Intent | undefined {
  const gasPrice = m.gasPrice as bigint;
  if (gasPrice === 0n) return undefined;
  const gasToken = (m.gasToken as string).toLowerCase();
  const receiver = (m.refundReceiver as string).toLowerCase();
  const amount = (worstCaseExecuteGas(m.safeTxGas as bigint, (callData.length - 2) / 2) + (m.baseGas as bigint)) * gasPrice;
  const native = gasToken === ZERO_ADDRESS;
  const asset = native ? nativeAsset(ctx.chain) : erc20Asset(ctx.chain, gasToken);
  // refundReceiver zero pays tx.origin, whoever submits the transaction: a recipient no list can name (no `to`;
  // policy reads it as `unknownRecipient`: no destinations allowlist covers it, every `to` deny touches it).
  const to = receiver === ZERO_ADDRESS ? undefined : receiver;
  return {
    action: 'evm.typed_data',
    chain: ctx.chain,
    kind: 'safe.gas_refund',
    from: ctx.safe,
    ...(to ? { to } : {}),
    // The Safe pays it out of its own balance, as a value send or a token transfer: not a network fee (the
    // submitter pays the network), so its asset is a moved asset that asset denies and `assets` lists judge.
    spends: [{ asset, amount, ...(to ? { to } : {}), kind: native ? 'value' : 'transfer' }],
    approvals: [],
    typedData: ctx.typedData,
    summary: `pay a gas refund of up to ${amount} of ${asset} to ${to ?? 'whoever submits the transaction (tx.origin)'}`,
  };
}
