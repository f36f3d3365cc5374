// The call's time limit (AIRLOCK_MCP_TOOL_TIMEOUT_SECONDS) covers Airlock's own answers: a slow signature or a
// Lightning payment that routes for long (Airlock holds /v1/l402/pay up to its pay timeout + 5 s) no longer pushes
// the answer past the MCP client's timeout. Found by review: send_transfer answered after the limit and broadcast
// the late signature anyway; pay_l402 answered `paid: true` after the client would have given up. Cut off, the
// answer says Airlock may have signed or paid (`paid: 'maybe'`) with the request's Idempotency-Key, and nothing is
// sent after the limit. Driven through the official MCP client (in memory) against a stand-in Airlock.
import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { encodePaymentRequiredHeader } from '@x402/core/http';
import { keccak256, type Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { withInMemoryClient, type CallTool } from './testing/in-memory-client.ts';
import { answerFailure, bodyOf, listen } from './testing/http-stand-in.ts';

const TOKEN = `ses_0123456789abcdef.${'A'.repeat(43)}`;
const agentKey = privateKeyToAccount(`0x${'09'.repeat(32)}`);
const ASSET = '0x5fbdb2315678afecb367f032d93f642f64180aa3';
const PAY_TO = '0x2222222222222222222222222222222222222222';
const PREIMAGE = 'ef'.repeat(32);
const TIME_LIMIT_MS = 2000;
/** How long the stand-in Airlock takes to sign or pay: well past the limit. */
const AIRLOCK_DELAY_MS = 3500;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the time limit covers Airlock signing and paying: cut off, paid is "maybe" and nothing is sent', () => {
  let airlock: Server;
  let api: Server;
  let rpc: Server;
  let airlockUrl: string;
  let apiUrl: string;
  let rpcUrl: string;
  /** Idempotency-Key of each signing or paying request Airlock received, by route. */
  let keysSent: Map<string, string>;
  /** Requests Airlock finished answering (after its delay), by route. */
  let answered: string[];
  let broadcasts: number;
  let paidRequests: string[];

  before(async () => {
    airlock = createServer((req, res) => {
      void (async () => {
        res.setHeader('content-type', 'application/json');
        if (req.url === '/v1/session') return res.end(JSON.stringify({ agent: { address: agentKey.address } }));
        if (req.method !== 'POST') return res.writeHead(404).end(JSON.stringify({ error: { code: 'not_found', message: 'not found' } })); // no L402 credential held
        const body = await bodyOf(req);
        keysSent.set(req.url!, String(req.headers['idempotency-key']));
        await sleep(AIRLOCK_DELAY_MS); // a store lock, a key process stall, a payment routing
        answered.push(req.url!);
        if (req.url === '/v1/sign/transaction') {
          const t = body.transaction;
          const tx: any = { ...t, chainId: Number(t.chainId), nonce: Number(t.nonce) };
          for (const k of ['value', 'gas', 'gasPrice', 'maxFeePerGas', 'maxPriorityFeePerGas']) if (tx[k] !== undefined) tx[k] = BigInt(tx[k]);
          return res.end(JSON.stringify({ signature: '0x', signedTransaction: await agentKey.signTransaction(tx) }));
        }
        if (req.url === '/v1/sign/typed-data') return res.end(JSON.stringify({ signature: await agentKey.signTypedData(body.typedData), paymentId: 'pay_1' }));
        if (req.url === '/v1/l402/pay') {
          const paymentHash = createHash('sha256').update(Buffer.from(PREIMAGE, 'hex')).digest('hex');
          return res.end(JSON.stringify({ paymentId: 'lnp_1', status: 'succeeded', paymentHash, preimage: PREIMAGE, amountMsat: '21000', maxFeeMsat: '1000', feeMsat: '10', auditSeq: 1, l402: { authorization: `L402 AGIAJEemVQUTEyNCR0exk7ek90Cg==:${PREIMAGE}` } }));
        }
        res.statusCode = 404;
        res.end(JSON.stringify({ error: { code: 'not_found', message: 'not found' } }));
      })().catch(answerFailure(res));
    });
    api = createServer((req, res) => {
      const paid = Boolean(req.headers['payment-signature'] || req.headers.authorization);
      if (paid) {
        paidRequests.push(req.url!);
        return res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      }
      if (req.url!.startsWith('/l402/')) return res.writeHead(402, { 'www-authenticate': 'L402 macaroon="AGIAJEemVQUTEyNCR0exk7ek90Cg==", invoice="lnbcrt210n1fake"' }).end();
      const accepts = [{ scheme: 'exact', network: 'eip155:31337', asset: ASSET, amount: '10000', payTo: PAY_TO, maxTimeoutSeconds: 300, extra: { name: 'USD Coin', version: '2' } }];
      res.writeHead(402, { 'PAYMENT-REQUIRED': encodePaymentRequiredHeader({ x402Version: 2, error: 'pay', resource: { url: `${apiUrl}${req.url}`, description: 'x', mimeType: 'text/plain' }, accepts } as never) }).end('{}');
    });
    rpc = createServer((req, res) => {
      void (async () => {
        const { id, method, params } = await bodyOf(req);
        const ok = (result: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id, result }));
        switch (method) {
          case 'eth_chainId': return ok('0x7a69');
          case 'eth_getTransactionCount': return ok('0x7');
          case 'eth_getBlockByNumber': return ok({ number: '0x1', hash: `0x${'00'.repeat(32)}`, timestamp: '0x1', baseFeePerGas: '0x1', gasLimit: '0x1c9c380', gasUsed: '0x0', transactions: [] });
          case 'eth_maxPriorityFeePerGas': return ok('0x1');
          case 'eth_gasPrice': return ok('0x2');
          case 'eth_estimateGas': return ok('0x5208');
          case 'eth_sendRawTransaction': broadcasts += 1; return ok(keccak256(params[0] as Hex));
          default: return ok(null);
        }
      })().catch(answerFailure(res));
    });
    airlockUrl = await listen(airlock);
    apiUrl = await listen(api);
    rpcUrl = await listen(rpc);
  });
  after(() => {
    for (const s of [airlock, api, rpc]) {
      s.closeAllConnections();
      s.close();
    }
  });
  beforeEach(() => {
    keysSent = new Map();
    answered = [];
    broadcasts = 0;
    paidRequests = [];
  });

  const withClient = <T>(fn: (call: CallTool) => Promise<T>) =>
    withInMemoryClient({ url: airlockUrl, token: TOKEN, rpc: new Map([[31337, rpcUrl]]), allowPrivateUrls: { kind: 'private' }, toolTimeoutMs: TIME_LIMIT_MS }, fn);
  const timed = async <T>(work: Promise<T>): Promise<[T, number]> => {
    const started = Date.now();
    const out = await work;
    return [out, Date.now() - started];
  };
  /** Until the stand-in Airlock has answered what it was asked (late): anything sent after the limit shows by then. */
  const untilAirlockAnswered = async (route: string) => {
    for (let i = 0; i < 100 && !answered.includes(route); i++) await sleep(50);
    assert.ok(answered.includes(route), `the stand-in Airlock answered ${route}`);
    await sleep(300);
  };

  test('send_transfer, Airlock slow to sign: airlock_timeout at the limit with paid "maybe", sent false, the nonce and the Idempotency-Key; the late signature is never broadcast', async () => {
    await withClient(async (call) => {
      const [r, took] = await timed(call('send_transfer', { chainId: 31337, to: '0x3333333333333333333333333333333333333333', amount: '1', waitForReceipt: false }));
      assert.equal(r.isError, true, JSON.stringify(r));
      const error = r.structuredContent.error;
      assert.equal(error.code, 'airlock_timeout');
      assert.match(error.message, /send_transfer did not finish within its time limit of 2 s .*Airlock had not answered \/v1\/sign\/transaction/);
      assert.equal(error.paid, 'maybe');
      assert.equal(error.sent, false);
      assert.equal(error.nonce, 7);
      assert.equal(error.transactionHash, undefined);
      assert.match(error.idempotencyKey, /^[0-9a-f-]{36}$/);
      assert.equal(error.idempotencyKey, keysSent.get('/v1/sign/transaction'));
      assert.match(error.hints[0], /Nothing was sent/);
      assert.match(error.hints[0], /Do not send it again blindly/);
      assert.ok(took < TIME_LIMIT_MS + 700, `answered at the limit (${took} ms)`);
      await untilAirlockAnswered('/v1/sign/transaction');
    });
    assert.equal(broadcasts, 0, 'nothing broadcast after the limit');
  });

  test('pay_x402, Airlock slow to sign the payment: airlock_timeout at the limit with paid "maybe", what was asked and the Idempotency-Key; the server never gets a payment', async () => {
    await withClient(async (call) => {
      const [r, took] = await timed(call('pay_x402', { url: `${apiUrl}/report` }));
      assert.equal(r.isError, true, JSON.stringify(r));
      const error = r.structuredContent.error;
      assert.equal(error.code, 'airlock_timeout');
      assert.equal(error.paid, 'maybe');
      assert.equal(error.paymentSigned, null);
      assert.equal(error.paymentAsked.amount, '10000');
      assert.equal(error.paymentAsked.payTo.toLowerCase(), PAY_TO);
      assert.match(error.idempotencyKey, /^[0-9a-f-]{36}$/);
      assert.equal(error.idempotencyKey, keysSent.get('/v1/sign/typed-data'));
      assert.match(error.hints[0], /not sent to the server/);
      assert.ok(took < TIME_LIMIT_MS + 700, `answered at the limit (${took} ms)`);
      await untilAirlockAnswered('/v1/sign/typed-data');
    });
    assert.deepEqual(paidRequests, [], 'no request carried a payment');
  });

  test('pay_l402, Airlock slow to pay: airlock_timeout at the limit with paid "maybe" and the Idempotency-Key; the credential is never sent', async () => {
    await withClient(async (call) => {
      const [r, took] = await timed(call('pay_l402', { url: `${apiUrl}/l402/report` }));
      assert.equal(r.isError, true, JSON.stringify(r));
      const error = r.structuredContent.error;
      assert.equal(error.code, 'airlock_timeout');
      assert.equal(error.paid, 'maybe');
      assert.equal(error.payment, null);
      assert.match(error.idempotencyKey, /^[0-9a-f-]{36}$/);
      assert.equal(error.idempotencyKey, keysSent.get('/v1/l402/pay'));
      assert.match(error.hints[0], /Do not retry at once/);
      assert.ok(took < TIME_LIMIT_MS + 700, `answered at the limit (${took} ms)`);
      await untilAirlockAnswered('/v1/l402/pay');
    });
    assert.deepEqual(paidRequests, [], 'no request carried the credential');
  });
});
