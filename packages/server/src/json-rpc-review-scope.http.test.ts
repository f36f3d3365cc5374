// The JSON-RPC endpoint and the session's scope (found by a hostile review): every call to POST /v1/rpc/{chainId},
// reads and eth_sendRawTransaction included, goes out through the operator's node for that network and its API
// key. A session whose scope names no EVM action (a Nostr bot's, a Lightning payer's) read balances and broadcast
// raw transactions through it, and a session limited to one chain did so on every configured network. Least
// privilege: the endpoint answers a session only for an EVM action and, when the session lists chains, for one of
// them; anything else is HTTP 403 with JSON-RPC error 4100 `forbidden`, recorded, before the node is asked.
// Also: typed data sent as a string that is not JSON is a bad param (-32602), not a parse error of the request.
// Driven through viem's http transport (a public client, as a wallet library would use the endpoint).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BaseError, createPublicClient, http } from 'viem';
import { ALICE, provisionAgent, startHarness, type Harness } from './testing/harness.ts';

/** A node on `chainIdHex` answering every read with 0x10, recording the methods it was asked. */
function recordingNode(chainIdHex: string): Promise<{ url: string; server: Server; asked: string[] }> {
  const asked: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const call = JSON.parse(body) as { id: number; method: string };
      if (call.method !== 'eth_chainId') asked.push(call.method);
      const result = call.method === 'eth_chainId' ? chainIdHex : call.method === 'eth_sendRawTransaction' ? `0x${'ab'.repeat(32)}` : '0x10';
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ jsonrpc: '2.0', id: call.id, result }));
    });
  });
  // The URL carries a stand-in API key: the operator's, which the endpoint spends on each forwarded call.
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v2/OPERATOR-KEY`, server, asked })));
}

/** Any signed transaction will do: the endpoint relays the bytes as they are. */
const RAW = '0x02f86b82210580843b9aca00847735940082520894111111111111111111111111111111111111111101808001a0aa00000000000000000000000000000000000000000000000000000000000001a0bb00000000000000000000000000000000000000000000000000000000000002';

describe('JSON-RPC endpoint: the session scope reaches the node only for EVM actions and listed chains', () => {
  let h: Harness;
  let base: Awaited<ReturnType<typeof recordingNode>>;
  let mainnet: Awaited<ReturnType<typeof recordingNode>>;
  before(async () => {
    base = await recordingNode('0x2105');
    mainnet = await recordingNode('0x1');
    h = await startHarness({ config: { evmRpc: { 'eip155:8453': base.url, 'eip155:1': mainnet.url } } });
  });
  after(async () => {
    await h?.close();
    base?.server.close();
    mainnet?.server.close();
  });

  const client = (token: string, chainId: number) =>
    createPublicClient({ transport: http(`http://127.0.0.1/v1/rpc/${chainId}`, { fetchFn: h.fetch, retryCount: 0, fetchOptions: { headers: { authorization: `Bearer ${token}` } } }) });
  /** What viem threw (its UnauthorizedProviderError for EIP-1193 4100): the code and the JSON-RPC error the endpoint answered with. */
  const refusal = async (p: Promise<unknown>) => {
    const e = await p.then(() => assert.fail('expected a refusal'), (err: unknown) => err);
    assert.ok(e instanceof BaseError, String(e));
    const rpc = e.walk((c) => c instanceof BaseError && c.name === 'RpcRequestError') as (BaseError & { code: number; data?: { code: string } }) | null;
    assert.ok(rpc, `a JSON-RPC error: ${e.message}`);
    return { code: (e as BaseError & { code?: number }).code, error: { code: rpc.code, message: rpc.details, data: rpc.data! } };
  };
  const forbiddenEntries = async (agent: string) => ((await h.admin('GET', `/v1/audit?agent=${agent}&type=auth.forbidden&limit=100`)).body.entries as unknown[]).length;

  test('a session with no EVM action (Nostr only) neither reads nor broadcasts through the node: 403, 4100 forbidden, recorded, the node never asked', async () => {
    const { agent, token } = await provisionAgent(h, { actions: ['nostr.event'] });
    const before = base.asked.length;
    const read = await refusal(client(token, 8453).getBalance({ address: ALICE }));
    assert.equal(read.code, 4100, 'viem: UnauthorizedProviderError');
    assert.equal(read.error.code, 4100);
    assert.equal(read.error.data.code, 'forbidden');
    assert.match(read.error.message, /no EVM action/);
    const broadcast = await refusal(client(token, 8453).sendRawTransaction({ serializedTransaction: RAW }));
    assert.equal(broadcast.error.data.code, 'forbidden');
    const bare = await h.call('POST', '/v1/rpc/8453', { token, body: { jsonrpc: '2.0', id: 3, method: 'eth_blockNumber' } });
    assert.equal(bare.status, 403, 'refused before any call is read: the REST status, a JSON-RPC body');
    assert.deepEqual([bare.body.id, bare.body.error?.code, bare.body.error?.data?.code], [null, 4100, 'forbidden']);
    assert.equal(base.asked.length, before, 'nothing reached the operator\'s node');
    assert.equal(await forbiddenEntries(agent.name), 3, 'each refusal is in the audit log');
  });

  test('a session limited to eip155:1 reads there, and is refused on eip155:8453 before the node is asked', async () => {
    const { token } = await provisionAgent(h, { chains: ['eip155:1'] });
    assert.equal(await client(token, 1).getBlockNumber({ cacheTime: 0 }), 16n, 'its own chain is served');
    const before = base.asked.length;
    const other = await refusal(client(token, 8453).getBlockNumber({ cacheTime: 0 }));
    assert.equal(other.code, 4100, 'viem: UnauthorizedProviderError');
    assert.equal(other.error.data.code, 'forbidden');
    assert.match(other.error.message, /limited to chains eip155:1; eip155:8453 is not one of them/);
    const broadcast = await refusal(client(token, 8453).sendRawTransaction({ serializedTransaction: RAW }));
    assert.equal(broadcast.error.data.code, 'forbidden');
    assert.equal(base.asked.length, before, 'nothing reached the node of the chain outside the scope');
  });

  test('a session with an EVM action and no chain list is served on every configured chain, as before', async () => {
    const { token } = await provisionAgent(h, { actions: ['evm.message'] });
    assert.equal(await client(token, 8453).getBlockNumber({ cacheTime: 0 }), 16n);
    assert.equal(await client(token, 1).getBalance({ address: ALICE }), 16n);
    assert.equal(await client(token, 8453).sendRawTransaction({ serializedTransaction: RAW }), `0x${'ab'.repeat(32)}`);
  });

  test('the guards in front of the endpoint (a Host name not allowed, a browser Origin) answer in JSON-RPC too, with their HTTP status; REST routes keep their shape', async () => {
    const { token } = await provisionAgent(h);
    const host = await h.call('POST', '/v1/rpc/8453', { token, body: { jsonrpc: '2.0', id: 1, method: 'eth_blockNumber' }, headers: { host: 'airlock.test' } });
    assert.equal(host.status, 421);
    assert.deepEqual([host.body.jsonrpc, host.body.id, host.body.error?.code, host.body.error?.data?.code], ['2.0', null, 4100, 'host_not_allowed'], JSON.stringify(host.body));
    const origin = await h.call('POST', '/v1/rpc/8453', { token, body: { jsonrpc: '2.0', id: 1, method: 'eth_blockNumber' }, headers: { origin: 'https://evil.example' } });
    assert.equal(origin.status, 403);
    assert.deepEqual([origin.body.jsonrpc, origin.body.error?.data?.code], ['2.0', 'origin_not_allowed'], JSON.stringify(origin.body));
    const rest = await h.call('GET', '/v1/session', { token, headers: { host: 'airlock.test' } });
    assert.deepEqual([rest.status, rest.body.error?.code, rest.body.jsonrpc], [421, 'host_not_allowed', undefined]);
  });

  test('typed data sent as a string that is not JSON (or hostile JSON) is -32602 invalid params with the code, not -32700', async () => {
    const { agent, token } = await provisionAgent(h);
    const sign = (typedData: string) => h.call('POST', '/v1/rpc/8453', { token, body: { jsonrpc: '2.0', id: 1, method: 'eth_signTypedData_v4', params: [agent.address, typedData] } });
    const notJson = await sign('{"domain":');
    assert.equal(notJson.status, 200);
    assert.equal(notJson.body.error.code, -32602, JSON.stringify(notJson.body));
    assert.equal(notJson.body.error.data.code, 'invalid_json');
    const hostile = await sign('{"__proto__":{"x":1}}');
    assert.equal(hostile.body.error.code, -32602, JSON.stringify(hostile.body));
    assert.equal(hostile.body.error.data.code, 'forbidden_json_key');
    // A body that is not JSON is still the parse error JSON-RPC names.
    const body = await h.call('POST', '/v1/rpc/8453', { token, raw: '{"jsonrpc":' });
    assert.equal(body.body.error.code, -32700);
  });
});
