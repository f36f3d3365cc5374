// The per-session request rate (AIRLOCK_SESSION_RATE) attacked through JSON-RPC batches: one HTTP request to
// POST /v1/rpc/{chainId} carries up to 100 calls, and a batch took one token of the rate, so a session (and its
// whole tree, through a child) signed 100 times the rate the runaway-loop control promises (found by review).
// What holds: each call of a batch counts as the same call sent alone would, whatever its method (a single request
// takes a token whatever it asks): the first on the HTTP request's token, each further one its own and its
// ancestors'; a call over the rate is answered -32005 with `data.code: session_rate_limited`, the others as usual.
// The limiter is in memory, the same whatever the store: SQLite only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { provisionAgent, startHarness, type Harness } from './testing/harness.ts';

const LOGIN = 'Sign in to airlock.test';
const policy = { version: 1, rules: [{ name: 'login', type: 'allow', match: { actions: ['evm.message'], message: { prefix: LOGIN } } }] };
const RATE = { perSecond: 1, burst: 3 };
const hex = (s: string) => `0x${Buffer.from(s).toString('hex')}`;

type RpcAnswer = { id: number | null; result?: unknown; error?: { code: number; message: string; data: Record<string, unknown> } };

const personalSign = (address: string, id: number) => ({ jsonrpc: '2.0', id, method: 'personal_sign', params: [hex(`${LOGIN} #${id}`), address] });

async function rpc(h: Harness, token: string, body: unknown) {
  return h.call('POST', '/v1/rpc/8453', { token, body });
}

/** "result" or the Airlock code of each answer, in order. */
const outcomes = (answers: RpcAnswer[]) => answers.map((a) => (a.result !== undefined ? 'result' : String(a.error!.data.code)));

async function signatureEntries(h: Harness, sessionId: string): Promise<number> {
  const r = await h.admin('GET', '/v1/audit?type=sign.request&limit=1000');
  return (r.body.entries as { sessionId?: string; decision?: string }[]).filter((e) => e.sessionId === sessionId && e.decision === 'allow').length;
}

test('a batch of signing calls releases no more signatures than the same calls sent one by one', async () => {
  const h = await startHarness({ store: 'sqlite', manualClock: true, app: { sessionRate: RATE } });
  try {
    const agent = await provisionAgent(h, { policy, actions: ['evm.message'] });
    const address = agent.agent.address;
    h.clock!.advance(60_000); // a full bucket: 3

    const r = await rpc(h, agent.token, Array.from({ length: 50 }, (_, i) => personalSign(address, i)));
    assert.equal(r.status, 200, 'the batch itself is admitted: its calls are answered one by one');
    const answers = r.body as RpcAnswer[];
    assert.deepEqual(outcomes(answers), [...Array(3).fill('result'), ...Array(47).fill('session_rate_limited')]);
    assert.deepEqual(answers.map((a) => a.id), Array.from({ length: 50 }, (_, i) => i), 'every call answered under its own id');
    const refused = answers[3]!.error!;
    assert.equal(refused.code, -32005, 'EIP-1474 "limit exceeded", as any rate limit on this endpoint');
    assert.equal(refused.data.rule, 'session_rate');
    assert.equal(refused.data.sessionId, agent.session.id);
    assert.ok(Number(refused.data.retryAfterSeconds) >= 1);
    assert.equal(await signatureEntries(h, agent.session.id), 3, 'three signatures released, not fifty');

    // The batch spent the session's rate: the next request, alone, is refused at the door.
    const next = await rpc(h, agent.token, personalSign(address, 99));
    assert.equal(next.status, 429);
    assert.equal(next.body.error.data.code, 'session_rate_limited');
  } finally {
    await h.close();
  }
});

test('a child\'s batch spends the parent\'s rate call by call: the tree signs no more than the parent\'s burst', async () => {
  const h = await startHarness({ store: 'sqlite', manualClock: true, app: { sessionRate: RATE } });
  try {
    const parent = await provisionAgent(h, { policy, actions: ['evm.message'] });
    const derived = await h.call('POST', '/v1/session/children', { token: parent.token, body: {} });
    assert.equal(derived.status, 201, JSON.stringify(derived.body));
    const child = derived.body as { token: string; session: { id: string } };
    h.clock!.advance(60_000); // every bucket full: 3

    const r = await rpc(h, child.token, Array.from({ length: 10 }, (_, i) => personalSign(parent.agent.address, i)));
    assert.equal(r.status, 200);
    assert.deepEqual(outcomes(r.body), [...Array(3).fill('result'), ...Array(7).fill('session_rate_limited')]);
    // The child's bucket and the parent's are both spent: the parent is refused too.
    const parentNext = await rpc(h, parent.token, personalSign(parent.agent.address, 99));
    assert.equal(parentNext.status, 429);
    assert.equal(parentNext.body.error.data.code, 'session_rate_limited');
    assert.equal(parentNext.body.error.data.sessionId, parent.session.id);
  } finally {
    await h.close();
  }
});

test('calls that sign nothing count too, as they do sent alone; a notification over the rate is not answered', async () => {
  const h = await startHarness({ store: 'sqlite', manualClock: true, app: { sessionRate: RATE } });
  try {
    const agent = await provisionAgent(h, { policy, actions: ['evm.message'] });
    h.clock!.advance(60_000);
    const chainId = (id: number) => ({ jsonrpc: '2.0', id, method: 'eth_chainId' });
    const r = await rpc(h, agent.token, [chainId(1), chainId(2), { jsonrpc: '2.0', method: 'eth_chainId' }, chainId(3), { jsonrpc: '2.0', method: 'eth_chainId' }]);
    assert.equal(r.status, 200);
    // Three tokens: calls 1, 2 and the first notification; call 3 is refused, the last notification gets no answer.
    assert.deepEqual(r.body.map((a: RpcAnswer) => [a.id, a.result ?? a.error!.data.code]), [[1, '0x2105'], [2, '0x2105'], [3, 'session_rate_limited']]);

    // Refilled: a batch within the rate is answered in full.
    h.clock!.advance(60_000);
    const within = await rpc(h, agent.token, [chainId(1), personalSign(agent.agent.address, 2), chainId(3)]);
    assert.deepEqual(outcomes(within.body), ['result', 'result', 'result']);
  } finally {
    await h.close();
  }
});
