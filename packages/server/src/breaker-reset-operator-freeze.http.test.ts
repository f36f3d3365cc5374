// A breaker reset never undoes the operator's own freeze (found by review). A request_burst breaker froze agent A;
// during the incident the operator froze A by hand (POST /v1/agents/A/freeze) or pressed revoke-all on it, both of
// which found it frozen already. Resetting the breaker (to let the rest of the fleet work) set A back to active, and
// A's still-live session signed again. Now the freeze is marked the operator's (agents.operator_frozen): the reset
// leaves A frozen, says so (audited `agent.kept_frozen`), and only an explicit unfreeze makes A active again.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, USDC_ASSET, startHarness, uniqueName, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';

const fleetPolicy = {
  version: 1,
  rules: [
    { name: 'usdc-anywhere', type: 'allow', match: { chains: [BASE], kinds: ['erc20.transfer'], assets: [USDC_ASSET] } },
    { name: 'fees', type: 'fee_cap', max_fee_per_gas: '100000000000' },
  ],
  detectors: [{ name: 'burst', type: 'request_burst', window: '1m', baseline: '24h', min_count: 2, action: 'freeze' }],
};

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`a breaker reset leaves an agent the operator froze frozen (${store})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ store, manualClock: true });
      const set = await h.admin('PUT', '/v1/policies/fleet', { document: fleetPolicy });
      assert.equal(set.status, 200, JSON.stringify(set.body));
    });
    after(async () => h.close());

    /** A new agent with a live session, frozen by a tripped request_burst breaker. */
    async function breakerFrozenAgent() {
      const created = await h.admin('POST', '/v1/agents', { names: [uniqueName('rf')] });
      const agent = created.body.agents[0];
      const token = (await h.admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1d', actions: ['evm.transaction'] })).body.token;
      let nonce = 0;
      const pay = () => { h.clock!.advance(1000); return h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer('0x1111111111111111111111111111111111111111', 1n, nonce++) }); };
      assert.equal((await pay()).status, 200);
      assert.equal((await pay()).status, 200);
      const tripped = await pay();
      assert.equal(tripped.status, 403, JSON.stringify(tripped.body));
      const breaker = (await h.admin('GET', '/v1/breakers?state=tripped')).body.breakers.find((b: any) => b.agentId === agent.id);
      assert.ok(breaker, 'the burst tripped a breaker');
      assert.equal((await h.admin('GET', `/v1/agents/${agent.name}`)).body.status, 'frozen');
      return { agent, breaker, pay };
    }

    const keptFrozenEntry = async (breakerId: string) =>
      (await h.admin('GET', '/v1/audit?type=agent.kept_frozen&limit=1000')).body.entries.find((e: any) => e.data.breakerId === breakerId);

    test("the operator freezes a breaker-frozen agent by hand: the reset keeps it frozen, its session signs nothing; an unfreeze ends the freeze", async () => {
      const { agent, breaker, pay } = await breakerFrozenAgent();
      const frozen = await h.admin('POST', `/v1/agents/${agent.name}/freeze`);
      assert.equal(frozen.status, 200, JSON.stringify(frozen.body));

      const reset = await h.admin('POST', `/v1/breakers/${breaker.id}/reset`);
      assert.equal(reset.status, 200, JSON.stringify(reset.body));
      assert.equal(reset.body.state, 'reset');
      assert.deepEqual(reset.body.unfrozen, []);
      assert.deepEqual(reset.body.keptFrozen, [{ agentId: agent.id, operatorFreeze: true, breakers: [] }], 'the answer says who stayed frozen and why');
      assert.equal((await h.admin('GET', `/v1/agents/${agent.name}`)).body.status, 'frozen');
      const entry = await keptFrozenEntry(breaker.id);
      assert.ok(entry, 'the reset audits which agents stayed frozen');
      assert.deepEqual(entry.data.agents, [{ agentId: agent.id, operatorFreeze: true, breakers: [] }]);
      assert.equal((await h.admin('GET', `/v1/audit?type=agent.unfrozen&limit=1000`)).body.entries.filter((e: any) => e.data.breakerId === breaker.id).length, 0);

      h.clock!.advance(120_000);
      const refused = await pay();
      assert.equal(refused.status, 403, JSON.stringify(refused.body));
      assert.equal(refused.body.error.code, 'agent_frozen', JSON.stringify(refused.body));

      // Only the operator's explicit unfreeze ends it.
      const unfrozen = await h.admin('POST', `/v1/agents/${agent.name}/unfreeze`);
      assert.equal(unfrozen.status, 200, JSON.stringify(unfrozen.body));
      assert.equal(unfrozen.body.status, 'active');
      h.clock!.advance(120_000);
      const signed = await pay();
      assert.equal(signed.status, 200, JSON.stringify(signed.body));
    });

    test('revoke-all on a breaker-frozen agent: the reset keeps it frozen', async () => {
      const { agent, breaker } = await breakerFrozenAgent();
      const ra = await h.admin('POST', `/v1/agents/${agent.name}/revoke-all`);
      assert.equal(ra.status, 200, JSON.stringify(ra.body));
      assert.equal(ra.body.frozen, false, 'it was frozen already');
      assert.equal(ra.body.agent.status, 'frozen');

      const reset = await h.admin('POST', `/v1/breakers/${breaker.id}/reset`);
      assert.equal(reset.status, 200, JSON.stringify(reset.body));
      assert.deepEqual(reset.body.unfrozen, []);
      assert.equal((await h.admin('GET', `/v1/agents/${agent.name}`)).body.status, 'frozen');
      assert.deepEqual((await keptFrozenEntry(breaker.id))?.data.agents, [{ agentId: agent.id, operatorFreeze: true, breakers: [] }]);
    });

    test('an agent only the breaker froze is unfrozen by the reset, as before', async () => {
      const { agent, breaker } = await breakerFrozenAgent();
      const reset = await h.admin('POST', `/v1/breakers/${breaker.id}/reset`);
      assert.equal(reset.status, 200, JSON.stringify(reset.body));
      assert.deepEqual(reset.body.unfrozen, [agent.id]);
      assert.deepEqual(reset.body.keptFrozen, []);
      assert.equal((await h.admin('GET', `/v1/agents/${agent.name}`)).body.status, 'active');
      assert.equal(await keptFrozenEntry(breaker.id), undefined);
    });
  });
}
