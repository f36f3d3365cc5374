// A session's budgets are checked when the session is issued or derived, with the same rules the signing path
// builds from them. Found by review: a budget asset that is not a CAIP-19 id ("USDC") was accepted and audited
// as issued; every signing request of the session then failed 400 invalid_policy inside its transaction, so no
// refusal was audited. Now issuance answers 400 invalid_request naming the field, and nothing is created or
// audited. Over HTTP on both stores.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, USDC_ASSET, provisionAgent, startHarness, type Harness, type StoreKind } from './testing/harness.ts';

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`session scopes checked at issuance (${store})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ store });
    });
    after(async () => h.close());

    const newest = async (agentId: string) => (await h.admin('GET', `/v1/audit?agent=${agentId}&order=newest&limit=1`)).body.entries[0];

    test('an operator issuing a session with a budget asset that is not CAIP-19 gets 400 and nothing is issued', async () => {
      const { agent } = await provisionAgent(h);
      const before = await newest(agent.id);
      const sessionsBefore = (await h.admin('GET', `/v1/sessions?agent=${agent.id}`)).body;
      for (const asset of ['USDC', BASE, 'eip155:8453/erc20:0x833589fcd6edb6e08f4c7c32d4f71b54bda02913 ']) {
        const res = await h.admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['evm.transaction'], budgets: [{ asset, max: '1', window: '1d' }] });
        assert.equal(res.status, 400, `${asset}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.error.code, 'invalid_request');
        assert.match(res.body.error.message, /^budgets\[0\]\.asset: /);
        assert.equal(res.body.token, undefined);
      }
      assert.deepEqual((await newest(agent.id)).seq, before.seq, 'no session.issued entry');
      assert.deepEqual((await h.admin('GET', `/v1/sessions?agent=${agent.id}`)).body, sessionsBefore);
      // A CAIP-19 asset is issued as before.
      const ok = await h.admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['evm.transaction'], chains: [BASE], budgets: [{ asset: USDC_ASSET, max: '1', window: '1d' }] });
      assert.equal(ok.status, 201, JSON.stringify(ok.body));
    });

    test('an agent deriving a child session with such a budget gets 400 and no child exists', async () => {
      const { agent, token } = await provisionAgent(h);
      const before = await newest(agent.id);
      const res = await h.call('POST', '/v1/session/children', { token, body: { budgets: [{ asset: 'USDC', max: '1', window: '1d' }] } });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'invalid_request');
      assert.match(res.body.error.message, /^budgets\[0\]\.asset: /);
      assert.equal((await newest(agent.id)).seq, before.seq);
      assert.deepEqual((await h.call('GET', '/v1/session/children', { token })).body.sessions, []);
    });
  });
}
