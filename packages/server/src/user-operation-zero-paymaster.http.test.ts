// A user operation naming the zero address as its paymaster. The EntryPoint (v0.6, v0.7, v0.8) reads it as NO
// paymaster: the account deposits the prefund and pays the gas (v0.6 multiplies verification gas by 1, not 3).
// Found by review: Airlock read "a paymaster is named" and dropped the prefund from the spends, so budgets and
// max_amount never saw the gas the account can lose. It is now exactly an operation without a paymaster: the
// prefund is charged as a fee, no paymaster list is asked, and the bytes stay as sent (the userOpHash covers
// them). Every form: v0.6 paymasterAndData, v0.7 unpacked `paymaster`, v0.7 packed, v0.8. Over HTTP on both stores.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { concat, encodeFunctionData, pad, parseAbi, recoverAddress, toHex, type Hex } from 'viem';
import { getUserOperationHash } from 'viem/account-abstraction';
import { ALICE, provisionAgent, startHarness, type Harness, type StoreKind } from './testing/harness.ts';

const ENTRY_POINTS = {
  '0.6': '0x5ff137d4b0fdcd49dca30c7cf57e578a026d2789',
  '0.7': '0x0000000071727de22e5e9d8baf0edac6f37da032',
  '0.8': '0x4337084d9e255ff0702461cf8895ce9e3b5ff108',
} as const;
const ZERO = '0x0000000000000000000000000000000000000000';
const ACCOUNT_ABI = parseAbi(['function execute(address target, uint256 value, bytes data)']);
const OP_ETH = 'eip155:10/slip44:60';
const GWEI = 1_000_000_000n;

// 10M gas at 100 gwei: a prefund of 1 ETH (v0.6 with a real paymaster: verification gas x3).
const CALL_GAS = 5_000_000n;
const VERIFICATION_GAS = 4_900_000n;
const PRE_VERIFICATION_GAS = 100_000n;
const MAX_FEE = 100n * GWEI;
const PREFUND = (CALL_GAS + VERIFICATION_GAS + PRE_VERIFICATION_GAS) * MAX_FEE;
const VALUE = 1n;

const policy = (extra: unknown[] = []) => ({
  version: 1,
  rules: [
    { name: 'pay', type: 'allow', match: { actions: ['evm.user_operation'], kinds: ['native.transfer'], to: [ALICE] } },
    { name: 'eth-budget', type: 'budget', asset: OP_ETH, max: '100000000000000000000', window: '24h' },
    ...extra,
  ],
});

/** An operator listing the zero address among paymasters (or a list scoped elsewhere, which no longer lifts the default). */
const LISTS_ZERO = [{ name: 'paymasters', type: 'user_operations', paymasters: [ZERO] }];

const codes = (res: { body: any }) => (res.body.error?.violations ?? []).map((v: any) => `${v.rule} ${v.code}`).sort();

const word = (hi: bigint, lo: bigint) => concat([pad(toHex(hi), { size: 16 }), pad(toHex(lo), { size: 16 })]);

for (const store of ['sqlite', 'postgres'] as StoreKind[]) describe(`a zero-address paymaster is no paymaster: the account's prefund is charged (${store})`, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ store });
  });
  after(async () => h.close());

  async function agentWith(rules?: unknown[]) {
    const { agent, token } = await provisionAgent(h, { policy: policy(rules), actions: ['evm.user_operation'] });
    const used = async () => (await h.airlock.store.transaction((tx) => tx.windowTotals([{ series: `agent:${agent.id}`, asset: OP_ETH, sinceMs: 0 }])))[0]!.amount;
    /** Signs and returns what the request was charged in the chain's native asset. */
    const charged = async (body: unknown) => {
      const before = await used();
      const res = await h.call('POST', '/v1/sign/user-operation', { token, body });
      assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 400));
      return { charged: (await used()) - before, res };
    };
    return { agent, token, charged };
  }

  const callData = encodeFunctionData({ abi: ACCOUNT_ABI, functionName: 'execute', args: [ALICE, VALUE, '0x'] });
  const gas = { callGasLimit: String(CALL_GAS), verificationGasLimit: String(VERIFICATION_GAS), preVerificationGas: String(PRE_VERIFICATION_GAS), maxFeePerGas: String(MAX_FEE), maxPriorityFeePerGas: String(MAX_FEE) };

  test('v0.7 and v0.8 unpacked (paymaster: 0x0): charged value + prefund, exactly as without a paymaster; signed over the hash viem computes', async () => {
    const { agent, charged } = await agentWith(LISTS_ZERO);
    for (const version of ['0.7', '0.8'] as const) {
      const op = (nonce: number, paymaster?: { paymaster: string; paymasterVerificationGasLimit: string; paymasterPostOpGasLimit: string; paymasterData: Hex }) => ({
        chainId: 10, entryPoint: ENTRY_POINTS[version], entryPointVersion: version,
        userOperation: { sender: agent.address, nonce: String(nonce), callData, ...gas, ...paymaster },
      });
      const zero = { paymaster: ZERO, paymasterVerificationGasLimit: '0', paymasterPostOpGasLimit: '0', paymasterData: '0x' as Hex };
      const withZero = await charged(op(1, zero));
      const without = await charged(op(2));
      assert.equal(without.charged, VALUE + PREFUND);
      assert.equal(withZero.charged, VALUE + PREFUND, `v${version}: the zero-paymaster operation (paid by the account on chain) was charged ${withZero.charged} wei, not value + prefund`);
      // Paymaster gas limits under the zero paymaster still count: the EntryPoint's prefund adds them whoever pays.
      const limits = await charged(op(3, { ...zero, paymasterVerificationGasLimit: '1000', paymasterPostOpGasLimit: '2000', paymasterData: '0xabcd' }));
      assert.equal(limits.charged, VALUE + PREFUND + 3000n * MAX_FEE);
      // The bytes are kept as sent: the signature is over the userOpHash of the operation naming 0x0.
      const hash = getUserOperationHash({
        chainId: 10, entryPointAddress: ENTRY_POINTS[version], entryPointVersion: version,
        userOperation: {
          sender: agent.address as Hex, nonce: 3n, callData, callGasLimit: CALL_GAS, verificationGasLimit: VERIFICATION_GAS, preVerificationGas: PRE_VERIFICATION_GAS,
          maxFeePerGas: MAX_FEE, maxPriorityFeePerGas: MAX_FEE, paymaster: ZERO, paymasterVerificationGasLimit: 1000n, paymasterPostOpGasLimit: 2000n, paymasterData: '0xabcd', signature: '0x',
        },
      });
      assert.equal((await recoverAddress({ hash, signature: limits.res.body.signature })).toLowerCase(), agent.address.toLowerCase());
    }
  });

  test('v0.7 packed (paymasterAndData starting with 20 zero bytes): charged value + prefund + the paymaster gas limits', async () => {
    const { agent, charged } = await agentWith(LISTS_ZERO);
    const packed = (nonce: number, paymasterAndData: Hex) => ({
      chainId: 10, entryPoint: ENTRY_POINTS['0.7'], entryPointVersion: '0.7',
      userOperation: {
        sender: agent.address, nonce: String(nonce), initCode: '0x', callData,
        accountGasLimits: word(VERIFICATION_GAS, CALL_GAS), preVerificationGas: String(PRE_VERIFICATION_GAS), gasFees: word(MAX_FEE, MAX_FEE), paymasterAndData,
      },
    });
    const { charged: amount } = await charged(packed(1, concat([ZERO, pad(toHex(1000n), { size: 16 }), pad(toHex(2000n), { size: 16 })])));
    assert.equal(amount, VALUE + PREFUND + 3000n * MAX_FEE, `the packed zero-paymaster operation was charged ${amount} wei`);
    assert.equal((await charged(packed(2, '0x'))).charged, VALUE + PREFUND);
  });

  test('v0.6 (paymasterAndData = 20 zero bytes + data): charged value + prefund with verification gas counted once, as the EntryPoint does', async () => {
    const { agent, charged } = await agentWith(LISTS_ZERO);
    const op = (nonce: number, paymasterAndData: Hex) => ({
      chainId: 10, entryPoint: ENTRY_POINTS['0.6'], entryPointVersion: '0.6',
      userOperation: { sender: agent.address, nonce: String(nonce), initCode: '0x', callData, ...gas, paymasterAndData, signature: '0x' },
    });
    const { charged: amount } = await charged(op(1, `${ZERO}abcdef`));
    assert.equal(amount, VALUE + PREFUND, `the v0.6 zero-paymaster operation was charged ${amount} wei`);
    assert.equal((await charged(op(2, '0x'))).charged, VALUE + PREFUND);
  });

  test('the zero paymaster needs no paymaster list, and a list (even one naming 0x0) does not hide the prefund from max_prefund or a budget', async () => {
    const zeroOp = (sender: string, nonce: number) => ({
      chainId: 10, entryPoint: ENTRY_POINTS['0.7'], entryPointVersion: '0.7',
      userOperation: { sender, nonce: String(nonce), callData, ...gas, paymaster: ZERO, paymasterVerificationGasLimit: '0', paymasterPostOpGasLimit: '0', paymasterData: '0x' },
    });
    // No paymaster list at all: the zero paymaster is no paymaster, so the paymaster default does not refuse it.
    const bare = await agentWith();
    assert.equal((await bare.charged(zeroOp(bare.agent.address, 1))).charged, VALUE + PREFUND);
    // An operator listing 0x0 among paymasters, a 1 ETH budget: value + 1 ETH prefund is over it.
    const listed = await provisionAgent(h, {
      policy: {
        version: 1,
        rules: [
          policy().rules[0],
          ...LISTS_ZERO,
          { name: 'eth-1', type: 'budget', asset: OP_ETH, max: '1000000000000000000', window: '24h' },
        ],
      },
      actions: ['evm.user_operation'],
    });
    const overBudget = await h.call('POST', '/v1/sign/user-operation', { token: listed.token, body: zeroOp(listed.agent.address, 1) });
    assert.equal(overBudget.status, 403, `the zero-paymaster operation passed a 1 ETH budget with a 1 ETH prefund: ${JSON.stringify(overBudget.body).slice(0, 300)}`);
    assert.deepEqual(codes(overBudget), ['agent/eth-1 budget_exceeded']);
    assert.equal(overBudget.body.signature, undefined);
    // A prefund cap applies to it as to any self-paid operation.
    const capped = await provisionAgent(h, { policy: policy([{ name: 'prefund', type: 'user_operations', max_prefund: '1000' }]), actions: ['evm.user_operation'] });
    const overCap = await h.call('POST', '/v1/sign/user-operation', { token: capped.token, body: zeroOp(capped.agent.address, 1) });
    assert.equal(overCap.status, 403);
    assert.deepEqual(codes(overCap), ['agent/prefund prefund_exceeds_cap']);
  });
});
