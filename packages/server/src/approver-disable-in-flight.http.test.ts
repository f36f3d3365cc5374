// Disabling an approver is how a leaked approver key is revoked. On PostgreSQL a vote's transaction reads the
// approver unlocked, so the disable must wait for every vote transaction in flight (it runs exclusive, under the
// signing lock): found by review, a vote that read the approver active just before the disable committed still
// granted after the operator's disable call had returned, its approval.granted recorded after approver.disabled.
// Two instances: the attacker's vote is processed on the second while the operator disables on the first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { generateApproverKey, signApprovalVote } from '@airlock/sdk/approvals';
import type { StoreTx } from '@airlock/core';
import { createApp } from './http/app.ts';
import { AirlockHolder } from './http/holder.ts';
import { docPolicy } from './testing/doc-policies.ts';
import { openAirlock } from './runtime.ts';
import { ALICE, TEST_PASSPHRASE, TEST_VAULT, provisionAgent, startHarness, usdcTransfer } from './testing/harness.ts';

const USDC_UNITS = 1_000_000n;

test('postgres: disabling an approver on one instance waits for that approver\'s vote in flight on another; no grant on that key is recorded after the disable', async () => {
  const h = await startHarness({ store: 'postgres', manualClock: true, approvalTtlMs: 3_600_000 });
  const second = await openAirlock(h.config, TEST_PASSPHRASE, { vault: TEST_VAULT, timers: false, clock: h.clock! });
  const secondApp = createApp(new AirlockHolder(second), { bodyLimitBytes: h.config.bodyLimitBytes });
  const voteOnSecond = async (id: string, vote: unknown) => {
    const res = await secondApp.request(`/v1/approvals/${id}/votes`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(vote) });
    return { status: res.status, body: (await res.json()) as any };
  };
  try {
    const key = generateApproverKey();
    const name = 'ops-leaked';
    assert.equal((await h.admin('POST', '/v1/approvers', { name, publicKey: key.publicKey, groups: ['ops'] })).status, 201);
    // The docs' "approvals by stakes" policy: 500 USDC needs 1 vote of ops/treasury.
    const { token } = await provisionAgent(h, { policy: docPolicy('docs/policy.md#Approvals by stakes').document });
    const hold = async (nonce: number) => {
      const held = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 500n * USDC_UNITS, nonce) });
      assert.equal(held.status, 202, JSON.stringify(held.body));
      const id = held.body.approvalId as string;
      return { id, digest: (await h.admin('GET', `/v1/approvals/${id}`)).body.digest as string };
    };
    const signedVote = (id: string, digest: string) => signApprovalVote({ secretKey: key.secretKey, approvalId: id, digest, decision: 'approve', approver: name, at: new Date(h.clock!.now()).toISOString() });
    const first = await hold(0);

    // Hold the second instance's vote transaction open after its last read of the approver (countedVotes, just
    // before the grant): the window in which the operator's disable lands.
    const store = second.store;
    const original = store.transaction.bind(store);
    let reads = 0;
    let reachedGate!: () => void;
    const atGate = new Promise<void>((r) => (reachedGate = r));
    let openGate!: () => void;
    const gate = new Promise<void>((r) => (openGate = r));
    store.transaction = ((fn: (tx: StoreTx) => Promise<unknown>, options?: object) =>
      original((tx) => fn(new Proxy(tx, {
        get(t, p, r) {
          const v = Reflect.get(t, p, r);
          if (p !== 'getApprover') return typeof v === 'function' ? v.bind(t) : v;
          return async (idOrName: string) => {
            const read = await t.getApprover(idOrName);
            // 1: castVote's own read, 2: refusal's countedVotes, 3: castVote's countedVotes (the last one).
            if (++reads === 3) {
              reachedGate();
              await gate;
            }
            return read;
          };
        },
      })), options as never)) as typeof store.transaction;

    const voting = voteOnSecond(first.id, signedVote(first.id, first.digest));
    await atGate;
    const disabling = h.admin('POST', `/v1/approvers/${name}/disable`);
    const beforeVoteCommitted = await Promise.race([disabling.then(() => 'returned' as const), delay(500).then(() => 'waiting' as const)]);
    openGate();
    const [voted, disabled] = await Promise.all([voting, disabling]);
    store.transaction = original;

    // The disable answered only once the vote in flight had committed: that vote granted before the revocation.
    assert.equal(beforeVoteCommitted, 'waiting', 'the disable returned while a vote that read the approver active was still open');
    assert.equal(disabled.status, 200, JSON.stringify(disabled.body));
    assert.equal(disabled.body.status, 'disabled');
    assert.equal(voted.status, 200, JSON.stringify(voted.body));
    assert.equal(voted.body.state, 'approved');
    const [disabledEntry] = (await h.admin('GET', '/v1/audit?type=approver.disabled&limit=10')).body.entries as { seq: number }[];
    const granted = (await h.admin('GET', '/v1/audit?type=approval.granted&limit=10')).body.entries as { seq: number; data: { approvers?: string[] } }[];
    assert.equal(granted.length, 1);
    assert.deepEqual(granted[0]!.data.approvers, [name]);
    assert.ok(granted[0]!.seq < disabledEntry!.seq, `approval.granted (seq ${granted[0]!.seq}) is recorded before approver.disabled (seq ${disabledEntry!.seq})`);

    // Once the disable has returned, the key grants nothing, on either instance.
    const next = await hold(1);
    const refused = await voteOnSecond(next.id, signedVote(next.id, next.digest));
    assert.equal(refused.body.error?.code, 'approver_disabled', JSON.stringify(refused.body));
    assert.equal((await h.admin('GET', `/v1/approvals/${next.id}`)).body.state, 'pending');
  } finally {
    await second.close();
    await h.close();
  }
});
