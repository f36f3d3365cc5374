// A string holding U+0000 (NUL) is refused at the edge with 400 invalid_request, on both stores, and changes
// nothing. PostgreSQL can hold NUL neither in text nor in jsonb while SQLite stores it: an agent's child-session
// label holding one was kept on SQLite (201) and then failed `airlock store migrate` to PostgreSQL for the whole
// deployment (found by review). A row kept from before (a SQLite store written by an older version) now fails the
// copy with the table named.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { copySqliteToPostgres } from '@airlock/store';
import { pgSchemaUrl, provisionAgent, startHarness, type StoreKind } from './testing/harness.ts';

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`a string holding U+0000 (${store})`, () => {
    test('a child label, a key and a message to sign: each 400 invalid_request, no child, no audit entry, nothing signed', async () => {
      const h = await startHarness({ store });
      try {
        const parent = await provisionAgent(h, { policy: { version: 1, rules: [{ name: 'hello', type: 'allow', match: { kinds: ['message.personal'], message: { prefix: 'pay' } } }] } });
        const entriesBefore = (await h.admin('GET', '/v1/audit?limit=1000')).body.entries.length;
        const attempts = [
          await h.call('POST', '/v1/session/children', { token: parent.token, body: { label: 'sub\u0000agent' } }),
          await h.call('POST', '/v1/session/children', { token: parent.token, body: { label: 'sub', ['x\u0000']: 1 } }),
          await h.call('POST', '/v1/sign/message', { token: parent.token, body: { chainId: 8453, message: 'pay\u0000me' } }),
        ];
        for (const res of attempts) {
          assert.equal(res.status, 400, JSON.stringify(res.body));
          assert.equal(res.body.error.code, 'invalid_request');
          assert.match(res.body.error.message, /U\+0000/);
          assert.equal(res.body.signature, undefined);
        }
        assert.deepEqual((await h.call('GET', '/v1/session/children', { token: parent.token })).body.sessions, []);
        const after = (await h.admin('GET', '/v1/audit?limit=1000')).body.entries as any[];
        assert.equal(after.filter((e) => e.type === 'sign.request' || e.type === 'session.derived').length, 0, 'nothing recorded as a request or a child');
        assert.ok(after.length >= entriesBefore);
        const fine = await h.call('POST', '/v1/sign/message', { token: parent.token, body: { chainId: 8453, message: 'pay me' } });
        assert.equal(fine.status, 200, `the same message without NUL is signed: ${JSON.stringify(fine.body)}`);
      } finally {
        await h.close();
      }
    });
  });
}

test('store migrate: a NUL kept by an older SQLite store fails the copy naming its table; nothing is copied', async () => {
  const h = await startHarness({ store: 'sqlite' });
  const target = await pgSchemaUrl('airlock_nul');
  try {
    const parent = await provisionAgent(h, {});
    const child = await h.call('POST', '/v1/session/children', { token: parent.token, body: { label: 'sub' } });
    assert.equal(child.status, 201, JSON.stringify(child.body));
    const sqlitePath = h.config.storeUrl.replace(/^sqlite:/, '');
    await h.airlock.close();
    const db = new DatabaseSync(sqlitePath);
    db.prepare(`UPDATE sessions SET label = 'sub' || char(0) || 'agent' WHERE id = ?`).run(child.body.session.id); // as an older version stored it
    db.close();
    const url = new URL(target.url);
    const schema = url.searchParams.get('schema')!;
    url.search = '';
    await assert.rejects(copySqliteToPostgres(sqlitePath, { connectionString: url.toString(), schema }), (e: any) => {
      assert.equal(e.code, 'invalid_request');
      assert.match(e.message, /table sessions holds a value PostgreSQL cannot hold/);
      return true;
    });
  } finally {
    rmSync(h.config.dataDir, { recursive: true, force: true });
    await target.drop();
  }
});
