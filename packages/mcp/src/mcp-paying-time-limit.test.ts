// The paying tools answer within their time limit (AIRLOCK_MCP_TOOL_TIMEOUT_SECONDS), however slowly a paid API
// answers, so `paid: true` and the do-not-retry hint reach the model before its MCP client gives up on the call.
// Found by review: the outbound limits (30 s idle, 120 s per exchange) outlasted the MCP SDK client's default 60 s
// request timeout; a paid API that trickled its answer left the model with "Request timed out", and its retry
// signed a second payment. Driven through the official MCP client (in memory) against a stand-in Airlock.
import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { encodePaymentRequiredHeader } from '@x402/core/http';
import { privateKeyToAccount } from 'viem/accounts';
import { withInMemoryClient, type CallTool } from './testing/in-memory-client.ts';
import { answerFailure, bodyOf, listen } from './testing/http-stand-in.ts';

const TOKEN = `ses_0123456789abcdef.${'A'.repeat(43)}`;
const agentKey = privateKeyToAccount(`0x${'09'.repeat(32)}`);
const ASSET = '0x5fbdb2315678afecb367f032d93f642f64180aa3';
const PAY_TO = '0x2222222222222222222222222222222222222222';
const PREIMAGE = 'ef'.repeat(32);
const TIME_LIMIT_MS = 2000;

describe('pay_x402 / pay_l402 answer within their time limit, saying what was paid', () => {
  let airlock: Server;
  let api: Server;
  let airlockUrl: string;
  let apiUrl: string;
  let airlockAsked: string[] = [];
  const trickles = new Set<NodeJS.Timeout>();

  /** Never idle, never done: a byte every 200 ms. */
  const trickle = (res: ServerResponse) => {
    const t = setInterval(() => res.write('.'), 200);
    trickles.add(t);
    res.on('close', () => {
      clearInterval(t);
      trickles.delete(t);
    });
  };

  before(async () => {
    airlock = createServer((req, res) => {
      void (async () => {
        airlockAsked.push(`${req.method} ${req.url}`);
        res.setHeader('content-type', 'application/json');
        if (req.url === '/v1/session') return res.end(JSON.stringify({ agent: { address: agentKey.address } }));
        if (req.url === '/v1/sign/typed-data') {
          const { typedData } = await bodyOf(req);
          return res.end(JSON.stringify({ signature: await agentKey.signTypedData(typedData), paymentId: 'pay_1' }));
        }
        if (req.url === '/v1/l402/pay') {
          await bodyOf(req);
          const paymentHash = createHash('sha256').update(Buffer.from(PREIMAGE, 'hex')).digest('hex');
          return res.end(JSON.stringify({ paymentId: 'lnp_1', status: 'succeeded', paymentHash, preimage: PREIMAGE, amountMsat: '21000', maxFeeMsat: '1000', feeMsat: '10', auditSeq: 1, l402: { authorization: `L402 AGIAJEemVQUTEyNCR0exk7ek90Cg==:${PREIMAGE}` } }));
        }
        res.statusCode = 404;
        res.end(JSON.stringify({ error: { code: 'not_found', message: 'not found' } }));
      })().catch(answerFailure(res));
    });
    api = createServer((req, res) => {
      const paid = Boolean(req.headers['payment-signature'] || req.headers.authorization);
      if (req.url!.startsWith('/l402/')) {
        if (!paid) return res.writeHead(402, { 'www-authenticate': 'L402 macaroon="AGIAJEemVQUTEyNCR0exk7ek90Cg==", invoice="lnbcrt210n1fake"' }).end();
        res.writeHead(200, { 'content-type': 'text/plain' });
        return trickle(res); // took the credential; answers slowly
      }
      if (!paid) {
        const accepts = [{ scheme: 'exact', network: 'eip155:31337', asset: ASSET, amount: '10000', payTo: PAY_TO, maxTimeoutSeconds: 300, extra: { name: 'USD Coin', version: '2' } }];
        res.writeHead(402, { 'PAYMENT-REQUIRED': encodePaymentRequiredHeader({ x402Version: 2, error: 'pay', resource: { url: `${apiUrl}${req.url}`, description: 'x', mimeType: 'text/plain' }, accepts } as never) });
        if (req.url === '/slow-402') return trickle(res); // the 402's body never ends
        return res.end('{}');
      }
      res.writeHead(200, { 'content-type': 'text/plain' });
      trickle(res); // took the payment; answers slowly
    });
    airlockUrl = await listen(airlock);
    apiUrl = await listen(api);
  });
  after(() => {
    for (const t of trickles) clearInterval(t);
    for (const s of [airlock, api]) {
      s.closeAllConnections();
      s.close();
    }
  });
  beforeEach(() => {
    airlockAsked = [];
  });

  const withClient = <T>(fn: (call: CallTool) => Promise<T>) => withInMemoryClient({ url: airlockUrl, token: TOKEN, rpc: new Map(), allowPrivateUrls: { kind: 'private' }, toolTimeoutMs: TIME_LIMIT_MS }, fn);
  const timed = async <T>(work: Promise<T>): Promise<[T, number]> => {
    const started = Date.now();
    const out = await work;
    return [out, Date.now() - started];
  };

  test('pay_x402, a paid answer trickled past the time limit: resource_timeout at the limit, with paid, paymentSigned and not to retry', async () => {
    await withClient(async (call) => {
      const [r, took] = await timed(call('pay_x402', { url: `${apiUrl}/report` }));
      assert.equal(r.isError, true, JSON.stringify(r));
      const error = r.structuredContent.error;
      assert.equal(error.code, 'resource_timeout');
      assert.match(error.message, /pay_x402 did not finish within its time limit of 2 s/);
      assert.equal(error.paid, true);
      assert.equal(error.paymentSigned.amount, '10000');
      assert.match(error.hints[0], /Do not simply retry/);
      assert.ok(took >= TIME_LIMIT_MS - 100 && took < TIME_LIMIT_MS + 1500, `answered at the limit (${took} ms)`);
    });
    assert.equal(airlockAsked.filter((a) => a === 'POST /v1/sign/typed-data').length, 1);
  });

  test('pay_x402, the time is up while the 402 is read: nothing is signed', async () => {
    await withClient(async (call) => {
      const r = await call('pay_x402', { url: `${apiUrl}/slow-402` });
      assert.equal(r.isError, true, JSON.stringify(r));
      assert.equal(r.structuredContent.error.code, 'resource_timeout');
      assert.equal(r.structuredContent.error.paid, undefined);
    });
    assert.deepEqual(airlockAsked.filter((a) => a === 'POST /v1/sign/typed-data'), [], 'Airlock was not asked to sign');
  });

  test('pay_l402, a paid answer trickled past the time limit: resource_timeout at the limit, with paid and the Lightning payment', async () => {
    await withClient(async (call) => {
      const [r, took] = await timed(call('pay_l402', { url: `${apiUrl}/l402/report` }));
      assert.equal(r.isError, true, JSON.stringify(r));
      const error = r.structuredContent.error;
      assert.equal(error.code, 'resource_timeout');
      assert.equal(error.paid, true);
      assert.deepEqual(error.payment, { paymentId: 'lnp_1', amountMsat: '21000', feeMsat: '10' });
      assert.match(error.hints[0], /Do not simply retry/);
      assert.ok(took >= TIME_LIMIT_MS - 100 && took < TIME_LIMIT_MS + 1500, `answered at the limit (${took} ms)`);
    });
    assert.deepEqual(airlockAsked.filter((a) => a === 'POST /v1/l402/pay'), ['POST /v1/l402/pay']);
  });
});
