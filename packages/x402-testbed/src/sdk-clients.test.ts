// The SDK's other ways into x402, on the real local chain with the official facilitator and paid API:
// fetchWithAirlock with an x402 client the agent configured itself, the axios counterpart on @x402/axios, and
// the bare signer under the official @x402/fetch wrapper. Money claims are checked on chain.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import axios from 'axios';
import type { Address } from 'viem';
import { wrapFetchWithPayment, x402Client } from '@x402/fetch';
import { AirlockPolicyError, airlockX402Signer, fetchWithAirlock, registerAirlockSchemes, withX402Resource } from '@airlock/sdk';
import { axiosWithAirlock } from '@airlock/sdk/axios';
import { x402Policy } from './policy.ts';
import { startTestbed, type Testbed } from './testbed.ts';

const API_OWNER = '0x1111111111111111111111111111111111111111' as Address;
const STRANGER = '0x2222222222222222222222222222222222222222' as Address;
const PRICE = 10_000n;

describe('x402 through the SDK: own client, axios, bare signer', () => {
  let tb: Testbed;

  before(async () => {
    tb = await startTestbed({
      routes: {
        '/data/quote': { price: PRICE, payTo: API_OWNER },
        '/injected/pay-me': { price: PRICE, payTo: STRANGER },
      },
    });
  });
  after(async () => tb?.close());

  const policy = () => x402Policy({ chain: tb.caip2, asset: tb.asset, payees: [API_OWNER], resources: [`${tb.api.url}/data/*`, `${tb.api.url}/injected/*`], perCall: 1_000_000n, daily: 100_000n });

  /** The payment Airlock recorded for the agent, once the SDK reported the settlement. */
  async function reportedPayments(agent: string) {
    const { body } = await tb.admin.request<{ payments: { reportedTx?: string }[] }>('GET', `/v1/x402/payments?agent=${agent}`);
    return body.payments;
  }

  test('fetchWithAirlock with the agent’s own x402 client: its hooks run, the payment settles and is reported', async () => {
    const agent = await tb.provisionAgent({ policy: policy(), funds: 1_000_000n });
    const signer = await airlockX402Signer({ url: tb.airlock.url, token: agent.token });
    const seen: string[] = [];
    const client = registerAirlockSchemes(new x402Client(), signer).onBeforePaymentCreation(async ({ selectedRequirements }) => {
      seen.push(selectedRequirements.payTo);
    });
    client.setSpendControls(false); // the test token is unknown to the client's default controls
    const pay = fetchWithAirlock(fetch, { url: tb.airlock.url, token: agent.token, client });

    const res = await pay(`${tb.api.url}/data/quote`);
    assert.equal(res.status, 200);
    assert.deepEqual(seen, [API_OWNER], 'the client passed in is the one that paid');
    assert.equal(await tb.balanceOf(agent.address), 1_000_000n - PRICE);
    const [used] = await tb.settledAuthorizations(agent.address);
    assert.equal((await reportedPayments(agent.name))[0]?.reportedTx, used?.transactionHash);
  });

  test('axiosWithAirlock pays with @x402/axios and reports; a refused payee throws AirlockPolicyError and nothing moves', async () => {
    const agent = await tb.provisionAgent({ policy: policy(), funds: 1_000_000n });
    const api = await axiosWithAirlock(axios.create({ baseURL: tb.api.url }), { url: tb.airlock.url, token: agent.token });

    const res = await api.get<{ resource: string }>('/data/quote');
    assert.equal(res.status, 200);
    assert.equal(res.data.resource, '/data/quote');
    assert.equal(await tb.balanceOf(agent.address), 1_000_000n - PRICE);
    const [used] = await tb.settledAuthorizations(agent.address);
    assert.equal((await reportedPayments(agent.name))[0]?.reportedTx, used?.transactionHash);

    const err = await api.get('/injected/pay-me').then(
      () => assert.fail('paid an unknown address'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof AirlockPolicyError, `expected AirlockPolicyError, got ${String(err)}`);
    assert.ok(err.violations.some((v) => v.rule === 'agent/payees' && v.code === 'destination_not_allowed'), JSON.stringify(err.violations));
    assert.equal(await tb.balanceOf(STRANGER), 0n);
    assert.equal(await tb.balanceOf(agent.address), 1_000_000n - PRICE);
  });

  test('the bare signer under @x402/fetch: inside withX402Resource a refusal keeps its type and violations', async () => {
    const agent = await tb.provisionAgent({ policy: policy(), funds: 1_000_000n });
    const signer = await airlockX402Signer({ url: tb.airlock.url, token: agent.token });
    const client = registerAirlockSchemes(new x402Client(), signer);
    client.setSpendControls(false);
    const paidFetch = wrapFetchWithPayment(fetch, client);
    const url = `${tb.api.url}/injected/pay-me`;

    // What the official wrapper alone gives: a plain Error with the message only.
    const wrapped = await paidFetch(url).then(
      () => assert.fail('paid an unknown address'),
      (e: unknown) => e as Error,
    );
    assert.ok(!(wrapped instanceof AirlockPolicyError));
    const err = await withX402Resource(url, () => paidFetch(url)).then(
      () => assert.fail('paid an unknown address'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof AirlockPolicyError, `expected AirlockPolicyError, got ${String(err)}`);
    assert.ok(err.violations.some((v) => v.rule === 'agent/payees' && v.code === 'destination_not_allowed'), JSON.stringify(err.violations));
    assert.equal(await tb.balanceOf(STRANGER), 0n);
  });
});
