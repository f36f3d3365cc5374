// eth_signTransaction's `type` as wallets spell it. The JSON-RPC spec types it as a byte, so '0x02' is as valid as
// '0x2'. Found by review (LOW, interop): the endpoint filled '0x00' as legacy but the decoder knew only '0x0', '0x1',
// '0x2', '0x4' and names, so '0x00' and '0x02' were refused "transaction.type must be …" while '0x0' and '0x2'
// signed. Now a numeric type is read by its value (and each signed transaction parsed by viem is of that type);
// types Airlock does not sign are still refused with the decoder's error.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseTransaction, recoverTransactionAddress, type Hex } from 'viem';
import { ALICE, provisionAgent, startHarness, type Harness } from './testing/harness.ts';

const policy = { version: 1, rules: [{ name: 'eth-to-alice', type: 'allow', match: { kinds: ['native.transfer'], to: [ALICE] } }] };
const LEGACY_FEES = { gasPrice: '0x3b9aca00' };
const EIP1559_FEES = { maxFeePerGas: '0x3b9aca00', maxPriorityFeePerGas: '0x1' };
const NODE_GAS_PRICE = 0x4a817c800n;
const NODE_BASE_FEE = 0x3b9aca00n;
const NODE_PRIORITY_FEE = 0x2n;

/** A node on Base answering the calls the endpoint fills a transaction with. */
function fillingNode(): Promise<{ url: string; server: Server }> {
  const answers: Record<string, unknown> = {
    eth_chainId: '0x2105',
    eth_getTransactionCount: '0x0',
    eth_estimateGas: '0x5208',
    eth_gasPrice: `0x${NODE_GAS_PRICE.toString(16)}`,
    eth_getBlockByNumber: { baseFeePerGas: `0x${NODE_BASE_FEE.toString(16)}` },
    eth_maxPriorityFeePerGas: `0x${NODE_PRIORITY_FEE.toString(16)}`,
  };
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const call = JSON.parse(body) as { id: number; method: string };
      const out = call.method in answers ? { result: answers[call.method] } : { error: { code: -32601, message: 'method not found' } };
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ jsonrpc: '2.0', id: call.id, ...out }));
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, server })));
}

describe('JSON-RPC eth_signTransaction: a zero-padded type is the type it names', () => {
  let h: Harness;
  let node: Awaited<ReturnType<typeof fillingNode>>;
  let agent: { address: string };
  let token: string;
  let nonce = 0;
  before(async () => {
    node = await fillingNode();
    h = await startHarness({ store: 'sqlite', config: { evmRpc: { 'eip155:8453': node.url } } });
    ({ agent, token } = await provisionAgent(h, { policy, actions: ['evm.transaction'] }));
  });
  after(async () => {
    await h?.close();
    node?.server.close();
  });

  const sign = (tx: Record<string, unknown>) =>
    h.call('POST', '/v1/rpc/8453', { token, body: { jsonrpc: '2.0', id: 1, method: 'eth_signTransaction', params: [{ from: agent.address, to: ALICE, value: '0x1', gas: '0x5208', nonce: `0x${(nonce++).toString(16)}`, ...tx }] } });
  async function signed(tx: Record<string, unknown>) {
    const res = await sign(tx);
    assert.equal(res.body.error, undefined, `type ${String(tx.type)}: ${JSON.stringify(res.body)}`);
    const raw = res.body.result as Hex;
    assert.equal((await recoverTransactionAddress({ serializedTransaction: raw as never })).toLowerCase(), agent.address.toLowerCase());
    return parseTransaction(raw);
  }

  test("'0x00', '0x01' and '0x02' sign as legacy, EIP-2930 and EIP-1559 transactions, as '0x0', '0x1' and '0x2' do", async () => {
    const cases = [
      ['0x0', LEGACY_FEES, 'legacy'], ['0x00', LEGACY_FEES, 'legacy'],
      ['0x1', LEGACY_FEES, 'eip2930'], ['0x01', LEGACY_FEES, 'eip2930'],
      ['0x2', EIP1559_FEES, 'eip1559'], ['0x02', EIP1559_FEES, 'eip1559'],
    ] as const;
    for (const [type, fees, expected] of cases) {
      const tx = await signed({ type, ...fees });
      assert.equal(tx.type, expected, `type ${type}`);
      assert.equal(tx.chainId, 8453);
      assert.equal(tx.to, ALICE);
      assert.equal(tx.value, 1n);
    }
  });

  test("fees left out are filled for the type a padded spelling names: '0x00' gets the node's gas price, '0x02' EIP-1559 fees", async () => {
    const legacy = await signed({ type: '0x00' });
    assert.equal(legacy.type, 'legacy');
    assert.equal(legacy.gasPrice, NODE_GAS_PRICE);
    const eip1559 = await signed({ type: '0x02' });
    assert.equal(eip1559.type, 'eip1559');
    assert.equal(eip1559.maxPriorityFeePerGas, NODE_PRIORITY_FEE);
    assert.equal(eip1559.maxFeePerGas, 2n * NODE_BASE_FEE + NODE_PRIORITY_FEE);
  });

  test("an EIP-2930 transaction ('0x1', '0x01', 'eip2930') without fees gets the node's gas price, as type 0 does", async () => {
    // Found by review: filled with EIP-1559 fees, then refused "maxFeePerGas is not allowed on an eip2930 transaction".
    for (const type of ['0x1', '0x01', 'eip2930']) {
      const tx = await signed({ type });
      assert.equal(tx.type, 'eip2930', type);
      assert.equal(tx.gasPrice, NODE_GAS_PRICE, type);
    }
  });

  test("types Airlock does not sign are still refused, however spelled: blobs ('0x03') undecodable_payload, unknown ('0x05', '0x') invalid_request", async () => {
    const refusal = async (type: string) => {
      const res = await sign({ type, ...EIP1559_FEES });
      assert.equal(res.body.result, undefined, `type ${type}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, -32602);
      return { code: res.body.error.data.code, message: res.body.error.message };
    };
    for (const type of ['0x3', '0x03']) {
      const r = await refusal(type);
      assert.equal(r.code, 'undecodable_payload', type);
      assert.match(r.message, /blob \(eip4844\) transactions are not supported/);
    }
    for (const type of ['0x05', '0x5', '0x', '0x102', 'toString', 'constructor']) {
      const r = await refusal(type);
      assert.equal(r.code, 'invalid_request', type);
      assert.match(r.message, /transaction\.type must be/);
    }
  });

  test("POST /v1/sign/transaction reads a padded type alike: '0x02' signs an EIP-1559 transaction", async () => {
    const body = { chainId: 8453, transaction: { type: '0x02', to: ALICE, value: '1', nonce: nonce++, gas: '21000', maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1' } };
    const res = await h.call('POST', '/v1/sign/transaction', { token, body });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(parseTransaction(res.body.signedTransaction as Hex).type, 'eip1559');
  });
});
