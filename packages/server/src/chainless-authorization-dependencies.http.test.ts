// An EIP-3009 authorization over a domain without chainId (granted by `allow_chainless_domains`) is valid on every
// chain whose token has that domain. It is charged when signed, not held as a payment, so the dependency map, which
// read authorizations only from held payments, did not list it, and revoke-all never cancelled it (found by review:
// an 800 USDC authorization valid 30 days was missing). It is now a grant of kind `eip3009.authorization`, read on
// the chain the request named, and revoke-all reports what must be done for it, on every chain. SQLite and PostgreSQL.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChainReader } from '@airlock/core';
import { ALICE, BASE, USDC, USDC_ASSET, provisionAgent, startHarness, usdcAuthorization, type Harness, type StoreKind } from './testing/harness.ts';

const policy = {
  version: 1,
  rules: [
    { name: 'pay-alice', type: 'allow', allow_chainless_domains: true, match: { kinds: ['eip3009.transfer_with_authorization'], assets: [USDC_ASSET], to: [ALICE] } },
    { name: 'usdc-daily', type: 'budget', asset: USDC_ASSET, max: '10000000000', window: '24h', scope: 'agent' },
  ],
};
const BOUND_NONCE = `0x${'0a'.repeat(32)}`;
const CHAINLESS_NONCE = `0x${'0b'.repeat(32)}`;

/** Base, where no authorization nonce is used yet. */
const baseReader = {
  supports: (chain: string) => chain === BASE,
  async latestBlockTimestamp() { return Math.floor(Date.now() / 1000); },
  async pinnedBlock() { return { tag: 'finalized', number: 1n, timestamp: Math.floor(Date.now() / 1000) }; },
  async authorizationState() { return false; },
} as unknown as ChainReader;

for (const store of ['sqlite', 'postgres'] as StoreKind[]) describe(`a chainless EIP-3009 authorization is in the dependency map and in revoke-all's report (${store})`, () => {
  let h: Harness;
  before(async () => { h = await startHarness({ store, chainReader: baseReader }); });
  after(async () => h.close());

  test('listed as an eip3009.authorization grant (live on the chain it names), and revoke-all reports its cancellation on every chain', async () => {
    const { agent, token } = await provisionAgent(h, { policy, actions: ['evm.typed_data'] });
    const validBefore = Math.floor(Date.now() / 1000) + 30 * 24 * 3600;
    const bound = await h.call('POST', '/v1/sign/typed-data', { token, body: usdcAuthorization(agent.address, ALICE, 1_000_000n, validBefore, BOUND_NONCE) });
    assert.equal(bound.status, 200, JSON.stringify(bound.body));
    const { typedData } = usdcAuthorization(agent.address, ALICE, 800_000_000n, validBefore, CHAINLESS_NONCE);
    const { chainId: _chainId, ...domain } = typedData.domain;
    const chainless = await h.call('POST', '/v1/sign/typed-data', { token, body: { chainId: 8453, typedData: { ...typedData, domain } } });
    assert.equal(chainless.status, 200, JSON.stringify(chainless.body));
    assert.equal(chainless.body.paymentId, undefined, 'charged when signed, not held as a payment');

    const map = await h.admin('GET', `/v1/agents/${agent.id}/dependencies?reconcile=true`);
    assert.equal(map.status, 200, JSON.stringify(map.body));
    assert.deepEqual(map.body.authorizations.map((a: { nonce: string }) => a.nonce), [BOUND_NONCE]);
    assert.deepEqual(map.body.grants.map(({ kind, auditSeq, chain, token: t, contract, owner, spender, amount, unlimited, deadline, nonce, live }: Record<string, unknown>) => ({ kind, auditSeq, chain, token: t, contract, owner, spender, amount, unlimited, deadline, nonce, live })), [{
      kind: 'eip3009.authorization', auditSeq: chainless.body.auditSeq, chain: BASE, token: USDC, contract: USDC, owner: agent.address.toLowerCase(), spender: ALICE,
      amount: '800000000', unlimited: false, deadline: validBefore, nonce: CHAINLESS_NONCE, live: true,
    }]);
    assert.equal(map.body.grants[0].evidence.reason, 'authorization_unused');

    const report = await h.admin('POST', `/v1/agents/${agent.id}/revoke-all`);
    assert.equal(report.status, 200, JSON.stringify(report.body));
    const ref = { auditSeq: chainless.body.auditSeq, index: 0, kind: 'eip3009.authorization' };
    // Its cancellation is signed under the same chainless domain, which the lifecycle path does not sign: reported
    // with what to sign, on the chain it names and on every other, never dropped and never sent to fail.
    const mine = report.body.unplanned.filter((u: { grants: unknown[] }) => JSON.stringify(u.grants) === JSON.stringify([ref]));
    assert.deepEqual(mine.map((u: { reason: string }) => u.reason).sort(), ['chainless_cancel_unsigned', 'chainless_other_chains']);
    const unsigned = mine.find((u: { reason: string }) => u.reason === 'chainless_cancel_unsigned');
    assert.match(unsigned.message, new RegExp(`nonce ${CHAINLESS_NONCE}.*${BASE}`));
    assert.deepEqual(report.body.steps.flatMap((s: { grants: unknown[] }) => s.grants).filter((g: { kind: string }) => g.kind === 'eip3009.authorization' && !('paymentId' in g)), []);
    // The chain-bound one is still planned as before (no RPC to send it here: failed with a code, not dropped).
    assert.deepEqual(report.body.steps.map((s: { grants: { paymentId?: string }[]; chain: string }) => [s.chain, s.grants.length, typeof s.grants[0]!.paymentId]), [[BASE, 1, 'string']]);
  });
});
