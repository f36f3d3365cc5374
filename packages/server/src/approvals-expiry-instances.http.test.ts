// Two instances on one PostgreSQL both expire overdue approvals: on a timer, and before every approve, deny, vote
// and approver view. Each pass must take only the approvals no other pass holds (found by review: both passes
// listed the same rows unlocked, the slower one met `approval_not_pending` in decideApproval, its whole pass rolled
// back and the operator's approve or deny that ran it was refused with that code, about another approval).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createApp } from './http/app.ts';
import { AirlockHolder } from './http/holder.ts';
import { openAirlock } from './runtime.ts';
import { ALICE, TEST_PASSPHRASE, TEST_VAULT, provisionAgent, startHarness, usdcPolicy, usdcTransfer } from './testing/harness.ts';

const USDC_UNITS = 1_000_000n;
const TTL_MS = 3_600_000;
const OVERDUE_PER_ROUND = 30;
const ROUNDS = 5;

test('postgres: an approve on one instance and a deny on another, while both expire the same overdue approvals, both succeed and each overdue approval expires once', async () => {
  const h = await startHarness({ store: 'postgres', manualClock: true, approvalTtlMs: TTL_MS });
  const second = await openAirlock(h.config, TEST_PASSPHRASE, { vault: TEST_VAULT, timers: false, clock: h.clock! });
  const secondApp = createApp(new AirlockHolder(second), { bodyLimitBytes: h.config.bodyLimitBytes });
  const adminOnSecond = async (method: string, path: string) => {
    const res = await secondApp.request(path, { method, headers: { authorization: `Bearer ${h.adminToken}`, 'content-type': 'application/json' }, body: '{}' });
    return { status: res.status, body: (await res.json()) as any };
  };
  try {
    const { token } = await provisionAgent(h, { ttl: '24h', policy: usdcPolicy({ approvalAbove: (1n * USDC_UNITS).toString(), perRequest: (1_000_000n * USDC_UNITS).toString(), daily: (1_000_000_000n * USDC_UNITS).toString() }) });
    let nonce = 0;
    const hold = async () => {
      const res = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 5n * USDC_UNITS, nonce++) });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      return res.body.approvalId as string;
    };

    const overdue: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const thisRound: string[] = [];
      for (let i = 0; i < OVERDUE_PER_ROUND; i++) thisRound.push(await hold());
      h.clock!.advance(TTL_MS / 2);
      const x = await hold();
      const y = await hold();
      h.clock!.advance(TTL_MS / 2 + 1);
      overdue.push(...thisRound);

      // The operator approves X on the second instance while denying Y on the first: each runs an expiry pass first.
      const [approved, denied] = await Promise.all([adminOnSecond('POST', `/v1/approvals/${x}/approve`), h.admin('POST', `/v1/approvals/${y}/deny`, {})]);
      assert.equal(approved.status, 200, `round ${round}: approving X on the second instance: ${JSON.stringify(approved.body)}`);
      assert.equal(approved.body.state, 'approved');
      assert.equal(denied.status, 200, `round ${round}: denying Y on the first instance: ${JSON.stringify(denied.body)}`);
      assert.equal(denied.body.state, 'denied');
      for (const id of thisRound) assert.equal((await h.admin('GET', `/v1/approvals/${id}`)).body.state, 'expired', `round ${round}: ${id}`);
    }

    // Each overdue approval expired by exactly one pass (one entry each), and nothing else expired.
    const entries = (await h.admin('GET', `/v1/audit?type=approval.expired&limit=500`)).body.entries as { data: { approvalId: string } }[];
    const expired = entries.map((e) => e.data.approvalId).sort();
    assert.deepEqual(expired, [...overdue].sort());
  } finally {
    await second.close();
    await h.close();
  }
});
