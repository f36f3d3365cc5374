// The bunker's in-memory bounds, at their real sizes (docs/threat-model.md, "Nostr bunker: an old envelope replayed
// by a relay" and "asking again for an event held for approval"): a relay's replay finds the request id still held
// at any configured rate, and a client flooding held events pushes out only its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BunkerConnections, requestIdsToRemember } from './connections.ts';
import { HELD_LIMITS, HeldEvents } from './held-events.ts';

const WINDOW_SECONDS = 600; // bunker.ts MAX_ENVELOPE_SKEW_SECONDS

for (const perSecond of [5, 7, 50]) {
  test(`at AIRLOCK_NOSTR_BUNKER_RATE ${perSecond}: every request a client can send inside the envelope window later, the first one replayed is still refused`, () => {
    const rate = { perSecond, burst: 20 };
    const connections = new BunkerConnections(requestIdsToRemember(rate, WINDOW_SECONDS));
    connections.connect('client', { sessionId: 's', agentId: 'a', transportPubkey: 'transport' }, 0);
    // As many as its bucket lets through across the window on both sides, plus its burst.
    const sendable = perSecond * WINDOW_SECONDS * 2 + rate.burst;
    assert.equal(connections.firstUseOfRequestId('transport', 'client', 'first'), true);
    for (let i = 0; i < sendable; i++) connections.firstUseOfRequestId('transport', 'client', `r${i}`);
    assert.equal(connections.firstUseOfRequestId('transport', 'client', 'first'), false, 'the replayed id is still remembered');
  });
}

test('a fixed 4,096 ids (the bound before) let an id fall out at rate 7: the sizing is what holds it', () => {
  const connections = new BunkerConnections(4096);
  connections.connect('client', { sessionId: 's', agentId: 'a', transportPubkey: 'transport' }, 0);
  connections.firstUseOfRequestId('transport', 'client', 'first');
  for (let i = 0; i < 7 * WINDOW_SECONDS + 20; i++) connections.firstUseOfRequestId('transport', 'client', `r${i}`);
  assert.equal(connections.firstUseOfRequestId('transport', 'client', 'first'), true, 'forgotten: a replay would be served');
});

test('a client refused as rate-limited far past its rate pushes out only its refused ids, never the ids of requests that ran (found by review)', () => {
  const rate = { perSecond: 1, burst: 8 };
  const connections = new BunkerConnections(requestIdsToRemember(rate, WINDOW_SECONDS));
  connections.connect('client', { sessionId: 's', agentId: 'a', transportPubkey: 'transport' }, 0);
  assert.equal(connections.firstUseOfRequestId('transport', 'client', 'ran'), true);
  assert.equal(connections.firstRefusalOfRequestId('transport', 'client', 'refused'), true);
  // Refusals are not bounded by the rate: a runaway client sends many times what its bucket lets through.
  for (let i = 0; i < 3 * connections.rememberedRequestIds; i++) connections.firstRefusalOfRequestId('transport', 'client', `flood${i}`);
  assert.equal(connections.firstUseOfRequestId('transport', 'client', 'ran'), false, 'a request that ran is still refused as a replay');
  assert.equal(connections.firstRefusalOfRequestId('transport', 'client', 'ran'), false);
  // A recent refused id is used up either way; the oldest refused ones are what a flood forgets.
  assert.equal(connections.firstUseOfRequestId('transport', 'client', `flood${3 * connections.rememberedRequestIds - 1}`), false);
  assert.equal(connections.firstUseOfRequestId('transport', 'client', 'refused'), true, 'forgotten past the bound (documented residual)');
  assert.ok(connections.footprint().requestIds <= 2 * connections.rememberedRequestIds + 1);
});

test("a session flooding held events pushes out only its own: another session's held events are still found", () => {
  const held = new HeldEvents();
  for (let i = 0; i < 5; i++) held.hold('victim', `v${i}`, `apr_v${i}`);
  // One connected client, then several, each far past its own bound.
  for (let s = 0; s < 12; s++) for (let i = 0; i < HELD_LIMITS.perSession * 2; i++) held.hold(`flood${s}`, `e${i}`, `apr_${s}_${i}`);
  for (let i = 0; i < 5; i++) assert.equal(held.approvalFor('victim', `v${i}`), `apr_v${i}`);
  assert.ok(held.size <= HELD_LIMITS.total, `bounded in all (${held.size})`);
  // A flooding session keeps its newest, up to its own bound.
  assert.equal(held.approvalFor('flood0', `e${HELD_LIMITS.perSession * 2 - 1}`), `apr_0_${HELD_LIMITS.perSession * 2 - 1}`);
  assert.equal(held.approvalFor('flood0', 'e0'), undefined);
});

test('held events: released and forgotten sessions give their room back; asking again moves an event to the newest', () => {
  const held = new HeldEvents({ total: 4, perSession: 3 });
  held.hold('a', '1', 'x1');
  held.hold('a', '2', 'x2');
  held.hold('a', '1', 'x1'); // again: newest now
  held.hold('a', '3', 'x3');
  held.hold('a', '4', 'x4'); // a is at its bound: its oldest ('2') goes
  assert.deepEqual(['1', '2', '3', '4'].map((e) => held.approvalFor('a', e)), ['x1', undefined, 'x3', 'x4']);
  held.hold('b', '1', 'y1'); // 4 in all now
  assert.equal(held.approvalFor('a', '1'), 'x1');
  held.hold('b', '2', 'y2'); // past 4 in all: the largest session (a) gives up its oldest ('1'), not b
  assert.equal(held.approvalFor('a', '1'), undefined);
  assert.deepEqual([held.approvalFor('b', '1'), held.approvalFor('b', '2'), held.size], ['y1', 'y2', 4]);
  held.release('a', '3');
  held.forgetSession('b');
  assert.equal(held.size, 1);
  assert.equal(held.approvalFor('a', '4'), 'x4');
});

// Found by review: the session holding was itself the largest, with one entry; evicting that entry detached its
// map, and the new entry went into the detached map (lost, and the count one too high).
test('held events: a session that is the largest with one entry evicts its own and still keeps the new one', () => {
  const held = new HeldEvents({ total: 3, perSession: 3 });
  held.hold('A', 'e1', 'ap1');
  held.hold('B', 'e2', 'ap2');
  held.hold('C', 'e3', 'ap3');
  held.hold('A', 'e4', 'ap4'); // at the total bound: A (first of the largest) gives up e1
  assert.deepEqual([held.approvalFor('A', 'e1'), held.approvalFor('A', 'e4'), held.size], [undefined, 'ap4', 3]);
  held.hold('D', 'e5', 'ap5');
  held.hold('D', 'e6', 'ap6');
  const kept = [['A', 'e4'], ['B', 'e2'], ['C', 'e3'], ['D', 'e5'], ['D', 'e6']].filter(([s, e]) => held.approvalFor(s!, e!) !== undefined);
  assert.equal(held.size, kept.length, 'the count is what is held');
  assert.equal(held.size, 3);
  assert.equal(held.approvalFor('D', 'e6'), 'ap6');
  // A single-entry bound: each new event replaces the session's one entry.
  const one = new HeldEvents({ total: 10, perSession: 1 });
  one.hold('A', 'e1', 'ap1');
  one.hold('A', 'e2', 'ap2');
  assert.deepEqual([one.approvalFor('A', 'e1'), one.approvalFor('A', 'e2'), one.size], [undefined, 'ap2', 1]);
});

test('a client that logs out (or whose session ends) and connects again keeps its request ids for the envelope window (found by review)', (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_800_000_000_000 });
  const connections = new BunkerConnections(4096);
  const grant = { sessionId: 's', agentId: 'a', transportPubkey: 'transport' };
  connections.connect('client', grant, 0);
  assert.equal(connections.firstUseOfRequestId('transport', 'client', 'ran'), true);
  assert.equal(connections.firstRefusalOfRequestId('transport', 'client', 'refused'), true);
  connections.disconnect('transport', 'client');
  t.mock.timers.tick(5 * 60_000);
  connections.connect('client', { ...grant, sessionId: 's2' }, 0);
  assert.equal(connections.firstUseOfRequestId('transport', 'client', 'ran'), false, 'a replay of a request from before the logout');
  assert.equal(connections.firstUseOfRequestId('transport', 'client', 'refused'), false);
  // The same through the end of a session.
  connections.forgetSession('s2');
  connections.connect('client', grant, 0);
  assert.equal(connections.firstUseOfRequestId('transport', 'client', 'ran'), false);
  // Ids of a client gone for longer than any envelope is accepted are dropped: memory stays bounded.
  connections.disconnect('transport', 'client');
  t.mock.timers.tick(25 * 60_000);
  connections.connect('other', grant, 0);
  assert.equal(connections.footprint().requestIds, 0);
});
