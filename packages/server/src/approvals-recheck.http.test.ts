// A pending approval is judged again under the policy in force when it is granted, by the admin token or by a
// quorum of approver votes: a policy tightened while the request waited (a lower cap, a deny rule, a smaller
// budget) refuses it (409 approval_policy_denies), the approval is closed as denied by `system` naming the rules,
// its hold is released and nothing is signed. The request's own hold is not counted twice: a request that fits the
// budget in force by itself is granted. A quorum added or raised meanwhile must be met by the grant (the admin token
// never meets one). On SQLite and PostgreSQL.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { recoverTransactionAddress, type Hex } from 'viem';
import { generateApproverKey, signApprovalVote } from '@airlock/sdk/approvals';
import { docPolicy } from './testing/doc-policies.ts';
import { ALICE, USDC_ASSET, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';

const USDC_UNITS = 1_000_000n;
/** A supplier only these tests pay (a fleet-wide deny on it touches no other test of the harness). */
const CAROL = '0x3333333333333333333333333333333333333333';

/** The docs' "Approvals by stakes" policy with CAROL among the suppliers and a daily budget of `dailyUsdc`. */
function stakesPolicy(dailyUsdc: bigint) {
  const doc = structuredClone(docPolicy('docs/policy.md#Approvals by stakes').document) as unknown as { sets: { suppliers: string[] }; rules: { name: string; max?: string }[] };
  doc.sets.suppliers = [...doc.sets.suppliers, CAROL];
  doc.rules.find((r) => r.name === 'daily')!.max = (dailyUsdc * USDC_UNITS).toString();
  return doc;
}

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`approvals judged under the policy in force at grant time (${store})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ store, manualClock: true, approvalTtlMs: 3_600_000 });
    });
    after(async () => h.close());

    const usdc = (n: bigint) => n * USDC_UNITS;
    const setPolicy = async (agentName: string, document: unknown) => {
      const res = await h.admin('PUT', `/v1/policies/${agentName}`, { document });
      assert.equal(res.status, 200, JSON.stringify(res.body));
    };
    const hold = async (token: string, to: string, amount: bigint, nonce: number) => {
      const res = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(to, amount, nonce) });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      return res.body.approvalId as string;
    };
    const sign = (token: string, amount: bigint, nonce: number, to = ALICE) => h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(to, amount, nonce) });
    const auditOf = async (agentName: string, type: string) => (await h.admin('GET', `/v1/audit?agent=${agentName}&type=${type}&limit=1000`)).body.entries as any[];

    /** What a refused grant leaves: the approval denied by `system`, one approval.denied entry naming `rule`, no grant, no signature. */
    const assertClosed = async (agentName: string, id: string, rule: string, code: string) => {
      const approval = (await h.admin('GET', `/v1/approvals/${id}`)).body;
      assert.deepEqual([approval.state, approval.decidedBy, approval.result], ['denied', 'system', undefined]);
      const denied = (await auditOf(agentName, 'approval.denied')).filter((e) => e.data.approvalId === id);
      assert.equal(denied.length, 1);
      assert.equal(denied[0].actor, 'system');
      assert.equal(denied[0].data.reason, 'policy_denies');
      assert.ok(denied[0].data.rules.includes(rule), JSON.stringify(denied[0].data));
      assert.ok(denied[0].data.violations.some((v: any) => v.rule === rule && v.code === code));
      assert.deepEqual(await auditOf(agentName, 'approval.granted'), [], 'nothing granted');
      assert.deepEqual(await auditOf(agentName, 'sign.failed'), [], 'no signing was attempted');
    };

    test('admin approve after the per-request cap was lowered below the held amount: 409 approval_policy_denies, closed, released, nothing signed', async () => {
      const { agent, token } = await provisionAgent(h, { policy: usdcPolicy({ approvalAbove: usdc(10n).toString(), daily: usdc(100n).toString() }) });
      const id = await hold(token, ALICE, usdc(60n), 0);
      // Tightened while it waits: at most 50 USDC per request (and no approval tier: up to 50 signs straight away).
      await setPolicy(agent.name, usdcPolicy({ perRequest: usdc(50n).toString(), daily: usdc(100n).toString() }));

      const res = await h.admin('POST', `/v1/approvals/${id}/approve`);
      assert.equal(res.status, 409, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'approval_policy_denies');
      assert.deepEqual(res.body.error.violations.map((v: any) => [v.rule, v.code]), [['agent/usdc-per-request', 'amount_exceeds_max']]);
      await assertClosed(agent.name, id, 'agent/usdc-per-request', 'amount_exceeds_max');
      const again = await h.admin('POST', `/v1/approvals/${id}/approve`);
      assert.deepEqual([again.status, again.body.error.code], [409, 'approval_not_pending']);

      // The 60 held were released and never charged: the whole 100 is there to spend under the new cap.
      assert.equal((await sign(token, usdc(50n), 1)).status, 200);
      assert.equal((await sign(token, usdc(50n), 2)).status, 200);
      const over = await sign(token, 1n, 3);
      assert.deepEqual([over.status, over.body.error.violations[0].code, over.body.error.violations[0].used], [403, 'budget_exceeded', usdc(100n).toString()]);
    });

    test('a freeze breaker left tripped after the agent was unfrozen by hand: 409 breaker_freezes_agent, the approval stays pending with its hold; granted once reset', async () => {
      const policy = usdcPolicy({ approvalAbove: usdc(10n).toString(), daily: usdc(100n).toString() }) as ReturnType<typeof usdcPolicy> & { detectors?: unknown[] };
      policy.detectors = [{ name: 'burst', type: 'request_burst', window: '1m', baseline: '1h', min_count: 3, action: 'freeze' }];
      const { agent, token } = await provisionAgent(h, { policy });
      h.clock!.advance(1000);
      const id = await hold(token, ALICE, usdc(60n), 0);
      for (const nonce of [1, 2]) assert.equal((h.clock!.advance(1000), await sign(token, usdc(1n), nonce)).status, 200);
      const trip = (h.clock!.advance(1000), await sign(token, usdc(1n), 3));
      assert.deepEqual(trip.body.error.violations.map((v: any) => v.code), ['breaker_tripped']);
      assert.equal((await h.admin('POST', `/v1/agents/${agent.name}/unfreeze`)).status, 200);

      const res = await h.admin('POST', `/v1/approvals/${id}/approve`);
      assert.equal(res.status, 409, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'breaker_freezes_agent');
      const approval = (await h.admin('GET', `/v1/approvals/${id}`)).body;
      assert.deepEqual([approval.state, approval.result], ['pending', undefined]);
      assert.deepEqual(await auditOf(agent.name, 'approval.granted'), [], 'nothing granted');
      const held = await h.airlock.store.transaction((tx) => tx.approvalHolds(id));
      assert.ok(held.some((w) => w.asset === USDC_ASSET && w.amount === usdc(60n)), 'its 60 still held');

      const [breaker] = (await h.admin('GET', '/v1/breakers')).body.breakers.filter((b: { agents: string[] }) => b.agents.includes(agent.id));
      assert.equal((await h.admin('POST', `/v1/breakers/${breaker.id}/reset`, {})).status, 200);
      const granted = await h.admin('POST', `/v1/approvals/${id}/approve`);
      assert.equal(granted.status, 200, JSON.stringify(granted.body));
      assert.equal(granted.body.state, 'approved');
    });

    test('approver quorum vote after a fleet deny rule named the recipient: the vote counts, the approval is closed, nothing signed', async () => {
      const key = generateApproverKey();
      const name = `ops-recheck-${store}`;
      assert.equal((await h.admin('POST', '/v1/approvers', { name, publicKey: key.publicKey, groups: ['ops'] })).status, 201);
      const { agent, token } = await provisionAgent(h, { policy: stakesPolicy(600n) });
      const id = await hold(token, CAROL, usdc(500n), 0);
      const digest = (await h.admin('GET', `/v1/approvals/${id}`)).body.digest as string;
      assert.deepEqual((await h.admin('GET', `/v1/approvals/${id}`)).body.quorum, [{ rule: 'agent/ops-approves', min: 1, groups: ['ops', 'treasury'] }]);
      // The fleet freezes payments to CAROL while the request waits for its vote.
      const fleet = await h.admin('PUT', '/v1/policies/fleet', { document: { version: 1, rules: [{ name: 'no-carol', type: 'deny', match: { to: [CAROL] } }] } });
      assert.equal(fleet.status, 200, JSON.stringify(fleet.body));

      const vote = signApprovalVote({ secretKey: key.secretKey, approvalId: id, digest, decision: 'approve', approver: name, at: new Date(h.clock!.now()).toISOString() });
      const res = await h.call('POST', `/v1/approvals/${id}/votes`, { body: vote });
      assert.equal(res.status, 409, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'approval_policy_denies');
      assert.deepEqual(res.body.error.violations.map((v: any) => [v.rule, v.code]), [['fleet/no-carol', 'denied_by_rule']]);
      await assertClosed(agent.name, id, 'fleet/no-carol', 'denied_by_rule');
      const [denied] = await auditOf(agent.name, 'approval.denied');
      assert.deepEqual([denied.data.approvedBy, denied.data.approvers], [`approvers:${name}`, [name]]);
      const [counted] = await auditOf(agent.name, 'approval.vote');
      assert.deepEqual([counted.data.approver, counted.data.accepted], [name, true]);
      const later = await h.call('POST', `/v1/approvals/${id}/votes`, { body: vote });
      assert.equal(later.status, 409);

      // The 500 held were released: 6 x 100 to ALICE (signed straight away) spend the whole 600, then nothing more.
      for (let i = 1; i <= 6; i++) assert.equal((await sign(token, usdc(100n), i)).status, 200, `payment ${i}`);
      const over = await sign(token, 1n, 7);
      assert.deepEqual([over.status, over.body.error.violations[0].used], [403, usdc(600n).toString()]);
    });

    test('budget: a held request that alone fits the budget in force is granted (its own hold is not counted twice), and charged once', async () => {
      const { agent, token } = await provisionAgent(h, { policy: usdcPolicy({ approvalAbove: usdc(10n).toString(), daily: usdc(100n).toString() }) });
      const id = await hold(token, ALICE, usdc(60n), 0);
      // The daily budget is lowered to exactly the held 60: the request fits it by itself (60 + nothing else).
      await setPolicy(agent.name, usdcPolicy({ approvalAbove: usdc(10n).toString(), daily: usdc(60n).toString() }));

      const res = await h.admin('POST', `/v1/approvals/${id}/approve`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.state, 'approved');
      const signed = (await h.admin('GET', `/v1/approvals/${id}`)).body.result.signedTransaction as Hex;
      assert.equal((await recoverTransactionAddress({ serializedTransaction: signed as never })).toLowerCase(), agent.address);
      // Judged under the policy in force at the grant (version 2 of the agent's), which the grant names.
      const granted = await auditOf(agent.name, 'approval.granted');
      assert.equal(granted.length, 1);
      assert.match(granted[0].data.policyVersion, /(^|,)agent@2:/, JSON.stringify(granted[0].data));
      // Charged 60 once: the budget of 60 is used up.
      const over = await sign(token, 1n, 1);
      assert.deepEqual([over.status, over.body.error.violations[0].code, over.body.error.violations[0].used], [403, 'budget_exceeded', usdc(60n).toString()]);
    });

    test('budget: lowered below the held request, the grant is refused naming the budget rule, and the hold released', async () => {
      const { agent, token } = await provisionAgent(h, { policy: usdcPolicy({ approvalAbove: usdc(10n).toString(), daily: usdc(100n).toString() }) });
      const id = await hold(token, ALICE, usdc(60n), 0);
      await setPolicy(agent.name, usdcPolicy({ daily: usdc(50n).toString() }));

      const res = await h.admin('POST', `/v1/approvals/${id}/approve`);
      assert.equal(res.status, 409, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'approval_policy_denies');
      const [violation] = res.body.error.violations;
      assert.deepEqual([violation.rule, violation.code, violation.asset, violation.limit, violation.used], ['agent/usdc-daily', 'budget_exceeded', USDC_ASSET, usdc(50n).toString(), '0'], JSON.stringify(violation));
      await assertClosed(agent.name, id, 'agent/usdc-daily', 'budget_exceeded');

      // Released: the whole (new) budget of 50 is free.
      assert.equal((await sign(token, usdc(50n), 1)).status, 200);
      const over = await sign(token, 1n, 2);
      assert.deepEqual([over.status, over.body.error.violations[0].used], [403, usdc(50n).toString()]);
    });

    // A quorum added or raised while the request waits: the grant must meet the quorum the policy in force now
    // holds the request for, as a fresh request would be held. A grant that does not is refused (quorum_required),
    // nothing signed, and the approval stays pending (its hold kept) for that quorum: the votes already cast count
    // toward it, and the new quorum's approvers can grant it without the agent asking again.
    const registerApprover = async (groups: string[], suffix: string) => {
      const key = generateApproverKey();
      const name = `${groups[0]}-${suffix}-${store}`;
      assert.equal((await h.admin('POST', '/v1/approvers', { name, publicKey: key.publicKey, groups })).status, 201);
      return { name, key };
    };
    const voteOn = async (who: { name: string; key: { secretKey: string } }, id: string) => {
      const digest = (await h.admin('GET', `/v1/approvals/${id}`)).body.digest as string;
      const vote = signApprovalVote({ secretKey: who.key.secretKey, approvalId: id, digest, decision: 'approve', approver: who.name, at: new Date(h.clock!.now()).toISOString() });
      return h.call('POST', `/v1/approvals/${id}/votes`, { body: vote });
    };
    const assertPendingFor = async (agentName: string, id: string, quorum: unknown) => {
      const approval = (await h.admin('GET', `/v1/approvals/${id}`)).body;
      assert.deepEqual([approval.state, approval.result], ['pending', undefined]);
      assert.deepEqual(approval.quorum, quorum);
      assert.deepEqual((await auditOf(agentName, 'approval.denied')).filter((e) => e.data.approvalId === id), [], 'not closed');
      assert.deepEqual((await auditOf(agentName, 'approval.granted')).filter((e) => e.data.approvalId === id), [], 'nothing granted');
      return approval;
    };

    test('quorum added after the request was held: the admin token can no longer approve it; it stays pending for the quorum, whose votes grant it', async () => {
      const first = await registerApprover(['treasury'], 'added-1');
      const second = await registerApprover(['treasury'], 'added-2');
      const { agent, token } = await provisionAgent(h, { policy: usdcPolicy({ approvalAbove: usdc(10n).toString(), daily: usdc(100n).toString() }) });
      const id = await hold(token, ALICE, usdc(60n), 0);
      assert.equal((await h.admin('GET', `/v1/approvals/${id}`)).body.quorum, undefined, 'held for an operator');
      // Tightened while it waits: above 10 USDC, two treasury approvers must sign.
      const tightened = usdcPolicy({ daily: usdc(100n).toString() });
      (tightened.rules as unknown[]).push({ name: 'treasury', type: 'approval_tier', asset: USDC_ASSET, above: usdc(10n).toString(), quorum: { min: 2, groups: ['treasury'] } });
      await setPolicy(agent.name, tightened);

      const res = await h.admin('POST', `/v1/approvals/${id}/approve`);
      assert.equal(res.status, 409, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'quorum_required');
      assert.match(res.body.error.message, /now requires signed approver votes \(2 of treasury \(agent\/treasury\)\)/);
      assert.deepEqual(res.body.error.violations.map((v: any) => [v.rule, v.code, v.quorum]), [['agent/treasury', 'approval_required', { min: 2, groups: ['treasury'] }]]);
      const required = [{ rule: 'agent/treasury', min: 2, groups: ['treasury'] }];
      await assertPendingFor(agent.name, id, required);
      const [raised] = await auditOf(agent.name, 'approval.quorum_raised');
      assert.deepEqual([raised.actor, raised.data.approvalId, raised.data.quorum, raised.data.rules, raised.data.previous], ['system', id, required, ['agent/treasury'], undefined], JSON.stringify(raised.data));
      assert.match(raised.data.attemptedBy, /admin|operator/);
      // Asked again, the admin token is refused by the quorum the approval now carries.
      const again = await h.admin('POST', `/v1/approvals/${id}/approve`);
      assert.deepEqual([again.status, again.body.error.code], [409, 'quorum_required']);

      // The hold is kept: 60 held + 4 x 10 (under the tier, signed straight away) fill the budget of 100.
      for (let i = 1; i <= 4; i++) assert.equal((await sign(token, usdc(10n), i)).status, 200, `payment ${i}`);
      assert.equal((await sign(token, 1n, 5)).status, 403);

      // One treasury vote is counted and is not enough; the second grants and signs with the agent's key.
      const one = await voteOn(first, id);
      assert.deepEqual([one.status, one.body.state], [200, 'pending'], JSON.stringify(one.body));
      const two = await voteOn(second, id);
      assert.deepEqual([two.status, two.body.state], [200, 'approved'], JSON.stringify(two.body));
      const signed = (await h.admin('GET', `/v1/approvals/${id}`)).body.result.signedTransaction as Hex;
      assert.equal((await recoverTransactionAddress({ serializedTransaction: signed as never })).toLowerCase(), agent.address);
      const [granted] = await auditOf(agent.name, 'approval.granted');
      assert.deepEqual(granted.data.approvers.sort(), [first.name, second.name].sort());
      // Charged 60 once: 60 + 40 = 100, nothing left.
      const over = await sign(token, 1n, 5);
      assert.deepEqual([over.status, over.body.error.violations[0].used], [403, usdc(100n).toString()]);
    });

    test('quorum raised after the request was held: a vote meeting only the old quorum is counted and grants nothing; a vote meeting the new one grants', async () => {
      const ops = await registerApprover(['ops'], 'raised');
      const otherOps = await registerApprover(['ops'], 'raised-2');
      const treasurer = await registerApprover(['treasury'], 'raised');
      const { agent, token } = await provisionAgent(h, { policy: stakesPolicy(2_000n) });
      // The docs' supplier (CAROL is denied fleet-wide by the test above).
      const supplier = '0x1111111111111111111111111111111111111111';
      const first = await hold(token, supplier, usdc(500n), 0);
      const second = await hold(token, supplier, usdc(400n), 1);
      assert.deepEqual((await h.admin('GET', `/v1/approvals/${first}`)).body.quorum, [{ rule: 'agent/ops-approves', min: 1, groups: ['ops', 'treasury'] }]);
      // Raised while they wait: above 100 USDC only treasury approves now.
      const raisedPolicy = stakesPolicy(2_000n) as unknown as { rules: { name: string; quorum?: unknown }[] };
      raisedPolicy.rules.find((r) => r.name === 'ops-approves')!.quorum = { min: 1, groups: ['treasury'] };
      await setPolicy(agent.name, raisedPolicy);

      // An ops vote met the quorum the request was held for, not the one in force: counted, nothing granted, and the
      // approval now waits for treasury.
      const res = await voteOn(ops, first);
      assert.deepEqual([res.status, res.body.state], [200, 'pending'], JSON.stringify(res.body));
      const required = [{ rule: 'agent/ops-approves', min: 1, groups: ['treasury'] }];
      const pending = await assertPendingFor(agent.name, first, required);
      assert.deepEqual(pending.votes.map((v: any) => v.approver), [ops.name]);
      const [raised] = (await auditOf(agent.name, 'approval.quorum_raised')).filter((e) => e.data.approvalId === first);
      assert.deepEqual([raised.data.attemptedBy, raised.data.approvers, raised.data.previous], [`approvers:${ops.name}`, [ops.name], [{ rule: 'agent/ops-approves', min: 1, groups: ['ops', 'treasury'] }]]);
      // Another ops approver is no longer eligible for it.
      const refused = await voteOn(otherOps, first);
      assert.deepEqual([refused.status, refused.body.error.code], [403, 'approver_not_eligible'], JSON.stringify(refused.body));

      // A treasury vote meets the new quorum: granted and signed by the agent's key, on both requests.
      for (const id of [first, second]) {
        const ok = await voteOn(treasurer, id);
        assert.equal(ok.status, 200, JSON.stringify(ok.body));
        assert.equal(ok.body.state, 'approved');
        const signed = (await h.admin('GET', `/v1/approvals/${id}`)).body.result.signedTransaction as Hex;
        assert.equal((await recoverTransactionAddress({ serializedTransaction: signed as never })).toLowerCase(), agent.address);
      }
      // 500 + 400 charged once each: 11 x 100 (signed straight away) fill the 2,000 exactly.
      for (let i = 2; i < 13; i++) assert.equal((await sign(token, usdc(100n), i)).status, 200, `payment ${i}`);
      assert.equal((await sign(token, 1n, 13)).status, 403);
    });
  });
}
