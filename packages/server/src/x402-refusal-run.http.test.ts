// x402 refusals count toward refusal_run, over HTTP on SQLite and PostgreSQL (found by review: POST /v1/x402/pay
// judged each requirement with a dry-run and recorded its refusal without the detectors, so an agent probing
// payees through x402 was never counted, never tripped, never frozen). A payment refused by policy is now
// screened like a refused /v1/sign/* request: it trips on the same count, the breaker is listed and the agent
// frozen; an allowed payment before the threshold still works; a refused payment reserves and signs nothing;
// an Idempotency-Key retry of a refusal is not counted again; and /v1/dry-run refusals count nothing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodePaymentRequiredHeader } from '@x402/core/http';
import { ALICE, BASE, MALLORY, USDC, USDC_ASSET, provisionAgent, startHarness, usdcAuthorization, type Harness, type StoreKind } from './testing/harness.ts';

const API = 'https://api.example.com';
const MAX = 3;
const PROBING = 'detector/agent/probing';

function requirement(payTo: string) {
  return { scheme: 'exact', network: BASE, amount: '1000', asset: USDC, payTo, maxTimeoutSeconds: 60, extra: { name: 'USD Coin', version: '2' } };
}

function paymentRequired(url: string, accepts: Record<string, unknown>[]) {
  return encodePaymentRequiredHeader({ x402Version: 2, error: 'Payment required', resource: { url, description: 'data', mimeType: 'application/json' }, accepts } as never);
}

/** x402 to ALICE for the API, and a refusal_run detector that freezes on the third refusal in 10 minutes. */
const policy = {
  version: 1,
  rules: [
    { name: 'paid-apis', type: 'allow', match: { chains: [BASE], kinds: ['eip3009.transfer_with_authorization'], to: [ALICE], resources: [`${API}/**`] } },
    { name: 'max-price', type: 'max_amount', asset: USDC_ASSET, max: '5000' },
    { name: 'short-lived', type: 'validity_window', max_seconds: 120 },
  ],
  detectors: [{ name: 'probing', type: 'refusal_run', max: MAX, window: '10m', action: 'freeze' }],
};

const codes = (res: { body: any }) => (res.body.error?.violations ?? res.body.violations ?? []).map((v: any) => `${v.rule}:${v.code}`);

for (const store of ['sqlite', 'postgres'] as StoreKind[]) describe(`x402 refusals and refusal_run (${store})`, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ store, manualClock: true });
  });
  after(async () => h.close());

  const step = () => h.clock!.advance(1000);
  const pay = (token: string, payTo: string, headers: Record<string, string> = {}) => {
    step();
    const url = `${API}/data/prices?symbol=ETH`;
    return h.call('POST', '/v1/x402/pay', { token, body: { resource: url, paymentRequired: paymentRequired(url, [requirement(payTo)]) }, headers });
  };
  const validBefore = () => Math.floor(h.clock!.now() / 1000) + 60;
  const signTyped = (token: string, from: string, to: string) => (step(), h.call('POST', '/v1/sign/typed-data', { token, body: usdcAuthorization(from, to, 1000n, validBefore()) }));
  const dryRun = (token: string, from: string, to: string) => (step(), h.call('POST', '/v1/dry-run', { token, body: { action: 'evm.typed_data', payload: usdcAuthorization(from, to, 1000n, validBefore()) } }));
  const breakersOf = async (agentId: string) => (await h.admin('GET', '/v1/breakers')).body.breakers.filter((b: any) => b.agentId === agentId);
  const paymentsOf = async (agentId: string) => (await h.admin('GET', '/v1/x402/payments?limit=100')).body.payments.filter((p: any) => p.agentId === agentId);
  const auditOf = async (name: string, type: string) => (await h.admin('GET', `/v1/audit?agent=${name}&type=${type}&limit=100`)).body.entries;

  /** Sends refused requests until one trips the breaker (at most 10): the refusal count it tripped on. */
  async function probeUntilTripped(send: () => Promise<{ status: number; body: any }>): Promise<number> {
    for (let n = 1; n <= 10; n++) {
      const res = await send();
      assert.equal(res.status, 403, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'policy_denied', JSON.stringify(res.body));
      if (codes(res).includes(`${PROBING}:breaker_tripped`)) return n;
    }
    return Infinity;
  }

  test('refused x402 payments trip refusal_run on the same count as refused typed-data signatures, and the agent is frozen', async () => {
    // The control: refused EIP-3009 signatures through /v1/sign/typed-data.
    const control = await provisionAgent(h, { policy });
    const signedTrip = await probeUntilTripped(() => signTyped(control.token, control.agent.address, MALLORY));
    assert.equal(signedTrip, MAX);
    assert.equal((await signTyped(control.token, control.agent.address, ALICE)).body.error.code, 'agent_frozen');

    // The same probing through POST /v1/x402/pay.
    const { agent, token } = await provisionAgent(h, { policy });
    const paidTrip = await probeUntilTripped(() => pay(token, MALLORY));
    assert.equal(paidTrip, signedTrip, 'x402 refusals trip on the same count');

    // Frozen: the next request, even one policy allows, is refused agent_frozen; nothing reserved, nothing signed.
    const after = await pay(token, ALICE);
    assert.equal(after.status, 403, JSON.stringify(after.body));
    assert.equal(after.body.error.code, 'agent_frozen');
    const shown = (await h.admin('GET', `/v1/agents/${agent.name}`)).body;
    assert.equal(shown.agent?.status ?? shown.status, 'frozen', JSON.stringify(shown));
    assert.deepEqual(await paymentsOf(agent.id), []);

    // The breaker is listed, with the count it tripped on, and its trip is audited after the refusal that tripped it.
    const [breaker, ...others] = await breakersOf(agent.id);
    assert.equal(others.length, 0);
    assert.equal(breaker.detector, PROBING);
    assert.equal(breaker.type, 'refusal_run');
    assert.equal(breaker.action, 'freeze');
    assert.equal(breaker.state, 'tripped');
    assert.deepEqual(breaker.agents, [agent.id]);
    assert.equal(breaker.figures.observed, String(MAX));
    const refusals = await auditOf(agent.name, 'x402.pay');
    assert.equal(refusals.length, MAX);
    assert.ok(refusals.every((e: any) => e.decision === 'deny'));
    const trippedBy = refusals.reduce((a: any, b: any) => (a.seq > b.seq ? a : b));
    assert.ok(trippedBy.data.violations.some((v: any) => v.rule === PROBING && v.code === 'breaker_tripped'), JSON.stringify(trippedBy.data.violations));
    const [tripped] = await auditOf(agent.name, 'breaker.tripped');
    assert.equal(tripped.data.requestSeq, trippedBy.seq);
    assert.equal(tripped.data.breakerId, breaker.id);
    // Nothing signed for a refusal: no sign.request entry at all for this agent.
    assert.deepEqual(await auditOf(agent.name, 'sign.request'), []);

    // The operator resets the breaker: the agent pays again.
    assert.equal((await h.admin('POST', `/v1/breakers/${breaker.id}/reset`)).status, 200);
    h.clock!.advance(11 * 60_000);
    const paid = await pay(token, ALICE);
    assert.equal(paid.status, 200, JSON.stringify(paid.body));
  });

  test('an allowed payment before the threshold still works, and the refusal breaker_tripped names it once', async () => {
    const { agent, token } = await provisionAgent(h, { policy });
    for (let n = 1; n < MAX; n++) {
      const refused = await pay(token, MALLORY);
      assert.equal(refused.status, 403, JSON.stringify(refused.body));
      assert.deepEqual(refused.body.error.violations.map((v: any) => v.code), ['no_matching_allow_rule']);
      assert.equal(refused.body.error.code, 'policy_denied');
    }
    // Two refusals so far (below MAX): an allowed payment is signed and reserved.
    const paid = await pay(token, ALICE);
    assert.equal(paid.status, 200, JSON.stringify(paid.body));
    assert.equal(paid.body.decision, 'allow');
    assert.equal((await paymentsOf(agent.id)).length, 1);
    assert.deepEqual(await breakersOf(agent.id), []);
    // The next refusal is the MAX-th: it trips, and names the breaker once (not once per dry-run and again on screening).
    const trip = await pay(token, MALLORY);
    assert.equal(trip.status, 403);
    assert.equal(codes(trip).filter((c: string) => c === `${PROBING}:breaker_tripped`).length, 1, JSON.stringify(codes(trip)));
    assert.equal((await breakersOf(agent.id)).length, 1);
    assert.equal((await pay(token, ALICE)).body.error.code, 'agent_frozen');
    assert.equal((await paymentsOf(agent.id)).length, 1, 'the refusals reserved nothing');
  });

  test('dry-run refusals count nothing; an Idempotency-Key retry of a refused payment is not counted again', async () => {
    const { agent, token } = await provisionAgent(h, { policy });
    // Many refused dry-runs: nothing counted, nothing tripped.
    for (let n = 0; n < 2 * MAX; n++) {
      const dry = await dryRun(token, agent.address, MALLORY);
      assert.equal(dry.status, 200, JSON.stringify(dry.body));
      assert.equal(dry.body.decision.decision, 'deny');
      assert.ok(!dry.body.decision.violations.some((v: any) => v.rule === PROBING), JSON.stringify(dry.body.decision.violations));
    }
    assert.deepEqual(await breakersOf(agent.id), []);

    // One refused payment, retried under its Idempotency-Key: answered as stored, counted once.
    const first = await pay(token, MALLORY, { 'Idempotency-Key': 'probe-1' });
    assert.equal(first.status, 403);
    const again = await pay(token, MALLORY, { 'Idempotency-Key': 'probe-1' });
    assert.equal(again.status, 403);
    assert.equal(again.body.replayed, true);
    assert.equal((await pay(token, MALLORY)).status, 403, 'the second refusal');
    assert.deepEqual(await breakersOf(agent.id), []);
    // The dry-run says what the next refusal would do, and still trips nothing.
    const preview = await dryRun(token, agent.address, MALLORY);
    assert.ok(preview.body.decision.violations.some((v: any) => v.rule === PROBING && v.code === 'breaker_tripped'), JSON.stringify(preview.body.decision.violations));
    assert.deepEqual(await breakersOf(agent.id), []);
    assert.equal((await pay(token, ALICE)).status, 200, 'not frozen by dry-runs');
    // The third refusal trips.
    const trip = await pay(token, MALLORY);
    assert.ok(codes(trip).includes(`${PROBING}:breaker_tripped`), JSON.stringify(codes(trip)));
    assert.equal((await breakersOf(agent.id)).length, 1);
    assert.equal((await pay(token, ALICE)).body.error.code, 'agent_frozen');
  });
});
