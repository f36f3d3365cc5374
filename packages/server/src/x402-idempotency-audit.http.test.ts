// POST /v1/x402/pay answers a reused Idempotency-Key from its stored plan without signing: a conflicting reuse is
// `409 idempotency_conflict`, a retry of a stored refusal `403` with `replayed: true`. Both are audited as on the
// signing routes (docs/api.md: "Replays and conflicts both get an audit entry"), with the session checked again:
// found by review, neither had left an entry and a revoked session's retry was answered from the stored plan.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ALICE, BASE, MALLORY, USDC, USDC_ASSET, provisionAgent, startHarness, type Harness, type StoreKind } from './testing/harness.ts';
import { fakeChain } from './testing/fake-chain.ts';
import { paymentRequiredHeader, usdcRequirement } from './testing/x402-terms.ts';

const API = 'https://api.example.com';
const requirement = usdcRequirement;
const paymentRequired = paymentRequiredHeader;
const policy = {
  version: 1,
  rules: [
    { name: 'paid-apis', type: 'allow', match: { chains: [BASE], kinds: ['eip3009.transfer_with_authorization'], to: [ALICE], resources: [`${API}/**`] } },
    { name: 'max-price', type: 'max_amount', asset: USDC_ASSET, max: '5000' },
    { name: 'short-lived', type: 'validity_window', max_seconds: 120 },
  ],
};

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`x402 idempotency answers are audited (${store})`, () => {
    let h: Harness;
    const chain = fakeChain();
    before(async () => {
      h = await startHarness({ store, manualClock: true, chainReader: chain });
      chain.now = () => h.clock!.now();
    });
    after(async () => h.close());

    test('a conflicting key and a replayed refusal each leave an entry; a revoked session gets no stored answer', async () => {
      const { agent, token, session } = await provisionAgent(h, { policy });
      const pay = (url: string, accepts: Record<string, unknown>[], key: string, t = token) => h.call('POST', '/v1/x402/pay', { token: t, body: { resource: url, paymentRequired: paymentRequired(url, accepts) }, headers: { 'idempotency-key': key } });
      const entries = async () => (await h.admin('GET', `/v1/audit?agent=${agent.name}&limit=1000`)).body.entries as { seq: number; type: string; decision: string; data: Record<string, unknown> }[];

      const paid = await pay(`${API}/data`, [requirement()], 'k-1');
      assert.equal(paid.status, 200);
      const before1 = (await entries()).length;
      const conflict = await pay(`${API}/other`, [requirement()], 'k-1');
      assert.equal(conflict.status, 409);
      assert.equal(conflict.body.error.code, 'idempotency_conflict');
      const added1 = (await entries()).slice(before1);
      assert.deepEqual(added1.map((e) => [e.type, e.decision, e.data.errorCode, e.data.idempotencyKey]), [['sign.request', 'error', 'idempotency_conflict', 'k-1']]);

      const refused = await pay(`${API}/data`, [requirement({ payTo: MALLORY })], 'k-2');
      assert.equal(refused.status, 403);
      const before2 = (await entries()).length;
      const again = await pay(`${API}/data`, [requirement({ payTo: MALLORY })], 'k-2');
      assert.equal(again.status, 403);
      assert.equal(again.body.replayed, true);
      const added2 = (await entries()).slice(before2);
      assert.deepEqual(added2.map((e) => [e.type, e.decision, e.data.originalSeq, e.seq]), [['sign.replay', 'deny', refused.body.auditSeq, again.body.replayAuditSeq]]);

      assert.equal((await h.admin('POST', `/v1/sessions/${session.id}/revoke`, {})).status, 200);
      const dead = await pay(`${API}/data`, [requirement({ payTo: MALLORY })], 'k-2');
      assert.equal(dead.status, 401, JSON.stringify(dead.body));
      assert.equal(dead.body.replayed, undefined);
    });

    test("a child under its parent's key meets the parent's stored refusal: 403 naming replay_not_allowed, not the parent's answer", async () => {
      const { agent, token } = await provisionAgent(h, { policy });
      const pay = (key: string, t: string) => h.call('POST', '/v1/x402/pay', { token: t, body: { resource: `${API}/data`, paymentRequired: paymentRequired(`${API}/data`, [requirement({ payTo: MALLORY })]) }, headers: { 'idempotency-key': key } });
      const refused = await pay('parent-k', token);
      assert.equal(refused.status, 403);
      const child = await h.call('POST', '/v1/session/children', { token, body: {} });
      assert.equal(child.status, 201, JSON.stringify(child.body));
      const res = await pay('parent-k', child.body.token);
      assert.equal(res.status, 403, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'policy_denied');
      assert.equal(res.body.replayed, undefined, 'not the parent\'s stored answer');
      assert.match(res.body.error.message, /replay/);
      const [entry] = ((await h.admin('GET', `/v1/audit?agent=${agent.name}&type=sign.replay&limit=10`)).body.entries as any[]);
      assert.deepEqual([entry.decision, entry.sessionId, entry.data.originalSeq, entry.data.violations[0].code], ['deny', child.body.session.id, refused.body.auditSeq, 'replay_not_allowed']);
      const parentAgain = await pay('parent-k', token);
      assert.equal(parentAgain.body.replayed, true, 'the parent still gets its own answer');
    });
  });
}
