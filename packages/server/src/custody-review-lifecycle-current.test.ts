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
import { PassThrough } from 'node:stream';
import { DatabaseSync } from 'node:sqlite';
import type { LifecycleCall, Store } from '@airlock/core';
import { openStore } from '@airlock/store';
import { loadConfig, type AirlockConfig } from './config.ts';
import { initAirlock, openAirlock } from './runtime.ts';
import { createLogger } from './http/request-log.ts';
import { TEST_PASSPHRASE, TEST_VAULT } from './testing/harness.ts';
import { forgeLifecyclePlan } from './testing/forged-lifecycle.ts';
import { startKeyProcess } from './key-process/key-process.ts';

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
    config = loadConfig({ dataDir: join(dir, 'data') }, {});
    await initAirlock(config, TEST_PASSPHRASE, TEST_VAULT);
    const airlock = await openAirlock(config, TEST_PASSPHRASE, { vault: TEST_VAULT, timers: false });
    const [agent] = await airlock.operator.createAgents({ names: ['victim'] }, 'operator');
    const rotation = await airlock.operator.rotateAgentKey('victim', 'operator'); // key 0 is an old key, key 1 current
    await airlock.close();
    agentId = agent!.id;
    oldAddress = rotation.previous.address.toLowerCase();
    current = rotation.current.address.toLowerCase();
    socket = join(dir, 'keys.sock');
    const kp = await startKeyProcess({ storeUrl: config.storeUrl, vaultPath: config.vaultPath, passphrase: TEST_PASSPHRASE, socketPath: socket, logger: createLogger('info', new PassThrough()), vault: TEST_VAULT, headRecordPath: join(dir, 'head.json') });
    closers.push(() => kp.close());
    store = await openStore(config.storeUrl);
    closers.push(() => store.close());
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
