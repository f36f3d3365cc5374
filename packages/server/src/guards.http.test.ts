// Guards that held but that no test defended (a mutation check removed each of them and the suite
// stayed green): the call target as a counterparty, the in-transaction re-check of credentials, the
// expiry instant of a session, and the digest re-check when an approved request is released.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { parseTransaction, type Hex } from 'viem';
import { ALICE, BASE, MALLORY, beforeNextTransaction, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';

interface RawStore {
  rawExec(sql: string): Promise<void>;
}

/** A contract nobody listed: the agent is talked into calling it. */
const STRANGER_CONTRACT = '0x3333333333333333333333333333333333333333';

/** A zero-value call: no spend, no approval, only a target. */
function zeroValueCall(to: string, nonce = 0) {
  return { chainId: 8453, transaction: { type: 'eip1559', to, value: '0', data: `0xdeadbeef${'00'.repeat(32)}`, nonce, gas: '60000', maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1000000' } };
}

async function auditOf(h: Harness, agentName: string): Promise<any[]> {
  return (await h.admin('GET', `/v1/audit?agent=${agentName}&limit=1000`)).body.entries;
}

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`guards that must hold (${store})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ store, manualClock: true, approvalTtlMs: 3_600_000 });
    });
    after(async () => h.close());

    test('a zero-value call to a contract outside the destinations allowlist is denied: the call target is a counterparty', async () => {
      // A loose grant (any call to the stranger) under a destinations allowlist that does not name it:
      // the allowlist must still stop the call, although it moves no value.
      const policy = {
        version: 1,
        rules: [
          { name: 'calls', type: 'allow', match: { chains: [BASE], kinds: ['contract.call'], contracts: [STRANGER_CONTRACT] } },
          { name: 'partners-only', type: 'destinations', allow: [ALICE] },
        ],
      };
      const { agent, token } = await provisionAgent(h, { policy });
      const res = await h.call('POST', '/v1/sign/transaction', { token, body: zeroValueCall(STRANGER_CONTRACT) });
      assert.equal(res.status, 403, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'policy_denied');
      assert.deepEqual(res.body.error.violations.map((v: any) => [v.rule, v.code]), [['agent/partners-only', 'destination_not_allowed']]);
      assert.equal(res.body.signedTransaction, undefined);
      // The same call to a listed counterparty passes the allowlist (the rule is not simply denying everything).
      await h.admin('PUT', `/v1/policies/${agent.name}`, { document: { ...policy, rules: [policy.rules[0], { name: 'partners-only', type: 'destinations', allow: [ALICE, STRANGER_CONTRACT] }] } });
      assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: zeroValueCall(STRANGER_CONTRACT) })).status, 200);
    });

    for (const [what, land, code, status] of [
      ['a freeze', (p: Awaited<ReturnType<typeof provisionAgent>>) => h.admin('POST', `/v1/agents/${p.agent.name}/freeze`), 'agent_frozen', 403],
      ['a revoke', (p: Awaited<ReturnType<typeof provisionAgent>>) => h.admin('POST', `/v1/sessions/${p.session.id}/revoke`), 'session_revoked', 401],
    ] as const) {
      test(`${what} that commits while a request is in flight (after authentication, before its transaction) wins`, async () => {
        const p = await provisionAgent(h, { policy: usdcPolicy({ daily: '5' }) });
        let landed: { status: number } | undefined;
        const hook = beforeNextTransaction(h, async () => {
          landed = await land(p);
        });
        const res = await h.call('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 5n) });
        assert.ok(hook.ran(), 'the change landed inside the request');
        assert.equal(landed?.status, 200, 'the operator change committed');
        assert.equal(res.status, status, JSON.stringify(res.body));
        assert.equal(res.body.error.code, code);
        assert.equal(res.body.signedTransaction, undefined);
        // The refusal is on the record, and nothing was reserved: policy alone still allows the request (the whole
        // budget is there); a frozen agent's dry-run denies only for its status.
        const refused = (await auditOf(h, p.agent.name)).filter((e) => e.type === 'sign.request');
        assert.deepEqual(refused.map((e) => [e.decision, e.data.errorCode]), [['error', code]]);
        const dry = await h.admin('POST', '/v1/policies/dry-run', { agent: p.agent.name, action: 'evm.transaction', payload: usdcTransfer(ALICE, 5n) });
        assert.deepEqual(dry.body.decision.violations?.filter((v: { code: string }) => v.code !== 'agent_not_active') ?? [], [], JSON.stringify(dry.body));
        assert.deepEqual(dry.body.decision.allowedBy, ['agent/usdc-to-partners']);
      });
    }

    test('a token naming a real session with a wrong secret, or a malformed token, is refused as unauthenticated', async () => {
      // Session ids are not secret (responses, audit entries, logs name them): only the secret authenticates.
      const { token, session } = await provisionAgent(h, { policy: usdcPolicy() });
      const secret = token.slice(token.indexOf('.') + 1);
      const wrongSecret = `${token.slice(0, token.indexOf('.') + 1)}${secret[0] === 'A' ? 'B' : 'A'}${secret.slice(1)}`;
      assert.ok(wrongSecret.startsWith(`${session.id}.`) && wrongSecret !== token);
      for (const bad of [wrongSecret, `${session.id}.`, session.id, `${token}x`]) {
        const res = await h.call('POST', '/v1/sign/transaction', { token: bad, body: usdcTransfer(ALICE, 1n) });
        assert.equal(res.status, 401, `${JSON.stringify(res.body)} for a token shaped like ${bad.length} chars`);
        assert.equal(res.body.error.code, 'unauthenticated');
        assert.equal(res.body.signedTransaction, undefined);
      }
      assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1n) })).status, 200, 'the real token still works');
    });

    test('a session is refused at exactly its expiry instant and usable one millisecond before', async () => {
      const { agent, token, session } = await provisionAgent(h, { policy: usdcPolicy(), ttl: '1h' });
      const expiresAt = Date.parse(session.expiresAt);
      try {
        h.clock!.set(expiresAt - 1);
        assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1n) })).status, 200);
        h.clock!.set(expiresAt);
        const res = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1n, 1) });
        assert.equal(res.status, 401, JSON.stringify(res.body));
        assert.equal(res.body.error.code, 'session_expired');
        assert.equal(res.body.signedTransaction, undefined);
        // A genuine but dead credential is incident evidence: the attempt is on the record.
        const refused = (await auditOf(h, agent.name)).filter((e) => e.type === 'auth.refused');
        assert.deepEqual(refused.map((e) => [e.sessionId, e.data.errorCode]), [[session.id, 'session_expired']]);
      } finally {
        h.clock!.set(Date.now());
      }
    });

    test('an approved request whose stored payload was swapped in the database is not signed', async () => {
      // Someone with write access to the store rewrites a pending request (same agent, another payee)
      // before the operator approves what they saw: the release re-decodes and compares with the approved digest.
      const { agent, token } = await provisionAgent(h, { policy: usdcPolicy({ approvalAbove: '10000000' }) });
      const pending = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 20_000_000n) });
      assert.equal(pending.status, 202);
      const id = pending.body.approvalId as string;
      const swapped = JSON.stringify(usdcTransfer(MALLORY, 20_000_000n));
      await (h.airlock.store as unknown as RawStore).rawExec(`UPDATE approvals SET request = '${swapped}' WHERE id = '${id}'`);

      const approved = await h.admin('POST', `/v1/approvals/${id}/approve`);
      assert.equal(approved.status, 500, JSON.stringify(approved.body));
      assert.equal(approved.body.error.code, 'signature_check_failed');
      const fetched = await h.call('GET', `/v1/approvals/${id}`, { token });
      assert.equal(fetched.body.result, undefined, 'no signature was stored for the agent to fetch');
      // Refused before anything was granted (the grant decodes the stored request again): closed as denied by
      // `system`, its hold released, no grant and no signing attempt on the record.
      const entries = await auditOf(h, agent.name);
      const closed = entries.filter((e) => e.type === 'approval.denied');
      assert.deepEqual(closed.map((e) => [e.data.approvalId, e.actor, e.data.reason, e.data.violations[0].code]), [[id, 'system', 'undecodable', 'held_request_undecodable']]);
      assert.deepEqual(entries.filter((e) => e.type === 'approval.granted' || e.type === 'sign.failed'), []);
      assert.equal((await h.call('GET', `/v1/approvals/${id}`, { token })).body.state, 'denied');
      // And the untouched path still releases: a second request approved as stored is signed for ALICE.
      const other = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 20_000_000n, 1) });
      const ok = await h.admin('POST', `/v1/approvals/${other.body.approvalId}/approve`);
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      const signed = parseTransaction((await h.call('GET', `/v1/approvals/${other.body.approvalId}`, { token })).body.result.signedTransaction as Hex);
      assert.ok(signed.data?.includes(ALICE.slice(2)));
    });
  });
}
