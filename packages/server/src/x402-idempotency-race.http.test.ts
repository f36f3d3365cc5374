// Two POST /v1/x402/pay requests under one Idempotency-Key at the same moment: both find no stored plan, both choose,
// and the one that stores second meets the other's plan. It is answered as if it had come after it, with the same
// audit entries as the sequential path (x402-idempotency-audit.http.test.ts): a different request is `409
// idempotency_conflict` with its `sign.request` error entry; the same request over a stored refusal is `403` with
// `replayed: true` and a `sign.replay` entry (`replayAuditSeq`); the same allowed request signs the stored plan.
// Found by review: the conflict and the replayed refusal met at store time had left no audit entry.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ALICE, BASE, MALLORY, USDC, USDC_ASSET, provisionAgent, startHarness, type Harness, type StoreKind } from './testing/harness.ts';
import { fakeChain } from './testing/fake-chain.ts';
import { paymentRequiredHeader, usdcRequirement } from './testing/x402-terms.ts';

const API = 'https://api.example.com';
const ROUNDS = 10;
const requirement = usdcRequirement;
const paymentRequired = paymentRequiredHeader;
const policy = {
  version: 1,
  rules: [
    { name: 'paid-apis', type: 'allow', match: { chains: [BASE], kinds: ['eip3009.transfer_with_authorization'], to: [ALICE], resources: [`${API}/**`] } },
    { name: 'max-price', type: 'max_amount', asset: USDC_ASSET, max: '5000' },
  ],
};

type Entry = { seq: number; type: string; decision: string; data: Record<string, unknown> };

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`x402 Idempotency-Key race: every answer is audited (${store})`, () => {
    let h: Harness;
    const chain = fakeChain();
    before(async () => {
      h = await startHarness({ store, manualClock: true, chainReader: chain });
      chain.now = () => h.clock!.now();
    });
    after(async () => h.close());

    const agentWith = async () => {
      const { agent, token } = await provisionAgent(h, { policy });
      const pay = (url: string, accepts: Record<string, unknown>[], key: string) => h.call('POST', '/v1/x402/pay', { token, body: { resource: url, paymentRequired: paymentRequired(url, accepts) }, headers: { 'idempotency-key': key } });
      const entries = async () => (await h.admin('GET', `/v1/audit?agent=${agent.name}&limit=1000`)).body.entries as Entry[];
      return { pay, entries };
    };

    test('two different requests sent at once under one key: the 409 has its idempotency_conflict audit entry', async () => {
      const { pay, entries } = await agentWith();
      let raced = 0;
      for (let i = 0; i < ROUNDS; i++) {
        const key = `conflict-${i}`;
        const answers = await Promise.all([pay(`${API}/a`, [requirement()], key), pay(`${API}/b`, [requirement({ payTo: MALLORY })], key)]);
        const conflicts = answers.filter((r) => r.status === 409);
        if (conflicts.length === 0) continue;
        raced++;
        for (const c of conflicts) assert.equal(c.body.error.code, 'idempotency_conflict');
        const logged = (await entries()).filter((e) => e.type === 'sign.request' && e.decision === 'error' && e.data.idempotencyKey === key && e.data.errorCode === 'idempotency_conflict');
        assert.equal(logged.length, conflicts.length, `round ${i}: a 409 without its audit entry`);
      }
      assert.ok(raced > 0, 'no round answered a 409');
    });

    test('one refused request sent twice at once under one key: the replayed 403 has its sign.replay entry', async () => {
      const { pay, entries } = await agentWith();
      let metAtStore = 0;
      for (let i = 0; i < ROUNDS; i++) {
        const key = `refused-${i}`;
        const url = `${API}/refused-${i}`;
        const answers = await Promise.all([pay(url, [requirement({ payTo: MALLORY })], key), pay(url, [requirement({ payTo: MALLORY })], key)]);
        assert.deepEqual(answers.map((r) => r.status), [403, 403]);
        const original = answers.find((r) => r.body.replayed !== true);
        const replay = answers.find((r) => r.body.replayed === true);
        assert.ok(original && replay, `round ${i}: expected one refusal and one replay, got ${JSON.stringify(answers.map((r) => r.body.replayed))}`);
        assert.equal(replay.body.auditSeq, original.body.auditSeq);
        const all = await entries();
        // Both requests were judged (two refusal entries) only when the second met the first's refusal at store time.
        if (all.filter((e) => e.type === 'x402.pay' && e.decision === 'deny' && e.data.resource === url).length === 2) metAtStore++;
        const replays = all.filter((e) => e.type === 'sign.replay' && e.data.idempotencyKey === key);
        assert.deepEqual(replays.map((e) => [e.decision, e.data.originalSeq, e.seq]), [['deny', original.body.auditSeq, replay.body.replayAuditSeq]], `round ${i}: the replayed refusal's entry`);
      }
      assert.ok(metAtStore > 0, 'no round met the stored refusal at store time');
    });

    test('one allowed request sent twice at once under one key: both get the same signed payment', async () => {
      const { pay } = await agentWith();
      for (let i = 0; i < 3; i++) {
        const key = `allowed-${i}`;
        const [a, b] = await Promise.all([pay(`${API}/data`, [requirement()], key), pay(`${API}/data`, [requirement()], key)]);
        assert.deepEqual([a.status, b.status], [200, 200], JSON.stringify([a.body.error, b.body.error]));
        assert.equal(a.body.signature, b.body.signature);
        assert.equal(a.body.header.value, b.body.header.value);
        assert.equal(a.body.paymentId, b.body.paymentId);
      }
    });
  });
}
