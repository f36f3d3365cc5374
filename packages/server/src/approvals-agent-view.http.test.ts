// What an agent's session learns about the people who approve its requests: how many voted each way, never who.
// approver-service.ts answers an unknown approver name as a bad signature so that an agent cannot learn whom to
// impersonate or phish; the agent's own reads of its approval (GET /v1/approvals/{id}, GET /v1/approvals) and the
// receipts of the operator-side audit entries about it (approval.vote, approval.granted) handed it the names, ids,
// comments and signatures (found by review). The admin token still reads everything.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { approverClient, generateApproverKey } from '@airlock/sdk/approvals';
import { docPolicy } from './testing/doc-policies.ts';
import { ALICE, provisionAgent, startHarness, usdcTransfer, type Harness } from './testing/harness.ts';

const USDC_UNITS = 1_000_000n;
const COMMENT = 'ok by me; call me on +1-555-0100 if urgent';

describe('an agent reads its approvals without the approvers', () => {
  let h: Harness;
  let serial = 0;
  before(async () => {
    h = await startHarness({ manualClock: true, approvalTtlMs: 3_600_000 });
  });
  after(async () => h.close());

  const addApprover = async (groups: string[]) => {
    const name = `tre-${++serial}`;
    const key = generateApproverKey();
    const res = await h.admin('POST', '/v1/approvers', { name, publicKey: key.publicKey, groups });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return { name, id: res.body.id as string, client: approverClient({ url: 'http://127.0.0.1:8420', approver: name, secretKey: key.secretKey, fetch: h.fetch }) };
  };
  /** A 2,000 USDC payment: two approvers of treasury must vote for it (docs/policy.md "Approvals by stakes"). */
  const held = async (token: string, nonce: number) => {
    const res = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 2_000n * USDC_UNITS, nonce) });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return res.body.approvalId as string;
  };
  const policy = () => docPolicy('docs/policy.md#Approvals by stakes').document;

  test('the agent sees the state, the quorum and how many voted each way, but no approver name, id, comment or signature', async () => {
    const { token } = await provisionAgent(h, { policy: policy() });
    const [carol, dave] = [await addApprover(['treasury']), await addApprover(['treasury'])];
    const id = await held(token, 0);
    const secrets = (votes: { signature: string }[]) => [carol.name, dave.name, carol.id, dave.id, COMMENT, ...votes.map((v) => v.signature)];

    const voted = await carol.client.vote(id, 'approve', { comment: COMMENT });
    const read = (await h.call('GET', `/v1/approvals/${id}`, { token })).body;
    const listed = (await h.call('GET', '/v1/approvals?state=pending', { token })).body.approvals.find((a: any) => a.id === id);
    for (const seen of [read, listed]) {
      assert.deepEqual([seen.state, seen.voteCounts, seen.quorum, seen.votes, seen.approvers], ['pending', { approve: 1, reject: 0 }, [{ rule: 'agent/treasury-approves', min: 2, groups: ['treasury'] }], undefined, undefined]);
      for (const s of secrets(voted.votes!)) assert.ok(!JSON.stringify(seen).includes(s), `the agent's read holds ${s}`);
    }

    await dave.client.vote(id, 'approve');
    const granted = (await h.call('GET', `/v1/approvals/${id}`, { token })).body;
    assert.deepEqual([granted.state, granted.decidedBy, granted.voteCounts, granted.votes, granted.approvers], ['approved', 'approvers', { approve: 2, reject: 0 }, undefined, undefined]);
    assert.ok(granted.result.signedTransaction, 'the signature is still collected');
    assert.ok(granted.decidedAt);
    const operator = (await h.admin('GET', `/v1/approvals/${id}`)).body;
    for (const s of secrets(operator.votes)) assert.ok(!JSON.stringify(granted).includes(s), `the agent's read holds ${s}`);

    // The admin token (and the console, which reads with it) sees who voted, as before.
    assert.deepEqual([operator.decidedBy, operator.approvers, operator.voteCounts], [`approvers:${carol.name},${dave.name}`, [carol.name, dave.name], { approve: 2, reject: 0 }]);
    assert.deepEqual(operator.votes.map((v: any) => [v.approver, v.decision, v.comment]), [[carol.name, 'approve', COMMENT], [dave.name, 'approve', undefined]]);
  });

  test('a rejection reaches the agent as denied by approvers, one vote against, with no name', async () => {
    const { token } = await provisionAgent(h, { policy: policy() });
    const erin = await addApprover(['treasury']);
    const id = await held(token, 0);
    await erin.client.vote(id, 'reject', { comment: COMMENT });
    const denied = (await h.call('GET', `/v1/approvals/${id}?wait=1`, { token })).body;
    assert.deepEqual([denied.state, denied.decidedBy, denied.voteCounts, denied.votes, denied.approvers], ['denied', 'approvers', { approve: 0, reject: 1 }, undefined, undefined]);
    assert.ok(!JSON.stringify(denied).includes(erin.name) && !JSON.stringify(denied).includes(COMMENT));
    assert.equal((await h.admin('GET', `/v1/approvals/${id}`)).body.decidedBy, `approvers:${erin.name}`);
  });

  test("the agent gets receipts of its own requests only: the vote and grant entries about its approval answer as another agent's entry does", async () => {
    const { agent, token } = await provisionAgent(h, { policy: policy() });
    const other = await provisionAgent(h, { policy: policy() });
    const [t1, t2] = [await addApprover(['treasury']), await addApprover(['treasury'])];
    const foreignSeq = (await h.call('POST', '/v1/sign/transaction', { token: other.token, body: usdcTransfer(ALICE, 1n, 0) })).body.auditSeq as number;
    const id = await held(token, 0);
    await t1.client.vote(id, 'approve', { comment: COMMENT });
    await t2.client.vote(id, 'approve');
    h.clock!.advance(10_000);
    await h.airlock.audit.checkpoint();

    const entries = (await h.admin('GET', `/v1/audit?agent=${agent.name}&limit=1000`)).body.entries as any[];
    const operatorSide = entries.filter((e) => e.actor !== 'agent');
    // Besides the operator's policy.set and session.issued for this agent: the votes and the grant, which name the approvers.
    assert.deepEqual(operatorSide.map((e) => e.type).filter((t) => t.startsWith('approval.')), ['approval.vote', 'approval.vote', 'approval.granted']);
    assert.equal(operatorSide.find((e) => e.type === 'approval.vote').data.comment, COMMENT);
    const foreign = await h.call('GET', `/v1/audit/receipts/${foreignSeq}`, { token });
    assert.deepEqual([foreign.status, foreign.body.error.code], [404, 'not_found']);
    for (const e of operatorSide) {
      const refused = await h.call('GET', `/v1/audit/receipts/${e.seq}`, { token });
      assert.deepEqual([refused.status, refused.body], [foreign.status, foreign.body], `${e.type} at ${e.seq}`);
      assert.equal((await h.admin('GET', `/v1/audit/receipts/${e.seq}`)).status, 200, 'the operator gets every receipt');
    }

    // The receipt an approved signature carries is the agent's own request: it still verifies.
    const { result } = (await h.call('GET', `/v1/approvals/${id}`, { token })).body;
    const own = await h.call('GET', `/v1/audit/receipts/${result.receipt.auditSeq}`, { token });
    assert.equal(own.status, 200, JSON.stringify(own.body));
    assert.deepEqual([own.body.entry.type, own.body.entry.actor, own.body.entry.decision], ['sign.request', 'agent', 'require_approval']);
  });
});
