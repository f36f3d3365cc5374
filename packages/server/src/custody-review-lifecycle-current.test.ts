// Review (custody): a compromised daemon (it writes the store) asks the key process, over its socket, to sign a
// lifecycle plan it forged: a sweep of the agent's rotated-away key 0 to "the agent's current address". The key
// process took that address from the agent row, which the daemon can rewrite: with the row's address set to the
// attacker's, the old key's balance was signed over to the attacker (docs/custody.md claims a forged plan moves funds
// only to the agent's own current key or the treasury). The key process now derives the current address itself,
// from the agent's current key index, and refuses a row that names another (`agent_mismatch`).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { LifecycleCall, Store } from '@airlock/core';
import type { AirlockConfig } from './config.ts';
import { forgeLifecyclePlan, rotatedVictim } from './testing/forged-lifecycle.ts';

const CHAIN = 'eip155:31337';
const ETH = 10n ** 18n;
const GWEI = 10n ** 9n;
const MALLORY = '0x000000000000000000000000000000000bad0bad';

const dir = mkdtempSync(join(tmpdir(), 'airlock-kp-review-current-'));
const closers: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

describe('review: the key process and the agent row\'s current address', () => {
  let config: AirlockConfig;
  let socket: string;
  let store: Store;
  let agentId: string;
  let oldAddress: string;
  let current: string;
  let forged = 0;

  /** A plan forged into the store for a native transfer from the rotated-away key 0 (testing/forged-lifecycle.ts), then the ask. */
  const forge = (call: LifecycleCall) =>
    forgeLifecyclePlan(store, socket, { agentId, from: oldAddress, chain: CHAIN, call, fees: { nonce: forged, gas: 21_000n, gasPrice: GWEI }, jobId: `lcj_forged${String(++forged).padStart(10, '0')}` });


  /** What the daemon does with its write access to the store: the agent row's address set to `address`. */
  function rewriteAgentAddress(address: string): void {
    const db = new DatabaseSync(config.storeUrl.slice('sqlite:'.length));
    try {
      db.prepare('UPDATE agents SET address = ? WHERE id = ?').run(address, agentId);
    } finally {
      db.close();
    }
  }

  before(async () => {
    const world = await rotatedVictim(dir, closers);
    ({ config, store, agentId, oldAddress, current } = world);
    socket = await world.startKeyProcessAt('keys');
  });

  test('a forged sweep of the old key to the agent\'s real current key is signed (what rotation plans)', async () => {
    const res = await forge({ to: current, value: ETH, data: '0x' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
  });

  test('with the agent row\'s address rewritten to the attacker\'s, a forged sweep of the old key to it is refused', async () => {
    rewriteAgentAddress(MALLORY);
    try {
      const res = await forge({ to: MALLORY, value: ETH, data: '0x' });
      assert.equal(res.status, 403, `the old key's balance was signed over to the attacker: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'key_process_refused');
      assert.equal(res.body.error.details.reason, 'agent_mismatch');
    } finally {
      rewriteAgentAddress(current);
    }
  });
});
