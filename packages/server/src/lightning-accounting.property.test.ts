// The accounting invariant for Lightning (docs/architecture.md), as a property over random operation sequences
// on both stores: every invoice is paid at most once; what the ledger holds for an agent is exactly the amount
// plus the real fee of each payment that succeeded, plus the worst case of each still in flight; a failure
// leaves only its request count; every outcome has its audit entry. Operations: pay (the network succeeds,
// fails or hangs), pay the same invoice again, the hanging payment lands or fails, reconcile, approve, deny.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { BITCOIN_CHAINS, COUNT_ASSET, bitcoinAsset, seriesFor } from '@airlock/core';
import { LightningNetwork, SimulatedBackend, type IssuedInvoice } from '../../../testing/lightning-network.ts';
import { provisionAgent, startHarness, TEST_PASSPHRASE, TEST_VAULT, type Harness, type StoreKind } from './testing/harness.ts';
import { openAirlock, type Airlock } from './runtime.ts';

const BTC = bitcoinAsset(BITCOIN_CHAINS.regtest);

type Op =
  | { kind: 'pay'; invoice: number; outcome: 'succeed' | 'fail' | 'hang'; fee: number }
  | { kind: 'land'; pick: number; succeed: boolean; fee: number }
  | { kind: 'reconcile' }
  | { kind: 'approve' | 'deny'; pick: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('pay' as const), invoice: fc.integer({ min: 0, max: 6 }), outcome: fc.constantFrom('succeed' as const, 'fail' as const, 'hang' as const), fee: fc.integer({ min: 0, max: 900 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('land' as const), pick: fc.nat(), succeed: fc.boolean(), fee: fc.integer({ min: 0, max: 900 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'reconcile' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom('approve' as const, 'deny' as const), pick: fc.nat() }) },
);

const REGRESSION_DUPLICATE_APPROVALS: Op[] = [
  { kind: 'pay', invoice: 4, outcome: 'hang', fee: 215 },
  { kind: 'pay', invoice: 1, outcome: 'succeed', fee: 237 },
  { kind: 'pay', invoice: 5, outcome: 'succeed', fee: 725 },
  { kind: 'pay', invoice: 2, outcome: 'hang', fee: 242 },
  { kind: 'reconcile' },
  { kind: 'pay', invoice: 3, outcome: 'succeed', fee: 700 },
  { kind: 'land', pick: 70464654, succeed: false, fee: 167 },
  { kind: 'pay', invoice: 5, outcome: 'succeed', fee: 665 },
  { kind: 'land', pick: 789684574, succeed: false, fee: 314 },
  { kind: 'land', pick: 763235579, succeed: true, fee: 838 },
  { kind: 'pay', invoice: 5, outcome: 'succeed', fee: 816 },
  { kind: 'pay', invoice: 1, outcome: 'succeed', fee: 551 },
  { kind: 'approve', pick: 1362960989 },
  { kind: 'pay', invoice: 3, outcome: 'hang', fee: 77 },
  { kind: 'approve', pick: 1762254454 },
  { kind: 'pay', invoice: 0, outcome: 'fail', fee: 146 },
  { kind: 'pay', invoice: 2, outcome: 'hang', fee: 142 },
  { kind: 'pay', invoice: 2, outcome: 'succeed', fee: 542 },
  { kind: 'approve', pick: 939197355 },
  { kind: 'pay', invoice: 0, outcome: 'succeed', fee: 786 },
];

const sha256hex = (hex: string) => createHash('sha256').update(Buffer.from(hex, 'hex')).digest('hex');

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`Lightning accounting over random operation sequences (${store})`, () => {
    let h: Harness;
    /** Another instance whose clock is past every payment's pay timeout and grace: it believes failures lookups read. */
    let later: Airlock;
    const ln = new LightningNetwork();
    const backend = new SimulatedBackend(ln);
    backend.maxWaitMs = 30; // a hanging payment is answered in flight at once
    const shop = ln.payee();
    before(async () => {
      h = await startHarness({ store, lightningBackend: backend, config: { lightning: { backend: 'lnd', network: 'regtest', payTimeoutSeconds: 1, notFoundGraceSeconds: 60, defaultFeePercent: 1 } } });
      later = await openAirlock(h.config, TEST_PASSPHRASE, { vault: TEST_VAULT, timers: false, clock: { now: () => Date.now() + 62_000 }, lightningBackend: backend });
    });
    after(async () => {
      await later.close();
      await h.close();
    });

    test('an invoice is paid at most once and charged its amount plus its real fee; failures release; everything is audited', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 5, maxLength: 25 }), async (ops) => {
          // Above 40 000 msat a human decides; the budget is far away so only the invariant decides.
          const policy = { version: 1, rules: [{ name: 'pay', type: 'allow', match: { actions: ['lightning.pay'] } }, { name: 'human', type: 'approval_tier', asset: BTC, above: '40000' }] };
          const { agent, token } = await provisionAgent(h, { policy, actions: ['lightning.pay'] });
          const invoices = new Map<number, IssuedInvoice>();
          const hanging: string[] = [];
          const pending: string[] = [];
          const preimages = new Map<string, string>();
          const invoiceOf = (n: number) => {
            let issued = invoices.get(n);
            if (!issued) invoices.set(n, (issued = shop.invoice({ amountMsat: BigInt(1_000 + n * 9_000) })));
            return issued;
          };
          const noteAnswer = (res: { status: number; body: any }) => {
            if (res.status === 200 && res.body.status === 'succeeded') {
              assert.equal(sha256hex(res.body.preimage), res.body.paymentHash, 'a preimage that proves the payment');
              preimages.set(res.body.paymentHash, res.body.preimage);
            } else if (res.status === 202 && res.body.decision === 'require_approval') {
              if (!res.body.replayed) pending.push(res.body.approvalId);
            } else assert.ok([200, 202, 403, 409, 502].includes(res.status), `unexpected ${res.status} ${JSON.stringify(res.body)}`);
          };

          for (const op of ops) {
            switch (op.kind) {
              case 'pay': {
                const issued = invoiceOf(op.invoice);
                // What the network does with the next attempt of this hash (a hash already paid is refused by it anyway).
                ln.script(issued.paymentHash, op.outcome === 'hang' ? { kind: 'hang' } : op.outcome === 'fail' ? { kind: 'fail', reason: 'no_route' } : { kind: 'succeed', feeMsat: BigInt(op.fee) % 1001n });
                const res = await h.call('POST', '/v1/lightning/pay', { token, body: { invoice: issued.invoice, maxFeeMsat: '1000' } });
                if (ln.isHanging(issued.paymentHash) && !hanging.includes(issued.paymentHash)) hanging.push(issued.paymentHash);
                noteAnswer(res);
                break;
              }
              case 'land': {
                const hash = hanging.splice(op.pick % Math.max(1, hanging.length), 1)[0];
                if (hash) ln.release(hash, op.succeed ? { succeed: true, feeMsat: BigInt(op.fee) } : { succeed: false, reason: 'no_route' });
                break;
              }
              case 'reconcile':
                await h.admin('POST', '/v1/lightning/reconcile');
                break;
              case 'approve':
              case 'deny': {
                const id = pending.splice(op.pick % Math.max(1, pending.length), 1)[0];
                if (!id) break;
                const res = await h.admin('POST', `/v1/approvals/${id}/${op.kind}`, {});
                const hash = op.kind === 'approve' && res.status === 200 ? (res.body.result.paymentHash as string) : undefined;
                if (hash !== undefined && ln.isHanging(hash) && !hanging.includes(hash)) hanging.push(hash);
                break;
              }
            }
          }
          // End of the sequence: pending approvals are denied, hanging payments land, the reconciler finishes them.
          for (const id of pending) await h.admin('POST', `/v1/approvals/${id}/deny`, {});
          for (const hash of hanging) ln.release(hash, { succeed: true, feeMsat: 7n });
          await h.admin('POST', '/v1/lightning/reconcile');
          // Failures a lookup read (a hanging payment that landed as failed) are believed once the grace passed.
          await later.lightning.reconcile(1000);

          const payments = (await h.admin('GET', `/v1/lightning/payments?agent=${agent.name}&limit=1000`)).body.payments as any[];
          assert.deepEqual(payments.filter((p) => p.state === 'in_flight'), [], 'every payment finished once the network answered');
          const succeeded = payments.filter((p) => p.state === 'succeeded');
          // Paid at most once: one succeeded record per hash, and exactly the hashes the network paid.
          assert.equal(new Set(succeeded.map((p) => p.paymentHash)).size, succeeded.length, 'an invoice paid twice');
          for (const p of succeeded) assert.ok(ln.isPaid(p.paymentHash));
          for (const issued of invoices.values()) if (ln.isPaid(issued.paymentHash)) assert.ok(succeeded.some((p) => p.paymentHash === issued.paymentHash), `paid at the network without a record: ${issued.paymentHash} ${JSON.stringify(payments.map((p) => [p.paymentHash.slice(0, 8), p.state, p.failureReason]))} attempts ${ln.attempts.filter((a) => a === issued.paymentHash).length} outcome ${JSON.stringify(ln.outcome(issued.paymentHash), (_k, v) => (typeof v === 'bigint' ? v.toString() : v))}`);
          for (const [hash, preimage] of preimages) assert.equal(sha256hex(preimage), hash);

          // Charged exactly: amount + the fee the network took for each success; a failure leaves only its count.
          const totals = await h.airlock.store.transaction((tx) =>
            tx.windowTotals([
              { series: seriesFor.agent(agent.id), asset: BTC, sinceMs: 0 },
              { series: seriesFor.agent(agent.id), asset: COUNT_ASSET, sinceMs: 0 },
            ]),
          );
          const expected = succeeded.reduce((sum, p) => sum + BigInt(p.amountMsat) + BigInt(p.feeMsat), 0n);
          assert.equal(totals[0]!.amount, expected, 'ledger vs payments that succeeded');
          for (const p of succeeded) assert.equal(BigInt(p.feeMsat), ln.outcome(p.paymentHash)!.status === 'succeeded' ? (ln.outcome(p.paymentHash) as { feeMsat: bigint }).feeMsat : -1n, 'the fee the network took');
          // Every outcome has exactly one audit entry.
          const audit = (await h.admin('GET', `/v1/audit?agent=${agent.name}&limit=1000`)).body.entries as any[];
          // A request count per attempt that was held; replays (an invoice asked for again) pay nothing and count nothing.
          assert.equal(totals[1]!.count, payments.length, 'one request count per attempt that was held');
          for (const p of payments) {
            const outcomes = audit.filter((e) => (e.type === 'lightning.succeeded' || e.type === 'lightning.failed') && e.data.paymentId === p.id);
            assert.equal(outcomes.length, 1, `payment ${p.id} (${p.state}) has ${outcomes.length} outcome entries`);
            assert.equal(outcomes[0].type, `lightning.${p.state}`);
          }
          assert.equal((await h.admin('POST', '/v1/audit/verify')).body.ok, true);
        }),
        // Regression: one invoice above the approval tier asked for three times, two of its approvals approved after
        // the first paid (found by CI: those approvals stayed pending and held until they expired).
        { numRuns: store === 'sqlite' ? 20 : 10, endOnFailure: true, examples: [[REGRESSION_DUPLICATE_APPROVALS]] },
      );
    });
  });
}
