// Allowances are judged per request on the total per token and spender: increaseAllowance adds to the allowance
// on chain, so the increases of one batch (an ERC-4337 user operation's executeBatch, a Safe MultiSend) add up.
// (Before, each call was judged alone: two increaseAllowance(ROUTER, 2^127) signed although together they are
// 2^128, Airlock's own unlimited line, and ten of 1000 USDC signed under a 1000 USDC max_allowance.)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFunctionData, parseAbi, type Address, type Hex } from 'viem';
import { MULTI_SEND_CALL_ONLY, multiSendData, safeTx, safeTxTypedData } from '../../x402-testbed/src/safe.ts';
import { BASE, USDC, USDC_ASSET, provisionAgent, startHarness, type Harness } from './testing/harness.ts';

const ENTRY_POINT_V08 = '0x4337084d9e255ff0702461cf8895ce9e3b5ff108';
const SAFE = '0x5afe00000000000000000000000000000000cafe';
const ROUTER = '0x7007e7007e7007e7007e7007e7007e7007e7007e';
const ACCOUNT_ABI = parseAbi(['function executeBatch((address target, uint256 value, bytes data)[] calls)']);
const ERC20 = parseAbi(['function approve(address spender, uint256 value) returns (bool)', 'function increaseAllowance(address spender, uint256 addedValue) returns (bool)']);
const usdc = (n: number) => BigInt(n) * 1_000_000n;
/** A session budget no test reaches: what it has used shows what was charged. */
const WATCH = { asset: USDC_ASSET, max: `1${'0'.repeat(60)}`, window: '24h' };

type Approve = ['approve' | 'increaseAllowance', bigint];
const increases = (count: number, each: bigint): Approve[] => Array.from({ length: count }, () => ['increaseAllowance', each]);
const calldata = ([fn, amount]: Approve) => encodeFunctionData({ abi: ERC20, functionName: fn, args: [ROUTER, amount] });
let nonce = 0;

/** One user operation whose executeBatch makes `calls` on USDC. */
const userOp = (sender: string, calls: Approve[]) => ({
  chainId: 8453, entryPoint: ENTRY_POINT_V08, entryPointVersion: '0.8',
  userOperation: {
    sender, nonce: String(nonce++),
    callData: encodeFunctionData({ abi: ACCOUNT_ABI, functionName: 'executeBatch', args: [calls.map((c) => ({ target: USDC as Hex, value: 0n, data: calldata(c) }))] }),
    callGasLimit: '200000', verificationGasLimit: '200000', preVerificationGas: '50000', maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1000000',
  },
});

/** One SafeTx delegatecalling MultiSendCallOnly with `calls` on USDC. */
const multiSend = (calls: Approve[]) => ({
  typedData: safeTxTypedData(SAFE, 8453, safeTx({
    to: MULTI_SEND_CALL_ONLY.toLowerCase() as Address, data: multiSendData(calls.map((c) => ({ to: USDC, data: calldata(c) }))), operation: 1, nonce: BigInt(nonce++),
  })),
});

const KINDS = ['erc20.increase_allowance', 'erc20.approve'];
type Via = 'user operation' | 'Safe MultiSend';
const ALLOW: Record<Via, unknown[]> = {
  'user operation': [
    { name: 'router', type: 'allow', match: { actions: ['evm.user_operation'], chains: [BASE], kinds: KINDS, to: [ROUTER], assets: [USDC_ASSET] } },
    { name: 'gas', type: 'user_operations', max_prefund: '5000000000000000' },
  ],
  'Safe MultiSend': [
    { name: 'router', type: 'allow', match: { actions: ['evm.typed_data'], primary_types: ['SafeTx'], domains: [{ chain_id: 8453, verifying_contract: SAFE }], kinds: KINDS, to: [ROUTER], assets: [USDC_ASSET] } },
  ],
};
const NO_UNLIMITED = { name: 'router-only', type: 'approvals', spenders: [ROUTER], allow_unlimited: false };
const CAPPED = { name: 'cap', type: 'approvals', max_allowance: { asset: USDC_ASSET, max: String(usdc(1_000)) } };

const outcome = (r: { status: number; body: any }) => ({
  status: r.status,
  codes: r.status === 200 || r.status === 202 ? [] : (r.body.error?.violations ?? []).map((v: any) => `${v.rule}:${v.code}`).sort(),
});

for (const store of ['sqlite', 'postgres'] as const) describe(`approvals judged on the request's total per token and spender (${store})`, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ store });
  });
  after(async () => {
    await h.close();
  });

  /** An agent under `rules` (after the allow rules for `via`), a function sending a batch through it, and what its session budget has used. */
  async function agentWith(via: Via, rules: unknown[]) {
    const { agent, token } = await provisionAgent(h, {
      policy: { version: 1, rules: [...ALLOW[via], ...rules] },
      actions: via === 'user operation' ? ['evm.user_operation'] : ['evm.typed_data'],
      budgets: [WATCH],
    });
    const send = (calls: Approve[]) => via === 'user operation'
      ? h.call('POST', '/v1/sign/user-operation', { token, body: userOp(agent.address, calls) })
      : h.call('POST', '/v1/sign/typed-data', { token, body: multiSend(calls) });
    const used = async () => {
      const r = await h.call('GET', '/v1/session/budgets', { token });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body.budgets.find((b: any) => b.asset === USDC_ASSET)?.used as string;
    };
    return { send, used };
  }

  /** Refused with exactly `codes`, nothing signed, nothing charged. */
  async function refused(r: { status: number; body: any }, codes: string[], used: () => Promise<string>) {
    assert.deepEqual(outcome(r), { status: 403, codes }, JSON.stringify(r.body));
    assert.equal(r.body.signature, undefined);
    assert.equal(r.body.approvalId, undefined);
    assert.equal(await used(), '0');
  }

  for (const via of ['user operation', 'Safe MultiSend'] as const) {
    test(`${via}: one increaseAllowance of 2^128 is unlimited, and so are two of 2^127 in one batch`, async () => {
      const { send, used } = await agentWith(via, [NO_UNLIMITED]);
      await refused(await send(increases(1, 1n << 128n)), ['agent/router-only:unlimited_approval'], used);
      const r = await send(increases(2, 1n << 127n));
      await refused(r, ['agent/router-only:unlimited_approval'], used);
      const v = r.body.error.violations[0];
      assert.match(v.message, /^2 calls in this request approving 0x7007e7007e7007e7007e7007e7007e7007e7007e for eip155:8453\/erc20:0x8335[0-9a-f]+ add up to 340282366920938463463374607431768211456 base units on top of the allowance already on chain: an unlimited approval/);
      // A batch under the line still signs, and is charged as what it approves.
      const ok = await send(increases(2, usdc(5)));
      assert.deepEqual(outcome(ok), { status: 200, codes: [] }, JSON.stringify(ok.body));
      assert.ok(ok.body.signature);
      assert.equal(await used(), String(usdc(10)));
    });

    test(`${via}: without an approvals rule, two increases of 2^127 are refused by the unlimited default`, async () => {
      const { send, used } = await agentWith(via, []);
      const r = await send(increases(2, 1n << 127n));
      await refused(r, ['agent/default:unlimited_approval'], used);
      assert.match(r.body.error.violations[0].message, /^2 calls in this request .* add up to 340282366920938463463374607431768211456 base units .*default deny/);
      assert.deepEqual(outcome(await send(increases(2, usdc(5)))), { status: 200, codes: [] });
    });

    test(`${via}: with allow_unlimited: true, two increases of 2^127 sign`, async () => {
      const { send } = await agentWith(via, [{ ...NO_UNLIMITED, allow_unlimited: true }]);
      assert.deepEqual(outcome(await send(increases(2, 1n << 127n))), { status: 200, codes: [] });
    });

    test(`${via}: max_allowance caps the batch's total: ten increases of the cap are refused, as one of twice the cap is`, async () => {
      const { send, used } = await agentWith(via, [CAPPED]);
      const one = await send(increases(1, usdc(2_000)));
      await refused(one, ['agent/cap:approval_exceeds_cap'], used);
      const ten = await send(increases(10, usdc(1_000)));
      await refused(ten, ['agent/cap:approval_exceeds_cap'], used);
      const v = ten.body.error.violations[0];
      assert.equal(v.requested, String(usdc(10_000)));
      assert.equal(v.limit, String(usdc(1_000)));
      assert.match(v.message, /^10 calls in this request approving 0x7007e7007e7007e7007e7007e7007e7007e7007e for .* add up to 10000000000 base units on top of the allowance already on chain, over the cap of 1000000000/);
      // An approve sets the allowance: what follows adds to it, not to the allowance on chain.
      const over = await send([['approve', usdc(500)], ['increaseAllowance', usdc(600)]]);
      await refused(over, ['agent/cap:approval_exceeds_cap'], used);
      assert.match(over.body.error.violations[0].message, /^2 calls in this request .* add up to 1100000000 base units, over the cap/);
      // Legitimate batches sign: increases adding up to the cap, and a reset to 0 followed by an approve of the cap.
      const ok = await send(increases(2, usdc(500)));
      assert.deepEqual(outcome(ok), { status: 200, codes: [] }, JSON.stringify(ok.body));
      assert.ok(ok.body.signature);
      assert.deepEqual(outcome(await send([['approve', 0n], ['approve', usdc(1_000)]])), { status: 200, codes: [] });
      assert.deepEqual(outcome(await send([['approve', usdc(300)], ['increaseAllowance', usdc(700)]])), { status: 200, codes: [] });
    });
  }
});
