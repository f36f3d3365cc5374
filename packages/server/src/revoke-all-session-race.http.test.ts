// revoke-all (the incident button: freeze, revoke every session, deny pending approvals) revokes every session the
// agent has when it commits. Found by review: it listed the sessions before its exclusive transaction, so a session
// the operator API issued in between passed issueSession's check (the agent still active), was never revoked, and
// signed as soon as the operator unfroze the agent after the incident.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ALICE, beforeNextTransaction, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`a session issued while revoke-all runs (${store})`, () => {
    let h: Harness;
    before(async () => { h = await startHarness({ store }); });
    after(async () => h.close());

    test('is revoked with the others: after the unfreeze neither the old nor the late session signs', async () => {
      const { agent, token } = await provisionAgent(h, { policy: usdcPolicy() });
      let issued: { status: number; body: any } | undefined;
      const hook = beforeNextTransaction(h, async () => { issued = await h.admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['evm.transaction'] }); });
      const revoked = await h.admin('POST', `/v1/agents/${agent.name}/revoke-all`);
      assert.ok(hook.ran());
      assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
      assert.equal(issued?.status, 201, JSON.stringify(issued?.body));
      const lateId = issued!.body.session.id as string;
      assert.ok((revoked.body.revokedSessions as string[]).includes(lateId), `revoke-all left ${lateId} live: ${JSON.stringify(revoked.body.revokedSessions)}`);
      assert.equal((await h.admin('POST', `/v1/agents/${agent.name}/unfreeze`)).status, 200);
      assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1n, 0) })).status, 401);
      // On the old code: 200, signed.
      const late = await h.call('POST', '/v1/sign/transaction', { token: issued!.body.token, body: usdcTransfer(ALICE, 1n, 1) });
      assert.equal(late.status, 401, JSON.stringify(late.body));
    });
  });
}
