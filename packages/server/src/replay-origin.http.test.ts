// A derived session collects only its own requests' signatures and those of sessions derived from it (found by
// review). An approved signature was withheld from a child session by GET /v1/approvals/{id}, but the same answer
// showed the held request; re-sent, it was a nonce replay, judged only by the child's actions and chains (a replay
// charges nothing), and the child, whose own budget was 1 USDC, collected its parent's 60 USDC authorization. A
// replay now names the session that made the original request: a derived session other than it, or one above it,
// is refused `replay_not_allowed`. Sessions the operator issued (no parent) are the agent's own and collect any of
// its signatures, so a renewed session may retry (docs/api.md, Idempotency-Key).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ALICE, USDC_ASSET, provisionAgent, startHarness, usdcAuthorization, usdcPolicy, type Harness, type StoreKind } from './testing/harness.ts';

const nonce = (n: number) => `0x${n.toString(16).padStart(64, '0')}`;

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`replays are collected by the session that asked, or one above it (${store})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ store, manualClock: true });
    });
    after(async () => h.close());
    const validBefore = () => Math.floor(h.clock!.now() / 1000) + 3600;

    test("a child (1 USDC budget) cannot collect its parent's approved 60 USDC authorization by re-sending the request", async () => {
      const parent = await provisionAgent(h, { policy: usdcPolicy({ approvalAbove: '50000000', daily: '100000000' }), actions: ['evm.typed_data'] });
      const child = await h.call('POST', '/v1/session/children', { token: parent.token, body: { budgets: [{ asset: USDC_ASSET, max: '1000000', window: '24h' }] } });
      assert.equal(child.status, 201, JSON.stringify(child.body));
      const big = usdcAuthorization(parent.agent.address, ALICE, 60_000_000n, validBefore(), nonce(77));
      const held = await h.call('POST', '/v1/sign/typed-data', { token: parent.token, body: big });
      assert.equal(held.status, 202);
      const approved = await h.admin('POST', `/v1/approvals/${held.body.approvalId}/approve`, {});
      assert.equal(approved.status, 200, JSON.stringify(approved.body));
      const signature = approved.body.result.signature;

      const view = await h.call('GET', `/v1/approvals/${held.body.approvalId}`, { token: child.body.token });
      assert.equal(view.body.result, undefined);
      // The same request signed directly by the parent under an Idempotency-Key: the child's retry under that key.
      const direct = usdcAuthorization(parent.agent.address, ALICE, 40_000_000n, validBefore(), nonce(78));
      const directSigned = await h.call('POST', '/v1/sign/typed-data', { token: parent.token, body: direct, headers: { 'idempotency-key': 'parent-40' } });
      assert.equal(directSigned.status, 200, JSON.stringify(directSigned.body));

      const before = (await h.admin('GET', `/v1/audit?agent=${parent.agent.name}&type=sign.replay`)).body.entries.length;
      for (const [body, headers, withheld] of [[view.body.request, {}, signature], [direct, { 'idempotency-key': 'parent-40' }, directSigned.body.signature]] as const) {
        const replay = await h.call('POST', '/v1/sign/typed-data', { token: child.body.token, body, headers });
        assert.equal(replay.status, 403, JSON.stringify(replay.body));
        assert.deepEqual(replay.body.error.violations.map((v: { code: string }) => v.code), ['replay_not_allowed']);
        assert.equal(replay.body.signature, undefined);
        assert.ok(!JSON.stringify(replay.body).includes(withheld.slice(2, 40)));
      }
      const refused = (await h.admin('GET', `/v1/audit?agent=${parent.agent.name}&type=sign.replay`)).body.entries.slice(-2);
      assert.equal((await h.admin('GET', `/v1/audit?agent=${parent.agent.name}&type=sign.replay`)).body.entries.length, before + 2);
      assert.deepEqual(refused.map((e: { decision: string; sessionId: string }) => [e.decision, e.sessionId]), [['deny', child.body.session.id], ['deny', child.body.session.id]]);

      // The parent itself still collects it, as a replay.
      const own = await h.call('POST', '/v1/sign/typed-data', { token: parent.token, body: view.body.request });
      assert.equal(own.status, 200, JSON.stringify(own.body));
      assert.equal(own.body.signature, signature);
      assert.equal(own.body.replayed, true);
    });

    test("a parent collects its child's signature; a session the operator issued collects any of the agent's", async () => {
      const parent = await provisionAgent(h, { policy: usdcPolicy({ daily: '100000000' }), actions: ['evm.typed_data'] });
      const child = await h.call('POST', '/v1/session/children', { token: parent.token, body: { budgets: [{ asset: USDC_ASSET, max: '1000000', window: '24h' }] } });
      const small = usdcAuthorization(parent.agent.address, ALICE, 500_000n, validBefore(), nonce(90));
      const signed = await h.call('POST', '/v1/sign/typed-data', { token: child.body.token, body: small });
      assert.equal(signed.status, 200, JSON.stringify(signed.body));

      const byParent = await h.call('POST', '/v1/sign/typed-data', { token: parent.token, body: small });
      assert.equal(byParent.status, 200, JSON.stringify(byParent.body));
      assert.equal(byParent.body.signature, signed.body.signature);

      const renewed = await h.admin('POST', `/v1/agents/${parent.agent.name}/sessions`, { ttl: '1h', actions: ['evm.typed_data'] });
      assert.equal(renewed.status, 201, JSON.stringify(renewed.body));
      const byRenewed = await h.call('POST', '/v1/sign/typed-data', { token: renewed.body.token, body: small });
      assert.equal(byRenewed.status, 200, JSON.stringify(byRenewed.body));
      assert.equal(byRenewed.body.signature, signed.body.signature);
    });
  });
}
