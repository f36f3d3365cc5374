// A COMMIT whose answer never comes back, through the HTTP API on PostgreSQL: the daemon cannot know whether the
// signing transaction was recorded. A proxy on the store connection (testing/pg-fault-proxy.ts) cuts the line
// either after PostgreSQL committed (answer lost) or before the COMMIT reached it. In both cases the agent gets a
// 503 that says so and no signature; sending the same request again then yields exactly one charged signature:
// a replay of the recorded one, or the first signature if nothing was recorded.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { recoverTransactionAddress, recoverTypedDataAddress, type TransactionSerialized } from 'viem';
import { startPgFaultProxy, type CommitFault, type PgFaultProxy } from './testing/pg-fault-proxy.ts';
import { ALICE, PG_URL, USDC_ASSET, provisionAgent, startHarness, usdcAuthorization, usdcPolicy, usdcTransfer, type Harness } from './testing/harness.ts';

const AMOUNT = 1_000_000n;

describe('a lost COMMIT answer on PostgreSQL, through HTTP', () => {
  let proxy: PgFaultProxy;
  let h: Harness;

  before(async () => {
    const target = new URL(PG_URL);
    proxy = await startPgFaultProxy({ host: target.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(target.port || 5432) });
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

  /**
   * Sends `request` with the next COMMIT armed to meet `fault`. The answer is checked first: if the product sent
   * no COMMIT the proxy recognises (or answered success), the test fails here instead of waiting for the fault.
   */
  async function withFault(fault: CommitFault, request: () => Promise<{ status: number; body: any }>) {
    const met = proxy.armNextCommit(fault);
    const within = <T,>(p: Promise<T>, ms: number, what: string) =>
      Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(what)), ms).unref())]);
    try {
      const res = await within(request(), 30_000, 'no answer within 30 s (the daemon waits for the store forever?)');
      assertInDoubt(res);
      await within(met, 5_000, 'the armed COMMIT fault was never met');
      return res;
    } finally {
      proxy.disarm();
    }
  }

  function assertInDoubt(res: { status: number; body: any }) {
    assert.equal(res.status, 503, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'store_unavailable');
    assert.match(res.body.error.message, /may or may not have been recorded/);
    assert.equal(res.body.signedTransaction, undefined);
  }

  test('committed, answer lost: 503 and no signature; the retry under the same Idempotency-Key replays one charged signature', async () => {
    const { agent, token } = await provisionAgent(h, { policy: usdcPolicy() });
    const key = { 'idempotency-key': 'order-1' };
    await withFault('lose-answer', () => sign(token, 0, key));
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
    const first = await withFault('lose-answer', () => signAuthorization(AMOUNT));
    assert.equal(first.body.signature, undefined);
    assert.deepEqual(await charged(agent.id), { amount: AMOUNT, count: 1 });
    const retry = await signAuthorization(AMOUNT);
    assert.equal(retry.status, 200, JSON.stringify(retry.body));
    assert.equal(retry.body.replayed, true);
    assert.equal((await recoverTypedDataAddress({ ...authorization(AMOUNT).typedData, signature: retry.body.signature } as any)).toLowerCase(), agent.address.toLowerCase());
    assert.equal((await signAuthorization(AMOUNT)).body.signature, retry.body.signature, 'a replay is byte-identical');
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
    await withFault('drop-before', () => sign(token, 0, key));
    assert.deepEqual(await charged(agent.id), { amount: 0n, count: 0 });
    assert.equal((await entries(agent.name, 'sign.request')).length, 0);

    const retry = await sign(token, 0, key);
    assert.equal(retry.status, 200, JSON.stringify(retry.body));
    assert.equal(retry.body.replayed, undefined);
    assert.deepEqual(await charged(agent.id), { amount: AMOUNT, count: 1 });
    assert.equal((await entries(agent.name, 'sign.request')).length, 1);
  });
});
