// A call into a declared module (policy `abis` with `executes`, e.g. Zodiac Roles' execTransactionWithRole) made
// inside an ERC-4337 user operation is judged as it is in a plain transaction: by the call the module makes its
// account execute (recipient allowlist, DELEGATECALL refusal, caps, budgets), the module call itself neither
// needing nor granting anything unless it moves value of its own (native value sent to the module: granted only by an
// allow rule covering the module contract and that asset); the operation is charged once for what the inner call
// moves, and its summary (audit entry, approval) names the inner call.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFunctionData, parseAbi, type Hex } from 'viem';
import { ALICE, MALLORY, USDC, USDC_ASSET, provisionAgent, startHarness, type Harness } from './testing/harness.ts';

const ROLES = '0x4444444444444444444444444444444444444444';
const EVIL = '0x6666666666666666666666666666666666666666';
const ENTRY_POINT_V08 = '0x4337084d9e255ff0702461cf8895ce9e3b5ff108';
const ROLES_FN = 'function execTransactionWithRole(address to, uint256 value, bytes data, uint8 operation, bytes32 roleKey, bool shouldRevert) returns (bool success)';
const ACCOUNT_ABI = parseAbi(['function execute(address target, uint256 value, bytes data)']);
const ROLES_ABI = parseAbi([ROLES_FN]);
const ERC20 = parseAbi(['function transfer(address to, uint256 value) returns (bool)']);
const ROLE = `0x${'11'.repeat(32)}` as const;
const EXEC_WITH_ROLE = '0xc6fe8747';

const roleCall = (to: string, data: Hex, operation: number) =>
  encodeFunctionData({ abi: ROLES_ABI, functionName: 'execTransactionWithRole', args: [to as Hex, 0n, data, operation, ROLE, true] });
const transfer = (to: string, amount: bigint) => encodeFunctionData({ abi: ERC20, functionName: 'transfer', args: [to as Hex, amount] });
const toPartner = (amount = 30_000_000n) => roleCall(USDC, transfer(ALICE, amount), 0);
const toMallory = (amount = 30_000_000n) => roleCall(USDC, transfer(MALLORY, amount), 0);
const delegateToEvil = () => roleCall(EVIL, '0xdeadbeef', 1);

let opNonce = 0;
const userOp = (sender: string, inner: Hex, value = 0n) => ({
  chainId: 8453,
  entryPoint: ENTRY_POINT_V08,
  entryPointVersion: '0.8',
  userOperation: {
    sender,
    nonce: String(opNonce++),
    callData: encodeFunctionData({ abi: ACCOUNT_ABI, functionName: 'execute', args: [ROLES, value, inner] }),
    callGasLimit: '200000', verificationGasLimit: '200000', preVerificationGas: '50000', maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1000000',
  },
});
const transaction = (inner: Hex, nonce: number, value = 0n) => ({
  chainId: 8453,
  transaction: { type: 'eip1559', to: ROLES, value: value.toString(), data: inner, nonce, gas: '200000', maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1000000' },
});

/** The docs' Roles policy, for transactions and user operations alike; `extra` rules appended. */
function policy(extra: unknown[] = []) {
  return {
    version: 1,
    sets: { partners: [ALICE] },
    abis: { roles: { contracts: [ROLES], functions: [ROLES_FN], moves: { execTransactionWithRole: { executes: { to: 'to', value: 'value', data: 'data', operation: 'operation' } } } } },
    rules: [
      { name: 'pay-partners', type: 'allow', match: { actions: ['evm.transaction', 'evm.user_operation'], chains: ['eip155:8453'], kinds: ['erc20.transfer'], assets: [USDC_ASSET], to: '$partners' } },
      { name: 'usdc-cap', type: 'max_amount', asset: USDC_ASSET, max: '40000000' },
      { name: 'gas', type: 'user_operations', max_prefund: '5000000000000000' },
      ...extra,
    ],
  };
}

/** What an operator might add once user operations through the module were refused as contract_call_not_allowed. */
const MODULE_RULE = { name: 'use-the-roles-module', type: 'allow', match: { actions: ['evm.user_operation'], chains: ['eip155:8453'], kinds: ['contract.call'], contracts: [ROLES], selectors: [EXEC_WITH_ROLE] } };

const outcome = (r: { status: number; body: any }) => ({
  status: r.status,
  codes: r.status === 200 ? [] : (r.body.error?.violations ?? []).map((v: any) => v.code).sort(),
});

for (const store of ['sqlite', 'postgres'] as const) describe(`a module call inside a user operation is judged by the call the module executes (${store})`, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ store });
  });
  after(async () => {
    await h.close();
  });
  const signTx = (token: string, body: unknown) => h.call('POST', '/v1/sign/transaction', { token, body });
  const signOp = (token: string, body: unknown) => h.call('POST', '/v1/sign/user-operation', { token, body });
  const actions = ['evm.transaction', 'evm.user_operation'];

  for (const [label, extra] of [['without a rule naming the module', []], ['with an allow rule naming the module\'s contract and selector', [MODULE_RULE]]] as const) {
    test(`${label}: the same answers as a transaction (partner 200, DELEGATECALL and MALLORY refused)`, async () => {
      const { agent, token } = await provisionAgent(h, { policy: policy([...extra]), actions });
      const cases: [string, Hex, { status: number; codes: string[] }][] = [
        ['to a partner', toPartner(), { status: 200, codes: [] }],
        ['DELEGATECALL', delegateToEvil(), { status: 403, codes: ['delegatecall_not_allowed'] }],
        ['to MALLORY', toMallory(), { status: 403, codes: ['no_matching_allow_rule'] }],
        ['over the cap to MALLORY', toMallory(50_000_000n), { status: 403, codes: ['amount_exceeds_max', 'no_matching_allow_rule'] }],
      ];
      let txNonce = 0;
      for (const [what, inner, expected] of cases) {
        const asTx = await signTx(token, transaction(inner, txNonce++));
        assert.deepEqual(outcome(asTx), expected, `transaction ${what}: ${JSON.stringify(asTx.body)}`);
        const asOp = await signOp(token, userOp(agent.address, inner));
        assert.deepEqual(outcome(asOp), expected, `user operation ${what}: ${JSON.stringify(asOp.body)}`);
        if (expected.status !== 200) {
          assert.equal(asOp.body.signature, undefined);
          // The refusal names the call the module executes.
          assert.match(JSON.stringify(asOp.body.error.violations), /call 1 of 1 \(contract\.call 0x4444444444444444444444444444444444444444\): call 1 of 1 \((contract\.delegatecall|erc20\.transfer) /);
        } else {
          // Granted by the rule granting the transfer, as the transaction is: the module rule grants nothing.
          assert.deepEqual(asOp.body.allowedBy, ['agent/pay-partners']);
          assert.deepEqual(asTx.body.allowedBy, ['agent/pay-partners']);
        }
      }
    });
  }

  test('native value sent to the module is refused unless an allow rule grants it, though the executed transfer is allowed', async () => {
    const ETH_BASE = 'eip155:8453/slip44:60';
    const ONE_ETH = 10n ** 18n;
    const { agent, token } = await provisionAgent(h, { policy: policy(), actions });
    const asOp = await signOp(token, userOp(agent.address, toPartner(), ONE_ETH));
    assert.deepEqual(outcome(asOp), { status: 403, codes: ['contract_call_not_allowed'] }, JSON.stringify(asOp.body));
    assert.equal(asOp.body.signature, undefined);
    assert.match(JSON.stringify(asOp.body.error.violations), /the module call itself \(contract\.call 0x4{40}, moving value of its own\)/);
    const asTx = await signTx(token, transaction(toPartner(), 0, ONE_ETH));
    assert.deepEqual(outcome(asTx), { status: 403, codes: ['contract_call_not_allowed'] }, JSON.stringify(asTx.body));
    // With no value of its own, the same module call executing the same transfer is allowed.
    assert.equal((await signOp(token, userOp(agent.address, toPartner()))).status, 200);
    assert.equal((await signTx(token, transaction(toPartner(), 0))).status, 200);

    // An allow rule covering the module contract and the native coin grants the value; the transfer is still judged.
    const moduleValue = { name: 'roles-value', type: 'allow', match: { actions, chains: ['eip155:8453'], kinds: ['contract.call'], contracts: [ROLES], assets: [ETH_BASE] } };
    const granted = await provisionAgent(h, { policy: policy([moduleValue]), actions });
    const ok = await signOp(granted.token, userOp(granted.agent.address, toPartner(), ONE_ETH));
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.deepEqual([...ok.body.allowedBy].sort(), ['agent/pay-partners', 'agent/roles-value']);
    const okTx = await signTx(granted.token, transaction(toPartner(), 0, ONE_ETH));
    assert.equal(okTx.status, 200, JSON.stringify(okTx.body));
    const stillMallory = await signOp(granted.token, userOp(granted.agent.address, toMallory(), ONE_ETH));
    assert.deepEqual(outcome(stillMallory), { status: 403, codes: ['no_matching_allow_rule'] });
  });

  test('budgets: the inner transfer is counted once, and a budget matching only transfers sees it', async () => {
    // 45 USDC a day for erc20 transfers (the inner call's kind, not the module call's nor the operation's).
    const { agent, token } = await provisionAgent(h, {
      policy: policy([MODULE_RULE, { name: 'transfers-daily', type: 'budget', asset: USDC_ASSET, max: '45000000', window: '24h', match: { kinds: ['erc20.transfer'] } }]),
      actions,
    });
    const first = await signOp(token, userOp(agent.address, toPartner(20_000_000n)));
    assert.equal(first.status, 200, JSON.stringify(first.body));
    // The operation spends the transfer once, plus its prefund.
    assert.deepEqual(first.body.intent.spends.filter((s: any) => s.asset === USDC_ASSET), [{ asset: USDC_ASSET, amount: '20000000', to: ALICE, kind: 'transfer' }]);
    // Charged 20, not 40: a second 20 still fits the 45 budget.
    const second = await signOp(token, userOp(agent.address, toPartner(20_000_000n)));
    assert.equal(second.status, 200, JSON.stringify(second.body));
    // 40 used: 20 more is over, inside a user operation as in a transaction.
    const third = await signOp(token, userOp(agent.address, toPartner(20_000_000n)));
    assert.deepEqual(outcome(third), { status: 403, codes: ['budget_exceeded'] });
    const asTx = await signTx(token, transaction(toPartner(20_000_000n), 0));
    assert.deepEqual(outcome(asTx), { status: 403, codes: ['budget_exceeded'] });
    // 5 USDC still fits.
    const last = await signOp(token, userOp(agent.address, toPartner(5_000_000n)));
    assert.equal(last.status, 200, JSON.stringify(last.body));
  });

  test('the summary (response, audit entry, approval) names the call the module executes', async () => {
    const { agent, token } = await provisionAgent(h, {
      policy: policy([MODULE_RULE, { name: 'big-needs-human', type: 'approval_tier', asset: USDC_ASSET, above: '25000000' }]),
      actions,
    });
    const inner = new RegExp(`\\(1\\) call execTransactionWithRole on ${ROLES}, which makes its account transfer 30000000 of ${USDC_ASSET} to ${ALICE}`);
    const held = await signOp(token, userOp(agent.address, toPartner()));
    assert.equal(held.status, 202, JSON.stringify(held.body));
    const approval = await h.admin('GET', `/v1/approvals/${held.body.approvalId}`);
    assert.equal(approval.status, 200, JSON.stringify(approval.body));
    assert.match(JSON.stringify(approval.body), inner);
    assert.doesNotMatch(JSON.stringify(approval.body), new RegExp(`call ${EXEC_WITH_ROLE}`));

    const signed = await signOp(token, userOp(agent.address, toPartner(10_000_000n)));
    assert.equal(signed.status, 200, JSON.stringify(signed.body));
    assert.match(signed.body.intent.summary, /\(1\) call execTransactionWithRole on 0x4{40}, which makes its account transfer 10000000 /);
    const entries = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=sign.request&limit=1000`)).body.entries as any[];
    assert.equal(entries.length, 2);
    for (const e of entries) {
      assert.match(JSON.stringify(e), /call execTransactionWithRole on 0x4{40}, which makes its account transfer/);
      assert.doesNotMatch(JSON.stringify(e), new RegExp(`call ${EXEC_WITH_ROLE}`));
    }
  });
});
