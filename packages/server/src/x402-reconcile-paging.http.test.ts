// x402 reconciler starvation (review, LOW): a round read only the reserved payments with the soonest
// validBefore (`reservedPayments(limit)`, no cursor). While a batch of due payments stayed reserved round after
// round (their network's RPC down, or an asset without authorizationState), no payment behind them was ever
// looked at: nothing on a healthy network was settled or released. Rounds now page through every reserved
// payment in (validBefore, id) order and wrap around, like the Lightning reconciler. Through the real HTTP app
// on SQLite and PostgreSQL, with a batch of 3 (reconciler option `batchSize`) instead of the default 500.
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RECONCILER_DEFAULTS, type ChainReader } from '@airlock/core';
import type { ReconcileConfig } from './config.ts';
import { ALICE, BASE, USDC, USDC_ASSET, provisionAgent, startHarness, usdcAuthorization, type Harness, type StoreKind } from './testing/harness.ts';

const SEPOLIA = 'eip155:84532';
const SEPOLIA_USDC = '0x036cbd53842c5426634e7929541ec2318f3dcf7e';
const BATCH = 3;
/** More than two batches of payments on the network whose RPC is down. */
const STUCK = 7;
const CHAIN_TX = `0x${'ee'.repeat(32)}`;

/** Base answers (block times follow the test clock); every read on Sepolia fails. */
function twoNetworks(now: () => number) {
  const used = new Set<string>();
  const chain: ChainReader = {
    supports: (n) => n === BASE || n === SEPOLIA,
    async latestBlockTimestamp(n) {
      if (n === SEPOLIA) throw new Error('rpc down');
      return Math.floor(now() / 1000);
    },
    async pinnedBlock(n) {
      if (n === SEPOLIA) throw new Error('rpc down');
      return { tag: 'finalized', number: 1n, timestamp: Math.floor(now() / 1000) };
    },
    async authorizationState(n, _token, _from, nonce) {
      if (n === SEPOLIA) throw new Error('rpc down');
      return used.has(nonce.toLowerCase());
    },
    async findAuthorizationUse(_n, _token, _from, nonce) {
      return used.has(nonce.toLowerCase()) ? { transactionHash: CHAIN_TX, blockNumber: 1n, transfer: { to: ALICE, value: 1000n } } : undefined;
    },
  };
  return { chain, used };
}

function authorization(chainId: number, token: string, from: string, validBefore: number, i: number) {
  const r = usdcAuthorization(from, ALICE, 1000n, validBefore, `0x${i.toString(16).padStart(64, '0')}`);
  return { typedData: { ...r.typedData, domain: { ...r.typedData.domain, chainId, verifyingContract: token } } };
}

const policy = {
  version: 1,
  rules: [
    { name: 'pay', type: 'allow', match: { chains: [BASE, SEPOLIA], kinds: ['eip3009.transfer_with_authorization'], assets: [USDC_ASSET, `${SEPOLIA}/erc20:${SEPOLIA_USDC}`], to: [ALICE] } },
    { name: 'daily', type: 'budget', asset: USDC_ASSET, max: '2000', window: '24h', scope: 'agent' },
    { name: 'short', type: 'validity_window', max_seconds: 600 },
  ],
};

const round = (over: Partial<Record<'checked' | 'settled' | 'expired' | 'assumedSettled' | 'errors' | 'alerts' | 'disagreements', number>>) => ({ checked: 0, settled: 0, expired: 0, assumedSettled: 0, errors: 0, alerts: 0, disagreements: 0, ...over });

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`x402 reconciler pages through reserved payments (${store})`, () => {
    let h: Harness;
    let used: Set<string>;
    beforeEach(async () => {
      let clock = () => Date.now();
      const networks = twoNetworks(() => clock());
      used = networks.used;
      // `batchSize` is a reconciler option (core ReconcilerOptions): the daemon passes config.reconcile through.
      const reconcile = { ...RECONCILER_DEFAULTS, blockTag: 'finalized', logLookbackBlocks: 100_000, batchSize: BATCH } as ReconcileConfig;
      h = await startHarness({ store, manualClock: true, chainReader: networks.chain, config: { reconcile } });
      clock = () => h.clock!.now();
    });
    afterEach(async () => h?.close());

    test('due payments on a network whose RPC is down (more than two batches) do not keep a healthy network\'s from being settled and released', async () => {
      const { agent, token } = await provisionAgent(h, { policy, ttl: '24h' });
      const t0 = Math.floor(h.clock!.now() / 1000);
      const sign = async (chainId: number, token_: string, validBefore: number, i: number) => {
        const res = await h.call('POST', '/v1/sign/typed-data', { token, body: authorization(chainId, token_, agent.address, validBefore, i) });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        return res.body.paymentId as string;
      };
      // The stuck ones expire first: they come first in (validBefore, id) order, ahead of both Base payments.
      const stuck: string[] = [];
      for (let i = 1; i <= STUCK; i++) stuck.push(await sign(84532, SEPOLIA_USDC, t0 + 10 + i, i));
      const settles = await sign(8453, USDC, t0 + 100, 1000);
      const expires = await sign(8453, USDC, t0 + 101, 1001);
      used.add(`0x${(1000).toString(16).padStart(64, '0')}`);
      assert.equal((await h.call('POST', '/v1/sign/typed-data', { token, body: authorization(8453, USDC, agent.address, t0 + 102, 1002) })).status, 403, 'both Base holds count against the budget');

      h.clock!.advance(3_600_000); // an hour later: every authorization is long past validBefore + margin
      const reconcile = async () => {
        const r = await h.admin('POST', '/v1/x402/reconcile');
        assert.equal(r.status, 200, JSON.stringify(r.body));
        return r.body;
      };
      // One batch a round; a failing network is alerted once per round.
      assert.deepEqual(await reconcile(), round({ checked: BATCH, errors: BATCH, alerts: 1 }), 'round 1: the first batch of stuck payments');
      assert.deepEqual(await reconcile(), round({ checked: BATCH, errors: BATCH, alerts: 1 }), 'round 2: the next batch, not the first one again');
      assert.deepEqual(await reconcile(), round({ checked: BATCH, errors: 1, settled: 1, expired: 1, alerts: 1 }), 'round 3: the last stuck one and both Base payments');

      const payments = new Map<string, any>((await h.admin('GET', `/v1/x402/payments?agent=${agent.name}&limit=1000`)).body.payments.map((p: any) => [p.id, p]));
      assert.equal(payments.get(settles).state, 'settled', 'the Base payment whose nonce was used is settled');
      assert.equal(payments.get(settles).settlementTx, CHAIN_TX);
      assert.equal(payments.get(expires).state, 'expired', 'the unused Base payment is released');
      for (const id of stuck) assert.equal(payments.get(id).state, 'reserved', 'a network whose RPC is down keeps its holds');
      const next = await h.call('POST', '/v1/sign/typed-data', { token, body: authorization(8453, USDC, agent.address, Math.floor(h.clock!.now() / 1000) + 60, 1003) });
      assert.equal(next.status, 200, `the released hold frees the budget: ${JSON.stringify(next.body)}`);

      // The new Base payment (not due yet) sorts after the cursor; past the end, rounds start over from the
      // soonest validBefore: the stuck payments are still retried, one batch a round.
      assert.deepEqual(await reconcile(), round({ checked: 1 }), 'round 4: the new Base payment, waiting; a short page ends the pass');
      assert.deepEqual(await reconcile(), round({ checked: BATCH, errors: BATCH, alerts: 1 }), 'round 5: from the start again');
      assert.deepEqual(await reconcile(), round({ checked: BATCH, errors: BATCH, alerts: 1 }), 'round 6');
      assert.deepEqual(await reconcile(), round({ checked: 2, errors: 1, alerts: 1 }), 'round 7: the last stuck one and the new Base payment');
      assert.deepEqual(await reconcile(), round({ checked: BATCH, errors: BATCH, alerts: 1 }), 'round 8: from the start again');
    });
  });
}
