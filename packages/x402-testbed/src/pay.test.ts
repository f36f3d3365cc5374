// An agent pays for HTTP resources with the official x402 client (@x402/fetch) and Airlock as its signer, on a
// real local chain with the official facilitator and a paid API built on @x402/express. Every claim about
// money is checked on chain.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Address } from 'viem';
import { AirlockApprovalRequiredError, AirlockPolicyError, fetchWithAirlock } from '@airlock/sdk';
import { x402Policy } from './policy.ts';
import { startTestbed, type Testbed } from './testbed.ts';

const API_OWNER = '0x1111111111111111111111111111111111111111' as Address;
const STRANGER = '0x2222222222222222222222222222222222222222' as Address;
const PRICE = 10_000n; // 0.01 USDC

describe('x402 v2: paying through Airlock on a local chain', () => {
  let tb: Testbed;

  before(async () => {
    tb = await startTestbed({
      routes: {
        '/data/quote': { price: PRICE, payTo: API_OWNER },
        '/data/history': { price: PRICE, payTo: API_OWNER },
        '/pricey/report': { price: 3_000_000n, payTo: API_OWNER },
        '/injected/pay-me': { price: PRICE, payTo: STRANGER },
        '/other/quote': { price: PRICE, payTo: API_OWNER },
      },
    });
  });
  after(async () => tb?.close());

  const policy = (over: Partial<Parameters<typeof x402Policy>[0]> = {}) =>
    x402Policy({ chain: tb.caip2, asset: tb.asset, payees: [API_OWNER], resources: [`${tb.api.url}/data/*`, `${tb.api.url}/pricey/*`, `${tb.api.url}/injected/*`], perCall: 1_000_000n, daily: 100_000n, ...over });

  test('the agent pays and gets the resource; the token moves on chain from the agent to payTo', async () => {
    const agent = await tb.provisionAgent({ policy: policy(), funds: 1_000_000n });
    const ownerBefore = await tb.balanceOf(API_OWNER);
    const pay = fetchWithAirlock(fetch, { url: tb.airlock.url, token: agent.token });

    const res = await pay(`${tb.api.url}/data/quote`);
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { resource: string }).resource, '/data/quote');
    assert.ok(res.headers.get('payment-response'), 'the server reports its settlement');

    assert.equal(await tb.balanceOf(agent.address), 1_000_000n - PRICE);
    assert.equal(await tb.balanceOf(API_OWNER), ownerBefore + PRICE);
    const used = await tb.settledAuthorizations(agent.address);
    assert.equal(used.length, 1, 'exactly one authorization used on chain');

    // The SDK reported the settlement; the reconciler confirms it on chain.
    const list = async () => (await tb.admin.request<{ payments: { state: string; nonce: string; reportedTx?: string; settlementTx?: string }[] }>('GET', `/v1/x402/payments?agent=${agent.name}`)).body.payments;
    assert.equal((await list())[0]!.reportedTx, used[0]!.transactionHash, 'the reported PAYMENT-RESPONSE names the settlement transaction');
    assert.ok((await tb.admin.request<{ settled: number }>('POST', '/v1/x402/reconcile', {})).body.settled >= 1);
    const [payment] = await list();
    assert.equal(payment!.state, 'settled');
    assert.equal(payment!.nonce, used[0]!.nonce);
  });

  test('over budget: Airlock denies with the named rule and nothing is paid', async () => {
    const agent = await tb.provisionAgent({ policy: policy({ daily: PRICE }), funds: 1_000_000n });
    const pay = fetchWithAirlock(fetch, { url: tb.airlock.url, token: agent.token });
    assert.equal((await pay(`${tb.api.url}/data/quote`)).status, 200);
    const ownerBefore = await tb.balanceOf(API_OWNER);

    const err = await pay(`${tb.api.url}/data/history`).then(
      () => assert.fail('a payment over budget went through'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof AirlockPolicyError, `expected AirlockPolicyError, got ${String(err)}`);
    assert.ok(err.violations.some((v) => v.rule === 'agent/daily-budget' && v.code === 'budget_exceeded'), JSON.stringify(err.violations));
    assert.equal(await tb.balanceOf(agent.address), 1_000_000n - PRICE, 'the agent paid once, not twice');
    assert.equal(await tb.balanceOf(API_OWNER), ownerBefore);
    assert.equal((await tb.settledAuthorizations(agent.address)).length, 1);
  });

  test('a payTo outside the allowlist (a prompt-injected payee) is refused and nothing moves', async () => {
    const agent = await tb.provisionAgent({ policy: policy(), funds: 1_000_000n });
    const pay = fetchWithAirlock(fetch, { url: tb.airlock.url, token: agent.token });
    const err = await pay(`${tb.api.url}/injected/pay-me`).then(
      () => assert.fail('paid an unknown address'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof AirlockPolicyError);
    assert.ok(err.violations.some((v) => v.rule === 'agent/payees' && v.code === 'destination_not_allowed'), JSON.stringify(err.violations));
    assert.equal(await tb.balanceOf(STRANGER), 0n);
    assert.equal(await tb.balanceOf(agent.address), 1_000_000n);
  });

  test('a price above the per-request maximum is refused by max_amount', async () => {
    const agent = await tb.provisionAgent({ policy: policy({ daily: 10_000_000n }), funds: 10_000_000n });
    const pay = fetchWithAirlock(fetch, { url: tb.airlock.url, token: agent.token });
    const err = await pay(`${tb.api.url}/pricey/report`).then(
      () => assert.fail('paid above the maximum price'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof AirlockPolicyError);
    assert.ok(err.violations.some((v) => v.rule === 'agent/max-price' && v.code === 'amount_exceeds_max'), JSON.stringify(err.violations));
    assert.equal(await tb.balanceOf(agent.address), 10_000_000n);
  });

  test('a resource outside the allowed patterns is refused even though payTo and price are fine', async () => {
    const agent = await tb.provisionAgent({ policy: policy(), funds: 1_000_000n });
    const pay = fetchWithAirlock(fetch, { url: tb.airlock.url, token: agent.token });
    const err = await pay(`${tb.api.url}/other/quote`).then(
      () => assert.fail('paid for a resource outside the allowed patterns'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof AirlockPolicyError, `expected AirlockPolicyError, got ${String(err)}`);
    assert.ok(err.violations.some((v) => v.rule === 'agent/pay-known-apis' && v.code === 'resource_not_allowed'), JSON.stringify(err.violations));
    assert.equal(await tb.balanceOf(agent.address), 1_000_000n);
  });

  test('a replayed payment header is rejected: the authorization settles once', async () => {
    const agent = await tb.provisionAgent({ policy: policy(), funds: 1_000_000n });
    let paymentHeader: string | undefined;
    const recording: typeof fetch = async (input, init) => {
      const request = new Request(input, init);
      paymentHeader ??= request.headers.get('payment-signature') ?? undefined;
      return fetch(request);
    };
    const pay = fetchWithAirlock(recording, { url: tb.airlock.url, token: agent.token });
    assert.equal((await pay(`${tb.api.url}/data/quote`)).status, 200);
    assert.ok(paymentHeader, 'the client sent PAYMENT-SIGNATURE');
    const ownerBefore = await tb.balanceOf(API_OWNER);

    // An attacker (or a buggy retry) sends the very same header again.
    const replay = await fetch(`${tb.api.url}/data/quote`, { headers: { 'payment-signature': paymentHeader } });
    assert.equal(replay.status, 402, 'the resource server refuses the replay');
    assert.equal(await tb.balanceOf(API_OWNER), ownerBefore, 'no second transfer');
    assert.equal((await tb.settledAuthorizations(agent.address)).length, 1);
    const last = tb.facilitator.events.at(-1)!;
    assert.equal(last.kind, 'verify');
    assert.equal((last.result as { isValid: boolean }).isValid, false);
    assert.match(String((last.result as { invalidReason?: string }).invalidReason), /nonce|used/i);
  });

  test('a runaway loop trips the loop guard: payments stop and the audit log raises an alert', async () => {
    const agent = await tb.provisionAgent({ policy: policy({ loopGuard: 3 }), funds: 1_000_000n });
    const pay = fetchWithAirlock(fetch, { url: tb.airlock.url, token: agent.token });
    for (let i = 0; i < 3; i++) assert.equal((await pay(`${tb.api.url}/data/history`)).status, 200);
    const err = await pay(`${tb.api.url}/data/history`).then(
      () => assert.fail('the loop guard did not trip'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof AirlockPolicyError);
    assert.ok(err.violations.some((v) => v.rule === 'agent/loop-guard' && v.code === 'loop_guard_tripped'), JSON.stringify(err.violations));
    assert.equal((await tb.settledAuthorizations(agent.address)).length, 3);
    const alerts = await tb.admin.request<{ entries: { type: string }[] }>('GET', `/v1/audit?agent=${agent.name}&type=alert.loop_guard`);
    assert.ok(alerts.body.entries.length >= 1, 'alert.loop_guard in the audit log');
    // Another resource is not part of the loop.
    assert.equal((await pay(`${tb.api.url}/data/quote`)).status, 200);
  });

  test('above the approval threshold the payment waits for a human, and pays once approved', async () => {
    const agent = await tb.provisionAgent({ policy: policy({ perCall: 5_000_000n, daily: 10_000_000n, approvalAbove: 1_000_000n }), funds: 5_000_000n });
    const impatient = fetchWithAirlock(fetch, { url: tb.airlock.url, token: agent.token });
    const pending = await impatient(`${tb.api.url}/pricey/report`).then(
      () => assert.fail('paid without approval'),
      (e: unknown) => e,
    );
    assert.ok(pending instanceof AirlockApprovalRequiredError, `expected AirlockApprovalRequiredError, got ${String(pending)}`);
    assert.equal(await tb.balanceOf(agent.address), 5_000_000n, 'nothing paid while waiting');
    await tb.admin.request('POST', `/v1/approvals/${pending.approvalId}/deny`, { reason: 'not this one' });

    const patient = fetchWithAirlock(fetch, { url: tb.airlock.url, token: agent.token, approvalWaitMs: 15_000 });
    const paying = patient(`${tb.api.url}/pricey/report`);
    let approvalId: string | undefined;
    for (let i = 0; i < 100 && !approvalId; i++) {
      const list = await tb.admin.request<{ approvals: { id: string; agentId: string }[] }>('GET', `/v1/approvals?agent=${agent.name}`);
      approvalId = list.body.approvals[0]?.id;
      if (!approvalId) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(approvalId, 'an approval request is pending');
    await tb.admin.request('POST', `/v1/approvals/${approvalId}/approve`, {});
    assert.equal((await paying).status, 200);
    assert.equal(await tb.balanceOf(agent.address), 5_000_000n - 3_000_000n);
  });
});
