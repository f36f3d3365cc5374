// The daemon's audit checkpoints (runtime.ts): one at a time. A tick that comes while one is still running (a slow
// store, a key process reading a long log for its first head) is skipped, and shutdown waits for the running one
// before its own: two at once would check the same leaves twice and ask the audit key for the same head twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { openAirlock } from './runtime.ts';
import { startHarness, TEST_PASSPHRASE, TEST_VAULT } from './testing/harness.ts';

test('checkpoints never overlap: ticks while one runs are skipped, and shutdown waits for the running one', async () => {
  const h = await startHarness();
  try {
    // A second instance on the same store, with its timers on and a tick every 10 ms.
    const airlock = await openAirlock({ ...h.config, checkpointIntervalMs: 10 }, TEST_PASSPHRASE, { vault: TEST_VAULT });
    let running = 0;
    let most = 0;
    let runs = 0;
    // Each checkpoint takes 100 ms: ten ticks come while it runs.
    airlock.audit.checkpoint = async () => {
      running++;
      runs++;
      most = Math.max(most, running);
      await sleep(100);
      running--;
      return undefined;
    };
    await sleep(350);
    await airlock.close(); // its own last checkpoint, after the one running
    assert.equal(most, 1, `${most} checkpoints ran at once`);
    assert.ok(runs >= 2, `${runs} checkpoints`);
    assert.equal(running, 0);
  } finally {
    await h.close();
  }
});
