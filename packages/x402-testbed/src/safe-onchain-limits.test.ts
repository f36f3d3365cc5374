// On-chain limits as a second layer (docs/smart-accounts.md#On-chain limits, its policy as written with local
// addresses): a 2-of-3 Safe whose human owners enable Zodiac Roles v2 (the module, from zodiac-roles-sdk's
// bytecode) and grant the agent's key a role: USDC transfers to the partner only, from an allowance of 50 USDC
// that refills every 24 hours. Airlock's policy is the first layer and refuses with its rule; then the test
// plays a fully compromised Airlock host, signing with the agent's private key outside Airlock: the chain stops
// it at the allowance, at the recipient condition, at the role's owner (the Safe) and at the Safe's threshold.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createWalletClient, encodeFunctionData, erc20Abi, http, stringToHex, type Address, type Hex } from 'viem';
import { generatePrivateKey, mnemonicToAccount, privateKeyToAccount } from 'viem/accounts';
import { airlockAccount, AirlockPolicyError, findAirlockError } from '@airlock/sdk';
import { type Anvil } from '../../sdk/src/testing/anvil.ts';
import { docPolicy } from '../../server/src/testing/doc-policies.ts';
import { type Harness } from '../../server/src/testing/harness.ts';
import { startAgentOwnedSafe, type AgentOwnedSafe } from './safe-fixture.ts';
import { deployRolesModifier, rolesAllowance, rolesKey, spendingRoleCalls, ROLES_ABI } from './roles-modifier.ts';
import { execSafeTx, multiSendData, safeNonce, safeTx, MULTI_SEND_CALL_ONLY, SAFE_TX_TYPES } from './safe.ts';
import { balanceOf, localChain, publicClientFor, rpc } from './token.ts';

const CHAIN_ID = 8453;
const DOC = { usdc: '0x833589fcd6edb6e08f4c7c32d4f71b54bda02913', roles: '0x2222222222222222222222222222222222222222', partner: '0x1111111111111111111111111111111111111111' };
const ATTACKER = '0x3333333333333333333333333333333333333333' as Address;
const USDC = (n: number) => BigInt(n) * 1_000_000n;
const DAY = 86_400n;
// The docs example spells the role key with viem; the Safe's owners assign it with the Roles SDK: the same bytes.
const ROLE = stringToHex('agent-payments', { size: 32 });
const ALLOWANCE = rolesKey('agent-usdc-daily');

describe('on-chain limits on anvil: a Zodiac Roles module on a Safe bounds even a compromised Airlock host', () => {
  let f: AgentOwnedSafe;
  let anvil: Anvil;
  let h: Harness;
  let usdc: Address;
  let safe: Address;
  let roles: Address;
  let agentAddress: Address;
  let agentRef: { accountIndex: number; keyIndex: number };
  let token: string;
  const partner = privateKeyToAccount(generatePrivateKey()).address;
  const human = generatePrivateKey();
  const otherHuman = generatePrivateKey();
  const chain = () => localChain(anvil.rpcUrl, CHAIN_ID);
  const transfer = (to: Address, amount: bigint) => encodeFunctionData({ abi: erc20Abi, functionName: 'transfer', args: [to, amount] });
  /** The agent's call to Roles: make the Safe run `data` on `target` (CALL, or DELEGATECALL when `operation` is 1). */
  const viaRole = (target: Address, data: Hex, operation = 0): Hex =>
    encodeFunctionData({ abi: ROLES_ABI, functionName: 'execTransactionWithRole', args: [target, 0n, data, operation, ROLE, true] } as never);

  before(async () => {
    assert.equal(ROLE, rolesKey('agent-payments'));
    f = await startAgentOwnedSafe(CHAIN_ID, [human, otherHuman], { disableCodeSizeLimit: true });
    ({ anvil, h, usdc, safe, token } = f);
    agentAddress = f.agent.address;
    agentRef = f.agent.ref;
    roles = await deployRolesModifier(anvil.rpcUrl, CHAIN_ID, safe);

    // The human owners, once, with their two signatures (the agent does not sign): enable Roles, grant the role.
    const start = (await publicClientFor(anvil.rpcUrl, CHAIN_ID).getBlock()).timestamp;
    await f.humansExecute(safeTx({
      to: MULTI_SEND_CALL_ONLY, operation: 1, nonce: 0n,
      data: multiSendData(spendingRoleCalls(safe, roles, { roleKey: ROLE, member: agentAddress, token: usdc, recipients: [partner], allowance: { key: ALLOWANCE, amount: USDC(50), period: DAY, start } })),
    }));
    assert.equal((await rolesAllowance(anvil.rpcUrl, CHAIN_ID, roles, ALLOWANCE)).balance, USDC(50));

    let source = docPolicy('docs/smart-accounts.md#On-chain limits').source;
    for (const [name, local] of [['usdc', usdc], ['roles', roles], ['partner', partner]] as const) {
      assert.ok(source.includes(DOC[name]), `the on-chain limits example names ${name} ${DOC[name]}`);
      source = source.replaceAll(DOC[name], local.toLowerCase());
    }
    await f.putPolicy(source);
  });
  after(async () => {
    await f?.close();
  });

  test('Airlock is the first layer: it reads the transfer inside the module call, refuses with the rule what the role would allow, signs what it grants', async () => {
    const account = await airlockAccount({ url: 'http://127.0.0.1', token, fetch: h.fetch });
    const wallet = createWalletClient({ account, chain: chain(), transport: http(anvil.rpcUrl) });
    const refusal = async (data: Hex) => {
      const e = await wallet.sendTransaction({ to: roles, data, gas: 500_000n }).then(() => undefined, (err: unknown) => err);
      const policyError = findAirlockError(e, AirlockPolicyError);
      assert.ok(policyError, String(e));
      return policyError.violations;
    };
    const over = await refusal(viaRole(usdc, transfer(partner, USDC(45))));
    assert.ok(over.some((v) => v.rule === 'agent/usdc-per-request' && v.code === 'amount_exceeds_max'), JSON.stringify(over));
    const toAttacker = await refusal(viaRole(usdc, transfer(ATTACKER, USDC(10))));
    assert.ok(toAttacker.some((v) => v.code === 'no_matching_allow_rule' && v.message.includes(`call 1 of 1 (erc20.transfer ${ATTACKER.toLowerCase()})`)), JSON.stringify(toAttacker));
    const delegated = await refusal(viaRole(usdc, transfer(partner, 1n), 1));
    assert.ok(delegated.some((v) => v.code === 'delegatecall_not_allowed'), JSON.stringify(delegated));

    const hash = await wallet.sendTransaction({ to: roles, data: viaRole(usdc, transfer(partner, USDC(30))) });
    assert.equal((await publicClientFor(anvil.rpcUrl, CHAIN_ID).waitForTransactionReceipt({ hash })).status, 'success');
    assert.equal(await balanceOf(anvil.rpcUrl, usdc, partner), USDC(30));
    assert.equal((await rolesAllowance(anvil.rpcUrl, CHAIN_ID, roles, ALLOWANCE)).balance, USDC(20), 'the module consumed its allowance');

    // The transfer inside was charged: 30 + 20 is past the 45 USDC daily budget.
    const budget = await refusal(viaRole(usdc, transfer(partner, USDC(20))));
    assert.ok(budget.some((v) => v.rule === 'agent/usdc-daily' && v.code === 'budget_exceeded'), JSON.stringify(budget));
    assert.equal(await balanceOf(anvil.rpcUrl, usdc, partner), USDC(30));
  });

  test('a compromised host signing with the agent key outside Airlock gets at most the allowance per day, to the partner only, and never the Safe', async () => {
    // What a host compromise gives: the agent's private key, derived from the vault's recovery phrase.
    const stolen = mnemonicToAccount(h.mnemonic, { accountIndex: agentRef.accountIndex, addressIndex: agentRef.keyIndex });
    assert.equal(stolen.address.toLowerCase(), agentAddress.toLowerCase());
    const attacker = createWalletClient({ account: stolen, chain: chain(), transport: http(anvil.rpcUrl) });
    const client = publicClientFor(anvil.rpcUrl, CHAIN_ID);
    const send = async (to: Address, data: Hex) => (await client.waitForTransactionReceipt({ hash: await attacker.sendTransaction({ to, data, gas: 500_000n }) })).status;
    const pay = (to: Address, amount: bigint) => send(roles, viaRole(usdc, transfer(to, amount)));

    assert.equal(await pay(partner, USDC(25)), 'reverted', '30 + 25 is past the 50 USDC allowance');
    assert.equal(await pay(partner, USDC(20)), 'success', 'what is left of the allowance (Airlock\'s budget would have refused it)');
    assert.equal(await pay(partner, 1n), 'reverted', 'the allowance is spent');
    assert.equal(await pay(ATTACKER, 1n), 'reverted', 'the role pays the partner only');
    assert.equal(await send(roles, viaRole(usdc, transfer(partner, 1n), 1)), 'reverted', 'no DELEGATECALL through the role');
    assert.equal(await balanceOf(anvil.rpcUrl, usdc, partner), USDC(50));

    // The allowance refills after its period, to its maximum and no further.
    await rpc(anvil.rpcUrl, 'evm_increaseTime', [Number(DAY)]);
    await rpc(anvil.rpcUrl, 'evm_mine', []);
    assert.equal(await pay(partner, USDC(51)), 'reverted', 'a day later: 50, not 51');
    assert.equal(await pay(partner, USDC(50)), 'success', 'a day later: the allowance refilled');
    assert.equal(await pay(partner, 1n), 'reverted');

    // The key cannot widen its own role: Roles is owned by the Safe.
    const widen = encodeFunctionData({ abi: ROLES_ABI, functionName: 'setAllowance', args: [ALLOWANCE, USDC(1_000), USDC(1_000), USDC(1_000), DAY, 0n] } as never);
    assert.equal(await send(roles, widen), 'reverted');
    const unscope = encodeFunctionData({ abi: ROLES_ABI, functionName: 'allowTarget', args: [ROLE, usdc, 0] } as never);
    assert.equal(await send(roles, unscope), 'reverted');

    // The Safe itself: the agent's key is one owner of two needed.
    const drain = safeTx({ to: usdc, data: transfer(ATTACKER, USDC(900)), nonce: await safeNonce(anvil.rpcUrl, CHAIN_ID, safe) });
    const signature = await stolen.signTypedData({ domain: { chainId: CHAIN_ID, verifyingContract: safe }, types: SAFE_TX_TYPES, primaryType: 'SafeTx', message: drain });
    assert.equal(await execSafeTx(anvil.rpcUrl, CHAIN_ID, safe, drain, [{ owner: stolen.address, signature }]), 'reverted');
    assert.equal(await balanceOf(anvil.rpcUrl, usdc, ATTACKER), 0n);
    assert.equal(await balanceOf(anvil.rpcUrl, usdc, safe), USDC(1_000 - 100));
  });
});
