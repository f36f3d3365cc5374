// Every released signature is charged once for its own decoded value, or is a byte-identical replay of a
// charged one, and has its audit entry: attacked through HTTP as a compromised agent's session would.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalJson, requestHash } from '@airlock/core';
import { ALICE, BASE, MALLORY, USDC, USDC_ASSET, provisionAgent, startHarness, usdcAuthorization, usdcPolicy, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';

const API = 'https://api.example.com';
const nonce = (n: number) => `0x${n.toString(16).padStart(64, '0')}`;

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`accounting under attack (${store})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ store, manualClock: true });
    });
    after(async () => {
      await h.close();
    });
    const validBefore = () => Math.floor(h.clock!.now() / 1000) + 3600;
    const signAuth = (token: string, body: unknown, headers: Record<string, string> = {}) => h.call('POST', '/v1/sign/typed-data', { token, body, headers });
    const entries = async (agent: string, type: string) => (await h.admin('GET', `/v1/audit?agent=${agent}&type=${type}&limit=1000`)).body.entries as any[];
    const usedToday = async (token: string, agentAddress: string) => {
      // What the daily budget has left, read through a dry-run of the largest payment it could still take.
      const probe = await h.call('POST', '/v1/dry-run', { token, body: { action: 'evm.typed_data', payload: usdcAuthorization(agentAddress, ALICE, 1n, validBefore(), nonce(999_999)) } });
      return probe.body.decision;
    };

    test('a decoy authorization then a large one over the same nonce: refused nonce_reused, audited, nothing charged', async () => {
      const { agent, token } = await provisionAgent(h, { policy: usdcPolicy({ perRequest: '1000000000', daily: '500000000' }) });
      const decoy = await signAuth(token, usdcAuthorization(agent.address, ALICE, 1n, validBefore(), nonce(7)));
      assert.equal(decoy.status, 200);
      // 800 USDC against a 500 USDC/day budget: before the fix this was signed with no hold at all.
      const large = await signAuth(token, usdcAuthorization(agent.address, ALICE, 800_000_000n, validBefore(), nonce(7)));
      assert.equal(large.status, 409);
      assert.equal(large.body.error.code, 'nonce_reused');
      assert.equal(large.body.signature, undefined);
      // Another payee, another validity over the same nonce: the same refusal.
      const otherPayee = await signAuth(token, usdcAuthorization(agent.address, ALICE, 1n, validBefore() + 60, nonce(7)));
      assert.equal(otherPayee.body.error.code, 'nonce_reused');
      const refusals = (await entries(agent.name, 'sign.request')).filter((e) => e.data.errorCode === 'nonce_reused');
      assert.equal(refusals.length, 2);
      assert.equal(refusals[0].decision, 'deny');
      assert.equal(refusals[0].data.intent.spends[0].amount, '800000000');
      // The budget saw exactly the decoy: 499.999999 USDC still fits, 500 does not.
      const fits = await h.call('POST', '/v1/dry-run', { token, body: { action: 'evm.typed_data', payload: usdcAuthorization(agent.address, ALICE, 499_999_999n, validBefore(), nonce(8)) } });
      assert.equal(fits.body.decision.decision, 'allow');
      const over = await h.call('POST', '/v1/dry-run', { token, body: { action: 'evm.typed_data', payload: usdcAuthorization(agent.address, ALICE, 500_000_000n, validBefore(), nonce(8)) } });
      assert.equal(over.body.decision.violations[0].code, 'budget_exceeded');
      assert.equal(over.body.decision.violations[0].used, '1');
      // The dry-run names the reuse too.
      const dry = await h.call('POST', '/v1/dry-run', { token, body: { action: 'evm.typed_data', payload: usdcAuthorization(agent.address, ALICE, 2n, validBefore(), nonce(7)) } });
      assert.equal(dry.body.decision.decision, 'deny');
      assert.ok(dry.body.decision.violations.some((v: any) => v.code === 'nonce_reused'));
      assert.equal((await usedToday(token, agent.address)).decision, 'allow');
    });

    test('12 payments past a per-origin cap by reusing one nonce: all refused after the cap', async () => {
      const policy = {
        version: 1,
        rules: [
          { name: 'paid', type: 'allow', match: { chains: [BASE], kinds: ['eip3009.transfer_with_authorization'], to: [ALICE], resources: [`${API}/**`] } },
          { name: 'cap', type: 'max_amount', asset: USDC_ASSET, max: '5000' },
          { name: 'short', type: 'validity_window', max_seconds: 7200 },
          { name: 'origin-cap', type: 'budget', asset: USDC_ASSET, max: '3000', window: '24h', scope: 'agent', per_origin: true },
        ],
      };
      const { agent, token } = await provisionAgent(h, { policy });
      const pay = (value: bigint, n: number) => signAuth(token, { ...usdcAuthorization(agent.address, ALICE, value, validBefore(), nonce(n)), x402: { resource: `${API}/data` } });
      assert.equal((await pay(1000n, 100)).status, 200);
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) => pay(1000n + BigInt(i + 1), 100)));
      assert.deepEqual(results.map((r) => r.status), Array(12).fill(409));
      // Two more honest payments fill the cap; the next is refused by the budget, not waved through.
      assert.equal((await pay(1000n, 101)).status, 200);
      assert.equal((await pay(1000n, 102)).status, 200);
      const beyond = await pay(1000n, 103);
      assert.equal(beyond.status, 403);
      assert.equal(beyond.body.error.violations[0].code, 'budget_exceeded');
    });

    test('the byte-identical authorization is a replay: same signature, charged nothing more, counted and audited', async () => {
      const policy = usdcPolicy({ daily: '3000000' });
      policy.rules.push({ name: 'three-a-minute', type: 'rate_limit', max: 3, window: '1m', scope: 'agent' } as never);
      const { agent, token } = await provisionAgent(h, { policy });
      const request = usdcAuthorization(agent.address, ALICE, 2_000_000n, validBefore(), nonce(200));
      const first = await signAuth(token, request);
      const again = await signAuth(token, request);
      assert.equal(first.status, 200);
      assert.equal(again.status, 200);
      assert.equal(again.body.signature, first.body.signature);
      assert.equal(again.body.replayed, true);
      assert.equal(again.body.auditSeq, first.body.auditSeq);
      assert.equal(again.body.paymentId, first.body.paymentId);
      const replays = await entries(agent.name, 'sign.replay');
      assert.equal(replays.length, 1);
      assert.equal(replays[0].data.originalSeq, first.body.auditSeq);
      assert.equal(replays[0].seq, again.body.replayAuditSeq);
      // Charged once: 1 USDC of the 3 USDC budget is still free (2 + 1 fits, 2 + 1.000001 does not).
      const rest = await h.call('POST', '/v1/dry-run', { token, body: { action: 'evm.typed_data', payload: usdcAuthorization(agent.address, ALICE, 1_000_001n, validBefore(), nonce(201)) } });
      assert.equal(rest.body.decision.violations[0].code, 'budget_exceeded');
      assert.equal(rest.body.decision.violations[0].used, '2000000');
      // Counted: two signatures released so far; the third new one fits the rate limit, the fourth does not.
      assert.equal((await signAuth(token, usdcAuthorization(agent.address, ALICE, 1n, validBefore(), nonce(202)))).status, 200);
      const fourth = await signAuth(token, usdcAuthorization(agent.address, ALICE, 1n, validBefore(), nonce(203)));
      assert.equal(fourth.status, 403);
      assert.equal(fourth.body.error.violations[0].code, 'rate_limit_exceeded');
    });

    test('an idempotent retry re-releases only the same digest, for a session allowed the action, and is audited', async () => {
      const { agent, token } = await provisionAgent(h, { policy: usdcPolicy() });
      const key = { 'idempotency-key': 'retry-1' };
      const first = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000_000n, 1), headers: key });
      assert.equal(first.status, 200);
      const retry = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000_000n, 1), headers: key });
      assert.equal(retry.status, 200);
      assert.equal(retry.body.replayed, true);
      assert.equal(retry.body.signedTransaction, first.body.signedTransaction);
      // The same key with another payload: a conflict, on the record.
      const other = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(MALLORY, 1_000_000n, 1), headers: key });
      assert.equal(other.status, 409);
      assert.equal(other.body.error.code, 'idempotency_conflict');
      const requests = await entries(agent.name, 'sign.request');
      assert.equal(requests.filter((e) => e.data.errorCode === 'idempotency_conflict').length, 1);
      const replays = await entries(agent.name, 'sign.replay');
      assert.equal(replays.length, 1);
      assert.equal(replays[0].decision, 'allow');

      // A sibling session scoped to typed data only may not collect the transaction's signature under the key.
      const issued = await h.admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['evm.typed_data'] });
      const narrow = issued.body.token as string;
      const stolen = await h.call('POST', '/v1/sign/transaction', { token: narrow, body: usdcTransfer(ALICE, 1_000_000n, 1), headers: key });
      assert.equal(stolen.status, 403);
      assert.equal(stolen.body.error.violations[0].code, 'action_not_allowed');
      assert.equal(stolen.body.signedTransaction, undefined);
      const denied = (await entries(agent.name, 'sign.replay')).filter((e) => e.decision === 'deny');
      assert.equal(denied.length, 1);

      // A frozen agent's retry is refused like any request.
      assert.equal((await h.admin('POST', `/v1/agents/${agent.name}/freeze`)).status, 200);
      const frozen = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000_000n, 1), headers: key });
      assert.equal(frozen.body.error.code, 'agent_frozen');
    });

    test('an idempotent retry is re-released only for the digest its record holds, whatever the request hash says', async () => {
      // The reviewed attack made two payloads hash alike (canonical JSON dropped `__proto__` members, and a
      // typed-data field named `__proto__` was read through the prototype). Both doors are shut at their own
      // depth (RFC 8785 canonical JSON, the edge, the decoder); this checks the last one: the record's digest.
      const { agent, token } = await provisionAgent(h, { policy: usdcPolicy() });
      const body = usdcTransfer(ALICE, 1_000_000n, 77);
      const sneaky = { scope: `agent:${agent.id}`, key: 'planted', requestHash: requestHash('evm.transaction', body, canonicalJson), digest: '00'.repeat(32), auditSeq: 1, response: { status: 200, body: { decision: 'allow', auditSeq: 1 } }, createdAt: h.clock!.now() };
      await h.airlock.store.transaction((tx) => tx.putIdempotency(sneaky));
      const retry = await h.call('POST', '/v1/sign/transaction', { token, body, headers: { 'idempotency-key': 'planted' } });
      assert.equal(retry.status, 409);
      assert.equal(retry.body.error.code, 'idempotency_conflict');
      assert.equal(retry.body.signedTransaction, undefined);
      // A field named `__proto__` no longer decodes at all.
      const proto = JSON.parse('{"chainId":8453,"typedData":{"domain":{"name":"Notes","chainId":8453},"types":{"Note":[{"name":"__proto__","type":"Inner"}],"Inner":[{"name":"text","type":"string"}]},"primaryType":"Note","message":{}}}');
      const refused = await h.call('POST', '/v1/sign/typed-data', { token, body: proto });
      assert.equal(refused.status, 400);
      assert.equal(refused.body.error.code, 'undecodable_payload');
    });

    // On PostgreSQL one agent's requests share a batch, which keeps its budget reads for its later requests: an
    // authorization's hold is written at once, a transfer's charge waits for the end of the batch. Sent together,
    // neither may let the other past the budget.
    test('authorizations and transfers at once against one budget: exactly what fits is signed', async () => {
      const { agent, token } = await provisionAgent(h, { policy: usdcPolicy({ daily: '50000000' }) });
      const results = await Promise.all(
        Array.from({ length: 80 }, (_, i) =>
          i % 2 === 0
            ? signAuth(token, usdcAuthorization(agent.address, ALICE, 1_000_000n, validBefore(), nonce(5_000 + i)))
            : h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000_000n, i) }),
        ),
      );
      const signed = results.filter((r) => r.status === 200);
      assert.equal(signed.length, 50, JSON.stringify(results.filter((r) => r.status !== 200 && r.status !== 403).map((r) => r.body)));
      for (const r of results.filter((x) => x.status !== 200)) {
        assert.equal(r.status, 403);
        assert.equal(r.body.error.violations[0].code, 'budget_exceeded');
      }
      assert.equal((await usedToday(token, agent.address)).decision, 'deny', 'the budget is full: not one unit more');
      assert.equal(new Set(signed.map((r) => r.body.auditSeq)).size, 50, 'each signature has its own audit entry');
    });

    test('an authorization waiting for approval holds its nonce; denying it frees the nonce', async () => {
      const { agent, token } = await provisionAgent(h, { policy: usdcPolicy({ approvalAbove: '50000000' }) });
      const big = usdcAuthorization(agent.address, ALICE, 60_000_000n, validBefore(), nonce(300));
      const held = await signAuth(token, big);
      assert.equal(held.status, 202);
      // While a human decides, a small authorization over the same nonce would be signed at once: refused.
      const sneak = await signAuth(token, usdcAuthorization(agent.address, ALICE, 1n, validBefore(), nonce(300)));
      assert.equal(sneak.status, 409);
      assert.equal(sneak.body.error.code, 'nonce_reused');
      const same = await signAuth(token, big);
      assert.equal(same.status, 202);
      assert.equal(same.body.approvalId, held.body.approvalId);
      assert.equal((await h.admin('GET', '/v1/approvals?state=pending')).body.approvals.filter((a: any) => a.agentId === agent.id).length, 1);
      assert.equal((await h.admin('POST', `/v1/approvals/${held.body.approvalId}/deny`, {})).status, 200);
      const after = await signAuth(token, usdcAuthorization(agent.address, ALICE, 1n, validBefore(), nonce(300)));
      assert.equal(after.status, 200);
    });

    test('a permit over a sequential nonce: refused while the earlier one is usable, signed (and charged) once its deadline passed', async () => {
      const policy = { version: 1, rules: [{ name: 'permits', type: 'allow', match: { chains: [BASE], kinds: ['eip2612.permit'], to: [ALICE] } }, { name: 'cap', type: 'budget', asset: USDC_ASSET, max: '1000', window: '24h', scope: 'agent' }] };
      const { agent, token } = await provisionAgent(h, { policy });
      const deadline = Math.floor(h.clock!.now() / 1000) + 600;
      const permit = (value: number, d = deadline) => ({
        typedData: {
          domain: { name: 'USD Coin', version: '2', chainId: 8453, verifyingContract: USDC },
          types: { Permit: [{ name: 'owner', type: 'address' }, { name: 'spender', type: 'address' }, { name: 'value', type: 'uint256' }, { name: 'nonce', type: 'uint256' }, { name: 'deadline', type: 'uint256' }] },
          primaryType: 'Permit',
          message: { owner: agent.address, spender: ALICE, value: String(value), nonce: '0', deadline: String(d) },
        },
      });
      assert.equal((await signAuth(token, permit(100))).status, 200);
      const early = await signAuth(token, permit(200, deadline + 600));
      assert.equal(early.status, 409);
      assert.equal(early.body.error.code, 'nonce_reused');
      // The first permit was never submitted and its deadline passed: nonces(owner) is still 0, so the next
      // permit must use 0 again. It is a new authorization, charged for its own value (the first stays charged).
      h.clock!.advance(601_000);
      const later = await signAuth(token, permit(200, deadline + 1200));
      assert.equal(later.status, 200);
      const probe = await h.call('POST', '/v1/dry-run', { token, body: { action: 'evm.typed_data', payload: permit(701, deadline + 1200) } });
      assert.equal(probe.body.decision.violations.find((v: any) => v.code === 'budget_exceeded')?.used, '300');
    });

    test('an approved authorization is charged once; re-sending it is a replay', async () => {
      const { agent, token } = await provisionAgent(h, { policy: usdcPolicy({ approvalAbove: '50000000', daily: '100000000' }) });
      const big = usdcAuthorization(agent.address, ALICE, 60_000_000n, validBefore(), nonce(400));
      const held = await signAuth(token, big);
      const approved = await h.admin('POST', `/v1/approvals/${held.body.approvalId}/approve`, {});
      assert.equal(approved.status, 200);
      const again = await signAuth(token, big);
      assert.equal(again.status, 200);
      assert.equal(again.body.replayed, true);
      assert.equal(again.body.signature, approved.body.result.signature);
      const other = await signAuth(token, usdcAuthorization(agent.address, ALICE, 60_000_001n, validBefore(), nonce(400)));
      assert.equal(other.body.error.code, 'nonce_reused');
      // 60 of the 100 USDC budget are used, once.
      const over = await h.call('POST', '/v1/dry-run', { token, body: { action: 'evm.typed_data', payload: usdcAuthorization(agent.address, ALICE, 40_000_001n, validBefore(), nonce(401)) } });
      assert.equal(over.body.decision.violations.find((v: any) => v.code === 'budget_exceeded')?.used, '60000000');
    });
  });
}
