// A long poll on an approval checks its credential again before it hands out what was decided meanwhile.
// Found by review: a session revoked while its poll waited still got the approved request's signed
// transaction when the operator approved it, though its next request was refused session_revoked. Over HTTP
// on both stores.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ALICE, BASE, USDC_ASSET, provisionAgent, startHarness, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';

const heldAbove = {
  version: 1,
  rules: [
    { name: 'pay', type: 'allow', match: { chains: [BASE], kinds: ['erc20.transfer'], assets: [USDC_ASSET] } },
    { name: 'big', type: 'approval_tier', asset: USDC_ASSET, above: '1000000' },
  ],
};

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`approval long poll and a revoked session (${store})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ store });
    });
    after(async () => h.close());

    async function heldRequest() {
      const { agent, token } = await provisionAgent(h, { policy: heldAbove, actions: ['evm.transaction'] });
      const held = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 5_000_000n) });
      assert.equal(held.status, 202, JSON.stringify(held.body));
      // A sibling session of the same agent, which polls the approval.
      const sibling = await h.admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['evm.message'] });
      assert.equal(sibling.status, 201);
      return { agent, approvalId: held.body.approvalId as string, sibling: { id: sibling.body.session.id as string, token: sibling.body.token as string } };
    }

    test('a session revoked while it polls gets 401 session_revoked, not the signed transaction approved meanwhile', async () => {
      const { approvalId, sibling } = await heldRequest();
      const poll = h.call('GET', `/v1/approvals/${approvalId}?wait=20`, { token: sibling.token });
      await new Promise((r) => setTimeout(r, 150));
      assert.equal((await h.admin('POST', `/v1/sessions/${sibling.id}/revoke`)).status, 200);
      const approved = await h.admin('POST', `/v1/approvals/${approvalId}/approve`);
      assert.equal(approved.status, 200, JSON.stringify(approved.body));
      const answer = await poll;
      assert.equal(answer.status, 401, JSON.stringify(answer.body).slice(0, 300));
      assert.equal(answer.body.error.code, 'session_revoked');
      assert.equal(answer.body.result, undefined);
      assert.doesNotMatch(JSON.stringify(answer.body), /signedTransaction/);
    });

    test('control: a live session polling gets the signed transaction once approved', async () => {
      const { approvalId, sibling } = await heldRequest();
      const poll = h.call('GET', `/v1/approvals/${approvalId}?wait=20`, { token: sibling.token });
      await new Promise((r) => setTimeout(r, 150));
      assert.equal((await h.admin('POST', `/v1/approvals/${approvalId}/approve`)).status, 200);
      const answer = await poll;
      assert.equal(answer.status, 200, JSON.stringify(answer.body).slice(0, 300));
      assert.equal(answer.body.state, 'approved');
      assert.match(answer.body.result.signedTransaction, /^0x02/);
    });
  });
}
