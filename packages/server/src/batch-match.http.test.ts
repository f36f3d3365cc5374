// Caps, budgets, approval tiers and rate limits whose `match` names what a batch's calls are (`kinds:
// [erc20.transfer]`) hold for the batch: one ERC-4337 user operation or one Safe MultiSend of N transfers is capped,
// budgeted and tiered on the transfers' sum and counts N requests, exactly as the same rules without a match
// would judge it. (Before, the whole, of kind erc4337.user_operation / safe.transaction, was touched by no such
// match: 40 x 25 USDC signed against a 25 USDC cap, a 100 USDC daily budget and a human above 30 USDC.)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { getMultiSendCallOnlyDeployment } from '@safe-global/safe-deployments';
import { concat, encodeFunctionData, encodePacked, parseAbi, size, type Hex } from 'viem';
import { ALICE, USDC, USDC_ASSET, provisionAgent, startHarness, type Harness } from './testing/harness.ts';

const ENTRY_POINT_V08 = '0x4337084d9e255ff0702461cf8895ce9e3b5ff108';
const SAFE = '0x5afe00000000000000000000000000000000cafe';
const MULTI_SEND_CALL_ONLY = getMultiSendCallOnlyDeployment({ version: '1.5.0' })!.deployments.canonical!.address.toLowerCase();
const ACCOUNT_ABI = parseAbi(['function executeBatch((address target, uint256 value, bytes data)[] calls)']);
const ERC20 = parseAbi(['function transfer(address to, uint256 value) returns (bool)']);
const MULTI_SEND_ABI = parseAbi(['function multiSend(bytes transactions) payable']);
const TRANSFERS = { kinds: ['erc20.transfer'] };
const usdc = (n: number) => BigInt(n) * 1_000_000n;

const transfer = (amount: bigint) => encodeFunctionData({ abi: ERC20, functionName: 'transfer', args: [ALICE, amount] });
let nonce = 0;

/** One user operation whose executeBatch makes `count` transfers of `each` to ALICE. */
const userOp = (sender: string, count: number, each: bigint) => ({
  chainId: 8453, entryPoint: ENTRY_POINT_V08, entryPointVersion: '0.8',
  userOperation: {
    sender, nonce: String(nonce++),
    callData: encodeFunctionData({ abi: ACCOUNT_ABI, functionName: 'executeBatch', args: [Array.from({ length: count }, () => ({ target: USDC as Hex, value: 0n, data: transfer(each) }))] }),
    callGasLimit: '200000', verificationGasLimit: '200000', preVerificationGas: '50000', maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1000000',
  },
});

/** One SafeTx delegatecalling MultiSendCallOnly with `count` transfers of `each` to ALICE. */
const multiSend = (count: number, each: bigint) => {
  const packed = concat(Array.from({ length: count }, () => {
    const data = transfer(each);
    return encodePacked(['uint8', 'address', 'uint256', 'uint256', 'bytes'], [0, USDC as Hex, 0n, BigInt(size(data)), data]);
  }));
  const message = {
    to: MULTI_SEND_CALL_ONLY, value: '0', data: encodeFunctionData({ abi: MULTI_SEND_ABI, functionName: 'multiSend', args: [packed] }), operation: 1,
    safeTxGas: '0', baseGas: '0', gasPrice: '0', gasToken: '0x0000000000000000000000000000000000000000', refundReceiver: '0x0000000000000000000000000000000000000000', nonce: String(nonce++),
  };
  return {
    typedData: {
      domain: { chainId: 8453, verifyingContract: SAFE },
      types: { SafeTx: [
        { name: 'to', type: 'address' }, { name: 'value', type: 'uint256' }, { name: 'data', type: 'bytes' }, { name: 'operation', type: 'uint8' },
        { name: 'safeTxGas', type: 'uint256' }, { name: 'baseGas', type: 'uint256' }, { name: 'gasPrice', type: 'uint256' },
        { name: 'gasToken', type: 'address' }, { name: 'refundReceiver', type: 'address' }, { name: 'nonce', type: 'uint256' },
      ] },
      primaryType: 'SafeTx', message,
    },
  };
};

type Via = 'user operation' | 'Safe MultiSend';
const ALLOW: Record<Via, unknown[]> = {
  'user operation': [
    { name: 'pay-shops', type: 'allow', match: { actions: ['evm.user_operation'], chains: ['eip155:8453'], kinds: ['erc20.transfer'], assets: [USDC_ASSET], to: [ALICE] } },
    { name: 'gas', type: 'user_operations', max_prefund: '5000000000000000' },
  ],
  'Safe MultiSend': [
    { name: 'co-sign-shops', type: 'allow', match: { actions: ['evm.typed_data'], primary_types: ['SafeTx'], domains: [{ chain_id: 8453, verifying_contract: SAFE }], kinds: ['erc20.transfer'], assets: [USDC_ASSET], to: [ALICE] } },
  ],
};

const outcome = (r: { status: number; body: any }) => ({
  status: r.status,
  codes: r.status === 200 || r.status === 202 ? [] : (r.body.error?.violations ?? []).map((v: any) => `${v.rule} ${v.code}`).sort(),
});

for (const store of ['sqlite', 'postgres'] as const) describe(`batches against caps, budgets, tiers and rate limits matching their calls (${store})`, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ store });
  });
  after(async () => {
    await h.close();
  });

  /** An agent under `rules` (after the allow rules for `via`) and a function sending a batch of `count` x `each` through it. */
  async function agentWith(via: Via, rules: unknown[]) {
    const { agent, token } = await provisionAgent(h, { policy: { version: 1, rules: [...ALLOW[via], ...rules] }, actions: via === 'user operation' ? ['evm.user_operation'] : ['evm.typed_data'] });
    return (count: number, each: bigint) => via === 'user operation'
      ? h.call('POST', '/v1/sign/user-operation', { token, body: userOp(agent.address, count, each) })
      : h.call('POST', '/v1/sign/typed-data', { token, body: multiSend(count, each) });
  }

  for (const via of ['user operation', 'Safe MultiSend'] as const) {
    test(`${via}: the reviewer's batch of 40 x 25 USDC is refused by the 25 cap and the 100 budget, and charges nothing`, async () => {
      const send = await agentWith(via, [
        { name: 'per-transfer', type: 'max_amount', asset: USDC_ASSET, max: String(usdc(25)), match: TRANSFERS },
        { name: 'daily', type: 'budget', asset: USDC_ASSET, max: String(usdc(100)), window: '24h', match: TRANSFERS },
        { name: 'big-by-hand', type: 'approval_tier', asset: USDC_ASSET, above: String(usdc(30)), match: TRANSFERS },
      ]);
      const r = await send(40, usdc(25));
      assert.deepEqual(outcome(r), { status: 403, codes: ['agent/daily budget_exceeded', 'agent/per-transfer amount_exceeds_max'] }, JSON.stringify(r.body));
      assert.equal(r.body.signature, undefined);
      const cap = r.body.error.violations.find((v: any) => v.code === 'amount_exceeds_max');
      assert.equal(cap.requested, String(usdc(1_000)));
      // Nothing was charged: a 25 USDC transfer still signs.
      assert.deepEqual(outcome(await send(1, usdc(25))), { status: 200, codes: [] });
    });

    test(`${via}: a per-transfer cap sees the batch's sum`, async () => {
      const send = await agentWith(via, [{ name: 'per-transfer', type: 'max_amount', asset: USDC_ASSET, max: String(usdc(25)), match: TRANSFERS }]);
      const r = await send(2, usdc(20));
      assert.deepEqual(outcome(r), { status: 403, codes: ['agent/per-transfer amount_exceeds_max'] }, JSON.stringify(r.body));
      assert.equal(r.body.error.violations[0].requested, String(usdc(40)));
      assert.deepEqual(outcome(await send(1, usdc(20))), { status: 200, codes: [] });
    });

    test(`${via}: a transfers budget sees the batch's sum, and the next request sees the charge`, async () => {
      const send = await agentWith(via, [{ name: 'daily', type: 'budget', asset: USDC_ASSET, max: String(usdc(100)), window: '24h', match: TRANSFERS }]);
      assert.deepEqual(outcome(await send(5, usdc(25))), { status: 403, codes: ['agent/daily budget_exceeded'] });
      assert.deepEqual(outcome(await send(4, usdc(25))), { status: 200, codes: [] });
      const next = await send(1, 1n);
      assert.deepEqual(outcome(next), { status: 403, codes: ['agent/daily budget_exceeded'] });
      assert.equal(next.body.error.violations[0].used, String(usdc(100)));
    });

    test(`${via}: an approval tier for transfers above 30 USDC holds a batch whose transfers add up above it`, async () => {
      const send = await agentWith(via, [{ name: 'big-by-hand', type: 'approval_tier', asset: USDC_ASSET, above: String(usdc(30)), match: TRANSFERS }]);
      const held = await send(2, usdc(20));
      assert.equal(held.status, 202, JSON.stringify(held.body));
      assert.equal(held.body.signature, undefined);
      assert.ok(held.body.approvalId);
      assert.deepEqual(outcome(await send(1, usdc(20))), { status: 200, codes: [] });
    });

    test(`${via}: a transfers rate limit counts each transfer of a batch, in the check and in the charge`, async () => {
      const send = await agentWith(via, [{ name: 'hourly', type: 'rate_limit', max: 3, window: '1h', match: TRANSFERS }]);
      const over = await send(4, 1n);
      assert.deepEqual(outcome(over), { status: 403, codes: ['agent/hourly rate_limit_exceeded'] }, JSON.stringify(over.body));
      assert.equal(over.body.error.violations[0].requested, '4');
      assert.deepEqual(outcome(await send(3, 1n)), { status: 200, codes: [] });
      // The batch of 3 counted 3: a fourth transfer is over.
      const next = await send(1, 1n);
      assert.deepEqual(outcome(next), { status: 403, codes: ['agent/hourly rate_limit_exceeded'] });
      assert.equal(next.body.error.violations[0].used, '3');
    });
  }
});
