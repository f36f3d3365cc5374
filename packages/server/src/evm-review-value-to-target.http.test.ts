// An allow rule's `to` checked only the request's main counterparty. A transaction whose calldata reads
// transfer(ALICE, 1) but whose target is an address the agent chose (an EOA: a call with calldata to one succeeds
// and keeps the value) decoded as an erc20.transfer to ALICE, with its native value a second spend to that target:
// `usdc-to-partners` (kinds erc20.transfer, to $partners, no assets) granted it, and 10 ETH left for an address no
// rule named, charged nothing (found by review). Now every party the request pays or lets spend must be listed, in
// a transaction, in each call of a user operation and of a SafeTx alike.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicClient, encodeFunctionData, http, parseAbi, type Hex } from 'viem';
import { safeTx, safeTxTypedData } from '../../x402-testbed/src/safe.ts';
import { startAnvil, type Anvil } from '../../sdk/src/testing/anvil.ts';
import { ALICE, MALLORY, USDC, provisionAgent, startHarness, usdcPolicy, type Harness } from './testing/harness.ts';

const ERC20 = parseAbi(['function transfer(address to, uint256 value) returns (bool)']);
const ACCOUNT = parseAbi(['function executeBatch((address target, uint256 value, bytes data)[] calls)']);
const ENTRY_POINT_V08 = '0x4337084d9e255ff0702461cf8895ce9e3b5ff108';
const SAFE = '0x5afe00000000000000000000000000000000cafe';
const ETH = 10n ** 18n;
const payAlice = encodeFunctionData({ abi: ERC20, functionName: 'transfer', args: [ALICE, 1n] });

const transaction = (to: string, data: Hex, value: bigint, nonce = 0) => ({
  chainId: 8453,
  transaction: { type: 'eip1559', to, value: value.toString(), data, nonce, gas: '60000', maxFeePerGas: '50000000000', maxPriorityFeePerGas: '1000000000' },
});

/** Refused by the agent's policy for want of an allow rule, nothing signed, the refusal on the record. */
async function assertNotGranted(h: Harness, res: { status: number; body: any }, agentName: string): Promise<void> {
  assert.equal(res.status, 403, JSON.stringify(res.body).slice(0, 400));
  assert.equal(res.body.error.code, 'policy_denied');
  assert.deepEqual(res.body.error.violations.map((v: any) => [v.rule, v.code]), [['agent/default', 'no_matching_allow_rule']]);
  assert.equal(res.body.signedTransaction ?? res.body.signature, undefined);
  const entries = (await h.admin('GET', `/v1/audit?agent=${agentName}&limit=10`)).body.entries as any[];
  assert.deepEqual(entries.filter((e) => e.type.startsWith('sign.')).map((e) => e.decision), ['deny']);
}

describe('an allow rule\'s `to` covers the native value a call sends to its target', () => {
  let h: Harness;
  let anvil: Anvil;
  before(async () => {
    h = await startHarness({ store: 'sqlite' });
    anvil = await startAnvil({ chainId: 8453 });
  });
  after(async () => {
    await h.close();
    await anvil.stop();
  });

  test('a transaction: 10 ETH to MALLORY with calldata transfer(ALICE, 1) is refused; the same calldata on USDC with no value still signs and lands', async () => {
    const { agent, token } = await provisionAgent(h, { policy: usdcPolicy(), actions: ['evm.transaction'] });
    const attack = await h.call('POST', '/v1/sign/transaction', { token, body: transaction(MALLORY, payAlice, 10n * ETH) });
    await assertNotGranted(h, attack, agent.name);
    // As a compromised agent goes on: the attack retried under one Idempotency-Key is refused each time, and under
    // the key of an allowed transfer it is that key's conflict, never the allowed signature's bytes or a new one.
    const keyed = { 'idempotency-key': 'ride-1' };
    for (let i = 0; i < 2; i++) {
      const again = await h.call('POST', '/v1/sign/transaction', { token, body: transaction(MALLORY, payAlice, 10n * ETH, 1), headers: keyed });
      assert.deepEqual([again.status, again.body.error?.code, again.body.signedTransaction], [403, 'policy_denied', undefined]);
    }
    const allowedKey = { 'idempotency-key': 'plain-1' };
    const allowed = await h.call('POST', '/v1/sign/transaction', { token, body: transaction(USDC, payAlice, 0n, 2), headers: allowedKey });
    assert.equal(allowed.status, 200, JSON.stringify(allowed.body).slice(0, 400));
    const swapped = await h.call('POST', '/v1/sign/transaction', { token, body: transaction(MALLORY, payAlice, 10n * ETH, 2), headers: allowedKey });
    assert.deepEqual([swapped.status, swapped.body.error?.code, swapped.body.signedTransaction], [409, 'idempotency_conflict', undefined]);
    // The rule still grants what it was written for, and a real node takes what it signed.
    const rpc = (method: string, params: unknown[]) => fetch(anvil.rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) });
    await rpc('anvil_setBalance', [agent.address, `0x${ETH.toString(16)}`]);
    const plain = await h.call('POST', '/v1/sign/transaction', { token, body: transaction(USDC, payAlice, 0n) });
    assert.equal(plain.status, 200, JSON.stringify(plain.body).slice(0, 400));
    const client = createPublicClient({ transport: http(anvil.rpcUrl) });
    const hash = await client.sendRawTransaction({ serializedTransaction: plain.body.signedTransaction as Hex });
    assert.equal((await client.getTransaction({ hash })).to?.toLowerCase(), USDC.toLowerCase());
  });

  test('a transaction: listing the target too grants it (the value goes where the rule says it may)', async () => {
    const policy = usdcPolicy();
    policy.sets.partners = [ALICE, MALLORY];
    const { token } = await provisionAgent(h, { policy, actions: ['evm.transaction'] });
    const res = await h.call('POST', '/v1/sign/transaction', { token, body: transaction(MALLORY, payAlice, 10n * ETH) });
    assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 400));
  });

  test('a user operation: an executeBatch call to MALLORY with 10 ETH and transfer(ALICE, 1) is refused', async () => {
    const policy = {
      version: 1,
      rules: [
        { name: 'pay-alice', type: 'allow', match: { actions: ['evm.user_operation'], chains: ['eip155:8453'], kinds: ['erc20.transfer'], to: [ALICE] } },
        { name: 'gas', type: 'user_operations', max_prefund: '5000000000000000' },
      ],
    };
    const { agent, token } = await provisionAgent(h, { policy, actions: ['evm.user_operation'] });
    const operation = (target: string, value: bigint) => ({
      chainId: 8453, entryPoint: ENTRY_POINT_V08, entryPointVersion: '0.8',
      userOperation: {
        sender: agent.address, nonce: '0',
        callData: encodeFunctionData({ abi: ACCOUNT, functionName: 'executeBatch', args: [[{ target: target as Hex, value, data: payAlice }]] }),
        callGasLimit: '200000', verificationGasLimit: '200000', preVerificationGas: '50000', maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1000000',
      },
    });
    await assertNotGranted(h, await h.call('POST', '/v1/sign/user-operation', { token, body: operation(MALLORY, 10n * ETH) }), agent.name);
    const plain = await h.call('POST', '/v1/sign/user-operation', { token, body: operation(USDC, 0n) });
    assert.equal(plain.status, 200, JSON.stringify(plain.body).slice(0, 400));
  });

  test('a SafeTx the agent co-signs: a CALL to MALLORY with 10 ETH and transfer(ALICE, 1) is refused', async () => {
    const policy = {
      version: 1,
      rules: [
        { name: 'safe-pay-alice', type: 'allow', match: { actions: ['evm.typed_data'], primary_types: ['SafeTx'], domains: [{ chain_id: 8453, verifying_contract: SAFE }], kinds: ['erc20.transfer'], to: [ALICE] } },
      ],
    };
    const { agent, token } = await provisionAgent(h, { policy, actions: ['evm.typed_data'] });
    const typedData = (to: string, value: bigint, nonce: bigint) => safeTxTypedData(SAFE, 8453, safeTx({ to: to as Hex, value, data: payAlice, nonce }));
    await assertNotGranted(h, await h.call('POST', '/v1/sign/typed-data', { token, body: { typedData: typedData(MALLORY, 10n * ETH, 0n) } }), agent.name);
    const plain = await h.call('POST', '/v1/sign/typed-data', { token, body: { typedData: typedData(USDC, 0n, 1n) } });
    assert.equal(plain.status, 200, JSON.stringify(plain.body).slice(0, 400));
  });
});
