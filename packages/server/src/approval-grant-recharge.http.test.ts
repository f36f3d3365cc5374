// A held request is charged at grant for what the policy in force then decodes it as, the value the grant's recheck
// judged, not for the holds taken when it was asked. Found by review: a router call held for a human before the
// policy registered the router's ABI was held as moving nothing; granted after, it was judged as the 10 USDC payment
// the ABI reads, charged 0, and three such grants released 30 USDC through a 10 USDC daily budget. On SQLite and
// PostgreSQL.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFunctionData, parseAbi, type Hex } from 'viem';
import { safeTx, safeTxTypedData } from '../../x402-testbed/src/safe.ts';
import { ALICE, USDC, USDC_ASSET, provisionAgent, startHarness, type Harness, type StoreKind } from './testing/harness.ts';

const ROUTER = '0x7777777777777777777777777777777777777777';
const SAFE = '0x5afe00000000000000000000000000000000beef';
const PAY_FN = 'function pay(address token, uint256 amount, address to)';
const TEN_USDC = 10_000_000n;
const pay = (amount: bigint) => encodeFunctionData({ abi: parseAbi([PAY_FN]), functionName: 'pay', args: [USDC, amount, ALICE] });
const routerCall = (data: Hex, nonce: number) => ({
  chainId: 8453,
  transaction: { type: 'eip1559', to: ROUTER, value: '0', data, nonce, gas: '100000', maxFeePerGas: '1000000', maxPriorityFeePerGas: '1000' },
});
/** The same call made by the agent's Safe: a SafeTx has a nonce, so the granted one re-sent is a replay of its signature. */
const safeCall = (data: Hex, nonce: number) => ({ typedData: safeTxTypedData(SAFE, 8453, safeTx({ to: ROUTER, data, operation: 0, nonce: BigInt(nonce) })) });
const SAFE_CALLS = { actions: ['evm.typed_data'], primary_types: ['SafeTx'], domains: [{ chain_id: 8453, verifying_contract: SAFE }], contracts: [ROUTER] };

/** Before the ABI: the router's calls cannot be read (they move nothing Airlock sees), so each waits for a human. */
const UNREAD = {
  version: 1,
  rules: [
    { name: 'router', type: 'allow', match: { actions: ['evm.transaction'], contracts: [ROUTER] } },
    { name: 'safe-router', type: 'allow', match: SAFE_CALLS },
    { name: 'usdc-daily', type: 'budget', asset: USDC_ASSET, max: TEN_USDC.toString(), window: '24h' },
    { name: 'router-by-hand', type: 'approval_tier', match: { contracts: [ROUTER] } },
  ],
};
/** After: the router's ABI is registered, so a `pay` is a USDC spend, capped and counted by a 10 USDC daily budget. */
const READ = {
  version: 1,
  abis: { router: { contracts: [ROUTER], functions: [PAY_FN], moves: { pay: { spends: [{ asset: 'token', amount: 'amount', to: 'to' }] } } } },
  rules: [
    { name: 'router', type: 'allow', match: { actions: ['evm.transaction'], contracts: [ROUTER], assets: [USDC_ASSET] } },
    { name: 'safe-router', type: 'allow', match: { ...SAFE_CALLS, assets: [USDC_ASSET] } },
    { name: 'usdc-per-payment', type: 'max_amount', asset: USDC_ASSET, max: TEN_USDC.toString() },
    { name: 'usdc-daily', type: 'budget', asset: USDC_ASSET, max: TEN_USDC.toString(), window: '24h' },
  ],
};

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`a grant is charged as the policy in force decodes the held request (${store})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ store });
    });
    after(() => h?.close());

    const holdAll = async (token: string, count: number) => {
      const ids: string[] = [];
      for (let nonce = 0; nonce < count; nonce++) {
        const held = await h.call('POST', '/v1/sign/transaction', { token, body: routerCall(pay(TEN_USDC), nonce) });
        assert.equal(held.status, 202, JSON.stringify(held.body));
        assert.deepEqual(held.body.intent.spends.filter((s: { kind?: string }) => s.kind !== 'fee'), [], 'held as moving nothing');
        ids.push(held.body.approvalId);
      }
      return ids;
    };
    const setPolicy = async (agentName: string, document: unknown) => {
      const res = await h.admin('PUT', `/v1/policies/${agentName}`, { document });
      assert.equal(res.status, 200, JSON.stringify(res.body));
    };

    test('held before the ABI, granted after: charged its 10 USDC (the next payment is refused), named in approval.granted', async () => {
      const { agent, token } = await provisionAgent(h, { policy: UNREAD, actions: ['evm.transaction'] });
      const [approvalId] = await holdAll(token, 1);
      await setPolicy(agent.name, READ);
      const granted = await h.admin('POST', `/v1/approvals/${approvalId}/approve`);
      assert.equal(granted.status, 200, JSON.stringify(granted.body));
      assert.ok(granted.body.result?.signedTransaction, JSON.stringify(granted.body));

      const [grantEntry] = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=approval.granted`)).body.entries;
      const charged = grantEntry.data.chargedSpends.filter((s: { kind?: string }) => s.kind !== 'fee');
      assert.deepEqual(charged.map((s: { asset: string; amount: string; to: string }) => [s.asset, s.amount, s.to]), [[USDC_ASSET, TEN_USDC.toString(), ALICE]]);

      // The grant took the whole day's budget: another payment is refused, the ledger holding the granted 10 USDC.
      const next = await h.call('POST', '/v1/sign/transaction', { token, body: routerCall(pay(1n), 1) });
      assert.equal(next.status, 403, `a 10 USDC daily budget let a second payment through after a 10 USDC grant: ${JSON.stringify(next.body)}`);
      assert.deepEqual(next.body.error.violations.map((v: { rule: string; code: string; used: string }) => [v.rule, v.code, v.used]), [['agent/usdc-daily', 'budget_exceeded', TEN_USDC.toString()]]);
    });

    test('three 10 USDC payments held before the ABI: the first grant is charged, the next two are refused approval_policy_denies by the daily budget, closed, nothing signed', async () => {
      const { agent, token } = await provisionAgent(h, { policy: UNREAD, actions: ['evm.transaction'] });
      const ids = await holdAll(token, 3);
      await setPolicy(agent.name, READ);
      const answers = [];
      for (const id of ids) answers.push(await h.admin('POST', `/v1/approvals/${id}/approve`));
      assert.deepEqual(answers.map((a) => a.status), [200, 409, 409], `30 USDC of grants through a 10 USDC daily budget: ${JSON.stringify(answers.map((a) => a.body.error?.code ?? a.body.state))}`);
      assert.ok(answers[0]!.body.result?.signedTransaction);
      for (const refused of answers.slice(1)) {
        assert.equal(refused.body.error.code, 'approval_policy_denies');
        assert.deepEqual(refused.body.error.violations.map((v: { rule: string; code: string; used: string; requested: string }) => [v.rule, v.code, v.used, v.requested]), [['agent/usdc-daily', 'budget_exceeded', TEN_USDC.toString(), TEN_USDC.toString()]]);
      }
      for (const id of ids.slice(1)) {
        const closed = await h.admin('GET', `/v1/approvals/${id}`);
        assert.equal(closed.body.state, 'denied', JSON.stringify(closed.body));
        assert.equal(closed.body.result, undefined);
      }
    });

    test('a SafeTx held before the ABI, granted after: charged its 10 USDC once; re-sent, it is released as a replay and charges no value again', async () => {
      const { agent, token } = await provisionAgent(h, { policy: UNREAD, actions: ['evm.typed_data'] });
      const signSafe = (body: unknown) => h.call('POST', '/v1/sign/typed-data', { token, body });
      const held = await signSafe(safeCall(pay(TEN_USDC), 0));
      assert.equal(held.status, 202, JSON.stringify(held.body));
      assert.deepEqual(held.body.intent.spends.filter((s: { kind?: string }) => s.kind !== 'fee'), [], 'held as moving nothing');
      await setPolicy(agent.name, READ);
      const granted = await h.admin('POST', `/v1/approvals/${held.body.approvalId}/approve`);
      assert.equal(granted.status, 200, JSON.stringify(granted.body));
      assert.ok(granted.body.result?.signature, JSON.stringify(granted.body));

      // The replay's own charge, as the policy in force decodes it, is what the grant charged: taken out, it fits.
      const replay = await signSafe(safeCall(pay(TEN_USDC), 0));
      assert.equal(replay.status, 200, JSON.stringify(replay.body));
      assert.equal(replay.body.replayed, true);
      assert.equal(replay.body.signature, granted.body.result.signature);
      const next = await signSafe(safeCall(pay(1n), 1));
      assert.equal(next.status, 403, `the granted SafeTx was not charged its 10 USDC: ${JSON.stringify(next.body)}`);
      assert.deepEqual(next.body.error.violations.map((v: { rule: string; code: string; used: string }) => [v.rule, v.code, v.used]), [['agent/usdc-daily', 'budget_exceeded', TEN_USDC.toString()]]);
    });

    test('retried as a compromised agent would after the grant (the same Idempotency-Key, the same nonce, after a restart): the key answers its hold (whose result is the granted bytes), the same transaction without it is refused, and nothing is charged twice', async () => {
      const { agent, token } = await provisionAgent(h, { policy: UNREAD, actions: ['evm.transaction'] });
      const headers = { 'Idempotency-Key': `grant-recharge-${store}-${agent.id}` };
      const held = await h.call('POST', '/v1/sign/transaction', { token, body: routerCall(pay(TEN_USDC), 0), headers });
      assert.equal(held.status, 202, JSON.stringify(held.body));
      await setPolicy(agent.name, READ);
      const granted = await h.admin('POST', `/v1/approvals/${held.body.approvalId}/approve`);
      assert.equal(granted.status, 200, JSON.stringify(granted.body));
      const signedTransaction = granted.body.result.signedTransaction;
      await h.restart();
      const answers = [
        await h.call('POST', '/v1/sign/transaction', { token, body: routerCall(pay(TEN_USDC), 0), headers }),
        await h.call('POST', '/v1/sign/transaction', { token, body: routerCall(pay(TEN_USDC), 0) }),
      ];
      // The key answers what it answered first (the hold, pointing at the granted approval, whose result is the bytes);
      // the same transaction without it is a new request, judged and refused by the budget the grant charged.
      const [sameKey, sameNonce] = answers;
      assert.equal(sameKey!.status, 202, JSON.stringify(sameKey!.body));
      assert.equal(sameKey!.body.replayed, true);
      assert.equal(sameKey!.body.approvalId, held.body.approvalId);
      assert.equal((await h.admin('GET', `/v1/approvals/${held.body.approvalId}`)).body.result.signedTransaction, signedTransaction);
      assert.equal(sameNonce!.status, 403, JSON.stringify(sameNonce!.body));
      assert.equal(sameNonce!.body.signedTransaction, undefined);
      assert.ok(sameNonce!.body.error.violations.some((v: { code: string }) => v.code === 'budget_exceeded'), JSON.stringify(sameNonce!.body));
      // The day's 10 USDC was charged once: a 1-unit payment is refused, used 10 USDC.
      const next = await h.call('POST', '/v1/sign/transaction', { token, body: routerCall(pay(1n), 1) });
      assert.equal(next.status, 403, JSON.stringify(next.body));
      assert.deepEqual(next.body.error.violations.map((v: { rule: string; code: string; used: string }) => [v.rule, v.code, v.used]), [['agent/usdc-daily', 'budget_exceeded', TEN_USDC.toString()]]);
    });

    test('the other way: held as a 10 USDC payment under the ABI, granted after the ABI was removed: charged what it now moves (nothing), its hold released', async () => {
      const heldByHand = { ...READ, rules: [...READ.rules, { name: 'router-by-hand', type: 'approval_tier', match: { contracts: [ROUTER] } }] };
      const { agent, token } = await provisionAgent(h, { policy: heldByHand, actions: ['evm.transaction'] });
      const held = await h.call('POST', '/v1/sign/transaction', { token, body: routerCall(pay(TEN_USDC), 0) });
      assert.equal(held.status, 202, JSON.stringify(held.body));
      await setPolicy(agent.name, { ...UNREAD, rules: UNREAD.rules.filter((r) => r.type !== 'approval_tier') });
      const granted = await h.admin('POST', `/v1/approvals/${held.body.approvalId}/approve`);
      assert.equal(granted.status, 200, JSON.stringify(granted.body));
      // Read again through the ABI, the day's budget is whole: the grant charged no USDC, and kept no hold.
      await setPolicy(agent.name, READ);
      const next = await h.call('POST', '/v1/sign/transaction', { token, body: routerCall(pay(TEN_USDC), 1) });
      assert.equal(next.status, 200, JSON.stringify(next.body));
    });
  });
}
