// The receipt a Lightning payment's success hands the agent is one it can fetch: for a payment an approval granted,
// the receipt of its own held request (the approval.granted entry the payment is recorded under is an operator's,
// which names the approvers and which an agent gets no receipt of). Found by review: it answered the agent 404.
// Through HTTP with the Lightning simulator as the backend.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BITCOIN_CHAINS, bitcoinAsset } from '@airlock/core';
import { LightningNetwork, SimulatedBackend } from '../../../testing/lightning-network.ts';
import { provisionAgent, startHarness } from './testing/harness.ts';

const BTC = bitcoinAsset(BITCOIN_CHAINS.regtest);
const LIGHTNING = { backend: 'lnd' as const, network: 'regtest' as const, payTimeoutSeconds: 2, notFoundGraceSeconds: 60, defaultFeePercent: 1 };

test('an approved Lightning payment: the receipt in the agent\'s answer is its held request\'s, and the agent can fetch it', async () => {
  const ln = new LightningNetwork();
  ln.feeBaseMsat = 10n;
  const backend = new SimulatedBackend(ln);
  const shop = ln.payee();
  const h = await startHarness({ manualClock: true, lightningBackend: backend, config: { lightning: LIGHTNING } });
  try {
    h.clock!.set(Date.now());
    const policy = {
      version: 1,
      rules: [
        { type: 'allow', name: 'pay', match: { actions: ['lightning.pay'] } },
        { type: 'lightning', name: 'fees', max_routing_fee_percent: 10, min_expiry_remaining: '30s', max_expiry: '2h' },
        { type: 'approval_tier', name: 'big-by-hand', asset: BTC, above: '60000' },
      ],
    };
    const { token } = await provisionAgent(h, { policy, actions: ['lightning.pay'] });
    // A direct payment first: its receipt is fetchable (control).
    const small = await h.call('POST', '/v1/lightning/pay', { token, body: { invoice: shop.invoice({ amountMsat: 20_000n }).invoice } });
    assert.equal(small.status, 200, JSON.stringify(small.body));
    await h.airlock.audit.checkpoint();
    const smallReceipt = await h.call('GET', `/v1/audit/receipts/${small.body.receipt.auditSeq}`, { token });
    assert.equal(smallReceipt.status, 200, 'a direct payment\'s receipt is the agent\'s');

    const res = await h.call('POST', '/v1/lightning/pay', { token, body: { invoice: shop.invoice({ amountMsat: 100_000n }).invoice } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const approved = await h.admin('POST', `/v1/approvals/${res.body.approvalId}/approve`);
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    const mine = await h.call('GET', `/v1/lightning/payments/${approved.body.result.paymentId}`, { token });
    assert.equal(mine.status, 200, JSON.stringify(mine.body));
    assert.equal(mine.body.status, 'succeeded');
    const seq = mine.body.receipt.auditSeq;
    const entry = (await h.admin('GET', `/v1/audit?limit=1000`)).body.entries.find((e: any) => e.seq === seq);
    assert.deepEqual([entry?.type, entry?.actor, entry?.decision, entry?.seq], ['sign.request', 'agent', 'require_approval', res.body.auditSeq], 'the receipt is of the request the agent made');
    await h.airlock.audit.checkpoint();
    const receipt = await h.call('GET', `/v1/audit/receipts/${seq}`, { token });
    assert.equal(receipt.status, 200, `the agent cannot fetch the receipt of its own paid payment (entry ${seq} ${entry?.type}/${entry?.actor}): ${JSON.stringify(receipt.body)}`);
  } finally {
    await h.close();
  }
});
