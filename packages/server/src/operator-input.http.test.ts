// Operator input that was accepted and meant something else, or failed with the wrong code (found by a review
// of "bad input changes nothing"): each is now refused with a stable code and changes nothing. Over HTTP on both
// stores.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { provisionAgent, startHarness, type Harness, type StoreKind } from './testing/harness.ts';

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`operator input refused (${store})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ store });
    });
    after(async () => h.close());

    const agentCount = async () => (await h.admin('GET', '/v1/agents?limit=1000')).body.agents.length;

    test('an agent named "fleet" or like another agent\'s id, or an empty list of names, is refused and nothing is created', async () => {
      const { agent } = await provisionAgent(h);
      const before = await agentCount();
      for (const names of [['fleet'], [agent.id], ['ag_0123456789abcdef'], ['ok-name', 'fleet'], []]) {
        const res = await h.admin('POST', '/v1/agents', { names });
        assert.equal(res.status, 400, `${JSON.stringify(names)}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.error.code, 'invalid_request');
      }
      assert.equal(await agentCount(), before);
      // The fleet policy is still the fleet's, and the agent's id still names that agent.
      assert.equal((await h.admin('GET', `/v1/agents/${agent.id}`)).body.name, agent.name);
      assert.equal((await h.admin('POST', '/v1/agents', { names: ['fleet-bot'] })).status, 201, 'a name that only starts with fleet is fine');
    });

    test('session durations that are not positive are invalid_request naming the field, and no session is issued', async () => {
      const { agent } = await provisionAgent(h);
      const sessions = async () => (await h.admin('GET', `/v1/sessions?agent=${agent.id}`)).body.sessions.length;
      const before = await sessions();
      for (const [body, field] of [
        [{ ttl: '0h', actions: ['evm.transaction'] }, 'ttl'],
        [{ ttl: '1h', actions: ['evm.transaction'], budgets: [{ asset: 'eip155:8453/slip44:60', max: '1', window: '0h' }] }, 'budgets\\[0\\]\\.window'],
      ] as const) {
        const res = await h.admin('POST', `/v1/agents/${agent.name}/sessions`, body);
        assert.equal(res.status, 400, JSON.stringify(res.body));
        assert.equal(res.body.error.code, 'invalid_request');
        assert.match(res.body.error.message, new RegExp(`^${field}: `));
      }
      assert.equal(await sessions(), before);
    });

    test('audit time bounds beyond a date are invalid_request, not a 500 from the store', async () => {
      for (const q of ['from=10000000000000000000', 'to=99999999999999999999999', 'from=9007199254740993']) {
        const res = await h.admin('GET', `/v1/audit?${q}`);
        assert.equal(res.status, 400, `${q}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.error.code, 'invalid_request');
      }
      assert.equal((await h.admin('GET', `/v1/audit?from=${Date.now() - 60_000}`)).status, 200);
    });

    test('an approver with a small-order Ed25519 key (one no vote can verify under) is refused', async () => {
      for (const publicKey of [`ec${'ff'.repeat(30)}7f`, '00'.repeat(32)]) {
        const res = await h.admin('POST', '/v1/approvers', { name: `small-${store}-${publicKey.slice(0, 2)}`, publicKey, groups: ['ops'] });
        assert.equal(res.status, 400, JSON.stringify(res.body));
        assert.equal(res.body.error.code, 'invalid_request');
      }
    });
  });
}
