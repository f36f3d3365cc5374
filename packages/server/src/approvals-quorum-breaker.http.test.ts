// A tripped require_approval breaker holds the agent's requests for the operator, who alone resets it: no layer's
// quorum stands in for it (found by review: once a quorum tier matched, approvers' votes alone granted a request the
// fleet's breaker held, the tripping one included). The operator's approval is required alongside the votes, in either
// order; after the reset the quorum decides alone again. On SQLite and PostgreSQL (the operator's approval is stored
// on the approval's quorum).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ALICE, BASE, USDC_ASSET, provisionAgent, startHarness, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';
import { approverKit } from './testing/approvers.ts';

const U = 1_000_000n;
const BURST = 'detector/fleet/burst';
/** The fleet's breaker: a fourth request within a minute holds the agent's requests until an operator resets it. */
const fleetBreaker = { version: 1, rules: [], detectors: [{ name: 'burst', type: 'request_burst', window: '1m', baseline: '1h', min_count: 3, action: 'require_approval' }] };
/** The agent's policy: pays Alice; above 5 USDC one devops approver decides (or `tiers`). */
const agentPolicy = (...tiers: object[]) => ({ version: 1, rules: [
  { name: 'pay', type: 'allow', match: { chains: [BASE], kinds: ['erc20.transfer'], assets: [USDC_ASSET], to: [ALICE] } },
  ...(tiers.length > 0 ? tiers : [{ name: 'big', type: 'approval_tier', asset: USDC_ASSET, above: (5n * U).toString(), quorum: { min: 1, groups: ['devops'] } }]),
] });
const codes = (res: { body: any }) => res.body.violations.map((v: any) => `${v.rule}:${v.code}`);

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`a tripped require_approval breaker is not handed to a quorum (${store})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ store, manualClock: true });
      assert.equal((await h.admin('PUT', '/v1/policies/fleet', { document: fleetBreaker })).status, 200);
    });
    after(async () => h.close());

    let nonce = 0;
    const { addApprover, vote } = approverKit(() => h, store);
    const pay = (token: string, usdc: bigint) => {
      h.clock!.advance(1000);
      return h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, usdc * U, nonce++) });
    };
    const held = async (res: { status: number; body: any }) => {
      assert.equal(res.status, 202, JSON.stringify(res.body));
      return (await h.admin('GET', `/v1/approvals/${res.body.approvalId}`)).body;
    };
    const audit = async (agent: string, type: string) => (await h.admin('GET', `/v1/audit?agent=${agent}&type=${type}`)).body.entries;
    /** A fresh agent whose fourth request trips the fleet's breaker: three small payments signed first. */
    const burstingAgent = async (policy = agentPolicy()) => {
      const provisioned = await provisionAgent(h, { policy, actions: ['evm.transaction'], ttl: '30d' });
      for (let i = 0; i < 3; i++) assert.equal((await pay(provisioned.token, 1n)).status, 200);
      return provisioned;
    };

    test('the request that trips the breaker (breaker_tripped) past an agent quorum tier: one devops vote no longer grants it; the operator must approve too (votes first)', async () => {
      const { agent, token } = await burstingAgent();
      const dev = await addApprover('devops');
      const tripping = await pay(token, 10n);
      assert.deepEqual(codes(tripping), ['agent/big:approval_required', `${BURST}:breaker_tripped`]);
      const approval = await held(tripping);
      assert.deepEqual(approval.quorum, [{ rule: 'agent/big', min: 1, groups: ['devops'] }, { rule: BURST, min: 1, groups: [], operator: {} }]);

      const voted = await vote(dev, approval.id);
      assert.equal(voted.status, 200, JSON.stringify(voted.body));
      assert.equal(voted.body.state, 'pending', "the devops vote alone does not grant what the fleet's breaker holds for the operator");
      assert.equal(voted.body.result, undefined);
      assert.equal((await audit(agent.name, 'approval.granted')).length, 0);

      const approved = await h.admin('POST', `/v1/approvals/${approval.id}/approve`);
      assert.equal(approved.status, 200, JSON.stringify(approved.body));
      assert.equal(approved.body.state, 'approved');
      assert.ok(approved.body.result?.signature, 'signed once both approved');
      const [recorded] = await audit(agent.name, 'approval.operator_approved');
      assert.deepEqual([recorded.data.approvalId, recorded.data.rule, recorded.data.by], [approval.id, BURST, 'admin']);
      const [granted] = await audit(agent.name, 'approval.granted');
      assert.deepEqual([granted.data.by, granted.data.approvers], ['admin', [dev.name]]);
    });

    test('a later request (breaker_open) past a fleet quorum tier: the operator approves first (recorded, still pending), the treasury vote grants; after the reset the vote alone grants again', async () => {
      const treasuryTier = { name: 'treasury', type: 'approval_tier', asset: USDC_ASSET, above: (5n * U).toString(), quorum: { min: 1, groups: ['treasury'] } };
      assert.equal((await h.admin('PUT', '/v1/policies/fleet', { document: { ...fleetBreaker, rules: [treasuryTier] } })).status, 200);
      try {
        const { agent, token } = await burstingAgent(agentPolicy({ name: 'small', type: 'max_amount', asset: USDC_ASSET, max: (100n * U).toString() }));
        const treasurer = await addApprover('treasury');
        const trip = await pay(token, 1n);
        assert.deepEqual(codes(trip), [`${BURST}:breaker_tripped`], 'the breaker trips');
        h.clock!.advance(3_600_000);
        const later = await pay(token, 10n);
        assert.deepEqual(codes(later), ['fleet/treasury:approval_required', `${BURST}:breaker_open`]);
        const approval = await held(later);
        assert.deepEqual(approval.quorum, [{ rule: 'fleet/treasury', min: 1, groups: ['treasury'] }, { rule: BURST, min: 1, groups: [], operator: {} }]);

        const first = await h.admin('POST', `/v1/approvals/${approval.id}/approve`);
        assert.equal(first.status, 200, JSON.stringify(first.body));
        assert.equal(first.body.state, 'pending');
        assert.equal(first.body.result, undefined);
        assert.deepEqual(first.body.quorum[1], { rule: BURST, min: 1, groups: [], operator: { approvedBy: 'admin' } });
        const again = await h.admin('POST', `/v1/approvals/${approval.id}/approve`);
        assert.equal(again.status, 409);
        assert.equal(again.body.error.code, 'quorum_required');

        const granted = await vote(treasurer, approval.id);
        assert.equal(granted.status, 200, JSON.stringify(granted.body));
        assert.equal(granted.body.state, 'approved');
        assert.ok(granted.body.result?.signature);
        assert.equal((await audit(agent.name, 'approval.granted'))[0].data.by, `approvers:${treasurer.name}`);

        // Reset, the breaker holds nothing: the fleet's quorum decides alone, as before.
        const [breaker] = (await h.admin('GET', '/v1/breakers')).body.breakers.filter((b: any) => b.agents.includes(agent.id));
        assert.equal((await h.admin('POST', `/v1/breakers/${breaker.id}/reset`)).status, 200);
        h.clock!.advance(3_600_000);
        const afterReset = await held(await pay(token, 10n));
        assert.deepEqual(afterReset.quorum, [{ rule: 'fleet/treasury', min: 1, groups: ['treasury'] }]);
        assert.equal((await vote(treasurer, afterReset.id)).body.state, 'approved');
      } finally {
        assert.equal((await h.admin('PUT', '/v1/policies/fleet', { document: fleetBreaker })).status, 200);
      }
    });
  });
}
