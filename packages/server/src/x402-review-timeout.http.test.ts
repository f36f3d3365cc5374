// A server's maxTimeoutSeconds is a maximum. With no `validity_window` in the policy, a hostile server asking for
// 2^53-1 seconds got an authorization that never expires (its hold, never released, held the budget for good)
// and whose validBefore, past 2^53 once added to now, was signed as another number than the payment record and
// the audit kept (found by review). Airlock now builds at most a day where the policy names no window.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodePaymentSignatureHeader, encodePaymentRequiredHeader } from '@x402/core/http';
import { verifyTypedData, type Hex } from 'viem';
import { ALICE, BASE, USDC, USDC_ASSET, provisionAgent, startHarness, type Harness } from './testing/harness.ts';
import { fakeChain } from './testing/fake-chain.ts';

const API = 'https://api.example.com';
const DAY = 86_400;
const requirement = (maxTimeoutSeconds: number) => ({ scheme: 'exact', network: BASE, amount: '1000', asset: USDC, payTo: ALICE, maxTimeoutSeconds, extra: { name: 'USD Coin', version: '2' } });
const header = (maxTimeoutSeconds: number) => encodePaymentRequiredHeader({ x402Version: 2, error: 'Payment required', resource: { url: `${API}/d`, description: 'd', mimeType: 'application/json' }, accepts: [requirement(maxTimeoutSeconds)] } as never);
const policy = (window?: number) => ({
  version: 1,
  rules: [
    { name: 'paid-apis', type: 'allow', match: { chains: [BASE], kinds: ['eip3009.transfer_with_authorization'], to: [ALICE], resources: [`${API}/**`] } },
    { name: 'daily', type: 'budget', asset: USDC_ASSET, max: '5000', window: '24h' },
    ...(window !== undefined ? [{ name: 'window', type: 'validity_window', max_seconds: window }] : []),
  ],
});

describe('x402: how long an authorization Airlock builds lives', () => {
  let h: Harness;
  const chain = fakeChain();
  before(async () => {
    h = await startHarness({ manualClock: true, chainReader: chain });
    chain.now = () => h.clock!.now();
  });
  after(async () => h.close());

  const pay = async (window: number | undefined, maxTimeoutSeconds: number) => {
    const { agent, token } = await provisionAgent(h, { policy: policy(window), ttl: '7d' });
    const res = await h.call('POST', '/v1/x402/pay', { token, body: { resource: `${API}/d`, paymentRequired: header(maxTimeoutSeconds) } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const now = Math.floor(h.clock!.now() / 1000);
    const signed = decodePaymentSignatureHeader(res.body.header.value) as any;
    const [record] = (await h.admin('GET', `/v1/x402/payments?agent=${agent.name}`)).body.payments as any[];
    return { agent, now, signed: signed.payload.authorization, record, res };
  };

  test('2^53-1 seconds asked, no validity_window: a day, and the record, the audit and the signature agree', async () => {
    const { agent, now, signed, record, res } = await pay(undefined, Number.MAX_SAFE_INTEGER);
    assert.equal(Number(signed.validBefore), now + DAY);
    assert.equal(String(record.validBefore), signed.validBefore);
    const entries = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=sign.request&limit=5`)).body.entries as any[];
    assert.deepEqual(entries.map((e) => String(e.data.intent.validity?.validBefore)), [signed.validBefore]);
    // An independent verifier reads the signature over exactly that validBefore.
    const verified = await verifyTypedData({
      address: agent.address as Hex,
      domain: { name: 'USD Coin', version: '2', chainId: 8453, verifyingContract: USDC as Hex },
      types: { TransferWithAuthorization: [{ name: 'from', type: 'address' }, { name: 'to', type: 'address' }, { name: 'value', type: 'uint256' }, { name: 'validAfter', type: 'uint256' }, { name: 'validBefore', type: 'uint256' }, { name: 'nonce', type: 'bytes32' }] },
      primaryType: 'TransferWithAuthorization',
      message: { from: signed.from, to: signed.to, value: BigInt(signed.value), validAfter: BigInt(signed.validAfter), validBefore: BigInt(record.validBefore), nonce: signed.nonce },
      signature: (decodePaymentSignatureHeader(res.body.header.value) as any).payload.signature,
    });
    assert.ok(verified, 'the signature covers the recorded validBefore');
  });

  test('a shorter ask is kept as asked; a validity_window below a day still bounds it', async () => {
    assert.equal(Number((await pay(undefined, 300)).signed.validBefore) - Math.floor(h.clock!.now() / 1000), 300);
    const windowed = await pay(600, Number.MAX_SAFE_INTEGER);
    assert.equal(Number(windowed.signed.validBefore), windowed.now + 600);
  });
});
