/**
 * The key-registry part of the Store contract (core/ports/agent-keys.ts), run inside runStoreContract for every
 * store, plus `checkConcurrentRotations` for several instances on one database and `checkAgentKeyBackfill` for
 * the migration that creates the registry (sqlite.test.ts, postgres.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AirlockError, type Store } from '@airlock/core';

/** Not an address of any real key: the account and key index in hex, so a test can tell which key it is. */
export const keyAddress = (accountIndex: number, keyIndex: number) =>
  `0x${accountIndex.toString(16).padStart(32, '0')}${keyIndex.toString(16).padStart(8, '0')}`;

interface RawExec {
  rawExec(sql: string): Promise<void>;
}

async function rejectsWithCode(p: Promise<unknown>, expected: string): Promise<void> {
  await assert.rejects(p, (e) => {
    assert.ok(e instanceof AirlockError && e.code === expected, `expected AirlockError(${expected}), got ${String(e)}`);
    return true;
  });
}

async function twoAgents(store: Store) {
  return store.createAgents([{ id: 'ag_keys00000000000a', name: 'keys-a', labels: {} }, { id: 'ag_keys00000000000b', name: 'keys-b', labels: {} }], keyAddress, 1_000);
}

/** The rotation as OperatorService runs it: exclusive, with its audit entry. */
function rotate(store: Store, agentId: string, now: number) {
  return store.transaction(async (tx) => {
    const rotation = await tx.rotateAgentKey(agentId, keyAddress, now);
    await tx.appendAudit({ at: now, type: 'agent.key_rotated', actor: 'operator', agentId, data: { keyIndex: rotation.current.keyIndex } });
    return rotation;
  }, { exclusive: true });
}

export function runAgentKeyStoreContract(fresh: () => Promise<Store & Partial<RawExec>>): void {
  test('agent keys: created agents have key 0 active; a rotation takes the next index, the old address stays attributable', async () => {
    const store = await fresh();
    const [a, b] = await twoAgents(store);
    assert.deepEqual(await store.listAgentKeys(a!.id), [{ agentId: a!.id, keyIndex: 0, address: keyAddress(a!.accountIndex, 0), state: 'active', createdAt: 1_000 }]);
    assert.equal((await store.findAgentKey(a!.address.toUpperCase().replace('0X', '0x')))?.agentId, a!.id, 'found whatever the case');
    assert.equal(await store.findAgentKey(keyAddress(99, 0)), undefined);

    const first = await rotate(store, a!.id, 2_000);
    assert.deepEqual(first.previous, { agentId: a!.id, keyIndex: 0, address: a!.address, state: 'rotated', createdAt: 1_000, rotatedAt: 2_000 });
    assert.deepEqual(first.current, { agentId: a!.id, keyIndex: 1, address: keyAddress(a!.accountIndex, 1), state: 'active', createdAt: 2_000 });
    assert.equal(first.agent.keyIndex, 1);
    assert.equal(first.agent.address, keyAddress(a!.accountIndex, 1));
    assert.equal(first.agent.updatedAt, 2_000);
    assert.deepEqual(await store.getAgent(a!.id), first.agent, 'the agent row follows');

    const second = await rotate(store, a!.id, 3_000);
    assert.equal(second.previous.keyIndex, 1);
    assert.equal(second.current.keyIndex, 2);
    assert.deepEqual((await store.listAgentKeys(a!.id)).map((k) => [k.keyIndex, k.state]), [[0, 'rotated'], [1, 'rotated'], [2, 'active']]);
    // Every address it ever had is still its own; the other agent is untouched.
    for (const i of [0, 1, 2]) assert.equal((await store.findAgentKey(keyAddress(a!.accountIndex, i)))?.agentId, a!.id);
    assert.deepEqual((await store.listAgentKeys(b!.id)).map((k) => [k.keyIndex, k.state]), [[0, 'active']]);
    assert.equal((await store.getAgent(b!.id))!.keyIndex, 0);
    // Inside a transaction too.
    assert.equal((await store.transaction((tx) => tx.findAgentKey(keyAddress(a!.accountIndex, 1))))?.state, 'rotated');
    assert.equal((await store.transaction((tx) => tx.listAgentKeys(a!.id))).length, 3);
  });

  test('agent keys: a rotation that fails rolls back whole (no key, no index used, agent unchanged)', async () => {
    const store = await fresh();
    const [a] = await twoAgents(store);
    await assert.rejects(store.transaction(async (tx) => {
      await tx.rotateAgentKey(a!.id, keyAddress, 2_000);
      throw new Error('audit append failed');
    }, { exclusive: true }), /audit append failed/);
    assert.deepEqual((await store.listAgentKeys(a!.id)).map((k) => [k.keyIndex, k.state]), [[0, 'active']]);
    assert.equal((await store.getAgent(a!.id))!.keyIndex, 0);
    // A derivation that fails leaves nothing either.
    await assert.rejects(store.transaction((tx) => tx.rotateAgentKey(a!.id, () => Promise.reject(new Error('hsm down')), 2_000), { exclusive: true }), /hsm down/);
    assert.equal((await rotate(store, a!.id, 3_000)).current.keyIndex, 1, 'the index the failed rotations tried is the next one');
    await rejectsWithCode(store.transaction((tx) => tx.rotateAgentKey('ag_nobody000000000', keyAddress, 4_000), { exclusive: true }), 'not_found');
  });

  test('agent keys: retiring a rotated key is final and idempotent; the signing key of a live agent cannot be retired', async () => {
    const store = await fresh();
    const [a] = await twoAgents(store);
    await rejectsWithCode(store.transaction((tx) => tx.retireAgentKey(a!.id, 0, 2_000)), 'conflict');
    await rotate(store, a!.id, 3_000);
    const retired = await store.transaction((tx) => tx.retireAgentKey(a!.id, 0, 4_000));
    assert.deepEqual(retired, { agentId: a!.id, keyIndex: 0, address: a!.address, state: 'retired', createdAt: 1_000, rotatedAt: 3_000, retiredAt: 4_000 });
    assert.deepEqual(await store.transaction((tx) => tx.retireAgentKey(a!.id, 0, 5_000)), retired, 'retiring twice changes nothing');
    await rejectsWithCode(store.transaction((tx) => tx.retireAgentKey(a!.id, 7, 5_000)), 'not_found');
    // A retired agent's last key can be retired (its lifecycle is over).
    await store.setAgentStatus(a!.id, 'retired', 6_000);
    assert.equal((await store.transaction((tx) => tx.retireAgentKey(a!.id, 1, 7_000))).state, 'retired');
    assert.equal((await store.findAgentKey(a!.address))?.agentId, a!.id, 'a retired key is still attributable');
  });

  test('agent keys: the schema refuses deleting a key, changing its index or address, moving its state back, or a second active key', async () => {
    const store = await fresh();
    if (!store.rawExec) return;
    const [a] = await twoAgents(store);
    await rotate(store, a!.id, 2_000);
    const before = await store.listAgentKeys(a!.id);
    for (const sql of [
      `DELETE FROM agent_keys WHERE agent_id = '${a!.id}' AND key_index = 0`,
      `UPDATE agent_keys SET key_index = 5 WHERE agent_id = '${a!.id}' AND key_index = 0`,
      `UPDATE agent_keys SET address = '0xdead' WHERE agent_id = '${a!.id}' AND key_index = 0`,
      `UPDATE agent_keys SET state = 'active' WHERE agent_id = '${a!.id}' AND key_index = 0`,
      `INSERT INTO agent_keys (agent_id, key_index, address, state, created_at) VALUES ('${a!.id}', 1, '0xother', 'rotated', 1)`,
      `INSERT INTO agent_keys (agent_id, key_index, address, state, created_at) VALUES ('${a!.id}', 9, '0xother', 'active', 1)`,
      `UPDATE agents SET key_index = 0 WHERE id = '${a!.id}'`,
    ]) {
      await assert.rejects(store.rawExec(sql), Error, sql);
    }
    assert.deepEqual(await store.listAgentKeys(a!.id), before);
    assert.equal((await store.getAgent(a!.id))!.keyIndex, 1);
  });
}

/**
 * `count` rotations of one agent at once, spread over `stores` (several instances on one database): each gets
 * its own index, 1..count, none is reused, and the agent ends on the last one.
 */
export async function checkConcurrentRotations(stores: Store[], count = 12): Promise<void> {
  const [agent] = await stores[0]!.createAgents([{ id: 'ag_rotaterace00000', name: 'rotate-race', labels: {} }], keyAddress, 1_000);
  const rotations = await Promise.all(Array.from({ length: count }, (_, i) => rotate(stores[i % stores.length]!, agent!.id, 2_000 + i)));
  const indexes = rotations.map((r) => r.current.keyIndex).sort((x, y) => x - y);
  assert.deepEqual(indexes, Array.from({ length: count }, (_, i) => i + 1), 'every rotation got its own next index');
  // Each rotation replaced the key the one before it installed: a chain 0 -> 1 -> ... -> count.
  assert.deepEqual(rotations.map((r) => r.previous.keyIndex).sort((x, y) => x - y), Array.from({ length: count }, (_, i) => i));
  const keys = await stores[0]!.listAgentKeys(agent!.id);
  assert.equal(keys.length, count + 1);
  assert.deepEqual(keys.filter((k) => k.state === 'active').map((k) => k.keyIndex), [count]);
  assert.equal((await stores[stores.length - 1]!.getAgent(agent!.id))!.keyIndex, count);
}

/** On a store migrated to just before the registry, with agents inserted as the old code did: migrating backfills their keys. */
export async function checkAgentKeyBackfill(store: Store & RawExec): Promise<void> {
  await store.rawExec(`INSERT INTO agents (id, name, account_index, key_index, address, status, labels, created_at, updated_at) VALUES
    ('ag_old0000000000001', 'old-1', 0, 0, '0xAbCd00000000000000000000000000000000000a', 'active', '{}', 100, 100),
    ('ag_old0000000000002', 'old-2', 1, 0, '0x000000000000000000000000000000000000000b', 'retired', '{}', 200, 250)`);
  await store.migrate();
  assert.deepEqual(await store.listAgentKeys('ag_old0000000000001'), [{ agentId: 'ag_old0000000000001', keyIndex: 0, address: '0xabcd00000000000000000000000000000000000a', state: 'active', createdAt: 100 }]);
  assert.equal((await store.findAgentKey('0x000000000000000000000000000000000000000B'))?.agentId, 'ag_old0000000000002');
  // And the backfilled key rotates like any other.
  const rotation = await rotate(store, 'ag_old0000000000001', 1_000);
  assert.deepEqual([rotation.previous.keyIndex, rotation.current.keyIndex], [0, 1]);
}
