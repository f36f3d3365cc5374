// Zodiac's Roles Modifier v2 (Gnosis Guild), a Safe module that enforces per-role permissions and allowances on
// chain, from the bytecode the maintained `zodiac-roles-sdk` ships (its `typechain` export: Roles, and the
// Integrity and Packer libraries Roles links). The role a Safe's owners grant is planned with the same SDK
// (`processPermissions`, `callsPlannedForApplyRole`, `encodeCalls`), offline: nothing is fetched.
//
// With Roles attached to a Safe (owner, avatar and target all the Safe), a member of a role calls
// `execTransactionWithRole(to, value, data, operation, roleKey, shouldRevert)` and Roles makes the Safe execute
// the call only if the role's conditions hold; a `WithinAllowance` condition consumes an allowance that refills
// by `refill` every `period` seconds up to `maxRefill`. Only the Safe (its owners, at its threshold) can
// change roles or allowances.
import { c, callsPlannedForApplyRole, encodeCalls, encodeKey, processPermissions, type Call } from 'zodiac-roles-sdk';
import { Integrity__factory, Packer__factory, Roles__factory } from 'zodiac-roles-sdk/typechain';
import { deployFactories } from '@gnosis-guild/zodiac-core/tooling';
import { createWalletClient, encodeFunctionData, http, parseAbi, type Abi, type Address, type Hex } from 'viem';
import { ANVIL_KEYS, localAccount, localChain, publicClientFor, rpc } from './token.ts';

/** Roles v2's ABI as the SDK ships it. */
export const ROLES_ABI = Roles__factory.abi as unknown as Abi;

/** What an agent calls on the Roles modifier (a member of `roleKey` making the Safe execute `to`/`data`). */
export const EXEC_WITH_ROLE_FRAGMENT = 'function execTransactionWithRole(address to, uint256 value, bytes data, uint8 operation, bytes32 roleKey, bool shouldRevert) returns (bool success)';
const EXEC_WITH_ROLE_ABI = parseAbi([EXEC_WITH_ROLE_FRAGMENT]);
const SAFE_MODULE_ABI = parseAbi(['function enableModule(address module)']);

/** A role or allowance key (bytes32) from its name, as the Roles SDK and app encode it. */
export const rolesKey = (name: string): Hex => encodeKey(name);

async function deploy(rpcUrl: string, chainId: number, bytecode: Hex, abi: Abi = [], args: readonly unknown[] = []): Promise<Address> {
  const wallet = createWalletClient({ account: localAccount(ANVIL_KEYS.deployer), chain: localChain(rpcUrl, chainId), transport: http(rpcUrl) });
  const hash = await wallet.deployContract({ abi, bytecode, args } as never);
  const receipt = await publicClientFor(rpcUrl, chainId).waitForTransactionReceipt({ hash });
  if (!receipt.contractAddress || receipt.status !== 'success') throw new Error('Roles deployment failed');
  return receipt.contractAddress;
}

/** Anvil's last dev account (unlocked, used by no other helper): it funds the factories' keyless deployers. */
const FACTORY_FUNDER = '0xa0Ee7A142d267C1f36714E4a8F75612F20a79720';

/**
 * The factories Zodiac contracts rely on, as @gnosis-guild/zodiac-core deploys them for test setups: Nick's and
 * the ERC-2470 singleton factory from their published keyless transactions (Roles stores every scoped function's
 * packed conditions as the code of a contract it creates through ERC-2470), and the module proxy factory.
 */
export async function installZodiacFactories(rpcUrl: string): Promise<void> {
  const provider = {
    request: ({ method, params = [] }: { method: string; params?: unknown[] }) =>
      rpc(rpcUrl, method, method === 'eth_sendTransaction' ? [{ from: FACTORY_FUNDER, ...(params[0] as object) }] : params),
  };
  await deployFactories({ provider } as never);
}

/**
 * Deploys Roles v2 for `safe` (owner, avatar and target: only the Safe configures it, and it executes as the
 * Safe): the Integrity and Packer libraries first, then Roles with their addresses linked into its bytecode.
 */
export async function deployRolesModifier(rpcUrl: string, chainId: number, safe: Address): Promise<Address> {
  await installZodiacFactories(rpcUrl);
  const integrity = await deploy(rpcUrl, chainId, Integrity__factory.bytecode as Hex);
  const packer = await deploy(rpcUrl, chainId, Packer__factory.bytecode as Hex);
  const linked = Roles__factory.linkBytecode({ 'contracts/Integrity.sol:Integrity': integrity, 'contracts/packers/Packer.sol:Packer': packer }) as Hex;
  if (linked.includes('__$')) throw new Error('Roles bytecode still has an unlinked library');
  return deploy(rpcUrl, chainId, linked, ROLES_ABI, [safe, safe, safe]);
}

export interface SpendingRole {
  /** The role's key (`rolesKey(name)`). */
  roleKey: Hex;
  /** Who may act in the role: the agent's address. */
  member: Address;
  token: Address;
  /** Recipients the role may pay. */
  recipients: readonly Address[];
  /** The allowance every transfer consumes. */
  allowance: { key: Hex; amount: bigint; period: bigint; start: bigint };
}

/**
 * The calls (each `to` Roles, or the Safe itself for enableModule) with which a Safe's owners enable Roles and
 * grant `member` one thing: `token.transfer(recipient, amount)` to one of `recipients`, every amount taken from
 * an allowance of `amount` that refills to `amount` every `period` seconds from `start`.
 */
export function spendingRoleCalls(safe: Address, roles: Address, role: SpendingRole): { to: Address; data: Hex }[] {
  const payees = role.recipients.map((r) => c.eq(r.toLowerCase()));
  const payee = payees.length === 1 ? payees[0]! : c.or(...(payees as [(typeof payees)[0], (typeof payees)[0]]));
  const { targets } = processPermissions([{
    targetAddress: role.token.toLowerCase() as Hex,
    signature: 'transfer(address,uint256)',
    condition: c.calldataMatches([payee, c.withinAllowance(role.allowance.key)], ['address', 'uint256']),
  }]);
  const empty = { key: role.roleKey, members: [], targets: [], annotations: [], lastUpdate: 0 };
  const planned: Call[] = [
    ...callsPlannedForApplyRole(empty, { ...empty, members: [role.member.toLowerCase() as Hex], targets }),
    {
      call: 'setAllowance', key: role.allowance.key,
      balance: role.allowance.amount, maxRefill: role.allowance.amount, refill: role.allowance.amount,
      period: role.allowance.period, timestamp: role.allowance.start,
    },
  ];
  return [
    { to: safe, data: encodeFunctionData({ abi: SAFE_MODULE_ABI, functionName: 'enableModule', args: [roles] }) },
    ...encodeCalls(planned, roles.toLowerCase() as Hex).map((call) => ({ to: call.to as Address, data: call.data as Hex })),
  ];
}

/** The agent's call to Roles: make the Safe CALL `to` with `data` under `roleKey`, reverting when Roles refuses. */
export function execWithRoleData(to: Address, data: Hex, roleKey: Hex): Hex {
  return encodeFunctionData({ abi: EXEC_WITH_ROLE_ABI, functionName: 'execTransactionWithRole', args: [to, 0n, data, 0, roleKey, true] });
}

/** Roles' allowance record: balance now stored, and when it last refilled. */
export async function rolesAllowance(rpcUrl: string, chainId: number, roles: Address, key: Hex): Promise<{ balance: bigint; timestamp: bigint }> {
  const [, , , balance, timestamp] = (await publicClientFor(rpcUrl, chainId).readContract({ address: roles, abi: ROLES_ABI, functionName: 'allowances', args: [key] })) as readonly bigint[];
  return { balance: balance!, timestamp: timestamp! };
}
