// Retirement is final. An operator write that read the agent before a retirement committed must not undo it: found
// by review, a freeze that read the agent active wrote `frozen` over `retired` (the status check ran before its
// transaction, the store's update is unconditional), an unfreeze then made it active, a new session was issued and
// the retired agent's key signed again. A session issued while the retirement commits must not outlive it either:
// found by a review of that fix, retire listed the sessions before its transaction, so one issued in between was
// never revoked (live in every listing); revoke-all the same, and that one signed after the operator unfroze.
import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ALICE, beforeNextTransaction, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`retirement raced by another operator write (${store})`, () => {
    let h: Harness;
    before(async () => { h = await startHarness({ store }); });
    after(async () => h.close());

    test('a freeze that read the agent before its retirement committed is refused agent_retired; the agent stays retired and signs nothing', async () => {
      const { agent, token } = await provisionAgent(h, { policy: usdcPolicy() });
      let retire: { status: number; body: any } | undefined;
      // The freeze has read the agent (active) and is about to open its transaction: the retirement lands now.
      const hook = beforeNextTransaction(h, async () => { retire = await h.admin('POST', `/v1/agents/${agent.name}/retire?sweep=false`); });
      const freeze = await h.admin('POST', `/v1/agents/${agent.name}/freeze`);
      assert.ok(hook.ran());
      assert.equal(retire?.status, 200, JSON.stringify(retire?.body));
      // On the old code: 200, and the agent read `frozen` after it.
      assert.equal(freeze.status, 403, JSON.stringify(freeze.body));
      assert.equal(freeze.body.error.code, 'agent_retired');

      assert.equal((await h.admin('GET', `/v1/agents/${agent.name}`)).body.status, 'retired');
      const entries = (await h.admin('GET', `/v1/audit?agent=${agent.name}&limit=100`)).body.entries as { type: string }[];
      assert.deepEqual(entries.filter((e) => e.type.startsWith('agent.')).map((e) => e.type).sort(), ['agent.retired'], 'no agent.frozen recorded');

      const unfreeze = await h.admin('POST', `/v1/agents/${agent.name}/unfreeze`);
      assert.equal(unfreeze.status, 403, JSON.stringify(unfreeze.body));
      assert.equal(unfreeze.body.error.code, 'agent_retired');
      const issued = await h.admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['evm.transaction'] });
      assert.equal(issued.status, 403, JSON.stringify(issued.body));
      assert.equal(issued.body.error.code, 'agent_retired');
      assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1n) })).status, 401, 'its session died with it');
    });

    test('a session issued by a request that read the agent before its retirement committed is refused agent_retired', async () => {
      const { agent } = await provisionAgent(h, { policy: usdcPolicy() });
      let retire: { status: number; body: any } | undefined;
      const hook = beforeNextTransaction(h, async () => { retire = await h.admin('POST', `/v1/agents/${agent.name}/retire?sweep=false`); });
      const issued = await h.admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['evm.transaction'] });
      assert.ok(hook.ran());
      assert.equal(retire?.status, 200, JSON.stringify(retire?.body));
      // On the old code: 201, a live session of a retired agent.
      assert.equal(issued.status, 403, JSON.stringify(issued.body));
      assert.equal(issued.body.error.code, 'agent_retired');
      const sessions = (await h.admin('GET', `/v1/sessions?agent=${agent.name}`)).body.sessions as unknown[];
      assert.deepEqual(sessions, [], 'no live session');
      const entries = (await h.admin('GET', `/v1/audit?agent=${agent.name}&limit=100`)).body.entries as { type: string }[];
      assert.equal(entries.filter((e) => e.type === 'session.issued').length, 1, 'only the session provisionAgent issued');
    });

    test('a session issued just before the retirement transaction is revoked with it (listed under its lock)', async () => {
      const { agent, token } = await provisionAgent(h, { policy: usdcPolicy() });
      let issued: { status: number; body: any } | undefined;
      const hook = beforeNextTransaction(h, async () => { issued = await h.admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['evm.transaction'] }); });
      const retire = await h.admin('POST', `/v1/agents/${agent.name}/retire?sweep=false`);
      assert.ok(hook.ran());
      assert.equal(retire.status, 200, JSON.stringify(retire.body));
      assert.equal(issued?.status, 201, JSON.stringify(issued?.body));
      // On the old code: the late session listed live, no revokedAt, and not in the retirement's revokedSessions.
      assert.deepEqual((await h.admin('GET', `/v1/sessions?agent=${agent.name}`)).body.sessions, [], 'no live session');
      const entries = (await h.admin('GET', `/v1/audit?agent=${agent.name}&limit=100`)).body.entries as { type: string; data?: any }[];
      const retired = entries.find((e) => e.type === 'agent.retired')!;
      assert.ok(retired.data.revokedSessions.includes(issued!.body.session.id), JSON.stringify(retired.data));
      for (const t of [token, issued!.body.token]) assert.equal((await h.call('POST', '/v1/sign/transaction', { token: t, body: usdcTransfer(ALICE, 1n) })).status, 401);
    });
  });
}
