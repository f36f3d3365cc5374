// A compromised daemon (it writes the store) rewrites the fleet policy's `lifecycle.treasury` to its own address (a
// `policy.updated` entry, on the record) and then forges sweeps of agents' old keys to "the treasury" over the key
// process's socket: the key process read the treasury from that policy, so it signed every one (found by review
// 2026-12-05). AIRLOCK_KEY_PROCESS_TREASURY pins the treasury in the key process's own environment: set, a sweep
// pays only that address (per chain, `*` for the rest); unset, the policy's, as documented.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AirlockError, type LifecycleCall, type Store } from '@airlock/core';
import { forgeLifecyclePlan, rotatedVictim } from './testing/forged-lifecycle.ts';
import { keyProcessTreasuryFrom } from './key-process/key-process.ts';

const CHAIN = 'eip155:31337';
const ETH = 10n ** 18n;
const GWEI = 10n ** 9n;
const MALLORY = '0x000000000000000000000000000000000bad0bad';
const TREASURY = '0x7777777777777777777777777777777777777777';

const dir = mkdtempSync(join(tmpdir(), 'airlock-kp-treasury-'));
const closers: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

describe('the key process\'s own treasury (AIRLOCK_KEY_PROCESS_TREASURY) against a rewritten fleet policy', () => {
  let store: Store;
  let agentId: string;
  let oldAddress: string;
  let forged = 0;
  const sockets = new Map<string, string>();

  /** A plan forged into the store for a native transfer from the rotated-away key 0 (testing/forged-lifecycle.ts), then the ask. */
  const forge = (socket: string, call: LifecycleCall) =>
    forgeLifecyclePlan(store, socket, { agentId, from: oldAddress, chain: CHAIN, call, fees: { nonce: forged, gas: 21_000n, gasPrice: GWEI }, jobId: `lcj_treasury${String(++forged).padStart(8, '0')}` });


  before(async () => {
    // What a compromised daemon writes (on the record): the fleet's treasury is now the attacker's.
    const world = await rotatedVictim(dir, closers, { version: 1, rules: [], lifecycle: { treasury: { [CHAIN]: MALLORY } } });
    ({ store, agentId, oldAddress } = world);
    for (const [name, env] of [['unpinned', {}], ['pinned', { AIRLOCK_KEY_PROCESS_TREASURY: `${CHAIN}=${TREASURY}` }], ['other-chain', { AIRLOCK_KEY_PROCESS_TREASURY: `eip155:1=${TREASURY}` }], ['star', { AIRLOCK_KEY_PROCESS_TREASURY: `eip155:1=${MALLORY},*=${TREASURY}` }]] as const) {
      sockets.set(name, await world.startKeyProcessAt(name, { lifecycleTreasury: keyProcessTreasuryFrom(env) }));
    }
  });

  const refused = (res: { status: number; body: any }, what: string) => {
    assert.equal(res.status, 403, `${what} was signed: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.error.code, 'key_process_refused');
    assert.equal(res.body.error.details.reason, 'lifecycle_call_refused');
  };

  test('unpinned: the fleet policy\'s treasury, whatever wrote it (the documented gap the variable closes)', async () => {
    assert.equal((await forge(sockets.get('unpinned')!, { to: MALLORY, value: ETH, data: '0x' })).status, 200);
  });

  test('pinned: a sweep to the rewritten policy treasury is refused; one to the pinned treasury is signed', async () => {
    refused(await forge(sockets.get('pinned')!, { to: MALLORY, value: ETH, data: '0x' }), 'a sweep to the policy\'s rewritten treasury');
    assert.equal((await forge(sockets.get('pinned')!, { to: TREASURY, value: ETH, data: '0x' })).status, 200);
  });

  test('pinned for another chain only: no treasury on this one; `*` covers the chains not named', async () => {
    refused(await forge(sockets.get('other-chain')!, { to: MALLORY, value: ETH, data: '0x' }), 'a sweep to the policy\'s treasury on a chain the variable does not name');
    refused(await forge(sockets.get('other-chain')!, { to: TREASURY, value: ETH, data: '0x' }), 'a sweep to another chain\'s treasury');
    refused(await forge(sockets.get('star')!, { to: MALLORY, value: ETH, data: '0x' }), 'a sweep to the treasury of another chain, named');
    assert.equal((await forge(sockets.get('star')!, { to: TREASURY, value: ETH, data: '0x' })).status, 200);
  });

  test('a malformed value is config_invalid', () => {
    for (const bad of ['eip155:8453', `eip155:8453=${TREASURY.slice(0, 41)}`, `base=${TREASURY}`, `eip155:1=${TREASURY},eip155:1=${MALLORY}`, `eip155:0=${TREASURY}`]) {
      assert.throws(() => keyProcessTreasuryFrom({ AIRLOCK_KEY_PROCESS_TREASURY: bad }), (e: unknown) => e instanceof AirlockError && e.code === 'config_invalid', bad);
    }
    assert.deepEqual([...keyProcessTreasuryFrom({ AIRLOCK_KEY_PROCESS_TREASURY: ` eip155:8453 = ${TREASURY.toUpperCase().replace('0X', '0x')} ` })], [['eip155:8453', TREASURY]]);
  });
});
