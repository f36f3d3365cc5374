// A replay is judged again by the policy in force (signing-service.ts `replay`, found by review 2026-12-04). A charged
// signature the key backend never returned (sign.failed after the commit) is released for the first time by its
// retry: what the operator put in place in between (an approval tier, a breaker holding the agent) must stop it,
// a replay stopped by the loop guard raises its alert as a fresh request does, and a refused x402 replay keeps its
// hold and its place in the budget.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateApproverKey, signApprovalVote } from '@airlock/sdk/approvals';
import { ALICE, USDC_ASSET, provisionAgent, startHarness, usdcAuthorization, usdcPolicy, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';

/** The next signature of the key backend fails, after the decision committed (an HSM or key process outage). */
function failNextSignature(h: Harness): void {
  const keys = h.airlock.deps.keys as unknown as Record<string, unknown>;
  const original = keys.signDigest as (...a: unknown[]) => Promise<unknown>;
  keys.signDigest = async () => {
    keys.signDigest = original;
    throw new Error('injected key backend fault');
  };
}

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`replays are judged by the policy in force (${store})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ store, manualClock: true });
    });
    after(async () => h.close());

    async function undelivered(token: string, body: unknown, key: string) {
      failNextSignature(h);
      const failed = await h.call('POST', '/v1/sign/transaction', { token, body, headers: { 'idempotency-key': key } });
      assert.equal(failed.status, 500, JSON.stringify(failed.body));
      assert.equal(failed.body.signedTransaction, undefined);
    }

    test('a charged signature never delivered is not released by its retry once every such request needs a human', async () => {
      const { agent, token } = await provisionAgent(h, { policy: usdcPolicy({ daily: '10000000' }) });
      const body = usdcTransfer(ALICE, 3_000_000n, 11);
      await undelivered(token, body, 'undelivered-approval');
      assert.equal((await h.admin('PUT', `/v1/policies/${agent.name}`, { document: usdcPolicy({ daily: '10000000', approvalAbove: '0' }) })).status, 200);
      assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 3_000_000n, 12) })).status, 202, 'a new request is held');

      const retry = await h.call('POST', '/v1/sign/transaction', { token, body, headers: { 'idempotency-key': 'undelivered-approval' } });
      assert.equal(retry.status, 403, JSON.stringify(retry.body));
      assert.equal(retry.body.error.code, 'policy_denied');
      assert.deepEqual(retry.body.error.violations.map((v: { rule: string; code: string }) => [v.rule, v.code]), [['agent/big-needs-human', 'replay_not_approved'], ['agent/big-needs-human', 'approval_required']]);
      assert.equal(retry.body.signedTransaction, undefined);
      const replays = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=sign.replay`)).body.entries;
      assert.deepEqual(replays.map((e: { decision: string }) => e.decision), ['deny']);

      // The tier lifted, the retry releases the charged signature: charged once (3 of 10, plus the 3 held).
      assert.equal((await h.admin('PUT', `/v1/policies/${agent.name}`, { document: usdcPolicy({ daily: '10000000' }) })).status, 200);
      const released = await h.call('POST', '/v1/sign/transaction', { token, body, headers: { 'idempotency-key': 'undelivered-approval' } });
      assert.equal(released.status, 200, JSON.stringify(released.body));
      assert.equal(released.body.replayed, true);
      const over = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 4_000_001n, 13) });
      assert.equal(over.body.error.violations[0].used, '6000000');
    });

    test('a charged signature never delivered is not released by its retry while a breaker holds the agent for approval', async () => {
      const detectors = [{ name: 'burst', type: 'request_burst', window: '1m', baseline: '1h', min_count: 3, action: 'require_approval' }];
      const { agent, token } = await provisionAgent(h, { policy: { ...usdcPolicy({ daily: '100000000' }), detectors }, ttl: '30d' });
      h.clock!.advance(2 * 3_600_000);
      const body = usdcTransfer(ALICE, 1_000_000n, 21);
      await undelivered(token, body, 'undelivered-breaker');
      for (let n = 22; n < 24; n++) assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000_000n, n) })).status, 200);
      assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000_000n, 24) })).status, 202, 'the burst trips the breaker');
      h.clock!.advance(3_600_000);

      const retry = await h.call('POST', '/v1/sign/transaction', { token, body, headers: { 'idempotency-key': 'undelivered-breaker' } });
      assert.equal(retry.status, 403, JSON.stringify(retry.body));
      assert.deepEqual(retry.body.error.violations.map((v: { rule: string; code: string }) => [v.rule, v.code]), [['detector/agent/burst', 'replay_not_approved'], ['detector/agent/burst', 'breaker_open']]);
      assert.equal(retry.body.signedTransaction, undefined);

      const [breaker] = (await h.admin('GET', '/v1/breakers')).body.breakers.filter((b: { agents: string[] }) => b.agents.includes(agent.id));
      assert.equal((await h.admin('POST', `/v1/breakers/${breaker.id}/reset`, {})).status, 200);
      const released = await h.call('POST', '/v1/sign/transaction', { token, body, headers: { 'idempotency-key': 'undelivered-breaker' } });
      assert.equal(released.status, 200, JSON.stringify(released.body));
      assert.equal(released.body.replayed, true);
    });

    test('an approved authorization never delivered is not released by its replay once the policy asks a larger quorum than granted it', async () => {
      const quorumPolicy = (min: number) => {
        const doc = usdcPolicy({ daily: '10000000' });
        doc.rules.push({ name: 'ops-approve', type: 'approval_tier', asset: USDC_ASSET, above: '0', quorum: { min, groups: ['ops'] } } as never);
        return doc;
      };
      const { agent, token } = await provisionAgent(h, { policy: quorumPolicy(1) });
      const approvers = [];
      for (const n of [1, 2]) {
        const key = generateApproverKey();
        const name = `ops-${store}-${n}`;
        assert.equal((await h.admin('POST', '/v1/approvers', { name, publicKey: key.publicKey, groups: ['ops'] })).status, 201);
        approvers.push({ name, secretKey: key.secretKey });
      }
      const auth = usdcAuthorization(agent.address, ALICE, 2_000_000n, Math.floor(h.clock!.now() / 1000) + 3600, `0x${'5c'.repeat(32)}`);
      const held = await h.call('POST', '/v1/sign/typed-data', { token, body: auth });
      assert.equal(held.status, 202, JSON.stringify(held.body));
      const { digest } = (await h.admin('GET', `/v1/approvals/${held.body.approvalId}`)).body;
      // One vote meets the quorum of 1; the key backend fails as the grant signs.
      failNextSignature(h);
      const vote = signApprovalVote({ secretKey: approvers[0]!.secretKey, approvalId: held.body.approvalId, digest, decision: 'approve', approver: approvers[0]!.name, at: new Date(h.clock!.now()).toISOString() });
      await h.call('POST', `/v1/approvals/${held.body.approvalId}/votes`, { body: vote });
      assert.equal((await h.admin('GET', `/v1/approvals/${held.body.approvalId}`)).body.state, 'approved');
      assert.equal((await h.admin('GET', `/v1/audit?agent=${agent.name}&type=sign.failed`)).body.entries.length, 1, 'granted, never delivered');

      // The quorum raised to 2: one approver's grant no longer stands for it.
      assert.equal((await h.admin('PUT', `/v1/policies/${agent.name}`, { document: quorumPolicy(2) })).status, 200);
      const refused = await h.call('POST', '/v1/sign/typed-data', { token, body: auth });
      assert.equal(refused.status, 403, JSON.stringify(refused.body));
      assert.deepEqual(refused.body.error.violations.map((v: { rule: string; code: string }) => [v.rule, v.code]), [['agent/ops-approve', 'replay_not_approved'], ['agent/ops-approve', 'approval_required']]);
      assert.equal(refused.body.signature, undefined);
      assert.match(refused.body.error.violations[0].message, /approved by fewer votes than the quorum the policy in force now asks/);

      // Back to the quorum the grant met: the replay releases the charged signature, charged once, also after the
      // approver whose vote granted it was disabled (votes are withdrawn from pending approvals only: found by review,
      // the charge was stranded with no way to release it).
      assert.equal((await h.admin('PUT', `/v1/policies/${agent.name}`, { document: quorumPolicy(1) })).status, 200);
      assert.equal((await h.admin('POST', `/v1/approvers/${approvers[0]!.name}/disable`, {})).status, 200);
      const released = await h.call('POST', '/v1/sign/typed-data', { token, body: auth });
      assert.equal(released.status, 200, JSON.stringify(released.body));
      assert.equal(released.body.auditSeq, held.body.auditSeq);
      const over = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 8_000_001n, 41) });
      assert.equal(over.body.error.violations.find((v: { code: string }) => v.code === 'budget_exceeded')?.used, '2000000');
    });

    test('a tripped freeze breaker refuses a replay as it refuses a fresh request, after the agent was unfrozen by hand', async () => {
      const policy = usdcPolicy({ daily: '100000000' }) as ReturnType<typeof usdcPolicy> & { detectors?: unknown[] };
      policy.detectors = [{ name: 'burst', type: 'request_burst', window: '1m', baseline: '1h', min_count: 3, action: 'freeze' }];
      const { agent, token } = await provisionAgent(h, { policy });
      const sign = (body: unknown, key?: string) => (h.clock!.advance(1000), h.call('POST', '/v1/sign/transaction', { token, body, ...(key ? { headers: { 'idempotency-key': key } } : {}) }));
      const first = usdcTransfer(ALICE, 1_000_000n, 51);
      const signed = await sign(first, 'before-the-freeze');
      assert.equal(signed.status, 200, JSON.stringify(signed.body));
      for (const nonce of [52, 53]) assert.equal((await sign(usdcTransfer(ALICE, 1_000_000n, nonce))).status, 200);
      const trip = await sign(usdcTransfer(ALICE, 1_000_000n, 54));
      assert.deepEqual(trip.body.error.violations.map((v: { code: string }) => v.code), ['breaker_tripped']);
      // The operator unfreezes the agent but leaves the breaker tripped: it still binds the agent.
      assert.equal((await h.admin('POST', `/v1/agents/${agent.name}/unfreeze`)).status, 200);
      h.clock!.advance(600_000);
      const fresh = await sign(usdcTransfer(ALICE, 1_000_000n, 55));
      assert.deepEqual([fresh.status, fresh.body.error.violations.map((v: { rule: string; code: string }) => [v.rule, v.code])], [403, [['detector/agent/burst', 'breaker_open']]]);
      const replay = await sign(first, 'before-the-freeze');
      assert.equal(replay.status, 403, JSON.stringify(replay.body));
      assert.deepEqual(replay.body.error.violations.map((v: { rule: string; code: string }) => [v.rule, v.code]), [['detector/agent/burst', 'breaker_open']]);
      assert.equal(replay.body.signedTransaction, undefined);
      const replays = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=sign.replay`)).body.entries;
      assert.deepEqual(replays.map((e: { decision: string }) => e.decision), ['deny']);

      // Reset, the replay releases the same signature, charged once.
      const [breaker] = (await h.admin('GET', '/v1/breakers')).body.breakers.filter((b: { agents: string[] }) => b.agents.includes(agent.id));
      assert.equal((await h.admin('POST', `/v1/breakers/${breaker.id}/reset`, {})).status, 200);
      const released = await sign(first, 'before-the-freeze');
      assert.equal(released.status, 200, JSON.stringify(released.body));
      assert.equal(released.body.signedTransaction, signed.body.signedTransaction);
    });

    test('a payment retried in a loop and stopped by the loop guard on a replay raises alert.loop_guard', async () => {
      const policy = usdcPolicy({ daily: '100000000' });
      policy.rules.push({ name: 'no-loops', type: 'loop_guard', max: 1, window: '1m' } as never);
      const { agent, token } = await provisionAgent(h, { policy });
      const auth = usdcAuthorization(agent.address, ALICE, 1_000n, Math.floor(h.clock!.now() / 1000) + 600, `0x${'6b'.repeat(32)}`);
      const body = { ...auth, x402: { resource: 'https://api.example.com/loop' } };
      const statuses: number[] = [];
      let refused;
      for (let i = 0; i < 3; i++) {
        const res = await h.call('POST', '/v1/sign/typed-data', { token, body });
        statuses.push(res.status);
        if (res.status === 403) refused = res;
      }
      assert.deepEqual(statuses, [200, 200, 403]);
      assert.equal(refused!.body.error.violations[0].code, 'loop_guard_tripped');
      const alerts = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=alert.loop_guard`)).body.entries;
      assert.equal(alerts.length, 1);
      assert.equal(alerts[0].data.resource, 'https://api.example.com/loop');
    });

    test('an x402 authorization whose replay a new deny rule refuses keeps its hold and its place in the budget', async () => {
      const { agent, token } = await provisionAgent(h, { policy: usdcPolicy({ daily: '5000000' }) });
      const auth = usdcAuthorization(agent.address, ALICE, 2_000_000n, Math.floor(h.clock!.now() / 1000) + 600, `0x${'7a'.repeat(32)}`);
      const body = { ...auth, x402: { resource: 'https://api.example.com/paid' } };
      const first = await h.call('POST', '/v1/sign/typed-data', { token, body });
      assert.equal(first.status, 200, JSON.stringify(first.body));
      const denying = usdcPolicy({ daily: '5000000' });
      denying.rules.unshift({ name: 'alice-compromised', type: 'deny', match: { to: [ALICE] } } as never);
      assert.equal((await h.admin('PUT', `/v1/policies/${agent.name}`, { document: denying })).status, 200);
      const again = await h.call('POST', '/v1/sign/typed-data', { token, body });
      assert.equal(again.status, 403, JSON.stringify(again.body));
      const payments = (await h.admin('GET', `/v1/x402/payments?agent=${agent.name}`)).body.payments;
      assert.deepEqual(payments.map((p: { state: string; value: string }) => [p.state, p.value]), [['reserved', '2000000']]);
      assert.equal((await h.admin('PUT', `/v1/policies/${agent.name}`, { document: usdcPolicy({ daily: '5000000' }) })).status, 200);
      const over = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 3_000_001n, 31) });
      assert.equal(over.body.error.violations[0].used, '2000000');
      const back = await h.call('POST', '/v1/sign/typed-data', { token, body });
      assert.equal(back.status, 200);
      assert.equal(back.body.signature, first.body.signature);
    });
  });
}
