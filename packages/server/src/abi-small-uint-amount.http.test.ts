// A policy's `abis` may name an amount held in any unsigned integer type. Found by review (LOW): validation accepted
// a uint8..uint48 amount, but viem decodes integers of 48 bits or fewer as JS numbers and the declared spend read
// only bigints, so every well-formed call of that function was refused abi_decode_failed ("argument amount is not
// an amount"); a module's `executes.value` of such a type likewise ("the executed call's arguments do not decode").
// Now both are read as amounts: the call signs and is charged exactly what it declares. Over HTTP, on SQLite and
// PostgreSQL.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFunctionData, parseAbi, type Hex } from 'viem';
import { ALICE, USDC, USDC_ASSET, provisionAgent, startHarness, type Harness, type StoreKind } from './testing/harness.ts';

const ROUTER = '0x7777777777777777777777777777777777777777';
const MODULE = '0x6666666666666666666666666666666666666666';
const PAY_FN = 'function pay(address token, uint48 amount, address to)';
const EXEC_FN = 'function exec(address to, uint32 value, bytes data, uint8 operation)';
const ETH_ASSET = 'eip155:8453/slip44:60';
const FIVE_USDC = 5_000_000n;

const pay = (amount: bigint) => encodeFunctionData({ abi: parseAbi([PAY_FN]), functionName: 'pay', args: [USDC, Number(amount), ALICE] });
/** The module makes its account send `value` wei to Alice. */
const execToAlice = (value: number) => encodeFunctionData({ abi: parseAbi([EXEC_FN]), functionName: 'exec', args: [ALICE, value, '0x', 0] });

const POLICY = {
  version: 1,
  abis: {
    router: { contracts: [ROUTER], functions: [PAY_FN], moves: { pay: { spends: [{ asset: 'token', amount: 'amount', to: 'to' }] } } },
    module: { contracts: [MODULE], functions: [EXEC_FN], moves: { exec: { executes: { to: 'to', value: 'value', data: 'data', operation: 'operation' } } } },
  },
  rules: [
    { name: 'router', type: 'allow', match: { actions: ['evm.transaction'], contracts: [ROUTER], assets: [USDC_ASSET] } },
    { name: 'eth-to-alice', type: 'allow', match: { actions: ['evm.transaction'], kinds: ['native.transfer'], to: [ALICE] } },
    // Room for exactly two 5 USDC payments.
    { name: 'usdc-daily', type: 'budget', asset: USDC_ASSET, max: (2n * FIVE_USDC).toString(), window: '24h' },
  ],
};

const outcome = (r: { status: number; body: any }) => ({
  status: r.status,
  codes: r.status === 200 ? [] : (r.body.error?.violations ?? []).map((v: any) => `${v.rule} ${v.code}`).sort(),
});
const spendsOf = (body: any, asset: string) => (body.intent.spends as any[]).filter((s) => s.asset === asset && s.kind !== 'fee').map((s) => ({ amount: String(s.amount), to: s.to }));

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`abis: an amount of a uint type of 48 bits or fewer is read and charged (${store})`, () => {
    let h: Harness;
    let token: string;
    let nonce = 0;
    before(async () => {
      h = await startHarness({ store });
      ({ token } = await provisionAgent(h, { policy: POLICY, actions: ['evm.transaction'] }));
    });
    after(() => h?.close());

    const signTx = (to: string, data: Hex) => h.call('POST', '/v1/sign/transaction', {
      token,
      body: { chainId: 8453, transaction: { type: 'eip1559', to, value: '0', data, nonce: nonce++, gas: '100000', maxFeePerGas: '1000000', maxPriorityFeePerGas: '1000' } },
    });

    test('a declared uint48 amount signs and is charged exactly: two 5 USDC payments fill the 10 USDC budget, one unit more is refused', async () => {
      for (let i = 0; i < 2; i++) {
        const r = await signTx(ROUTER, pay(FIVE_USDC));
        assert.deepEqual(outcome(r), { status: 200, codes: [] }, JSON.stringify(r.body));
        assert.deepEqual(spendsOf(r.body, USDC_ASSET), [{ amount: FIVE_USDC.toString(), to: ALICE }]);
      }
      assert.deepEqual(outcome(await signTx(ROUTER, pay(1n))), { status: 403, codes: ['agent/usdc-daily budget_exceeded'] });
    });

    test('the largest uint48 amount is read whole (a dry-run is refused for exactly that much)', async () => {
      const max = 2n ** 48n - 1n;
      const r = await h.call('POST', '/v1/dry-run', {
        token,
        body: { action: 'evm.transaction', payload: { chainId: 8453, transaction: { type: 'eip1559', to: ROUTER, value: '0', data: pay(max), nonce: 0, gas: '100000', maxFeePerGas: '1000000', maxPriorityFeePerGas: '1000' } } },
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      // Over the budget: refused for the whole amount, which the refusal names as requested.
      const [v] = r.body.decision.violations;
      assert.deepEqual([v.rule, v.code, v.requested], ['agent/usdc-daily', 'budget_exceeded', max.toString()]);
      assert.deepEqual(spendsOf(r.body, USDC_ASSET), [{ amount: max.toString(), to: ALICE }]);
    });

    test("a module's uint32 executes.value is the native value its account sends", async () => {
      const r = await signTx(MODULE, execToAlice(7));
      assert.deepEqual(outcome(r), { status: 200, codes: [] }, JSON.stringify(r.body));
      assert.deepEqual(spendsOf(r.body, ETH_ASSET), [{ amount: '7', to: ALICE }]);
    });
  });
}
