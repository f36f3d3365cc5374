// send_transfer after Airlock has signed, driven through the official MCP client (in memory) against a stand-in
// Airlock and a stand-in RPC that loses its reply to the broadcast, never mines, or fails the receipt read.
// Found by review: such a failure was a plain `chain_error` ("nothing sent", says docs/mcp.md), so a model retried
// and a second transfer was signed and sent; and the receipt wait alone (60 s) outlasted the MCP client's default
// request timeout, so the model never read the answer at all.
import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { keccak256, parseTransaction, type Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { DEFAULT_REQUEST_TIMEOUT_MSEC } from '@modelcontextprotocol/sdk/shared/protocol.js';
import { DEFAULT_TOOL_TIMEOUT_MS, McpConfigError, readMcpConfig, TOOL_TIMEOUT_ENV, type McpConfig } from './index.ts';
import { withInMemoryClient } from './testing/in-memory-client.ts';
import { answerFailure, bodyOf, listen } from './testing/http-stand-in.ts';

const TOKEN = `ses_0123456789abcdef.${'A'.repeat(43)}`;
// The stand-in Airlock signs with the agent's key: the SDK checks the signed transaction it is given.
const agentKey = privateKeyToAccount(`0x${'09'.repeat(32)}`);
const TO = '0x3333333333333333333333333333333333333333';
const ONE_ETH = '1000000000000000000';

/** How the stand-in RPC misbehaves. */
type RpcMode = 'never-mines' | 'loses-broadcast-reply' | 'receipt-read-fails' | 'slow-before-signing';

describe('send_transfer: after Airlock signed, the answer carries the hash, the nonce and whether it was sent', () => {
  let airlock: Server;
  let rpc: Server;
  let airlockUrl: string;
  let rpcUrl: string;
  let mode: RpcMode = 'never-mines';
  let signedByAirlock = 0;
  let broadcast: Hex[] = [];
  /** When the stand-in RPC was asked whether the transaction is known (epoch ms). */
  let transactionReads: number[] = [];

  before(async () => {
    airlock = createServer((req, res) => {
      void (async () => {
        res.setHeader('content-type', 'application/json');
        if (req.url === '/v1/session') return res.end(JSON.stringify({ agent: { address: agentKey.address } }));
        if (req.url === '/v1/sign/transaction') {
          const { transaction: t } = await bodyOf(req);
          signedByAirlock++;
          const tx: any = { ...t, chainId: Number(t.chainId), nonce: Number(t.nonce) };
          for (const k of ['value', 'gas', 'gasPrice', 'maxFeePerGas', 'maxPriorityFeePerGas']) if (tx[k] !== undefined) tx[k] = BigInt(tx[k]);
          return res.end(JSON.stringify({ signature: '0x', signedTransaction: await agentKey.signTransaction(tx) }));
        }
        res.statusCode = 404;
        res.end(JSON.stringify({ error: { code: 'not_found', message: 'not found' } }));
      })().catch(answerFailure(res));
    });
    rpc = createServer((req, res) => {
      void (async () => {
        const { id, method, params } = await bodyOf(req);
        const answer = (body: object) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id, ...body }));
        const ok = (result: unknown) => answer({ result });
        switch (method) {
          case 'eth_chainId':
            return ok('0x7a69');
          case 'eth_getTransactionCount':
            return ok('0x7');
          case 'eth_getBlockByNumber':
            return ok({ number: '0x1', hash: `0x${'00'.repeat(32)}`, timestamp: '0x1', baseFeePerGas: '0x1', gasLimit: '0x1c9c380', gasUsed: '0x0', transactions: [] });
          case 'eth_maxPriorityFeePerGas':
            return ok('0x1');
          case 'eth_gasPrice':
            return ok('0x2');
          case 'eth_estimateGas':
            if (mode === 'slow-before-signing') return; // never answers
            return ok('0x5208');
          case 'eth_blockNumber':
            return ok('0x2');
          case 'eth_sendRawTransaction':
            broadcast.push(params[0]);
            if (mode === 'loses-broadcast-reply') return req.socket.destroy(); // took it, the reply is lost
            return ok(keccak256(params[0]));
          case 'eth_getTransactionByHash': {
            transactionReads.push(Date.now());
            const raw = broadcast.find((b) => keccak256(b) === params[0]);
            if (mode !== 'receipt-read-fails' || !raw) return ok(null); // not mined yet (congestion, a low fee)
            const tx = parseTransaction(raw);
            return ok({ hash: keccak256(raw), nonce: '0x7', from: agentKey.address, to: tx.to, value: `0x${tx.value!.toString(16)}`, gas: '0x5208', maxFeePerGas: '0x3', maxPriorityFeePerGas: '0x1', input: '0x', type: '0x2', chainId: '0x7a69', blockHash: null, blockNumber: null, transactionIndex: null, v: '0x0', r: '0x1', s: '0x1' });
          }
          case 'eth_getTransactionReceipt':
            if (mode === 'receipt-read-fails') return answer({ error: { code: -32000, message: 'header not found' } });
            return ok(null);
          default:
            return ok(null);
        }
      })().catch(answerFailure(res));
    });
    airlockUrl = await listen(airlock);
    rpcUrl = await listen(rpc);
  });
  after(() => {
    for (const s of [airlock, rpc]) {
      s.closeAllConnections();
      s.close();
    }
  });
  beforeEach(() => {
    signedByAirlock = 0;
    broadcast = [];
    transactionReads = [];
  });

  const config = (toolTimeoutMs: number): McpConfig => ({ url: airlockUrl, token: TOKEN, rpc: new Map([[31337, rpcUrl]]), toolTimeoutMs });
  const send = { chainId: 31337, to: TO, amount: ONE_ETH };

  test('broadcast, not mined within the time limit: status sent with the hash of what was broadcast and its nonce, answered in time; the RPC is not polled after the answer', async () => {
    mode = 'never-mines';
    let answeredAt = 0;
    await withInMemoryClient(config(2000), async (call) => {
      const started = Date.now();
      const r = await call('send_transfer', send);
      answeredAt = Date.now();
      assert.ok(!r.isError, JSON.stringify(r));
      assert.equal(r.structuredContent.status, 'sent');
      assert.equal(r.structuredContent.transactionHash, keccak256(broadcast[0]!));
      assert.equal(r.structuredContent.nonce, 7);
      assert.match(r.structuredContent.notes[0], /not yet mined .* Do not send it again/);
      assert.ok(answeredAt - started < 3500, `answered within the time limit (${answeredAt - started} ms)`);
    });
    assert.equal(signedByAirlock, 1);
    assert.equal(broadcast.length, 1);
    assert.ok(transactionReads.length > 0, 'the receipt wait asked for the transaction');
    // viem retries the transaction read 200, 400, 800, 1,600 and 3,200 ms apart after the first: left running, one
    // lands about 1 s after this answer. A read already on its way at the answer may still arrive just after it.
    await new Promise((r) => setTimeout(r, 2000));
    assert.deepEqual(transactionReads.filter((t) => t > answeredAt + 300), [], 'no transaction reads after the call answered');
  });

  test('the RPC loses its reply to the broadcast: an error with paid, sent "maybe", the hash and the nonce, and not to send again', async () => {
    mode = 'loses-broadcast-reply';
    await withInMemoryClient(config(10_000), async (call) => {
      const r = await call('send_transfer', send);
      assert.equal(r.isError, true, JSON.stringify(r));
      const error = r.structuredContent.error;
      assert.equal(error.code, 'chain_error');
      assert.equal(error.paid, true);
      assert.equal(error.sent, 'maybe');
      assert.equal(error.transactionHash, keccak256(broadcast[0]!), 'the hash of the bytes the RPC received');
      assert.equal(error.nonce, 7);
      assert.match(error.hints[0], /Airlock signed this transfer .* Do not send it again/);
    });
    assert.equal(signedByAirlock, 1);
  });

  test('broadcast, then the receipt read fails: an error with paid, sent true, the hash and the nonce', { timeout: 30_000 }, async () => {
    mode = 'receipt-read-fails';
    await withInMemoryClient(config(20_000), async (call) => {
      const r = await call('send_transfer', send);
      assert.equal(r.isError, true, JSON.stringify(r));
      const error = r.structuredContent.error;
      assert.equal(error.paid, true);
      assert.equal(error.sent, true);
      assert.equal(error.transactionHash, keccak256(broadcast[0]!));
      assert.equal(error.nonce, 7);
      assert.match(error.hints[0], /was broadcast, but its receipt could not be read.* Do not send it again/);
    });
    assert.equal(broadcast.length, 1);
  });

  test('the RPC too slow to give nonce, gas and fees: chain_timeout within the time limit; Airlock is not asked to sign, nothing is sent', async () => {
    mode = 'slow-before-signing';
    await withInMemoryClient(config(2000), async (call) => {
      const started = Date.now();
      const r = await call('send_transfer', send);
      assert.equal(r.isError, true, JSON.stringify(r));
      assert.equal(r.structuredContent.error.code, 'chain_timeout');
      assert.equal(r.structuredContent.error.paid, undefined);
      assert.ok(Date.now() - started < 2000, 'refused within the first half of the time limit, before signing');
    });
    assert.equal(signedByAirlock, 0);
    assert.deepEqual(broadcast, []);
    rpc.closeAllConnections(); // the estimate left hanging
  });
});

test('the tools\' time limit: 40 s by default, under the MCP client\'s own request timeout; AIRLOCK_MCP_TOOL_TIMEOUT_SECONDS sets it', () => {
  const env = { AIRLOCK_SESSION: TOKEN };
  assert.equal(readMcpConfig(env).toolTimeoutMs, DEFAULT_TOOL_TIMEOUT_MS);
  assert.ok(DEFAULT_TOOL_TIMEOUT_MS <= DEFAULT_REQUEST_TIMEOUT_MSEC - 15_000, `${DEFAULT_TOOL_TIMEOUT_MS} ms leaves room under the client's ${DEFAULT_REQUEST_TIMEOUT_MSEC} ms`);
  assert.equal(readMcpConfig({ ...env, [TOOL_TIMEOUT_ENV]: '25' }).toolTimeoutMs, 25_000);
  for (const bad of ['0', '-5', '1.5', 'soon']) assert.throws(() => readMcpConfig({ ...env, [TOOL_TIMEOUT_ENV]: bad }), (e: unknown) => e instanceof McpConfigError && e.message.includes(TOOL_TIMEOUT_ENV), bad);
});
