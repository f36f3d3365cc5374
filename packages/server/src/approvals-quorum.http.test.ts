// Approvals that scale with the stakes: approval tiers with quorums of named approvers, each vote an Ed25519
// signature of the approver's own key over the approval id and exact digest, on SQLite and PostgreSQL. Driven as
// approvers (the SDK's signApprovalVote / approverClient), agents (the SDK account waiting on the long poll) and
// attackers (forged, replayed, stale, misdirected votes; the admin token; self-approval) would.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFunctionData, parseAbiItem, parseTransaction, recoverTransactionAddress, type Hex } from 'viem';
import { approverClient, generateApproverKey, signApprovalVote, type VoteDecision } from '@airlock/sdk/approvals';
import { airlockAccount } from '@airlock/sdk';
import { docPolicy } from './testing/doc-policies.ts';
import { ALICE, USDC, USDC_ASSET, provisionAgent, startHarness, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';

const URL_BASE = 'http://127.0.0.1:8420';
const USDC_UNITS = 1_000_000n;
const ROUTER = '0x2626664c2603336e57b271c5c0b26f421741e481';

const ERC20_ABI = [parseAbiItem('function transfer(address to, uint256 amount)'), parseAbiItem('function approve(address spender, uint256 amount)')];
const erc20Data = (fn: 'transfer' | 'approve', to: string, amount: bigint) => encodeFunctionData({ abi: ERC20_ABI, functionName: fn, args: [to as Hex, amount] });
const ACCOUNT_ABI = [parseAbiItem('function executeBatch((address target, uint256 value, bytes data)[] calls)')];
let operationNonce = 0;
/** An EntryPoint v0.8 user operation of `sender` running `calls` through Simple7702Account's executeBatch. */
function batchOperation(sender: string, calls: { to: string; data: Hex }[]) {
  const callData = encodeFunctionData({ abi: ACCOUNT_ABI, functionName: 'executeBatch', args: [calls.map((c) => ({ target: c.to as Hex, value: 0n, data: c.data }))] });
  return {
    chainId: 8453, entryPoint: '0x4337084d9e255ff0702461cf8895ce9e3b5ff108', entryPointVersion: '0.8',
    userOperation: { sender, nonce: String(operationNonce++), callData, callGasLimit: '200000', verificationGasLimit: '200000', preVerificationGas: '50000', maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1000000' },
  };
}

/** The docs example as written, with a daily budget small enough to show what was charged. */
function stakesPolicy(dailyUsdc?: bigint) {
  const doc = structuredClone(docPolicy('docs/policy.md#Approvals by stakes').document) as { rules: { name: string; max?: string }[] };
  if (dailyUsdc !== undefined) doc.rules.find((r) => r.name === 'daily')!.max = (dailyUsdc * USDC_UNITS).toString();
  return doc;
}

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`approvals by quorum (${store})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ store, manualClock: true, approvalTtlMs: 3_600_000 });
    });
    after(async () => h.close());

    let counter = 0;
    /** Registers an approver over the admin API with a key pair made here (the daemon only sees the public key). */
    const addApprover = async (groups: string[], agents?: string[]) => {
      const name = `${groups[0]}-${store}-${++counter}`;
      const key = generateApproverKey();
      const res = await h.admin('POST', '/v1/approvers', { name, publicKey: key.publicKey, groups, ...(agents ? { agents } : {}) });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.deepEqual([res.body.name, res.body.publicKey, res.body.groups, res.body.status], [name, key.publicKey, [...groups].sort(), 'active']);
      return { name, id: res.body.id as string, secretKey: key.secretKey, client: approverClient({ url: URL_BASE, approver: name, secretKey: key.secretKey, fetch: h.fetch }) };
    };
    type TestApprover = Awaited<ReturnType<typeof addApprover>>;
    const at = (offsetMs = 0) => new Date(h.clock!.now() + offsetMs).toISOString();
    const signed = (who: TestApprover, approvalId: string, digest: string, decision: VoteDecision = 'approve', when = at()) =>
      signApprovalVote({ secretKey: who.secretKey, approvalId, digest, decision, approver: who.name, at: when });
    const post = (approvalId: string, body: unknown) => h.call('POST', `/v1/approvals/${approvalId}/votes`, { body });
    const held = async (token: string, usdc: bigint, nonce: number) => {
      const res = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, usdc * USDC_UNITS, nonce) });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      const approval = (await h.admin('GET', `/v1/approvals/${res.body.approvalId}`)).body;
      return { id: res.body.approvalId as string, digest: approval.digest as string };
    };
    const auditOf = async (agentName: string, type: string) => (await h.admin('GET', `/v1/audit?agent=${agentName}&type=${type}&limit=1000`)).body.entries as any[];
    const auditCount = async () => (await h.admin('GET', '/v1/audit/head')).body.seq as number;

    test('1 of ops: one ops approver\'s signed vote grants; the transfer is signed by the agent\'s key and charged once', async () => {
      const alice = await addApprover(['ops']);
      const { agent, token } = await provisionAgent(h, { policy: stakesPolicy(600n) });
      const { id, digest } = await held(token, 500n, 0);

      // The approver reads what they vote on with a signed view (no admin token), then votes.
      const view = await alice.client.view(id);
      assert.equal(view.digest, digest);
      assert.deepEqual(view.quorum, [{ rule: 'agent/ops-approves', min: 1, groups: ['ops', 'treasury'] }]);
      const decided = await alice.client.vote(id, 'approve', { comment: 'invoice 42 checked' });
      assert.equal(decided.state, 'approved');
      assert.deepEqual(decided.approvers, [alice.name]);
      assert.equal(decided.decidedBy, `approvers:${alice.name}`);
      assert.deepEqual(decided.votes?.map((v) => [v.approver, v.decision, v.comment]), [[alice.name, 'approve', 'invoice 42 checked']]);

      const signedTx = decided.result!.signedTransaction as Hex;
      assert.equal((await recoverTransactionAddress({ serializedTransaction: signedTx as never })).toLowerCase(), agent.address);
      assert.equal(parseTransaction(signedTx).to?.toLowerCase(), USDC);

      // Charged exactly 500 once: 100 more fits the 600 budget, 1 unit more does not.
      assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 100n * USDC_UNITS, 1) })).status, 200);
      const over = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1n, 2) });
      assert.equal(over.status, 403);
      assert.deepEqual([over.body.error.violations[0].code, over.body.error.violations[0].used], ['budget_exceeded', (600n * USDC_UNITS).toString()]);

      const [vote] = await auditOf(agent.name, 'approval.vote');
      assert.deepEqual([vote.data.approver, vote.data.decision, vote.data.accepted, vote.data.signature, vote.data.digest], [alice.name, 'approve', true, decided.votes![0]!.signature, digest]);
      const [granted] = await auditOf(agent.name, 'approval.granted');
      assert.deepEqual([granted.data.approvalId, granted.data.approvers, granted.data.digest], [id, [alice.name], digest]);
    });

    test('2 of treasury: one vote or the same approver twice stays pending, an ops approver is refused; the second treasury vote grants', async () => {
      const [t1, t2, ops] = [await addApprover(['treasury']), await addApprover(['treasury', 'risk']), await addApprover(['ops'])];
      const { agent, token } = await provisionAgent(h, { policy: stakesPolicy() });
      const { id, digest } = await held(token, 5_000n, 0);

      const first = signed(t1, id, digest);
      const one = await post(id, first);
      assert.equal(one.status, 200, JSON.stringify(one.body));
      assert.equal(one.body.state, 'pending');

      const replay = await post(id, first);
      assert.deepEqual([replay.status, replay.body.error.code], [409, 'vote_replayed']);
      h.clock!.advance(1_000);
      const again = await post(id, signed(t1, id, digest));
      assert.deepEqual([again.status, again.body.error.code], [409, 'approver_already_voted']);
      const wrongGroup = await post(id, signed(ops, id, digest));
      assert.deepEqual([wrongGroup.status, wrongGroup.body.error.code], [403, 'approver_not_eligible']);
      const viewByOps = await ops.client.view(id).catch((e) => e);
      assert.equal(viewByOps.code, 'approver_not_eligible');

      const still = (await h.admin('GET', `/v1/approvals/${id}`)).body;
      assert.equal(still.state, 'pending');
      assert.deepEqual(still.votes.map((v: any) => v.approver), [t1.name]);

      const two = await post(id, signed(t2, id, digest));
      assert.equal(two.status, 200, JSON.stringify(two.body));
      assert.equal(two.body.state, 'approved');
      assert.deepEqual(two.body.approvers, [t1.name, t2.name]);
      assert.ok(two.body.result.signedTransaction);
      // Every authenticated refusal is on the record with its code; the accepted votes too.
      const votes = (await auditOf(agent.name, 'approval.vote')).map((e) => [e.data.approver, e.data.accepted, e.data.code]);
      assert.deepEqual(votes, [[t1.name, true, undefined], [t1.name, false, 'vote_replayed'], [t1.name, false, 'approver_already_voted'], [ops.name, false, 'approver_not_eligible'], [t2.name, true, undefined]]);
      const late = await post(id, signed(ops, id, digest));
      assert.deepEqual([late.status, late.body.error.code], [409, 'approval_not_pending']);
    });

    test('the two last votes landing at once grant once: one approval.granted, one signature, charged once', async () => {
      const [t1, t2] = [await addApprover(['treasury']), await addApprover(['treasury'])];
      const { agent, token } = await provisionAgent(h, { policy: stakesPolicy(5_000n) });
      const { id, digest } = await held(token, 5_000n, 0);
      const answers = await Promise.all([post(id, signed(t1, id, digest)), post(id, signed(t2, id, digest))]);
      assert.deepEqual(answers.map((a) => a.status), [200, 200], JSON.stringify(answers.map((a) => a.body)));
      const final = (await h.admin('GET', `/v1/approvals/${id}`)).body;
      assert.equal(final.state, 'approved');
      assert.deepEqual([...final.approvers].sort(), [t1.name, t2.name].sort());
      assert.ok(final.result.signedTransaction);
      assert.equal((await auditOf(agent.name, 'approval.granted')).length, 1);
      const over = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1n, 1) });
      assert.deepEqual([over.status, over.body.error.violations[0].used], [403, (5_000n * USDC_UNITS).toString()], 'charged 5,000 once');
    });

    test('forged, misdirected, stale and unknown votes are refused with their codes and change nothing; the admin token cannot approve', async () => {
      const [t1, t2] = [await addApprover(['treasury']), await addApprover(['treasury'])];
      const { agent, token } = await provisionAgent(h, { policy: stakesPolicy() });
      const { id, digest } = await held(token, 2_000n, 0);
      const other = await held(token, 3_000n, 1);
      const before = await auditCount();

      // Signed with a key that is not t1's: the signature is the credential.
      const forged = signApprovalVote({ secretKey: generateApproverKey().secretKey, approvalId: id, digest, decision: 'approve', approver: t1.name, at: at() });
      const f = await post(id, forged);
      assert.deepEqual([f.status, f.body.error.code], [401, 'vote_signature_invalid']);
      // A genuine vote of t1 for the other approval cannot be moved to this one.
      const moved = await post(id, signed(t1, other.id, other.digest));
      assert.deepEqual([moved.status, moved.body.error.code], [401, 'vote_signature_invalid']);
      const unknown = await post(id, { ...signed(t1, id, digest), approver: 'nobody' });
      // Answered as a wrong signature, word for word: approver names cannot be probed by an agent that knows its approval's id.
      assert.deepEqual([unknown.status, unknown.body.error.code, unknown.body.error.message], [401, 'vote_signature_invalid', f.body.error.message]);
      assert.equal(await auditCount(), before, 'unauthenticated votes leave no trace');

      // Authenticated but refused: audited, not counted.
      const otherDigest = await post(id, signed(t1, id, other.digest));
      assert.deepEqual([otherDigest.status, otherDigest.body.error.code], [409, 'vote_digest_mismatch']);
      const stale = await post(id, signed(t1, id, digest, 'approve', at(-6 * 60_000)));
      assert.deepEqual([stale.status, stale.body.error.code], [400, 'vote_stale']);
      const future = await post(id, signed(t2, id, digest, 'approve', at(6 * 60_000)));
      assert.deepEqual([future.status, future.body.error.code], [400, 'vote_stale']);
      const bypass = await h.admin('POST', `/v1/approvals/${id}/approve`);
      assert.deepEqual([bypass.status, bypass.body.error.code], [409, 'quorum_required']);

      const after = (await h.admin('GET', `/v1/approvals/${id}`)).body;
      assert.deepEqual([after.state, after.votes], ['pending', []]);
      assert.deepEqual((await auditOf(agent.name, 'approval.vote')).map((e) => e.data.code), ['vote_digest_mismatch', 'vote_stale', 'vote_stale']);
      assert.deepEqual(await auditOf(agent.name, 'approval.granted'), []);
      // The admin token can still stop it.
      assert.equal((await h.admin('POST', `/v1/approvals/${id}/deny`, { reason: 'not ours' })).body.state, 'denied');
    });

    test('self-approval: an approver linked to the requesting agent cannot vote on its requests; a disabled approver\'s key stops working', async () => {
      const { agent, token } = await provisionAgent(h, { policy: stakesPolicy() });
      const own = await addApprover(['treasury', 'ops'], [agent.name]);
      const other = await addApprover(['ops']);
      const { id, digest } = await held(token, 500n, 0);
      const self = await post(id, signed(own, id, digest));
      assert.deepEqual([self.status, self.body.error.code], [403, 'self_approval']);

      assert.equal((await h.admin('POST', `/v1/approvers/${other.name}/disable`)).body.status, 'disabled');
      const disabled = await post(id, signed(other, id, digest));
      assert.deepEqual([disabled.status, disabled.body.error.code], [403, 'approver_disabled']);
      assert.deepEqual((await auditOf(agent.name, 'approval.vote')).map((e) => [e.data.approver, e.data.code]), [[own.name, 'self_approval'], [other.name, 'approver_disabled']]);
      assert.equal((await h.admin('GET', `/v1/approvals/${id}`)).body.state, 'pending');
      const listed = (await h.admin('GET', '/v1/approvers')).body.approvers.find((a: any) => a.name === own.name);
      assert.deepEqual(listed.agents, [agent.id]);
    });

    test('one reject denies and releases the hold, naming the approver', async () => {
      const t1 = await addApprover(['treasury']);
      const { token } = await provisionAgent(h, { policy: stakesPolicy(5_000n) });
      const { id, digest } = await held(token, 5_000n, 0);
      const rejected = await post(id, { ...signed(t1, id, digest, 'reject') });
      assert.equal(rejected.status, 200, JSON.stringify(rejected.body));
      assert.deepEqual([rejected.body.state, rejected.body.approvers], ['denied', [t1.name]]);
      // The 5,000 held are free again: 100 at once fits the 5,000 budget.
      assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 100n * USDC_UNITS, 1) })).status, 200);
    });

    test('expiry with votes short of the quorum: expired, the hold released, later votes refused', async () => {
      const [t1, t2] = [await addApprover(['treasury']), await addApprover(['treasury'])];
      const { token } = await provisionAgent(h, { policy: stakesPolicy(5_000n), ttl: '24h' });
      const { id, digest } = await held(token, 5_000n, 0);
      assert.equal((await post(id, signed(t1, id, digest))).body.state, 'pending');
      assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 100n * USDC_UNITS, 1) })).status, 403, 'held: the budget is used');
      h.clock!.advance(3_600_001);
      const expired = (await h.call('GET', `/v1/approvals/${id}`, { token })).body;
      assert.deepEqual([expired.state, expired.voteCounts], ['expired', { approve: 1, reject: 0 }]);
      assert.deepEqual((await h.admin('GET', `/v1/approvals/${id}`)).body.votes.map((v: any) => v.approver), [t1.name]);
      const late = await post(id, signed(t2, id, digest));
      assert.deepEqual([late.status, late.body.error.code], [409, 'approval_not_pending']);
      assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 100n * USDC_UNITS, 2) })).status, 200, 'the hold was released');
    });

    test('the requester waits on the long poll: the SDK account returns the signature when the second vote lands, the votes counted but not named', async () => {
      const [t1, t2] = [await addApprover(['treasury']), await addApprover(['treasury'])];
      const { agent, token } = await provisionAgent(h, { policy: stakesPolicy() });
      const account = await airlockAccount({ url: URL_BASE, token, fetch: h.fetch, approvalWaitMs: 30_000 });
      const tx = usdcTransfer(ALICE, 3_000n * USDC_UNITS, 0).transaction;
      const signing = account.signTransaction({ chainId: 8453, type: 'eip1559', to: tx.to as Hex, data: tx.data as Hex, nonce: 0, gas: 60_000n, maxFeePerGas: 1_000_000_000n, maxPriorityFeePerGas: 1_000_000n, value: 0n });
      // The pending approval appears; a plain long poll by the agent waits on it too.
      let pending: any;
      for (let i = 0; i < 100 && !pending; i++) {
        pending = (await h.call('GET', '/v1/approvals?state=pending', { token })).body.approvals[0];
        if (!pending) await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(pending, 'the request is held');
      const started = Date.now();
      const poll = h.call('GET', `/v1/approvals/${pending.id}?wait=30`, { token });
      await post(pending.id, signed(t1, pending.id, pending.digest));
      await new Promise((r) => setTimeout(r, 200));
      await post(pending.id, signed(t2, pending.id, pending.digest));
      const answered = await poll;
      assert.ok(Date.now() - started < 10_000, 'answered when the vote landed, not at the timeout');
      // The agent learns how the vote went, not who voted (approvals-agent-view.http.test.ts); the operator does.
      assert.deepEqual([answered.body.state, answered.body.decidedBy, answered.body.voteCounts, answered.body.approvers, answered.body.votes], ['approved', 'approvers', { approve: 2, reject: 0 }, undefined, undefined]);
      const operator = (await h.admin('GET', `/v1/approvals/${pending.id}`)).body;
      assert.deepEqual([operator.approvers, operator.votes.map((v: any) => [v.approver, v.decision])], [[t1.name, t2.name], [[t1.name, 'approve'], [t2.name, 'approve']]]);
      const signedTx = await signing;
      assert.equal(signedTx, answered.body.result.signedTransaction);
      assert.equal((await recoverTransactionAddress({ serializedTransaction: signedTx as never })).toLowerCase(), agent.address);
    });

    test('the agent cannot steer the approvers: a 1-unit approval to the router in the batch adds "3 of devops", it does not drop "2 of treasury"', async () => {
      // Two tiers of one policy: above 1,000 USDC 2 of treasury; anything touching the router 3 of devops (the larger
      // min, other groups). A user operation paying 5,000 USDC and approving 1 unit to the router matches both.
      const policy = { version: 1, rules: [
        { name: 'pay', type: 'allow', match: { actions: ['evm.user_operation'], chains: ['eip155:8453'], kinds: ['erc20.transfer', 'erc20.approve'], assets: [USDC_ASSET], to: [ALICE, ROUTER] } },
        { name: 'gas', type: 'user_operations', max_prefund: '5000000000000000' },
        { name: 'big', type: 'approval_tier', asset: USDC_ASSET, above: (1_000n * USDC_UNITS).toString(), quorum: { min: 2, groups: ['treasury'] } },
        { name: 'router', type: 'approval_tier', match: { to: [ROUTER] }, quorum: { min: 3, groups: ['devops'] } },
      ] };
      const { agent, token } = await provisionAgent(h, { policy, actions: ['evm.user_operation'] });
      const devops = [await addApprover(['devops']), await addApprover(['devops']), await addApprover(['devops'])];
      const treasury = [await addApprover(['treasury']), await addApprover(['treasury'])];
      const res = await h.call('POST', '/v1/sign/user-operation', { token, body: batchOperation(agent.address, [
        { to: USDC, data: erc20Data('transfer', ALICE, 5_000n * USDC_UNITS) },
        { to: USDC, data: erc20Data('approve', ROUTER, 1n) },
      ]) });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      const approval = (await h.admin('GET', `/v1/approvals/${res.body.approvalId}`)).body;
      assert.deepEqual(approval.quorum, [{ rule: 'agent/big', min: 2, groups: ['treasury'] }, { rule: 'agent/router', min: 3, groups: ['devops'] }]);
      // Three devops votes (the router tier met) do not grant: treasury has not approved the 5,000.
      for (const d of devops) {
        const voted = await post(approval.id, signed(d, approval.id, approval.digest));
        assert.equal(voted.status, 200, JSON.stringify(voted.body));
        assert.equal(voted.body.state, 'pending');
      }
      assert.equal((await post(approval.id, signed(treasury[0]!, approval.id, approval.digest))).body.state, 'pending');
      const granted = await post(approval.id, signed(treasury[1]!, approval.id, approval.digest));
      assert.equal(granted.status, 200, JSON.stringify(granted.body));
      assert.equal(granted.body.state, 'approved');
      assert.deepEqual([...granted.body.approvers].sort(), [...devops, ...treasury].map((a) => a.name).sort());
    });

    test('a long poll on a pending approval answers pending when `wait` runs out', async () => {
      const { token } = await provisionAgent(h, { policy: stakesPolicy() });
      const { id } = await held(token, 500n, 0);
      const started = Date.now();
      const res = await h.call('GET', `/v1/approvals/${id}?wait=1`, { token });
      assert.equal(res.body.state, 'pending');
      assert.ok(Date.now() - started >= 900);
      assert.equal((await h.call('GET', `/v1/approvals/${id}?wait=61`, { token })).status, 400);
    });
  });
}
