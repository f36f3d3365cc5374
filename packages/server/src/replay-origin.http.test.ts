// A derived session collects only its own requests' signatures and those of sessions derived from it (found by
// review). An approved signature was withheld from a child session by GET /v1/approvals/{id}, but the same answer
// showed the held request; re-sent, it was a nonce replay, judged only by the child's actions and chains (a replay
// charges nothing), and the child, whose own budget was 1 USDC, collected its parent's 60 USDC authorization. A
// replay now names the session that made the original request: a derived session other than it, or one above it,
// is refused `replay_not_allowed`. Sessions the operator issued (no parent) are the agent's own and collect any of
// its signatures, so a renewed session may retry (docs/api.md, Idempotency-Key).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ALICE, USDC_ASSET, provisionAgent, startHarness, usdcAuthorization, usdcPolicy, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';

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

    test("a session the operator issued with a 1 USDC budget cannot collect another session's 60 USDC signature", async () => {
      const first = await provisionAgent(h, { policy: usdcPolicy({ daily: '100000000' }), actions: ['evm.typed_data'] });
      const big = usdcAuthorization(first.agent.address, ALICE, 60_000_000n, validBefore(), nonce(130));
      const signed = await h.call('POST', '/v1/sign/typed-data', { token: first.token, body: big });
      assert.equal(signed.status, 200, JSON.stringify(signed.body));
      const narrow = await h.admin('POST', `/v1/agents/${first.agent.name}/sessions`, { ttl: '1h', actions: ['evm.typed_data'], budgets: [{ asset: USDC_ASSET, max: '1000000', window: '24h' }] });
      assert.equal(narrow.status, 201, JSON.stringify(narrow.body));
      const replay = await h.call('POST', '/v1/sign/typed-data', { token: narrow.body.token, body: big });
      assert.equal(replay.status, 403, JSON.stringify(replay.body));
      assert.equal(replay.body.error.code, 'policy_denied');
      assert.deepEqual(replay.body.error.violations.map((v: { rule: string; code: string; used: string }) => [v.rule, v.code, v.used]), [['session/budget-0', 'budget_exceeded', '0']]);
      assert.ok(!JSON.stringify(replay.body).includes(signed.body.signature.slice(2, 40)));
      // A wide enough one collects it, as a replay.
      const wide = await h.admin('POST', `/v1/agents/${first.agent.name}/sessions`, { ttl: '1h', actions: ['evm.typed_data'], budgets: [{ asset: USDC_ASSET, max: '60000000', window: '24h' }] });
      const collected = await h.call('POST', '/v1/sign/typed-data', { token: wide.body.token, body: big });
      assert.equal(collected.status, 200, JSON.stringify(collected.body));
      assert.equal(collected.body.signature, signed.body.signature);
      assert.equal(collected.body.replayed, true);
    });

    test("a session the operator issued that spent 90 of its 100 USDC cannot collect another session's 60 USDC signature", async () => {
      // Found by review: the original's charge was taken out of this session's series too, where it was never counted.
      const first = await provisionAgent(h, { policy: usdcPolicy({ daily: '1000000000' }), actions: ['evm.typed_data'], ttl: '30d' });
      const big = usdcAuthorization(first.agent.address, ALICE, 60_000_000n, validBefore() + 2 * 86_400, nonce(501));
      assert.equal((await h.call('POST', '/v1/sign/typed-data', { token: first.token, body: big })).status, 200);
      const second = await h.admin('POST', `/v1/agents/${first.agent.name}/sessions`, { ttl: '1h', actions: ['evm.typed_data'], budgets: [{ asset: USDC_ASSET, max: '100000000', window: '24h' }] });
      assert.equal((await h.call('POST', '/v1/sign/typed-data', { token: second.body.token, body: usdcAuthorization(first.agent.address, ALICE, 90_000_000n, validBefore(), nonce(502)) })).status, 200);
      const replay = await h.call('POST', '/v1/sign/typed-data', { token: second.body.token, body: big });
      assert.equal(replay.status, 403, JSON.stringify(replay.body));
      assert.deepEqual(replay.body.error.violations.map((v: { code: string; used: string }) => [v.code, v.used]), [['budget_exceeded', '90000000']]);
      // Its own original, replayed a day later (out of the 24h window): judged as itself, nothing taken out of a
      // window it has left (the session's 90 has left it too).
      h.clock!.advance(25 * 3_600_000);
      const own = await h.call('POST', '/v1/sign/typed-data', { token: first.token, body: big });
      assert.equal(own.status, 200, JSON.stringify(own.body));
      assert.equal(own.body.replayed, true);
    });

    test('a replay is judged by the policy in force: refused while a deny rule or an approval tier covers it, released once it is lifted', async () => {
      const policy = usdcPolicy({ daily: '10000000', approvalAbove: '5000000' });
      const { agent, token } = await provisionAgent(h, { policy, actions: ['evm.typed_data', 'evm.transaction'] });
      const transfer = usdcTransfer(ALICE, 2_000_000n, 3);
      const first = await h.call('POST', '/v1/sign/transaction', { token, body: transfer, headers: { 'idempotency-key': 'judged-again' } });
      assert.equal(first.status, 200, JSON.stringify(first.body));
      const authorization = usdcAuthorization(agent.address, ALICE, 1_000_000n, validBefore(), nonce(120));
      const signedAuth = await h.call('POST', '/v1/sign/typed-data', { token, body: authorization });
      assert.equal(signedAuth.status, 200, JSON.stringify(signedAuth.body));

      const denying = { ...policy, rules: [{ name: 'alice-compromised', type: 'deny', match: { to: [ALICE] } }, ...policy.rules] };
      assert.equal((await h.admin('PUT', `/v1/policies/${agent.name}`, { document: denying })).status, 200);
      // The idempotent retry and the nonce replay: nothing released, the rule named, each audited.
      for (const [path, body, headers, secret] of [['/v1/sign/transaction', transfer, { 'idempotency-key': 'judged-again' }, first.body.signedTransaction], ['/v1/sign/typed-data', authorization, {}, signedAuth.body.signature]] as const) {
        const replay = await h.call('POST', path, { token, body, headers });
        assert.equal(replay.status, 403, JSON.stringify(replay.body));
        assert.equal(replay.body.error.code, 'policy_denied');
        assert.deepEqual(replay.body.error.violations.map((v: { rule: string }) => v.rule), ['agent/alice-compromised']);
        assert.ok(!JSON.stringify(replay.body).includes(secret.slice(2, 40)), 'the signature is not in the refusal');
      }
      const replays = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=sign.replay`)).body.entries;
      assert.deepEqual(replays.map((e: { decision: string }) => e.decision), ['deny', 'deny']);

      // The deny lifted, with the approval threshold now below the request: no human approved the original, and a
      // replay cannot be held, so it is refused naming the tier.
      assert.equal((await h.admin('PUT', `/v1/policies/${agent.name}`, { document: usdcPolicy({ daily: '10000000', approvalAbove: '500000' }) })).status, 200);
      const held = await h.call('POST', '/v1/sign/transaction', { token, body: transfer, headers: { 'idempotency-key': 'judged-again' } });
      assert.equal(held.status, 403, JSON.stringify(held.body));
      assert.deepEqual(held.body.error.violations.map((v: { code: string }) => v.code), ['replay_not_approved', 'approval_required']);
      // Lifted: the replay is released and charges nothing (2 + 1 of the 10 still counted once: 7 more fit, 7.000001 does not).
      assert.equal((await h.admin('PUT', `/v1/policies/${agent.name}`, { document: usdcPolicy({ daily: '10000000' }) })).status, 200);
      const released = await h.call('POST', '/v1/sign/transaction', { token, body: transfer, headers: { 'idempotency-key': 'judged-again' } });
      assert.equal(released.status, 200, JSON.stringify(released.body));
      assert.equal(released.body.replayed, true);
      assert.equal(released.body.signedTransaction, first.body.signedTransaction);
      const over = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 7_000_001n, 4) });
      assert.equal(over.status, 403, JSON.stringify(over.body));
      assert.equal(over.body.error.violations[0].used, '3000000');
    });
  });
}
