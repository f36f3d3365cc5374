// The unsigned transaction behind a transfer: a native value transfer, or ERC-20 transfer(to, amount).
import { encodeFunctionData, erc20Abi, type Address, type Hex } from 'viem';

export interface Transfer {
  chainId: number;
  to: string;
  amount: string;
  token?: string | undefined;
}

export function transferCall(t: Transfer): { to: Address; value: bigint; data?: Hex } {
  const amount = BigInt(t.amount);
  if (!t.token) return { to: t.to as Address, value: amount };
  return { to: t.token as Address, value: 0n, data: encodeFunctionData({ abi: erc20Abi, functionName: 'transfer', args: [t.to as Address, amount] }) };
}

/** Airlock's CAIP-19 id of what a transfer moves, as policies and violations name it. */
export function transferAsset(t: Pick<Transfer, 'chainId' | 'token'>): string {
  return t.token ? `eip155:${t.chainId}/erc20:${t.token.toLowerCase()}` : `eip155:${t.chainId}/slip44:60`;
}
