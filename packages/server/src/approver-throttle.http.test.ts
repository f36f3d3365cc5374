// POST /v1/approvals/:id/votes and /view take no bearer token: the Ed25519 signature is the credential. A post whose
// signature does not verify (no such approval, no such approver, a wrong signature) is checked with reads only and
// writes nothing (no expiry pass, no locking transaction), and it is limited as a wrong token is: per address, 30 a
// minute, then 429 rate_limited. A genuine vote always passes, from a throttled address too.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateApproverKey, signApprovalView, signApprovalVote } from '@airlock/sdk/approvals';
import { docPolicy } from './testing/doc-policies.ts';
import { ALICE, provisionAgent, startHarness, usdcTransfer, type Harness } from './testing/harness.ts';

const USDC_UNITS = 1_000_000n;
const TTL_MS = 3_600_000;
const FLOODER = '203.0.113.9';

let h: Harness;
before(async () => {
  h = await startHarness({ manualClock: true, approvalTtlMs: TTL_MS });
});
after(async () => h.close());

const at = () => new Date(h.clock!.now()).toISOString();
const vote = (id: string, body: unknown, remoteAddress = FLOODER) => h.call('POST', `/v1/approvals/${id}/votes`, { body, remoteAddress });
const view = (id: string, body: unknown, remoteAddress = FLOODER) => h.call('POST', `/v1/approvals/${id}/view`, { body, remoteAddress });
/** Store write transactions so far (SQLite's group commit counts them). */
const transactions = () => h.airlock.store.groupCommitStats?.().transactions;

async function setup() {
  const key = generateApproverKey();
  const name = `ops-throttle-${Math.random().toString(36).slice(2, 8)}`;
  assert.equal((await h.admin('POST', '/v1/approvers', { name, publicKey: key.publicKey, groups: ['ops'] })).status, 201);
  const { token } = await provisionAgent(h, { policy: docPolicy('docs/policy.md#Approvals by stakes').document });
  const held = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 500n * USDC_UNITS, 0) });
  assert.equal(held.status, 202, JSON.stringify(held.body));
  const id = held.body.approvalId as string;
  const digest = (await h.admin('GET', `/v1/approvals/${id}`)).body.digest as string;
  return { name, key, id, digest };
}

test('votes and views that fail before their signature verifies write nothing and are throttled like wrong tokens; a genuine vote still passes', async () => {
  const { name, key, id, digest } = await setup();
  const forged = { approver: name, digest, decision: 'approve', at: at(), signature: '00'.repeat(64) };
  const seqBefore = (await h.admin('GET', '/v1/audit/head')).body.seq;
  const txBefore = transactions();

  // 30 failures of each kind from one address share one count: a wrong signature, an unknown approver, no such approval.
  const answers: [number, string][] = [];
  for (let i = 0; i < 10; i++) {
    for (const res of [await vote(id, forged), await view(id, { approver: 'nobody', at: at(), signature: '00'.repeat(64) }), await vote('apr_doesnotexist', forged)]) {
      answers.push([res.status, res.body.error.code]);
    }
  }
  assert.deepEqual(answers.slice(0, 3), [[401, 'vote_signature_invalid'], [401, 'vote_signature_invalid'], [404, 'not_found']]);
  assert.ok(answers.every(([s]) => s !== 429), 'the first 30 are answered');
  const throttled = await vote(id, forged);
  assert.deepEqual([throttled.status, throttled.body.error.code], [429, 'rate_limited']);
  assert.ok(throttled.body.error.details.retryAfterSeconds > 0);
  const throttledView = await view(id, { approver: name, at: at(), signature: '00'.repeat(64) });
  assert.deepEqual([throttledView.status, throttledView.body.error.code], [429, 'rate_limited']);

  // Nothing was written for them: no store transaction, no audit entry.
  if (txBefore !== undefined) assert.equal(transactions(), txBefore, 'unverified posts ran store write transactions');
  assert.equal((await h.admin('GET', '/v1/audit/head')).body.seq, seqBefore);

  // Another address is not throttled by this one.
  const other = await vote(id, forged, '203.0.113.10');
  assert.deepEqual([other.status, other.body.error.code], [401, 'vote_signature_invalid']);

  // The approver's genuine view and vote pass from the throttled address, and the vote grants as before.
  const seen = await view(id, signApprovalView({ secretKey: key.secretKey, approvalId: id, approver: name, at: at() }));
  assert.equal(seen.status, 200, JSON.stringify(seen.body));
  assert.equal(seen.body.digest, digest);
  const genuine = await vote(id, signApprovalVote({ secretKey: key.secretKey, approvalId: id, digest, decision: 'approve', approver: name, at: at() }));
  assert.equal(genuine.status, 200, JSON.stringify(genuine.body));
  assert.equal(genuine.body.state, 'approved');
});

test('an unverified vote runs no expiry pass: an overdue approval is expired by the first genuine one, which then answers approval_not_pending', async () => {
  const { name, key, id, digest } = await setup();
  h.clock!.advance(TTL_MS + 1_000);
  const expiredBefore = (await h.admin('GET', '/v1/audit?type=approval.expired&limit=1000')).body.entries.length;

  const forged = await vote(id, { approver: name, digest, decision: 'approve', at: at(), signature: '11'.repeat(64) }, '203.0.113.20');
  assert.deepEqual([forged.status, forged.body.error.code], [401, 'vote_signature_invalid']);
  const expiredAfterForged = (await h.admin('GET', '/v1/audit?type=approval.expired&limit=1000')).body.entries.length;
  assert.equal(expiredAfterForged, expiredBefore, 'a forged vote wrote the expiry of an overdue approval');

  // A genuine vote on the overdue approval: it is expired first, then the vote is refused on the record as before.
  const late = await vote(id, signApprovalVote({ secretKey: key.secretKey, approvalId: id, digest, decision: 'approve', approver: name, at: at() }), '203.0.113.20');
  assert.deepEqual([late.status, late.body.error.code], [409, 'approval_not_pending']);
  const expired = (await h.admin('GET', '/v1/audit?type=approval.expired&limit=1000')).body.entries as { data: { approvalId: string } }[];
  assert.ok(expired.some((e) => e.data.approvalId === id));

  // A genuine view of it answers as expired too.
  const seen = await view(id, signApprovalView({ secretKey: key.secretKey, approvalId: id, approver: name, at: at() }));
  assert.deepEqual([seen.status, seen.body.error.code], [409, 'approval_not_pending']);
});

