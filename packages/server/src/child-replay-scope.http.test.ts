// A derived session asking for what its parent asked (the same Idempotency-Key, or the same authorization while it
// waits for a human) is judged against its own scope and origin as a signature's replay is: out of scope it gets
// 403 with the rule, not its parent's 202 with the approval id and intent (found by review). The parent itself
// still gets its hold back. Through HTTP on both stores.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ALICE, provisionAgent, startHarness, usdcAuthorization, usdcPolicy, type Harness, type StoreKind } from './testing/harness.ts';

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`a derived session and its parent's held request (${store})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ store, manualClock: true });
    });
    after(async () => h.close());

    async function parentHold(key: string, nonceByte: string) {
      const parent = await provisionAgent(h, { policy: usdcPolicy({ approvalAbove: '50000000' }), actions: ['evm.transaction', 'evm.typed_data'] });
      const child = await h.call('POST', '/v1/session/children', { token: parent.token, body: { actions: ['evm.transaction'] } });
      assert.equal(child.status, 201, JSON.stringify(child.body));
      const body = usdcAuthorization(parent.agent.address, ALICE, 60_000_000n, Math.floor(h.clock!.now() / 1000) + 3600, `0x${nonceByte.repeat(32)}`);
      const held = await h.call('POST', '/v1/sign/typed-data', { token: parent.token, body, headers: { 'idempotency-key': key } });
      assert.equal(held.status, 202, JSON.stringify(held.body));
      return { parent, childToken: child.body.token as string, body, held: held.body };
    }

    const replays = async (agentId: string) => (await h.admin('GET', `/v1/audit?type=sign.replay&agent=${agentId}&limit=100`)).body.entries as any[];

    test('a child out of scope resending under the parent\'s Idempotency-Key: 403 naming action_not_allowed, no approval id, its replay entry a deny', async () => {
      const { parent, childToken, body, held } = await parentHold('parent-held', '71');
      const res = await h.call('POST', '/v1/sign/typed-data', { token: childToken, body, headers: { 'idempotency-key': 'parent-held' } });
      assert.equal(res.status, 403, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'policy_denied');
      assert.ok(res.body.error.violations.some((v: any) => v.code === 'action_not_allowed'), JSON.stringify(res.body));
      assert.equal(res.body.approvalId, undefined);
      assert.equal(res.body.intent, undefined);
      const [entry] = await replays(parent.agent.id);
      assert.equal(entry.decision, 'deny');
      assert.equal(entry.data.originalSeq, held.auditSeq);
      // The parent still gets its own hold back.
      const again = await h.call('POST', '/v1/sign/typed-data', { token: parent.token, body, headers: { 'idempotency-key': 'parent-held' } });
      assert.equal(again.status, 202);
      assert.equal(again.body.approvalId, held.approvalId);
    });

    test('a child out of scope sending the same authorization without a key: 403 naming action_not_allowed, not pointed at the approval', async () => {
      const { parent, childToken, body, held } = await parentHold('parent-held-2', '72');
      const res = await h.call('POST', '/v1/sign/typed-data', { token: childToken, body });
      assert.equal(res.status, 403, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'policy_denied');
      assert.ok(res.body.error.violations.some((v: any) => v.code === 'action_not_allowed'), JSON.stringify(res.body));
      assert.equal(res.body.approvalId, undefined);
      const pending = (await h.admin('GET', `/v1/approvals?agent=${parent.agent.id}&status=pending`)).body.approvals as any[];
      assert.deepEqual(pending.map((a) => a.id), [held.approvalId], 'the parent\'s approval is still the only one, still pending');
      const again = await h.call('POST', '/v1/sign/typed-data', { token: parent.token, body });
      assert.equal(again.status, 202);
      assert.equal(again.body.approvalId, held.approvalId);
    });

    test('a child in scope but not the sender of the hold: 403 naming replay_not_allowed under the key', async () => {
      const { parent, body } = await parentHold('parent-held-3', '73');
      const sibling = await h.call('POST', '/v1/session/children', { token: parent.token, body: { actions: ['evm.typed_data'] } });
      assert.equal(sibling.status, 201, JSON.stringify(sibling.body));
      const res = await h.call('POST', '/v1/sign/typed-data', { token: sibling.body.token, body, headers: { 'idempotency-key': 'parent-held-3' } });
      assert.equal(res.status, 403, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'policy_denied');
      assert.ok(res.body.error.violations.some((v: any) => v.code === 'replay_not_allowed'), JSON.stringify(res.body));
      assert.equal(res.body.approvalId, undefined);
    });
  });
}
