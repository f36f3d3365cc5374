// x402 v1: named networks only, so the chain runs with Base Sepolia's chain id (84532) and the API advertises
// `base-sepolia`; the 402 carries its requirements in the JSON body and the payment travels in X-PAYMENT.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Address } from 'viem';
import { AirlockPolicyError, fetchWithAirlock } from '@airlock/sdk';
import { fromBase64Json } from './json.ts';
import { x402Policy } from './policy.ts';
import { startTestbed, type Testbed } from './testbed.ts';

const API_OWNER = '0x4444444444444444444444444444444444444444' as Address;
const STRANGER = '0x5555555555555555555555555555555555555555' as Address;
const PRICE = 25_000n;

describe('x402 v1 (base-sepolia on anvil --chain-id 84532)', () => {
  let tb: Testbed;
  before(async () => {
    tb = await startTestbed({ version: 'v1', routes: { '/v1/data': { price: PRICE, payTo: API_OWNER }, '/v1/elsewhere': { price: PRICE, payTo: STRANGER } } });
  });
  after(async () => tb?.close());

  test('the 402 is a v1 body and the paid call settles on chain', async () => {
    const unpaid = await fetch(`${tb.api.url}/v1/data`);
    assert.equal(unpaid.status, 402);
    const body = (await unpaid.json()) as { x402Version: number; accepts: { network: string; maxAmountRequired: string }[] };
    assert.equal(body.x402Version, 1);
    assert.equal(body.accepts[0]!.network, 'base-sepolia');

    const agent = await tb.provisionAgent({ policy: x402Policy({ chain: tb.caip2, asset: tb.asset, payees: [API_OWNER], resources: [`${tb.api.url}/v1/*`], perCall: PRICE, daily: PRICE * 10n }), funds: 1_000_000n });
    const sent: string[] = [];
    const recording: typeof fetch = async (input, init) => {
      const request = new Request(input, init);
      const header = request.headers.get('x-payment');
      if (header) sent.push(header);
      return fetch(request);
    };
    const pay = fetchWithAirlock(recording, { url: tb.airlock.url, token: agent.token });
    const res = await pay(`${tb.api.url}/v1/data`);
    assert.equal(res.status, 200);
    assert.ok(res.headers.get('x-payment-response'));
    assert.equal(sent.length, 1, 'paid with X-PAYMENT');
    assert.equal(fromBase64Json<{ x402Version: number; network: string }>(sent[0]!).x402Version, 1);
    assert.equal(fromBase64Json<{ network: string }>(sent[0]!).network, 'base-sepolia');
    assert.equal(await tb.balanceOf(agent.address), 1_000_000n - PRICE);
    assert.equal(await tb.balanceOf(API_OWNER), PRICE);
    assert.equal((await tb.settledAuthorizations(agent.address)).length, 1);
  });

  test('v1 requirements get the same policy: an unknown payTo is refused', async () => {
    const agent = await tb.provisionAgent({ policy: x402Policy({ chain: tb.caip2, asset: tb.asset, payees: [API_OWNER], resources: [`${tb.api.url}/v1/*`], perCall: PRICE, daily: PRICE * 10n }), funds: 1_000_000n });
    const pay = fetchWithAirlock(fetch, { url: tb.airlock.url, token: agent.token });
    const err = await pay(`${tb.api.url}/v1/elsewhere`).then(
      () => assert.fail('paid an unknown payTo'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof AirlockPolicyError);
    assert.ok(err.violations.some((v) => v.rule === 'agent/payees'), JSON.stringify(err.violations));
    assert.equal(await tb.balanceOf(STRANGER), 0n);
  });
});
