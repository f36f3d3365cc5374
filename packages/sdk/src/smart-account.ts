// Airlock as the owner of viem's smart accounts. Accounts whose owner signs EIP-712 user operations
// (Simple7702Account, EntryPoint v0.8) need nothing more than airlockAccount. Accounts that have their owner sign
// the userOpHash itself (Coinbase Smart Wallet: `owner.sign({ hash })`) or a personal message over it (Solady,
// SimpleAccount v0.7: `signMessage({ raw: hash })`) only hand the owner a hash; Airlock never signs a bare hash.
// airlockSmartAccount wraps such an account so that, before it asks for that hash, the owner is told which
// operation it is for: the operation is sent, Airlock recomputes the hash and judges every call it makes.
import type { Hex } from 'viem';
import type { SmartAccount } from 'viem/account-abstraction';
import type { AirlockAccount } from './account.ts';

const VERSIONS = ['0.6', '0.7', '0.8'] as const;

export function airlockSmartAccount<account extends SmartAccount>(account: account, owner: AirlockAccount): account {
  const version = account.entryPoint.version;
  if (!(VERSIONS as readonly string[]).includes(version)) throw new Error(`EntryPoint v${version} is not supported by Airlock (v0.6, v0.7, v0.8)`);
  const signUserOperation = async (parameters: Parameters<account['signUserOperation']>[0]) => {
    const { chainId = account.client.chain?.id, ...userOperation } = parameters as { chainId?: number } & Record<string, unknown>;
    if (chainId === undefined) throw new Error('the smart account has no chain: pass chainId');
    const sender = await account.getAddress();
    const hash: Hex = owner.expectUserOperation({
      chainId,
      entryPoint: { address: account.entryPoint.address, version: version as (typeof VERSIONS)[number] },
      userOperation: { ...userOperation, sender },
    });
    try {
      return await account.signUserOperation(parameters);
    } finally {
      owner.forgetUserOperation(hash);
    }
  };
  return { ...account, signUserOperation } as account;
}
