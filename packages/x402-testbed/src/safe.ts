// The Safe multisig on a local chain, from the artifacts @safe-global/safe-smart-account (1.5.0) ships: the Safe
// singleton, its proxy factory, and MultiSendCallOnly at its canonical address (runtime code installed with
// anvil_setCode and checked against the code hash @safe-global/safe-deployments lists for that address).
// Helpers build SafeTx typed data, sign it as a human owner would, and execute with the owners' signatures.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { getMultiSendCallOnlyDeployment } from '@safe-global/safe-deployments';
import {
  concat, createWalletClient, encodeFunctionData, encodePacked, http, keccak256, parseEventLogs, size, zeroAddress,
  type Abi, type Address, type Hex, type PublicClient, type TypedDataDefinition,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { ANVIL_KEYS, localAccount, localChain, publicClientFor, rpc } from './token.ts';

const SAFE_VERSION = '1.5.0';
const require = createRequire(import.meta.url);
const ARTIFACTS = join(dirname(require.resolve('@safe-global/safe-smart-account/package.json')), 'build', 'artifacts', 'contracts');

interface Artifact {
  abi: Abi;
  bytecode: Hex;
  deployedBytecode: Hex;
}

function artifact(path: string): Artifact {
  return JSON.parse(readFileSync(join(ARTIFACTS, path), 'utf8')) as Artifact;
}

export const SAFE_ARTIFACTS = {
  Safe: artifact('Safe.sol/Safe.json'),
  SafeProxyFactory: artifact('proxies/SafeProxyFactory.sol/SafeProxyFactory.json'),
  MultiSendCallOnly: artifact('libraries/MultiSendCallOnly.sol/MultiSendCallOnly.json'),
} as const;

/** Where Safe 1.5.0's MultiSendCallOnly lives on every chain (safe-deployments' canonical address). */
export const MULTI_SEND_CALL_ONLY = getMultiSendCallOnlyDeployment({ version: SAFE_VERSION })!.deployments.canonical!.address as Address;

export interface SafeStack {
  singleton: Address;
  factory: Address;
  multiSendCallOnly: Address;
}

async function deploy(rpcUrl: string, chainId: number, a: Artifact): Promise<Address> {
  const wallet = createWalletClient({ account: localAccount(ANVIL_KEYS.deployer), chain: localChain(rpcUrl, chainId), transport: http(rpcUrl) });
  const hash = await wallet.deployContract({ abi: a.abi, bytecode: a.bytecode });
  const receipt = await publicClientFor(rpcUrl, chainId).waitForTransactionReceipt({ hash });
  if (!receipt.contractAddress || receipt.status !== 'success') throw new Error('Safe deployment failed');
  return receipt.contractAddress;
}

/** The Safe singleton and factory (deployed), and MultiSendCallOnly at its canonical address (its exact code). */
export async function deploySafeStack(rpcUrl: string, chainId: number): Promise<SafeStack> {
  const singleton = await deploy(rpcUrl, chainId, SAFE_ARTIFACTS.Safe);
  const factory = await deploy(rpcUrl, chainId, SAFE_ARTIFACTS.SafeProxyFactory);
  const expected = getMultiSendCallOnlyDeployment({ version: SAFE_VERSION })!.deployments.canonical!.codeHash;
  if (keccak256(SAFE_ARTIFACTS.MultiSendCallOnly.deployedBytecode) !== expected) throw new Error('the shipped MultiSendCallOnly is not the canonical deployment');
  await rpc(rpcUrl, 'anvil_setCode', [MULTI_SEND_CALL_ONLY, SAFE_ARTIFACTS.MultiSendCallOnly.deployedBytecode]);
  return { singleton, factory, multiSendCallOnly: MULTI_SEND_CALL_ONLY };
}

/** A new Safe proxy with these owners and threshold, created through the factory as Safe{Wallet} does. */
export async function createSafe(rpcUrl: string, chainId: number, stack: SafeStack, owners: readonly Address[], threshold: number): Promise<Address> {
  const initializer = encodeFunctionData({
    abi: SAFE_ARTIFACTS.Safe.abi,
    functionName: 'setup',
    args: [owners, BigInt(threshold), zeroAddress, '0x', zeroAddress, zeroAddress, 0n, zeroAddress],
  });
  const wallet = createWalletClient({ account: localAccount(ANVIL_KEYS.deployer), chain: localChain(rpcUrl, chainId), transport: http(rpcUrl) });
  const hash = await wallet.writeContract({ address: stack.factory, abi: SAFE_ARTIFACTS.SafeProxyFactory.abi, functionName: 'createProxyWithNonce', args: [stack.singleton, initializer, BigInt(Date.now())] });
  const receipt = await publicClientFor(rpcUrl, chainId).waitForTransactionReceipt({ hash });
  const [created] = parseEventLogs({ abi: SAFE_ARTIFACTS.SafeProxyFactory.abi, logs: receipt.logs, eventName: 'ProxyCreation' }) as unknown as { args: { proxy: Address } }[];
  if (!created) throw new Error('the factory created no Safe');
  return created.args.proxy;
}

export interface SafeTx {
  to: Address;
  value: bigint;
  data: Hex;
  operation: 0 | 1;
  safeTxGas: bigint;
  baseGas: bigint;
  gasPrice: bigint;
  gasToken: Address;
  refundReceiver: Address;
  nonce: bigint;
}

export const SAFE_TX_TYPES = {
  SafeTx: [
    { name: 'to', type: 'address' }, { name: 'value', type: 'uint256' }, { name: 'data', type: 'bytes' }, { name: 'operation', type: 'uint8' },
    { name: 'safeTxGas', type: 'uint256' }, { name: 'baseGas', type: 'uint256' }, { name: 'gasPrice', type: 'uint256' },
    { name: 'gasToken', type: 'address' }, { name: 'refundReceiver', type: 'address' }, { name: 'nonce', type: 'uint256' },
  ],
} as const;

/** A plain CALL with no refund, at the Safe's current nonce unless told. */
export function safeTx(fields: Partial<SafeTx> & { to: Address; nonce: bigint }): SafeTx {
  return { value: 0n, data: '0x', operation: 0, safeTxGas: 0n, baseGas: 0n, gasPrice: 0n, gasToken: zeroAddress, refundReceiver: zeroAddress, ...fields };
}

/** The EIP-712 request an owner signs: domain {chainId, verifyingContract: the Safe}. */
export function safeTxTypedData(safe: Address, chainId: number, tx: SafeTx): TypedDataDefinition<typeof SAFE_TX_TYPES, 'SafeTx'> {
  return { domain: { chainId, verifyingContract: safe }, types: SAFE_TX_TYPES, primaryType: 'SafeTx', message: tx };
}

/** MultiSend's packed batch: operation (uint8), to, value, data length, data; wrapped in multiSend(bytes). */
export function multiSendData(calls: readonly { to: Address; value?: bigint; data?: Hex; operation?: 0 | 1 }[]): Hex {
  const packed = concat(calls.map((c) => encodePacked(['uint8', 'address', 'uint256', 'uint256', 'bytes'], [c.operation ?? 0, c.to, c.value ?? 0n, BigInt(size(c.data ?? '0x')), c.data ?? '0x'])));
  return encodeFunctionData({ abi: [{ type: 'function', name: 'multiSend', stateMutability: 'payable', inputs: [{ name: 'transactions', type: 'bytes' }], outputs: [] }], args: [packed] });
}

/** A human owner's signature (a local test key standing for a person). */
export async function ownerSignature(key: Hex, safe: Address, chainId: number, tx: SafeTx): Promise<{ owner: Address; signature: Hex }> {
  const account = privateKeyToAccount(key);
  return { owner: account.address, signature: await account.signTypedData(safeTxTypedData(safe, chainId, tx)) };
}

/** execTransaction with these owners' ECDSA signatures (sorted by owner, as the Safe requires); returns the receipt status. */
export async function execSafeTx(rpcUrl: string, chainId: number, safe: Address, tx: SafeTx, signatures: readonly { owner: Address; signature: Hex }[]): Promise<'success' | 'reverted'> {
  const sorted = [...signatures].sort((a, b) => (BigInt(a.owner) < BigInt(b.owner) ? -1 : 1));
  const packed = concat(sorted.map((s) => s.signature));
  const client: PublicClient = publicClientFor(rpcUrl, chainId);
  const wallet = createWalletClient({ account: localAccount(ANVIL_KEYS.facilitator), chain: localChain(rpcUrl, chainId), transport: http(rpcUrl) });
  const hash = await wallet.writeContract({
    address: safe,
    abi: SAFE_ARTIFACTS.Safe.abi,
    functionName: 'execTransaction',
    args: [tx.to, tx.value, tx.data, tx.operation, tx.safeTxGas, tx.baseGas, tx.gasPrice, tx.gasToken, tx.refundReceiver, packed],
    gas: 1_000_000n, // no estimate: a transaction the Safe refuses must still be sent, to revert on chain
  });
  return (await client.waitForTransactionReceipt({ hash })).status;
}

export async function safeNonce(rpcUrl: string, chainId: number, safe: Address): Promise<bigint> {
  return (await publicClientFor(rpcUrl, chainId).readContract({ address: safe, abi: SAFE_ARTIFACTS.Safe.abi, functionName: 'nonce' })) as bigint;
}
