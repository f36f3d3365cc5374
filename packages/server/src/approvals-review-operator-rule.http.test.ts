// Approvers' votes grant only what approvers may grant under what holds the request when they grant it. Found by
// review: a 5,000 USDC transfer held for the fleet's "above 1,000 USDC: 2 of treasury" was still granted by two
// treasury votes after the operator replaced that tier with "above 1,000 USDC: the operator approves", and a
// `require_approval` breaker tripped after a request was held was not read when votes granted it. Either way the
// approval now stays pending, its quorum raised to the operator's requirement (approval.quorum_raised), nothing
// signed, until the operator approves with the admin token. On SQLite and PostgreSQL.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { recoverTransactionAddress, type Hex } from 'viem';
import { ALICE, BASE, USDC_ASSET, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';
import { approverKit } from './testing/approvers.ts';

const U = 1_000_000n;
const NO_FLEET_RULES = { version: 1, rules: [] };

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`votes do not grant what the operator now decides (${store})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ store, manualClock: true, approvalTtlMs: 3_600_000 });
    });
    after(async () => h.close());

    let nonce = 0;
    const { addApprover, vote } = approverKit(() => h, `oprule-${store}`);
    const setFleet = async (document: unknown) => {
      const res = await h.admin('PUT', '/v1/policies/fleet', { document });
      assert.equal(res.status, 200, JSON.stringify(res.body));
    };
    const pay = (token: string, amount: bigint) => {
      h.clock!.advance(1000);
      return h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, amount, nonce++) });
    };
    const held = async (res: { status: number; body: any }) => {
      assert.equal(res.status, 202, JSON.stringify(res.body));
      return (await h.admin('GET', `/v1/approvals/${res.body.approvalId}`)).body;
    };
    const audit = async (agent: string, type: string) => (await h.admin('GET', `/v1/audit?agent=${agent}&type=${type}&limit=1000`)).body.entries as any[];
    /** Still pending for `quorum`: nothing granted, nothing signed, not closed. */
    const assertPending = async (agent: string, id: string, quorum: unknown) => {
      const approval = (await h.admin('GET', `/v1/approvals/${id}`)).body;
      assert.deepEqual([approval.state, approval.result], ['pending', undefined]);
      assert.deepEqual(approval.quorum, quorum);
      assert.deepEqual(await audit(agent, 'approval.granted'), [], 'nothing granted');
      assert.deepEqual(await audit(agent, 'approval.denied'), [], 'not closed');
    };

    test("the fleet's quorum tier replaced by an operator tier while the request waits: the treasury votes grant nothing, the approval waits for the operator, whose approve signs and charges once", async () => {
      await setFleet({ version: 1, rules: [{ name: 'treasury', type: 'approval_tier', asset: USDC_ASSET, above: (1000n * U).toString(), quorum: { min: 2, groups: ['treasury'] } }] });
      try {
        const { agent, token } = await provisionAgent(h, { policy: usdcPolicy({ perRequest: (10_000n * U).toString(), daily: (5_500n * U).toString() }) });
        const first = await addApprover('treasury');
        const second = await addApprover('treasury');
        const approval = await held(await pay(token, 5_000n * U));
        assert.deepEqual(approval.quorum, [{ rule: 'fleet/treasury', min: 2, groups: ['treasury'] }]);

        // PUT /v1/policies/fleet: above 1,000 USDC the operator approves (a tier without a quorum).
        await setFleet({ version: 1, rules: [{ name: 'operator-approves', type: 'approval_tier', asset: USDC_ASSET, above: (1000n * U).toString() }] });

        const one = await vote(first, approval.id);
        assert.deepEqual([one.status, one.body.state], [200, 'pending'], JSON.stringify(one.body));
        // The second vote meets the quorum the request was held for, not the operator the policy in force asks for.
        const two = await vote(second, approval.id);
        assert.equal(two.status, 200, JSON.stringify(two.body));
        assert.deepEqual([two.body.state, two.body.result], ['pending', undefined], 'no signature released by the votes');
        const operatorOnly = [{ rule: 'fleet/operator-approves', min: 1, groups: [], operator: {} }];
        assert.deepEqual(two.body.quorum, operatorOnly);
        await assertPending(agent.name, approval.id, operatorOnly);
        const [raised] = await audit(agent.name, 'approval.quorum_raised');
        assert.deepEqual([raised.data.approvalId, raised.data.quorum, raised.data.previous, raised.data.rules], [approval.id, operatorOnly, approval.quorum, ['fleet/operator-approves']], JSON.stringify(raised.data));
        assert.deepEqual([raised.data.attemptedBy, raised.data.approvers.sort()], [`approvers:${[first.name, second.name].join(',')}`, [first.name, second.name].sort()]);
        // No approver's vote counts for it any more.
        const late = await vote(await addApprover('treasury'), approval.id);
        assert.deepEqual([late.status, late.body.error?.code], [403, 'approver_not_eligible'], JSON.stringify(late.body));

        // The operator's approve releases it, signed by the agent's key.
        const approved = await h.admin('POST', `/v1/approvals/${approval.id}/approve`);
        assert.equal(approved.status, 200, JSON.stringify(approved.body));
        assert.equal(approved.body.state, 'approved');
        const signed = approved.body.result.signedTransaction as Hex;
        assert.equal((await recoverTransactionAddress({ serializedTransaction: signed as never })).toLowerCase(), agent.address);
        const [recorded] = await audit(agent.name, 'approval.operator_approved');
        assert.deepEqual([recorded.data.approvalId, recorded.data.rule], [approval.id, 'fleet/operator-approves']);
        const granted = await audit(agent.name, 'approval.granted');
        assert.equal(granted.length, 1);
        assert.equal(granted[0].data.by, 'admin');

        // Charged 5,000 once: 500 more fill the daily 5,500, and nothing is left.
        assert.equal((await pay(token, 500n * U)).status, 200);
        const over = await pay(token, 1n);
        assert.deepEqual([over.status, over.body.error.violations[0].code, over.body.error.violations[0].used], [403, 'budget_exceeded', (5_500n * U).toString()]);
      } finally {
        await setFleet(NO_FLEET_RULES);
      }
    });

    test('a require_approval breaker tripped after the request was held: the devops vote that meets its quorum grants nothing, the approval waits for the operator too', async () => {
      const burst = 'detector/fleet/burst';
      await setFleet({ version: 1, rules: [], detectors: [{ name: 'burst', type: 'request_burst', window: '1m', baseline: '1h', min_count: 3, action: 'require_approval' }] });
      try {
        const { agent, token } = await provisionAgent(h, { policy: { version: 1, rules: [
          { name: 'pay', type: 'allow', match: { chains: [BASE], kinds: ['erc20.transfer'], assets: [USDC_ASSET], to: [ALICE] } },
          { name: 'big', type: 'approval_tier', asset: USDC_ASSET, above: (5n * U).toString(), quorum: { min: 1, groups: ['devops'] } },
        ] }, actions: ['evm.transaction'] });
        const dev = await addApprover('devops');
        const approval = await held(await pay(token, 10n * U));
        assert.deepEqual(approval.quorum, [{ rule: 'agent/big', min: 1, groups: ['devops'] }], 'held for devops alone: no breaker had tripped');
        // Then the agent bursts: the fourth request within a minute trips the fleet's breaker.
        for (let i = 0; i < 2; i++) assert.equal((await pay(token, 1n)).status, 200);
        const trip = await pay(token, 1n);
        assert.deepEqual(trip.body.violations.map((v: any) => `${v.rule}:${v.code}`), [`${burst}:breaker_tripped`]);

        const voted = await vote(dev, approval.id);
        assert.equal(voted.status, 200, JSON.stringify(voted.body));
        assert.deepEqual([voted.body.state, voted.body.result], ['pending', undefined], 'the vote alone does not grant what the breaker holds for the operator');
        const required = [{ rule: 'agent/big', min: 1, groups: ['devops'] }, { rule: burst, min: 1, groups: [], operator: {} }];
        await assertPending(agent.name, approval.id, required);
        const [raised] = (await audit(agent.name, 'approval.quorum_raised')).filter((e) => e.data.approvalId === approval.id);
        assert.deepEqual([raised.data.quorum, raised.data.rules], [required, ['agent/big', burst]], JSON.stringify(raised.data));

        // The operator's approve meets the rest: the devops vote is counted already, so it grants and signs.
        const approved = await h.admin('POST', `/v1/approvals/${approval.id}/approve`);
        assert.equal(approved.status, 200, JSON.stringify(approved.body));
        assert.equal(approved.body.state, 'approved');
        assert.equal((await recoverTransactionAddress({ serializedTransaction: approved.body.result.signedTransaction as never })).toLowerCase(), agent.address);
        const [granted] = await audit(agent.name, 'approval.granted');
        assert.deepEqual([granted.data.by, granted.data.approvers], ['admin', [dev.name]]);
      } finally {
        await setFleet(NO_FLEET_RULES);
      }
    });
  });
}
