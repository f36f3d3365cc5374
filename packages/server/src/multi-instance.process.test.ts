// Several instances on one PostgreSQL: two real `airlock start` processes share the vault file and the
// store. Budgets, idempotency and the audit chain must hold across them exactly as in one process.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { recoverTransactionAddress, type Hex } from 'viem';
import { ALICE, BASE, usdcPolicy, usdcTransfer } from './testing/harness.ts';
import {
  adminClient, httpJson, killAllDaemons, prepareDaemonData, provisionRemoteAgent, readWholeAudit, startDaemon,
  type DaemonData, type Daemon,
} from './testing/processes.ts';

/** A transfer of a token other than USDC, so the fleet budget test cannot touch the other tests' budgets. */
const OTHER_TOKEN = '0x3333333333333333333333333333333333333333';
function otherTokenTransfer(amount: bigint, nonce: number) {
  const tx = usdcTransfer(ALICE, amount, nonce);
  return { ...tx, transaction: { ...tx.transaction, to: OTHER_TOKEN } };
}

describe('two server processes on one PostgreSQL', () => {
  let data: DaemonData | undefined;
  let servers: Daemon[] = [];
  const urls = () => servers.map((s) => s.url);

  before(async () => {
    data = await prepareDaemonData('postgres');
    servers = await Promise.all([startDaemon(data), startDaemon(data)]);
  });
  after(async () => {
    await killAllDaemons();
    await data?.cleanup();
  });

  test('200 concurrent requests split across both servers, budget for 50: exactly 50 signatures', async () => {
    const [a, b] = urls() as [string, string];
    // Provisioned through one server, used through both: they share everything through the store.
    const { agent, token } = await provisionRemoteAgent(b, data!.adminToken, { policy: usdcPolicy({ daily: '50000000' }) });
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => httpJson(i % 2 ? b : a, 'POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000_000n, i) })),
    );
    const signed = results.filter((r) => r.status === 200 && r.body.signedTransaction);
    const denied = results.filter((r) => r.status === 403);
    assert.equal(signed.length, 50, JSON.stringify(results.find((r) => r.status !== 200 && r.status !== 403)?.body));
    assert.equal(denied.length, 150);
    for (const d of denied) {
      assert.equal(d.body.error.violations[0].rule, 'agent/usdc-daily');
      assert.equal(d.body.error.violations[0].code, 'budget_exceeded');
      assert.equal(d.body.signedTransaction, undefined);
    }
    // Signed with the agent's key, whichever server answered.
    for (const s of signed.slice(0, 5)) {
      assert.equal((await recoverTransactionAddress({ serializedTransaction: s.body.signedTransaction as never })).toLowerCase(), agent.address);
    }

    const seqs = new Set(signed.map((r) => r.body.auditSeq));
    assert.equal(seqs.size, 50, 'every signature has its own audit entry');
    for (const url of [a, b]) {
      const allowed = await readWholeAudit(url, data!.adminToken, `agent=${agent.name}&decision=allow&type=sign.request`);
      assert.deepEqual(new Set(allowed.map((e) => e.seq)), seqs);
      const verify = await adminClient(url, data!.adminToken)('POST', '/v1/audit/verify');
      assert.equal(verify.body.ok, true, JSON.stringify(verify.body));
    }
  });

  test('the same Idempotency-Key sent 20 times to both servers at once reserves once', async () => {
    const [a, b] = urls() as [string, string];
    const { agent, token } = await provisionRemoteAgent(a, data!.adminToken, { policy: usdcPolicy({ daily: '3000000' }) });
    const headers = { 'idempotency-key': 'retry-across-instances-1' };
    const body = usdcTransfer(ALICE, 1_000_000n, 7);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => httpJson(i % 2 ? b : a, 'POST', '/v1/sign/transaction', { token, body, headers })));
    assert.deepEqual(results.map((r) => r.status), Array(20).fill(200), JSON.stringify(results.find((r) => r.status !== 200)?.body));
    assert.equal(new Set(results.map((r) => r.body.signedTransaction as Hex)).size, 1, 'one signed transaction');
    assert.equal(new Set(results.map((r) => r.body.auditSeq)).size, 1, 'one audit entry');
    assert.equal(results.filter((r) => r.body.replayed).length, 19, 'all but the first are replays');

    const allowed = await readWholeAudit(b, data!.adminToken, `agent=${agent.name}&decision=allow&type=sign.request`);
    assert.deepEqual(allowed.map((e) => e.seq), [results[0]!.body.auditSeq]);
    // The ledger holds one use of 1 USDC: exactly the 2 USDC left still fit, and then nothing does.
    const rest = await httpJson(b, 'POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 2_000_000n, 8) });
    assert.equal(rest.status, 200, JSON.stringify(rest.body));
    const over = await httpJson(a, 'POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1n, 9) });
    assert.equal(over.status, 403);
    assert.deepEqual(
      over.body.error.violations.map((v: any) => [v.code, v.used]),
      [['budget_exceeded', '3000000']],
    );
  });

  test('a fleet-wide budget shared by 3 agents holds when they are hammered through both servers', async () => {
    const [a, b] = urls() as [string, string];
    const asset = `${BASE}/erc20:${OTHER_TOKEN}`;
    const fleetPolicy = { version: 1, rules: [{ name: 'fleet-other-daily', type: 'budget', asset, max: '30000000', window: '24h', scope: 'fleet' }] };
    const set = await adminClient(a, data!.adminToken)('PUT', '/v1/policies/fleet', { document: fleetPolicy });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    const tokens = await Promise.all(Array.from({ length: 3 }, (_, i) => provisionRemoteAgent(i % 2 ? a : b, data!.adminToken, { policy: usdcPolicy() }).then((p) => p.token)));
    const results = await Promise.all(
      Array.from({ length: 120 }, (_, i) => httpJson(i % 2 ? b : a, 'POST', '/v1/sign/transaction', { token: tokens[i % 3]!, body: otherTokenTransfer(1_000_000n, i) })),
    );
    const signed = results.filter((r) => r.status === 200 && r.body.signedTransaction);
    assert.equal(signed.length, 30, JSON.stringify(results.find((r) => r.status !== 200 && r.status !== 403)?.body));
    const denied = results.filter((r) => r.status === 403);
    assert.equal(denied.length, 90);
    assert.ok(denied.every((r) => r.body.error.violations.some((v: any) => v.rule === 'fleet/fleet-other-daily' && v.code === 'budget_exceeded')));

    const allowedSeqs = new Set((await readWholeAudit(a, data!.adminToken, 'decision=allow&type=sign.request')).filter((e) => e.data.intent.spends.some((s: any) => s.asset === asset)).map((e) => e.seq));
    assert.deepEqual(allowedSeqs, new Set(signed.map((r) => r.body.auditSeq)));
    for (const url of [a, b]) assert.equal((await adminClient(url, data!.adminToken)('POST', '/v1/audit/verify')).body.ok, true);
  });
});
