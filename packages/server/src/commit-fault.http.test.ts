// A COMMIT whose answer never comes back, through the HTTP API on PostgreSQL: the daemon cannot know whether the
// signing transaction was recorded. A proxy on the store connection (testing/pg-fault-proxy.ts) cuts the line
// either after PostgreSQL committed (answer lost) or before the COMMIT reached it. In both cases the agent gets a
// 503 that says so and no signature; sending the same request again then yields exactly one charged signature:
// a replay of the recorded one, or the first signature if nothing was recorded.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { recoverTransactionAddress, type TransactionSerialized } from 'viem';
import { startPgFaultProxy, type PgFaultProxy } from './testing/pg-fault-proxy.ts';
import { ALICE, PG_URL, USDC_ASSET, provisionAgent, startHarness, usdcAuthorization, usdcPolicy, usdcTransfer, type Harness } from './testing/harness.ts';

const AMOUNT = 1_000_000n;

describe('a lost COMMIT answer on PostgreSQL, through HTTP', () => {
  let proxy: PgFaultProxy;
  let h: Harness;

  before(async () => {
    const target = new URL(PG_URL);
    proxy = await startPgFaultProxy({ host: target.hostname, port: Number(target.port || 5432) });
    h = await startHarness({ store: 'postgres', pgVia: proxy.hostPort });
  });
  after(async () => {
    await h?.close();
    await proxy?.close();
  });

  const charged = async (agentId: string) => (await h.airlock.store.transaction((tx) => tx.windowTotals([{ series: `agent:${agentId}`, asset: USDC_ASSET, sinceMs: 0 }])))[0]!;
  const entries = async (agentName: string, type: string) => (await h.admin('GET', `/v1/audit?agent=${agentName}&type=${type}&limit=100`)).body.entries as any[];
  const sign = (token: string, nonce: number, headers: Record<string, string> = {}) =>
    h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, AMOUNT, nonce), headers });

  function assertInDoubt(res: { status: number; body: any }) {
    assert.equal(res.status, 503, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'store_unavailable');
    assert.match(res.body.error.message, /may or may not have been recorded/);
    assert.equal(res.body.signedTransaction, undefined);
  }

  test('committed, answer lost: 503 and no signature; the retry under the same Idempotency-Key replays one charged signature', async () => {
    const { agent, token } = await provisionAgent(h, { policy: usdcPolicy() });
    const key = { 'idempotency-key': 'order-1' };
    const fault = proxy.armNextCommit('lose-answer');
    const first = await sign(token, 0, key);
    await fault;
    assertInDoubt(first);
    // It was recorded: charged and audited, though nothing was released.
    assert.deepEqual(await charged(agent.id), { amount: AMOUNT, count: 1 });
    assert.equal((await entries(agent.name, 'sign.request')).length, 1);

    const retry = await sign(token, 0, key);
    assert.equal(retry.status, 200, JSON.stringify(retry.body));
    assert.equal(retry.body.replayed, true);
    assert.equal((await recoverTransactionAddress({ serializedTransaction: retry.body.signedTransaction as TransactionSerialized })).toLowerCase(), agent.address.toLowerCase());
    const again = await sign(token, 0, key);
    assert.equal(again.body.signedTransaction, retry.body.signedTransaction, 'a replay is byte-identical');
    assert.deepEqual(await charged(agent.id), { amount: AMOUNT, count: 1 });
    assert.equal((await entries(agent.name, 'sign.request')).length, 1);
    assert.equal((await entries(agent.name, 'sign.replay')).length, 2);
  });

  // An x402 payment is an EIP-3009 authorization: its nonce is claimed by the digest it was signed over, so the
  // byte-identical authorization sent again is a replay even without a key. (A plain transaction's nonce is not
  // claimed, docs/api.md: without a key its retry is a new request, charged again.)
  test('committed, answer lost, an authorization retried without an Idempotency-Key: a replay, not a second charge', async () => {
    const { agent, token } = await provisionAgent(h, { policy: usdcPolicy() });
    const validBefore = Math.floor(Date.now() / 1000) + 3600;
    const authorization = (value: bigint) => usdcAuthorization(agent.address, ALICE, value, validBefore, `0x${'07'.repeat(32)}`);
    const signAuthorization = (value: bigint) => h.call('POST', '/v1/sign/typed-data', { token, body: authorization(value) });
    const fault = proxy.armNextCommit('lose-answer');
    const first = await signAuthorization(AMOUNT);
    await fault;
    assertInDoubt(first);
    assert.equal(first.body.signature, undefined);
    assert.deepEqual(await charged(agent.id), { amount: AMOUNT, count: 1 });
    const retry = await signAuthorization(AMOUNT);
    assert.equal(retry.status, 200, JSON.stringify(retry.body));
    assert.equal(retry.body.replayed, true);
    assert.deepEqual(await charged(agent.id), { amount: AMOUNT, count: 1 });
    // Another authorization over that nonce is refused before signing.
    const other = await signAuthorization(AMOUNT + 1n);
    assert.equal(other.status, 409, JSON.stringify(other.body));
    assert.equal(other.body.error.code, 'nonce_reused');
    assert.equal(other.body.signature, undefined);
    assert.deepEqual(await charged(agent.id), { amount: AMOUNT, count: 1 });
  });

  test('cut before the COMMIT reached PostgreSQL: 503, nothing recorded; the retry is signed and charged once', async () => {
    const { agent, token } = await provisionAgent(h, { policy: usdcPolicy() });
    const key = { 'idempotency-key': 'order-2' };
    const fault = proxy.armNextCommit('drop-before');
    const first = await sign(token, 0, key);
    await fault;
    assertInDoubt(first);
    assert.deepEqual(await charged(agent.id), { amount: 0n, count: 0 });
    assert.equal((await entries(agent.name, 'sign.request')).length, 0);

    const retry = await sign(token, 0, key);
    assert.equal(retry.status, 200, JSON.stringify(retry.body));
    assert.equal(retry.body.replayed, undefined);
    assert.deepEqual(await charged(agent.id), { amount: AMOUNT, count: 1 });
    assert.equal((await entries(agent.name, 'sign.request')).length, 1);
  });
});
