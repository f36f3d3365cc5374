// The setup both on-chain-limit tests start from: anvil with a token, a 2-of-3 Safe owned by an agent's Airlock key
// and two human keys, holding 1,000 USDC, and a daemon (in process) whose agent may send transactions on that chain.
import assert from 'node:assert/strict';
import { parseEther, type Address, type Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { startAnvil, type Anvil } from '../../sdk/src/testing/anvil.ts';
import { provisionAgent, startHarness, type Harness } from '../../server/src/testing/harness.ts';
import { createSafe, deploySafeStack, execSafeTx, ownerSignature, safeNonce, type SafeTx } from './safe.ts';
import { deployToken, mint, rpc } from './token.ts';

export interface AgentOwnedSafe {
  anvil: Anvil;
  h: Harness;
  usdc: Address;
  safe: Address;
  agent: { name: string; address: Address; ref: { accountIndex: number; keyIndex: number } };
  token: string;
  /** What the human owners do, with their two signatures (the agent does not sign): a Safe transaction at the next nonce. */
  humansExecute(tx: Omit<SafeTx, 'nonce'>): Promise<void>;
  /** Sets the agent's policy (YAML) and asserts it was accepted without warnings. */
  putPolicy(source: string): Promise<void>;
  close(): Promise<void>;
}

/** `humans`: the two human owners' private keys. `anvil`: options for the chain (a module may need the code-size limit lifted). */
export async function startAgentOwnedSafe(chainId: number, humans: readonly [Hex, Hex], anvilOptions: { disableCodeSizeLimit?: boolean } = {}): Promise<AgentOwnedSafe> {
  const anvil = await startAnvil({ chainId, ...anvilOptions });
  const usdc = await deployToken(anvil.rpcUrl);
  const stack = await deploySafeStack(anvil.rpcUrl, chainId);
  const h = await startHarness({ store: 'sqlite' });
  const provisioned = await provisionAgent(h, { actions: ['evm.transaction'], chains: [`eip155:${chainId}`] });
  const address = provisioned.agent.address as Address;
  await rpc(anvil.rpcUrl, 'anvil_setBalance', [address, `0x${parseEther('1').toString(16)}`]);
  const safe = await createSafe(anvil.rpcUrl, chainId, stack, [address, privateKeyToAccount(humans[0]).address, privateKeyToAccount(humans[1]).address], 2);
  await mint(anvil.rpcUrl, usdc, safe, 1_000_000_000n);
  return {
    anvil, h, usdc, safe, token: provisioned.token,
    agent: { name: provisioned.agent.name, address, ref: { accountIndex: provisioned.agent.accountIndex, keyIndex: provisioned.agent.keyIndex } },
    async humansExecute(tx) {
      const full = { ...tx, nonce: await safeNonce(anvil.rpcUrl, chainId, safe) };
      const signatures = [await ownerSignature(humans[0], safe, chainId, full), await ownerSignature(humans[1], safe, chainId, full)];
      assert.equal(await execSafeTx(anvil.rpcUrl, chainId, safe, full, signatures), 'success');
    },
    async putPolicy(source) {
      const set = await h.admin('PUT', `/v1/policies/${provisioned.agent.name}`, { source });
      assert.equal(set.status, 200, JSON.stringify(set.body));
      assert.deepEqual(set.body.warnings, []);
    },
    async close() {
      await h.close();
      await anvil.stop();
    },
  };
}
