// Schema 026 (SQLite) / 027 (PostgreSQL): agents.operator_frozen, backfilled failing closed. A frozen agent is marked
// the operator's unless a tripped freeze breaker holds it and no agent.frozen / agent.revoke_all entry of it is newer
// than that breaker's trip; afterwards a breaker reset leaves the marked ones frozen. Run by both stores' tests on a
// store built at the version before (the history written by the code of the day, before the column existed).
import assert from 'node:assert/strict';
import type { Store } from '@airlock/core';

const address = (accountIndex: number) => `0x${accountIndex.toString(16).padStart(40, '0')}`;

/** `marks()` reads agents' (name -> [status, operator_frozen as 0 or 1]) straight from the database. */
export async function checkOperatorFreezeBackfill(store: Store & { rawExec(sql: string): Promise<void> }, migrate: () => Promise<void>, marks: () => Promise<Record<string, [string, number]>>): Promise<void> {
  const names = ['by-hand', 'breaker-only', 'breaker-then-hand', 'breaker-then-revoke-all', 'active', 'hand-before-breaker'];
  const agents = await store.createAgents(names.map((name, i) => ({ id: `ag_opfm00000000000${i}`, name, labels: {} })), (i) => address(i), 1_000);
  const id = (name: string) => agents.find((a) => a.name === name)!.id;
  const audit = (type: string, agentName: string) => store.transaction((tx) => tx.appendAudit({ at: 2_000, type, actor: 'operator', agentId: id(agentName), data: {} }));

  // by-hand: frozen by the operator, no breaker.
  await audit('agent.frozen', 'by-hand');
  // hand-before-breaker: frozen and unfrozen by hand before the breaker tripped and froze it: its freeze entry is
  // older than the trip, the breaker alone holds it.
  await audit('agent.frozen', 'hand-before-breaker');
  const base = { detector: 'detector/fleet/burst', type: 'request_burst', scope: 'fleet' as const, agentId: id('breaker-only'), policyVersion: 'fleet@1:x', figures: { observed: '3', threshold: '2', baseline: '0', window: '1m' }, message: 'burst', action: 'freeze' as const, state: 'tripped' as const, trippedAt: 3_000 };
  const trip = await store.transaction((tx) => tx.appendAudit({ at: 3_000, type: 'breaker.tripped', actor: 'system', agentId: id('breaker-only'), data: {} }));
  const held = ['breaker-only', 'breaker-then-hand', 'breaker-then-revoke-all', 'hand-before-breaker'].map(id);
  await store.transaction((tx) => tx.tripBreaker({ ...base, id: 'brk_opfm_1', trippedSeq: trip.seq, agents: held }, { freeze: true, now: 3_000 }));
  await audit('agent.frozen', 'breaker-then-hand');
  await audit('agent.revoke_all', 'breaker-then-revoke-all');
  await store.rawExec(`UPDATE agents SET status = 'frozen' WHERE id = '${id('by-hand')}'`);

  await migrate();
  assert.deepEqual(await marks(), {
    'by-hand': ['frozen', 1],
    'breaker-only': ['frozen', 0],
    'breaker-then-hand': ['frozen', 1],
    'breaker-then-revoke-all': ['frozen', 1],
    active: ['active', 0],
    'hand-before-breaker': ['frozen', 0],
  });

  const reset = await store.transaction((tx) => tx.resetBreaker('brk_opfm_1', 'admin', 4_000, 99));
  assert.deepEqual(reset.unfrozen, [id('breaker-only'), id('hand-before-breaker')].sort());
  assert.deepEqual(reset.keptFrozen.map((k) => [k.agentId, k.operatorFreeze, k.breakers]), [id('breaker-then-hand'), id('breaker-then-revoke-all')].sort().map((a) => [a, true, []]));
}
