import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startHarness } from './testing/harness.ts';

test('the daemon serves the OpenAPI document checked into docs/, covering every route', async () => {
  const h = await startHarness();
  try {
    const res = await h.call('GET', '/v1/openapi.json');
    assert.equal(res.status, 200);
    const committed = JSON.parse(readFileSync(new URL('../../../docs/openapi.json', import.meta.url), 'utf8'));
    assert.deepEqual(res.body, committed);
    for (const p of ['/v1/sign/transaction', '/v1/sign/typed-data', '/v1/sign/message', '/v1/dry-run', '/v1/agents', '/v1/audit', '/v1/approvals/{id}/approve']) {
      assert.ok(res.body.paths[p], p);
    }
    assert.ok(!Object.keys(res.body.paths).some((p: string) => /hash/.test(p) && /sign/.test(p)), 'no raw-hash signing endpoint');
  } finally {
    await h.close();
  }
});
