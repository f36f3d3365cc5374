// A node whose clock runs ahead (or whose finality lags past an hour, or that contradicts itself) made every held
// x402 payment write its own alert.reconciler entry every round: 500 holds at the default 30 s were about 1.4
// million entries a day, each a webhook delivery queued ahead of the operator's next breaker alert (found by
// review). A payment is now alerted at most once an hour, whatever the reason (the RPC picks it: flipping it each
// round, or answering "wait" every other round, re-alerted every payment); its hold is kept every round all the same.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodePaymentRequiredHeader } from '@x402/core/http';
import type { ChainReader } from '@airlock/core';
import { ALICE, BASE, USDC, USDC_ASSET, provisionAgent, startHarness, type Harness } from './testing/harness.ts';

const API = 'https://api.example.com';
const HELD = 20;

describe('reconciler alerts under a lying or lagging RPC', () => {
  let h: Harness;
  let skew = 0;
  let pinnedAhead = -60;
  const wall = () => Math.floor(h.clock!.now() / 1000);
  const chain: ChainReader = {
    supports: (n) => n === BASE,
    latestBlockTimestamp: async () => wall() + skew,
    pinnedBlock: async () => ({ tag: 'finalized', number: 10n, timestamp: wall() + skew + pinnedAhead }),
    authorizationState: async () => false,
    findAuthorizationUse: async () => undefined,
  };
  before(async () => {
    h = await startHarness({ manualClock: true, chainReader: chain });
  });
  after(async () => h.close());

  test(`${HELD} holds, an RPC 10 minutes ahead: one alert per payment an hour, whatever reasons it flips through; every hold kept`, async () => {
    const { agent, token } = await provisionAgent(h, {
      ttl: '7d',
      policy: { version: 1, rules: [
        { name: 'paid', type: 'allow', match: { chains: [BASE], kinds: ['eip3009.transfer_with_authorization'], to: [ALICE], resources: [`${API}/**`] } },
        { name: 'daily', type: 'budget', asset: USDC_ASSET, max: String(HELD), window: '24h' },
        { name: 'short', type: 'validity_window', max_seconds: 60 },
      ] },
    });
    const accepts = [{ scheme: 'exact', network: BASE, amount: '1', asset: USDC, payTo: ALICE, maxTimeoutSeconds: 60, extra: { name: 'USD Coin', version: '2' } }];
    const paymentRequired = encodePaymentRequiredHeader({ x402Version: 2, error: 'Payment required', resource: { url: `${API}/d` }, accepts } as never);
    const pay = () => h.call('POST', '/v1/x402/pay', { token, body: { resource: `${API}/d`, paymentRequired } });
    for (let i = 0; i < HELD; i++) assert.equal((await pay()).status, 200);
    const round = async () => {
      h.clock!.advance(30_000);
      const r = (await h.admin('POST', '/v1/x402/reconcile')).body;
      return [r.expired, r.disagreements, r.alerts];
    };
    const entries = async () => (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=alert.reconciler&limit=1000`)).body.entries as any[];

    skew = 600; // past every validBefore by the node's clock, the nonces unused: a lie the wall clock refutes
    assert.deepEqual(await round(), [0, HELD, HELD], 'the first round alerts each payment');
    assert.deepEqual(await round(), [0, HELD, 0], 'the same reason again: kept, not alerted again');
    assert.deepEqual(await round(), [0, HELD, 0]);
    const first = await entries();
    assert.equal(first.length, HELD);
    assert.ok(first.every((e) => e.data.reason === 'chain_clock_skew' && e.data.latestTimestamp - e.data.wallClock >= 600), 'each carries its figures');
    assert.equal(new Set(first.map((e) => e.data.paymentId)).size, HELD);

    // The node flips its reason each round (its pinned block across its latest), then answers "wait" between lies
    // (its clock back in line, the payments not yet past validBefore by it): kept, counted, not alerted again.
    for (const [ahead, lies] of [[60, 600], [-60, 600], [60, 600], [-60, 0], [60, 600], [-60, 0], [-60, 600]] as const) {
      pinnedAhead = ahead;
      skew = lies;
      const [expired, , alerts] = await round();
      assert.deepEqual([expired, alerts], [0, 0], `pinned ${ahead}, skew ${lies}`);
    }
    skew = 600;
    pinnedAhead = 60;
    h.clock!.advance(3_600_000); // an hour on, still disagreeing: a reminder, with the reason now given
    assert.deepEqual(await round(), [0, HELD, HELD]);
    const reasons = (await entries()).map((e) => e.data.reason);
    assert.deepEqual([reasons.filter((r) => r === 'chain_clock_skew').length, reasons.filter((r) => r === 'chain_inconsistent').length], [HELD, HELD]);

    // Not one hold was released: the budget is still spent.
    const payments = (await h.admin('GET', `/v1/x402/payments?agent=${agent.name}`)).body.payments as any[];
    assert.deepEqual([...new Set(payments.map((p) => p.state))], ['reserved']);
    const over = await pay();
    assert.equal(over.status, 403);
    assert.ok(over.body.error.violations.some((v: any) => v.code === 'budget_exceeded'), JSON.stringify(over.body));
  });
});
