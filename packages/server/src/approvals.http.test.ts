// Human approval: 202 + pending (budget held), approve (single use, signs), deny / expiry (release), all audited.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { parseTransaction, recoverTransactionAddress, type Hex } from 'viem';
import { ALICE, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness } from './testing/harness.ts';

describe('human approval', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ manualClock: true, approvalTtlMs: 3_600_000 });
  });
  after(async () => h.close());

  // Tier above 10 USDC; daily budget 100 USDC.
  const policy = usdcPolicy({ approvalAbove: '10000000', daily: '100000000' });

  test('above the threshold: 202 with an approval id, nothing signed, budget held', async () => {
    const { token } = await provisionAgent(h, { policy });
    const res = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 60_000_000n) });
    assert.equal(res.status, 202);
    assert.equal(res.body.decision, 'require_approval');
    assert.match(res.body.approvalId, /^apr_[0-9a-f]{16}$/);
    assert.equal(res.body.violations[0].rule, 'agent/big-needs-human');
    assert.equal(res.body.violations[0].code, 'approval_required');
    assert.equal(res.body.signedTransaction, undefined);
    // The held 60 counts: another 50 would exceed the 100 budget, and a deny beats the approval tier.
    const more = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 50_000_000n, 1) });
    assert.equal(more.status, 403);
    assert.equal(more.body.error.violations[0].code, 'budget_exceeded');
    assert.equal(more.body.error.violations[0].used, '60000000');
    const fits = await h.call('POST', '/v1/dry-run', { token, body: { action: 'evm.transaction', payload: usdcTransfer(ALICE, 10_000_000n, 2) } });
    assert.equal(fits.body.decision.decision, 'allow', '60 held + 10 <= 100');
  });

  test('an agent lists its own approvals and nobody else\'s; naming another agent is refused', async () => {
    const mine = await provisionAgent(h, { policy });
    const theirs = await provisionAgent(h, { policy });
    const own = (await h.call('POST', '/v1/sign/transaction', { token: mine.token, body: usdcTransfer(ALICE, 20_000_000n) })).body.approvalId;
    const other = (await h.call('POST', '/v1/sign/transaction', { token: theirs.token, body: usdcTransfer(ALICE, 30_000_000n) })).body.approvalId;
    const listed = await h.call('GET', '/v1/approvals', { token: mine.token });
    assert.equal(listed.status, 200);
    assert.deepEqual(listed.body.approvals.map((a: any) => [a.id, a.state]), [[own, 'pending']]);
    // The agent filter cannot widen an agent's view, by id or by name.
    for (const q of [theirs.agent.id, theirs.agent.name]) {
      const peek = await h.call('GET', `/v1/approvals?agent=${encodeURIComponent(q)}`, { token: mine.token });
      assert.equal(peek.status, 403);
      assert.equal(peek.body.error.code, 'forbidden');
    }
    assert.deepEqual((await h.call('GET', `/v1/approvals?agent=${mine.agent.name}&state=all`, { token: mine.token })).body.approvals.map((a: any) => a.id), [own]);
    // The operator still sees both.
    const all = (await h.admin('GET', '/v1/approvals')).body.approvals.map((a: any) => a.id);
    assert.ok(all.includes(own) && all.includes(other));
  });

  test('approve: signs once, the agent fetches the result; a second approval is refused', async () => {
    const { agent, token } = await provisionAgent(h, { policy });
    const pending = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 20_000_000n) });
    const id = pending.body.approvalId;
    const listed = await h.admin('GET', '/v1/approvals');
    assert.ok(listed.body.approvals.some((a: any) => a.id === id && a.state === 'pending'));
    const before = await h.call('GET', `/v1/approvals/${id}`, { token });
    assert.equal(before.body.state, 'pending');
    assert.equal(before.body.result, undefined);

    const approved = await h.admin('POST', `/v1/approvals/${id}/approve`);
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    assert.equal(approved.body.state, 'approved');
    const fetched = await h.call('GET', `/v1/approvals/${id}`, { token });
    const signed = fetched.body.result.signedTransaction as Hex;
    assert.equal((await recoverTransactionAddress({ serializedTransaction: signed as never })).toLowerCase(), agent.address);
    assert.equal(parseTransaction(signed).nonce, 0);

    const again = await h.admin('POST', `/v1/approvals/${id}/approve`);
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'approval_not_pending');
    const deny = await h.admin('POST', `/v1/approvals/${id}/deny`, {});
    assert.equal(deny.status, 409);

    // Another agent cannot see it.
    const other = await provisionAgent(h, { policy });
    assert.equal((await h.call('GET', `/v1/approvals/${id}`, { token: other.token })).status, 404);
    const types = (await h.admin('GET', `/v1/audit?agent=${agent.name}`)).body.entries.map((e: any) => e.type);
    assert.ok(types.includes('approval.granted'));
  });

  test('deny and expiry release the reservation', async () => {
    const { agent, token } = await provisionAgent(h, { policy, ttl: '24h' });
    const a = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 60_000_000n) });
    const b = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 35_000_000n, 1) });
    const probe = () => h.call('POST', '/v1/dry-run', { token, body: { action: 'evm.transaction', payload: usdcTransfer(ALICE, 10_000_000n, 2) } });
    const blocked = await probe();
    assert.equal(blocked.body.decision.decision, 'deny', '95 held + 10 > 100');
    assert.equal(blocked.body.decision.violations[0].used, '95000000');

    const denied = await h.admin('POST', `/v1/approvals/${a.body.approvalId}/deny`, { reason: 'not expected' });
    assert.equal(denied.body.state, 'denied');
    const afterDeny = await probe();
    assert.equal(afterDeny.body.decision.decision, 'allow', 'the denied 60 was released: 35 held + 10 fits');

    h.clock!.advance(3_600_001);
    const expired = await h.call('GET', `/v1/approvals/${b.body.approvalId}`, { token });
    assert.equal(expired.body.state, 'expired');
    const approveLate = await h.admin('POST', `/v1/approvals/${b.body.approvalId}/approve`);
    assert.equal(approveLate.status, 409);
    // Expiry released the 35 too: the whole 100 is free again (10 at a time stays under the tier).
    for (let i = 0; i < 10; i++) assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 10_000_000n, 3 + i) })).status, 200);
    assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1n, 13) })).status, 403);

    const types = (await h.admin('GET', `/v1/audit?agent=${agent.name}&limit=1000`)).body.entries.map((e: any) => e.type);
    assert.ok(types.includes('approval.denied'));
    assert.ok(types.includes('approval.expired'));
  });

  test('approving for a frozen agent is refused; the approval stays pending', async () => {
    const { agent, token } = await provisionAgent(h, { policy });
    const p = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 20_000_000n) });
    await h.admin('POST', `/v1/agents/${agent.name}/freeze`);
    const res = await h.admin('POST', `/v1/approvals/${p.body.approvalId}/approve`);
    assert.equal(res.status, 403);
    assert.equal(res.body.error.code, 'agent_frozen');
    assert.equal((await h.admin('GET', `/v1/approvals/${p.body.approvalId}`)).body.state, 'pending');
  });

  test('revoking the session that asked makes its pending requests unapprovable', async () => {
    const { token, session } = await provisionAgent(h, { policy, ttl: '24h' });
    const p = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 20_000_000n) });
    await h.admin('POST', `/v1/sessions/${session.id}/revoke`);
    const res = await h.admin('POST', `/v1/approvals/${p.body.approvalId}/approve`);
    assert.equal(res.status, 401);
    assert.equal(res.body.error.code, 'session_revoked');
    assert.equal((await h.admin('POST', `/v1/approvals/${p.body.approvalId}/deny`, {})).body.state, 'denied');
  });

  test('a request whose session has expired since cannot be approved; nothing is signed and its hold stays until denied', async () => {
    const { agent, token } = await provisionAgent(h, { policy, ttl: '10m' });
    const p = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 20_000_000n) });
    assert.equal(p.status, 202);
    h.clock!.advance(10 * 60_000 + 1);
    const res = await h.admin('POST', `/v1/approvals/${p.body.approvalId}/approve`);
    assert.equal(res.status, 401, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'session_expired');
    const after = await h.admin('GET', `/v1/approvals/${p.body.approvalId}`);
    assert.equal(after.body.state, 'pending');
    assert.equal(after.body.result, undefined);
    const entries = (await h.admin('GET', `/v1/audit?agent=${agent.name}`)).body.entries.map((e: any) => e.type);
    assert.ok(!entries.includes('approval.granted'), entries.join(','));
    assert.equal((await h.admin('POST', `/v1/approvals/${p.body.approvalId}/deny`, {})).body.state, 'denied');
  });
});
