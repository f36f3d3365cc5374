// The per-session request rate (AIRLOCK_SESSION_RATE) shared by a session tree, attacked with a dead child: a
// sub-agent its parent revoked (or whose session expired) keeps sending with its token, to hold the live parent
// and its siblings at 429 session_rate_limited (found by review: a dead credential took its ancestors' tokens).
// What holds: a dead credential takes its own bucket only (it is still throttled there, so its flood cannot
// append one auth.refused entry per request); ancestors' buckets are taken once the session is found usable, and
// a request refused by an ancestor's bucket costs the child's own bucket nothing (all or none). The limiter is
// in memory, the same whatever the store: SQLite only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ALICE, BASE, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness } from './testing/harness.ts';

const RATE = { perSecond: 1, burst: 5 };

async function deriveOk(h: Harness, token: string, body: Record<string, unknown> = {}): Promise<{ token: string; session: { id: string } }> {
  const r = await h.call('POST', '/v1/session/children', { token, body });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
}

async function refusedEntries(h: Harness, sessionId: string): Promise<number> {
  const r = await h.admin('GET', '/v1/audit?type=auth.refused&limit=1000');
  return (r.body.entries as { sessionId?: string }[]).filter((e) => e.sessionId === sessionId).length;
}

/** A parent and a child this instance has seen once (its ancestry is known: the case the review found). */
async function parentAndSeenChild(h: Harness, childBody: Record<string, unknown> = {}) {
  const parent = await provisionAgent(h, { policy: usdcPolicy(), actions: ['evm.transaction'], chains: [BASE] });
  const child = await deriveOk(h, parent.token, childBody);
  assert.equal((await h.call('GET', '/v1/session', { token: child.token })).status, 200);
  return { parent, child };
}

const DEATHS = [
  {
    death: 'that its parent revoked',
    code: 'session_revoked',
    childBody: {},
    kill: async (h: Harness, parentToken: string, childId: string) => {
      assert.equal((await h.call('POST', `/v1/session/children/${childId}/revoke`, { token: parentToken })).status, 200);
      h.clock!.advance(60_000);
    },
  },
  { death: 'that expired', code: 'session_expired', childBody: { ttlSeconds: 60 }, kill: async (h: Harness) => h.clock!.advance(120_000) },
];

for (const { death, code, childBody, kill } of DEATHS) {
  test(`a child ${death} cannot spend its parent's request rate, and is still throttled on its own bucket`, async () => {
    const h = await startHarness({ store: 'sqlite', manualClock: true, app: { sessionRate: RATE } });
    try {
      const { parent, child } = await parentAndSeenChild(h, childBody);
      await kill(h, parent.token, child.session.id); // every bucket full again

      // The dead child floods, on a REST read and a signing route (credentials from the signing cache): its own
      // burst is answered 401 with the reason, everything past it 429 naming its own bucket.
      const dead: string[] = [];
      for (let i = 0; i < 8; i++) {
        const r = i % 2
          ? await h.call('GET', '/v1/session', { token: child.token })
          : await h.call('POST', '/v1/sign/transaction', { token: child.token, body: usdcTransfer(ALICE, 1n, i) });
        dead.push(`${r.status} ${r.body.error.code}`);
        if (r.status === 429) assert.equal(r.body.error.details.sessionId, child.session.id, 'the dead child\'s own bucket is the one empty');
      }
      assert.deepEqual(dead, [...Array(5).fill(`401 ${code}`), ...Array(3).fill('429 session_rate_limited')]);
      assert.equal(await refusedEntries(h, child.session.id), 5, 'one auth.refused entry per request its own bucket let through, no more');

      // The live parent still has its whole burst, and keeps its rate while the dead child sends at the refill rate.
      const parentStatuses: number[] = [];
      for (let i = 0; i < 5; i++) parentStatuses.push((await h.call('GET', '/v1/session', { token: parent.token })).status);
      for (let i = 0; i < 10; i++) {
        h.clock!.advance(1000);
        await h.call('GET', '/v1/session', { token: child.token });
        parentStatuses.push((await h.call('GET', '/v1/session', { token: parent.token })).status);
      }
      assert.deepEqual(parentStatuses, Array(15).fill(200), 'the parent is never refused for its dead child\'s requests');
    } finally {
      await h.close();
    }
  });
}

test('a live child still shares its parent\'s rate, all or none: refused by the parent\'s bucket, it keeps its own token', async () => {
  const h = await startHarness({ store: 'sqlite', manualClock: true, app: { sessionRate: RATE } });
  try {
    const { parent, child } = await parentAndSeenChild(h); // parent 4 tokens left, child 4
    h.clock!.advance(60_000); // both full: 5
    for (let i = 0; i < 5; i++) assert.equal((await h.call('GET', '/v1/session', { token: parent.token })).status, 200);
    // The parent's bucket is empty: the child is refused, naming its parent, however often it asks.
    for (let i = 0; i < 5; i++) {
      const r = await h.call('GET', '/v1/session', { token: child.token });
      assert.equal(r.status, 429);
      assert.equal(r.body.error.code, 'session_rate_limited');
      assert.equal(r.body.error.details.sessionId, parent.session.id);
    }
    // One second on: the parent has one token, the child all of its own (none was spent on the refusals), so the
    // child signs once and the next refusal still names the parent, not the child.
    h.clock!.advance(1000);
    assert.equal((await h.call('GET', '/v1/session', { token: child.token })).status, 200);
    const next = await h.call('GET', '/v1/session', { token: child.token });
    assert.equal(next.status, 429);
    assert.equal(next.body.error.details.sessionId, parent.session.id, 'the child\'s own bucket was not drained by requests its parent\'s refused');
  } finally {
    await h.close();
  }
});
