// Settlement tracking: an authorization Airlock signed but nobody ever settled holds its budget until its
// validBefore (+ the release margin) has passed and the finalized block says it was never used; then the
// reconciler releases it.
// Chain time vs wall clock: the facilitator and Airlock use the wall clock, the token uses block.timestamp.
// We never move chain time; we wait (a short maxTimeoutSeconds) and mine a block so both agree.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Address } from 'viem';
import { createAirlockHttp, type AirlockHttp } from '@airlock/sdk';
import { x402Policy } from './policy.ts';
import { startTestbed, type Testbed } from './testbed.ts';
import { rpc } from './token.ts';

const API_OWNER = '0x6666666666666666666666666666666666666666' as Address;
const PRICE = 50_000n;
const VALIDITY_SECONDS = 3;
/** Longest wait past validBefore for the reconciler to call it expired: chain time decides, so only slack. */
const EXPIRY_BOUND_SECONDS = 10;

interface PayAnswer {
  decision: string;
  paymentId: string;
  authorization: { from: Address; validBefore: string; nonce: string };
}

describe('x402 reservations and the reconciler', () => {
  let tb: Testbed;
  before(async () => {
    // A one-second release margin (default 5 minutes) keeps the wait short; reconcile.test.ts covers the default.
    tb = await startTestbed({ routes: { '/data/slow': { price: PRICE, payTo: API_OWNER, maxTimeoutSeconds: VALIDITY_SECONDS } }, airlockEnv: { AIRLOCK_RECONCILE_MARGIN: '1s' } });
  });
  after(async () => tb?.close());

  async function paymentRequired(): Promise<string> {
    const res = await fetch(`${tb.api.url}/data/slow`);
    assert.equal(res.status, 402);
    const header = res.headers.get('payment-required');
    assert.ok(header, 'v2 402 carries PAYMENT-REQUIRED');
    return header;
  }

  test('an expired, never-settled authorization releases its reservation', async () => {
    const agent = await tb.provisionAgent({ policy: x402Policy({ chain: tb.caip2, asset: tb.asset, payees: [API_OWNER], resources: [`${tb.api.url}/data/*`], perCall: PRICE, daily: PRICE }), funds: 1_000_000n });
    const http: AirlockHttp = createAirlockHttp({ url: tb.airlock.url, token: agent.token });
    const resource = `${tb.api.url}/data/slow`;

    // Signed (held), never sent.
    const first = await http.request<PayAnswer>('POST', '/v1/x402/pay', { resource, paymentRequired: await paymentRequired() });
    assert.equal(first.status, 200);
    assert.equal(first.body.decision, 'allow');
    const validBefore = Number(first.body.authorization.validBefore);
    assert.ok(validBefore <= Math.floor(Date.now() / 1000) + VALIDITY_SECONDS + 1, 'validBefore follows maxTimeoutSeconds');

    // The hold counts against the budget: a second payment is refused while the first may still settle.
    const second = await http.request('POST', '/v1/x402/pay', { resource, paymentRequired: await paymentRequired() }).then(
      () => assert.fail('the held authorization did not count against the budget'),
      (e: { status?: number; violations?: { code: string }[] }) => e,
    );
    assert.equal(second.status, 403);
    assert.ok(second.violations?.some((v) => v.code === 'budget_exceeded'), JSON.stringify(second.violations));

    // Before validBefore the reconciler must not release it (it could still settle).
    const early = await tb.admin.request<{ checked: number; settled: number; expired: number }>('POST', '/v1/x402/reconcile', {});
    assert.equal(early.body.expired, 0);

    // Past validBefore + margin on both clocks: wait on the wall clock and mine enough blocks that the
    // finalized block (anvil: 64 behind the latest) follows (chain time is never moved ahead; anvil mines
    // only on demand). The reconciler expires an unused authorization once the nonce is unused at a
    // finalized block past validBefore: no later block can accept it.
    await new Promise((r) => setTimeout(r, Math.max(0, (validBefore + 2) * 1000 - Date.now())));
    let expired = 0;
    const deadline = (validBefore + EXPIRY_BOUND_SECONDS) * 1000;
    while (expired === 0 && Date.now() < deadline) {
      await rpc(tb.anvil.rpcUrl, 'anvil_mine', ['0x41']);
      expired = (await tb.admin.request<{ expired: number }>('POST', '/v1/x402/reconcile', {})).body.expired;
      if (expired === 0) await new Promise((r) => setTimeout(r, 1000));
    }
    assert.equal(expired, 1, 'the reconciler released the expired authorization');

    const payments = await tb.admin.request<{ payments: { id: string; state: string }[] }>('GET', `/v1/x402/payments?agent=${agent.name}`);
    assert.equal(payments.body.payments.find((p) => p.id === first.body.paymentId)?.state, 'expired');

    // The budget is free again.
    const third = await http.request<PayAnswer>('POST', '/v1/x402/pay', { resource, paymentRequired: await paymentRequired() });
    assert.equal(third.body.decision, 'allow');
    assert.equal(await tb.balanceOf(agent.address), 1_000_000n, 'nothing ever moved on chain');

    const audit = await tb.admin.request<{ entries: { type: string }[] }>('GET', `/v1/audit?type=x402.expired`);
    assert.ok(audit.body.entries.length >= 1, 'the release is in the audit log');
  });
});
