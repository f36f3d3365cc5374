// An approval granted on one instance whose signature never left it (the key backend failed after the grant
// committed; a SIGKILL or a lost connection between the grant's commit and its result leaves the same state):
// the approval is `approved` and charged, without a result. The agent's retry under its Idempotency-Key, on the
// other instance, must release that charged signature (a replay, charged nothing more), not the stored 202
// forever: polling the approval never ends (no result will be written), and asking again under a new key opens a
// second approval of the same bytes, charged a second time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { recoverTransactionAddress, type TransactionSerialized } from 'viem';
import { createApp } from './http/app.ts';
import { AirlockHolder } from './http/holder.ts';
import { openAirlock } from './runtime.ts';
import { ALICE, TEST_PASSPHRASE, TEST_VAULT, provisionAgent, startHarness, usdcPolicy, usdcTransfer } from './testing/harness.ts';

const U = 1_000_000n;

test('postgres: a grant whose signing failed on one instance is released by the agent\'s retry under its key on the other, charged once', async () => {
  const h = await startHarness({ store: 'postgres' });
  const second = await openAirlock(h.config, TEST_PASSPHRASE, { vault: TEST_VAULT, timers: false });
  const app2 = createApp(new AirlockHolder(second), { bodyLimitBytes: h.config.bodyLimitBytes, sessionRate: { perSecond: 0, burst: 0 } });
  const adminOnSecond = async (method: string, path: string) => {
    const res = await app2.request(path, { method, headers: { authorization: `Bearer ${h.adminToken}`, 'content-type': 'application/json' }, body: '{}' });
    return { status: res.status, body: (await res.json()) as any };
  };
  try {
    // 5 USDC needs a human; the daily budget is 8 USDC, so the same 5 USDC charged twice cannot both fit.
    const { agent, token } = await provisionAgent(h, { ttl: '24h', policy: usdcPolicy({ approvalAbove: (1n * U).toString(), daily: (8n * U).toString() }) });
    const body = usdcTransfer(ALICE, 5n * U, 3);
    const headers = { 'idempotency-key': 'pay-invoice-17' };
    const held = await h.call('POST', '/v1/sign/transaction', { token, body, headers });
    assert.equal(held.status, 202, JSON.stringify(held.body));
    const approvalId = held.body.approvalId as string;

    // The second instance's key backend fails once, after the grant committed (an HSM session lost, a key process
    // restarting): the operator's approve gets an error, the approval is granted and charged, nothing was released.
    const keys = second.deps.keys;
    const signDigest = keys.signDigest.bind(keys);
    let failed = 0;
    keys.signDigest = (async () => {
      failed += 1;
      keys.signDigest = signDigest;
      throw new Error('key backend unavailable (test)');
    }) as typeof keys.signDigest;
    const approve = await adminOnSecond('POST', `/v1/approvals/${approvalId}/approve`);
    assert.equal(failed, 1, 'the grant reached the key backend');
    assert.notEqual(approve.status, 200, JSON.stringify(approve.body));
    const approval = await h.admin('GET', `/v1/approvals/${approvalId}`);
    assert.equal(approval.body.state, 'approved');
    assert.equal(approval.body.result, undefined, 'no signature was stored for the approval');
    const failures = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=sign.failed&limit=10`)).body.entries;
    assert.equal(failures.length, 1);

    // The agent retries under its key on the first instance: the granted signature, as a replay.
    const retried = await h.call('POST', '/v1/sign/transaction', { token, body, headers });
    assert.equal(retried.status, 200, JSON.stringify(retried.body));
    assert.equal(retried.body.replayed, true);
    assert.equal(retried.body.auditSeq, held.body.auditSeq, 'the held request\'s entry');
    assert.equal((await recoverTransactionAddress({ serializedTransaction: retried.body.signedTransaction as TransactionSerialized })).toLowerCase(), agent.address);
    // And again, on the second instance: the same bytes.
    const again = await adminOrAgentOnSecond(app2, token, body, headers);
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(again.body.signedTransaction, retried.body.signedTransaction);
    // As a compromised agent would go on: the same key with another transaction is a conflict, not that grant's
    // signature; the same transaction (same nonce) without the key is a new request, judged against the 5 USDC the
    // grant charged, not released for free.
    const otherUnderKey = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 2n * U), headers });
    assert.equal(otherUnderKey.status, 409, JSON.stringify(otherUnderKey.body));
    assert.equal(otherUnderKey.body.error.code, 'idempotency_conflict');
    const withoutKey = await h.call('POST', '/v1/sign/transaction', { token, body });
    assert.equal(withoutKey.status, 403, JSON.stringify(withoutKey.body));
    assert.equal(withoutKey.body.error.code, 'policy_denied');
    assert.ok(withoutKey.body.error.violations.some((v: any) => v.code === 'budget_exceeded'), JSON.stringify(withoutKey.body));

    // Charged once: 5 of the 8 USDC are used, 3 remain, and nothing more fits.
    const fits = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1n * U, 4) });
    assert.equal(fits.status, 200, JSON.stringify(fits.body));
    const dry = await h.call('POST', '/v1/dry-run', { token, body: { action: 'evm.transaction', payload: usdcTransfer(ALICE, 3n * U, 5) } });
    assert.deepEqual(dry.body.decision.violations.map((v: any) => [v.rule, v.used]), [['agent/usdc-daily', (6n * U).toString()]]);
    // One grant, one sign.request allow entry of the agent (the 1 USDC), the chain verifies on both instances.
    for (const verify of [await h.admin('POST', '/v1/audit/verify'), await adminOnSecond('POST', '/v1/audit/verify')]) assert.equal(verify.body.ok, true, JSON.stringify(verify.body));
  } finally {
    await second.close();
    await h.close();
  }
});

async function adminOrAgentOnSecond(app: ReturnType<typeof createApp>, token: string, body: unknown, headers: Record<string, string>) {
  const res = await app.request('/v1/sign/transaction', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as any };
}
