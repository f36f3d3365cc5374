/**
 * Grants (core/ports/grants.ts), part of the store contract: rows round-trip exactly (amounts above 2^64, every
 * optional field), are listed per agent in (audit entry, index) order and paged without a gap, and a row whose
 * (audit entry, index) exists already fails its transaction, which then writes nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { GrantRecord, Store } from '@airlock/core';

const OWNER = '0x00000000000000000000000000000000000000a1';
const TOKEN = '0x00000000000000000000000000000000000000b2';
const PERMIT2 = '0x000000000022d473030f116ddee9f6b43ac78ba3';

function grant(over: Partial<GrantRecord>): GrantRecord {
  return { agentId: 'ag_grants', auditSeq: 1, index: 0, kind: 'erc20.approve', chain: 'eip155:8453', token: TOKEN, contract: TOKEN, owner: OWNER, spender: '0x00000000000000000000000000000000000000c3', amount: 5n, unlimited: false, createdAt: 1_700_000_000_000, ...over };
}

export function runGrantStoreContract(fresh: () => Promise<Store>): void {
  test('grants: round-trip, per agent in order, paged without a gap; a duplicate row fails its transaction whole', async () => {
    const store = await fresh();
    const permit: GrantRecord = grant({ auditSeq: 7, kind: 'eip2612.permit', amount: (1n << 255n) + 12345n, unlimited: false, deadline: 1_800_000_000, nonce: '3', domain: { name: 'USD Coin', version: '2' } });
    const batch = [0, 1, 2].map((index) => grant({ auditSeq: 9, index, kind: 'permit2.permit', contract: PERMIT2, amount: (1n << 160n) - 1n, unlimited: true, expiresAt: 1_900_000_000, deadline: 1_800_000_100, nonce: String(index) }));
    await store.transaction(async (tx) => tx.recordGrants([grant({ auditSeq: 3 })]));
    await store.transaction(async (tx) => tx.recordGrants([permit, ...batch]));
    await store.transaction(async (tx) => tx.recordGrants([grant({ auditSeq: 8, agentId: 'ag_other' })]));

    const all = await store.listGrants('ag_grants');
    assert.deepEqual(all, [grant({ auditSeq: 3 }), permit, ...batch]);
    assert.deepEqual(await store.listGrants('ag_other'), [grant({ auditSeq: 8, agentId: 'ag_other' })]);
    assert.deepEqual(await store.listGrants('ag_nobody'), []);
    // Pages that end inside the Permit2 batch (same audit entry, several indexes) lose nothing.
    const first = await store.listGrants('ag_grants', { limit: 3 });
    const second = await store.listGrants('ag_grants', { limit: 3, after: { auditSeq: first[2]!.auditSeq, index: first[2]!.index } });
    assert.deepEqual([...first, ...second], all);

    await assert.rejects(store.transaction(async (tx) => {
      await tx.recordGrants([grant({ auditSeq: 20 })]);
      await tx.recordGrants([grant({ auditSeq: 9, index: 1 })]);
    }));
    assert.deepEqual(await store.listGrants('ag_grants'), all, 'nothing of the failed transaction was written');
  });
}
