// Child sessions through HTTP, on both stores: an agent derives narrower sessions for its sub-agents. A child can
// never exceed its parent on any axis (actions, chains, budgets, expiry), not when created and not when used,
// concurrently included; revoking a parent stops every descendant at the very next request.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BITCOIN_CHAINS, bitcoinAsset } from '@airlock/core';
import { LightningNetwork, SimulatedBackend } from '../../../testing/lightning-network.ts';
import { ALICE, BASE, USDC_ASSET, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';

const USDC = (units: number) => String(units * 1_000_000);

async function derive(h: Harness, token: string, body: Record<string, unknown>) {
  return h.call('POST', '/v1/session/children', { token, body });
}

async function deriveOk(h: Harness, token: string, body: Record<string, unknown> = {}): Promise<{ token: string; session: any }> {
  const r = await derive(h, token, body);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
}

async function budgetsOf(h: Harness, token: string): Promise<any[]> {
  const r = await h.call('GET', '/v1/session/budgets', { token });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.budgets;
}

const sign = (h: Harness, token: string, units: number, nonce: number) => h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, BigInt(units) * 1_000_000n, nonce) });

async function auditOf(h: Harness, type: string): Promise<any[]> {
  const r = await h.admin('GET', `/v1/audit?type=${type}&limit=1000`);
  assert.equal(r.status, 200);
  return r.body.entries;
}

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`child sessions (${store})`, () => {
    test('a child derives with the parent as default, is audited, and operators see the tree', async () => {
      const h = await startHarness({ store });
      try {
        const parent = await provisionAgent(h, { policy: usdcPolicy(), actions: ['evm.transaction', 'evm.typed_data'], chains: [BASE], budgets: [{ asset: USDC_ASSET, max: USDC(10), window: '24h' }] });
        const child = await deriveOk(h, parent.token, { actions: ['evm.transaction'], budgets: [{ asset: USDC_ASSET, max: USDC(4), window: '1h' }], label: 'sub-agent 1' });
        assert.equal(child.session.parentId, parent.session.id);
        assert.deepEqual(child.session.scope, { actions: ['evm.transaction'], chains: [BASE], budgets: [{ asset: USDC_ASSET, max: USDC(4), window: '1h' }] });
        assert.equal(child.session.expiresAt, parent.session.expiresAt, 'no expiry asked: the parent\'s');
        const me = await h.call('GET', '/v1/session', { token: child.token });
        assert.equal(me.status, 200);
        assert.equal(me.body.session.parentId, parent.session.id);
        assert.equal(me.body.agent.id, parent.agent.id, 'the same agent, the same key');

        const listed = await h.admin('GET', `/v1/sessions?agent=${parent.agent.name}`);
        assert.deepEqual(listed.body.sessions.map((s: any) => [s.id, s.parentId ?? null]).sort(), [[parent.session.id, null], [child.session.id, parent.session.id]].sort());
        const children = await h.call('GET', '/v1/session/children', { token: parent.token });
        assert.deepEqual(children.body.sessions.map((s: any) => s.id), [child.session.id]);

        const [derived] = await auditOf(h, 'session.derived');
        assert.equal(derived.actor, 'agent');
        assert.equal(derived.sessionId, parent.session.id);
        assert.equal(derived.decision, 'allow');
        assert.equal(derived.data.childId, child.session.id);
        assert.equal(derived.data.depth, 1);
        assert.ok(!JSON.stringify(derived).includes(child.token.split('.').pop()!), 'the token is never in the audit log');
      } finally {
        await h.close();
      }
    });

    test('a child wider than its parent on any axis is refused with session_not_narrower naming the axis; nothing is created', async () => {
      const h = await startHarness({ store });
      try {
        const parent = await provisionAgent(h, { policy: usdcPolicy(), actions: ['evm.transaction'], chains: [BASE], budgets: [{ asset: USDC_ASSET, max: USDC(10), window: '24h' }], ttl: '1h' });
        // The parent spends 4 of its 10: 6 are left for any child.
        assert.equal((await sign(h, parent.token, 4, 0)).status, 200);
        const attempts: [string, Record<string, unknown>][] = [
          ['actions', { actions: ['evm.transaction', 'evm.typed_data'] }],
          ['chains', { chains: ['eip155:1'] }],
          ['chains', { chains: [] }],
          ['budgets', { budgets: [{ asset: USDC_ASSET, max: USDC(7), window: '1h' }] }],
          // The same asset with its address in capitals (an asset id in capitals throughout is no CAIP-19 id: 400).
          ['budgets', { budgets: [{ asset: USDC_ASSET.slice(0, -40) + USDC_ASSET.slice(-40).toUpperCase(), max: USDC(7), window: '30d' }] }],
          ['expiry', { ttlSeconds: 2 * 3600 }],
          ['expiry', { expiresAt: new Date(Date.now() + 2 * 3600_000).toISOString() }],
        ];
        for (const [axis, body] of attempts) {
          const r = await derive(h, parent.token, body);
          assert.equal(r.status, 403, `${axis}: ${JSON.stringify(r.body)}`);
          assert.equal(r.body.error.code, 'session_not_narrower');
          assert.equal(r.body.error.details.axis, axis, JSON.stringify(r.body));
        }
        const over = await derive(h, parent.token, { budgets: [{ asset: USDC_ASSET, max: USDC(7), window: '1h' }] });
        assert.deepEqual({ limit: over.body.error.details.limit, used: over.body.error.details.used, requested: over.body.error.details.requested }, { limit: USDC(10), used: USDC(4), requested: USDC(7) });
        // Exactly what is left is allowed.
        await deriveOk(h, parent.token, { budgets: [{ asset: USDC_ASSET, max: USDC(6), window: '1h' }] });

        const sessions = await h.admin('GET', `/v1/sessions?agent=${parent.agent.name}&all=true`);
        assert.equal(sessions.body.sessions.length, 2, 'no refused child was created');
        const refusals = (await auditOf(h, 'session.derived')).filter((e) => e.decision === 'deny');
        assert.equal(refusals.length, attempts.length + 1);
        assert.ok(refusals.every((e) => e.data.errorCode === 'session_not_narrower'));

        // Bad input: a clear code, nothing created.
        for (const body of [{ ttlSeconds: 60, expiresAt: new Date(Date.now() + 60_000).toISOString() }, { ttlSeconds: 0 }, { expiresAt: 'yesterday' }, { actions: ['evm.launch_missiles'] }, { budgets: [{ asset: USDC_ASSET, max: '-1', window: '1h' }] }, { scope: {} }]) {
          const r = await derive(h, parent.token, body);
          assert.equal(r.status, 400, JSON.stringify(body));
          assert.equal(r.body.error.code, 'invalid_request', JSON.stringify(r.body));
        }
        assert.equal((await h.admin('GET', `/v1/sessions?agent=${parent.agent.name}&all=true`)).body.sessions.length, 2);
      } finally {
        await h.close();
      }
    });

    test("a child's spending is charged to its parent: the parent's remaining goes down and its budget refuses both", async () => {
      const h = await startHarness({ store });
      try {
        const parent = await provisionAgent(h, { policy: usdcPolicy(), actions: ['evm.transaction'], budgets: [{ asset: USDC_ASSET, max: USDC(5), window: '24h' }] });
        const child = await deriveOk(h, parent.token);
        for (let i = 0; i < 3; i++) assert.equal((await sign(h, child.token, 1, i)).status, 200);
        assert.deepEqual((await budgetsOf(h, parent.token)).map((b) => [b.sessionId, b.used, b.remaining]), [[parent.session.id, USDC(3), USDC(2)]]);
        // The child sees its parent's budget as its own ceiling.
        assert.deepEqual((await budgetsOf(h, child.token)).map((b) => [b.sessionId, b.remaining]), [[parent.session.id, USDC(2)]]);
        assert.equal((await sign(h, parent.token, 2, 3)).status, 200);
        const parentRefused = await sign(h, parent.token, 1, 4);
        assert.equal(parentRefused.status, 403);
        assert.deepEqual(parentRefused.body.error.violations.map((v: any) => [v.rule, v.code, v.used]), [['session/budget-0', 'budget_exceeded', USDC(5)]]);
        const childRefused = await sign(h, child.token, 1, 5);
        assert.equal(childRefused.status, 403);
        assert.deepEqual(childRefused.body.error.violations.map((v: any) => [v.rule, v.code]), [[`session/${parent.session.id}/budget-0`, 'budget_exceeded']]);
        // And a child derived now can have no budget above the nothing that is left.
        const late = await derive(h, parent.token, { budgets: [{ asset: USDC_ASSET, max: '1', window: '1h' }] });
        assert.equal(late.body.error.code, 'session_not_narrower');
      } finally {
        await h.close();
      }
    });

    test('two children spending at once (2 x 20 requests) never exceed the parent: exactly its budget is signed and charged', async () => {
      const h = await startHarness({ store });
      try {
        const parent = await provisionAgent(h, { policy: usdcPolicy(), actions: ['evm.transaction'], budgets: [{ asset: USDC_ASSET, max: USDC(15), window: '24h' }] });
        // Each child may spend up to 12 on its own; together they share the parent's 15.
        const a = await deriveOk(h, parent.token, { budgets: [{ asset: USDC_ASSET, max: USDC(12), window: '24h' }] });
        const b = await deriveOk(h, parent.token, { budgets: [{ asset: USDC_ASSET, max: USDC(12), window: '24h' }] });
        const results = await Promise.all(Array.from({ length: 40 }, (_, i) => sign(h, i % 2 ? b.token : a.token, 1, i)));
        const signed = results.filter((r) => r.status === 200);
        assert.equal(signed.length, 15, 'the parent budget, to the unit');
        for (const r of results.filter((x) => x.status !== 200)) {
          assert.equal(r.status, 403);
          assert.ok(r.body.error.violations.every((v: any) => v.code === 'budget_exceeded'), JSON.stringify(r.body));
        }
        const [parentBudget] = await budgetsOf(h, parent.token);
        assert.deepEqual([parentBudget.used, parentBudget.remaining], [USDC(15), '0']);
        const usedA = BigInt((await budgetsOf(h, a.token)).find((x) => x.sessionId === a.session.id).used);
        const usedB = BigInt((await budgetsOf(h, b.token)).find((x) => x.sessionId === b.session.id).used);
        assert.equal(usedA + usedB, 15_000_000n, 'what the children were charged adds up to what the parent was charged');
        assert.ok(usedA <= 12_000_000n && usedB <= 12_000_000n);
        const allowed = (await h.admin('GET', '/v1/audit?decision=allow&type=sign.request&limit=1000')).body.entries;
        assert.equal(allowed.length, 15, 'one allow entry per signature');
        assert.equal((await h.admin('POST', '/v1/audit/verify')).body.ok, true);
      } finally {
        await h.close();
      }
    });

    test("revoking a parent refuses its child's and grandchild's very next request, in one audited cascade", async () => {
      const h = await startHarness({ store });
      try {
        const parent = await provisionAgent(h, { policy: usdcPolicy(), actions: ['evm.transaction'] });
        const child = await deriveOk(h, parent.token);
        const grandchild = await deriveOk(h, child.token);
        assert.equal(grandchild.session.parentId, child.session.id);
        // Both credentials are warm in the signing routes' cache.
        assert.equal((await sign(h, child.token, 1, 0)).status, 200);
        assert.equal((await sign(h, grandchild.token, 1, 1)).status, 200);

        const revoked = await h.admin('POST', `/v1/sessions/${parent.session.id}/revoke`);
        assert.equal(revoked.status, 200);
        for (const token of [child.token, grandchild.token]) {
          const r = await sign(h, token, 1, 2);
          assert.equal(r.status, 401);
          assert.equal(r.body.error.code, 'session_revoked');
          assert.equal((await h.call('GET', '/v1/session', { token })).body.error.code, 'session_revoked');
        }
        const entry = (await auditOf(h, 'session.revoked')).at(-1);
        assert.equal(entry.data.sessionId, parent.session.id);
        assert.deepEqual([...entry.data.descendants].sort(), [child.session.id, grandchild.session.id].sort());
        const all = (await h.admin('GET', `/v1/sessions?agent=${parent.agent.name}&all=true`)).body.sessions;
        assert.ok(all.every((s: any) => s.revokedAt === revoked.body.revokedAt), 'the whole tree revoked at one time');
      } finally {
        await h.close();
      }
    });

    test('a child that escaped a cascade (derived while its parent was being revoked) is still refused: every ancestor is re-read', async () => {
      const h = await startHarness({ store });
      try {
        const parent = await provisionAgent(h, { policy: usdcPolicy(), actions: ['evm.transaction'] });
        const child = await deriveOk(h, parent.token);
        assert.equal((await sign(h, child.token, 1, 0)).status, 200);
        // Revoked by another instance (this one's credential cache is not told; the child's entry stays warm).
        await h.airlock.store.revokeSession(parent.session.id, Date.now());
        // What a derivation committing after the revocation's cascade would leave: a live child of a revoked parent.
        await (h.airlock.store as unknown as { rawExec(sql: string): Promise<void> }).rawExec(`UPDATE sessions SET revoked_at = NULL WHERE id = '${child.session.id}'`);
        const r = await sign(h, child.token, 1, 1);
        assert.equal(r.status, 401);
        assert.equal(r.body.error.code, 'session_revoked');
        assert.equal((await h.call('GET', '/v1/session', { token: child.token })).body.error.code, 'session_revoked');
        assert.equal((await derive(h, child.token, {})).body.error.code, 'session_revoked');
      } finally {
        await h.close();
      }
    });

    test('an expired parent takes its children with it; a child cannot derive a wider grandchild; depth is limited', async () => {
      const h = await startHarness({ store, manualClock: true });
      try {
        const parent = await provisionAgent(h, { policy: usdcPolicy(), actions: ['evm.transaction', 'evm.typed_data'], budgets: [{ asset: USDC_ASSET, max: USDC(10), window: '24h' }], ttl: '1h' });
        const child = await deriveOk(h, parent.token, { actions: ['evm.transaction'], budgets: [{ asset: USDC_ASSET, max: USDC(3), window: '24h' }] });
        const wider = [
          ['actions', { actions: ['evm.typed_data'] }],
          ['budgets', { budgets: [{ asset: USDC_ASSET, max: USDC(4), window: '24h' }] }],
        ] as const;
        for (const [axis, body] of wider) {
          const r = await derive(h, child.token, body);
          assert.equal(r.body.error.code, 'session_not_narrower');
          assert.equal(r.body.error.details.axis, axis);
        }
        // Depth: parent (0) -> 1 -> 2 -> 3 -> 4, and no fifth level.
        let token = child.token;
        for (let depth = 2; depth <= 4; depth++) token = (await deriveOk(h, token)).token;
        const deep = await derive(h, token, {});
        assert.equal(deep.status, 403);
        assert.equal(deep.body.error.code, 'session_depth_exceeded');

        assert.equal((await sign(h, child.token, 1, 0)).status, 200);
        h.clock!.advance(3600_000);
        const r = await sign(h, child.token, 1, 1);
        assert.equal(r.status, 401);
        assert.equal(r.body.error.code, 'session_expired');
      } finally {
        await h.close();
      }
    });

    test("attacks: an agent cannot list or revoke another agent's sessions, nor a child its parent or sibling", async () => {
      const h = await startHarness({ store });
      try {
        const alice = await provisionAgent(h, { policy: usdcPolicy(), actions: ['evm.transaction'] });
        const mallory = await provisionAgent(h, { policy: usdcPolicy(), actions: ['evm.transaction'] });
        const child1 = await deriveOk(h, alice.token);
        const child2 = await deriveOk(h, alice.token);
        const attempts: [string, string][] = [
          [mallory.token, child1.session.id],
          [mallory.token, alice.session.id],
          [child1.token, alice.session.id],
          [child1.token, child2.session.id],
          [child1.token, child1.session.id],
        ];
        for (const [token, id] of attempts) {
          const r = await h.call('POST', `/v1/session/children/${id}/revoke`, { token });
          assert.equal(r.status, 404, JSON.stringify(r.body));
          assert.equal(r.body.error.code, 'not_found');
        }
        assert.deepEqual((await h.call('GET', '/v1/session/children', { token: mallory.token })).body.sessions, []);
        assert.deepEqual((await h.call('GET', '/v1/session/children', { token: child1.token })).body.sessions, []);
        // Nothing was revoked by any of it.
        for (const token of [alice.token, child1.token, child2.token]) assert.equal((await sign(h, token, 1, 0)).status, 200);
        // An admin token is not a session: it cannot derive.
        assert.equal((await h.admin('POST', '/v1/session/children', {})).status, 403);

        // The parent revokes its own child: audited as the agent, the sibling untouched.
        const revoked = await h.call('POST', `/v1/session/children/${child1.session.id}/revoke`, { token: alice.token });
        assert.equal(revoked.status, 200);
        assert.ok(revoked.body.revokedAt);
        assert.equal((await sign(h, child1.token, 1, 1)).body.error.code, 'session_revoked');
        assert.equal((await sign(h, child2.token, 1, 1)).status, 200);
        const entry = (await auditOf(h, 'session.revoked')).at(-1);
        assert.deepEqual([entry.actor, entry.sessionId, entry.data.sessionId], ['agent', alice.session.id, child1.session.id]);
      } finally {
        await h.close();
      }
    });
  });
}

test('a session and everything derived from it share its request rate: children never multiply the per-session bucket', async () => {
  const h = await startHarness({ store: 'sqlite', manualClock: true, app: { sessionRate: { perSecond: 1, burst: 5 } } });
  try {
    const parent = await provisionAgent(h, { policy: usdcPolicy(), actions: ['evm.transaction'], chains: [BASE] });
    // Deriving takes from the parent's bucket (2 of its 5); a grandchild's derivation from the child's and the parent's (1).
    const a = await deriveOk(h, parent.token);
    const b = await deriveOk(h, parent.token);
    const grand = await deriveOk(h, a.token);
    // 2 tokens left for the whole tree, whoever asks: each child has a full bucket of its own, the parent's is the bound.
    const tokens = [a.token, b.token, grand.token, parent.token];
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await h.call('GET', '/v1/session', { token: tokens[i % tokens.length]! })).status);
    assert.deepEqual(statuses.filter((x) => x === 200).length, 2, statuses.join(','));
    const refused = await h.call('GET', '/v1/session', { token: b.token });
    assert.equal(refused.status, 429);
    assert.equal(refused.body.error.code, 'session_rate_limited');
    assert.equal(refused.body.error.details.sessionId, parent.session.id, 'names the bucket that is empty: the parent\'s');
    assert.equal(refused.body.error.details.rule, 'session_rate');
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);

    // Refilled: the signing routes (credentials from the cache) and the JSON-free GETs draw on the same bucket.
    h.clock!.advance(10_000);
    let signed = 0;
    let limited = 0;
    for (let i = 0; i < 10; i++) {
      const r = await h.call('POST', '/v1/sign/transaction', { token: i % 2 ? a.token : grand.token, body: usdcTransfer(ALICE, 1n, i) });
      if (r.status === 200) signed++;
      else {
        assert.equal(r.status, 429, JSON.stringify(r.body));
        assert.equal(r.body.error.code, 'session_rate_limited');
        limited++;
      }
    }
    assert.deepEqual([signed, limited], [5, 5], 'the parent\'s burst, not two or three of them');
    // The children spent the parent's rate: the parent is refused too, and a sibling that sent nothing.
    assert.equal((await h.call('GET', '/v1/session', { token: parent.token })).status, 429);
    assert.equal((await h.call('GET', '/v1/session', { token: b.token })).status, 429);
    // A session outside the tree is untouched.
    const other = await provisionAgent(h, { policy: usdcPolicy(), actions: ['evm.transaction'], chains: [BASE] });
    assert.equal((await h.call('GET', '/v1/session', { token: other.token })).status, 200);
    // A child still has its own bucket: it cannot take more than its burst of the parent's rate.
    h.clock!.advance(10_000);
    const own: number[] = [];
    for (let i = 0; i < 6; i++) own.push((await h.call('GET', '/v1/session', { token: b.token })).status);
    assert.deepEqual(own, [200, 200, 200, 200, 200, 429]);
    assert.equal((await h.call('GET', '/v1/session', { token: parent.token })).status, 429, 'and what it took is gone from the parent');
  } finally {
    await h.close();
  }
});

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`child session churn (${store})`, () => {
    test('GET /v1/session/children lists live sessions by default, all with includeInactive=true, paged by a cursor', async () => {
      const h = await startHarness({ store });
      try {
        const parent = await provisionAgent(h, { policy: usdcPolicy(), actions: ['evm.transaction'] });
        const revoked: string[] = [];
        for (let i = 0; i < 5; i++) {
          const c = await deriveOk(h, parent.token);
          assert.equal((await h.call('POST', `/v1/session/children/${c.session.id}/revoke`, { token: parent.token })).status, 200);
          revoked.push(c.session.id);
        }
        const live1 = await deriveOk(h, parent.token);
        const live2 = await deriveOk(h, parent.token);
        const grand = await deriveOk(h, live1.token);
        // A revoked child's subtree is not live either.
        const doomed = await deriveOk(h, parent.token);
        const doomedChild = await deriveOk(h, doomed.token);
        assert.equal((await h.call('POST', `/v1/session/children/${doomed.session.id}/revoke`, { token: parent.token })).status, 200);

        const listed = await h.call('GET', '/v1/session/children', { token: parent.token });
        assert.equal(listed.status, 200);
        assert.deepEqual(listed.body.sessions.map((s: any) => s.id), [live1.session.id, live2.session.id, grand.session.id]);
        assert.equal(listed.body.next, undefined);

        const all = await h.call('GET', '/v1/session/children?includeInactive=true', { token: parent.token });
        assert.deepEqual(all.body.sessions.map((s: any) => s.id), [...revoked, live1.session.id, live2.session.id, grand.session.id, doomed.session.id, doomedChild.session.id]);

        // Paged: 3 at a time, each page after the last, none twice, none skipped.
        const seen: string[] = [];
        let after: string | undefined;
        for (let pages = 0; pages < 10; pages++) {
          const r = await h.call('GET', `/v1/session/children?includeInactive=true&limit=3${after ? `&after=${encodeURIComponent(after)}` : ''}`, { token: parent.token });
          assert.equal(r.status, 200, JSON.stringify(r.body));
          assert.ok(r.body.sessions.length <= 3);
          seen.push(...r.body.sessions.map((s: any) => s.id));
          after = r.body.next;
          if (after === undefined) break;
        }
        assert.deepEqual(seen, all.body.sessions.map((s: any) => s.id));
        for (const q of ['limit=0', 'limit=1001', 'after=nonsense', 'includeInactive=yes']) {
          const r = await h.call('GET', `/v1/session/children?${q}`, { token: parent.token });
          assert.equal(r.status, 400, q);
          assert.equal(r.body.error.code, 'invalid_request', q);
        }
        // The child sees only its own subtree.
        assert.deepEqual((await h.call('GET', '/v1/session/children', { token: live1.token })).body.sessions.map((s: any) => s.id), [grand.session.id]);
      } finally {
        await h.close();
      }
    });

    test('derive counts only live children, and at most 1000 sessions are derived under an operator-issued session over its life (session_derivations_exceeded)', async () => {
      const h = await startHarness({ store });
      try {
        const parent = await provisionAgent(h, { policy: usdcPolicy(), actions: ['evm.transaction'] });
        // What 998 derive+revoke cycles leave behind (written directly: the cycles themselves are slow to run here).
        const now = Date.now();
        await h.airlock.store.transaction(async (tx) => {
          for (let i = 0; i < 998; i++) {
            await tx.createSession({
              id: `ses_churn${String(i).padStart(12, '0')}`, agentId: parent.agent.id, tokenHash: 'ab'.repeat(32), scope: { actions: ['evm.transaction'], chains: [], budgets: [] },
              parentId: parent.session.id, createdAt: now - 10_000 + i, expiresAt: Date.parse(parent.session.expiresAt), ...(i % 2 ? { revokedAt: now - 1 } : {}),
            });
          }
        }, { exclusive: true });
        // Half of those are revoked but 499 "live" ones are over the live limit: revoke them as an agent would.
        const live = (await h.call('GET', '/v1/session/children?limit=1000', { token: parent.token })).body.sessions;
        assert.equal(live.length, 499);
        for (const s of live) assert.equal((await h.call('POST', `/v1/session/children/${s.id}/revoke`, { token: parent.token })).status, 200);
        assert.deepEqual((await h.call('GET', '/v1/session/children', { token: parent.token })).body.sessions, [], 'no live child: the history is not listed');
        const history = await h.call('GET', '/v1/session/children?includeInactive=true', { token: parent.token });
        assert.equal(history.body.sessions.length, 100, 'one page');
        assert.ok(history.body.next);

        // 998 revoked children do not count against the 100 live ones; two more derivations reach the lifetime cap.
        const last1 = await deriveOk(h, parent.token);
        const last2 = await deriveOk(h, parent.token);
        assert.equal((await h.call('POST', `/v1/session/children/${last1.session.id}/revoke`, { token: parent.token })).status, 200);
        const refused = await derive(h, parent.token, {});
        assert.equal(refused.status, 403, JSON.stringify(refused.body));
        assert.equal(refused.body.error.code, 'session_derivations_exceeded');
        assert.equal(refused.body.error.details.limit, 1000);
        const denied = (await auditOf(h, 'session.derived')).filter((e) => e.decision === 'deny');
        assert.deepEqual(denied.map((e) => e.data.errorCode), ['session_derivations_exceeded']);
        assert.equal((await h.call('GET', '/v1/session/children', { token: parent.token })).body.sessions.length, 1, 'nothing was created');
        // The cap is per tree: the live child cannot derive its own either.
        const fromChild = await derive(h, last2.token, {});
        assert.equal(fromChild.status, 403, JSON.stringify(fromChild.body));
        assert.equal(fromChild.body.error.code, 'session_derivations_exceeded');
      } finally {
        await h.close();
      }
    });

    // Found by review: a per-parent cap multiplies with depth (derive-and-revoke through intermediate children).
    test('the lifetime cap counts the whole tree: derivations through intermediate children count against the operator-issued session', async () => {
      const h = await startHarness({ store });
      try {
        const parent = await provisionAgent(h, { policy: usdcPolicy(), actions: ['evm.transaction'] });
        const child = await deriveOk(h, parent.token);
        const grand = await deriveOk(h, child.token);
        // What 997 derive+revoke cycles of the grandchild leave behind: 999 sessions under the root in all.
        const now = Date.now();
        await h.airlock.store.transaction(async (tx) => {
          for (let i = 0; i < 997; i++) {
            await tx.createSession({
              id: `ses_deep${String(i).padStart(12, '0')}`, agentId: parent.agent.id, tokenHash: 'ab'.repeat(32), scope: { actions: ['evm.transaction'], chains: [], budgets: [] },
              parentId: grand.session.id, createdAt: now - 10_000 + i, expiresAt: Date.parse(parent.session.expiresAt), revokedAt: now - 1,
            });
          }
        }, { exclusive: true });
        // Each of these sessions has few children of its own; the tree has 999: one more derivation, from anywhere in it.
        const last = await deriveOk(h, child.token);
        for (const [who, token] of [['root', parent.token], ['child', child.token], ['grandchild', grand.token], ['new child', last.token]] as const) {
          const refused = await derive(h, token, {});
          assert.equal(refused.status, 403, `${who}: ${JSON.stringify(refused.body)}`);
          assert.equal(refused.body.error.code, 'session_derivations_exceeded', who);
          assert.equal(refused.body.error.details.limit, 1000);
        }
        const denied = (await auditOf(h, 'session.derived')).filter((e) => e.decision === 'deny');
        assert.equal(denied.length, 4);
        assert.equal((await h.call('GET', '/v1/session/children?includeInactive=true&limit=1000', { token: parent.token })).body.sessions.length, 1000, 'nothing more was created');
      } finally {
        await h.close();
      }
    });
  });
}

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  test(`a child's Lightning payment is charged to its parent what it really cost (${store})`, async () => {
    const BTC = bitcoinAsset(BITCOIN_CHAINS.regtest);
    const ln = new LightningNetwork();
    ln.feeBaseMsat = 10n;
    const shop = ln.payee();
    const h = await startHarness({ store, lightningBackend: new SimulatedBackend(ln), config: { lightning: { backend: 'lnd', network: 'regtest', payTimeoutSeconds: 2, notFoundGraceSeconds: 60, defaultFeePercent: 1 } } });
    try {
      const policy = { version: 1, rules: [{ type: 'allow', name: 'pay', match: { actions: ['lightning.pay'] } }, { type: 'lightning', name: 'fees', max_routing_fee_percent: 10, min_expiry_remaining: '30s', max_expiry: '2h' }] };
      const parent = await provisionAgent(h, { policy, actions: ['lightning.pay'], budgets: [{ asset: BTC, max: '60000', window: '24h' }] });
      const child = await deriveOk(h, parent.token);
      const paid = await h.call('POST', '/v1/lightning/pay', { token: child.token, body: { invoice: shop.invoice({ amountMsat: 50_000n }).invoice } });
      assert.equal(paid.status, 200, JSON.stringify(paid.body));
      const cost = 50_000n + ln.feeFor(50_000n);
      // The hold is gone; what stays on the parent's series is the final charge, amount plus the real fee.
      assert.deepEqual((await budgetsOf(h, parent.token)).map((b) => [b.used, b.remaining]), [[cost.toString(), (60_000n - cost).toString()]]);
      const refused = await h.call('POST', '/v1/lightning/pay', { token: parent.token, body: { invoice: shop.invoice({ amountMsat: 20_000n }).invoice } });
      assert.equal(refused.status, 403);
      assert.deepEqual(refused.body.error.violations.map((v: any) => [v.rule, v.code]), [['session/budget-0', 'budget_exceeded']]);
    } finally {
      await h.close();
    }
  });
}
