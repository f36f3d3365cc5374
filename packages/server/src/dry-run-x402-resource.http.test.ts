// A dry-run takes the x402 context the sign takes. Found by review (LOW): POST /v1/dry-run dropped `x402` (its schema
// kept only action and payload, the route passed no context), so the dry-run of an x402 payment could not name its
// resource: a payment the sign granted by its resource was a `resource_not_allowed` denial in the dry-run, and a
// per-origin budget the sign refused went unseen. Now both dry-run routes carry `x402: {resource}` and answer as the
// sign does; on a request that is no x402 payment it is refused, as on the sign. Over HTTP, on SQLite and PostgreSQL.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ALICE, BASE, USDC, USDC_ASSET, provisionAgent, startHarness, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';

const API = 'https://api.example.com';

/** Pays Alice for the API's data only: 1,500 units a day per origin. */
const POLICY = {
  version: 1,
  rules: [
    { name: 'paid-apis', type: 'allow', match: { chains: [BASE], kinds: ['eip3009.transfer_with_authorization'], to: [ALICE], assets: [USDC_ASSET], resources: [`${API}/data/**`] } },
    { name: 'max-price', type: 'max_amount', asset: USDC_ASSET, max: '5000' },
    { name: 'per-api', type: 'budget', asset: USDC_ASSET, max: '1500', window: '24h', per_origin: true },
    { name: 'daily', type: 'budget', asset: USDC_ASSET, max: '100000', window: '24h' },
    { name: 'short-lived', type: 'validity_window', max_seconds: 120 },
  ],
};

/** An EIP-3009 authorization of 1,000 units from `from` to Alice (an x402 payment). */
function payment(from: string, nonceByte: string) {
  return {
    domain: { name: 'USD Coin', version: '2', chainId: 8453, verifyingContract: USDC },
    types: { TransferWithAuthorization: [{ name: 'from', type: 'address' }, { name: 'to', type: 'address' }, { name: 'value', type: 'uint256' }, { name: 'validAfter', type: 'uint256' }, { name: 'validBefore', type: 'uint256' }, { name: 'nonce', type: 'bytes32' }] },
    primaryType: 'TransferWithAuthorization',
    message: { from, to: ALICE, value: '1000', validAfter: '0', validBefore: String(Math.floor(Date.now() / 1000) + 60), nonce: `0x${nonceByte.repeat(32)}` },
  };
}

const codes = (violations: any[] | undefined) => (violations ?? []).map((v: any) => `${v.rule} ${v.code}`).sort();

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`dry-run: x402.resource judged as on the sign (${store})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ store });
    });
    after(async () => h.close());

    test('the agent\'s and the operator\'s dry-runs of an x402 payment answer as its sign: granted by resource, then refused by the per-origin budget', async () => {
      const { agent, token } = await provisionAgent(h, { policy: POLICY });
      const x402 = { resource: `${API}/data/x?q=1` };
      const dryRuns = async (nonceByte: string) => {
        const body = { action: 'evm.typed_data', payload: { typedData: payment(agent.address, nonceByte) }, x402 };
        const own = await h.call('POST', '/v1/dry-run', { token, body });
        const operator = await h.admin('POST', '/v1/policies/dry-run', { ...body, agent: agent.name });
        assert.equal(own.status, 200, JSON.stringify(own.body));
        assert.equal(operator.status, 200, JSON.stringify(operator.body));
        const judged = (d: any) => [d.decision, d.allowedBy, codes(d.violations)];
        assert.deepEqual(judged(operator.body.decision), judged(own.body.decision));
        assert.equal(own.body.intent.payment.origin, API, 'the resource is in the judged intent');
        return own.body.decision;
      };

      const first = await dryRuns('01');
      assert.deepEqual([first.decision, first.allowedBy], ['allow', ['agent/paid-apis']]);
      const signed = await h.call('POST', '/v1/sign/typed-data', { token, body: { typedData: payment(agent.address, '01'), x402 } });
      assert.equal(signed.status, 200, JSON.stringify(signed.body));

      const second = await dryRuns('02');
      const refused = await h.call('POST', '/v1/sign/typed-data', { token, body: { typedData: payment(agent.address, '02'), x402 } });
      assert.equal(refused.status, 403);
      assert.equal(second.decision, 'deny');
      assert.deepEqual(codes(second.violations), codes(refused.body.error.violations));
      assert.deepEqual(codes(second.violations), ['agent/per-api budget_exceeded']);
    });

    test('without x402, or with a resource the rule does not list, the dry-run denies as the sign does', async () => {
      const { agent, token } = await provisionAgent(h, { policy: POLICY });
      for (const x402 of [undefined, { resource: `${API}/admin/x` }]) {
        const dry = await h.call('POST', '/v1/dry-run', { token, body: { action: 'evm.typed_data', payload: { typedData: payment(agent.address, '03') }, ...(x402 ? { x402 } : {}) } });
        const sign = await h.call('POST', '/v1/sign/typed-data', { token, body: { typedData: payment(agent.address, '03'), ...(x402 ? { x402 } : {}) } });
        assert.equal(sign.status, 403);
        assert.equal(dry.body.decision.decision, 'deny');
        assert.deepEqual(codes(dry.body.decision.violations), codes(sign.body.error.violations));
      }
    });

    test('x402 on a dry-run that is no x402 payment, or naming no http(s) URL, is refused with invalid_request', async () => {
      const { agent, token } = await provisionAgent(h, { policy: POLICY });
      for (const body of [
        { action: 'evm.transaction', payload: usdcTransfer(ALICE, 1000n, 0), x402: { resource: `${API}/data/x` } },
        // Refused before the invoice is read: a Lightning payment is never an x402 authorization.
        { action: 'lightning.pay', payload: { invoice: 'lnbcrt1', maxFeeMsat: '0' }, x402: { resource: `${API}/data/x` } },
        { action: 'evm.typed_data', payload: { typedData: payment(agent.address, '04') }, x402: { resource: 'ftp://api.example.com/data/x' } },
        { action: 'evm.typed_data', payload: { typedData: payment(agent.address, '04') }, x402: { resource: `${API}/data/x`, price: '1' } },
      ]) {
        const dry = await h.call('POST', '/v1/dry-run', { token, body });
        assert.equal(dry.status, 400, `${body.action}: ${JSON.stringify(dry.body)}`);
        assert.equal(dry.body.error.code, 'invalid_request');
      }
    });
  });
}
