// Child sessions through the SDK, against the real HTTP app: an agent derives a session for a sub-agent, the
// sub-agent signs through a viem account built from it, and the parent's budget and revocation bound it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Hex } from 'viem';
import { ALICE, USDC, USDC_ASSET, provisionAgent, startHarness, usdcPolicy, type Harness } from '../../server/src/testing/harness.ts';
import { airlockAccount } from './account.ts';
import { AirlockApiError, AirlockPolicyError } from './http.ts';
import { findAirlockError } from './find-airlock-error.ts';
import { deriveChildSession, listChildSessions, revokeChildSession, sessionBudgets } from './sessions.ts';

/** A fetch that goes through the harness's app (same routes, auth and schemas as over a socket). */
const appFetch = (h: Harness): typeof fetch => (async (input: string | URL | Request, init?: RequestInit) => {
  const req = new Request(input, init);
  const url = new URL(req.url);
  const token = req.headers.get('authorization')?.replace(/^Bearer /, '');
  const text = await req.text();
  const r = await h.call(req.method, url.pathname + url.search, { ...(token ? { token } : {}), ...(text ? { raw: text } : {}) });
  return new Response(r.body === undefined ? '' : JSON.stringify(r.body), { status: r.status });
}) as typeof fetch;

const transfer = (units: number, nonce: number) => ({
  type: 'eip1559' as const, chainId: 8453, to: USDC as Hex, nonce, gas: 60_000n, maxFeePerGas: 1_000_000_000n, maxPriorityFeePerGas: 1_000_000n,
  data: `0xa9059cbb${ALICE.slice(2).padStart(64, '0')}${(BigInt(units) * 1_000_000n).toString(16).padStart(64, '0')}` as Hex,
});

test('deriveChildSession: a sub-agent signs through a viem account on a child session, bounded by its parent and revoked by it', async () => {
  const h = await startHarness();
  try {
    const { token, session } = await provisionAgent(h, { policy: usdcPolicy(), actions: ['evm.transaction', 'evm.message'], budgets: [{ asset: USDC_ASSET, max: '3000000', window: '24h' }] });
    const parent = { url: 'http://airlock.test', token, fetch: appFetch(h) };

    const wider = await deriveChildSession(parent, { budgets: [{ asset: USDC_ASSET, max: 4_000_000n, window: '1h' }] }).catch((e: unknown) => e);
    assert.ok(wider instanceof AirlockApiError);
    assert.deepEqual([wider.code, wider.details?.axis], ['session_not_narrower', 'budgets']);

    const child = await deriveChildSession(parent, { actions: ['evm.transaction'], budgets: [{ asset: USDC_ASSET, max: 2_000_000n, window: '1h' }], ttlSeconds: 600, label: 'worker' });
    assert.equal(child.session.parentId, session.id);
    assert.deepEqual((await listChildSessions(parent)).map((s) => s.id), [child.session.id]);

    const account = await airlockAccount(child.options);
    for (let nonce = 0; nonce < 2; nonce++) assert.match(await account.signTransaction(transfer(1, nonce)), /^0x02/);
    const over = await account.signTransaction(transfer(1, 2)).catch((e: unknown) => e);
    const policy = findAirlockError(over, AirlockPolicyError);
    assert.ok(policy, String(over));
    assert.deepEqual(policy.violations.map((v) => [v.rule, v.code]), [['session/budget-0', 'budget_exceeded']], "the child's own budget");

    assert.deepEqual((await sessionBudgets(parent)).map((b) => [b.sessionId, b.used, b.remaining]), [[session.id, 2_000_000n, 1_000_000n]], "the child's spending is the parent's");
    assert.deepEqual((await sessionBudgets(child.http)).map((b) => b.sessionId), [child.session.id, session.id]);

    assert.ok((await revokeChildSession(parent, child.session.id)).revokedAt);
    // Live ones by default (none now); with includeInactive the revoked child too, the pages followed to the end.
    assert.deepEqual(await listChildSessions(parent), []);
    assert.deepEqual((await listChildSessions(parent, { includeInactive: true })).map((s) => s.id), [child.session.id]);
    const revoked = await account.signTransaction(transfer(1, 3)).catch((e: unknown) => e);
    assert.equal(findAirlockError(revoked)?.code, 'session_revoked');
  } finally {
    await h.close();
  }
});
