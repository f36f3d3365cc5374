// Policy rules with `scope: session` against derived sessions, through HTTP on both stores. A session holder can
// derive children (`POST /v1/session/children`, `{}`) at will, so "10 USDC per session" must bound the session
// together with everything derived from it: a child's request is judged on its own series and on each ancestor's
// (every one of which its charges also go to), not on a fresh window of its own. The same for rate limits.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ALICE, BASE, USDC_ASSET, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';

const USDC = (units: number) => BigInt(units) * 1_000_000n;

async function deriveOk(h: Harness, token: string): Promise<{ token: string; session: { id: string } }> {
  const r = await h.call('POST', '/v1/session/children', { token, body: {} });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
}

const sign = (h: Harness, token: string, units: number, nonce: number) => h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, USDC(units), nonce) });

/** The refusal's violations as `rule code`, with the message (which names the series judged). */
function refusal(res: { status: number; body: any }): { rule: string; code: string; message: string }[] {
  assert.equal(res.status, 403, JSON.stringify(res.body));
  return res.body.error.violations.map((v: any) => ({ rule: v.rule, code: v.code, message: v.message }));
}

/** usdcPolicy plus the given rules (its agent-scope daily budget, 500 USDC, stays out of the way). */
function policyWith(...rules: Record<string, unknown>[]) {
  const policy = usdcPolicy();
  policy.rules.push(...(rules as never[]));
  return policy;
}

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`policy rules with scope session and derived sessions (${store})`, () => {
    test('budget scope session: children share the session\'s budget; deriving more children does not open fresh windows', async () => {
      const h = await startHarness({ store });
      try {
        const policy = policyWith({ name: 'per-session', type: 'budget', asset: USDC_ASSET, max: USDC(10).toString(), window: '24h', scope: 'session' });
        const parent = await provisionAgent(h, { policy, actions: ['evm.transaction'], chains: [BASE] });
        assert.equal((await sign(h, parent.token, 10, 0)).status, 200);
        assert.equal((await sign(h, parent.token, 1, 1)).status, 403, 'the session itself is full');

        // Each new child is refused: the parent's series (which every child's charges go to) is full.
        for (let i = 0; i < 3; i++) {
          const child = await deriveOk(h, parent.token);
          const [v, ...more] = refusal(await sign(h, child.token, 10, 2 + i));
          assert.equal(more.length, 0);
          assert.equal(v!.rule, 'agent/per-session');
          assert.equal(v!.code, 'budget_exceeded');
          assert.match(v!.message, new RegExp(`session:${parent.session.id}\\b`), 'names the ancestor series that is full');
          assert.doesNotMatch(v!.message, new RegExp(`session:${child.session.id}\\b`));
        }
      } finally {
        await h.close();
      }
    });

    test('budget scope session: siblings and grandchildren together stay within the session\'s max; each series on its own too', async () => {
      const h = await startHarness({ store });
      try {
        const policy = policyWith({ name: 'per-session', type: 'budget', asset: USDC_ASSET, max: USDC(10).toString(), window: '24h', scope: 'session' });
        const parent = await provisionAgent(h, { policy, actions: ['evm.transaction'], chains: [BASE] });
        const a = await deriveOk(h, parent.token);
        const b = await deriveOk(h, parent.token);
        assert.equal((await sign(h, a.token, 6, 0)).status, 200);
        // 6 + 6 > 10 on the parent's series, though b's own series is empty.
        const [v] = refusal(await sign(h, b.token, 6, 1));
        assert.match(v!.message, new RegExp(`session:${parent.session.id}\\b`));
        assert.equal((await sign(h, b.token, 4, 2)).status, 200, 'what is left of the parent\'s 10 fits');

        // A grandchild under a: a's series holds 6, the parent's 10: both are named when both would be exceeded.
        const grandchild = await deriveOk(h, a.token);
        const both = refusal(await sign(h, grandchild.token, 5, 3));
        assert.deepEqual(both.map((x) => x.code), ['budget_exceeded', 'budget_exceeded']);
        assert.match(both[0]!.message, new RegExp(`session:${a.session.id}\\b`));
        assert.match(both[1]!.message, new RegExp(`session:${parent.session.id}\\b`));
        assert.equal((await sign(h, parent.token, 1, 4)).status, 403, 'the parent has nothing left either');
      } finally {
        await h.close();
      }
    });

    test('rate_limit scope session: the session and its descendants share the count', async () => {
      const h = await startHarness({ store });
      try {
        const policy = policyWith({ name: 'per-session-rate', type: 'rate_limit', max: 2, window: '1h', scope: 'session' });
        const parent = await provisionAgent(h, { policy, actions: ['evm.transaction'], chains: [BASE] });
        assert.equal((await sign(h, parent.token, 1, 0)).status, 200);
        const child = await deriveOk(h, parent.token);
        assert.equal((await sign(h, child.token, 1, 1)).status, 200, 'the second request of the session\'s tree');
        for (const [i, token] of [child.token, (await deriveOk(h, parent.token)).token, parent.token].entries()) {
          const [v, ...more] = refusal(await sign(h, token, 1, 2 + i));
          assert.equal(more.length, 0);
          assert.deepEqual([v!.rule, v!.code], ['agent/per-session-rate', 'rate_limit_exceeded']);
          assert.match(v!.message, new RegExp(`^session:${parent.session.id}: 2 requests`));
        }
      } finally {
        await h.close();
      }
    });
  });
}
