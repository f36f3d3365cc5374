/**
 * The one contract every Store must pass (run by sqlite.test.ts and postgres.test.ts).
 * `open` must return a fresh, empty store each time; the suite migrates it and closes it.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AirlockError, AuditLogVerifier, COUNT_ASSET, GENESIS_HASH, GROUP_COMMIT_SIZE_BOUNDS, leafHash, MerkleFrontier, rangeNodes, rootAt, inclusionProof, verifyInclusion } from '@airlock/core';
import type { ApprovalVote, Approver, ApprovalRecord, AuditEntryInput, LedgerWrite, NewAgent, NonceClaim, PaymentRecord, Session, ShadowOutcome, ShadowPolicyRecord, Store, WindowQuery } from '@airlock/core';
import { DAI, generateCharges, LedgerModel, USDC } from './ledger-reference.test-suite.ts';
import { ASSETS_KEPT_PER_SERIES } from './shared/ledger-entries.ts';
import { runWebhookStoreContract } from './webhooks.contract.test-suite.ts';
import { runGrantStoreContract } from './grants.contract.test-suite.ts';
import { runAgentKeyStoreContract } from './agent-keys.contract.test-suite.ts';
import { runReleasedSignatureStoreContract } from './released-signatures.contract.test-suite.ts';
import { runThresholdBindingStoreContract } from './threshold-bindings.contract.test-suite.ts';

/** Concrete stores expose raw SQL for tests only (it is not on the port). */
interface RawExec {
  rawExec(sql: string): Promise<void>;
}

const fakeAddress = (accountIndex: number, keyIndex: number) =>
  `0x${accountIndex.toString(16).padStart(32, '0')}${keyIndex.toString(16).padStart(8, '0')}`;
const agentsNamed = (...names: string[]): NewAgent[] =>
  names.map((name, i) => ({ id: `ag_${name.padStart(16, '0').slice(-16)}${i}`, name, labels: { team: 'test' } }));

function code(e: unknown): string | undefined {
  return e instanceof AirlockError ? e.code : undefined;
}

async function rejectsWithCode(p: Promise<unknown>, expected: string): Promise<void> {
  await assert.rejects(p, (e) => {
    assert.equal(code(e), expected, `expected AirlockError(${expected}), got ${String(e)}`);
    return true;
  });
}

const BUDGET_SERIES = 'agent:ag_budget';
const BUDGET_LIMIT = 50;

/**
 * 200 concurrent read-check-append transactions spread over `stores` (one or several instances on
 * the same database). Each reads the window, yields, and appends only if under the limit: without
 * serialisation several would read the same total and overshoot.
 */
export async function runConcurrentBudget(stores: Store[], attempts = 200): Promise<{ appended: number; total: number }> {
  const query: WindowQuery = { series: BUDGET_SERIES, asset: '*', sinceMs: 0 };
  const results = await Promise.all(
    Array.from({ length: attempts }, (_, i) =>
      stores[i % stores.length]!.transaction(async (tx) => {
        const [total] = await tx.windowTotals([query]);
        await new Promise((resolve) => setImmediate(resolve)); // give other callers every chance to interleave
        if (total!.count >= BUDGET_LIMIT) return false;
        await tx.appendLedger([{ series: BUDGET_SERIES, asset: '*', amount: 1n, count: 1 }], 1_000 + i, 0);
        return true;
      }),
    ),
  );
  const [final] = await stores[0]!.transaction((tx) => tx.windowTotals([query]));
  return { appended: results.filter(Boolean).length, total: final!.count };
}

export function runStoreContract(name: string, open: () => Promise<Store>): void {
  describe(`Store contract: ${name}`, () => {
    const opened: Store[] = [];
    async function fresh(): Promise<Store & Partial<RawExec>> {
      const store = await open();
      opened.push(store);
      await store.migrate();
      return store as Store & Partial<RawExec>;
    }
    after(async () => {
      for (const s of opened) await s.close().catch(() => undefined);
    });

    runWebhookStoreContract(fresh);
    runGrantStoreContract(fresh);
    runAgentKeyStoreContract(fresh);
    runReleasedSignatureStoreContract(fresh);
    runThresholdBindingStoreContract(fresh);

    test('migrate is idempotent and meta keeps the first value written by initMeta', async () => {
      const store = await fresh();
      await store.migrate();
      assert.equal(await store.getMeta('vault_id'), undefined);
      assert.equal(await store.initMeta('vault_id', 'v1'), 'v1');
      assert.equal(await store.initMeta('vault_id', 'v2'), 'v1');
      await store.setMeta('vault_id', 'v3');
      assert.equal(await store.getMeta('vault_id'), 'v3');
    });

    test('compareAndSetMeta replaces a meta value only while it holds the expected one, and rolls back with its transaction', async () => {
      const store = await fresh();
      await store.setMeta('admin_token_hash', 'h1');
      assert.equal(await store.transaction((tx) => tx.compareAndSetMeta('admin_token_hash', 'h0', 'hx')), false);
      assert.equal(await store.getMeta('admin_token_hash'), 'h1');
      assert.equal(await store.transaction((tx) => tx.compareAndSetMeta('admin_token_hash', 'h1', 'h2')), true);
      assert.equal(await store.getMeta('admin_token_hash'), 'h2');
      // The second of two rotations that both read h2 loses.
      assert.equal(await store.transaction((tx) => tx.compareAndSetMeta('admin_token_hash', 'h1', 'h3')), false);
      await assert.rejects(store.transaction(async (tx) => {
        assert.equal(await tx.compareAndSetMeta('admin_token_hash', 'h2', 'h4'), true);
        throw new Error('abort');
      }), /abort/);
      assert.equal(await store.getMeta('admin_token_hash'), 'h2');
      assert.equal(await store.transaction((tx) => tx.compareAndSetMeta('no_such_key', 'h2', 'h5')), false);
      assert.equal(await store.getMeta('no_such_key'), undefined);
    });

    test('createAgents allocates consecutive account indexes and records the derived address', async () => {
      const store = await fresh();
      const created = await store.createAgents(agentsNamed('alpha', 'beta', 'gamma'), fakeAddress, 1000);
      assert.deepEqual(created.map((a) => a.accountIndex), [0, 1, 2]);
      assert.equal(created[1]!.address, fakeAddress(1, 0));
      assert.equal(created[0]!.status, 'active');
      const byName = await store.getAgent('beta');
      assert.deepEqual(byName, created[1]);
      assert.deepEqual(await store.getAgent(created[2]!.id), created[2]);
      assert.equal(await store.getAgent('nobody'), undefined);

      const more = await store.createAgents(agentsNamed('delta'), fakeAddress, 2000);
      assert.equal(more[0]!.accountIndex, 3);
    });

    test('a duplicate name fails the whole batch with conflict and allocates nothing', async () => {
      const store = await fresh();
      await store.createAgents(agentsNamed('alpha'), fakeAddress, 1000);
      await rejectsWithCode(store.createAgents(agentsNamed('new1', 'alpha', 'new2'), fakeAddress, 1000), 'conflict');
      await rejectsWithCode(store.createAgents(agentsNamed('dup', 'dup'), fakeAddress, 1000), 'conflict');
      assert.equal(await store.getAgent('new1'), undefined);
      const next = await store.createAgents(agentsNamed('after'), fakeAddress, 1000);
      assert.equal(next[0]!.accountIndex, 1, 'the failed batches must not consume indexes');
    });

    test('account indexes are never reused, and the store itself forbids deleting agents or changing an index', async () => {
      const store = await fresh();
      const [first] = await store.createAgents(agentsNamed('old'), fakeAddress, 1000);
      const retired = await store.setAgentStatus(first!.id, 'retired', 2000);
      assert.equal(retired.status, 'retired');
      assert.equal(retired.updatedAt, 2000);
      const [second] = await store.createAgents(agentsNamed('new'), fakeAddress, 3000);
      assert.equal(second!.accountIndex, 1);
      assert.ok(store.rawExec, 'concrete stores expose rawExec for this check');
      await assert.rejects(store.rawExec(`DELETE FROM agents WHERE id = '${first!.id}'`));
      await assert.rejects(store.rawExec(`UPDATE agents SET account_index = 7 WHERE id = '${first!.id}'`));
      await assert.rejects(store.rawExec('UPDATE account_counter SET next_index = 0'));
      assert.equal((await store.getAgent(first!.id))?.accountIndex, 0);
      await rejectsWithCode(store.setAgentStatus('ag_missing', 'frozen', 1), 'not_found');
    });

    test('listAgents orders by account index, filters by status and pages with an agent id cursor', async () => {
      const store = await fresh();
      const created = await store.createAgents(agentsNamed('a', 'b', 'c', 'd', 'e'), fakeAddress, 1000);
      await store.setAgentStatus(created[1]!.id, 'frozen', 1001);
      const page1 = await store.listAgents({ limit: 2 });
      assert.deepEqual(page1.map((a) => a.name), ['a', 'b']);
      const page2 = await store.listAgents({ limit: 2, after: page1[1]!.id });
      assert.deepEqual(page2.map((a) => a.name), ['c', 'd']);
      assert.deepEqual((await store.listAgents({ status: 'frozen' })).map((a) => a.name), ['b']);
      assert.deepEqual((await store.listAgents({ status: 'active', after: created[0]!.id })).map((a) => a.name), ['c', 'd', 'e']);
    });

    test('createAgents provisions 10,000 agents in one batch quickly', async () => {
      const store = await fresh();
      const batch = Array.from({ length: 10_000 }, (_, i) => ({ id: `ag_${i.toString(16).padStart(16, '0')}`, name: `bulk-${i}`, labels: {} }));
      const started = performance.now();
      const created = await store.createAgents(batch, fakeAddress, 1000);
      const elapsed = performance.now() - started;
      assert.equal(created.length, 10_000);
      assert.equal(created[9_999]!.accountIndex, 9_999);
      assert.equal((await store.getAgent('bulk-9999'))?.address, fakeAddress(9_999, 0));
      assert.ok(elapsed < 10_000, `took ${elapsed.toFixed(0)} ms`);
    });

    test('policies get version max+1 per scope; latest by default, any version on request', async () => {
      const store = await fresh();
      const v1 = await store.putPolicy({ scope: 'fleet', hash: 'h1', document: { rules: [1], cap: '10' }, author: 'op', createdAt: 1 });
      const v2 = await store.putPolicy({ scope: 'fleet', hash: 'h2', document: { rules: [2] }, author: 'op', createdAt: 2 });
      const other = await store.putPolicy({ scope: 'agent:ag_1', hash: 'h3', document: {}, author: 'op', createdAt: 3 });
      assert.deepEqual([v1.version, v2.version, other.version], [1, 2, 1]);
      assert.deepEqual((await store.getPolicy('fleet'))?.document, { rules: [2] });
      assert.deepEqual((await store.getPolicy('fleet', 1))?.document, { rules: [1], cap: '10' });
      assert.equal(await store.getPolicy('fleet', 9), undefined);
      assert.equal(await store.getPolicy('agent:nobody'), undefined);
      assert.deepEqual(await store.listPolicyVersions('fleet'), [
        { scope: 'fleet', version: 2, hash: 'h2', author: 'op', createdAt: 2 },
        { scope: 'fleet', version: 1, hash: 'h1', author: 'op', createdAt: 1 },
      ]);
      assert.equal((await store.transaction((tx) => tx.getPolicy('fleet')))?.version, 2);
    });

    test('shadow policies: one candidate per scope; outcomes counted, differences paged, dropped with their candidate or when it is gone', async () => {
      const store = await fresh();
      const candidate = (id: string, scope: string): ShadowPolicyRecord => ({ id, scope, hash: `h-${id}`, document: { version: 1, rules: [] }, source: 'version: 1 # text\n', author: 'op', createdAt: 5 });
      const outcome = (shadowId: string, auditSeq: number, kind: ShadowOutcome['kind']): ShadowOutcome => ({
        shadowId, auditSeq, agentId: 'ag_1', at: 10 + auditSeq, kind, action: 'evm.transaction', activeDecision: 'allow',
        ...(kind === 'error' ? {} : { candidateDecision: kind === 'same' ? 'allow' : 'deny' }),
        ...(kind === 'same' ? {} : { detail: { summary: 'transfer', active: { decision: 'allow', violations: [], allowedBy: ['agent/a'], policyVersion: 'agent@1:x' }, ...(kind === 'error' ? { error: 'boom' } : { candidate: { decision: 'deny', violations: [{ rule: 'agent/cap', code: 'amount_exceeds_max', message: 'm', limit: '1' }], allowedBy: [], policyVersion: 'agent@shadow:y' } }) } }),
      });
      await store.transaction((tx) => tx.putShadowPolicy(candidate('shd_a', 'fleet')));
      await store.transaction((tx) => tx.putShadowPolicy(candidate('shd_b', 'agent:ag_1')));
      assert.deepEqual(await store.getShadowPolicy('fleet'), candidate('shd_a', 'fleet'));
      assert.deepEqual((await store.transaction((tx) => tx.listShadowPolicies())).map((r) => r.id), ['shd_b', 'shd_a']);
      await store.transaction((tx) => tx.appendShadowOutcomes([outcome('shd_a', 1, 'same'), outcome('shd_a', 2, 'would_deny'), outcome('shd_b', 2, 'same'), outcome('shd_a', 3, 'error'), outcome('shd_a', 4, 'same')]));
      // A candidate unstaged meanwhile (another instance's cache): its outcome is dropped, the rest commit.
      await store.transaction((tx) => tx.appendShadowOutcomes([outcome('shd_gone', 5, 'would_allow'), outcome('shd_a', 6, 'would_deny')]));
      // A rolled-back request records nothing.
      await assert.rejects(store.transaction(async (tx) => {
        await tx.appendShadowOutcomes([outcome('shd_a', 7, 'would_allow')]);
        throw new Error('rolled back');
      }));
      assert.deepEqual(await store.shadowOutcomeCounts('shd_a'), { same: 2, rules_differ: 0, would_allow: 0, would_deny: 2, would_require_approval: 0, error: 1 });
      assert.deepEqual(await store.transaction((tx) => tx.shadowOutcomeCounts('shd_b')), { same: 1, rules_differ: 0, would_allow: 0, would_deny: 0, would_require_approval: 0, error: 0 });
      const differences = await store.listShadowDifferences('shd_a', { limit: 10 });
      assert.deepEqual(differences, [outcome('shd_a', 2, 'would_deny'), outcome('shd_a', 3, 'error'), outcome('shd_a', 6, 'would_deny')]);
      assert.deepEqual((await store.listShadowDifferences('shd_a', { afterSeq: 2, limit: 1 })).map((o) => o.auditSeq), [3]);
      // Restaging a scope replaces its candidate and forgets the old one's outcomes; unstaging likewise.
      await store.transaction((tx) => tx.putShadowPolicy(candidate('shd_c', 'fleet')));
      assert.equal((await store.getShadowPolicy('fleet'))?.id, 'shd_c');
      assert.deepEqual(await store.listShadowDifferences('shd_a', { limit: 10 }), []);
      assert.equal((await store.transaction((tx) => tx.deleteShadowPolicy('agent:ag_1')))?.id, 'shd_b');
      assert.equal((await store.shadowOutcomeCounts('shd_b')).same, 0);
      assert.equal(await store.transaction((tx) => tx.deleteShadowPolicy('agent:ag_1')), undefined);
      assert.equal(await store.getShadowPolicy('agent:ag_1'), undefined);
    });

    test('sessions: revoke once, list only active sessions by default', async () => {
      const store = await fresh();
      const [agent] = await store.createAgents(agentsNamed('s'), fakeAddress, 0);
      const base = { agentId: agent!.id, tokenHash: 'ab'.repeat(32), scope: { actions: ['evm.transaction'], chains: [], budgets: [] }, createdAt: 100 };
      const live: Session = { ...base, id: 'ses_live', label: 'worker', expiresAt: 10_000 };
      const expired: Session = { ...base, id: 'ses_expired', expiresAt: 500 };
      const revoked: Session = { ...base, id: 'ses_revoked', expiresAt: 10_000 };
      for (const s of [live, expired, revoked]) await store.createSession(s);
      assert.deepEqual(await store.getSession('ses_live'), live);
      const r1 = await store.revokeSession('ses_revoked', 1000);
      assert.equal(r1.revokedAt, 1000);
      const r2 = await store.revokeSession('ses_revoked', 2000);
      assert.equal(r2.revokedAt, 1000, 'revoking again leaves the first revocation time');
      await rejectsWithCode(store.revokeSession('ses_none', 1), 'not_found');
      assert.deepEqual((await store.listSessions({ now: 1000 })).map((s) => s.id), ['ses_live']);
      assert.deepEqual((await store.listSessions({ agentId: agent!.id, includeInactive: true, now: 1000 })).map((s) => s.id).sort(), ['ses_expired', 'ses_live', 'ses_revoked']);
      assert.deepEqual(await store.listSessions({ agentId: 'ag_other', now: 1000 }), []);
      assert.deepEqual(await store.transaction((tx) => tx.getSession('ses_live')), live);
    });

    test('sessions: a derived session keeps its parent; revoking a session revokes every descendant, once', async () => {
      const store = await fresh();
      const [agent] = await store.createAgents(agentsNamed('tree'), fakeAddress, 0);
      const base = { agentId: agent!.id, tokenHash: 'ab'.repeat(32), scope: { actions: ['evm.transaction'], chains: [], budgets: [] }, expiresAt: 10_000 };
      const root: Session = { ...base, id: 'ses_root', createdAt: 1 };
      const child: Session = { ...base, id: 'ses_child', parentId: 'ses_root', createdAt: 2 };
      const sibling: Session = { ...base, id: 'ses_sibling', parentId: 'ses_root', createdAt: 3 };
      const grandchild: Session = { ...base, id: 'ses_grand', parentId: 'ses_child', createdAt: 4, revokedAt: 50 };
      const other: Session = { ...base, id: 'ses_other', createdAt: 5 };
      for (const s of [root, child, sibling, other]) await store.createSession(s);
      await store.transaction((tx) => tx.createSession(grandchild));
      assert.deepEqual(await store.getSession('ses_child'), child);
      assert.deepEqual((await store.sessionDescendants('ses_root')).map((s) => s.id), ['ses_child', 'ses_sibling', 'ses_grand']);
      assert.deepEqual((await store.transaction((tx) => tx.sessionDescendants('ses_child'))).map((s) => s.id), ['ses_grand']);
      assert.deepEqual(await store.sessionDescendants('ses_other'), []);

      await store.transaction((tx) => tx.revokeSession('ses_child', 100), { exclusive: true });
      assert.equal((await store.getSession('ses_child'))?.revokedAt, 100);
      assert.equal((await store.getSession('ses_grand'))?.revokedAt, 50, 'a descendant revoked before keeps its time');
      assert.equal((await store.getSession('ses_sibling'))?.revokedAt, undefined);
      await store.revokeSession('ses_root', 200);
      assert.deepEqual((await store.sessionDescendants('ses_root')).map((s) => [s.id, s.revokedAt]), [['ses_child', 100], ['ses_sibling', 200], ['ses_grand', 50]]);
      assert.equal((await store.getSession('ses_root'))?.revokedAt, 200);
      assert.equal((await store.getSession('ses_other'))?.revokedAt, undefined, 'another tree is untouched');
    });

    test('sessions: a page of descendants (live ones by walking live sessions only), and counts of direct children', async () => {
      const store = await fresh();
      const [agent] = await store.createAgents(agentsNamed('pages'), fakeAddress, 0);
      const base = { agentId: agent!.id, tokenHash: 'ab'.repeat(32), scope: { actions: ['evm.transaction'], chains: [], budgets: [] }, expiresAt: 10_000 };
      const sessions: Session[] = [
        { ...base, id: 'ses_root', createdAt: 1 },
        { ...base, id: 'ses_a', parentId: 'ses_root', createdAt: 2 },
        { ...base, id: 'ses_b', parentId: 'ses_root', createdAt: 3, revokedAt: 20 },
        { ...base, id: 'ses_b1', parentId: 'ses_b', createdAt: 4 }, // escaped its parent's cascade: not live below a revoked one
        { ...base, id: 'ses_c', parentId: 'ses_root', createdAt: 5, expiresAt: 50 },
        { ...base, id: 'ses_a1', parentId: 'ses_a', createdAt: 5 },
        { ...base, id: 'ses_a0', parentId: 'ses_a', createdAt: 5 },
        { ...base, id: 'ses_d', parentId: 'ses_root', createdAt: 6 },
      ];
      for (const s of sessions) await store.createSession(s);
      const ids = (list: Session[]) => list.map((s) => s.id);
      assert.deepEqual(ids(await store.sessionDescendantsPage('ses_root', { now: 100, limit: 10 })), ['ses_a', 'ses_a0', 'ses_a1', 'ses_d']);
      assert.deepEqual(ids(await store.sessionDescendantsPage('ses_root', { now: 10, limit: 10 })), ['ses_a', 'ses_a0', 'ses_a1', 'ses_c', 'ses_d']);
      const all = ['ses_a', 'ses_b', 'ses_b1', 'ses_a0', 'ses_a1', 'ses_c', 'ses_d'];
      assert.deepEqual(ids(await store.sessionDescendantsPage('ses_root', { now: 100, includeInactive: true, limit: 10 })), all);
      const paged: string[] = [];
      let after: { createdAt: number; id: string } | undefined;
      for (;;) {
        const page = await store.sessionDescendantsPage('ses_root', { now: 100, includeInactive: true, limit: 2, ...(after ? { after } : {}) });
        paged.push(...ids(page));
        if (page.length < 2) break;
        after = { createdAt: page.at(-1)!.createdAt, id: page.at(-1)!.id };
      }
      assert.deepEqual(paged, all, '(createdAt, id) order, ties on createdAt included');
      assert.deepEqual(await store.sessionDescendantsPage('ses_d', { now: 100, includeInactive: true, limit: 10 }), []);

      assert.deepEqual(await store.transaction((tx) => tx.childSessionCounts('ses_root', 100)), { total: 4, live: 2 });
      assert.deepEqual(await store.transaction((tx) => tx.childSessionCounts('ses_root', 10)), { total: 4, live: 3 });
      assert.deepEqual(await store.transaction((tx) => tx.childSessionCounts('ses_a', 100)), { total: 2, live: 2 });
      assert.deepEqual(await store.transaction((tx) => tx.childSessionCounts('ses_nobody', 100)), { total: 0, live: 0 });
      // Every session under the root at any depth, revoked, expired and orphaned-by-revocation ones included; bounded.
      assert.equal(await store.transaction((tx) => tx.sessionTreeDerivations('ses_root', 1000)), 7);
      assert.equal(await store.transaction((tx) => tx.sessionTreeDerivations('ses_root', 3)), 3, 'counted up to atMost');
      assert.equal(await store.transaction((tx) => tx.sessionTreeDerivations('ses_a', 1000)), 2);
      assert.equal(await store.transaction((tx) => tx.sessionTreeDerivations('ses_b', 1000)), 1);
      assert.equal(await store.transaction((tx) => tx.sessionTreeDerivations('ses_nobody', 1000)), 0);
    });

    test('idempotency records round-trip and a second put for the same key conflicts', async () => {
      const store = await fresh();
      const record = { scope: 'session:ses_1', key: 'k1', requestHash: 'cd'.repeat(32), auditSeq: 3, response: { status: 200, body: { signature: '0x01', n: 1 } }, createdAt: 5 };
      await store.transaction((tx) => tx.putIdempotency(record));
      assert.deepEqual(await store.transaction((tx) => tx.getIdempotency('session:ses_1', 'k1')), record);
      assert.equal(await store.transaction((tx) => tx.getIdempotency('session:ses_2', 'k1')), undefined);
      await rejectsWithCode(store.transaction((tx) => tx.putIdempotency({ ...record, requestHash: 'ef'.repeat(32) })), 'conflict');
    });

    test('idempotency records keep the digest of the original request', async () => {
      const store = await fresh();
      const record = { scope: 'agent:ag_1', key: 'k2', requestHash: 'cd'.repeat(32), digest: 'ab'.repeat(32), auditSeq: 4, response: { status: 200, body: { auditSeq: 4 } }, createdAt: 6 };
      await store.transaction((tx) => tx.putIdempotency(record));
      assert.deepEqual(await store.transaction((tx) => tx.getIdempotency('agent:ag_1', 'k2')), record);
    });

    test('nonce claims: one claim per key; approvals turn pending claims into signed ones or free them', async () => {
      const store = await fresh();
      const claim = (key: string, extra: Partial<NonceClaim> = {}): NonceClaim => ({ key, agentId: 'ag_1', digest: '11'.repeat(32), auditSeq: 1, state: 'signed', createdAt: 10, ...extra });
      await store.transaction((tx) => tx.claimNonces([claim('eip3009|eip155:1|0xt|0xa|1'), claim('eip3009|eip155:1|0xt|0xa|2')]));
      const got = await store.transaction((tx) => tx.getNonceClaims(['eip3009|eip155:1|0xt|0xa|2', 'eip3009|eip155:1|0xt|0xa|9']));
      assert.deepEqual(got, [claim('eip3009|eip155:1|0xt|0xa|2')]);
      assert.deepEqual(await store.transaction((tx) => tx.getNonceClaims([])), []);
      // A second claim of a key conflicts, and the transaction that tried it leaves nothing behind.
      await rejectsWithCode(store.transaction((tx) => tx.claimNonces([claim('eip3009|eip155:1|0xt|0xa|3'), claim('eip3009|eip155:1|0xt|0xa|1', { digest: '22'.repeat(32) })])), 'conflict');
      assert.deepEqual(await store.transaction((tx) => tx.getNonceClaims(['eip3009|eip155:1|0xt|0xa|3'])), []);
      assert.equal((await store.transaction((tx) => tx.getNonceClaims(['eip3009|eip155:1|0xt|0xa|1'])))[0]!.digest, '11'.repeat(32));

      const approval = (id: string): ApprovalRecord => ({
        id, agentId: 'ag_1', sessionId: 'ses_1', auditSeq: 1, action: 'evm.typed_data', request: {}, digest: '33'.repeat(32), summary: {}, state: 'pending', createdAt: 1_000, expiresAt: 60_000,
      });
      await store.transaction(async (tx) => {
        await tx.holdForApproval(approval('apr_a'), []);
        await tx.claimNonces([claim('k-a', { state: 'pending', approvalId: 'apr_a' })]);
        await tx.holdForApproval(approval('apr_b'), []);
        await tx.claimNonces([claim('k-b', { state: 'pending', approvalId: 'apr_b' })]);
      });
      await store.transaction((tx) => tx.decideApproval('apr_a', 'approved', 'op', 2_000, 2));
      await store.transaction((tx) => tx.decideApproval('apr_b', 'denied', 'op', 2_000, 3));
      assert.deepEqual(await store.transaction((tx) => tx.getNonceClaims(['k-a', 'k-b'])), [claim('k-a', { state: 'signed', approvalId: 'apr_a' })]);
      // A lapsed claim is released before a new signature claims the key; the deadline round-trips.
      await store.transaction((tx) => tx.claimNonces([claim('k-lapsing', { validBefore: 1_700_000_000 })]));
      assert.deepEqual(await store.transaction((tx) => tx.getNonceClaims(['k-lapsing'])), [claim('k-lapsing', { validBefore: 1_700_000_000 })]);
      await store.transaction(async (tx) => {
        await tx.releaseNonceClaims(['k-lapsing']);
        await tx.claimNonces([claim('k-lapsing', { digest: '44'.repeat(32) })]);
      });
      assert.equal((await store.transaction((tx) => tx.getNonceClaims(['k-lapsing'])))[0]!.digest, '44'.repeat(32));
    });

    test('transactions submitted together share one commit, and the group-commit counts say so (a refusal inside rides along, a lone refusal commits nothing)', async () => {
      const store = await fresh();
      const stats = () => store.groupCommitStats!();
      const before = stats();
      const entry = (at: number): AuditEntryInput => ({ at, type: 'x', actor: 'system', data: {} });
      // Submitted in one turn of the event loop, with one affinity (one lane on PostgreSQL): one batch.
      const results = await Promise.allSettled([1, 2, 3, 4, 5].map((at) => store.transaction(async (tx) => {
        await tx.appendAudit(entry(at));
        if (at === 3) throw new Error('refused on its own');
      }, { affinity: 'ag_same' })));
      assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
      // treeSize, not seq: PostgreSQL draws a batch's audit seqs with its BEGIN, so a refusal leaves a gap in seq.
      assert.equal((await store.auditHead()).treeSize, 4, 'the refused one was rolled back to its savepoint');
      const five = stats();
      assert.equal(five.commits - before.commits, 1);
      assert.equal(five.transactions - before.transactions, 5);
      const bucket = (s: typeof five, le: number) => s.atMost[GROUP_COMMIT_SIZE_BOUNDS.indexOf(le)]!;
      assert.equal(bucket(five, 4) - bucket(before, 4), 0);
      assert.equal(bucket(five, 8) - bucket(before, 8), 1);
      assert.equal(bucket(five, 64) - bucket(before, 64), 1, 'buckets are cumulative');

      await assert.rejects(store.transaction(async (tx) => {
        await tx.appendAudit(entry(6));
        throw new Error('alone');
      }), /alone/);
      assert.deepEqual(stats(), five, 'a batch that rolled back is no commit');

      await store.transaction((tx) => tx.appendAudit(entry(7)));
      const one = stats();
      assert.deepEqual([one.commits - five.commits, one.transactions - five.transactions, bucket(one, 1) - bucket(five, 1)], [1, 1, 1]);
    });

    test('the audit log is a Merkle log of stored leaves that verifies, filters, pages, and survives a rollback unchanged', async () => {
      const store = await fresh();
      assert.deepEqual(await store.auditHead(), { seq: 0, hash: GENESIS_HASH, treeSize: 0 });
      const inputs: AuditEntryInput[] = [
        { at: 10, type: 'sign.request', actor: 'agent', agentId: 'ag_1', sessionId: 'ses_1', action: 'evm.transaction', decision: 'allow', data: { amount: 5n, to: '0xabc' } },
        { at: 20, type: 'sign.request', actor: 'agent', agentId: 'ag_2', action: 'evm.transaction', decision: 'deny', data: { violations: [{ code: 'budget_exceeded' }] } },
        { at: 30, type: 'policy.set', actor: 'operator', data: {} },
        { at: 40, type: 'sign.request', actor: 'agent', agentId: 'ag_1', decision: 'allow', data: { nested: { b: 1, a: [true, null] } } },
      ];
      const appended = [];
      for (const input of inputs) appended.push(await store.transaction((tx) => tx.appendAudit(input)));
      assert.deepEqual(appended.map((e) => e.seq), [1, 2, 3, 4]);
      assert.deepEqual(appended.map((e) => e.leafIndex), [0, 1, 2, 3], 'leaf_index is assigned contiguously in the same insert');
      assert.deepEqual(appended.map((e) => e.hashVersion), [3, 3, 3, 3]);
      assert.equal(appended[0]!.prevHash, undefined, 'a version-3 leaf does not depend on the previous entry');
      assert.equal(appended[0]!.leaf, '{"action":"evm.transaction","actor":"agent","agentId":"ag_1","at":10,"data":{"amount":"5","to":"0xabc"},"decision":"allow","seq":1,"sessionId":"ses_1","type":"sign.request"}');
      assert.equal(appended[0]!.hash, Buffer.from(leafHash(appended[0]!.leaf!)).toString('hex'));
      assert.equal(appended[0]!.data.amount, '5', 'bigints are stored as decimal strings');

      await assert.rejects(store.transaction(async (tx) => {
        await tx.appendAudit({ at: 50, type: 'x', actor: 'system', data: {} });
        throw new Error('boom');
      }), /boom/);
      assert.deepEqual(await store.auditHead(), { seq: 4, hash: appended[3]!.hash, treeSize: 4 });

      const all = await store.readAudit(1, 100);
      assert.deepEqual(all, appended);
      const leaves = await store.readAuditLeaves(1, 100);
      assert.deepEqual(leaves.map((e) => e.leafIndex), [1, 2, 3], 'read by leaf index');
      assert.equal(leaves[0]!.data, undefined, 'a version-3 leaf row comes unparsed');
      const verifier = new AuditLogVerifier();
      for (const e of await store.readAuditLeaves(0, 100)) assert.ok(verifier.push(e));
      const none = () => false;
      assert.equal(verifier.finish([], [], { verifyTreeHead: none, verifyCheckpoint: none }).ok, true);

      assert.deepEqual((await store.readAudit(3, 1)).map((e) => e.seq), [3]);
      assert.deepEqual((await store.queryAudit({ agentId: 'ag_1' })).map((e) => e.seq), [1, 4]);
      assert.deepEqual((await store.queryAudit({ decision: 'deny' })).map((e) => e.seq), [2]);
      assert.deepEqual((await store.queryAudit({ type: 'policy.set' })).map((e) => e.seq), [3]);
      assert.deepEqual((await store.queryAudit({ fromMs: 20, toMs: 30 })).map((e) => e.seq), [2, 3]);
      assert.deepEqual((await store.queryAudit({ afterSeq: 2, limit: 1 })).map((e) => e.seq), [3]);
      // Newest first: the newest `limit` matching entries (the console's recent decisions).
      assert.deepEqual((await store.queryAudit({ agentId: 'ag_1', newestFirst: true })).map((e) => e.seq), [4, 1]);
      assert.deepEqual((await store.queryAudit({ newestFirst: true, limit: 2 })).map((e) => e.seq), [4, 3]);
      assert.equal(appended[2]!.agentId, undefined);
      assert.equal('agentId' in (await store.readAudit(3, 1))[0]!, false, 'absent fields stay absent');
    });

    test('the store rejects UPDATE and DELETE on audit entries (append-only by trigger)', async () => {
      const store = await fresh();
      await store.transaction((tx) => tx.appendAudit({ at: 1, type: 't', actor: 'system', data: { v: 1 } }));
      assert.ok(store.rawExec);
      await assert.rejects(store.rawExec(`UPDATE audit_entries SET data = '{"v":2}' WHERE seq = 1`));
      await assert.rejects(store.rawExec('DELETE FROM audit_entries'));
      assert.deepEqual((await store.readAudit(1, 10))[0]!.data, { v: 1 });
    });

    test('tree nodes: stored, read back by (level, index), a stored node is kept, and the built size follows level 0', async () => {
      const store = await fresh();
      assert.equal(await store.builtTreeSize(), 0);
      const nodes: { level: number; index: number; hash: Uint8Array }[] = [];
      const f = new MerkleFrontier();
      for (let i = 0; i < 11; i++) f.push(leafHash(`leaf ${i}`), (id, hash) => nodes.push({ ...id, hash: new Uint8Array(hash) }));
      await store.appendTreeNodes(nodes.slice(0, 10));
      await store.appendTreeNodes(nodes.slice(5)); // overlapping: the stored ones stay
      await store.appendTreeNodes([{ level: 0, index: 0, hash: new Uint8Array(32) }]);
      assert.equal(await store.builtTreeSize(), 11);
      const source = { readNodes: (ids: readonly { level: number; index: number }[]) => store.readTreeNodes(ids) };
      assert.deepEqual(await rootAt(source, 11), f.root());
      assert.deepEqual(await store.readTreeNodes([{ level: 0, index: 0 }, { level: 3, index: 0 }, { level: 3, index: 1 }]), [nodes[0]!.hash, nodes.find((n) => n.level === 3)!.hash, undefined]);
      // An inclusion proof is O(log n) node reads, and verifies against the root.
      const proof = await inclusionProof(source, 9, 11);
      assert.ok(verifyInclusion(9, 11, leafHash('leaf 9'), proof, f.root()));
      assert.equal(rangeNodes(0, 11).length, 3);
      assert.ok(store.rawExec);
      await assert.rejects(store.rawExec('DELETE FROM audit_tree_nodes'), 'append-only');
    });

    test('signed tree heads are appended, listed by size, the last and one by size read back; a second at the same size conflicts', async () => {
      const store = await fresh();
      const head = (treeSize: number) => ({ treeSize, rootHash: 'aa'.repeat(32), at: treeSize * 10, publicKey: 'bb'.repeat(32), signature: 'cc'.repeat(64) });
      assert.equal(await store.lastTreeHead(), undefined);
      await store.appendTreeHead(head(5));
      await store.appendTreeHead(head(2));
      assert.deepEqual(await store.listTreeHeads(), [head(2), head(5)]);
      assert.deepEqual(await store.lastTreeHead(), head(5));
      assert.deepEqual(await store.getTreeHead(2), head(2));
      assert.equal(await store.getTreeHead(3), undefined);
      await rejectsWithCode(store.appendTreeHead(head(5)), 'conflict');
    });

    test('checkpoints are appended and listed in seq order; a second one at the same seq conflicts', async () => {
      const store = await fresh();
      const cp = (seq: number) => ({ seq, headHash: 'aa'.repeat(32), at: seq * 10, publicKey: 'bb'.repeat(32), signature: 'cc'.repeat(64) });
      await store.appendCheckpoint(cp(5));
      await store.appendCheckpoint(cp(2));
      assert.deepEqual(await store.listCheckpoints(), [cp(2), cp(5)]);
      await rejectsWithCode(store.appendCheckpoint(cp(5)), 'conflict');
    });

    test('window totals sum the window only, per series and asset, across several windows', async () => {
      const store = await fresh();
      const usdc = 'eip155:1/erc20:0xa0b8';
      const charge = (amount: bigint, at: number, series = 'agent:a') =>
        store.transaction((tx) => tx.appendLedger([{ series, asset: usdc, amount, count: 1 }, { series, asset: '*', amount: 0n, count: 1 }], at, 1));
      await charge(100n, 1_000);
      await charge(200n, 2_000);
      await charge(2n ** 200n, 3_000); // far beyond a JS number
      await charge(7n, 3_000, 'agent:b');
      const totals = await store.transaction((tx) =>
        tx.windowTotals([
          { series: 'agent:a', asset: usdc, sinceMs: 0 },
          { series: 'agent:a', asset: usdc, sinceMs: 1_500 },
          { series: 'agent:a', asset: usdc, sinceMs: 2_000 },
          { series: 'agent:a', asset: usdc, sinceMs: 3_001 },
          { series: 'agent:a', asset: '*', sinceMs: 1_001 },
          { series: 'agent:b', asset: usdc, sinceMs: 0 },
          { series: 'agent:none', asset: usdc, sinceMs: 0 },
        ]),
      );
      assert.deepEqual(totals, [
        { amount: 300n + 2n ** 200n, count: 3 },
        { amount: 200n + 2n ** 200n, count: 2 },
        { amount: 200n + 2n ** 200n, count: 2 },
        { amount: 0n, count: 0 },
        { amount: 0n, count: 2 },
        { amount: 7n, count: 1 },
        { amount: 0n, count: 0 },
      ]);
      await rejectsWithCode(store.transaction((tx) => tx.appendLedger([{ series: 'agent:a', asset: usdc, amount: -1n, count: 1 }], 4_000, 1)), 'invalid_amount');
    });

    test('ledger time never goes backwards within a series (late writes land at the series head time)', async () => {
      const store = await fresh();
      const w = (amount: bigint): LedgerWrite[] => [{ series: 'fleet', asset: 'x', amount, count: 1 }];
      await store.transaction((tx) => tx.appendLedger(w(10n), 5_000, 1));
      await store.transaction((tx) => tx.appendLedger(w(20n), 1_000, 2)); // clock skew: clamped to 5_000
      const [since4000, since5001] = await store.transaction((tx) =>
        tx.windowTotals([{ series: 'fleet', asset: 'x', sinceMs: 4_000 }, { series: 'fleet', asset: 'x', sinceMs: 5_001 }]),
      );
      assert.deepEqual(since4000, { amount: 30n, count: 2 });
      assert.deepEqual(since5001, { amount: 0n, count: 0 });
      // A batch with the same series twice counts both.
      await store.transaction((tx) => tx.appendLedger([...w(1n), ...w(2n)], 6_000, 3));
      const [later] = await store.transaction((tx) => tx.windowTotals([{ series: 'fleet', asset: 'x', sinceMs: 5_500 }]));
      assert.deepEqual(later, { amount: 3n, count: 2 });
    });

    test('lifecycle jobs: amounts round-trip exactly; one open sweep per agent, key index and asset; signed -> submitted -> mined once', async () => {
      const store = await fresh();
      const [agent] = await store.createAgents([{ id: 'ag_lcj0000000000001', name: 'lcj-agent', labels: {} }], fakeAddress, 1_000);
      const big = (1n << 255n) + 7n;
      const job = {
        id: 'lcj_0000000000000001', agentId: agent!.id, keyIndex: 0, chain: 'eip155:8453', from: agent!.address, nonce: 3, origin: 'sweep' as const,
        kind: 'erc20_transfer' as const, purpose: 'retire', asset: 'eip155:8453/erc20:0x833589fcd6edb6e08f4c7c32d4f71b54bda02913', amount: big,
        recipient: '0x7ea5000000000000000000000000000000000001', to: '0x833589fcd6edb6e08f4c7c32d4f71b54bda02913', maxFee: 123_456_789_000n,
        rawTransaction: '0xf86b', transactionHash: `0x${'ab'.repeat(32)}`, summary: 'sweep', state: 'signed' as const, auditSeq: 9, broadcasts: 0, createdAt: 2_000, updatedAt: 2_000,
      };
      await store.transaction((tx) => tx.insertLifecycleJob(job));
      assert.deepEqual(await store.getLifecycleJob(job.id), job);
      // A second open sweep of the same asset is refused; another asset, another key index or a call is not.
      await assert.rejects(store.transaction((tx) => tx.insertLifecycleJob({ ...job, id: 'lcj_0000000000000002', nonce: 4 })), (e: any) => e.code === 'lifecycle_sweep_open');
      await store.transaction((tx) => tx.insertLifecycleJob({ ...job, id: 'lcj_0000000000000003', keyIndex: 1, nonce: 0 }));
      await store.transaction((tx) => tx.insertLifecycleJob({ ...job, id: 'lcj_0000000000000004', origin: 'call', kind: 'revocation', nonce: 4, amount: 0n, createdAt: 2_001 }));
      assert.deepEqual((await store.transaction((tx) => tx.openLifecycleJobs(agent!.id))).map((j) => j.id), ['lcj_0000000000000001', 'lcj_0000000000000003', 'lcj_0000000000000004']);
      const sent = await store.recordLifecycleBroadcast(job.id, 2_500);
      assert.deepEqual([sent?.state, sent?.broadcasts, sent?.submittedAt], ['submitted', 1, 2_500]);
      assert.equal((await store.recordLifecycleBroadcast(job.id, 2_600))?.submittedAt, 2_500, 'the first broadcast is kept');
      const mined = await store.transaction((tx) => tx.finishLifecycleJob(job.id, { state: 'mined', blockNumber: 77n, gasUsed: 51_234n }, 3_000, 10));
      assert.deepEqual([mined.state, mined.blockNumber, mined.gasUsed, mined.finishAuditSeq, mined.amount], ['mined', 77n, 51_234n, 10, big]);
      await assert.rejects(store.transaction((tx) => tx.finishLifecycleJob(job.id, { state: 'failed', failure: 'x' }, 3_001, 11)), (e: any) => e.code === 'conflict');
      assert.equal(await store.recordLifecycleBroadcast(job.id, 3_002), undefined, 'a finished job is left as it is');
      // Once mined, the asset can be swept again.
      await store.transaction((tx) => tx.insertLifecycleJob({ ...job, id: 'lcj_0000000000000005', nonce: 5, createdAt: 3_100 }));
      assert.deepEqual((await store.listLifecycleJobs({ agentId: agent!.id, open: true })).map((j) => j.id), ['lcj_0000000000000005', 'lcj_0000000000000004', 'lcj_0000000000000003']);
      assert.deepEqual((await store.listLifecycleJobs({ state: 'mined' })).map((j) => j.id), [job.id]);
    });

    test('lifecycle jobs planned first: no bytes, open (nonce, sweep, listing); the first signature recorded wins; a planned job only fails', async () => {
      const store = await fresh();
      const [agent] = await store.createAgents([{ id: 'ag_lcp0000000000001', name: 'lcp-agent', labels: {} }], fakeAddress, 1_000);
      const planned = {
        id: 'lcj_1000000000000001', agentId: agent!.id, keyIndex: 0, chain: 'eip155:8453', from: agent!.address, nonce: 0, origin: 'sweep' as const,
        kind: 'native_transfer' as const, purpose: 'rotation', asset: 'eip155:8453/slip44:60', amount: 5n, recipient: '0x7ea5000000000000000000000000000000000001',
        to: '0x7ea5000000000000000000000000000000000001', maxFee: 21_000n, summary: 'sweep', state: 'planned' as const, auditSeq: 4, broadcasts: 0, createdAt: 2_000, updatedAt: 2_000,
      };
      await store.transaction((tx) => tx.insertLifecycleJob(planned));
      assert.deepEqual(await store.getLifecycleJob(planned.id), planned);
      assert.deepEqual((await store.transaction((tx) => tx.openLifecycleJobs(agent!.id))).map((j) => j.id), [planned.id]);
      assert.deepEqual((await store.listLifecycleJobs({ open: true })).map((j) => j.id), [planned.id]);
      await assert.rejects(store.transaction((tx) => tx.insertLifecycleJob({ ...planned, id: 'lcj_1000000000000002', nonce: 1 })), (e: any) => e.code === 'lifecycle_sweep_open');
      assert.equal(await store.recordLifecycleBroadcast(planned.id, 2_100), undefined, 'a planned job has nothing to broadcast');
      // A job that is signed (or submitted, mined) has its bytes: the schema refuses one without.
      await assert.rejects(store.transaction((tx) => tx.insertLifecycleJob({ ...planned, id: 'lcj_1000000000000003', origin: 'call', state: 'signed' })));

      const first = { rawTransaction: '0xf86c01', transactionHash: `0x${'01'.repeat(32)}`, signedAuditSeq: 5 };
      const signed = await store.transaction((tx) => tx.recordLifecycleSignature(planned.id, first, 2_200));
      assert.deepEqual(signed, { ...planned, ...first, state: 'signed', updatedAt: 2_200 });
      // A second signature (a resume racing the first try) is not recorded: the first stands.
      assert.equal(await store.transaction((tx) => tx.recordLifecycleSignature(planned.id, { rawTransaction: '0xf86c02', transactionHash: `0x${'02'.repeat(32)}`, signedAuditSeq: 6 }, 2_300)), undefined);
      assert.equal((await store.getLifecycleJob(planned.id))?.rawTransaction, first.rawTransaction);

      const other = { ...planned, id: 'lcj_1000000000000004', origin: 'call' as const, kind: 'revocation' as const, nonce: 1, amount: 0n, createdAt: 2_400, updatedAt: 2_400 };
      await store.transaction((tx) => tx.insertLifecycleJob(other));
      await assert.rejects(store.transaction((tx) => tx.finishLifecycleJob(other.id, { state: 'mined', blockNumber: 1n, gasUsed: 1n }, 2_500, 7)), 'a planned job is never mined');
      const failed = await store.transaction((tx) => tx.finishLifecycleJob(other.id, { state: 'failed', failure: 'not_signed: key_process_refused' }, 2_500, 7));
      assert.deepEqual([failed.state, failed.rawTransaction, failed.failure, failed.finishAuditSeq], ['failed', undefined, 'not_signed: key_process_refused', 7]);
      assert.equal(await store.transaction((tx) => tx.recordLifecycleSignature(other.id, first, 2_600)), undefined, 'a failed job takes no signature');
    });

    test('circuit breakers: targets by agents, label group and fleet; a freeze trip freezes the bound agents; reset unfreezes those no other breaker holds, once', async () => {
      const store = await fresh();
      const agents = await store.createAgents([
        { id: 'ag_brk0000000000001', name: 'brk-red-1', labels: { team: 'red' } },
        { id: 'ag_brk0000000000002', name: 'brk-red-2', labels: { team: 'red' } },
        { id: 'ag_brk0000000000003', name: 'brk-blue', labels: { team: 'blue' } },
      ], fakeAddress, 1_000);
      const [red1, red2, blue] = agents.map((a) => a.id) as [string, string, string];
      await store.setAgentStatus(red2, 'frozen', 1_001);
      assert.deepEqual(await store.transaction((tx) => tx.breakerTargets({ group: { label: 'team', value: 'red' } })), [red1], 'active agents only');
      await store.setAgentStatus(red2, 'active', 1_002);
      assert.deepEqual(await store.transaction((tx) => tx.breakerTargets({ group: { label: 'team', value: 'red' } })), [red1, red2].sort());
      assert.deepEqual(await store.transaction((tx) => tx.breakerTargets({ fleet: true })), [red1, red2, blue].sort());
      assert.deepEqual(await store.transaction((tx) => tx.breakerTargets({ agents: [blue, 'ag_nobody'] })), [blue]);

      const base = { detector: 'detector/fleet/burst', type: 'request_burst', scope: 'group' as const, group: { label: 'team', value: 'red' }, agentId: red1, policyVersion: 'fleet@1:x', figures: { observed: '13', threshold: '12', baseline: '1.5', window: '5m' }, message: 'burst', state: 'tripped' as const, trippedAt: 2_000, trippedSeq: 1 };
      await store.transaction((tx) => tx.tripBreaker({ ...base, id: 'brk_a', action: 'freeze', agents: [red1, red2] }, { freeze: true, now: 2_000 }));
      await store.transaction((tx) => tx.tripBreaker({ ...base, id: 'brk_b', action: 'freeze', scope: 'agent', agents: [red2] }, { freeze: true, now: 2_001 }));
      await store.transaction((tx) => tx.tripBreaker({ ...base, id: 'brk_c', action: 'require_approval', scope: 'agent', agents: [blue] }, { freeze: false, now: 2_002 }));
      assert.equal((await store.getAgent(red1))!.status, 'frozen');
      assert.equal((await store.getAgent(blue))!.status, 'active', 'require_approval freezes no one');
      assert.deepEqual((await store.transaction((tx) => tx.trippedBreakersFor(red2))).map((b) => b.id).sort(), ['brk_a', 'brk_b']);
      assert.deepEqual(await store.getBreaker('brk_a'), { ...base, id: 'brk_a', action: 'freeze', agents: [red1, red2] });
      assert.deepEqual((await store.listBreakers({ state: 'tripped' })).map((b) => b.id), ['brk_c', 'brk_b', 'brk_a']);

      // brk_b still holds red2: only red1 is unfrozen.
      const reset = await store.transaction((tx) => tx.resetBreaker('brk_a', 'admin', 3_000, 7));
      assert.deepEqual(reset.unfrozen, [red1]);
      assert.deepEqual(reset.keptFrozen, [{ agentId: red2, operatorFreeze: false, breakers: ['brk_b'] }]);
      assert.deepEqual({ state: reset.breaker.state, resetAt: reset.breaker.resetAt, resetBy: reset.breaker.resetBy, resetSeq: reset.breaker.resetSeq }, { state: 'reset', resetAt: 3_000, resetBy: 'admin', resetSeq: 7 });
      assert.equal((await store.getAgent(red2))!.status, 'frozen');
      assert.deepEqual((await store.transaction((tx) => tx.trippedBreakersFor(red2))).map((b) => b.id), ['brk_b']);
      await rejectsWithCode(store.transaction((tx) => tx.resetBreaker('brk_a', 'admin', 3_001, 8)), 'breaker_not_tripped');
      await rejectsWithCode(store.transaction((tx) => tx.resetBreaker('brk_none', 'admin', 3_001, 8)), 'not_found');
      assert.deepEqual((await store.transaction((tx) => tx.resetBreaker('brk_b', 'admin', 3_002, 9))).unfrozen, [red2]);
      assert.deepEqual((await store.listBreakers({ state: 'reset' })).map((b) => b.id), ['brk_b', 'brk_a']);
    });

    test("circuit breakers: a reset never undoes the operator's freeze (setAgentStatus 'frozen', also of an agent a breaker froze); an unfreeze ends it", async () => {
      const store = await fresh();
      const agents = await store.createAgents([
        { id: 'ag_opf0000000000001', name: 'opf-1', labels: {} },
        { id: 'ag_opf0000000000002', name: 'opf-2', labels: {} },
        { id: 'ag_opf0000000000003', name: 'opf-3', labels: {} },
      ], fakeAddress, 1_000);
      const [a1, a2, a3] = agents.map((a) => a.id) as [string, string, string];
      const base = { detector: 'detector/fleet/burst', type: 'request_burst', scope: 'fleet' as const, agentId: a1, policyVersion: 'fleet@1:x', figures: { observed: '13', threshold: '12', baseline: '1.5', window: '5m' }, message: 'burst', action: 'freeze' as const, state: 'tripped' as const, trippedAt: 2_000, trippedSeq: 1 };
      const targets = await store.transaction((tx) => tx.breakerTargets({ fleet: true }));
      await store.transaction((tx) => tx.tripBreaker({ ...base, id: 'brk_opf_1', agents: targets }, { freeze: true, now: 2_000 }));
      // The operator freezes a1 by hand while the breaker holds it; a2 is frozen and unfrozen by hand (no mark left).
      assert.equal((await store.transaction((tx) => tx.setAgentStatus(a1, 'frozen', 2_100), { exclusive: true })).status, 'frozen');
      await store.setAgentStatus(a2, 'frozen', 2_101);
      await store.setAgentStatus(a2, 'active', 2_102);
      await store.setAgentStatus(a2, 'frozen', 2_103);
      await store.setAgentStatus(a2, 'active', 2_104);
      const reset = await store.transaction((tx) => tx.resetBreaker('brk_opf_1', 'admin', 3_000, 7));
      assert.deepEqual(reset.unfrozen, [a3]);
      assert.deepEqual(reset.keptFrozen, [{ agentId: a1, operatorFreeze: true, breakers: [] }]);
      assert.deepEqual(await Promise.all([a1, a2, a3].map(async (id) => (await store.getAgent(id))!.status)), ['frozen', 'active', 'active']);

      // After an explicit unfreeze the mark is gone: the next breaker's reset unfreezes a1 again.
      await store.setAgentStatus(a1, 'active', 3_100);
      await store.transaction((tx) => tx.tripBreaker({ ...base, id: 'brk_opf_2', scope: 'agent', agents: [a1], trippedAt: 4_000, trippedSeq: 8 }, { freeze: true, now: 4_000 }));
      assert.equal((await store.getAgent(a1))!.status, 'frozen');
      const again = await store.transaction((tx) => tx.resetBreaker('brk_opf_2', 'admin', 5_000, 9));
      assert.deepEqual([again.unfrozen, again.keptFrozen], [[a1], []]);
      assert.equal((await store.getAgent(a1))!.status, 'active');
    });

    test('destination payers: first time kept, agents listed from a time, paid before the first recorded payer and before the window judged by time (ledger only)', async () => {
      const store = await fresh();
      await store.transaction((tx) => tx.recordDestinationPayers('ag_1', ['0xaa', '0xbb'], 1_000, 1));
      await store.transaction((tx) => tx.recordDestinationPayers('ag_1', ['0xaa'], 5_000, 2));
      await store.transaction((tx) => tx.recordDestinationPayers('ag_2', ['0xaa'], 4_000, 3));
      const read = () => store.transaction((tx) => tx.destinationPayers(['0xaa', '0xbb', '0xcc'], 2_000, 10));
      const count = (series: string, n: number) => [{ series, asset: COUNT_ASSET, amount: 0n, count: n }];
      let payers = await read();
      assert.deepEqual(payers.get('0xaa'), { agents: ['ag_2'], paidBeforeRecorded: false, paidBeforeWindow: false }, 'ag_1 first paid before 2000');
      assert.deepEqual(payers.get('0xbb'), { agents: [], paidBeforeRecorded: false, paidBeforeWindow: false });
      assert.deepEqual(payers.get('0xcc'), { agents: [], paidBeforeRecorded: false, paidBeforeWindow: false });
      // A request held for approval before the window is no payment: not "paid before the window" (found by review:
      // the detector read it from window counts, which a hold's count leaves once older than the window).
      await store.transaction((tx) => tx.holdForApproval({
        id: 'apr_wave', agentId: 'ag_3', sessionId: 'ses_1', auditSeq: 1, action: 'evm.transaction', request: {}, digest: '55'.repeat(32),
        summary: {}, state: 'pending', createdAt: 500, expiresAt: 10 ** 12,
      }, count('fleet|to:0xcc', 1)));
      await store.transaction((tx) => tx.appendLedger(count('fleet|to:0xaa', 1), 1_000, 4));
      await store.transaction((tx) => tx.appendLedger(count('fleet|to:0xaa', 5), 6_000, 5));
      // Detector totals are the window sums (without the budget locks).
      assert.deepEqual(await store.transaction((tx) => tx.detectorTotals([{ series: 'fleet|to:0xaa', asset: COUNT_ASSET, sinceMs: 0 }])), [{ amount: 0n, count: 6 }]);
      // A charge older than the first recorded payer (0xbb), or any charge where none is recorded (0xcc): paid before.
      await store.transaction((tx) => tx.appendLedger(count('fleet|to:0xbb', 1), 999, 6));
      await store.transaction((tx) => tx.appendLedger(count('fleet|to:0xcc', 1), 7_000, 7));
      payers = await read();
      // Charges at or after the first recorded payer, however many (replays, grants, a batch's calls): not "paid
      // before" it; one before the window (0xaa at 1000, 0xbb at 999) is "paid before the window", by the ledger only.
      assert.deepEqual(payers.get('0xaa'), { agents: ['ag_2'], paidBeforeRecorded: false, paidBeforeWindow: true });
      assert.deepEqual(payers.get('0xbb'), { agents: [], paidBeforeRecorded: true, paidBeforeWindow: true });
      assert.deepEqual(payers.get('0xcc'), { agents: [], paidBeforeRecorded: true, paidBeforeWindow: false }, 'its hold at 500 is no payment');
    });

    test('detector totals: a pending hold counts, amount and count alike, only in the windows its time is in; a charges-only query counts none', async () => {
      const store = await fresh();
      const writes = (series: string, amount: bigint): LedgerWrite[] => [{ series, asset: USDC, amount, count: 1 }, { series, asset: COUNT_ASSET, amount: 0n, count: 1 }];
      await store.transaction((tx) => tx.appendLedger(writes('fleet', 100n), 1_000, 1));
      await store.transaction((tx) => tx.appendLedger(writes('fleet|to:0xdd', 100n), 1_000, 1));
      // A request held for a human at 2000 (never decided), and an x402 payment reserved at 3000.
      await store.transaction((tx) => tx.holdForApproval({
        id: 'apr_det', agentId: 'ag_1', sessionId: 'ses_1', auditSeq: 2, action: 'evm.transaction', request: {}, digest: '66'.repeat(32),
        summary: {}, state: 'pending', createdAt: 2_000, expiresAt: 10 ** 12,
      }, [...writes('fleet', 900n), ...writes('fleet|to:0xee', 900n)]));
      await store.transaction((tx) => tx.holdPayment({
        id: 'pay_det', agentId: 'ag_1', sessionId: 'ses_1', auditSeq: 3, protocol: 'x402', network: 'eip155:8453', asset: '0x833589fcd6edb6e08f4c7c32d4f71b54bda02913',
        from: '0x1111111111111111111111111111111111111111', to: '0x2222222222222222222222222222222222222222', value: 50n, nonce: `0x${'d1'.repeat(32)}`,
        validAfter: 0, validBefore: 10 ** 9, state: 'reserved', createdAt: 3_000, updatedAt: 3_000,
      }, writes('fleet', 50n)));
      const queries: WindowQuery[] = [
        { series: 'fleet', asset: USDC, sinceMs: 0 },
        { series: 'fleet', asset: USDC, sinceMs: 2_500 },
        { series: 'fleet', asset: USDC, sinceMs: 3_500 },
        { series: 'fleet', asset: COUNT_ASSET, sinceMs: 2_500 },
        { series: 'fleet', asset: USDC, sinceMs: 0, chargesOnly: true },
        { series: 'fleet|to:0xee', asset: COUNT_ASSET, sinceMs: 0, chargesOnly: true },
        { series: 'fleet|to:0xdd', asset: COUNT_ASSET, sinceMs: 0, chargesOnly: true },
      ];
      assert.deepEqual(await store.transaction((tx) => tx.detectorTotals(queries)), [
        { amount: 1050n, count: 3 },
        { amount: 50n, count: 1 }, // the hold of 2000 is older than the window: neither its amount nor its count
        { amount: 0n, count: 0 },
        { amount: 0n, count: 1 },
        { amount: 100n, count: 1 }, // the ledger alone
        { amount: 0n, count: 0 }, // only held for a human: never charged
        { amount: 0n, count: 1 },
      ]);
      // A budget's read counts a held amount in every window while held (it may still become spend).
      assert.deepEqual(await store.transaction((tx) => tx.windowTotals([{ series: 'fleet', asset: USDC, sinceMs: 3_500 }])), [{ amount: 950n, count: 0 }]);
    });

    test('window totals equal a brute-force replay at every boundary, over many series, assets and skewed clocks', async () => {
      const store = await fresh();
      const model = new LedgerModel();
      const charges = generateCharges(7, 150);
      // One to three charges per transaction: later appends in a transaction read the heads earlier ones wrote.
      for (let i = 0; i < charges.length; ) {
        const batch = charges.slice(i, (i += 1 + (i % 3)));
        await store.transaction(async (tx) => {
          for (const c of batch) await tx.appendLedger(c.writes, c.at, c.auditSeq);
        });
        for (const c of batch) model.append(c.writes, c.at, c.auditSeq);
      }
      const queries = model.boundaryQueries();
      assert.ok(queries.length > 1_000, `${queries.length} queries`);
      const totals = await store.transaction((tx) => tx.windowTotals(queries));
      const mismatches = queries.map((q, i) => ({ q, got: totals[i], want: model.total(q) })).filter((x) => x.got!.amount !== x.want.amount || x.got!.count !== x.want.count);
      // The first few are enough to debug; a diff of thousands of rows would take minutes to print.
      assert.deepEqual(mismatches.slice(0, 3), [], `${mismatches.length} of ${queries.length} windows differ`);
    });

    test('window totals stay exact when a series is charged different assets from one entry to the next', async () => {
      const store = await fresh();
      const model = new LedgerModel();
      const charges = generateCharges(9, 200, 1_000_000, { mixedAssets: true });
      for (const c of charges) {
        await store.transaction((tx) => tx.appendLedger(c.writes, c.at, c.auditSeq));
        model.append(c.writes, c.at, c.auditSeq);
      }
      const queries = model.boundaryQueries();
      assert.ok(queries.some((q) => q.asset === DAI), 'DAI is charged to some series');
      const totals = await store.transaction((tx) => tx.windowTotals(queries));
      const mismatches = queries.map((q, i) => ({ q, got: totals[i], want: model.total(q) })).filter((x) => x.got!.amount !== x.want.amount || x.got!.count !== x.want.count);
      assert.deepEqual(mismatches.slice(0, 3), [], `${mismatches.length} of ${queries.length} windows differ`);
    });

    test('the statements an earlier version sends to the ledger fail on this schema: a version that reads no own series fails closed', async () => {
      // What versions before the 32-asset bound (migration 025 on SQLite, 026 on PostgreSQL) send: a head read and
      // an append naming `totals`. Left running beside an upgraded instance, or rolled back to, they must refuse
      // requests rather than read totals without the assets' own series (docs/operations.md, Upgrading).
      const store = await fresh();
      assert.ok(store.rawExec);
      await assert.rejects(store.rawExec("SELECT totals FROM ledger WHERE series = 'fleet' ORDER BY at DESC, seq DESC LIMIT 1"), /totals/);
      await assert.rejects(store.rawExec(`INSERT INTO ledger (series, at, seq, audit_seq, charges, totals) VALUES ('fleet', 1, 1, 1, '{}', '{}')`), /totals/);
      await store.rawExec("SELECT kept_totals FROM ledger WHERE series = 'fleet' ORDER BY at DESC, seq DESC LIMIT 1");
    });

    test('window totals stay exact when series are charged more assets than their entries keep', async () => {
      const store = await fresh();
      const model = new LedgerModel();
      // Sixty tokens besides USDC, ETH and the count: every series runs past ASSETS_KEPT_PER_SERIES, and later
      // charges of an asset go to its own series, several in one transaction (a batch's entries) at times.
      const charges = generateCharges(11, 300, 1_000_000, { junkAssets: 60 });
      for (let i = 0; i < charges.length; ) {
        const batch = charges.slice(i, (i += 1 + (i % 4)));
        await store.transaction(async (tx) => {
          for (const c of batch) await tx.appendLedger(c.writes, c.at, c.auditSeq);
        });
        for (const c of batch) model.append(c.writes, c.at, c.auditSeq);
      }
      const queries = model.boundaryQueries(10);
      assert.ok(new Set(queries.filter((q) => q.series === 'fleet').map((q) => q.asset)).size > ASSETS_KEPT_PER_SERIES + 10, 'the fleet has had far more assets than its entries keep');
      // Both reads: a budget's (locked) and a detector's.
      for (const read of ['windowTotals', 'detectorTotals'] as const) {
        const totals = await store.transaction((tx) => tx[read](queries));
        const mismatches = queries.map((q, i) => ({ q, got: totals[i], want: model.total(q) })).filter((x) => x.got!.amount !== x.want.amount || x.got!.count !== x.want.count);
        assert.deepEqual(mismatches.slice(0, 3), [], `${read}: ${mismatches.length} of ${queries.length} windows differ`);
      }
    });

    test('a late charge to an asset the series has not had lands at the series head time (time never goes back within a series)', async () => {
      const store = await fresh();
      await store.transaction((tx) => tx.appendLedger([{ series: 'agent:a', asset: 'x', amount: 5n, count: 1 }], 5_000, 1));
      // Another instance, its clock behind, charges asset y of the same series at 1_000.
      await store.transaction((tx) => tx.appendLedger([{ series: 'agent:a', asset: 'y', amount: 7n, count: 1 }], 1_000, 2));
      const totals = await store.transaction((tx) =>
        tx.windowTotals([
          { series: 'agent:a', asset: 'y', sinceMs: 4_000 },
          { series: 'agent:a', asset: 'y', sinceMs: 5_001 },
          { series: 'agent:a', asset: 'x', sinceMs: 5_000 },
        ]),
      );
      assert.deepEqual(totals, [{ amount: 7n, count: 1 }, { amount: 0n, count: 0 }, { amount: 5n, count: 1 }]);
    });

    test('an asset is any string: names of Object.prototype members and JSON specials are ordinary assets', async () => {
      const store = await fresh();
      const odd = ['__proto__', 'constructor', 'toString', 'a"b\\c', '$.x', '*'];
      await store.transaction((tx) => tx.appendLedger(odd.map((asset, i) => ({ series: 'agent:odd', asset, amount: 2n ** 70n + BigInt(i), count: 1 })), 1_000, 1));
      await store.transaction((tx) => tx.appendLedger([{ series: 'agent:odd', asset: 'constructor', amount: 1n, count: 1 }], 2_000, 2));
      const totals = await store.transaction((tx) => tx.windowTotals([...odd, 'hasOwnProperty'].map((asset) => ({ series: 'agent:odd', asset, sinceMs: 0 }))));
      assert.deepEqual(totals, [
        ...odd.map((asset, i) => ({ amount: 2n ** 70n + BigInt(i) + (asset === 'constructor' ? 1n : 0n), count: asset === 'constructor' ? 2 : 1 })),
        { amount: 0n, count: 0 },
      ]);
    });

    test('one append charging 60 series x 3 assets keeps each series exact, at and after the boundary', async () => {
      const store = await fresh();
      const writes: LedgerWrite[] = Array.from({ length: 60 }, (_, i) => [
        { series: `agent:many|to:${i}`, asset: USDC, amount: BigInt(i + 1), count: 1 },
        { series: `agent:many|to:${i}`, asset: 'eth', amount: BigInt(1000 + i), count: 1 },
        { series: `agent:many|to:${i}`, asset: COUNT_ASSET, amount: 0n, count: 1 },
      ]).flat();
      await store.transaction((tx) => tx.appendLedger(writes, 10_000, 1));
      await store.transaction((tx) => tx.appendLedger(writes.slice(0, 90), 20_000, 2)); // the first 30 series again
      const queries = writes.flatMap((w) => [10_000, 10_001, 20_000, 20_001].map((sinceMs) => ({ series: w.series, asset: w.asset, sinceMs })));
      const totals = await store.transaction((tx) => tx.windowTotals(queries));
      const expected = writes.flatMap((w, i) => {
        const again = i < 90;
        const one = { amount: w.amount, count: 1 };
        const none = { amount: 0n, count: 0 };
        return again ? [{ amount: 2n * w.amount, count: 2 }, one, one, none] : [one, none, none, none];
      });
      assert.deepEqual(totals, expected);
    });

    test('holds converted behind the series head land at the head time, never earlier', async () => {
      const store = await fresh();
      const series = 'agent:ag_1';
      const writes: LedgerWrite[] = [{ series, asset: USDC, amount: 500n, count: 1 }];
      const approval: ApprovalRecord = {
        id: 'apr_skew', agentId: 'ag_1', sessionId: 'ses_1', auditSeq: 1, action: 'evm.transaction', request: {},
        digest: '44'.repeat(32), summary: {}, state: 'pending', createdAt: 1_000, expiresAt: 60_000,
      };
      const window = async (sinceMs: number) => (await store.transaction((tx) => tx.windowTotals([{ series, asset: USDC, sinceMs }])))[0]!;
      await store.transaction((tx) => tx.holdForApproval(approval, writes));
      // Another instance, its clock ahead, charged the series at 8_000.
      await store.transaction((tx) => tx.appendLedger([{ series, asset: USDC, amount: 7n, count: 1 }], 8_000, 2));
      assert.deepEqual(await window(9_000), { amount: 500n, count: 0 }, 'held: its amount counted in a window that starts after it, not its count');
      // Approved at 5_000 by this instance: the converted entry lands at 8_000, the series' last time.
      await store.transaction((tx) => tx.decideApproval('apr_skew', 'approved', 'op', 5_000, 3));
      assert.deepEqual(await window(8_000), { amount: 507n, count: 2 }, 'converted at the head time, at the boundary');
      assert.deepEqual(await window(8_001), { amount: 0n, count: 0 }, 'and not after it');
      assert.deepEqual(await window(0), { amount: 507n, count: 2 }, 'counted once');
    });

    test('a transaction that throws rolls back its ledger writes and rethrows the error unchanged', async () => {
      const store = await fresh();
      const original = new AirlockError('policy_denied', 'no');
      await assert.rejects(store.transaction(async (tx) => {
        await tx.appendLedger([{ series: 's', asset: 'a', amount: 5n, count: 1 }], 1, 1);
        throw original;
      }), (e) => e === original);
      const [t] = await store.transaction((tx) => tx.windowTotals([{ series: 's', asset: 'a', sinceMs: 0 }]));
      assert.deepEqual(t, { amount: 0n, count: 0 });
      let leaked: import('@airlock/core').StoreTx | undefined;
      await store.transaction(async (tx) => void (leaked = tx));
      await assert.rejects(leaked!.windowTotals([]), 'a StoreTx is dead after its transaction');
    });

    describe('approvals hold budget until decided', () => {
      const asset = 'eip155:8453/erc20:0x833589';
      const writes: LedgerWrite[] = [{ series: 'agent:ag_1', asset, amount: 500n, count: 1 }];
      const approval = (id: string, createdAt: number, expiresAt = createdAt + 60_000): ApprovalRecord => ({
        id, agentId: 'ag_1', sessionId: 'ses_1', auditSeq: 1, action: 'evm.transaction', request: { tx: { value: '1' } },
        digest: '11'.repeat(32), summary: { amount: '500' }, state: 'pending', createdAt, expiresAt,
      });
      const window = (store: Store, sinceMs = 0) =>
        store.transaction(async (tx) => (await tx.windowTotals([{ series: 'agent:ag_1', asset, sinceMs }]))[0]!);

      test('held amounts count, denied and expired are released, approved ones are converted at decision time', async () => {
        const store = await fresh();
        await store.transaction((tx) => tx.holdForApproval(approval('apr_1', 1_000), writes));
        await store.transaction((tx) => tx.holdForApproval(approval('apr_2', 1_000), writes));
        await store.transaction((tx) => tx.holdForApproval(approval('apr_3', 1_000), writes));
        assert.deepEqual(await window(store), { amount: 1500n, count: 3 });
        // A held amount counts in every window while held, however old: it may still become spend. Its count is a
        // request made at its time, and counts only in the windows that time is in.
        assert.deepEqual(await window(store, 1_000), { amount: 1500n, count: 3 }, 'at the window start: counted');
        assert.deepEqual(await window(store, 1_001), { amount: 1500n, count: 0 }, 'held amounts count in every window while held, counts where made');

        const denied = await store.transaction((tx) => tx.decideApproval('apr_1', 'denied', 'op', 2_000, 2));
        assert.equal(denied.state, 'denied');
        assert.equal(denied.decidedBy, 'op');
        assert.equal(denied.decidedAt, 2_000);
        await store.transaction((tx) => tx.decideApproval('apr_3', 'expired', 'system', 2_000, 3));
        assert.deepEqual(await window(store), { amount: 500n, count: 1 });

        const approved = await store.transaction((tx) => tx.decideApproval('apr_2', 'approved', 'op', 5_000, 4));
        assert.equal(approved.state, 'approved');
        assert.deepEqual(await window(store), { amount: 500n, count: 1 }, 'converted, not double counted');
        assert.deepEqual(await window(store, 4_000), { amount: 500n, count: 1 }, 'the ledger entry is at the decision time');

        await rejectsWithCode(store.transaction((tx) => tx.decideApproval('apr_2', 'denied', 'op', 6_000, 5)), 'approval_not_pending');
        await rejectsWithCode(store.transaction((tx) => tx.decideApproval('apr_1', 'approved', 'op', 6_000, 5)), 'approval_not_pending');
        await rejectsWithCode(store.transaction((tx) => tx.decideApproval('apr_x', 'approved', 'op', 6_000, 5)), 'not_found');
        assert.deepEqual(await window(store), { amount: 500n, count: 1 });
      });

      test('an approval past its deadline cannot be approved; overdue ones are listed for expiry', async () => {
        const store = await fresh();
        await store.transaction(async (tx) => {
          await tx.holdForApproval(approval('apr_old', 1_000, 2_000), writes);
          await tx.holdForApproval(approval('apr_new', 1_500, 9_000), writes);
        });
        await rejectsWithCode(store.transaction((tx) => tx.decideApproval('apr_old', 'approved', 'op', 2_000, 2)), 'approval_not_pending');
        const overdue = await store.transaction((tx) => tx.overdueApprovals(3_000, 10));
        assert.deepEqual(overdue.map((a) => a.id), ['apr_old']);
        assert.deepEqual(await store.getApproval('apr_new'), approval('apr_new', 1_500, 9_000));
        assert.deepEqual((await store.listApprovals({ state: 'pending' })).map((a) => a.id), ['apr_new', 'apr_old']);
        assert.deepEqual(await store.listApprovals({ agentId: 'ag_other' }), []);
        await store.transaction((tx) => tx.decideApproval('apr_new', 'approved', 'op', 3_000, 3));
        await store.transaction((tx) => tx.setApprovalResult('apr_new', { signature: '0xsig' }));
        assert.deepEqual((await store.getApproval('apr_new'))?.result, { signature: '0xsig' });
        assert.equal((await store.transaction((tx) => tx.getApproval('apr_new')))?.state, 'approved');
        await rejectsWithCode(store.transaction((tx) => tx.setApprovalResult('apr_none', {})), 'not_found');
      });
      test('approvers: unique name and key, disabled in place; quorum approvals keep their requirement and votes, one per approver', async () => {
        const store = await fresh();
        const approver = (id: string, name: string, publicKey: string): Approver => ({ id, name, publicKey, groups: ['ops', 'treasury'], agents: ['ag_1'], status: 'active', createdAt: 1, updatedAt: 1 });
        await store.transaction(async (tx) => {
          await tx.createApprover(approver('apv_a', 'alice', 'aa'.repeat(32)));
          await tx.createApprover(approver('apv_b', 'bob', 'bb'.repeat(32)));
        });
        await rejectsWithCode(store.transaction((tx) => tx.createApprover(approver('apv_c', 'alice', 'cc'.repeat(32)))), 'conflict');
        await rejectsWithCode(store.transaction((tx) => tx.createApprover(approver('apv_c', 'carol', 'aa'.repeat(32)))), 'conflict');
        assert.deepEqual(await store.getApprover('alice'), approver('apv_a', 'alice', 'aa'.repeat(32)));
        assert.deepEqual((await store.getApprover('apv_b'))?.name, 'bob');
        assert.equal(await store.getApprover('carol'), undefined);
        // Only in an exclusive transaction (it must wait for every vote in flight): refused in any other.
        await assert.rejects(store.transaction((tx) => tx.setApproverStatus('apv_b', 'disabled', 5)));
        const disabled = await store.transaction((tx) => tx.setApproverStatus('apv_b', 'disabled', 5), { exclusive: true });
        assert.deepEqual([disabled.status, disabled.updatedAt], ['disabled', 5]);
        assert.deepEqual((await store.listApprovers()).map((a) => [a.name, a.status]), [['alice', 'active'], ['bob', 'disabled']]);

        const quorum = [{ rule: 'agent/big', min: 2, groups: ['treasury'] }];
        await store.transaction((tx) => tx.holdForApproval({ ...approval('apr_q', 1_000), quorum }, writes));
        await store.transaction((tx) => tx.holdForApproval(approval('apr_plain', 1_000), writes));
        const vote = (approverId: string, approver: string, auditSeq: number): ApprovalVote => ({ approvalId: 'apr_q', approverId, approver, groups: ['treasury'], decision: 'approve', at: 1_100, signature: 'ab'.repeat(64), comment: 'ok', auditSeq, createdAt: 1_200 });
        await store.transaction((tx) => tx.recordApprovalVote(vote('apv_a', 'alice', 7)));
        await rejectsWithCode(store.transaction((tx) => tx.recordApprovalVote({ ...vote('apv_a', 'alice', 8), decision: 'reject' })), 'conflict');
        await store.transaction((tx) => tx.recordApprovalVote(vote('apv_b', 'bob', 9)));
        const read = await store.transaction((tx) => tx.getApproval('apr_q', { lock: true }));
        assert.deepEqual(read?.quorum, quorum);
        assert.deepEqual(read?.votes, [vote('apv_a', 'alice', 7), vote('apv_b', 'bob', 9)]);
        const listed = await store.listApprovals({});
        assert.deepEqual(listed.find((a) => a.id === 'apr_q')?.votes?.map((v) => v.approver), ['alice', 'bob']);
        const plain = listed.find((a) => a.id === 'apr_plain');
        assert.equal(plain?.quorum, undefined);
        assert.equal(plain?.votes, undefined);
        const decided = await store.transaction((tx) => tx.decideApproval('apr_q', 'approved', 'approvers:alice,bob', 2_000, 10));
        assert.deepEqual([decided.state, decided.decidedBy, decided.votes?.length], ['approved', 'approvers:alice,bob', 2]);
      });
    });

    describe('x402 payments hold budget until settled or expired', () => {
      const asset = 'eip155:8453/erc20:0x833589';
      const writes: LedgerWrite[] = [{ series: 'agent:ag_1', asset, amount: 700n, count: 1 }, { series: 'agent:ag_1|origin:https://api.example.com', asset, amount: 700n, count: 1 }];
      const payment = (id: string, nonceByte: string, createdAt: number, extra: Partial<PaymentRecord> = {}): PaymentRecord => ({
        id, agentId: 'ag_1', sessionId: 'ses_1', auditSeq: 1, protocol: 'x402', x402Version: 2, network: 'eip155:8453',
        asset: '0x833589fcd6edb6e08f4c7c32d4f71b54bda02913', from: '0x1111111111111111111111111111111111111111', to: '0x2222222222222222222222222222222222222222',
        value: 700n, nonce: `0x${nonceByte.repeat(32)}`, validAfter: 0, validBefore: 1_000 + createdAt / 1000,
        resource: 'https://api.example.com/data', origin: 'https://api.example.com', state: 'reserved', createdAt, updatedAt: createdAt, ...extra,
      });
      const window = (store: Store, series = 'agent:ag_1', sinceMs = 0) =>
        store.transaction(async (tx) => (await tx.windowTotals([{ series, asset, sinceMs }]))[0]!);

      test('reserved payments count in every window; settled converts at settle time, expired releases', async () => {
        const store = await fresh();
        await store.transaction((tx) => tx.holdPayment(payment('pay_1', 'a1', 1_000), writes));
        const { resource: _r2, origin: _o2, x402Version: _v2, ...generic } = payment('pay_2', 'a2', 1_000);
        await store.transaction((tx) => tx.holdPayment(generic, writes));
        assert.deepEqual(await window(store), { amount: 1400n, count: 2 });
        assert.deepEqual(await window(store, 'agent:ag_1', 5_000), { amount: 1400n, count: 0 }, 'held amounts count in every window while held, counts where made');
        assert.deepEqual(await window(store, 'agent:ag_1|origin:https://api.example.com'), { amount: 1400n, count: 2 });

        const { resource: _r, origin: _o, x402Version: _v, ...bare } = payment('pay_2', 'a2', 1_000);
        assert.deepEqual(await store.getPayment('pay_2'), bare, 'optional fields stay absent');
        assert.deepEqual(await store.getPayment('pay_1'), payment('pay_1', 'a1', 1_000));
        assert.equal((await store.transaction((tx) => tx.getPaymentByNonce('eip155:8453', '0x833589FCD6EDB6E08F4C7C32D4F71B54BDA02913', '0x1111111111111111111111111111111111111111', `0x${'A1'.repeat(32)}`)))?.id, 'pay_1');
        await rejectsWithCode(store.transaction((tx) => tx.holdPayment(payment('pay_3', 'a1', 2_000), writes)), 'conflict');
        assert.deepEqual(await window(store), { amount: 1400n, count: 2 }, 'the refused duplicate holds nothing');

        const reported = await store.transaction((tx) => tx.reportPaymentSettlement('pay_1', '0xfeed', 3_000));
        assert.equal(reported.reportedTx, '0xfeed');
        assert.equal(reported.state, 'reserved', 'a report alone settles nothing');
        const settled = await store.transaction((tx) => tx.finishPayment('pay_1', 'settled', 4_000, 2, '0xfeed'));
        assert.equal(settled.state, 'settled');
        assert.equal(settled.settlementTx, '0xfeed');
        assert.deepEqual(await window(store), { amount: 1400n, count: 2 }, 'converted, not double counted');
        assert.deepEqual(await window(store, 'agent:ag_1', 3_500), { amount: 1400n, count: 1 }, 'the ledger entry is at settle time (the held one counts its amount only)');
        await store.transaction((tx) => tx.finishPayment('pay_2', 'expired', 5_000, 3));
        assert.deepEqual(await window(store), { amount: 700n, count: 1 }, 'expired releases its hold');
        await rejectsWithCode(store.transaction((tx) => tx.finishPayment('pay_2', 'settled', 6_000, 4)), 'conflict');
        await rejectsWithCode(store.transaction((tx) => tx.finishPayment('pay_x', 'settled', 6_000, 4)), 'not_found');

        assert.deepEqual((await store.listPayments({ state: 'settled' })).map((p) => p.id), ['pay_1']);
        assert.deepEqual((await store.listPayments({ agentId: 'ag_1' })).length, 2);
        assert.deepEqual(await store.listPayments({ agentId: 'ag_other' }), []);
        const summary = await store.paymentSummary({});
        assert.deepEqual(summary, [
          { agentId: 'ag_1', origin: '', asset: 'eip155:8453/erc20:0x833589fcd6edb6e08f4c7c32d4f71b54bda02913', reserved: 0n, settled: 0n, released: 700n, count: 1 },
          { agentId: 'ag_1', origin: 'https://api.example.com', asset: 'eip155:8453/erc20:0x833589fcd6edb6e08f4c7c32d4f71b54bda02913', reserved: 0n, settled: 700n, released: 0n, count: 1 },
        ]);
        assert.deepEqual(await store.paymentSummary({ agentId: 'ag_other' }), []);
      });

      test('an expired payment releases its amounts but keeps its request count (a signature was released)', async () => {
        const store = await fresh();
        const counted: LedgerWrite[] = [...writes, { series: 'agent:ag_1', asset: COUNT_ASSET, amount: 0n, count: 1 }];
        await store.transaction((tx) => tx.holdPayment(payment('pay_c', 'c1', 1_000), counted));
        const count = () => store.transaction(async (tx) => (await tx.windowTotals([{ series: 'agent:ag_1', asset: COUNT_ASSET, sinceMs: 0 }]))[0]!);
        assert.deepEqual(await count(), { amount: 0n, count: 1 });
        await store.transaction((tx) => tx.finishPayment('pay_c', 'expired', 5_000, 3));
        assert.deepEqual(await window(store), { amount: 0n, count: 0 }, 'the amount is released');
        assert.deepEqual(await count(), { amount: 0n, count: 1 }, 'the count stays, now in the ledger');
      });

      test('settled with a larger transfer: charged the larger amount at settle time, recorded on the payment and in the summary', async () => {
        const store = await fresh();
        await store.transaction((tx) => tx.holdPayment(payment('pay_big', 'c1', 1_000), writes));
        await store.transaction((tx) => tx.holdPayment(payment('pay_small', 'c2', 1_000), writes));
        const big = await store.transaction((tx) => tx.finishPayment('pay_big', 'settled', 4_000, 2, '0xbeef', { value: 1_900n, to: '0x2222222222222222222222222222222222222222' }));
        assert.deepEqual([big.state, big.value, big.settledValue, big.settledTo, big.settlementTx], ['settled', 700n, 1_900n, '0x2222222222222222222222222222222222222222', '0xbeef']);
        assert.deepEqual(await window(store), { amount: 2_600n, count: 2 }, 'the settled 1900 plus the held 700, one request each');
        assert.deepEqual(await window(store, 'agent:ag_1|origin:https://api.example.com'), { amount: 2_600n, count: 2 });
        await store.transaction((tx) => tx.finishPayment('pay_small', 'settled', 5_000, 3, '0xcafe', { value: 100n, to: '0x2222222222222222222222222222222222222222' }));
        assert.deepEqual(await window(store), { amount: 2_600n, count: 2 }, 'a smaller transfer keeps the held charge');
        assert.equal((await store.getPayment('pay_small'))?.settledValue, 100n);
        const [row] = await store.paymentSummary({});
        assert.equal(row?.settled, 2_600n, 'the summary counts what was charged');
      });

      test('reservedPayments lists only reserved ones, soonest validBefore first', async () => {
        const store = await fresh();
        await store.transaction(async (tx) => {
          await tx.holdPayment(payment('pay_late', 'b1', 1_000, { validBefore: 900 }), writes);
          await tx.holdPayment(payment('pay_soon', 'b2', 1_000, { validBefore: 100 }), writes);
          await tx.holdPayment(payment('pay_done', 'b3', 1_000, { validBefore: 50 }), writes);
          await tx.finishPayment('pay_done', 'expired', 2_000, 2);
        });
        assert.deepEqual((await store.transaction((tx) => tx.reservedPayments(10))).map((p) => p.id), ['pay_soon', 'pay_late']);
      });

      test('reservedPayments is ordered by (validBefore, id) and paging with `after` visits every reserved payment exactly once, skipping finished ones', async () => {
        const store = await fresh();
        // Held out of order; several share a validBefore (a page boundary falls inside the tie).
        const all = [
          ['pay_c0', 300], ['pay_b0', 100], ['pay_20', 200], ['pay_09', 100], ['pay_f0', 100], ['pay_50', 500], ['pay_1a', 100], ['pay_10', 200], ['pay_a0', 400],
        ].map(([id, validBefore], i) => payment(id as string, (i + 16).toString(16), 1_000, { validBefore: validBefore as number }));
        await store.transaction(async (tx) => {
          for (const p of all) await tx.holdPayment(p, writes);
          await tx.finishPayment('pay_1a', 'settled', 2_000, 2, '0xfeed'); // in the middle of the tie at 100
          await tx.finishPayment('pay_20', 'expired', 2_000, 3);
        });
        const expected = ['pay_09', 'pay_b0', 'pay_f0', 'pay_10', 'pay_c0', 'pay_a0', 'pay_50'];
        const reserved = (limit: number, after?: { validBefore: number; id: string }) => store.transaction((tx) => tx.reservedPayments(limit, after));
        assert.deepEqual((await reserved(100)).map((p) => p.id), expected);
        assert.deepEqual((await reserved(3)).map((p) => p.id), expected.slice(0, 3));
        for (const limit of [1, 2, 3, 7]) {
          const seen: string[] = [];
          let after: { validBefore: number; id: string } | undefined;
          for (let pages = 0; pages <= expected.length + 1; pages++) {
            const page = await reserved(limit, after);
            assert.ok(page.length <= limit);
            seen.push(...page.map((p) => p.id));
            if (page.length < limit) break;
            after = { validBefore: page.at(-1)!.validBefore, id: page.at(-1)!.id };
          }
          assert.deepEqual(seen, expected, `limit ${limit}: each in order, exactly once`);
        }
        // A cursor at a payment that has finished since (the reconciler's last one), or between two, still pages on.
        assert.deepEqual((await reserved(100, { validBefore: 100, id: 'pay_1a' })).map((p) => p.id), ['pay_b0', 'pay_f0', 'pay_10', 'pay_c0', 'pay_a0', 'pay_50']);
        assert.deepEqual((await reserved(100, { validBefore: 200, id: 'pay_20' })).map((p) => p.id), ['pay_c0', 'pay_a0', 'pay_50']);
        assert.deepEqual((await reserved(100, { validBefore: 100, id: 'pay_c' })).map((p) => p.id), ['pay_f0', 'pay_10', 'pay_c0', 'pay_a0', 'pay_50']);
        assert.deepEqual((await reserved(2, { validBefore: 150, id: '' })).map((p) => p.id), ['pay_10', 'pay_c0']);
        assert.deepEqual(await reserved(100, { validBefore: 500, id: 'pay_50' }), []);
      });
    });

    test('200 concurrent transactions against a limit of 50 append exactly 50', async () => {
      const store = await fresh();
      assert.deepEqual(await runConcurrentBudget([store]), { appended: BUDGET_LIMIT, total: BUDGET_LIMIT });
    });

    test('a nested transaction is refused instead of deadlocking', async () => {
      const store = await fresh();
      await rejectsWithCode(store.transaction(() => store.transaction(async () => 1)), 'internal');
    });

    // Group commit: transactions submitted together share one commit, a savepoint each.
    describe('transactions submitted together', () => {
      const series = 'agent:ag_group';
      const charge = (tx: Parameters<Parameters<Store['transaction']>[0]>[0], at: number, tag: string) =>
        tx.appendAudit({ at, type: 'group.test', actor: 'system', data: { tag } }).then(async (entry) => {
          await tx.appendLedger([{ series, asset: '*', amount: 0n, count: 1 }], at, entry.seq);
          return entry;
        });

      test('run in submission order, and one that throws is undone alone', async () => {
        const store = await fresh();
        // One affinity: one lane, so one batch on PostgreSQL too (without one, each took its own lane, and under load
        // c's batch could commit before a's: a flake seen once, not an ordering bug).
        const together = { affinity: 'group-order' };
        const results = await Promise.allSettled([
          store.transaction(async (tx) => (await charge(tx, 10, 'a'), 'a'), together),
          store.transaction(async (tx) => {
            await charge(tx, 11, 'b');
            throw new AirlockError('invalid_request', 'b changed its mind');
          }, together),
          store.transaction(async (tx) => (await charge(tx, 12, 'c'), 'c'), together),
        ]);
        assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
        assert.equal(code((results[1] as PromiseRejectedResult).reason), 'invalid_request', 'the thrower gets its own error');
        const leaves = await store.readAuditLeaves(0, 10);
        const entries = await store.queryAudit({ limit: 10 });
        assert.deepEqual(entries.map((e) => [e.leafIndex, e.data]), [[0, { tag: 'a' }], [1, { tag: 'c' }]], 'b left no entry and no gap in the tree');
        // SQLite numbers entries as it writes them; PostgreSQL draws seqs from a sequence, so b's is skipped.
        if (store.dialect === 'sqlite') assert.deepEqual(leaves.map((e) => e.seq), [1, 2]);
        else assert.ok(leaves[0]!.seq < leaves[1]!.seq);
        const verifier = new AuditLogVerifier();
        assert.ok(leaves.every((e) => verifier.push(e)), 'the log is contiguous over the gap b left');
        assert.equal(verifier.finish([], [], { verifyTreeHead: () => false, verifyCheckpoint: () => false }).ok, true);
        const [total] = await store.transaction((tx) => tx.windowTotals([{ series, asset: '*', sinceMs: 0 }]));
        assert.equal(total!.count, 2, 'b charged nothing');
      });

      test('a statement that fails inside one (a unique violation) does not spoil the others', async () => {
        const store = await fresh();
        const claim = (digest: string): NonceClaim => ({ key: 'eip3009|k', agentId: 'ag_x', digest, auditSeq: 1, state: 'signed', createdAt: 1 });
        const together = { affinity: 'group-unique' };
        const results = await Promise.allSettled([
          store.transaction(async (tx) => tx.claimNonces([claim('aa')]), together),
          store.transaction(async (tx) => tx.claimNonces([claim('bb')]), together),
          store.transaction(async (tx) => (await charge(tx, 5, 'after'), 'after'), together),
        ]);
        assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
        assert.equal(code((results[1] as PromiseRejectedResult).reason), 'conflict');
        const claims = await store.transaction((tx) => tx.getNonceClaims(['eip3009|k']));
        assert.deepEqual(claims.map((c) => c.digest), ['aa']);
        assert.deepEqual((await store.readAudit(1, 10)).map((e) => e.data), [{ tag: 'after' }]);
      });

      // A batch remembers the latest policy of each scope it has read (SQLite: with the audit head and ledger
      // heads) for the rest of its transaction: a write inside the batch must show in every request after it,
      // and one rolled back must not. One affinity keeps the five in one batch on PostgreSQL too.
      // A policy is stored only by an exclusive transaction (shared/exclusive-writes.ts). On SQLite that is still
      // one of the batch's transactions, so the batch must see it; on PostgreSQL it runs outside every batch.
      test('a policy stored by one of them is the latest for every one after it; one undone is not', async (t) => {
        const store = await fresh();
        if (store.dialect === 'postgres') return t.skip('PostgreSQL stores a policy outside every batch (exclusive transaction); the refusal in a batch is the next test');
        await store.putPolicy({ scope: 'fleet', hash: 'h1', document: { v: 1 }, author: 'op', createdAt: 1 });
        type Tx = Parameters<Parameters<Store['transaction']>[0]>[0];
        const together = <T,>(fn: (tx: Tx) => Promise<T>) => store.transaction(fn, { affinity: 'policy-test' });
        const putTogether = <T,>(fn: (tx: Tx) => Promise<T>) => store.transaction(fn, { affinity: 'policy-test', exclusive: true });
        const latest = (tx: Tx) => tx.getPolicy('fleet').then((p) => [p?.version, p?.document]);
        const results = await Promise.allSettled([
          together(latest),
          putTogether((tx) => tx.putPolicy({ scope: 'fleet', hash: 'h2', document: { v: 2 }, author: 'op', createdAt: 2 }).then((p) => p.version)),
          // Fails having written nothing (on PostgreSQL: without a savepoint of its own): undoing it undoes no other.
          together(async (tx) => {
            await latest(tx);
            throw new AirlockError('invalid_request', 'read and gave up');
          }),
          together(latest),
          putTogether(async (tx) => {
            await tx.putPolicy({ scope: 'fleet', hash: 'h3', document: { v: 3 }, author: 'op', createdAt: 3 });
            assert.deepEqual(await latest(tx), [3, { v: 3 }], 'a request reads its own policy');
            throw new AirlockError('invalid_request', 'changed its mind');
          }),
          together(latest),
        ]);
        assert.deepEqual(
          results.map((r) => (r.status === 'fulfilled' ? r.value : code(r.reason))),
          [[1, { v: 1 }], 2, 'invalid_request', [2, { v: 2 }], 'invalid_request', [2, { v: 2 }]],
        );
        assert.deepEqual((await store.getPolicy('fleet'))?.version, 2, 'the undone version was not kept');
      });

      // PostgreSQL keeps the rows a batch's agent statements read for its next request of the same agent
      // (postgres-tx.ts, AgentRows): a write inside the batch must show in every read after it, and one rolled
      // back must not.
      // The writes of an agent's status and a session that signing reads are exclusive (shared/exclusive-writes.ts),
      // which a PostgreSQL batch never is; a circuit breaker's freeze is the one such write made in a batch (in
      // the request that trips it), so it is the one the batch's kept rows must see.
      test('an agent frozen by a breaker tripped in one of them is read frozen by every one after it; one undone is not', async () => {
        const store = await fresh();
        const [agent] = await store.createAgents(agentsNamed('memo'), fakeAddress, 0);
        const id = agent!.id;
        await store.createSession({ id: 'ses_memo', agentId: id, tokenHash: 'ab'.repeat(32), scope: { actions: ['evm.transaction'], chains: [], budgets: [] }, createdAt: 1, expiresAt: 10_000 });
        type Tx = Parameters<Parameters<Store['transaction']>[0]>[0];
        const together = <T,>(fn: (tx: Tx) => Promise<T>) => store.transaction(fn, { affinity: id });
        // The signing path's read: agent and session asked for in the same turn (one statement on PostgreSQL).
        const read = (tx: Tx) => Promise.all([tx.getAgent(id), tx.getSession('ses_memo')]).then(([a, s]) => `${a?.status}/${s?.revokedAt ?? 'live'}`);
        const trip = (tx: Tx, breakerId: string, now: number) => tx.tripBreaker({
          id: breakerId, detector: 'detector/fleet/burst', type: 'request_burst', action: 'freeze', scope: 'agent', agentId: id, policyVersion: 'fleet@1:x',
          figures: { observed: '13', threshold: '12' }, message: 'burst', agents: [id], state: 'tripped', trippedAt: now, trippedSeq: 1,
        }, { freeze: true, now });
        const results = await Promise.allSettled([
          together(read),
          together(read),
          together(async (tx) => {
            await trip(tx, 'brk_memo1', 60);
            assert.equal(await read(tx), 'frozen/live', 'a request reads its own change');
            throw new AirlockError('invalid_request', 'changed its mind');
          }),
          together(read),
          together(async (tx) => (await trip(tx, 'brk_memo2', 70), read(tx))),
          together(read),
        ]);
        assert.deepEqual(
          results.map((r) => (r.status === 'fulfilled' ? r.value : code(r.reason))),
          ['active/live', 'active/live', 'invalid_request', 'active/live', 'frozen/live', 'frozen/live'],
        );
        assert.equal((await store.getAgent(id))?.status, 'frozen');
        assert.deepEqual((await store.listBreakers({})).map((b) => b.id), ['brk_memo2'], 'the undone trip left no breaker');
      });

      // What a transaction that is not exclusive may not write: each is refused (`internal`, naming the write and
      // the fix), its transaction rolls back, and the others of its batch go on. An exclusive one may.
      test('an agent status, session revoke, policy or key rotation outside an exclusive transaction is refused and changes nothing', async () => {
        const store = await fresh();
        const [agent] = await store.createAgents(agentsNamed('guard'), fakeAddress, 0);
        const id = agent!.id;
        await store.createSession({ id: 'ses_guard', agentId: id, tokenHash: 'cd'.repeat(32), scope: { actions: ['evm.transaction'], chains: [], budgets: [] }, createdAt: 1, expiresAt: 10_000 });
        await store.putPolicy({ scope: 'fleet', hash: 'h1', document: { v: 1 }, author: 'op', createdAt: 1 });
        type Tx = Parameters<Parameters<Store['transaction']>[0]>[0];
        const writes: [string, (tx: Tx) => Promise<unknown>][] = [
          ['setAgentStatus', (tx) => tx.setAgentStatus(id, 'frozen', 50)],
          ['revokeSession', (tx) => tx.revokeSession('ses_guard', 50)],
          ['putPolicy', (tx) => tx.putPolicy({ scope: 'fleet', hash: 'h2', document: { v: 2 }, author: 'op', createdAt: 50 })],
          ['rotateAgentKey', (tx) => tx.rotateAgentKey(id, fakeAddress, 50)],
        ];
        const together = <T,>(fn: (tx: Tx) => Promise<T>) => store.transaction(fn, { affinity: id });
        const results = await Promise.allSettled([
          ...writes.map(([, write]) => together(async (tx) => {
            await tx.appendAudit({ at: 50, type: 'test.before', actor: 'operator', data: {} });
            return write(tx);
          })),
          together((tx) => tx.getAgent(id).then((a) => a?.status)),
        ]);
        for (const [i, [name]] of writes.entries()) {
          const r = results[i]!;
          assert.equal(r.status, 'rejected', `${name} outside an exclusive transaction`);
          assert.equal(code((r as PromiseRejectedResult).reason), 'internal');
          assert.match(String((r as PromiseRejectedResult).reason.message), new RegExp(`${name} must run in an exclusive transaction`));
        }
        assert.deepEqual(results.at(-1), { status: 'fulfilled', value: 'active' }, 'the rest of the batch went on');
        assert.equal((await store.getAgent(id))?.status, 'active');
        assert.deepEqual((await store.listAgentKeys(id)).map((k) => k.keyIndex), [0], 'no key rotated');
        assert.equal((await store.getSession('ses_guard'))?.revokedAt, undefined);
        assert.equal((await store.getPolicy('fleet'))?.version, 1);
        assert.equal((await store.auditHead()).seq, 0, 'their audit entries rolled back with them');

        for (const [name, write] of writes) await store.transaction(write, { exclusive: true }).catch((e) => assert.fail(`${name} in an exclusive transaction: ${e}`));
        assert.equal((await store.getAgent(id))?.status, 'frozen');
        assert.equal((await store.getSession('ses_guard'))?.revokedAt, 50);
        assert.equal((await store.getPolicy('fleet'))?.version, 2);
        assert.deepEqual((await store.listAgentKeys(id)).map((k) => k.keyIndex), [0, 1]);
      });

      // PostgreSQL keeps a batch's window reads for its later requests (window-reads.ts), with the first entries
      // after each window's start: every later read must answer what a read of its own would, for a start inside
      // those entries, past them or before them; a hold stored in the batch counts from then on, one undone not.
      test('a window read after another in the batch answers what a read of its own would', async () => {
        const store = await fresh();
        const s = 'agent:ag_windows';
        // Three entries per millisecond from 1000, amount i + 1: more than one read keeps after a window's start,
        // and the last it keeps is not the last of its millisecond.
        const n = 60;
        const at = (i: number) => 1000 + Math.floor(i / 3);
        for (let i = 0; i < n; i++) await store.transaction((tx) => tx.appendLedger([{ series: s, asset: 'x', amount: BigInt(i + 1), count: 1 }], at(i), i + 1));
        // What a read of its own gives: the entries at or after `since`, and `more` (holds, pending charges, each
        // [amount, time]: a hold's amount counts in every window, its count only in a window its time is in).
        const exact = (since: number, ...more: [bigint, number][]) => {
          let amount = more.reduce((a, [b]) => a + b, 0n);
          let count = more.filter(([, t]) => t >= since).length;
          for (let i = 0; i < n; i++) if (at(i) >= since) (amount += BigInt(i + 1)), count++;
          return `${amount}/${count}`;
        };
        type Tx = Parameters<Parameters<Store['transaction']>[0]>[0];
        const together = <T,>(fn: (tx: Tx) => Promise<T>) => store.transaction(fn, { affinity: 'window-reads' });
        const window = (tx: Tx, sinceMs: number) =>
          tx.windowTotals([{ series: s, asset: 'x', sinceMs }, { series: s, asset: 'constructor', sinceMs }]).then((ts) => ts.map((t) => `${t.amount}/${t.count}`).join(' '));
        const hold = (tx: Tx, id: string, amount: bigint, createdAt: number) =>
          tx.holdForApproval({ id, agentId: 'ag_windows', sessionId: 'ses_1', auditSeq: 1, action: 'evm.transaction', request: {}, digest: '11'.repeat(32), summary: {}, state: 'pending', createdAt, expiresAt: 10 ** 12 }, [{ series: s, asset: 'x', amount, count: 1 }]);
        const starts = [1000, 1001, 1004, 1005, 1006, 1007, 1011, 1012, 999, 1019, 1020, 5000];
        const results = await Promise.allSettled([
          ...starts.map((since) => together((tx) => window(tx, since))),
          together(async (tx) => (await hold(tx, 'apr_w1', 500n, 1033), window(tx, 1030))),
          together((tx) => window(tx, 1030)),
          // Past the hold's time: its count has left the window, its amount has not (a read kept for 1030 answers
          // only up to 1033).
          together((tx) => window(tx, 1034)),
          together(async (tx) => {
            await hold(tx, 'apr_w2', 1000n, 1);
            assert.equal(await window(tx, 1030), `${exact(1030, [500n, 1033], [1000n, 1])} 0/0`, 'a request counts its own hold');
            throw new AirlockError('invalid_request', 'changed its mind');
          }),
          together((tx) => window(tx, 1030)),
          // A charge waits for the batch's end on PostgreSQL: the reads after it add it.
          together(async (tx) => (await tx.appendLedger([{ series: s, asset: 'x', amount: 7n, count: 1 }], 2000, 99), window(tx, 1035))),
          together((tx) => window(tx, 1036)),
        ]);
        const withCharge = (since: number) => exact(since, [500n, 1033], [7n, 2000]);
        assert.deepEqual(
          results.map((r) => (r.status === 'fulfilled' ? r.value : code(r.reason))),
          [
            ...starts.map((since) => `${exact(since)} 0/0`),
            `${exact(1030, [500n, 1033])} 0/0`,
            `${exact(1030, [500n, 1033])} 0/0`,
            `${exact(1034, [500n, 1033])} 0/0`,
            'invalid_request',
            `${exact(1030, [500n, 1033])} 0/0`,
            `${withCharge(1035)} 0/0`,
            `${withCharge(1036)} 0/0`,
          ],
        );
        assert.deepEqual(await store.transaction((tx) => window(tx, 1036)), `${withCharge(1036)} 0/0`, 'committed as read');
      });

      // A window read still on its way when its own request writes (a hold, sent alongside) answers that request
      // as it may, but must not be kept for the next: it may predate the write.
      test('a window read that a write overtakes is not kept for the requests after it', async () => {
        const store = await fresh();
        const s = 'agent:ag_overtaken';
        type Tx = Parameters<Parameters<Store['transaction']>[0]>[0];
        const together = <T,>(fn: (tx: Tx) => Promise<T>) => store.transaction(fn, { affinity: 'overtaken' });
        const window = (tx: Tx) => tx.windowTotals([{ series: s, asset: 'x', sinceMs: 0 }]).then(([t]) => `${t!.amount}/${t!.count}`);
        const hold = (tx: Tx) =>
          tx.holdForApproval({ id: 'apr_overtaken', agentId: 'ag_overtaken', sessionId: 'ses_1', auditSeq: 1, action: 'evm.transaction', request: {}, digest: '11'.repeat(32), summary: {}, state: 'pending', createdAt: 1, expiresAt: 10 ** 12 }, [{ series: s, asset: 'x', amount: 500n, count: 1 }]);
        const results = await Promise.allSettled([
          together(async (tx) => (await Promise.all([window(tx), hold(tx)]), 'held')),
          together(window),
        ]);
        assert.deepEqual(results.map((r) => (r.status === 'fulfilled' ? r.value : String(r.reason))), ['held', '500/1']);
      });

      // PostgreSQL inserts a batch's ledger entries in one statement before its COMMIT (ledger.ts, PendingLedger):
      // until then the batch's own window reads must count them, skip one undone, and the entries must land as
      // one at a time would (seq, running totals, a late time clamped to the series head, the fleet striped).
      test('a charge counts in every window read after it, its own included; one undone does not; they land as if one by one', async () => {
        const store = await fresh();
        type Tx = Parameters<Parameters<Store['transaction']>[0]>[0];
        const together = <T,>(fn: (tx: Tx) => Promise<T>) => store.transaction(fn, { affinity: 'ledger-test' });
        const windows = (tx: Tx, sinceMs = 0) =>
          tx.windowTotals([{ series, asset: 'x', sinceMs }, { series, asset: '*', sinceMs }, { series: 'fleet', asset: 'x', sinceMs }]).then((ts) => ts.map((t) => `${t.amount}/${t.count}`));
        const pay = (tx: Tx, amount: bigint, at: number, seq: number) =>
          tx.appendLedger([{ series, asset: 'x', amount, count: 1 }, { series, asset: '*', amount: 0n, count: 1 }, { series: 'fleet', asset: 'x', amount, count: 1 }], at, seq);
        const results = await Promise.allSettled([
          together(async (tx) => (await pay(tx, 5n, 10_000, 1), windows(tx))),
          together((tx) => windows(tx)),
          together(async (tx) => {
            await pay(tx, 7n, 10_001, 2);
            assert.deepEqual(await windows(tx), ['12/2', '0/2', '12/2'], 'a request counts its own charge');
            throw new AirlockError('invalid_request', 'changed its mind');
          }),
          together((tx) => windows(tx)),
          // Its clock behind: lands at 10_000, the series' last time.
          together(async (tx) => (await pay(tx, 1n, 9_000, 3), windows(tx))),
        ]);
        assert.deepEqual(
          results.map((r) => (r.status === 'fulfilled' ? r.value : code(r.reason))),
          [['5/1', '0/1', '5/1'], ['5/1', '0/1', '5/1'], 'invalid_request', ['5/1', '0/1', '5/1'], ['6/2', '0/2', '6/2']],
        );
        assert.deepEqual(await store.transaction((tx) => windows(tx)), ['6/2', '0/2', '6/2'], 'committed: the undone charge is not there');
        assert.deepEqual(await store.transaction((tx) => windows(tx, 10_000)), ['6/2', '0/2', '6/2'], 'the late charge landed at the head time');
        assert.deepEqual(await store.transaction((tx) => windows(tx, 10_001)), ['0/0', '0/0', '0/0']);
        // The next charge builds on the running totals the batch left.
        await store.transaction((tx) => pay(tx, 100n, 20_000, 4));
        assert.deepEqual(await store.transaction((tx) => windows(tx)), ['106/3', '0/3', '106/3']);
        assert.deepEqual(await store.transaction((tx) => windows(tx, 10_001)), ['100/1', '0/1', '100/1']);
      });

      // A batch's entries of one series that charge different assets: each entry's running totals carry every asset
      // the series has, the ones charged earlier in the same batch included (PostgreSQL sums them per entry before
      // the insert), so the head answers for all of them afterwards.
      test('entries of one series in one batch charging different assets: the head carries every asset', async () => {
        const store = await fresh();
        const s = 'agent:ag_assets';
        type Tx = Parameters<Parameters<Store['transaction']>[0]>[0];
        const together = <T,>(fn: (tx: Tx) => Promise<T>) => store.transaction(fn, { affinity: 'assets-test' });
        const totals = (sinceMs = 0) =>
          store.transaction((tx) => tx.windowTotals(['x', 'y', 'z'].map((asset) => ({ series: s, asset, sinceMs })))).then((ts) => ts.map((t) => `${t.amount}/${t.count}`));
        await store.transaction((tx) => tx.appendLedger([{ series: s, asset: 'z', amount: 1n, count: 1 }], 1_000, 1));
        await Promise.all([
          together((tx) => tx.appendLedger([{ series: s, asset: 'x', amount: 5n, count: 1 }], 2_000, 2)),
          together((tx) => tx.appendLedger([{ series: s, asset: 'y', amount: 7n, count: 1 }], 2_001, 3)),
          together((tx) => tx.appendLedger([{ series: s, asset: 'x', amount: 11n, count: 1 }, { series: s, asset: 'y', amount: 2n ** 70n, count: 2 }], 2_002, 4)),
        ]);
        assert.deepEqual(await totals(), ['16/2', `${7n + 2n ** 70n}/3`, '1/1']);
        assert.deepEqual(await totals(2_001), ['11/1', `${7n + 2n ** 70n}/3`, '0/0']);
        assert.deepEqual(await totals(2_002), ['11/1', `${2n ** 70n}/2`, '0/0']);
        await store.transaction((tx) => tx.appendLedger([{ series: s, asset: 'z', amount: 3n, count: 1 }], 3_000, 5));
        assert.deepEqual(await totals(), ['16/2', `${7n + 2n ** 70n}/3`, '4/2']);
        assert.deepEqual(await totals(2_500), ['0/0', '0/0', '3/1']);
      });

      // PostgreSQL takes a request's savepoint only before its first write: a read that fails before one aborts
      // the whole transaction. The requests around it must still commit, each exactly once, and the batch must
      // not report a COMMIT that PostgreSQL turned into a ROLLBACK.
      test('a read that fails inside one leaves the others to commit, each exactly once', async () => {
        const store = await fresh();
        type Tx = Parameters<Parameters<Store['transaction']>[0]>[0];
        const together = <T,>(fn: (tx: Tx) => Promise<T>) => store.transaction(fn, { affinity: 'failing-read' });
        const results = await Promise.allSettled([
          together(async (tx) => (await charge(tx, 10, 'before'), 'before')),
          // PostgreSQL refuses a NUL character in text; SQLite takes it (the read then simply finds nothing).
          together(async (tx) => (await tx.windowTotals([{ series: 'agent:bad\u0000series', asset: '*', sinceMs: 0 }]), 'read')),
          together(async (tx) => (await charge(tx, 11, 'after'), 'after')),
        ]);
        assert.deepEqual([results[0]!.status, results[2]!.status], ['fulfilled', 'fulfilled'], JSON.stringify(results.map((r) => (r.status === 'rejected' ? String(r.reason) : r.value))));
        if (store.dialect === 'postgres') assert.equal(results[1]!.status, 'rejected');
        assert.deepEqual((await store.queryAudit({ limit: 10 })).map((e) => e.data), [{ tag: 'before' }, { tag: 'after' }]);
        const [total] = await store.transaction((tx) => tx.windowTotals([{ series, asset: '*', sinceMs: 0 }]));
        assert.equal(total!.count, 2);
      });

      test('many at once all commit, each exactly once', async () => {
        const store = await fresh();
        const n = 300;
        const entries = await Promise.all(Array.from({ length: n }, (_, i) => store.transaction((tx) => charge(tx, 100 + i, `t${i}`))));
        const seqs = entries.map((e) => e.seq);
        assert.equal(new Set(seqs).size, n, 'every entry has its own seq');
        // Every caller learns its entry's place in the tree, and the places are the whole tree, once each.
        assert.deepEqual(entries.map((e) => e.leafIndex).sort((a, b) => a! - b!), Array.from({ length: n }, (_, i) => i));
        const leaves = await store.readAuditLeaves(0, n + 1);
        assert.deepEqual(leaves.map((e) => [e.leafIndex, e.seq]), [...entries].sort((a, b) => a.leafIndex! - b.leafIndex!).map((e) => [e.leafIndex, e.seq]));
        // SQLite runs one batch at a time, in submission order; PostgreSQL runs several batches at once.
        if (store.dialect === 'sqlite') assert.deepEqual(seqs, Array.from({ length: n }, (_, i) => i + 1), 'seq follows submission order');
        const [total] = await store.transaction((tx) => tx.windowTotals([{ series, asset: '*', sinceMs: 0 }]));
        assert.equal(total!.count, n);
      });
    });
  });
}

/**
 * History must not slow a window down: window totals are answered from running sums. Checks
 * correctness over 100,000 rows (answers that scanned or skipped rows would differ).
 * `seed` writes `rows` ledger rows for (series, asset) with amount 3 and at = i * 1000, i = 1..rows.
 */
export async function checkLargeHistory(store: Store, seed: (series: string, asset: string, rows: number) => Promise<void>): Promise<void> {
  const rows = 100_000;
  await seed('agent:hist', 'x', rows);
  await store.transaction((tx) => tx.appendLedger([{ series: 'agent:hist', asset: 'x', amount: 10n, count: 1 }], rows * 1000 + 500, 1));
  const queries = [0, 1000, 50_000_500, 99_999_000, rows * 1000 + 1, rows * 1000 + 501].map((sinceMs) => ({ series: 'agent:hist', asset: 'x', sinceMs }));
  const totals = await store.transaction((tx) => tx.windowTotals(queries));
  assert.deepEqual(totals, [
    { amount: 3n * 100_000n + 10n, count: 100_001 },
    { amount: 3n * 100_000n + 10n, count: 100_001 },
    { amount: 3n * 50_000n + 10n, count: 50_001 }, // rows 50_001..100_000 (at >= 50_000_500) and the last append
    { amount: 3n * 2n + 10n, count: 3 },
    { amount: 10n, count: 1 },
    { amount: 0n, count: 0 },
  ]);
}
