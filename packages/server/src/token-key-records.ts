/**
 * What a PKCS#11 backend asks the store before it uses a key made under the legacy id (pkcs11-backend.ts,
 * TokenDeployment.recordsKey): such a key names no deployment, so it is this deployment's only if its store records
 * that key, for the agent whose account and key index make that path. Found by review: without the question, a
 * second deployment on the token would take over the first one's agent keys made before the upgrade.
 */
import type { Store } from '@airlock/core';
import { createEvmAdapter } from '@airlock/chains';
import type { TokenDeployment } from '@airlock/keys';

export function storeRecordsAgentKey(store: Pick<Store, 'findAgentKey' | 'getAgent'>): NonNullable<TokenDeployment['recordsKey']> {
  const evm = createEvmAdapter();
  return async (path, publicKey) => {
    // The key registry holds every key an agent ever had (current, rotated, retired).
    const key = await store.findAgentKey(evm.addressFromPublicKey(publicKey));
    const agent = key && (await store.getAgent(key.agentId));
    return agent !== undefined && evm.derivationPath(agent.accountIndex, key!.keyIndex) === path;
  };
}
