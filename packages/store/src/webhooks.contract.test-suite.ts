/**
 * The webhook part of the Store contract (core/ports/webhooks.ts), run inside runStoreContract for every store,
 * plus `checkConcurrentClaims` for several instances on one database (postgres.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AirlockError, type AuditEntryInput, type NewWebhookDelivery, type Store, type WebhookEndpoint } from '@airlock/core';

const MATCH = { types: ['approval.denied'], prefixes: ['alert.', 'breaker.'], decisions: ['require_approval'] };

function endpoint(id: string, now = 1_000): Omit<WebhookEndpoint, 'cursor'> {
  return { id, url: 'https://hooks.example/airlock', events: ['alert.*'], description: 'ops', secretVersion: 1, createdAt: now, updatedAt: now };
}

async function append(store: Store, ...inputs: AuditEntryInput[]) {
  const out = [];
  for (const input of inputs) out.push(await store.transaction((tx) => tx.appendAudit(input)));
  return out;
}

function delivery(endpointId: string, leafIndex: number, seq = leafIndex + 1): NewWebhookDelivery {
  return { eventId: `evt_${endpointId}_${leafIndex}`, endpointId, auditSeq: seq, leafIndex, eventType: 'alert.loop_guard' };
}

async function rejectsWithCode(p: Promise<unknown>, expected: string): Promise<void> {
  await assert.rejects(p, (e) => e instanceof AirlockError && e.code === expected);
}

export function runWebhookStoreContract(fresh: () => Promise<Store>): void {
  test('webhooks: an endpoint starts at the log size, is listed until removed, rotates its secret version, and its creation commits with its audit entry', async () => {
    const store = await fresh();
    await append(store, { at: 1, type: 'sign.request', actor: 'agent', decision: 'allow', data: {} }, { at: 2, type: 'alert.loop_guard', actor: 'system', data: {} });
    const created = await store.transaction(async (tx) => {
      const e = await tx.createWebhookEndpoint(endpoint('whk_a'));
      await tx.appendAudit({ at: 3, type: 'webhook.created', actor: 'operator', data: { endpointId: e.id } });
      return e;
    });
    assert.equal(created.cursor, 2, 'entries before the endpoint existed are not its business');
    assert.deepEqual(created.events, ['alert.*']);
    await assert.rejects(store.transaction(async (tx) => {
      await tx.createWebhookEndpoint(endpoint('whk_b'));
      throw new Error('boom');
    }), /boom/);
    assert.equal(await store.getWebhookEndpoint('whk_b'), undefined, 'rolled back with its transaction');
    assert.deepEqual((await store.listWebhookEndpoints()).map((e) => e.id), ['whk_a']);

    const rotated = await store.transaction((tx) => tx.rotateWebhookSecret('whk_a', 5));
    assert.equal(rotated.secretVersion, 2);
    assert.equal(rotated.updatedAt, 5);
    const removed = await store.transaction((tx) => tx.removeWebhookEndpoint('whk_a', 6));
    assert.equal(removed.removedAt, 6);
    assert.deepEqual(await store.listWebhookEndpoints(), []);
    assert.deepEqual((await store.listWebhookEndpoints({ includeRemoved: true })).map((e) => e.id), ['whk_a']);
    await rejectsWithCode(store.transaction((tx) => tx.rotateWebhookSecret('whk_a', 7)), 'not_found');
    await rejectsWithCode(store.transaction((tx) => tx.removeWebhookEndpoint('whk_a', 7)), 'not_found');
    await rejectsWithCode(store.transaction((tx) => tx.removeWebhookEndpoint('whk_nope', 7)), 'not_found');
  });

  test('webhooks: a scan returns matching entries of a leaf range in leaf order, with their data; prefixes are literal', async () => {
    const store = await fresh();
    await append(
      store,
      { at: 1, type: 'alert.loop_guard', actor: 'system', agentId: 'ag_1', data: { resource: 'https://x' } },
      { at: 2, type: 'sign.request', actor: 'agent', decision: 'allow', data: {} },
      { at: 3, type: 'sign.request', actor: 'agent', decision: 'require_approval', data: { approvalId: 'apr_1' } },
      { at: 4, type: 'approval.denied', actor: 'operator', decision: 'deny', data: {} },
      { at: 5, type: 'approval.granted', actor: 'operator', decision: 'allow', data: {} },
      { at: 6, type: 'alertXloop', actor: 'system', data: {} },
      { at: 7, type: 'breaker.tripped', actor: 'system', data: {} },
    );
    const all = await store.scanAuditForWebhooks(0, 7, MATCH, 100);
    assert.deepEqual(all.map((e) => `${e.leafIndex}:${e.type}`), ['0:alert.loop_guard', '2:sign.request', '3:approval.denied', '6:breaker.tripped']);
    assert.deepEqual(all[0]!.data, { resource: 'https://x' });
    assert.deepEqual((await store.scanAuditForWebhooks(1, 6, MATCH, 100)).map((e) => e.leafIndex), [2, 3], 'the range bounds both ends');
    assert.deepEqual((await store.scanAuditForWebhooks(0, 7, MATCH, 2)).map((e) => e.leafIndex), [0, 2], 'at most limit, first ones first');
    assert.deepEqual(await store.scanAuditForWebhooks(0, 7, { types: [], prefixes: ['alert_'], decisions: [] }, 10), [], '`_` is no wildcard');
    assert.equal((await store.auditEntryAt(3))!.type, 'approval.denied');
    assert.equal(await store.auditEntryAt(99), undefined);
  });

  test('webhooks: enqueue is idempotent per event id, moves cursors only forward, and skips removed endpoints', async () => {
    const store = await fresh();
    await store.transaction(async (tx) => {
      await tx.createWebhookEndpoint(endpoint('whk_a'));
      await tx.createWebhookEndpoint(endpoint('whk_b'));
    });
    await store.enqueueWebhookDeliveries([delivery('whk_a', 0), delivery('whk_a', 1), delivery('whk_b', 1)], [{ endpointId: 'whk_a', cursor: 5 }, { endpointId: 'whk_b', cursor: 5 }], 100);
    // A second instance that read the same page enqueues the same events: one row each.
    await store.enqueueWebhookDeliveries([delivery('whk_a', 1)], [{ endpointId: 'whk_a', cursor: 3 }], 200);
    const a = await store.listWebhookDeliveries('whk_a');
    assert.deepEqual(a.map((d) => [d.leafIndex, d.state, d.attempts, d.createdAt]), [[1, 'pending', 0, 100], [0, 'pending', 0, 100]], 'newest entry first, first write kept');
    assert.equal((await store.getWebhookEndpoint('whk_a'))!.cursor, 5, 'a cursor never goes back');
    await store.transaction((tx) => tx.removeWebhookEndpoint('whk_b', 300));
    await store.enqueueWebhookDeliveries([delivery('whk_b', 4)], [], 400);
    assert.deepEqual((await store.listWebhookDeliveries('whk_b')).map((d) => [d.leafIndex, d.state]), [[1, 'cancelled']], 'removal cancels pending deliveries and takes no new ones');
  });

  test('webhooks: endpoints take turns in a claim, and none holds more than perEndpoint leases at once', async () => {
    const store = await fresh();
    await store.transaction(async (tx) => {
      await tx.createWebhookEndpoint(endpoint('whk_a'));
      await tx.createWebhookEndpoint(endpoint('whk_b'));
    });
    // Endpoint a has a flood of older events; b's few arrive after it.
    await store.enqueueWebhookDeliveries(Array.from({ length: 20 }, (_, i) => delivery('whk_a', i)), [], 100);
    await store.enqueueWebhookDeliveries([20, 21, 22].map((i) => delivery('whk_b', i)), [], 200);
    const first = await store.claimWebhookDeliveries(1_000, 9_000, 4, 2);
    assert.deepEqual(first.map((d) => `${d.endpointId}:${d.leafIndex}`).sort(), ['whk_a:0', 'whk_a:1', 'whk_b:20', 'whk_b:21'], 'turns, not the oldest four of a');
    // a and b each hold 2 leases: nothing more for either until one is recorded.
    assert.deepEqual(await store.claimWebhookDeliveries(1_001, 9_000, 8, 2), []);
    await store.recordWebhookAttempt({ eventId: 'evt_whk_a_0', attempt: 1, outcome: 'delivered', startedAt: 1_001, finishedAt: 1_002, httpStatus: 200 }, { state: 'delivered', nextAttemptAt: 1_002 }, 1_002);
    assert.deepEqual((await store.claimWebhookDeliveries(1_003, 9_000, 8, 2)).map((d) => `${d.endpointId}:${d.leafIndex}`), ['whk_a:2'], 'a slot of a freed: its next one');
    // Leases that lapse count no more.
    const lapsed = await store.claimWebhookDeliveries(9_000, 20_000, 8, 2);
    assert.deepEqual(lapsed.map((d) => `${d.endpointId}:${d.leafIndex}`).sort(), ['whk_a:1', 'whk_a:2', 'whk_b:20', 'whk_b:21'].sort());
    // Without perEndpoint: still in turns, and one endpoint may take every slot.
    assert.deepEqual((await store.claimWebhookDeliveries(20_000, 30_000, 3)).map((d) => `${d.endpointId}:${d.leafIndex}`), ['whk_a:1', 'whk_a:2', 'whk_b:20']);
    const rest = await store.claimWebhookDeliveries(20_000, 30_000, 100);
    assert.equal(rest.length, 17 + 2, 'a:3..a:19 and b:21, b:22');
    assert.equal(rest.filter((d) => d.endpointId === 'whk_a').length, 17);
    await rejectsWithCode(store.claimWebhookDeliveries(30_000, 40_000, 3, 0), 'invalid_request');
  });

  test('webhooks: a claim leases due deliveries (attempts + 1); a leased one is not claimed again until its lease lapses; attempts are fenced and logged', async () => {
    const store = await fresh();
    await store.transaction((tx) => tx.createWebhookEndpoint(endpoint('whk_a')));
    await store.enqueueWebhookDeliveries([delivery('whk_a', 0), delivery('whk_a', 1)], [], 1_000);
    assert.deepEqual(await store.claimWebhookDeliveries(999, 2_000, 10), [], 'not due yet');
    const claimed = await store.claimWebhookDeliveries(1_000, 6_000, 1);
    assert.deepEqual(claimed.map((d) => [d.leafIndex, d.attempts, d.leaseUntil]), [[0, 1, 6_000]], 'oldest first, limit respected');
    const second = await store.claimWebhookDeliveries(1_000, 6_000, 10);
    assert.deepEqual(second.map((d) => d.leafIndex), [1], 'a leased delivery is not handed out twice');
    assert.deepEqual(await store.claimWebhookDeliveries(5_999, 9_000, 10), [], 'leases still running');

    // Delivery 1: its lease lapses (the sender died); a later claim takes it with attempt 2.
    const retaken = await store.claimWebhookDeliveries(6_000, 11_000, 10);
    assert.deepEqual(retaken.map((d) => [d.leafIndex, d.attempts]), [[0, 2], [1, 2]]);
    // The late answer of attempt 1 is logged but does not move the delivery: attempt 2 owns it now.
    await store.recordWebhookAttempt({ eventId: 'evt_whk_a_1', attempt: 1, outcome: 'delivered', httpStatus: 200, startedAt: 1_000, finishedAt: 7_000 }, { state: 'delivered', nextAttemptAt: 7_000 }, 7_000);
    await store.recordWebhookAttempt({ eventId: 'evt_whk_a_1', attempt: 2, outcome: 'retry', httpStatus: 503, errorClass: 'http_status', startedAt: 6_000, finishedAt: 6_100 }, { state: 'pending', nextAttemptAt: 8_000 }, 6_100);
    await store.recordWebhookAttempt({ eventId: 'evt_whk_a_0', attempt: 2, outcome: 'delivered', httpStatus: 204, startedAt: 6_000, finishedAt: 6_050 }, { state: 'delivered', nextAttemptAt: 6_050 }, 6_050);
    const list = await store.listWebhookDeliveries('whk_a');
    assert.deepEqual(list.map((d) => [d.leafIndex, d.state, d.attempts, d.nextAttemptAt, d.leaseUntil]), [[1, 'pending', 2, 8_000, 0], [0, 'delivered', 2, 6_050, 0]]);
    assert.deepEqual(list[0]!.log.map((a) => [a.attempt, a.outcome, a.httpStatus, a.errorClass]), [[1, 'delivered', 200, undefined], [2, 'retry', 503, 'http_status']]);
    assert.deepEqual(await store.claimWebhookDeliveries(7_999, 20_000, 10), [], 'retry not due yet');
    const third = await store.claimWebhookDeliveries(8_000, 20_000, 10);
    assert.deepEqual(third.map((d) => [d.leafIndex, d.attempts]), [[1, 3]]);
    await store.recordWebhookAttempt({ eventId: 'evt_whk_a_1', attempt: 3, outcome: 'failed', errorClass: 'timeout', startedAt: 8_000, finishedAt: 13_000 }, { state: 'failed', nextAttemptAt: 13_000 }, 13_000);
    assert.deepEqual((await store.listWebhookDeliveries('whk_a', { state: 'failed' })).map((d) => d.leafIndex), [1]);
    assert.deepEqual(await store.claimWebhookDeliveries(100_000, 200_000, 10), [], 'nothing pending is left');
  });

  test('webhooks: removing an endpoint cancels what is pending and nothing of it is claimed', async () => {
    const store = await fresh();
    await store.transaction((tx) => tx.createWebhookEndpoint(endpoint('whk_a')));
    await store.enqueueWebhookDeliveries([delivery('whk_a', 0)], [], 1_000);
    await store.transaction((tx) => tx.removeWebhookEndpoint('whk_a', 1_500));
    assert.deepEqual(await store.claimWebhookDeliveries(2_000, 3_000, 10), []);
    assert.deepEqual((await store.listWebhookDeliveries('whk_a')).map((d) => d.state), ['cancelled']);
  });

  test('webhooks: pruning deletes finished deliveries (delivered, failed, cancelled) last changed before the cut-off, with their attempts; never a pending one', async () => {
    const store = await fresh();
    await store.transaction((tx) => tx.createWebhookEndpoint(endpoint('whk_a')));
    await store.transaction((tx) => tx.createWebhookEndpoint(endpoint('whk_b')));
    await store.enqueueWebhookDeliveries([0, 1, 2, 3, 4].map((i) => delivery('whk_a', i)).concat([delivery('whk_b', 5)]), [], 1_000);
    await store.claimWebhookDeliveries(1_000, 60_000, 10);
    const record = (leaf: number, state: 'pending' | 'delivered' | 'failed', at: number) =>
      store.recordWebhookAttempt({ eventId: `evt_whk_a_${leaf}`, attempt: 1, outcome: state === 'pending' ? 'retry' : state, startedAt: at - 10, finishedAt: at }, { state, nextAttemptAt: at + 1_000 }, at);
    await record(0, 'delivered', 2_000); // old: pruned
    await record(1, 'failed', 2_500); // old: pruned
    await record(2, 'delivered', 9_000); // recent: kept
    await record(3, 'pending', 2_000); // old but pending (a retry to come): kept
    // 4 stays leased and pending since 1_000: kept.
    await store.transaction((tx) => tx.removeWebhookEndpoint('whk_b', 3_000)); // 5 cancelled at 3_000: pruned
    assert.equal(await store.pruneWebhookDeliveries(5_000, 1), 1, 'at most limit at a time');
    assert.equal(await store.pruneWebhookDeliveries(5_000, 100), 2);
    assert.equal(await store.pruneWebhookDeliveries(5_000, 100), 0, 'nothing more to prune');
    const left = await store.listWebhookDeliveries('whk_a');
    assert.deepEqual(left.map((d) => [d.leafIndex, d.state]), [[4, 'pending'], [3, 'pending'], [2, 'delivered']]);
    assert.deepEqual(left.map((d) => d.log.length), [0, 1, 1], 'the attempts of kept deliveries are kept');
    assert.deepEqual(await store.listWebhookDeliveries('whk_b'), []);
    // The pending ones are still sent.
    assert.deepEqual((await store.claimWebhookDeliveries(100_000, 200_000, 10)).map((d) => d.leafIndex).sort(), [3, 4]);
  });
}

/** Several instances on one database claim at once: every due delivery goes to exactly one of them. */
export async function checkConcurrentClaims(stores: Store[], deliveries = 60): Promise<void> {
  const [first] = stores;
  await first!.transaction((tx) => tx.createWebhookEndpoint(endpoint('whk_race')));
  await first!.enqueueWebhookDeliveries(Array.from({ length: deliveries }, (_, i) => delivery('whk_race', i)), [], 1_000);
  const claims = await Promise.all(Array.from({ length: 12 }, (_, i) => stores[i % stores.length]!.claimWebhookDeliveries(2_000, 60_000, 7)));
  const ids = claims.flat().map((d) => d.eventId);
  assert.equal(new Set(ids).size, ids.length, 'no delivery claimed twice');
  assert.equal(ids.length, Math.min(deliveries, 12 * 7));
}
