/**
 * Threshold bindings (core/ports/threshold-keys.ts), part of the store contract: a binding round-trips exactly
 * (its JSON columns included), is per (agent, namespace), a second put replaces it, a delete returns what was
 * bound, and a binding put in a transaction that fails is not written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Store, ThresholdBinding } from '@airlock/core';

const address = (accountIndex: number, keyIndex: number) => `0x${(accountIndex * 1000 + keyIndex + 1).toString(16).padStart(40, '0')}`;

function binding(agentId: string, over: Partial<ThresholdBinding> = {}): ThresholdBinding {
  return {
    agentId, namespace: 'nostr', groupKey: 'ab'.repeat(32),
    cluster: { threshold: 2, nodes: [{ name: 'alice', identifier: 1, identityKey: '11'.repeat(32) }, { name: 'bob', identifier: 2, identityKey: '22'.repeat(32) }] },
    publicPackage: { signers: { '01': '02' + '33'.repeat(32) }, commitments: ['02' + 'ab'.repeat(32)], unicode: 'é ✓' },
    nodes: [{ name: 'alice', url: 'http://127.0.0.1:1' }, { name: 'bob', url: 'http://127.0.0.1:2' }],
    sealedTokens: 'v1.c2VhbGVk', createdAt: 1_700_000_000_000, ...over,
  };
}

export function runThresholdBindingStoreContract(fresh: () => Promise<Store>): void {
  test('threshold bindings: round-trip per (agent, namespace); a put replaces; a delete returns it; a failed transaction writes nothing', async () => {
    const store = await fresh();
    const [a, b] = await store.createAgents([{ id: 'ag_frost0000000000a', name: 'frost-a', labels: {} }, { id: 'ag_frost0000000000b', name: 'frost-b', labels: {} }], address, 1_000);
    assert.equal(await store.getThresholdBinding(a!.id, 'nostr'), undefined);
    const first = binding(a!.id);
    await store.transaction(async (tx) => tx.putThresholdBinding(first));
    assert.deepEqual(await store.getThresholdBinding(a!.id, 'nostr'), first);
    assert.equal(await store.getThresholdBinding(a!.id, 'eip155'), undefined);
    assert.equal(await store.getThresholdBinding(b!.id, 'nostr'), undefined);

    const second = binding(a!.id, { groupKey: 'cd'.repeat(32), sealedTokens: 'v1.b3RoZXI', createdAt: 1_700_000_000_001 });
    await store.transaction(async (tx) => {
      assert.deepEqual(await tx.getThresholdBinding(a!.id, 'nostr'), first);
      await tx.putThresholdBinding(second);
    });
    assert.deepEqual(await store.getThresholdBinding(a!.id, 'nostr'), second);

    await assert.rejects(store.transaction(async (tx) => {
      await tx.putThresholdBinding(binding(b!.id));
      throw new Error('rolled back');
    }));
    assert.equal(await store.getThresholdBinding(b!.id, 'nostr'), undefined, 'nothing of the failed transaction was written');

    assert.deepEqual(await store.transaction((tx) => tx.deleteThresholdBinding(a!.id, 'nostr')), second);
    assert.equal(await store.transaction((tx) => tx.deleteThresholdBinding(a!.id, 'nostr')), undefined);
    assert.equal(await store.getThresholdBinding(a!.id, 'nostr'), undefined);
  });
}
