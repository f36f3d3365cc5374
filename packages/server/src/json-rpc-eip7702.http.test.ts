// EIP-7702 (type-4) transactions through the JSON-RPC endpoint, filled from a scripted upstream node. Found by
// review: the fill was not 7702-aware. Without an explicit `type` it stamped `type: 0x2` on a transaction carrying
// an `authorizationList` (then refused as undecodable, for a field the caller never set), and eth_estimateGas was
// asked without the authorizationList: the 25,000 intrinsic gas of each authorization was missing, so the node
// refused the broadcast while the signature was released and charged all the same. The fill now defaults to
// `0x4` when an authorizationList is present and estimates gas with it; the delegations rules judge each
// authorization as on POST /v1/sign/transaction. Over HTTP on both stores.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseTransaction, type Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { ALICE, provisionAgent, startHarness, type Harness, type StoreKind } from './testing/harness.ts';

const DELEGATE = '0xe6cae83bde06e4c305530e199d7217f42808555b';
const ATTACKER_DELEGATE = '0x6666666666666666666666666666666666666666';
const OTHER = privateKeyToAccount(`0x${'42'.repeat(32)}`);
const PER_AUTHORIZATION_GAS = 25_000n;

type Call = { method: string; params: unknown };

/** A node on Base that estimates as a Prague node does: 21,000 plus 25,000 per authorization it is shown. */
function scriptedNode(seen: Call[]): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const call = JSON.parse(body) as { id: number; method: string; params: unknown };
      seen.push({ method: call.method, params: call.params });
      let out: { result?: unknown; error?: unknown };
      switch (call.method) {
        case 'eth_chainId': out = { result: '0x2105' }; break;
        case 'eth_getTransactionCount': out = { result: '0x0' }; break;
        case 'eth_estimateGas': {
          const list = (call.params as [{ authorizationList?: unknown[] }])[0].authorizationList ?? [];
          out = { result: `0x${(21_000n + PER_AUTHORIZATION_GAS * BigInt(list.length)).toString(16)}` };
          break;
        }
        case 'eth_getBlockByNumber': out = { result: { baseFeePerGas: '0x3b9aca00' } }; break;
        case 'eth_maxPriorityFeePerGas': out = { result: '0x1' }; break;
        default: out = { error: { code: -32601, message: 'method not found' } };
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ jsonrpc: '2.0', id: call.id, ...out }));
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, server })));
}

const policy = {
  version: 1,
  rules: [
    { name: 'relay', type: 'allow', match: { actions: ['evm.transaction'], kinds: ['native.transfer'], to: [ALICE] } },
    { name: 'simple7702', type: 'delegations', allow: [DELEGATE] },
  ],
};

async function authorizationList(delegate: string, count = 1) {
  const out = [];
  for (let nonce = 0; nonce < count; nonce++) {
    const auth = await OTHER.signAuthorization({ contractAddress: delegate as Hex, chainId: 8453, nonce });
    out.push({ address: delegate, chainId: '0x2105', nonce: `0x${nonce.toString(16)}`, r: auth.r, s: auth.s, yParity: `0x${auth.yParity}` });
  }
  return out;
}

for (const store of ['sqlite', 'postgres'] as StoreKind[]) describe(`JSON-RPC eth_signTransaction fills EIP-7702 transactions (${store})`, () => {
  let h: Harness;
  let node: Awaited<ReturnType<typeof scriptedNode>>;
  const seen: Call[] = [];
  before(async () => {
    node = await scriptedNode(seen);
    h = await startHarness({ store, config: { evmRpc: { 'eip155:8453': node.url } } });
  });
  after(async () => {
    await h?.close();
    node?.server.close();
  });

  async function setup() {
    const { agent, token } = await provisionAgent(h, { policy });
    const sign = (tx: Record<string, unknown>) =>
      h.call('POST', '/v1/rpc/8453', { token, body: { jsonrpc: '2.0', id: 1, method: 'eth_signTransaction', params: [{ from: agent.address, to: ALICE, value: '0x0', ...tx }] } });
    return { sign };
  }

  test('without a type, a transaction with an authorizationList is filled as type 0x4 and signed, gas estimated with the list (25,000 per authorization)', async () => {
    const { sign } = await setup();
    seen.length = 0;
    const list = await authorizationList(DELEGATE, 2);
    const res = await sign({ authorizationList: list });
    assert.equal(res.body.error, undefined, `refused: ${JSON.stringify(res.body.error)}`);
    const tx = parseTransaction(res.body.result);
    assert.equal(tx.type, 'eip7702');
    assert.equal(tx.authorizationList?.length, 2);
    const estimate = seen.find((s) => s.method === 'eth_estimateGas');
    assert.ok(estimate, 'gas was estimated');
    assert.deepEqual((estimate.params as [{ authorizationList?: unknown }])[0].authorizationList, list, `eth_estimateGas was asked ${JSON.stringify(estimate.params)}`);
    assert.equal(tx.gas, 21_000n + 2n * PER_AUTHORIZATION_GAS);
  });

  test('an explicit type 0x4 is signed with the same estimate', async () => {
    const { sign } = await setup();
    seen.length = 0;
    const res = await sign({ type: '0x4', authorizationList: await authorizationList(DELEGATE) });
    assert.equal(res.body.error, undefined, `refused: ${JSON.stringify(res.body.error)}`);
    const tx = parseTransaction(res.body.result);
    assert.equal(tx.type, 'eip7702');
    assert.equal(tx.gas, 21_000n + PER_AUTHORIZATION_GAS);
  });

  test('a transaction without an authorizationList still defaults to type 0x2, estimated as before', async () => {
    const { sign } = await setup();
    const res = await sign({});
    assert.equal(res.body.error, undefined, `refused: ${JSON.stringify(res.body.error)}`);
    const tx = parseTransaction(res.body.result);
    assert.equal(tx.type, 'eip1559');
    assert.equal(tx.gas, 21_000n);
  });

  test('an authorization to a delegate the delegations rule does not list is refused -32010 delegate_not_allowed', async () => {
    const { sign } = await setup();
    const res = await sign({ authorizationList: await authorizationList(ATTACKER_DELEGATE) });
    assert.equal(res.body.result, undefined);
    assert.equal(res.body.error.code, -32010, JSON.stringify(res.body.error).slice(0, 300));
    assert.equal(res.body.error.data.code, 'policy_denied');
    assert.deepEqual(res.body.error.data.violations.map((v: any) => [v.rule, v.code]), [['agent/simple7702', 'delegate_not_allowed']]);
  });
});
