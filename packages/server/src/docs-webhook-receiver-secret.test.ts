// The receiver in docs/operations.md ("Alerts and webhooks"), run as written: started with AIRLOCK_WEBHOOK_SECRET
// unset, empty or not a whsec_… secret, it exits at once instead of listening (found by review: an empty HMAC key
// verifies deliveries anyone can forge). docs-webhooks.http.test.ts runs it with a real secret.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { receiverFromDocs } from './testing/docs-receiver.ts';

const NODE = new URL('../../../node_modules/.bin/node', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'airlock-doc-hook-secret-'));
after(() => rmSync(dir, { recursive: true, force: true }));


test('the documented receiver refuses to start without a well-formed whsec_ secret', () => {
  writeFileSync(join(dir, 'receiver.mjs'), receiverFromDocs());
  const { AIRLOCK_WEBHOOK_SECRET: _unset, ...env } = process.env;
  const secret = `whsec_${Buffer.alloc(32, 9).toString('base64url')}`;
  for (const value of [undefined, '', 'whsec_', 'changeme', secret.slice(0, -1), `${secret} `]) {
    // PORT=0: were it to start, it would listen (on any free port) and the timeout would end it: not an exit 1.
    const r = spawnSync(NODE, ['receiver.mjs'], { cwd: dir, env: { ...env, ...(value !== undefined ? { AIRLOCK_WEBHOOK_SECRET: value } : {}), PORT: '0' }, encoding: 'utf8', timeout: 10_000 });
    assert.equal(r.status, 1, `${JSON.stringify(value)}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /AIRLOCK_WEBHOOK_SECRET/);
    assert.doesNotMatch(r.stdout, /listening/);
  }
});
