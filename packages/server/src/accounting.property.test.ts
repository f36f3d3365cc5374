// The accounting invariant (docs/architecture.md), as a property over random operation sequences on both
// stores: for every released signature there is exactly one charge of its own decoded value, or it is a
// byte-identical replay of a charged one; every release has its audit entry; one nonce never gets two
// different signatures. Operations: sign (new or reused nonce, with or without approval), replay, idempotent
// retry, approve, deny, settle and expire (a fake chain plus the reconciler).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { COUNT_ASSET, seriesFor } from '@airlock/core';
import { ALICE, BASE, USDC_ASSET, provisionAgent, startHarness, usdcAuthorization, type Harness, type StoreKind } from './testing/harness.ts';
import { fakeChain } from './testing/fake-chain.ts';

type Op =
  | { kind: 'sign'; nonce: number; value: number; key?: string }
  | { kind: 'replay'; pick: number }
  | { kind: 'approve' | 'deny'; pick: number }
  | { kind: 'settle'; nonce: number }
  | { kind: 'expire' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('sign' as const), nonce: fc.integer({ min: 0, max: 5 }), value: fc.integer({ min: 1, max: 60 }), key: fc.option(fc.constantFrom('k1', 'k2', 'k3'), { nil: undefined }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('replay' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom('approve' as const, 'deny' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('settle' as const), nonce: fc.integer({ min: 0, max: 5 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'expire' as const }) },
);

const hexNonce = (run: number, n: number) => `0x${run.toString(16).padStart(8, '0')}${n.toString(16).padStart(56, '0')}`;

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`accounting invariant over random operation sequences (${store})`, () => {
    let h: Harness;
    const chain = fakeChain();
    before(async () => {
      h = await startHarness({ store, manualClock: true, chainReader: chain });
      chain.now = () => h.clock!.now();
    });
    after(async () => {
      await h.close();
    });

    test('every release is one charge of its own value or a byte-identical replay, and is audited', async () => {
      let run = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 5, maxLength: 30 }), async (ops) => {
          run += 1;
          // Values above 40 need a human; the budget is far away so only the invariant decides.
          const policy = {
            version: 1,
            rules: [
              { name: 'pay', type: 'allow', match: { chains: [BASE], kinds: ['eip3009.transfer_with_authorization'], to: [ALICE] } },
              { name: 'human', type: 'approval_tier', asset: USDC_ASSET, above: '40' },
              { name: 'short', type: 'validity_window', max_seconds: 7200 },
            ],
          };
          const { agent, token } = await provisionAgent(h, { policy });
          const sent: { body: unknown; key?: string }[] = [];
          const pending: string[] = [];
          /** nonce -> every signature released for it; digest-free check: they must all be equal. */
          const released = new Map<string, Set<string>>();
          /** nonce -> value of the authorization that was charged (first release). */
          const chargedValue = new Map<string, bigint>();
          const expired = new Set<string>();
          let releases = 0;
          const validBefore = Math.floor(h.clock!.now() / 1000) + 600;

          const noteRelease = async (nonce: string, signature: string, auditSeq: number, replayed: boolean) => {
            releases += 1;
            const set = released.get(nonce) ?? new Set<string>();
            set.add(signature);
            released.set(nonce, set);
            // Every release points at an audit entry that recorded this very digest as allowed or approved.
            const [entry] = (await h.admin('GET', `/v1/audit?agent=${agent.name}&limit=1000`)).body.entries.filter((e: any) => e.seq === auditSeq);
            assert.ok(entry, `release without its audit entry (seq ${auditSeq})`);
            assert.ok(entry.decision === 'allow' || entry.decision === 'require_approval', `release under a ${entry.decision} entry`);
            if (replayed) assert.ok(chargedValue.has(nonce), 'a replay of nothing charged');
          };

          const signed = async (body: any, key?: string) => {
            const res = await h.call('POST', '/v1/sign/typed-data', { token, body, ...(key ? { headers: { 'idempotency-key': key } } : {}) });
            const nonce = body.typedData.message.nonce as string;
            if (res.status === 200) {
              if (!res.body.replayed && !chargedValue.has(nonce)) chargedValue.set(nonce, BigInt(body.typedData.message.value));
              await noteRelease(nonce, res.body.signature, res.body.auditSeq, res.body.replayed === true);
            } else if (res.status === 202 && !res.body.replayed) pending.push(res.body.approvalId);
            else assert.ok([202, 403, 409].includes(res.status), `unexpected ${res.status} ${JSON.stringify(res.body)}`);
          };

          for (const op of ops) {
            switch (op.kind) {
              case 'sign': {
                const body = usdcAuthorization(agent.address, ALICE, BigInt(op.value), validBefore, hexNonce(run, op.nonce));
                sent.push({ body, ...(op.key ? { key: op.key } : {}) });
                await signed(body, op.key);
                break;
              }
              case 'replay': {
                const prior = sent[op.pick % Math.max(1, sent.length)];
                if (prior) await signed(prior.body, prior.key);
                break;
              }
              case 'approve':
              case 'deny': {
                const id = pending.splice(op.pick % Math.max(1, pending.length), 1)[0];
                if (!id) break;
                const res = await h.admin('POST', `/v1/approvals/${id}/${op.kind}`, {});
                if (op.kind === 'approve' && res.status === 200) {
                  const nonce = res.body.summary.intent.payment.nonce as string;
                  if (!chargedValue.has(nonce)) chargedValue.set(nonce, BigInt(res.body.summary.intent.spends[0].amount));
                  await noteRelease(nonce, res.body.result.signature, res.body.auditSeq, false);
                }
                break;
              }
              case 'settle': {
                // Only what was signed can settle: the released authorization of that nonce moves its value.
                const value = chargedValue.get(hexNonce(run, op.nonce));
                if (value !== undefined) chain.use(hexNonce(run, op.nonce), value);
                await h.admin('POST', '/v1/x402/reconcile');
                break;
              }
              case 'expire':
                break;
            }
          }
          // End of the sequence: what is still waiting for a human is denied (nothing was signed for it), then
          // time passes validBefore: unused authorizations expire, used ones settle.
          for (const id of pending) await h.admin('POST', `/v1/approvals/${id}/deny`, {});
          h.clock!.advance(3_600_000);
          await h.admin('POST', '/v1/x402/reconcile');
          for (const p of (await h.admin('GET', `/v1/x402/payments?agent=${agent.name}&limit=1000`)).body.payments) {
            if (p.state === 'expired') expired.add(p.nonce);
          }

          // One nonce, one signature, ever.
          for (const [nonce, signatures] of released) assert.equal(signatures.size, 1, `nonce ${nonce} got ${signatures.size} different signatures`);
          // Charged exactly once per released authorization: settled ones stay charged, expired ones are released.
          const totals = await h.airlock.store.transaction((tx) =>
            tx.windowTotals([
              { series: seriesFor.agent(agent.id), asset: USDC_ASSET, sinceMs: 0 },
              { series: seriesFor.agent(agent.id), asset: COUNT_ASSET, sinceMs: 0 },
            ]),
          );
          let expected = 0n;
          for (const [nonce, value] of chargedValue) if (!expired.has(nonce)) expected += value;
          assert.equal(totals[0]!.amount, expected, 'ledger total vs charged authorizations');
          // Every release counts (replays included): rate limits count signatures.
          assert.equal(totals[1]!.count, releases, 'request counts vs releases');
          assert.equal((await h.admin('POST', '/v1/audit/verify')).body.ok, true);
        }),
        { numRuns: store === 'sqlite' ? 25 : 12, endOnFailure: true },
      );
    });
  });
}
