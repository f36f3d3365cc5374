// Who collects an approved request's signature. A long poll checks its credential again before it hands out
// what was decided meanwhile (found by review: a session revoked while its poll waited still got the signed
// transaction, though its next request was refused session_revoked), and a session sees the signed result only
// of its own requests and of sessions derived from it. Over HTTP on both stores.
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
      const { agent, token } = await provisionAgent(h, { policy: heldAbove, actions: ['evm.transaction', 'evm.message'] });
      const held = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 5_000_000n) });
      assert.equal(held.status, 202, JSON.stringify(held.body));
      // A sibling session of the same agent, which polls the approval.
      const sibling = await h.admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['evm.message'] });
      assert.equal(sibling.status, 201);
      return { agent, token, approvalId: held.body.approvalId as string, sibling: { id: sibling.body.session.id as string, token: sibling.body.token as string } };
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

    test('control: the session that made the request, polling, gets the signed transaction once approved', async () => {
      const { approvalId, token } = await heldRequest();
      const poll = h.call('GET', `/v1/approvals/${approvalId}?wait=20`, { token });
      await new Promise((r) => setTimeout(r, 150));
      assert.equal((await h.admin('POST', `/v1/approvals/${approvalId}/approve`)).status, 200);
      const answer = await poll;
      assert.equal(answer.status, 200, JSON.stringify(answer.body).slice(0, 300));
      assert.equal(answer.body.state, 'approved');
      assert.match(answer.body.result.signedTransaction, /^0x02/);
    });

    // Found by a review of the fix: any session of the agent, whatever its scope, collected any approved
    // signature (GET /v1/approvals listed them all). A session sees the result of its own requests and of
    // sessions derived from it; a sibling or a child sees the decision without the signature.
    test("a sibling session, or a child scoped to messages, sees the decision but not the parent's signed transaction", async () => {
      const { approvalId, token, sibling } = await heldRequest();
      const child = await h.call('POST', '/v1/session/children', { token, body: { actions: ['evm.message'] } });
      assert.equal(child.status, 201, JSON.stringify(child.body));
      assert.equal((await h.admin('POST', `/v1/approvals/${approvalId}/approve`)).status, 200);
      for (const reader of [sibling.token, child.body.token as string]) {
        const one = await h.call('GET', `/v1/approvals/${approvalId}`, { token: reader });
        assert.equal(one.status, 200);
        assert.equal(one.body.state, 'approved');
        assert.equal(one.body.result, undefined);
        const listed = await h.call('GET', '/v1/approvals?state=approved', { token: reader });
        assert.equal(listed.status, 200);
        assert.deepEqual(listed.body.approvals.map((a: any) => [a.id, a.result]), [[approvalId, undefined]]);
        assert.doesNotMatch(JSON.stringify([one.body, listed.body]), /signedTransaction/);
      }
      // The session that asked still collects it, from the list too.
      const own = await h.call('GET', '/v1/approvals?state=approved', { token });
      assert.match(own.body.approvals[0].result.signedTransaction, /^0x02/);
    });

    test("a parent session collects the signed result of its child's request", async () => {
      const { token } = await heldRequest();
      const child = await h.call('POST', '/v1/session/children', { token, body: { actions: ['evm.transaction'] } });
      assert.equal(child.status, 201, JSON.stringify(child.body));
      const held = await h.call('POST', '/v1/sign/transaction', { token: child.body.token, body: usdcTransfer(ALICE, 5_000_000n, 1) });
      assert.equal(held.status, 202, JSON.stringify(held.body));
      assert.equal((await h.admin('POST', `/v1/approvals/${held.body.approvalId}/approve`)).status, 200);
      const parentView = await h.call('GET', `/v1/approvals/${held.body.approvalId}`, { token });
      assert.match(parentView.body.result.signedTransaction, /^0x02/);
    });
  });
}
