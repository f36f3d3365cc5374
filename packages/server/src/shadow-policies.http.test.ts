// Shadow policies over the real HTTP app, on SQLite and on PostgreSQL: a candidate staged beside the active
// policy is evaluated on every request and decides nothing; its differences and summary are exact; promoting
// it makes it decide; it never charges or holds anything; only the admin can stage or read it.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BITCOIN_CHAINS, COUNT_ASSET, bitcoinAsset, seriesFor } from '@airlock/core';
import { LightningNetwork, SimulatedBackend } from '../../../testing/lightning-network.ts';
import { encodePaymentRequiredHeader } from '@x402/core/http';
import { generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import { ALICE, BASE, MALLORY, USDC, USDC_ASSET, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';

const usdc = (n: number) => BigInt(n) * 1_000_000n;

/** The harness's USDC policy with both partners allowed, a 30 USDC cap and a human above 10 USDC. */
const candidatePolicy = {
  version: 1,
  rules: [
    { name: 'usdc-to-partners', type: 'allow', match: { chains: [BASE], kinds: ['erc20.transfer'], to: [ALICE, MALLORY] } },
    { name: 'usdc-per-request', type: 'max_amount', asset: USDC_ASSET, max: '30000000' },
    { name: 'big-needs-human', type: 'approval_tier', asset: USDC_ASSET, above: '10000000' },
  ],
};

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`shadow policies over HTTP (${store})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ store });
    });
    after(async () => h.close());

    const send = (token: string, to: string, amount: number) => h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(to, usdc(amount)) });
    const audit = async (type: string) => (await h.admin('GET', `/v1/audit?type=${type}&limit=1000`)).body.entries as any[];

    test('a stricter candidate decides nothing: requests are signed under the active policy, the refusals it would make are recorded with its rule', async () => {
      const { agent, token } = await provisionAgent(h, { policy: usdcPolicy() });
      const staged = await h.admin('PUT', `/v1/policies/${agent.name}/shadow`, { document: usdcPolicy({ perRequest: '10000000' }) });
      assert.equal(staged.status, 200, JSON.stringify(staged.body));
      assert.equal(staged.body.changed, true);
      assert.match(staged.body.candidate.id, /^shd_[0-9a-f]{16}$/);
      assert.equal(staged.body.candidate.scope, `agent:${agent.id}`);

      const big = await send(token, ALICE, 50);
      assert.equal(big.status, 200, JSON.stringify(big.body));
      assert.match(big.body.signature, /^0x/);
      assert.doesNotMatch(big.body.policyVersion, /shadow/, 'the active layers decided');
      const small = await send(token, ALICE, 5);
      assert.equal(small.status, 200);

      const diff = await h.admin('GET', `/v1/policies/${agent.name}/shadow/differences`);
      assert.equal(diff.status, 200, JSON.stringify(diff.body));
      assert.equal(diff.body.differences.length, 1);
      const [d] = diff.body.differences;
      assert.equal(d.auditSeq, big.body.auditSeq);
      assert.equal(d.agentId, agent.id);
      assert.equal(d.kind, 'would_deny');
      assert.equal(d.action, 'evm.transaction');
      assert.match(d.summary, /USDC|transfer/i);
      assert.equal(d.active.decision, 'allow');
      assert.deepEqual(d.active.allowedBy, ['agent/usdc-to-partners']);
      assert.equal(d.candidate.decision, 'deny');
      assert.deepEqual(d.candidate.violations.map((v: any) => [v.rule, v.code, v.limit, v.requested]), [['agent/usdc-per-request', 'amount_exceeds_max', '10000000', '50000000']]);
      assert.match(d.candidate.policyVersion, /agent@shadow:[0-9a-f]{8}/);

      const shown = await h.admin('GET', `/v1/policies/${agent.name}/shadow`);
      assert.equal(shown.status, 200);
      assert.deepEqual(shown.body.summary, { evaluated: 2, outcomes: { same: 1, rules_differ: 0, would_allow: 0, would_deny: 1, would_require_approval: 0, error: 0 } });
      assert.deepEqual(shown.body.active, { version: 1, hash: shown.body.active.hash });
      assert.equal(shown.body.document.rules[1].max, '10000000');
      // The signing request's own audit entry records the active decision only.
      const [entry] = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=sign.request&limit=10`)).body.entries.filter((e: any) => e.seq === big.body.auditSeq);
      assert.equal(entry.decision, 'allow');
    });

    test('a looser candidate: the active refusals stay refused, the differences say the candidate would allow', async () => {
      const { agent, token } = await provisionAgent(h, { policy: usdcPolicy({ perRequest: '10000000' }) });
      assert.equal((await h.admin('PUT', `/v1/policies/${agent.name}/shadow`, { document: usdcPolicy() })).status, 200);
      const refused = await send(token, ALICE, 50);
      assert.equal(refused.status, 403);
      assert.deepEqual(refused.body.error.violations.map((v: any) => v.rule), ['agent/usdc-per-request']);
      assert.equal(refused.body.signature, undefined);
      const [d] = (await h.admin('GET', `/v1/policies/${agent.name}/shadow/differences`)).body.differences;
      assert.equal(d.auditSeq, refused.body.auditSeq);
      assert.equal(d.kind, 'would_allow');
      assert.equal(d.active.decision, 'deny');
      assert.deepEqual(d.active.violations.map((v: any) => v.rule), ['agent/usdc-per-request']);
      assert.deepEqual(d.candidate, { decision: 'allow', violations: [], allowedBy: ['agent/usdc-to-partners'], policyVersion: d.candidate.policyVersion });
    });

    test('the summary counts every evaluation exactly, one outcome per kind; the differences page by audit seq', async () => {
      const { agent, token } = await provisionAgent(h, { policy: usdcPolicy() });
      assert.equal((await h.admin('PUT', `/v1/policies/${agent.name}/shadow`, { document: candidatePolicy })).status, 200);
      const answers = [
        await send(token, ALICE, 5), // both allow by the same rule: same
        await send(token, ALICE, 20), // candidate holds it for a human
        await send(token, ALICE, 50), // candidate refuses it (over 30)
        await send(token, MALLORY, 1), // active refuses (not a partner), candidate allows
        await send(token, ALICE, 200), // both refuse by usdc-per-request: same
        await send(token, MALLORY, 200), // both refuse, the candidate by fewer rules
      ];
      assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 403, 403, 403]);
      const shown = await h.admin('GET', `/v1/policies/agent:${agent.id}/shadow`);
      assert.deepEqual(shown.body.summary, { evaluated: 6, outcomes: { same: 2, rules_differ: 1, would_allow: 1, would_deny: 1, would_require_approval: 1, error: 0 } });

      const all = (await h.admin('GET', `/v1/policies/${agent.name}/shadow/differences`)).body;
      assert.deepEqual(all.differences.map((d: any) => [d.auditSeq, d.kind]), [
        [answers[1]!.body.auditSeq, 'would_require_approval'],
        [answers[2]!.body.auditSeq, 'would_deny'],
        [answers[3]!.body.auditSeq, 'would_allow'],
        [answers[5]!.body.auditSeq, 'rules_differ'],
      ]);
      assert.equal(all.differences[0].candidate.violations[0].rule, 'agent/big-needs-human');
      const page1 = (await h.admin('GET', `/v1/policies/${agent.name}/shadow/differences?limit=2`)).body;
      assert.equal(page1.differences.length, 2);
      const page2 = (await h.admin('GET', `/v1/policies/${agent.name}/shadow/differences?limit=2&after=${page1.next}`)).body;
      assert.deepEqual([...page1.differences, ...page2.differences].map((d: any) => d.auditSeq), all.differences.map((d: any) => d.auditSeq));

      // A dry-run shows both decisions, and records nothing.
      const dry = await h.admin('POST', '/v1/policies/dry-run', { agent: agent.name, action: 'evm.transaction', payload: usdcTransfer(ALICE, usdc(50)) });
      assert.equal(dry.body.decision.decision, 'allow');
      assert.deepEqual(dry.body.shadow.map((s: any) => [s.scope, s.kind, s.candidate.decision]), [[`agent:${agent.id}`, 'would_deny', 'deny']]);
      assert.equal((await h.admin('GET', `/v1/policies/${agent.name}/shadow`)).body.summary.evaluated, 6);
    });

    test('a candidate charges and holds nothing: the same traffic leaves the same ledger totals with and without one', async () => {
      const daily = usdcPolicy({ daily: '100000000' });
      const plain = await provisionAgent(h, { policy: daily });
      const shadowed = await provisionAgent(h, { policy: daily });
      // Held for a human at any amount (and a budget ten times the active one): if it held or charged, it would show.
      const holdEverything = usdcPolicy({ daily: '1000000000', approvalAbove: '0' });
      assert.equal((await h.admin('PUT', `/v1/policies/${shadowed.agent.name}/shadow`, { document: holdEverything })).status, 200);
      const statuses = async (token: string) => {
        const out: number[] = [];
        for (let i = 0; i < 4; i++) out.push((await send(token, ALICE, 30)).status);
        return out;
      };
      assert.deepEqual(await statuses(plain.token), [200, 200, 200, 403]);
      assert.deepEqual(await statuses(shadowed.token), [200, 200, 200, 403]);
      const totals = (agentId: string) =>
        h.airlock.store.transaction((tx) => tx.windowTotals([{ series: seriesFor.agent(agentId), asset: USDC_ASSET, sinceMs: 0 }, { series: seriesFor.agent(agentId), asset: COUNT_ASSET, sinceMs: 0 }]));
      assert.deepEqual(await totals(shadowed.agent.id), await totals(plain.agent.id));
      assert.deepEqual((await totals(shadowed.agent.id)).map((t) => [t.amount, t.count]), [[usdc(90), 3], [0n, 3]]);
      const pending = (await h.admin('GET', `/v1/approvals?agent=${shadowed.agent.name}&state=pending`)).body.approvals;
      assert.deepEqual(pending, []);
      const summary = (await h.admin('GET', `/v1/policies/${shadowed.agent.name}/shadow`)).body.summary;
      assert.deepEqual(summary, { evaluated: 4, outcomes: { same: 0, rules_differ: 0, would_allow: 0, would_deny: 0, would_require_approval: 4, error: 0 } });
    });

    test('promoting makes the candidate decide the next request, through a new audited policy version', async () => {
      const { agent, token } = await provisionAgent(h, { policy: usdcPolicy() });
      const source = `# tighter: 10 USDC per request\n${JSON.stringify(usdcPolicy({ perRequest: '10000000' }))}\n`;
      const staged = await h.admin('PUT', `/v1/policies/${agent.name}/shadow`, { source });
      assert.equal(staged.status, 200);
      assert.equal((await send(token, ALICE, 50)).status, 200);
      const promoted = await h.admin('POST', `/v1/policies/${agent.name}/shadow/promote`);
      assert.equal(promoted.status, 200, JSON.stringify(promoted.body));
      assert.deepEqual([promoted.body.record.version, promoted.body.changed, promoted.body.summary.evaluated], [2, true, 1]);
      const next = await send(token, ALICE, 50);
      assert.equal(next.status, 403);
      assert.deepEqual(next.body.error.violations.map((v: any) => v.rule), ['agent/usdc-per-request']);
      assert.match(next.body.policyVersion, /agent@2:/);
      // The text as staged became the policy's text; the candidate is gone.
      assert.equal((await h.admin('GET', `/v1/policies/${agent.name}`)).body.source, source);
      const gone = await h.admin('GET', `/v1/policies/${agent.name}/shadow`);
      assert.deepEqual([gone.status, gone.body.error.code], [404, 'not_found']);
      const [set] = (await audit('policy.set')).filter((e) => e.agentId === agent.id && e.data.version === 2);
      const [promotedEntry] = (await audit('policy.shadow_promoted')).filter((e) => e.agentId === agent.id);
      assert.ok(set, 'policy.set audited');
      assert.deepEqual([promotedEntry.data.version, promotedEntry.data.shadowId, promotedEntry.data.summary.outcomes.would_deny], [2, staged.body.candidate.id, 1]);
      assert.equal((await h.admin('POST', `/v1/policies/${agent.name}/shadow/promote`)).status, 404);
    });

    test('unstaging stops the recording; restaging starts a new candidate from zero; both audited with the summary', async () => {
      const { agent, token } = await provisionAgent(h, { policy: usdcPolicy() });
      const staged = await h.admin('PUT', `/v1/policies/${agent.name}/shadow`, { document: candidatePolicy });
      assert.equal((await h.admin('PUT', `/v1/policies/${agent.name}/shadow`, { document: candidatePolicy })).body.changed, false, 'the same candidate again changes nothing');
      await send(token, ALICE, 50);
      const cleared = await h.admin('DELETE', `/v1/policies/${agent.name}/shadow`);
      assert.equal(cleared.status, 200, JSON.stringify(cleared.body));
      assert.equal(cleared.body.summary.evaluated, 1);
      assert.equal(cleared.body.candidate.id, staged.body.candidate.id);
      assert.equal((await send(token, ALICE, 50)).status, 200);
      assert.equal((await h.admin('GET', `/v1/policies/${agent.name}/shadow`)).status, 404);
      assert.equal((await h.admin('GET', `/v1/policies/${agent.name}/shadow/differences`)).status, 404);
      assert.equal((await h.admin('DELETE', `/v1/policies/${agent.name}/shadow`)).status, 404);

      const again = await h.admin('PUT', `/v1/policies/${agent.name}/shadow`, { document: candidatePolicy });
      assert.notEqual(again.body.candidate.id, staged.body.candidate.id);
      assert.equal((await h.admin('GET', `/v1/policies/${agent.name}/shadow`)).body.summary.evaluated, 0);
      const sets = (await audit('policy.shadow_set')).filter((e) => e.agentId === agent.id);
      assert.deepEqual(sets.map((e) => e.data.shadowId), [staged.body.candidate.id, again.body.candidate.id]);
      const [clearedEntry] = (await audit('policy.shadow_cleared')).filter((e) => e.agentId === agent.id);
      assert.deepEqual([clearedEntry.data.shadowId, clearedEntry.data.summary.evaluated, clearedEntry.data.summary.outcomes.would_deny], [staged.body.candidate.id, 1, 1]);
      await h.admin('DELETE', `/v1/policies/${agent.name}/shadow`);
    });

    test('a candidate that fails to evaluate never fails or changes the request: the outcome is an error in the summary', async () => {
      const { agent, token } = await provisionAgent(h, { policy: usdcPolicy() });
      // A stored candidate this version no longer accepts (as after an upgrade): written past the validation on purpose.
      await h.airlock.store.transaction((tx) => tx.putShadowPolicy({ id: 'shd_00000000000000bd', scope: `agent:${agent.id}`, hash: 'f'.repeat(64), document: { version: 1, rules: [{ name: 'x', type: 'no_such_rule' }] }, author: 'admin', createdAt: 0 }));
      h.airlock.signing.shadows.invalidate();
      const res = await send(token, ALICE, 5);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.match(res.body.signature, /^0x/);
      const shown = (await h.admin('GET', `/v1/policies/${agent.name}/shadow`)).body;
      assert.deepEqual(shown.summary, { evaluated: 1, outcomes: { same: 0, rules_differ: 0, would_allow: 0, would_deny: 0, would_require_approval: 0, error: 1 } });
      const [d] = (await h.admin('GET', `/v1/policies/${agent.name}/shadow/differences`)).body.differences;
      assert.deepEqual([d.auditSeq, d.kind, d.active.decision, d.candidate], [res.body.auditSeq, 'error', 'allow', undefined]);
      assert.match(d.error, /no_such_rule|type/);
      assert.equal((await h.admin('DELETE', `/v1/policies/${agent.name}/shadow`)).status, 200);
    });

    test('an invalid candidate is refused with invalid_policy and nothing is staged', async () => {
      const { agent } = await provisionAgent(h, { policy: usdcPolicy() });
      const bad = await h.admin('PUT', `/v1/policies/${agent.name}/shadow`, { document: { version: 1, rules: [{ name: 'cap', type: 'max_amount', asset: USDC_ASSET, max: '-5' }] } });
      assert.deepEqual([bad.status, bad.body.error.code], [400, 'invalid_policy']);
      const badYaml = await h.admin('PUT', `/v1/policies/${agent.name}/shadow`, { source: 'version: 1\nrules:\n  - name: x\n    type: nope\n' });
      assert.deepEqual([badYaml.status, badYaml.body.error.code], [400, 'invalid_policy']);
      assert.equal((await h.admin('GET', `/v1/policies/${agent.name}/shadow`)).status, 404);
      assert.equal((await audit('policy.shadow_set')).filter((e) => e.agentId === agent.id).length, 0);
      assert.deepEqual((await h.admin('PUT', '/v1/policies/nobody-by-this-name/shadow', { document: candidatePolicy })).body.error.code, 'not_found');
    });

    test('attack: an agent token cannot stage, read, list, promote or clear a shadow policy (its own or the fleet)', async () => {
      const { agent, token } = await provisionAgent(h, { policy: usdcPolicy({ perRequest: '10000000' }) });
      const scopes = [agent.name, `agent:${agent.id}`, 'fleet'];
      for (const scope of scopes) {
        for (const [method, path, body] of [
          ['PUT', `/v1/policies/${scope}/shadow`, { document: usdcPolicy() }],
          ['GET', `/v1/policies/${scope}/shadow`],
          ['DELETE', `/v1/policies/${scope}/shadow`],
          ['GET', `/v1/policies/${scope}/shadow/differences`],
          ['POST', `/v1/policies/${scope}/shadow/promote`],
        ] as [string, string, unknown?][]) {
          const asAgent = await h.call(method, path, { token, ...(body ? { body } : {}) });
          assert.deepEqual([asAgent.status, asAgent.body.error?.code], [403, 'forbidden'], `${method} ${path}`);
          const anonymous = await h.call(method, path, body ? { body } : {});
          assert.deepEqual([anonymous.status, anonymous.body.error?.code], [401, 'unauthenticated'], `${method} ${path}`);
        }
      }
      assert.equal((await h.admin('GET', `/v1/policies/${agent.name}/shadow`)).status, 404, 'nothing staged');
      assert.equal((await send(token, ALICE, 50)).status, 403, 'the active policy still decides');
    });

    test('Nostr events, NIP-44 and x402 payments are shadowed too (each with its own audit entry)', async () => {
      const nostrPolicy = (kinds: number[], nip44: boolean) => ({
        version: 1,
        rules: [{ type: 'allow', name: 'notes', match: { actions: ['nostr.event'], nostr_kinds: kinds } }, ...(nip44 ? [{ type: 'allow', name: 'dms', match: { actions: ['nostr.nip44'] } }] : [])],
      });
      const poster = await provisionAgent(h, { policy: nostrPolicy([1], true), actions: ['nostr.event', 'nostr.nip44'] });
      assert.equal((await h.admin('PUT', `/v1/policies/${poster.agent.name}/shadow`, { document: nostrPolicy([7], false) })).status, 200);
      const event = await h.call('POST', '/v1/sign/nostr-event', { token: poster.token, body: { kind: 1, tags: [], content: 'hello', created_at: Math.floor(Date.now() / 1000) } });
      assert.equal(event.status, 200, JSON.stringify(event.body));
      const encrypted = await h.call('POST', '/v1/nostr/nip44/encrypt', { token: poster.token, body: { peer: getPublicKey(generateSecretKey()), plaintext: 'meet at noon' } });
      assert.equal(encrypted.status, 200, JSON.stringify(encrypted.body));
      const nostrDiffs = (await h.admin('GET', `/v1/policies/${poster.agent.name}/shadow/differences`)).body.differences;
      assert.deepEqual(nostrDiffs.map((d: any) => [d.action, d.kind, d.candidate.violations[0].code]), [['nostr.event', 'would_deny', 'nostr_kind_not_allowed'], ['nostr.nip44', 'would_deny', 'nostr_peer_not_allowed']]);
      assert.equal(nostrDiffs[0].auditSeq, event.body.auditSeq);
      assert.ok(!JSON.stringify(nostrDiffs).includes('meet at noon'), 'no plaintext in a difference');

      // x402: every requirement refused by the active price cap, the candidate's would pay the first.
      const x402 = (max: string) => ({
        version: 1,
        rules: [
          { name: 'paid-api', type: 'allow', match: { chains: [BASE], kinds: ['eip3009.transfer_with_authorization'], to: [ALICE], resources: ['https://api.example.com/**'] } },
          { name: 'max-price', type: 'max_amount', asset: USDC_ASSET, max },
        ],
      });
      const payer = await provisionAgent(h, { policy: x402('500') });
      assert.equal((await h.admin('PUT', `/v1/policies/${payer.agent.name}/shadow`, { document: x402('5000') })).status, 200);
      const url = 'https://api.example.com/data';
      const accepts = [{ scheme: 'exact', network: BASE, amount: '1000', asset: USDC, payTo: ALICE, maxTimeoutSeconds: 60, extra: { name: 'USD Coin', version: '2' } }];
      const paymentRequired = encodePaymentRequiredHeader({ x402Version: 2, error: 'Payment required', resource: { url, description: 'data', mimeType: 'application/json' }, accepts } as never);
      const paid = await h.call('POST', '/v1/x402/pay', { token: payer.token, body: { resource: url, paymentRequired } });
      assert.equal(paid.status, 403, JSON.stringify(paid.body));
      const [d] = (await h.admin('GET', `/v1/policies/${payer.agent.name}/shadow/differences`)).body.differences;
      assert.deepEqual([d.auditSeq, d.action, d.kind, d.active.violations[0].rule, d.candidate.decision], [paid.body.auditSeq, 'x402.pay', 'would_allow', 'agent/max-price', 'allow']);
    });

    test('a fleet candidate is evaluated for every agent, with the fleet layer replaced', async () => {
      const { agent, token } = await provisionAgent(h, { policy: usdcPolicy() });
      const staged = await h.admin('PUT', '/v1/policies/fleet/shadow', { document: { version: 1, rules: [{ name: 'no-alice', type: 'deny', match: { to: [ALICE] } }] } });
      assert.equal(staged.status, 200);
      try {
        const res = await send(token, ALICE, 5);
        assert.equal(res.status, 200);
        const [d] = (await h.admin('GET', '/v1/policies/fleet/shadow/differences')).body.differences.filter((x: any) => x.auditSeq === res.body.auditSeq);
        assert.equal(d.agentId, agent.id);
        assert.equal(d.kind, 'would_deny');
        assert.deepEqual(d.candidate.violations.map((v: any) => [v.rule, v.code]), [['fleet/no-alice', 'denied_by_rule']]);
        assert.match(d.candidate.policyVersion, /^fleet@shadow:[0-9a-f]{8},agent@1:/);
      } finally {
        assert.equal((await h.admin('DELETE', '/v1/policies/fleet/shadow')).status, 200);
      }
    });
  });
}

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`shadow policies on Lightning payments (${store})`, () => {
    let h: Harness;
    const ln = new LightningNetwork();
    ln.feeBaseMsat = 10n; // within the default fee limit
    const shop = ln.payee();
    before(async () => {
      h = await startHarness({ store, manualClock: true, lightningBackend: new SimulatedBackend(ln), config: { lightning: { backend: 'lnd', network: 'regtest', payTimeoutSeconds: 2, notFoundGraceSeconds: 60, defaultFeePercent: 1 } } });
    });
    after(async () => h.close());

    test('a payment is made under the active policy while the candidate records that it would refuse it', async () => {
      const btc = bitcoinAsset(BITCOIN_CHAINS.regtest);
      const lightningPolicy = (max: string) => ({ version: 1, rules: [{ type: 'allow', name: 'pay-shop', match: { actions: ['lightning.pay'] } }, { type: 'max_amount', name: 'per-payment', asset: btc, max }] });
      const { agent, token } = await provisionAgent(h, { policy: lightningPolicy('120000'), actions: ['lightning.pay'] });
      assert.equal((await h.admin('PUT', `/v1/policies/${agent.name}/shadow`, { document: lightningPolicy('10000') })).status, 200);
      h.clock!.set(Date.now());
      const paid = await h.call('POST', '/v1/lightning/pay', { token, body: { invoice: shop.invoice({ amountMsat: 50_000n, description: 'one call' }).invoice } });
      assert.equal(paid.status, 200, JSON.stringify(paid.body));
      assert.equal(paid.body.status, 'succeeded');
      const [d] = (await h.admin('GET', `/v1/policies/${agent.name}/shadow/differences`)).body.differences;
      assert.deepEqual([d.auditSeq, d.action, d.kind, d.candidate.violations.map((v: any) => v.rule)], [paid.body.auditSeq, 'lightning.pay', 'would_deny', ['agent/per-payment']]);
    });
  });
}
