// ERC-4337 on a local chain: eth-infinitism's EntryPoint v0.8 and Simple7702Account from their official npm
// package (@account-abstraction/contracts 0.8.0, which ships compiled Hardhat artifacts: no compiler needed), and
// EntryPoint v0.7 from the same package at 0.7.0 (installed under the alias @account-abstraction/contracts-v07)
// with Solady's ERC4337 account and factory (npm `solady`, compiled by compile.ts).
//
// v0.8:
// Simple7702Account hard-codes the canonical EntryPoint address (0x4337084D…), so the EntryPoint must live there.
// It is deployed normally, then its runtime code is copied to the canonical address with `anvil_setCode`. That is
// sound for EntryPoint v0.8: its immutables are the SenderCreator its constructor deployed (used only for
// initCode factories, which 7702 accounts do not use) and OpenZeppelin's EIP712 cache, which recomputes the
// domain separator for `address(this)` when the code runs at another address. installEntryPoint checks that the
// installed code computes the userOpHash viem computes for the canonical address.
import { createRequire } from 'node:module';
import { concat, createWalletClient, getContractAddress, http, type Abi, type Address, type Hex } from 'viem';
import { entryPoint07Address, entryPoint08Address, getUserOperationHash } from 'viem/account-abstraction';
import { compiledSolady } from './compile.ts';
import { ANVIL_KEYS, localAccount, localChain, publicClientFor, rpc } from './token.ts';

const require = createRequire(import.meta.url);

interface Artifact {
  abi: Abi;
  bytecode: Hex;
  deployedBytecode: Hex;
}

const artifact = (name: 'EntryPoint' | 'Simple7702Account'): Artifact => require(`@account-abstraction/contracts/artifacts/${name}.json`) as Artifact;

/** The canonical EntryPoint v0.8 address (what Simple7702Account and viem expect). */
export const ENTRY_POINT_V08 = entryPoint08Address;

export interface InstalledEntryPoint {
  entryPoint: Address;
  entryPointAbi: Abi;
  /** A deployed Simple7702Account: the delegate an EOA installs with EIP-7702. */
  simple7702: Address;
}

async function deploy(rpcUrl: string, chainId: number, name: 'EntryPoint' | 'Simple7702Account'): Promise<Address> {
  const { abi, bytecode } = artifact(name);
  return deployBytecode(rpcUrl, chainId, name, abi, bytecode);
}

async function deployBytecode(rpcUrl: string, chainId: number, name: string, abi: Abi, bytecode: Hex, args: readonly unknown[] = []): Promise<Address> {
  const wallet = createWalletClient({ account: localAccount(ANVIL_KEYS.deployer), chain: localChain(rpcUrl, chainId), transport: http(rpcUrl) });
  const hash = await wallet.deployContract({ abi, bytecode, args });
  const receipt = await publicClientFor(rpcUrl, chainId).waitForTransactionReceipt({ hash });
  if (!receipt.contractAddress || receipt.status !== 'success') throw new Error(`${name} deployment failed`);
  return receipt.contractAddress;
}

/** Installs EntryPoint v0.8 at its canonical address and deploys a Simple7702Account on the anvil at `rpcUrl`. */
export async function installEntryPoint(rpcUrl: string, chainId: number): Promise<InstalledEntryPoint> {
  const deployed = await deploy(rpcUrl, chainId, 'EntryPoint');
  const client = publicClientFor(rpcUrl, chainId);
  const runtime = await client.getCode({ address: deployed });
  if (!runtime) throw new Error('EntryPoint has no code after deployment');
  await rpc(rpcUrl, 'anvil_setCode', [ENTRY_POINT_V08, runtime]);
  const simple7702 = await deploy(rpcUrl, chainId, 'Simple7702Account');
  // The copy must hash operations for its own (canonical) address, as viem does.
  const probe = { sender: simple7702, nonce: 5n, callData: '0x1234', callGasLimit: 1n, verificationGasLimit: 2n, preVerificationGas: 3n, maxFeePerGas: 4n, maxPriorityFeePerGas: 5n, signature: '0x' } as const;
  const { abi } = artifact('EntryPoint');
  const onChain = await client.readContract({
    address: ENTRY_POINT_V08, abi, functionName: 'getUserOpHash',
    args: [{ sender: probe.sender, nonce: probe.nonce, initCode: '0x', callData: probe.callData, accountGasLimits: `0x${'2'.padStart(32, '0')}${'1'.padStart(32, '0')}`, preVerificationGas: 3n, gasFees: `0x${'5'.padStart(32, '0')}${'4'.padStart(32, '0')}`, paymasterAndData: '0x', signature: '0x' }],
  });
  const expected = getUserOperationHash({ chainId, entryPointAddress: ENTRY_POINT_V08, entryPointVersion: '0.8', userOperation: probe as never });
  if (onChain !== expected) throw new Error(`EntryPoint at ${ENTRY_POINT_V08} hashes operations as ${String(onChain)}, viem as ${expected}`);
  return { entryPoint: ENTRY_POINT_V08, entryPointAbi: abi, simple7702 };
}

// v0.7: the npm artifact is the bytecode eth-infinitism deployed, so the deterministic-deployment proxy (which
// anvil preinstalls, as every public chain has it) with the release's salt puts it at its canonical address,
// 0x0000000071727De2…: a real deployment, immutables and SenderCreator included, so initCode factories work.
// Solady's ERC4337 hard-codes that address as its EntryPoint.
const DETERMINISTIC_DEPLOYER = '0x4e59b44847b379578588920cA78FbF26c0B4956C' as Address;
const ENTRY_POINT_V07_SALT = '0x90d8084deab30c2a37c45e8d47f49f2f7965183cb6990a98943ef94940681de3' as Hex;

const artifactV07 = (name: 'EntryPoint'): Artifact => require(`@account-abstraction/contracts-v07/artifacts/${name}.json`) as Artifact;

/** The canonical EntryPoint v0.7 address (what Solady's ERC4337 and viem expect). */
export const ENTRY_POINT_V07 = entryPoint07Address;

export interface InstalledEntryPointV07 {
  entryPoint: Address;
  entryPointAbi: Abi;
  /** Solady's ERC4337Factory over a SoladyAccount implementation: what viem's toSoladySmartAccount calls `factoryAddress`. */
  soladyFactory: Address;
  soladyImplementation: Address;
}

/** Installs EntryPoint v0.7 at its canonical address and deploys Solady's account implementation and factory. */
export async function installEntryPointV07(rpcUrl: string, chainId: number): Promise<InstalledEntryPointV07> {
  const client = publicClientFor(rpcUrl, chainId);
  const { abi, bytecode } = artifactV07('EntryPoint');
  if (getContractAddress({ opcode: 'CREATE2', from: DETERMINISTIC_DEPLOYER, salt: ENTRY_POINT_V07_SALT, bytecode }).toLowerCase() !== ENTRY_POINT_V07.toLowerCase()) {
    throw new Error('the EntryPoint v0.7 artifact is not the canonically deployed bytecode');
  }
  if (!(await client.getCode({ address: DETERMINISTIC_DEPLOYER }))) throw new Error('no deterministic-deployment proxy on this chain');
  const wallet = createWalletClient({ account: localAccount(ANVIL_KEYS.deployer), chain: localChain(rpcUrl, chainId), transport: http(rpcUrl) });
  const hash = await wallet.sendTransaction({ to: DETERMINISTIC_DEPLOYER, data: concat([ENTRY_POINT_V07_SALT, bytecode]) });
  if ((await client.waitForTransactionReceipt({ hash })).status !== 'success' || !(await client.getCode({ address: ENTRY_POINT_V07 }))) {
    throw new Error('EntryPoint v0.7 deployment failed');
  }
  const solady = compiledSolady();
  const soladyImplementation = await deployBytecode(rpcUrl, chainId, 'SoladyAccount', solady.SoladyAccount.abi, solady.SoladyAccount.bytecode);
  const soladyFactory = await deployBytecode(rpcUrl, chainId, 'ERC4337Factory', solady.ERC4337Factory.abi, solady.ERC4337Factory.bytecode, [soladyImplementation]);
  // The deployed EntryPoint must hash operations as viem (and Airlock) do.
  const probe = { sender: soladyFactory, nonce: 5n, callData: '0x1234', callGasLimit: 1n, verificationGasLimit: 2n, preVerificationGas: 3n, maxFeePerGas: 4n, maxPriorityFeePerGas: 5n, signature: '0x' } as const;
  const onChain = await client.readContract({
    address: ENTRY_POINT_V07, abi, functionName: 'getUserOpHash',
    args: [{ sender: probe.sender, nonce: probe.nonce, initCode: '0x', callData: probe.callData, accountGasLimits: `0x${'2'.padStart(32, '0')}${'1'.padStart(32, '0')}`, preVerificationGas: 3n, gasFees: `0x${'5'.padStart(32, '0')}${'4'.padStart(32, '0')}`, paymasterAndData: '0x', signature: '0x' }],
  });
  const expected = getUserOperationHash({ chainId, entryPointAddress: ENTRY_POINT_V07, entryPointVersion: '0.7', userOperation: probe as never });
  if (onChain !== expected) throw new Error(`EntryPoint v0.7 hashes operations as ${String(onChain)}, viem as ${expected}`);
  return { entryPoint: ENTRY_POINT_V07, entryPointAbi: abi, soladyFactory, soladyImplementation };
}
