// Admin token rotation through HTTP (docs/operations.md, "Rotate the admin token"): the old token is refused by
// the rotating instance from the next request and by a second instance on the same store within the documented
// bound; the new one works everywhere; the rotation is audited without the token; nothing else can rotate it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hashSecret } from '@airlock/core';
import { ADMIN_TOKEN_STALENESS_MS } from './admin-credential.ts';
import { createApp } from './http/app.ts';
import { AirlockHolder } from './http/holder.ts';
import { openAirlock } from './runtime.ts';
import { provisionAgent, startHarness, TEST_PASSPHRASE, TEST_VAULT, type Harness } from './testing/harness.ts';

const CONSOLE = { 'x-airlock-console': '1', origin: 'http://localhost' };

async function rotationEntries(h: Harness) {
  return (await h.airlock.store.queryAudit({ type: 'admin.token_rotated', limit: 100 })).map((e) => e);
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`${store}: admin token rotation over HTTP`, () => {
    test('the old token is refused at once (401 unauthenticated), the new one works, the rotation is audited without the token', async () => {
      const h = await startHarness({ store });
      try {
        const old = h.adminToken;
        // A console session opened with the old token (it must end with it).
        const login = await h.call('POST', '/v1/console/session', { body: { token: old }, headers: CONSOLE });
        assert.equal(login.status, 201);
        const cookie = /^airlock_console=[^;]+/.exec(login.headers.get('set-cookie') ?? '')![0];
        const asConsole = { ...CONSOLE, 'x-airlock-console': login.body.proof, cookie };
        assert.equal((await h.call('GET', '/v1/agents', { headers: asConsole })).status, 200);

        const rotated = await h.call('POST', '/v1/admin/token/rotate', { token: old });
        assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
        const { token, auditSeq, otherInstancesWithinSeconds } = rotated.body;
        assert.match(token, /^adm_[A-Za-z0-9_-]{43}$/);
        assert.notEqual(token, old);
        assert.equal(otherInstancesWithinSeconds, ADMIN_TOKEN_STALENESS_MS / 1000);
        assert.equal(rotated.headers.get('cache-control'), 'no-store');

        const refused = await h.call('GET', '/v1/agents', { token: old });
        assert.equal(refused.status, 401);
        assert.equal(refused.body.error.code, 'unauthenticated');
        assert.equal((await h.call('POST', '/v1/admin/token/rotate', { token: old })).status, 401, 'the old token cannot rotate again');
        assert.equal((await h.call('GET', '/v1/agents', { token })).status, 200);
        // The console session of the old token ended; logging in with the old token fails, with the new one works.
        assert.equal((await h.call('GET', '/v1/agents', { headers: asConsole })).status, 401);
        assert.equal((await h.call('POST', '/v1/console/session', { body: { token: old }, headers: CONSOLE })).status, 401);
        assert.equal((await h.call('POST', '/v1/console/session', { body: { token }, headers: CONSOLE })).status, 201);

        // Stored: only the new token's hash. Audited: how and from where, never the token or a hash of it.
        assert.equal(await h.airlock.store.getMeta('admin_token_hash'), hashSecret(token.slice(4)));
        const [entry, ...more] = await rotationEntries(h);
        assert.equal(more.length, 0);
        assert.equal(entry!.seq, auditSeq);
        assert.equal(entry!.actor, 'operator');
        assert.deepEqual(entry!.data, { via: 'api', source: 'local' });
        const audit = JSON.stringify(await h.airlock.store.readAudit(1, 10_000));
        for (const secret of [old, token, old.slice(4), token.slice(4), hashSecret(old.slice(4)), hashSecret(token.slice(4))]) assert.ok(!audit.includes(secret));
        assert.equal((await h.call('POST', '/v1/audit/verify', { token })).body.ok, true);
        // A restart reads the new hash from the store.
        await h.restart();
        assert.equal((await h.call('GET', '/v1/agents', { token: old })).status, 401);
        assert.equal((await h.call('GET', '/v1/agents', { token })).status, 200);
      } finally {
        await h.close();
      }
    });

    test('a session token, a console session and a wrong token cannot rotate it; nothing changes', async () => {
      const h = await startHarness({ store });
      try {
        const { token: session } = await provisionAgent(h);
        const hash = await h.airlock.store.getMeta('admin_token_hash');
        const bySession = await h.call('POST', '/v1/admin/token/rotate', { token: session });
        assert.deepEqual([bySession.status, bySession.body.error.code], [403, 'forbidden']);
        const login = await h.call('POST', '/v1/console/session', { body: { token: h.adminToken }, headers: CONSOLE });
        const cookie = /^airlock_console=[^;]+/.exec(login.headers.get('set-cookie') ?? '')![0];
        const byConsole = await h.call('POST', '/v1/admin/token/rotate', { headers: { ...CONSOLE, 'x-airlock-console': login.body.proof, cookie } });
        assert.deepEqual([byConsole.status, byConsole.body.error.code], [403, 'forbidden']);
        const byGuess = await h.call('POST', '/v1/admin/token/rotate', { token: `adm_${'A'.repeat(43)}` });
        assert.deepEqual([byGuess.status, byGuess.body.error.code], [401, 'unauthenticated']);
        assert.equal(await h.airlock.store.getMeta('admin_token_hash'), hash);
        assert.deepEqual(await rotationEntries(h), []);
        assert.equal((await h.admin('GET', '/v1/agents')).status, 200, 'the admin token still works');
        // The refused session was recorded as a genuine credential probing an admin route.
        const forbidden = await h.airlock.store.queryAudit({ type: 'auth.forbidden', limit: 10 });
        assert.ok(forbidden.some((e) => (e.data as { route?: string }).route === 'POST /v1/admin/token/rotate'));
      } finally {
        await h.close();
      }
    });
  });
}

test('postgres: a second instance on the same store refuses the old token within the bound, and takes the new one at once', async () => {
  const h = await startHarness({ store: 'postgres' });
  const second = await openAirlock(h.config, TEST_PASSPHRASE, { vault: TEST_VAULT, timers: false });
  const app = createApp(new AirlockHolder(second), { bodyLimitBytes: h.config.bodyLimitBytes });
  const onSecond = async (token: string) => {
    const res = await app.request('/v1/agents', { headers: { authorization: `Bearer ${token}` } });
    return { status: res.status, body: (await res.json()) as any };
  };
  try {
    const old = h.adminToken;
    assert.equal((await onSecond(old)).status, 200, 'the second instance has the old hash cached');
    const rotated = await h.call('POST', '/v1/admin/token/rotate', { token: old });
    assert.equal(rotated.status, 200);
    const committedAt = performance.now();
    const { token } = rotated.body;
    // Only the old token is presented there: nothing but the staleness bound makes the second instance look again.
    // The bound: no request that starts later than ADMIN_TOKEN_STALENESS_MS after the commit is admitted.
    let lastAdmittedStartMs = 0;
    let refused = false;
    while (performance.now() - committedAt < ADMIN_TOKEN_STALENESS_MS + 3_000) {
      const startedMs = performance.now() - committedAt;
      const res = await onSecond(old);
      if (res.status === 401) {
        assert.equal(res.body.error.code, 'unauthenticated');
        refused = true;
        break;
      }
      assert.equal(res.status, 200);
      lastAdmittedStartMs = startedMs;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(refused, 'the old token was still admitted 3 s after the bound');
    assert.ok(lastAdmittedStartMs <= ADMIN_TOKEN_STALENESS_MS, `old token admitted ${lastAdmittedStartMs} ms after the rotation`);
    // Refused for good from then on, and it cannot rotate there either.
    for (let i = 0; i < 3; i++) assert.equal((await onSecond(old)).status, 401);
    const again = await app.request('/v1/admin/token/rotate', { method: 'POST', headers: { authorization: `Bearer ${old}` } });
    assert.equal(again.status, 401);
    assert.equal((await onSecond(token)).status, 200);

    // A token issued by the first instance works on the second at once, without waiting for the bound: an
    // unknown token makes it read the store (at most once a second, hence the pause after the refusals above).
    const next = (await h.call('POST', '/v1/admin/token/rotate', { token })).body.token;
    await new Promise((r) => setTimeout(r, 1_100));
    const before = performance.now();
    assert.equal((await onSecond(next)).status, 200);
    assert.ok(performance.now() - before < 1_000);
  } finally {
    await second.close();
    await h.close();
  }
});
