// The signing routes take a recently authenticated session from a cache and read the session and the agent
// once, inside the signing transaction. A freeze, a revoke or an expiry must still refuse the very next request,
// on this instance and on another instance sharing the PostgreSQL store (whose cache nobody invalidates), and a
// flood with a dead credential must still hit the session rate limit before it writes audit entries.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock, type StoreTx } from '@airlock/core';
import { createApp } from './http/app.ts';
import { AirlockHolder } from './http/holder.ts';
import { openAirlock, type Airlock } from './runtime.ts';
import pg from 'pg';
import { ALICE, PG_URL, TEST_PASSPHRASE, TEST_VAULT, provisionAgent, startHarness, usdcPolicy, usdcTransfer, USDC_ASSET, type Harness, type StoreKind } from './testing/harness.ts';

type Call = Harness['call'];
type Provisioned = Awaited<ReturnType<typeof provisionAgent>>;
type Child = { id: string; token: string };

async function auditOfSession(h: Harness, agentName: string, sessionId: string): Promise<any[]> {
  const entries = (await h.admin('GET', `/v1/audit?agent=${agentName}&limit=1000`)).body.entries as any[];
  return entries.filter((e) => e.sessionId === sessionId);
}

/** Counts reads of sessions and agents, outside transactions and inside them. */
function countCredentialReads(airlock: Airlock) {
  const counts = { outside: 0, inside: 0 };
  const store = airlock.store;
  const { getSession, getAgent, transaction } = store;
  store.getSession = ((...args: Parameters<typeof getSession>) => (counts.outside++, getSession.apply(store, args))) as typeof getSession;
  store.getAgent = ((...args: Parameters<typeof getAgent>) => (counts.outside++, getAgent.apply(store, args))) as typeof getAgent;
  store.transaction = (<T>(fn: (tx: StoreTx) => Promise<T>, options?: Parameters<typeof transaction>[1]) =>
    transaction.call(store, (tx: StoreTx) => {
      const counted = new Proxy(tx, {
        get(target, key, receiver) {
          const value = Reflect.get(target, key, receiver);
          if ((key === 'getSession' || key === 'getAgent') && typeof value === 'function') {
            return (...args: unknown[]) => (counts.inside++, value.apply(target, args));
          }
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      return fn(counted);
    }, options as never)) as typeof transaction;
  return {
    counts,
    restore() {
      Object.assign(store, { getSession, getAgent, transaction });
    },
  };
}

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`credentials on the signing routes (${store})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ store });
    });
    after(async () => h.close());

    test('a signature reads the session and the agent once each, in its transaction; the first request also authenticates from the store', async () => {
      const { token } = await provisionAgent(h, { policy: usdcPolicy() });
      const reads = countCredentialReads(h.airlock);
      try {
        assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1n) })).status, 200);
        assert.deepEqual(reads.counts, { outside: 2, inside: 2 }, 'first request: authenticated from the store, then re-read in the transaction');
        for (let i = 1; i <= 3; i++) assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1n, i) })).status, 200);
        assert.deepEqual(reads.counts, { outside: 2, inside: 8 }, 'later requests: read only in their transaction');
        // A route that does not re-read in a transaction of its own never uses the cache.
        assert.equal((await h.call('GET', '/v1/session', { token })).status, 200);
        assert.equal(reads.counts.outside, 4);
      } finally {
        reads.restore();
      }
    });

    for (const [what, land, code, status] of [
      ['a revoke', (p: Awaited<ReturnType<typeof provisionAgent>>) => h.admin('POST', `/v1/sessions/${p.session.id}/revoke`), 'session_revoked', 401],
      ['a freeze', (p: Awaited<ReturnType<typeof provisionAgent>>) => h.admin('POST', `/v1/agents/${p.agent.name}/freeze`), 'agent_frozen', 403],
      ['a retirement', (p: Awaited<ReturnType<typeof provisionAgent>>) => h.admin('POST', `/v1/agents/${p.agent.name}/retire`), 'session_revoked', 401],
    ] as const) {
      test(`${what} refuses the very next signing request of a credential that just signed, and it is recorded as auth.refused`, async () => {
        const p = await provisionAgent(h, { policy: usdcPolicy() });
        assert.equal((await h.call('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 1n) })).status, 200);
        assert.equal((await land(p)).status, 200);
        const res = await h.call('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 1n, 1) });
        assert.equal(res.status, status, JSON.stringify(res.body));
        assert.equal(res.body.error.code, code);
        assert.equal(res.body.signedTransaction, undefined);
        const refused = (await auditOfSession(h, p.agent.name, p.session.id)).filter((e) => e.type === 'auth.refused');
        assert.deepEqual(refused.map((e) => e.data.errorCode), [code]);
      });
    }

    test('after an unfreeze the credential signs again (refusals are never cached)', async () => {
      const p = await provisionAgent(h, { policy: usdcPolicy() });
      assert.equal((await h.call('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 1n) })).status, 200);
      await h.admin('POST', `/v1/agents/${p.agent.name}/freeze`);
      assert.equal((await h.call('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 1n, 1) })).status, 403);
      await h.admin('POST', `/v1/agents/${p.agent.name}/unfreeze`);
      assert.equal((await h.call('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 1n, 2) })).status, 200);
    });

    test('an agent whose key changed after its credential was cached is refused 409 conflict, not signed with the old key', async () => {
      // Nothing rotates keys yet (keyIndex is reserved for it); the store is changed directly, as a rotation would.
      const p = await provisionAgent(h, { policy: usdcPolicy() });
      assert.equal((await h.call('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 1n) })).status, 200);
      await (h.airlock.store as unknown as { rawExec(sql: string): Promise<void> }).rawExec(`UPDATE agents SET key_index = key_index + 1 WHERE id = '${p.agent.id}'`);
      const res = await h.call('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 1n, 1) });
      assert.equal(res.status, 409, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'conflict');
      assert.equal(res.body.signedTransaction, undefined);
    });

    test('a wrong secret for a cached session is refused 401 unauthenticated, and the genuine token still signs', async () => {
      const p = await provisionAgent(h, { policy: usdcPolicy() });
      assert.equal((await h.call('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 1n) })).status, 200);
      const wrong = await h.call('POST', '/v1/sign/transaction', { token: `${p.session.id}.${'B'.repeat(43)}`, body: usdcTransfer(ALICE, 1n, 1) });
      assert.equal(wrong.status, 401);
      assert.equal(wrong.body.error.code, 'unauthenticated');
      assert.equal((await h.call('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 1n, 1) })).status, 200);
    });
  });
}

describe('two instances on one PostgreSQL: a credential cached by one is refused there as soon as the other freezes or revokes it', () => {
  let h: Harness;
  let second: Airlock;
  let clock: ManualClock;
  let callSecond: Call;
  before(async () => {
    h = await startHarness({ store: 'postgres' });
    // The second instance: its own runtime (and so its own credential cache) on the same vault and store.
    clock = new ManualClock(Date.now());
    second = await openAirlock(h.config, TEST_PASSPHRASE, { vault: TEST_VAULT, timers: false, clock });
    const app = createApp(new AirlockHolder(second), { bodyLimitBytes: h.config.bodyLimitBytes, sessionRate: { perSecond: 1, burst: 3 } });
    callSecond = async (method, path, o = {}) => {
      const headers: Record<string, string> = { 'content-type': 'application/json', ...(o.token ? { authorization: `Bearer ${o.token}` } : {}) };
      const body = o.body !== undefined ? JSON.stringify(o.body, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)) : undefined;
      const res = await app.request(path, { method, headers, ...(body !== undefined ? { body } : {}) });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
    };
  });
  after(async () => {
    await second.close();
    await h.close();
  });

  for (const [what, land, code, status] of [
    ['revoked', (p: Awaited<ReturnType<typeof provisionAgent>>) => h.admin('POST', `/v1/sessions/${p.session.id}/revoke`), 'session_revoked', 401],
    ['frozen', (p: Awaited<ReturnType<typeof provisionAgent>>) => h.admin('POST', `/v1/agents/${p.agent.name}/freeze`), 'agent_frozen', 403],
  ] as const) {
    test(`${what} through the first instance: the second refuses its very next request, and every one after`, async () => {
      const p = await provisionAgent(h, { policy: usdcPolicy() });
      assert.equal((await callSecond('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 1n) })).status, 200);
      clock.advance(1000);
      assert.equal((await land(p)).status, 200);
      for (let i = 1; i <= 2; i++) {
        clock.advance(1000);
        const res = await callSecond('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 1n, i) });
        assert.equal(res.status, status, JSON.stringify(res.body));
        assert.equal(res.body.error.code, code);
        assert.equal(res.body.signedTransaction, undefined);
      }
      // The first refusal came from the signing transaction's re-read (the second instance had the credential
      // cached), the next from authentication: both are on the record, and nothing was reserved after the change.
      const entries = await auditOfSession(h, p.agent.name, p.session.id);
      assert.deepEqual(entries.filter((e) => e.decision === 'error').map((e) => [e.type, e.data.errorCode]), [['sign.request', code], ['auth.refused', code]]);
      assert.equal(entries.filter((e) => e.type === 'sign.request' && e.decision === 'allow').length, 1);
    });
  }

  for (const [what, land, code, status] of [
    ['revoked', (p: Awaited<ReturnType<typeof provisionAgent>>) => h.admin('POST', `/v1/sessions/${p.session.id}/revoke`), 'session_revoked', 401],
    ['frozen', (p: Awaited<ReturnType<typeof provisionAgent>>) => h.admin('POST', `/v1/agents/${p.agent.name}/freeze`), 'agent_frozen', 403],
  ] as const) {
    test(`${what} through the first instance: the second's next request that fails to decode is refused ${code}, not the decode error, and the cache forgets it`, async () => {
      // Found by review: a request refused before the signing transaction (bad input that reached the signer)
      // never met its re-read, so a credential cached here went on being served, each refusal recorded under the
      // decode error (and, for a derived session, drawing its live parent's rate tokens).
      const p = await provisionAgent(h, { policy: usdcPolicy() });
      clock.advance(10_000); // a full bucket (burst 3)
      assert.equal((await callSecond('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 1n) })).status, 200);
      assert.equal((await land(p)).status, 200);
      const truncated = { ...usdcTransfer(ALICE, 1n, 1), transaction: { ...usdcTransfer(ALICE, 1n, 1).transaction, data: '0xa9059cbb' + '00'.repeat(40) } };
      const first = await callSecond('POST', '/v1/sign/transaction', { token: p.token, body: truncated });
      assert.deepEqual([first.status, first.body.error.code], [status, code]);
      clock.advance(1000);
      const next = await callSecond('POST', '/v1/sign/transaction', { token: p.token, body: truncated });
      assert.deepEqual([next.status, next.body.error.code], [status, code]);
      const entries = await auditOfSession(h, p.agent.name, p.session.id);
      assert.deepEqual(entries.filter((e) => e.decision === 'error').map((e) => [e.type, e.data.errorCode]), [['sign.request', code], ['auth.refused', code]], 'the second request was refused at authentication: the cache forgot the credential');
    });
  }

  // Freeze, revoke and policy set wait for the signing transactions in flight on every instance (the signing
  // lock, exclusive): once the operator has the answer, none of them that read the old state can still
  // commit. Here the second instance's transaction has read the agent and its session and is held open.
  for (const [what, change] of [
    ['a freeze', (p: Awaited<ReturnType<typeof provisionAgent>>) => h.admin('POST', `/v1/agents/${p.agent.name}/freeze`)],
    ['a revoke', (p: Awaited<ReturnType<typeof provisionAgent>>) => h.admin('POST', `/v1/sessions/${p.session.id}/revoke`)],
    ['a policy set', (p: Awaited<ReturnType<typeof provisionAgent>>) => h.admin('PUT', `/v1/policies/agent:${p.agent.name}`, { document: usdcPolicy({ perRequest: '1' }) })],
  ] as const) {
    test(`${what} through the first instance is answered only after the second's signing transaction in flight commits`, async () => {
      const p = await provisionAgent(h, { policy: usdcPolicy() });
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let readInside!: () => void;
      const insideRead = new Promise<void>((resolve) => (readInside = resolve));
      const inFlight = second.store.transaction(async (tx) => {
        await Promise.all([tx.getAgent(p.agent.id), tx.getSession(p.session.id), tx.getPolicy(`agent:${p.agent.id}`)]);
        readInside();
        await held;
      });
      await insideRead;
      let answered = false;
      const operator = change(p).then((res) => ((answered = true), res));
      try {
        await new Promise((resolve) => setTimeout(resolve, 300));
        assert.equal(answered, false, `${what} was answered while a signing transaction that read the old state was still open`);
      } finally {
        release();
        await inFlight;
      }
      assert.equal((await operator).status, 200);
    });
  }

  // The other way round: the change holds its transaction open, after its writes, while the second instance's
  // next request of the same agent is already on its way to the store. Revoke-all and an agent's revoke of its
  // child session change what every signing transaction reads, as a freeze does: that request must read them
  // changed once they commit, never a snapshot from before (a review found both ran under the agent's lock only,
  // so the request's statement that waited for that lock read the agent and session as they were before).
  for (const [what, entryType, change, signer, code] of [
    ['revoke-all', 'agent.revoke_all', (p: Provisioned) => h.admin('POST', `/v1/agents/${p.agent.name}/revoke-all`), (p: Provisioned) => p.token, 'session_revoked'],
    ["a parent session's revoke of its child", 'session.revoked', (p: Provisioned, child: Child) => h.call('POST', `/v1/session/children/${child.id}/revoke`, { token: p.token }), (_p: Provisioned, child: Child) => child.token, 'session_revoked'],
    ['a freeze', 'agent.frozen', (p: Provisioned) => h.admin('POST', `/v1/agents/${p.agent.name}/freeze`), (p: Provisioned) => p.token, 'agent_frozen'],
  ] as const) {
    test(`${what} through the first instance, committed while the second's next request waits for the store: that request is refused ${code}`, async () => {
      const p = await provisionAgent(h, { policy: usdcPolicy() });
      const derived = await h.call('POST', '/v1/session/children', { token: p.token, body: { actions: ['evm.transaction'], ttlSeconds: 600 } });
      assert.equal(derived.status, 201, JSON.stringify(derived.body));
      const child: Child = { id: derived.body.session.id, token: derived.body.token };
      const token = signer(p, child);
      // The second instance has signed with this credential (cached there), as a busy agent's would have.
      clock.advance(10_000);
      assert.equal((await callSecond('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1n, 0) })).status, 200);

      // The change's transaction stops right after its audit entry (its writes made, not committed).
      const store = h.airlock.store;
      const transaction = store.transaction;
      let inside!: () => void;
      const written = new Promise<void>((resolve) => (inside = resolve));
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      store.transaction = ((fn: (tx: StoreTx) => Promise<unknown>, options?: object) =>
        transaction.call(store, (tx: StoreTx) => fn(new Proxy(tx, {
          get(target, key, receiver) {
            const value = Reflect.get(target, key, receiver);
            if (key === 'appendAudit') {
              return async (input: Parameters<StoreTx['appendAudit']>[0]) => {
                const entry = await target.appendAudit(input);
                if (input.type === entryType) (inside(), await held);
                return entry;
              };
            }
            return typeof value === 'function' ? value.bind(target) : value;
          },
        })), options as never)) as typeof transaction;
      const schema = new URL(h.config.storeUrl).searchParams.get('schema');
      assert.ok(schema, h.config.storeUrl);
      const pgClient = new pg.Client({ connectionString: PG_URL });
      await pgClient.connect();
      try {
        const changed = change(p, child);
        await written;
        store.transaction = transaction;
        clock.advance(1000);
        const signing = callSecond('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 2n, 1) });
        // Until it waits for a lock the change holds (or 2 s): then the change commits.
        let waited = false;
        for (let i = 0; i < 100 && !waited; i++) {
          await new Promise((resolve) => setTimeout(resolve, 20));
          // This schema's connections only (the store names them airlock:<schema>): other test files share the database.
          const { rows } = await pgClient.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory' AND application_name = $1", [`airlock:${schema}`]);
          waited = rows[0].n > 0;
        }
        // The race is set up only if the second instance's request was waiting when the change commits.
        assert.ok(waited, 'the second instance never waited for the store');
        release();
        assert.equal((await changed).status, 200);
        const res = await signing;
        assert.equal(res.body.signedTransaction, undefined, `${what} had committed, yet the second instance signed`);
        assert.equal(res.body.error?.code, code, JSON.stringify(res.body));
      } finally {
        store.transaction = transaction;
        release();
        await pgClient.end();
      }
      // On the record: the change, then the refusal; no allow after the change.
      const entries = (await h.admin('GET', `/v1/audit?agent=${p.agent.name}&limit=1000`)).body.entries as any[];
      const at = entries.findIndex((e) => e.type === entryType);
      assert.ok(at >= 0);
      const later = entries.slice(at + 1).filter((e) => e.type === 'sign.request');
      assert.deepEqual(later.map((e) => [e.decision, e.data.errorCode]), [['error', code]]);
    });
  }

  // A revoke that changes nothing takes no exclusive lock: an agent must not be able to hold back every signing
  // batch of the fleet with ids that revoke nothing (a review found it could).
  test("an agent's revoke of an unknown or already revoked child is answered at once, while a signing transaction elsewhere is still open", async () => {
    const p = await provisionAgent(h, { policy: usdcPolicy() });
    const derived = await h.call('POST', '/v1/session/children', { token: p.token, body: { actions: ['evm.transaction'] } });
    assert.equal(derived.status, 201, JSON.stringify(derived.body));
    assert.equal((await h.call('POST', `/v1/session/children/${derived.body.session.id}/revoke`, { token: p.token })).status, 200);
    const bystander = await provisionAgent(h, { policy: usdcPolicy() });
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let readInside!: () => void;
    const insideRead = new Promise<void>((resolve) => (readInside = resolve));
    const inFlight = second.store.transaction(async (tx) => {
      await tx.getAgent(bystander.agent.id);
      readInside();
      await held;
    });
    await insideRead;
    try {
      const answers = await Promise.race([
        Promise.all([
          h.call('POST', '/v1/session/children/ses_0000000000000000/revoke', { token: p.token }),
          h.call('POST', `/v1/session/children/${derived.body.session.id}/revoke`, { token: p.token }),
        ]),
        new Promise<'waited'>((resolve) => setTimeout(() => resolve('waited'), 2000)),
      ]);
      assert.notEqual(answers, 'waited', 'a revoke that changes nothing waited for a signing transaction of another agent');
      const [unknown, again] = answers as Awaited<ReturnType<Call>>[];
      assert.deepEqual([unknown!.status, unknown!.body.error.code], [404, 'not_found']);
      assert.deepEqual([again!.status, typeof again!.body.revokedAt], [200, 'string']);
    } finally {
      release();
      await inFlight;
    }
  });

  // A batch reads each scope's policy once and keeps it for its other requests: a policy stored through the
  // other instance must still decide the very next request here, fleet and agent alike.
  for (const scope of ['agent', 'fleet'] as const) {
    test(`an ${scope} policy tightened through the first instance decides the second's very next request`, async () => {
      const p = await provisionAgent(h, { policy: usdcPolicy() });
      // A burst first (the session's rate limit allows 3), so the second instance's batch holds several
      // requests and has read the policy.
      clock.advance(10_000);
      const burst = await Promise.all([0, 1, 2].map((i) => callSecond('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 1n, i) })));
      assert.deepEqual(burst.map((r) => r.status), [200, 200, 200]);
      const path = scope === 'agent' ? `/v1/policies/agent:${p.agent.name}` : '/v1/policies/fleet';
      const tightened = scope === 'agent' ? usdcPolicy({ perRequest: '1' }) : { version: 1, rules: [{ name: 'max-one-unit', type: 'max_amount', asset: USDC_ASSET, max: '1' }] };
      assert.equal((await h.admin('PUT', path, { document: tightened })).status, 200);
      try {
        clock.advance(1000);
        const res = await callSecond('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 2n, 3) });
        assert.equal(res.status, 403, JSON.stringify(res.body));
        assert.equal(res.body.error.code, 'policy_denied');
        assert.equal(res.body.signedTransaction, undefined);
      } finally {
        if (scope === 'fleet') await h.admin('PUT', path, { document: { version: 1, rules: [] } });
      }
    });
  }

  test('a flood with a credential revoked elsewhere hits the session rate limit before it writes audit entries', async () => {
    const p = await provisionAgent(h, { policy: usdcPolicy() });
    clock.advance(10_000); // a full bucket (burst 3)
    assert.equal((await callSecond('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 1n) })).status, 200);
    await h.admin('POST', `/v1/sessions/${p.session.id}/revoke`);
    const before = (await auditOfSession(h, p.agent.name, p.session.id)).length;
    const statuses: number[] = [];
    for (let i = 1; i <= 10; i++) statuses.push((await callSecond('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 1n, i) })).status);
    assert.deepEqual(statuses, [401, 401, ...Array(8).fill(429)]);
    assert.equal((await auditOfSession(h, p.agent.name, p.session.id)).length, before + 2, 'two refusals on the record, the other eight cost nothing');
  });
});
