// The x402 reconciler against chain answers it must not trust on their own (issue 7, item 5), through the
// real HTTP app on SQLite and PostgreSQL: a lying or lagging RPC can keep a hold, never release one; a
// settlement is charged what actually moved when that is more than what Airlock signed.
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodePaymentRequiredHeader } from '@x402/core/http';
import type { ChainReader } from '@airlock/core';
import { ALICE, BASE, MALLORY, USDC, USDC_ASSET, provisionAgent, startHarness, type Harness, type StoreKind } from './testing/harness.ts';

const API = 'https://api.example.com';
const VALIDITY = 3600;
const MARGIN = 300;

/** A chain double that answers whatever the test scripts: its times are functions of the wall clock. */
interface ScriptedChain extends ChainReader {
  wall: () => number;
  latest: (wall: number) => number;
  pinned: (wall: number) => { number: bigint; timestamp: number };
  usedLatest: Set<string>;
  usedPinned: Set<string>;
  transfers: Map<string, { to: string; value: bigint }>;
  failure: Error | undefined;
  pinnedReads: bigint[];
  reset(): void;
}

function scriptedChain(): ScriptedChain {
  const chain: ScriptedChain = {
    wall: () => Math.floor(Date.now() / 1000),
    latest: (wall: number) => wall,
    pinned: (wall: number) => ({ number: 100n, timestamp: wall - 60 }),
    usedLatest: new Set<string>(),
    usedPinned: new Set<string>(),
    transfers: new Map<string, { to: string; value: bigint }>(),
    failure: undefined,
    pinnedReads: [],
    reset() {
      chain.latest = (wall) => wall;
      chain.pinned = (wall) => ({ number: 100n, timestamp: wall - 60 });
      chain.usedLatest.clear();
      chain.usedPinned.clear();
      chain.transfers.clear();
      chain.failure = undefined;
      chain.pinnedReads.length = 0;
    },
    supports: (network: string) => network === BASE,
    async latestBlockTimestamp() {
      if (chain.failure) throw chain.failure;
      return chain.latest(chain.wall());
    },
    async pinnedBlock() {
      if (chain.failure) throw chain.failure;
      return { tag: 'finalized', ...chain.pinned(chain.wall()) };
    },
    async authorizationState(_network: string, _token: string, _from: string, nonce: string, blockNumber?: bigint) {
      if (chain.failure) throw chain.failure;
      if (blockNumber === undefined) return chain.usedLatest.has(nonce);
      chain.pinnedReads.push(blockNumber);
      return chain.usedPinned.has(nonce);
    },
    async findAuthorizationUse(_network: string, _token: string, _from: string, nonce: string) {
      if (!chain.usedLatest.has(nonce)) return undefined;
      const transfer = chain.transfers.get(nonce);
      return { transactionHash: `0x${'ab'.repeat(32)}`, blockNumber: 99n, ...(transfer ? { transfer } : {}) };
    },
  };
  return chain;
}

function policy(daily: string) {
  return {
    version: 1,
    rules: [
      { name: 'paid-apis', type: 'allow', match: { chains: [BASE], kinds: ['eip3009.transfer_with_authorization'], to: [ALICE], resources: [`${API}/**`] } },
      { name: 'daily', type: 'budget', asset: USDC_ASSET, max: daily, window: '24h' },
      { name: 'hour-long', type: 'validity_window', max_seconds: VALIDITY },
    ],
  };
}

function paymentRequired(url: string, amount: string) {
  const accepts = [{ scheme: 'exact', network: BASE, amount, asset: USDC, payTo: ALICE, maxTimeoutSeconds: VALIDITY, extra: { name: 'USD Coin', version: '2' } }];
  return encodePaymentRequiredHeader({ x402Version: 2, error: 'Payment required', resource: { url, description: 'data', mimeType: 'application/json' }, accepts } as never);
}

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`x402 reconciler against untrusted chain answers (${store})`, () => {
    // A fresh Airlock per test: each round's counts are then exactly this test's payments.
    let h: Harness;
    const chain = scriptedChain();
    beforeEach(async () => {
      chain.reset();
      h = await startHarness({ store, manualClock: true, chainReader: chain });
      chain.wall = () => Math.floor(h.clock!.now() / 1000);
    });
    afterEach(async () => h?.close());

    const wall = () => Math.floor(h.clock!.now() / 1000);
    const reconcile = async () => (await h.admin('POST', '/v1/x402/reconcile')).body;
    async function agentWithBudget(daily: string) {
      const { agent, token } = await provisionAgent(h, { policy: policy(daily), ttl: '7d' });
      const pay = (amount = '1000') => h.call('POST', '/v1/x402/pay', { token, body: { resource: `${API}/data`, paymentRequired: paymentRequired(`${API}/data`, amount) } });
      const state = async (id: string) => (await h.admin('GET', `/v1/x402/payments?agent=${agent.name}`)).body.payments.find((p: any) => p.id === id);
      const audit = async (type: string) => (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=${type}`)).body.entries;
      return { agent, pay, state, audit };
    }

    test('an RPC claiming chain time past validBefore (nonce unused) while the wall clock is an hour before it: hold kept, alerted, still counted', async () => {
      const { pay, state, audit } = await agentWithBudget('1000');
      const first = await pay();
      assert.equal(first.status, 200, JSON.stringify(first.body));
      const validBefore = Number(first.body.authorization.validBefore);
      assert.equal(validBefore - wall(), VALIDITY);
      // The lie: latest and pinned blocks an hour and a minute ahead, the nonce unused everywhere.
      chain.latest = () => validBefore + 60;
      chain.pinned = () => ({ number: 500n, timestamp: validBefore + 30 });

      for (let round = 1; round <= 2; round++) {
        const r = await reconcile();
        assert.equal(r.expired, 0, 'one untrusted answer never releases a hold');
        assert.deepEqual([r.disagreements, r.alerts], [1, round === 1 ? 1 : 0], 'kept every round, alerted once for the same reason');
      }
      assert.equal((await state(first.body.paymentId)).state, 'reserved');
      const alerts = await audit('alert.reconciler');
      assert.equal(alerts.length, 1);
      assert.equal(alerts[0].data.reason, 'chain_clock_skew');
      assert.equal(alerts[0].data.paymentId, first.body.paymentId);
      assert.equal(alerts[0].data.latestTimestamp - alerts[0].data.wallClock, VALIDITY + 60, 'the alert carries the figures');

      const second = await pay();
      assert.equal(second.status, 403, 'the held authorization still counts against the 1000/day budget');
      assert.ok(second.body.error.violations.some((v: any) => v.code === 'budget_exceeded'), JSON.stringify(second.body));
    });

    test('a pinned block newer than the latest block: the RPC contradicts itself, the hold is kept and alerted', async () => {
      const { pay, state, audit } = await agentWithBudget('1000');
      const first = await pay();
      const validBefore = Number(first.body.authorization.validBefore);
      h.clock!.advance((VALIDITY - 10) * 1000); // wall clock 10 s before validBefore
      chain.pinned = () => ({ number: 500n, timestamp: validBefore + 100 });
      const r = await reconcile();
      assert.deepEqual([r.expired, r.alerts], [0, 1]);
      assert.equal((await audit('alert.reconciler'))[0].data.reason, 'chain_inconsistent');
      assert.equal((await state(first.body.paymentId)).state, 'reserved');
    });

    test('genuinely expired: kept inside the margin, released once the wall clock passes validBefore + margin and the pinned block agrees', async () => {
      const { pay, state, audit } = await agentWithBudget('1000');
      const first = await pay();
      const validBefore = Number(first.body.authorization.validBefore);
      h.clock!.advance((VALIDITY + 60) * 1000); // past validBefore, inside the margin; the chain agrees
      chain.pinned = (w: number) => ({ number: 700n, timestamp: w - 12 });
      let r = await reconcile();
      assert.deepEqual([r.expired, r.alerts], [0, 0], 'inside the margin: no release, nothing to alert');
      assert.equal((await pay()).status, 403);

      h.clock!.advance(MARGIN * 1000);
      r = await reconcile();
      assert.equal(r.expired, 1);
      assert.equal(r.alerts, 0);
      assert.deepEqual(chain.pinnedReads, [700n], 'the nonce was read at the pinned block number');
      assert.equal((await state(first.body.paymentId)).state, 'expired');
      const [expired] = await audit('x402.expired');
      assert.equal(expired.data.evidence, 'pinned_block_unused_after_valid_before');
      assert.equal(expired.data.pinnedBlock, '700');
      assert.ok(expired.data.pinnedTimestamp > validBefore);
      assert.equal((await pay()).status, 200, 'the budget is free again');
    });

    test('past the margin but the pinned block is not yet past validBefore: kept (finality lag), alerted only when the lag is long', async () => {
      const { pay, state, audit } = await agentWithBudget('1000');
      const first = await pay();
      const validBefore = Number(first.body.authorization.validBefore);
      chain.pinned = () => ({ number: 10n, timestamp: validBefore - 1 });
      h.clock!.advance((VALIDITY + MARGIN + 60) * 1000);
      assert.deepEqual([(await reconcile()).expired, (await reconcile()).alerts], [0, 0]);
      h.clock!.advance(3600 * 1000);
      const r = await reconcile();
      assert.deepEqual([r.expired, r.alerts], [0, 1]);
      assert.equal((await audit('alert.reconciler'))[0].data.reason, 'pinned_block_lagging');
      assert.equal((await state(first.body.paymentId)).state, 'reserved');
    });

    test('a nonce used at the pinned block but unused at the latest: kept and alerted', async () => {
      const { pay, state, audit } = await agentWithBudget('1000');
      const first = await pay();
      chain.usedPinned.add(first.body.authorization.nonce);
      h.clock!.advance((VALIDITY + MARGIN + 1) * 1000);
      const r = await reconcile();
      assert.deepEqual([r.expired, r.settled, r.alerts], [0, 0, 1]);
      assert.equal((await audit('alert.reconciler'))[0].data.reason, 'nonce_state_disagrees');
      assert.equal((await state(first.body.paymentId)).state, 'reserved');
    });

    test('an RPC failure keeps due holds and is alerted once per network and round, without the RPC URL', async () => {
      const { pay, state } = await agentWithBudget('2000');
      const a = await pay();
      const b = await pay();
      h.clock!.advance((VALIDITY + MARGIN + 1) * 1000);
      chain.failure = Object.assign(new Error('request to https://user:s3cret-key@rpc.example/v2/s3cret-key failed'), { name: 'HttpRequestError' });
      const r = await reconcile();
      assert.deepEqual([r.checked, r.expired, r.errors, r.alerts], [2, 0, 2, 1]);
      for (const p of [a, b]) assert.equal((await state(p.body.paymentId)).state, 'reserved');
      const alerts = (await h.admin('GET', '/v1/audit?type=alert.reconciler')).body.entries.filter((e: any) => e.data.reason === 'rpc_error');
      assert.equal(alerts.length, 1);
      assert.equal(alerts[0].data.failure, 'HttpRequestError');
      assert.equal(alerts[0].data.network, BASE);
      assert.ok(!JSON.stringify(alerts[0]).includes('s3cret'), 'the RPC URL (and its key) is not in the audit log');
      chain.failure = undefined;
      assert.equal((await reconcile()).expired, 2, 'released once the RPC answers and agrees');
    });

    test('a larger transfer settled the nonce: the ledger charges the larger amount, the budget sees it, alert.settlement_mismatch', async () => {
      const { agent, pay, state, audit } = await agentWithBudget('3000');
      const first = await pay('1000');
      const nonce = first.body.authorization.nonce;
      chain.usedLatest.add(nonce);
      chain.transfers.set(nonce, { to: ALICE, value: 2500n });
      const r = await reconcile();
      assert.deepEqual([r.settled, r.alerts], [1, 1]);
      const p = await state(first.body.paymentId);
      assert.deepEqual([p.state, p.value, p.settledValue, p.settledTo, p.settlementTx], ['settled', '1000', '2500', ALICE, `0x${'ab'.repeat(32)}`]);
      const [mismatch] = await audit('alert.settlement_mismatch');
      assert.deepEqual([mismatch.data.heldValue, mismatch.data.settledValue, mismatch.data.chargedValue], ['1000', '2500', '2500']);
      const [settled] = await audit('x402.settled');
      assert.equal(settled.data.chargedValue, '2500');

      // 2500 charged: another 1000 would exceed 3000 (with only the held 1000 charged it would fit).
      const next = await pay('1000');
      assert.equal(next.status, 403, JSON.stringify(next.body));
      assert.equal(next.body.error.violations[0].code, 'budget_exceeded');
      assert.equal(next.body.error.violations[0].used, '2500');
      assert.equal((await pay('500')).status, 200, 'exactly the moved amount is charged');
      const summary = (await h.admin('GET', `/v1/x402/summary?agent=${agent.name}`)).body;
      assert.equal(summary.agents[0].settled, '2500');
    });

    test('a smaller transfer, or one to another recipient: charged the larger of the two, to both recipients, and alerted', async () => {
      const { pay, state, audit } = await agentWithBudget('3000');
      const first = await pay('1000');
      const nonce = first.body.authorization.nonce;
      chain.usedLatest.add(nonce);
      chain.transfers.set(nonce, { to: MALLORY, value: 400n });
      assert.equal((await reconcile()).settled, 1);
      assert.equal((await state(first.body.paymentId)).settledValue, '400');
      const [mismatch] = await audit('alert.settlement_mismatch');
      assert.deepEqual([mismatch.data.settledTo, mismatch.data.heldTo, mismatch.data.chargedValue], [MALLORY, ALICE, '1000']);
      // Never under-count: the held 1000 stays charged, so 2000 more fit and 2001 do not.
      assert.equal((await pay('2001')).status, 403);
      assert.equal((await pay('2000')).status, 200);
    });
  });
}
