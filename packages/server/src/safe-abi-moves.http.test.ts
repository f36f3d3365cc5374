// A Safe's calls decode against the policy's `abis` as a transaction's do. Found by review (Medium): a SafeTx's calls
// were decoded only with the adapter's ABI registry, never with the layers' `abis`, so the `moves` a policy declares
// for a router's swap were dropped: the swap that a plain transaction is refused for (over the cap, over the
// budget, to a recipient outside the allowlist) was signed as a SafeTx with no spends and nothing charged, again at
// every nonce. Now each call the Safe executes (MultiSend entries included) is enriched as a user operation's calls
// are, and the SafeTx's spends, approvals and summary are built from them. Over HTTP, on SQLite and PostgreSQL.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFunctionData, parseAbi, type Address, type Hex } from 'viem';
import { MULTI_SEND_CALL_ONLY, multiSendData, safeTx, safeTxTypedData } from '../../x402-testbed/src/safe.ts';
import { ALICE, MALLORY, USDC, USDC_ASSET, provisionAgent, startHarness, type Harness, type StoreKind } from './testing/harness.ts';

const SAFE = '0x5afe00000000000000000000000000000000beef';
const ROUTER = '0x7777777777777777777777777777777777777777';
const SWAP_FN = 'function swap(address tokenIn, uint256 amountIn, address recipient)';
const ROUTER_ABI = parseAbi([SWAP_FN]);
const SWAP = encodeFunctionData({ abi: ROUTER_ABI, functionName: 'swap', args: [USDC, 0n, ALICE] }).slice(0, 10);
const DOMAIN = { chain_id: 8453, verifying_contract: SAFE };

const swap = (amount: bigint, recipient: string) => encodeFunctionData({ abi: ROUTER_ABI, functionName: 'swap', args: [USDC, amount, recipient as Hex] });

let safeNonce = 0;
/** A SafeTx (no refund) at the next nonce. */
const safeRequest = (to: Address, data: Hex, operation: 0 | 1) => ({ typedData: safeTxTypedData(SAFE, 8453, safeTx({ to, data, operation, nonce: BigInt(safeNonce++) })) });
/** A SafeTx calling the router's swap. */
const safeSwap = (amount: bigint, recipient: string) => safeRequest(ROUTER, swap(amount, recipient), 0);
/** A SafeTx delegatecalling MultiSendCallOnly with these calls to the router. */
const safeMultiSend = (calls: Hex[]) => safeRequest(MULTI_SEND_CALL_ONLY.toLowerCase() as Address, multiSendData(calls.map((data) => ({ to: ROUTER, data }))), 1);
let txNonce = 0;
const transaction = (data: Hex) => ({
  chainId: 8453,
  transaction: { type: 'eip1559', to: ROUTER, value: '0', data, nonce: txNonce++, gas: '200000', maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1000000' },
});

/** The reviewer's policy: the router's swap declares what it moves; caps, a budget and a destinations allowlist. */
const POLICY = {
  version: 1,
  sets: { partners: [ALICE] },
  abis: { router: { contracts: [ROUTER], functions: [SWAP_FN], moves: { swap: { spends: [{ asset: 'tokenIn', amount: 'amountIn', to: 'recipient' }] } } } },
  rules: [
    { name: 'tx-swaps', type: 'allow', match: { actions: ['evm.transaction'], chains: ['eip155:8453'], contracts: [ROUTER], selectors: [SWAP], assets: [USDC_ASSET] } },
    { name: 'safe-swaps', type: 'allow', match: { actions: ['evm.typed_data'], primary_types: ['SafeTx'], domains: [DOMAIN], kinds: ['contract.call'], contracts: [ROUTER], selectors: [SWAP] } },
    { name: 'usdc-cap', type: 'max_amount', asset: USDC_ASSET, max: '100000000' },
    { name: 'usdc-daily', type: 'budget', asset: USDC_ASSET, max: '200000000', window: '24h' },
    { name: 'partners-only', type: 'destinations', allow: ['$partners', ROUTER] },
  ],
};

const outcome = (r: { status: number; body: any }) => ({
  status: r.status,
  codes: r.status === 200 ? [] : [...new Set<string>((r.body.error?.violations ?? []).map((v: any) => `${v.rule} ${v.code}`))].sort(),
});
const OVER_EVERYTHING = {
  status: 403,
  codes: ['agent/partners-only destination_not_allowed', 'agent/usdc-cap amount_exceeds_max', 'agent/usdc-daily budget_exceeded'],
};
const usdcSpends = (body: any) => (body.intent.spends as any[]).filter((s) => s.asset === USDC_ASSET);

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`a Safe's calls decode against the policy's abis: declared moves are capped, budgeted and charged (${store})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ store });
    });
    after(() => h?.close());

    async function agent() {
      const { agent, token } = await provisionAgent(h, { policy: POLICY, actions: ['evm.transaction', 'evm.typed_data'] });
      return {
        agent,
        signTx: (body: unknown) => h.call('POST', '/v1/sign/transaction', { token, body }),
        signSafe: (body: unknown) => h.call('POST', '/v1/sign/typed-data', { token, body }),
      };
    }
    /** Two swaps of 100 USDC to a partner sign as SafeTxs and use up the 200 USDC budget: nothing was charged before. */
    async function assertNothingCharged(signSafe: (body: unknown) => Promise<{ status: number; body: any }>) {
      for (let i = 0; i < 2; i++) {
        const r = await signSafe(safeSwap(100_000_000n, ALICE));
        assert.deepEqual(outcome(r), { status: 200, codes: [] }, JSON.stringify(r.body));
      }
      assert.deepEqual(outcome(await signSafe(safeSwap(1n, ALICE))), { status: 403, codes: ['agent/usdc-daily budget_exceeded'] });
    }

    test("the reviewer's swap of 10^12 USDC to MALLORY: refused as a SafeTx with the transaction's rule:codes, at any nonce, nothing signed or charged", async () => {
      const { signTx, signSafe } = await agent();
      const asTx = await signTx(transaction(swap(10n ** 12n, MALLORY)));
      assert.deepEqual(outcome(asTx), OVER_EVERYTHING, JSON.stringify(asTx.body));
      for (let i = 0; i < 2; i++) {
        const asSafe = await signSafe(safeSwap(10n ** 12n, MALLORY));
        assert.deepEqual(outcome(asSafe), OVER_EVERYTHING, JSON.stringify(asSafe.body));
        assert.equal(asSafe.body.error.code, 'policy_denied');
        assert.equal(asSafe.body.signature, undefined);
      }
      await assertNothingCharged(signSafe);
    });

    test('the same swap as the second call of a MultiSend batch is refused likewise, nothing charged', async () => {
      const { signSafe } = await agent();
      const r = await signSafe(safeMultiSend([swap(1_000_000n, ALICE), swap(10n ** 12n, MALLORY)]));
      assert.deepEqual(outcome(r), OVER_EVERYTHING, JSON.stringify(r.body));
      assert.equal(r.body.signature, undefined);
      await assertNothingCharged(signSafe);
    });

    test('a Safe call whose calldata does not decode against the declared swap is refused (abi_decode_failed), alone and in a batch', async () => {
      const { signSafe } = await agent();
      const bad = `${swap(1_000_000n, ALICE)}00` as Hex;
      const refused = { status: 403, codes: ['agent/abis.router abi_decode_failed'] };
      assert.deepEqual(outcome(await signSafe(safeRequest(ROUTER, bad, 0))), refused);
      assert.deepEqual(outcome(await signSafe(safeMultiSend([swap(1_000_000n, ALICE), bad]))), refused);
    });

    test('a swap within limits signs as a SafeTx and is charged its declared amount (alone and in a MultiSend)', async () => {
      const { signTx, signSafe } = await agent();
      const one = await signSafe(safeSwap(60_000_000n, ALICE));
      assert.deepEqual(outcome(one), { status: 200, codes: [] }, JSON.stringify(one.body));
      assert.match(one.body.signature, /^0x[0-9a-f]{130}$/);
      assert.deepEqual(one.body.allowedBy, ['agent/safe-swaps']);
      assert.deepEqual(usdcSpends(one.body), [{ asset: USDC_ASSET, amount: '60000000', to: ALICE, kind: 'transfer' }]);
      assert.match(one.body.intent.summary, new RegExp(`: call swap on ${ROUTER} spending 60000000 of ${USDC_ASSET} to ${ALICE}$`));
      // 60 used: 90 more (under the 100 cap) is over the 200 budget, as a SafeTx and as a transaction.
      assert.deepEqual(outcome(await signSafe(safeSwap(90_000_000n, ALICE))), { status: 200, codes: [] });
      // 150 used.
      assert.deepEqual(outcome(await signSafe(safeSwap(60_000_000n, ALICE))), { status: 403, codes: ['agent/usdc-daily budget_exceeded'] });
      assert.deepEqual(outcome(await signTx(transaction(swap(60_000_000n, ALICE)))), { status: 403, codes: ['agent/usdc-daily budget_exceeded'] });
      // A batch of two swaps (20 + 20) is charged 40: over the 50 left only with a third.
      const batch = await signSafe(safeMultiSend([swap(20_000_000n, ALICE), swap(20_000_000n, ALICE)]));
      assert.deepEqual(outcome(batch), { status: 200, codes: [] }, JSON.stringify(batch.body));
      assert.deepEqual(usdcSpends(batch.body).map((s) => s.amount), ['20000000', '20000000']);
      assert.deepEqual(batch.body.intent.safe.calls.map((c: any) => c.call.functionName), ['swap', 'swap']);
      assert.deepEqual(outcome(await signSafe(safeSwap(10_000_001n, ALICE))), { status: 403, codes: ['agent/usdc-daily budget_exceeded'] });
      assert.deepEqual(outcome(await signSafe(safeSwap(10_000_000n, ALICE))), { status: 200, codes: [] });
    });
  });
}
