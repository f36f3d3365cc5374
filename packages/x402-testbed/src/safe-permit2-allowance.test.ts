// The lighter on-chain limit docs/smart-accounts.md#On-chain limits names as an alternative to a module: a 2-of-3
// Safe whose human owners grant the agent's key a Permit2 allowance (amount and expiry, held by Uniswap's Permit2
// at its canonical address), with the agent's pulls declared in `abis`. Airlock's policy is the first layer and refuses with its rule;
// then the test plays a fully compromised Airlock host, signing with the agent's private key outside Airlock:
// the chain stops it at the allowance, at its expiry, and at the Safe's threshold.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createWalletClient, encodeFunctionData, erc20Abi, http, maxUint256, type Address, type Hex } from 'viem';
import { generatePrivateKey, mnemonicToAccount, privateKeyToAccount } from 'viem/accounts';
import { airlockAccount, AirlockPolicyError, findAirlockError } from '@airlock/sdk';
import { type Anvil } from '../../sdk/src/testing/anvil.ts';
import { type Harness } from '../../server/src/testing/harness.ts';
import { compiledPermit2 } from './compile.ts';
import { installPermit2 } from './permit2.ts';
import { startAgentOwnedSafe, type AgentOwnedSafe } from './safe-fixture.ts';
import { execSafeTx, multiSendData, safeNonce, safeTx, MULTI_SEND_CALL_ONLY, SAFE_TX_TYPES, type SafeTx } from './safe.ts';
import { balanceOf, localChain, publicClientFor, rpc } from './token.ts';

const CHAIN_ID = 8453;
/** The agent pulls from the Safe's allowance to partners only, 40 USDC a request, 45 a day. */
const POLICY = `version: 1
sets:
  partners: ["PARTNER"]
abis:
  permit2:
    contracts: ["0x000000000022d473030f116ddee9f6b43ac78ba3"]
    functions: ["function transferFrom(address from, address to, uint160 amount, address token)"]
    moves:
      transferFrom:
        spends: [{ asset: token, amount: amount, to: to }]
rules:
  - name: pay-partners-from-the-safe-allowance
    type: allow
    match:
      actions: [evm.transaction]
      chains: [eip155:8453]
      contracts: ["0x000000000022d473030f116ddee9f6b43ac78ba3"]
      assets: ["eip155:8453/erc20:USDC"]
      args:
        from: { eq: "SAFE" }
        to: { in: $partners }
  - { name: usdc-per-request, type: max_amount, asset: "eip155:8453/erc20:USDC", max: "40000000" }
  - { name: usdc-daily, type: budget, asset: "eip155:8453/erc20:USDC", max: "45000000", window: 24h }
`;
const ATTACKER = '0x3333333333333333333333333333333333333333' as Address;
const USDC = (n: number) => BigInt(n) * 1_000_000n;

describe('on-chain limits on anvil: a Permit2 allowance from a Safe bounds even a compromised Airlock host', () => {
  let f: AgentOwnedSafe;
  let anvil: Anvil;
  let h: Harness;
  let usdc: Address;
  let safe: Address;
  let permit2: Address;
  let agentAddress: Address;
  let agentRef: { accountIndex: number; keyIndex: number };
  let token: string;
  const partner = privateKeyToAccount(generatePrivateKey()).address;
  const human = generatePrivateKey();
  const otherHuman = generatePrivateKey();
  const chain = () => localChain(anvil.rpcUrl, CHAIN_ID);
  const humansExecute = (tx: Omit<SafeTx, 'nonce'>) => f.humansExecute(tx);

  const grantAllowance = (amount: bigint, expiration: number) =>
    encodeFunctionData({ abi: compiledPermit2().abi, functionName: 'approve', args: [usdc, agentAddress, amount, expiration] } as never);
  const pullData = (to: Address, amount: bigint): Hex => encodeFunctionData({ abi: compiledPermit2().abi, functionName: 'transferFrom', args: [safe, to, amount, usdc] } as never);
  const chainNow = async () => Number((await publicClientFor(anvil.rpcUrl, CHAIN_ID).getBlock()).timestamp);

  before(async () => {
    f = await startAgentOwnedSafe(CHAIN_ID, [human, otherHuman]);
    ({ anvil, h, usdc, safe, token } = f);
    agentAddress = f.agent.address;
    agentRef = f.agent.ref;
    permit2 = await installPermit2(anvil.rpcUrl);

    // The human owners grant the agent's key 50 USDC through Permit2, for a day, in one MultiSend.
    await humansExecute(safeTx({
      to: MULTI_SEND_CALL_ONLY, operation: 1, nonce: 0n,
      data: multiSendData([
        { to: usdc, data: encodeFunctionData({ abi: erc20Abi, functionName: 'approve', args: [permit2, maxUint256] }) },
        { to: permit2, data: grantAllowance(USDC(50), (await chainNow()) + 86_400) },
      ]),
    }));

    await f.putPolicy(POLICY.replaceAll('USDC', usdc.toLowerCase()).replaceAll('SAFE', safe.toLowerCase()).replaceAll('PARTNER', partner.toLowerCase()));
  });
  after(async () => {
    await f?.close();
  });

  test('Airlock is the first layer: over its cap is refused with the rule (though the chain would allow it); within it the payment lands', async () => {
    const account = await airlockAccount({ url: 'http://127.0.0.1', token, fetch: h.fetch });
    const wallet = createWalletClient({ account, chain: chain(), transport: http(anvil.rpcUrl) });
    const refused = await wallet.sendTransaction({ to: permit2, data: pullData(partner, USDC(45)) }).then(() => undefined, (e: unknown) => e);
    const policyError = findAirlockError(refused, AirlockPolicyError);
    assert.ok(policyError, String(refused));
    assert.ok(policyError.violations.some((v) => v.rule === 'agent/usdc-per-request' && v.code === 'amount_exceeds_max'), JSON.stringify(policyError.violations));
    const toAttacker = await wallet.sendTransaction({ to: permit2, data: pullData(ATTACKER, USDC(10)) }).then(() => undefined, (e: unknown) => e);
    assert.ok(findAirlockError(toAttacker, AirlockPolicyError)?.violations.some((v) => v.code === 'argument_constraint_failed'));

    const hash = await wallet.sendTransaction({ to: permit2, data: pullData(partner, USDC(30)) });
    assert.equal((await publicClientFor(anvil.rpcUrl, CHAIN_ID).waitForTransactionReceipt({ hash })).status, 'success');
    assert.equal(await balanceOf(anvil.rpcUrl, usdc, partner), USDC(30));
  });

  test('a compromised host signing with the agent key outside Airlock gets at most the allowance, until its expiry, and never the Safe', async () => {
    // What a host compromise gives: the agent's private key, derived from the vault's recovery phrase.
    const stolen = mnemonicToAccount(h.mnemonic, { accountIndex: agentRef.accountIndex, addressIndex: agentRef.keyIndex });
    assert.equal(stolen.address.toLowerCase(), agentAddress.toLowerCase());
    const attacker = createWalletClient({ account: stolen, chain: chain(), transport: http(anvil.rpcUrl) });
    const client = publicClientFor(anvil.rpcUrl, CHAIN_ID);
    const pull = async (amount: bigint) => (await client.waitForTransactionReceipt({ hash: await attacker.sendTransaction({ to: permit2, data: pullData(ATTACKER, amount), gas: 200_000n }) })).status;

    assert.equal(await pull(USDC(25)), 'reverted', '30 + 25 is past the 50 USDC allowance');
    assert.equal(await pull(USDC(20)), 'success', 'what is left of the allowance');
    assert.equal(await pull(1n), 'reverted', 'the allowance is spent');
    assert.equal(await balanceOf(anvil.rpcUrl, usdc, ATTACKER), USDC(20));

    // A fresh allowance lapses at its expiry, whoever signs.
    await humansExecute(safeTx({ to: permit2, data: grantAllowance(USDC(10), (await chainNow()) + 3_600), nonce: 0n }));
    await rpc(anvil.rpcUrl, 'evm_increaseTime', [7_200]);
    await rpc(anvil.rpcUrl, 'evm_mine', []);
    assert.equal(await pull(USDC(5)), 'reverted', 'the allowance expired');

    // The Safe itself: the agent's key is one owner of two needed.
    const drain = safeTx({ to: usdc, data: encodeFunctionData({ abi: erc20Abi, functionName: 'transfer', args: [ATTACKER, USDC(900)] }), nonce: await safeNonce(anvil.rpcUrl, CHAIN_ID, safe) });
    const signature = await stolen.signTypedData({ domain: { chainId: CHAIN_ID, verifyingContract: safe }, types: SAFE_TX_TYPES, primaryType: 'SafeTx', message: drain });
    assert.equal(await execSafeTx(anvil.rpcUrl, CHAIN_ID, safe, drain, [{ owner: stolen.address, signature }]), 'reverted');
    assert.equal(await balanceOf(anvil.rpcUrl, usdc, ATTACKER), USDC(20));
    assert.equal(await balanceOf(anvil.rpcUrl, usdc, safe), USDC(1_000 - 30 - 20));
  });
});
