// The settlement transaction on record comes from the chain only (review, LOW). The hash an agent reports from
// PAYMENT-RESPONSE (POST /v1/x402/settlement) is checked for its format only: any well-formed hash, another
// agent's settlement or a transaction on another chain. When the chain said the nonce was used but no event was
// found (older than the log lookback, or a cancellation), the reconciler recorded that report as the payment's
// `settlementTx`. It is now kept apart as `reportedTx`; `settlementTx` is the transaction found on chain, or
// absent. Through the real HTTP app on SQLite and PostgreSQL.
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodePaymentResponseHeader } from '@x402/core/http';
import type { ChainReader } from '@airlock/core';
import { ALICE, BASE, provisionAgent, startHarness, usdcAuthorization, usdcPolicy, type Harness, type StoreKind } from './testing/harness.ts';

const CHAIN_TX = `0x${'ee'.repeat(32)}`;
const BOGUS = `0x${'0b'.repeat(32)}`;

/** Nonces in `used` are spent on chain; those also in `found` have their AuthorizationUsed event within reach. */
function chainFor(now: () => number) {
  const used = new Set<string>();
  const found = new Set<string>();
  const chain: ChainReader = {
    supports: (n) => n === BASE,
    async latestBlockTimestamp() { return Math.floor(now() / 1000); },
    async pinnedBlock() { return { tag: 'finalized', number: 1n, timestamp: Math.floor(now() / 1000) }; },
    async authorizationState(_n, _t, _f, nonce) { return used.has(nonce.toLowerCase()); },
    async findAuthorizationUse(_n, _t, _f, nonce) {
      return found.has(nonce.toLowerCase()) ? { transactionHash: CHAIN_TX, blockNumber: 1n, transfer: { to: ALICE, value: 1000n } } : undefined;
    },
  };
  return { chain, used, found };
}

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`x402 settlement transaction comes from the chain, not the agent (${store})`, () => {
    let h: Harness;
    let used: Set<string>;
    let found: Set<string>;
    beforeEach(async () => {
      let clock = () => Date.now();
      const c = chainFor(() => clock());
      ({ used, found } = c);
      h = await startHarness({ store, manualClock: true, chainReader: c.chain });
      clock = () => h.clock!.now();
    });
    afterEach(async () => h?.close());

    async function paidAndReported(nonce: string) {
      const { agent, token } = await provisionAgent(h, { policy: usdcPolicy() });
      const signed = await h.call('POST', '/v1/sign/typed-data', { token, body: usdcAuthorization(agent.address, ALICE, 1000n, Math.floor(h.clock!.now() / 1000) + 60, nonce) });
      assert.equal(signed.status, 200, JSON.stringify(signed.body));
      const paymentResponse = encodePaymentResponseHeader({ success: true, transaction: BOGUS, network: 'eip155:1', payer: agent.address } as never);
      const rep = await h.call('POST', '/v1/x402/settlement', { token, body: { paymentId: signed.body.paymentId, paymentResponse } });
      assert.equal(rep.status, 200, JSON.stringify(rep.body));
      assert.deepEqual(rep.body, { paymentId: signed.body.paymentId, state: 'reserved', transaction: BOGUS }, 'the report is recorded as reported');
      const payment = async () => (await h.admin('GET', `/v1/x402/payments?agent=${agent.name}`)).body.payments.find((p: any) => p.id === signed.body.paymentId);
      const audit = async (type: string) => (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=${type}`)).body.entries;
      return { agent, payment, audit };
    }

    test('nonce used on chain, no event found: settled with no settlementTx; the agent\'s hash stays reportedTx only', async () => {
      const nonce = `0x${'cd'.repeat(32)}`;
      const { payment, audit } = await paidAndReported(nonce);
      used.add(nonce);
      const r = (await h.admin('POST', '/v1/x402/reconcile')).body;
      assert.deepEqual([r.checked, r.settled, r.alerts], [1, 1, 1]);

      const p = await payment();
      assert.equal(p.state, 'settled');
      assert.equal(p.settlementTx, undefined, 'no transaction was found on chain: none is on record as the settlement');
      assert.equal(p.reportedTx, BOGUS, "the agent's report stays visible, as the reported one");
      const [settled] = await audit('x402.settled');
      assert.equal(settled.data.evidence, 'chain_used_transfer_not_found');
      assert.equal(settled.data.transaction, undefined);
      assert.equal(settled.data.reportedTx, BOGUS);
      assert.ok((await audit('alert.reconciler')).some((e: any) => e.data.reason === 'settlement_not_found' && e.data.paymentId === p.id));
    });

    test('nonce used on chain with its event found: settlementTx is the chain\'s transaction, whatever the agent reported', async () => {
      const nonce = `0x${'ce'.repeat(32)}`;
      const { payment } = await paidAndReported(nonce);
      used.add(nonce);
      found.add(nonce);
      assert.equal((await h.admin('POST', '/v1/x402/reconcile')).body.settled, 1);
      const p = await payment();
      assert.deepEqual([p.state, p.settlementTx, p.reportedTx], ['settled', CHAIN_TX, BOGUS]);
    });
  });
}
