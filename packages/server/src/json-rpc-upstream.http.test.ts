// The JSON-RPC endpoint against its upstream node, driven through the HTTP API with a scripted node (found by a
// hostile review):
// - a node answer is read up to a cap, and one request relays at most a bounded total: two 48 MiB eth_getLogs
//   answers grew the daemon by 774 MiB, and a batch of 100 (one request against the agent's rate) would have
//   ended it for every agent;
// - each network checks its own node's chain id, even when two networks are configured with one URL: the node was
//   cached by URL, so the second network skipped the check and answered (and filled and broadcast) on the
//   first's chain.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { UPSTREAM_MAX_ANSWER_BYTES, UPSTREAM_MAX_BATCH_ANSWER_BYTES } from './http/json-rpc-upstream.ts';
import { ALICE, provisionAgent, startHarness, type Harness } from './testing/harness.ts';

type Answer = { result?: unknown; error?: unknown } | string;

/** A node on `chainIdHex` answering each method with what `handlers` say (a string is sent as the raw body). */
function scriptedNode(chainIdHex: string, handlers: Record<string, (params: unknown) => Answer>): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const call = JSON.parse(body) as { id: number; method: string; params: unknown };
      const handler = call.method === 'eth_chainId' ? () => ({ result: chainIdHex }) : handlers[call.method];
      const out = handler ? handler(call.params) : { error: { code: -32601, message: 'method not found' } };
      res.setHeader('content-type', 'application/json');
      res.end(typeof out === 'string' ? out : JSON.stringify({ jsonrpc: '2.0', id: call.id, ...out }));
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, server })));
}

/** A JSON-RPC answer whose `result` is an array of logs about `bytes` long. */
function logsAnswer(bytes: number): string {
  const log = JSON.stringify({ address: ALICE, topics: [], data: `0x${'ab'.repeat(4000)}` });
  return `{"jsonrpc":"2.0","id":1,"result":[${Array(Math.ceil(bytes / (log.length + 1))).fill(log).join(',')}]}`;
}

const MIB = 1024 * 1024;
const policy = { version: 1, rules: [{ name: 'reads', type: 'allow', match: { actions: ['evm.message'] } }] };

describe('JSON-RPC endpoint: what it takes from its upstream node', () => {
  let h: Harness;
  let logs: Awaited<ReturnType<typeof scriptedNode>>;
  let base: Awaited<ReturnType<typeof scriptedNode>>;
  let flood: Awaited<ReturnType<typeof scriptedNode>>;
  before(async () => {
    // Chain 10: eth_getLogs answers as large as the block range asks (the params say how large, for the test).
    logs = await scriptedNode('0xa', { eth_getLogs: (params) => logsAnswer(Number((params as [{ bytes: number }])[0].bytes)), eth_blockNumber: () => ({ result: '0x10' }) });
    // A node on chain 8453, configured for 8453 and (a slip, or a multi-network proxy) for chain 1 too.
    base = await scriptedNode('0x2105', {
      eth_getTransactionCount: () => ({ result: '0x5' }),
      eth_estimateGas: () => ({ result: '0x5208' }),
      eth_getBlockByNumber: () => ({ result: { baseFeePerGas: '0x3b9aca00' } }),
      eth_maxPriorityFeePerGas: () => ({ result: '0x1' }),
      // The broadcast always fails (a lying or unlucky node): the signature was released all the same.
      eth_sendRawTransaction: () => ({ error: { code: -32000, message: 'insufficient funds for gas * price + value' } }),
      eth_getTransactionByHash: () => ({ result: null }),
    });
    // A node on chain 5 whose every answer is larger than the cap (its nonce answer included).
    flood = await scriptedNode('0x5', { eth_getTransactionCount: () => logsAnswer(UPSTREAM_MAX_ANSWER_BYTES + MIB) });
    h = await startHarness({ config: { evmRpc: { 'eip155:10': logs.url, 'eip155:8453': base.url, 'eip155:1': base.url, 'eip155:5': flood.url } } });
  });
  after(async () => {
    await h?.close();
    logs?.server.close();
    base?.server.close();
    flood?.server.close();
  });

  const rpc = (token: string, chainId: number, body: unknown, headers: Record<string, string> = {}) => h.call('POST', `/v1/rpc/${chainId}`, { token, body, headers });
  const entries = async (agent: string, type: string) => (await h.admin('GET', `/v1/audit?agent=${agent}&type=${type}&limit=100`)).body.entries as { decision?: string }[];
  const getLogs = (id: number, bytes: number) => ({ jsonrpc: '2.0', id, method: 'eth_getLogs', params: [{ fromBlock: '0x0', toBlock: 'latest', bytes }] });

  test('an answer larger than the cap is refused (upstream_answer_too_large), not relayed; one within it is', async () => {
    const { token } = await provisionAgent(h, { policy });
    const small = await rpc(token, 10, getLogs(1, MIB));
    assert.ok(Array.isArray(small.body.result) && small.body.result.length > 0, JSON.stringify(small.body).slice(0, 200));
    const big = await rpc(token, 10, getLogs(2, UPSTREAM_MAX_ANSWER_BYTES + MIB));
    assert.equal(big.body.error?.code, -32005, JSON.stringify(big.body).slice(0, 300));
    assert.equal(big.body.error.data.code, 'upstream_answer_too_large');
    assert.equal(big.body.error.data.limitBytes, UPSTREAM_MAX_ANSWER_BYTES);
    assert.equal(big.body.result, undefined);
    // The daemon goes on answering.
    assert.equal((await rpc(token, 10, { jsonrpc: '2.0', id: 3, method: 'eth_blockNumber', params: [] })).body.result, '0x10');
  });

  test('a batch relays at most the batch cap in total: the calls past it are refused, the answer stays bounded', async () => {
    const { token } = await provisionAgent(h, { policy });
    const each = 6 * MIB;
    const res = await rpc(token, 10, [1, 2, 3, 4, 5].map((id) => getLogs(id, each)));
    assert.equal(res.status, 200);
    const answers = res.body as { id: number; result?: unknown[]; error?: { data?: { code?: string } } }[];
    const relayed = answers.filter((a) => a.result !== undefined).length;
    assert.equal(relayed, Math.floor(UPSTREAM_MAX_BATCH_ANSWER_BYTES / (each + 64 * 1024)), 'as many as fit the batch cap');
    for (const a of answers.filter((x) => x.result === undefined)) assert.equal(a.error?.data?.code, 'upstream_answer_too_large');
    assert.ok(JSON.stringify(res.body).length < UPSTREAM_MAX_BATCH_ANSWER_BYTES + MIB, 'the whole answer is bounded');
  });

  test('two networks configured with one URL: each checks the chain id of the node; the other network is refused, not answered from the wrong chain', async () => {
    const { token } = await provisionAgent(h, { policy });
    const right = await rpc(token, 8453, { jsonrpc: '2.0', id: 1, method: 'eth_getTransactionCount', params: [ALICE, 'latest'] });
    assert.equal(right.body.result, '0x5');
    const wrong = await rpc(token, 1, { jsonrpc: '2.0', id: 2, method: 'eth_getTransactionCount', params: [ALICE, 'latest'] });
    assert.equal(wrong.body.error?.data?.code, 'upstream_chain_mismatch', JSON.stringify(wrong.body));
  });

  // A compromised agent (or an unlucky one) behind a node that fills fields, fails broadcasts or floods answers.
  const ETH = 'eip155:8453/slip44:60';
  const ethPolicy = (chain: string) => ({ version: 1, rules: [
    { name: 'eth-to-alice', type: 'allow', match: { chains: [chain], kinds: ['native.transfer'], to: [ALICE] } },
    { name: 'eth-daily', type: 'budget', asset: `${chain}/slip44:60`, max: '10000000000000000000', window: '24h' },
  ] });

  test('eth_sendTransaction whose broadcast fails: charged once, audited allow; the same Idempotency-Key replays the same bytes (no second charge)', async () => {
    const { agent, token } = await provisionAgent(h, { policy: ethPolicy('eip155:8453') });
    const tx = { from: agent.address, to: ALICE, value: '0x1' };
    const send = () => rpc(token, 8453, { jsonrpc: '2.0', id: 1, method: 'eth_sendTransaction', params: [tx] }, { 'idempotency-key': 'pay-1' });
    const first = await send();
    assert.equal(first.body.error?.data?.code, 'broadcast_failed', JSON.stringify(first.body));
    const charged = (await h.airlock.store.transaction((tx) => tx.windowTotals([{ series: `agent:${agent.id}`, asset: ETH, sinceMs: 0 }])))[0]!.amount;
    const again = await send();
    assert.equal(again.body.error?.data?.transactionHash, first.body.error.data.transactionHash, 'a byte-identical replay');
    assert.deepEqual((await entries(agent.name, 'sign.request')).map((e) => e.decision), ['allow']);
    assert.equal((await entries(agent.name, 'sign.replay')).length, 1);
    const after = (await h.airlock.store.transaction((tx) => tx.windowTotals([{ series: `agent:${agent.id}`, asset: ETH, sinceMs: 0 }])))[0]!.amount;
    assert.equal(after, charged, 'the replay charged nothing more');
    assert.ok(charged > 1n, 'charged value + gas x max fee of what was signed');
  });

  test('eth_sendTransaction behind a node whose nonce answer is past the cap: refused, nothing signed, charged or allowed', async () => {
    const { agent, token } = await provisionAgent(h, { policy: ethPolicy('eip155:5') });
    const res = await rpc(token, 5, { jsonrpc: '2.0', id: 1, method: 'eth_sendTransaction', params: [{ from: agent.address, to: ALICE, value: '0x1' }] });
    assert.equal(res.body.error?.data?.code, 'upstream_answer_too_large', JSON.stringify(res.body).slice(0, 300));
    assert.equal(res.body.result, undefined);
    assert.deepEqual((await entries(agent.name, 'sign.request')).filter((e) => e.decision === 'allow'), []);
    const used = (await h.airlock.store.transaction((tx) => tx.windowTotals([{ series: `agent:${agent.id}`, asset: 'eip155:5/slip44:60', sinceMs: 0 }])))[0]!.amount;
    assert.equal(used, 0n);
  });
});
