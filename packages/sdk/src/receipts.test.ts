// The SDK fetches a signature's audit receipt and verifies its inclusion proof itself (against the audit
// key the agent was given), through the real HTTP app.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ALICE, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness } from '../../server/src/testing/harness.ts';
import { AirlockApiError } from './http.ts';
import { fetchAuditReceipt, verifyAuditReceipt, type VerifiedAuditReceipt } from './receipts.ts';

/** A fetch that goes through the harness's app (same routes, auth and schemas as over a socket). */
const harnessFetch = (h: Harness, token: string): typeof fetch => (async (url: string | URL | Request, init?: RequestInit) => {
  const u = new URL(String(url));
  const r = await h.call(init?.method ?? 'GET', u.pathname + u.search, { token });
  return new Response(JSON.stringify(r.body ?? {}), { status: r.status });
}) as typeof fetch;

test('fetchAuditReceipt verifies a signature\'s receipt; a wrong audit key, a changed receipt and another agent are refused', async () => {
  const h = await startHarness();
  try {
    const { token } = await provisionAgent(h, { policy: usdcPolicy() });
    const signed = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000n) });
    const receipt = signed.body.receipt;
    const auditPublicKey = await h.airlock.audit.auditPublicKey();
    const options = { url: 'http://airlock.test', token, auditPublicKey, fetch: harnessFetch(h, token) };
    await assert.rejects(fetchAuditReceipt(options, receipt.auditSeq, receipt), (e: unknown) => e instanceof AirlockApiError && e.code === 'conflict');
    await h.airlock.audit.checkpoint();

    const verified: VerifiedAuditReceipt = await fetchAuditReceipt(options, receipt.auditSeq, receipt);
    assert.equal(verified.treeHead.publicKey, auditPublicKey);
    assert.equal(verifyAuditReceipt(verified, 'ab'.repeat(32)), false, 'another audit key');
    assert.equal(verifyAuditReceipt(verified, auditPublicKey, { ...receipt, leafHash: '00'.repeat(32) }), false, 'not the receipt the signature came with');
    assert.equal(verifyAuditReceipt({ ...verified, proof: verified.proof.slice(1) }, auditPublicKey), false, 'a shortened proof');

    const other = await provisionAgent(h, { policy: usdcPolicy() });
    await assert.rejects(fetchAuditReceipt({ ...options, token: other.token, fetch: harnessFetch(h, other.token) }, receipt.auditSeq), (e: unknown) => e instanceof AirlockApiError && e.code === 'not_found');
  } finally {
    await h.close();
  }
});
