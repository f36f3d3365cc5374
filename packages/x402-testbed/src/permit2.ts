// Uniswap's Permit2 at its canonical address on a local chain, so Permit2 permits, transfers and their
// revocations (lockdown, invalidateNonces, invalidateUnorderedNonces) run against the real contract.
//
// Permit2's EIP712 caches its domain separator, keccak256(EIP712Domain("Permit2", chainid, address(this))), and
// the chain id in immutables at construction, i.e. in its runtime code. Runtime code copied to another address
// would keep the separator of the address it was built for, and every signature made for the canonical address
// would fail. So the runtime code is completed here as the constructor would have completed it at the canonical
// address (both immutables written at the offsets solc reports), installed with `anvil_setCode`, and checked:
// DOMAIN_SEPARATOR() there must equal the EIP-712 separator computed independently by viem.
import { createPublicClient, domainSeparator, http, type Address, type Hex } from 'viem';
import { compiledPermit2 } from './compile.ts';
import { rpc } from './token.ts';

/** Where Permit2 lives on every chain (Uniswap's deterministic deployment). */
export const PERMIT2_CANONICAL_ADDRESS = '0x000000000022D473030F116dDEE9F6B43aC78BA3' as Address;

/** The EIP-712 domain separator of Permit2 on `chainId` at `address` (the domain has no version). */
export function permit2DomainSeparator(chainId: number, address: Address = PERMIT2_CANONICAL_ADDRESS): Hex {
  return domainSeparator({ domain: { name: 'Permit2', chainId, verifyingContract: address } });
}

/** Permit2's runtime code as its constructor leaves it at `address` on `chainId`. */
export function permit2RuntimeCode(chainId: number, address: Address = PERMIT2_CANONICAL_ADDRESS): Hex {
  const { deployedBytecode, immutables } = compiledPermit2();
  let code = deployedBytecode.slice(2);
  const write = (offsets: number[], word: Hex) => {
    for (const offset of offsets) code = code.slice(0, offset * 2) + word.slice(2) + code.slice(offset * 2 + 64);
  };
  write(immutables.cachedDomainSeparator, permit2DomainSeparator(chainId, address));
  write(immutables.cachedChainId, `0x${chainId.toString(16).padStart(64, '0')}`);
  return `0x${code}`;
}

/** Installs Permit2 at its canonical address on the anvil at `rpcUrl`; returns that address. */
export async function installPermit2(rpcUrl: string): Promise<Address> {
  const client = createPublicClient({ transport: http(rpcUrl) });
  const chainId = await client.getChainId();
  await rpc(rpcUrl, 'anvil_setCode', [PERMIT2_CANONICAL_ADDRESS, permit2RuntimeCode(chainId)]);
  const installed = await client.readContract({ address: PERMIT2_CANONICAL_ADDRESS, abi: compiledPermit2().abi, functionName: 'DOMAIN_SEPARATOR' });
  if (installed !== permit2DomainSeparator(chainId)) throw new Error(`Permit2's DOMAIN_SEPARATOR() at ${PERMIT2_CANONICAL_ADDRESS} is ${String(installed)}, not its EIP-712 separator on chain ${chainId}`);
  return PERMIT2_CANONICAL_ADDRESS;
}
