// What staged candidate policies would decide is for the operator (found by review): an agent's own dry-run
// (POST /v1/dry-run) returned `shadow`, each candidate's decision with its rules and limits, so an agent could read
// the fleet's next cap and spend before it landed, although every shadow route refuses an agent token. The
// operator's dry-run (POST /v1/policies/dry-run) still shows them.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ALICE, USDC_ASSET, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`staged candidate policies and dry-runs (${store})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ store });
    });
    after(async () => h.close());

    test("an agent's dry-run shows no candidate; the operator's shows each", async () => {
      const { agent, token } = await provisionAgent(h, { policy: usdcPolicy() });
      assert.equal((await h.admin('PUT', `/v1/policies/${agent.name}/shadow`, { document: usdcPolicy({ perRequest: '7000000' }) })).status, 200);
      const fleet = { version: 1, rules: [{ name: 'incident-42-cap-alice', type: 'max_amount', asset: USDC_ASSET, max: '3000000' }] };
      assert.equal((await h.admin('PUT', '/v1/policies/fleet/shadow', { document: fleet })).status, 200);
      const payload = usdcTransfer(ALICE, 50_000_000n);

      const mine = await h.call('POST', '/v1/dry-run', { token, body: { action: 'evm.transaction', payload } });
      assert.equal(mine.status, 200);
      assert.equal(mine.body.decision.decision, 'allow');
      assert.equal(mine.body.shadow, undefined, JSON.stringify(mine.body));
      assert.ok(!JSON.stringify(mine.body).includes('incident-42-cap-alice'));

      const operators = await h.admin('POST', '/v1/policies/dry-run', { agent: agent.name, action: 'evm.transaction', payload });
      assert.equal(operators.status, 200);
      const seen = operators.body.shadow.flatMap((s: any) => (s.candidate?.violations ?? []).map((v: any) => [s.scope, v.rule, v.limit]));
      assert.deepEqual(seen.sort(), [['agent:' + agent.id, 'agent/usdc-per-request', '7000000'], ['fleet', 'fleet/incident-42-cap-alice', '3000000']].sort());
    });
  });
}
