import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness } from './testing/harness.ts';

// Generated names carry the agent's whole 64-bit id: a shorter slice made large batches collide with
// themselves (a 10,000-agent batch failed with `conflict` about once in 90) and with agents already stored.
test('agents created by count are named after their whole id, so a large batch does not collide', async () => {
  const h = await startHarness();
  try {
    const res = await h.admin('POST', '/v1/agents', { count: 2000, prefix: 'fleet' });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const agents = res.body.agents as { id: string; name: string }[];
    assert.equal(agents.length, 2000);
    for (const a of agents) assert.equal(a.name, `fleet-${a.id.slice('ag_'.length)}`);
    assert.equal(new Set(agents.map((a) => a.name)).size, 2000);
  } finally {
    await h.close();
  }
});
