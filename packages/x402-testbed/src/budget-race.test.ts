// 50 paid requests at once against a budget that allows 20: Airlock reserves each authorization's spend in
// the same transaction that signs it, so exactly 20 are signed and exactly 20 settle on chain.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Address } from 'viem';
import { AirlockPolicyError, fetchWithAirlock } from '@airlock/sdk';
import { x402Policy } from './policy.ts';
import { startTestbed, type Testbed } from './testbed.ts';

const API_OWNER = '0x3333333333333333333333333333333333333333' as Address;
const PRICE = 10_000n;

describe('x402 budget under concurrency', () => {
  let tb: Testbed;
  before(async () => {
    tb = await startTestbed({ routes: { '/data/tick': { price: PRICE, payTo: API_OWNER } } });
  });
  after(async () => tb?.close());

  test('50 parallel paid requests, budget for 20: exactly 20 payments settle on chain', async () => {
    const policy = x402Policy({ chain: tb.caip2, asset: tb.asset, payees: [API_OWNER], perCall: PRICE, daily: PRICE * 20n });
    const agent = await tb.provisionAgent({ policy, funds: PRICE * 100n });
    const pay = fetchWithAirlock(fetch, { url: tb.airlock.url, token: agent.token });

    const outcomes = await Promise.allSettled(Array.from({ length: 50 }, () => pay(`${tb.api.url}/data/tick`)));
    const paid = outcomes.filter((o) => o.status === 'fulfilled' && o.value.status === 200).length;
    const refused = outcomes.filter((o) => o.status === 'rejected' && o.reason instanceof AirlockPolicyError && o.reason.violations.some((v) => v.code === 'budget_exceeded')).length;
    const other = outcomes.filter((o) => !(o.status === 'fulfilled' && o.value.status === 200) && !(o.status === 'rejected' && o.reason instanceof AirlockPolicyError));
    assert.deepEqual(other.map((o) => (o.status === 'rejected' ? String(o.reason) : o.value.status)), [], 'every request either paid or was refused by policy');
    assert.equal(paid, 20);
    assert.equal(refused, 30);

    assert.equal((await tb.settledAuthorizations(agent.address)).length, 20, '20 AuthorizationUsed events on chain');
    assert.equal(await tb.balanceOf(API_OWNER), PRICE * 20n);
    assert.equal(await tb.balanceOf(agent.address), PRICE * 80n);
    assert.equal(tb.api.served.get('/data/tick'), 20);
  });
});
