// An L402 payment held for approval whose macaroon expires while it waits (found by review): `/v1/l402/pay` refuses
// an expired challenge up front (`l402_token_expired`), but the grant only checked the payment hash, so a human who
// approved after the macaroon's *_valid_until (the invoice still valid) paid for a credential the API refuses: the
// agent charged amount and fee, and made to buy a fresh challenge. The grant now closes such an approval as denied,
// releases its hold and pays nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BITCOIN_CHAINS, bitcoinAsset } from '@airlock/core';
import { LightningNetwork, SimulatedBackend } from '../../../testing/lightning-network.ts';
import { startL402Server } from '../../../testing/l402-server/server.ts';
import { provisionAgent, startHarness } from './testing/harness.ts';

const BTC = bitcoinAsset(BITCOIN_CHAINS.regtest);
const LIGHTNING = { backend: 'lnd' as const, network: 'regtest' as const, payTimeoutSeconds: 2, notFoundGraceSeconds: 60, defaultFeePercent: 1 };

test('an L402 payment approved after its macaroon expired is closed as denied: nothing paid, nothing charged', async () => {
  const ln = new LightningNetwork();
  ln.feeBaseMsat = 0n;
  const h = await startHarness({ manualClock: true, lightningBackend: new SimulatedBackend(ln), config: { lightning: LIGHTNING } });
  const clock = h.clock!;
  // The API's macaroons are valid for 60 s (Aperture's `timeout`); its invoices for an hour.
  const api = await startL402Server({ network: ln, now: () => clock.now(), caveatLifetimeSeconds: 60, routes: { '/report': { priceSat: 100n, service: 'report' } } });
  try {
    const { agent, token } = await provisionAgent(h, {
      policy: { version: 1, rules: [
        { type: 'allow', name: 'api', match: { actions: ['lightning.pay'] } },
        { type: 'approval_tier', name: 'by-hand', asset: BTC, above: '50000' },
      ] },
      actions: ['lightning.pay'],
    });
    const url = `${api.url}/report`;
    const challenge = (await fetch(url)).headers.get('www-authenticate')!;
    const held = await h.call('POST', '/v1/l402/pay', { token, body: { url, challenge } });
    assert.equal(held.status, 202, JSON.stringify(held.body));

    // Two minutes later (the macaroon lapsed after one) a human approves.
    clock.set(clock.now() + 120_000);
    const approved = await h.admin('POST', `/v1/approvals/${held.body.approvalId}/approve`);
    assert.equal(approved.status, 400, JSON.stringify(approved.body));
    assert.equal(approved.body.error.code, 'l402_token_expired');
    const hash = JSON.stringify(held.body).match(/"paymentHash":"([0-9a-f]{64})"/)?.[1];
    assert.ok(hash, JSON.stringify(held.body));
    assert.equal(ln.isPaid(hash), false, 'nothing paid');

    const approval = await h.admin('GET', `/v1/approvals/${held.body.approvalId}`);
    assert.deepEqual([approval.body.state, approval.body.decidedBy], ['denied', 'system'], JSON.stringify(approval.body));
    // The hold is released: nothing charged to the agent's series.
    const totals = await h.airlock.store.transaction((tx) => tx.windowTotals([{ series: `agent:${agent.id}`, asset: BTC, sinceMs: 0 }]));
    assert.equal(totals[0]!.amount, 0n);
    const denied = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=approval.denied`)).body.entries;
    assert.deepEqual(denied.map((e: any) => [e.actor, e.data.reason]), [['system', 'l402_token_expired']], 'the closing is in the log with its reason');
    assert.equal(ln.attempts.length, 0, 'the backend was never asked');

    // The agent asks again with a fresh challenge: held again, and approved in time it is paid.
    const renewed = (await fetch(url)).headers.get('www-authenticate')!;
    const again = await h.call('POST', '/v1/l402/pay', { token, body: { url, challenge: renewed } });
    assert.equal(again.status, 202, JSON.stringify(again.body));
    const paid = await h.admin('POST', `/v1/approvals/${again.body.approvalId}/approve`);
    assert.equal(paid.status, 200, JSON.stringify(paid.body));
    assert.equal(paid.body.result.status, 'succeeded');
  } finally {
    await h.close();
    await api.close();
  }
});
