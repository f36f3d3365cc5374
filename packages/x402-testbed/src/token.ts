// The EIP-3009 (and EIP-2612) test token on a local chain: deploy, mint, read balances and authorization state.
import { createPublicClient, createWalletClient, defineChain, http, nonceManager, parseAbiItem, type Address, type Chain, type Hex, type PublicClient } from 'viem';
import { privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts';
import { compiledContracts } from './compile.ts';

/** Anvil's well-known dev keys (public test mnemonic): #0 deploys, #1 runs the facilitator. Never use them elsewhere. */
export const ANVIL_KEYS = {
  deployer: '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80',
  facilitator: '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d',
} as const satisfies Record<string, Hex>;

/** Where Multicall3 lives on every chain; the x402 facilitator calls it to explain failures. */
export const MULTICALL3_ADDRESS = '0xcA11bde05977b3631167028862bE2a173976CA11' as Address;

export function localChain(rpcUrl: string, chainId: number): Chain {
  return defineChain({ id: chainId, name: `Local ${chainId}`, nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 }, rpcUrls: { default: { http: [rpcUrl] } } });
}

/** One account per key and process, with viem's nonce manager so parallel sends get distinct nonces. */
const accounts = new Map<Hex, PrivateKeyAccount>();
export function localAccount(key: Hex): PrivateKeyAccount {
  let account = accounts.get(key);
  if (!account) accounts.set(key, (account = privateKeyToAccount(key, { nonceManager })));
  return account;
}

export function publicClientFor(rpcUrl: string, chainId: number): PublicClient {
  return createPublicClient({ chain: localChain(rpcUrl, chainId), transport: http(rpcUrl) });
}

async function chainIdOf(rpcUrl: string): Promise<number> {
  const res = await fetch(rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }) });
  return Number(BigInt(((await res.json()) as { result: string }).result));
}

/**
 * Forgets the nonces the cached accounts counted on `chainId`: a new anvil with the same chain id starts
 * every account at nonce 0, and a stale count would leave its transactions pending for ever.
 */
export function resetNonces(chainId: number): void {
  for (const account of accounts.values()) account.nonceManager?.reset({ address: account.address, chainId });
}

/** Deploys TestUSDC ("USD Coin", version "2", 6 decimals) and installs Multicall3 at its canonical address. */
export async function deployToken(rpcUrl: string): Promise<Address> {
  const chainId = await chainIdOf(rpcUrl);
  resetNonces(chainId);
  const chain = localChain(rpcUrl, chainId);
  const { TestUSDC, Multicall3Lite } = compiledContracts();
  const wallet = createWalletClient({ account: localAccount(ANVIL_KEYS.deployer), chain, transport: http(rpcUrl) });
  const publicClient = publicClientFor(rpcUrl, chainId);
  const hash = await wallet.deployContract({ abi: TestUSDC.abi, bytecode: TestUSDC.bytecode });
  const receipt = await publicClient.waitForTransactionReceipt({ hash });
  if (!receipt.contractAddress || receipt.status !== 'success') throw new Error('TestUSDC deployment failed');
  await rpc(rpcUrl, 'anvil_setCode', [MULTICALL3_ADDRESS, Multicall3Lite.deployedBytecode]);
  return receipt.contractAddress;
}

export async function mint(rpcUrl: string, token: Address, to: Address, amount: bigint): Promise<void> {
  const chainId = await chainIdOf(rpcUrl);
  const wallet = createWalletClient({ account: localAccount(ANVIL_KEYS.deployer), chain: localChain(rpcUrl, chainId), transport: http(rpcUrl) });
  const hash = await wallet.writeContract({ address: token, abi: compiledContracts().TestUSDC.abi, functionName: 'mint', args: [to, amount] });
  const receipt = await publicClientFor(rpcUrl, chainId).waitForTransactionReceipt({ hash });
  if (receipt.status !== 'success') throw new Error('mint failed');
}

export async function balanceOf(rpcUrl: string, token: Address, owner: Address): Promise<bigint> {
  const client = createPublicClient({ transport: http(rpcUrl) });
  return (await client.readContract({ address: token, abi: compiledContracts().TestUSDC.abi, functionName: 'balanceOf', args: [owner] })) as bigint;
}

/** EIP-3009: true once the nonce was used (settled) or cancelled. */
export async function authorizationState(rpcUrl: string, token: Address, authorizer: Address, nonce: Hex): Promise<boolean> {
  const client = createPublicClient({ transport: http(rpcUrl) });
  return (await client.readContract({ address: token, abi: compiledContracts().TestUSDC.abi, functionName: 'authorizationState', args: [authorizer, nonce] })) as boolean;
}

/** Every AuthorizationUsed event of the token: one per settled x402 payment. */
export async function authorizationsUsed(rpcUrl: string, token: Address, authorizer?: Address): Promise<{ authorizer: Address; nonce: Hex; transactionHash: Hex }[]> {
  const client = createPublicClient({ transport: http(rpcUrl) });
  const logs = await client.getLogs({
    address: token,
    event: parseAbiItem('event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce)'),
    ...(authorizer ? { args: { authorizer } } : {}),
    fromBlock: 0n,
    toBlock: 'latest',
  });
  return logs.map((l) => ({ authorizer: l.args.authorizer!, nonce: l.args.nonce!, transactionHash: l.transactionHash }));
}

/** Mines one block now, so the chain's latest timestamp catches up with the wall clock. */
export async function mineBlock(rpcUrl: string): Promise<void> {
  await rpc(rpcUrl, 'evm_mine', []);
}

export async function rpc(rpcUrl: string, method: string, params: unknown[]): Promise<unknown> {
  const res = await fetch(rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) });
  const body = (await res.json()) as { result?: unknown; error?: { message: string } };
  if (body.error) throw new Error(`${method}: ${body.error.message}`);
  return body.result;
}
