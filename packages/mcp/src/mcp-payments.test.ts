// What the paying tools say they paid, and what they refuse before paying, driven through the official MCP client
// (in memory) against a stand-in Airlock and paid APIs on loopback that misbehave as a malicious server would.
// Found by review: `paid` was the server's word (its PAYMENT-RESPONSE) or unset when the call threw, so a server
// that took the signed payment and then hung up (or answered without a receipt) left the model believing nothing
// was paid, and a retry signed another payment; a failed first call (Airlock down) stuck for the process; request
// headers the x402 client sets itself, or that fetch cannot send, failed late and as `internal`.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { privateKeyToAccount } from 'viem/accounts';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodePaymentSignatureHeader, encodePaymentRequiredHeader } from '@x402/core/http';
import { getAddress } from 'viem';
import { inMemoryClient, withInMemoryClient, type CallTool } from './testing/in-memory-client.ts';
import { answerFailure } from './testing/http-stand-in.ts';

const TOKEN = `ses_0123456789abcdef.${'A'.repeat(43)}`;
// The stand-in Airlock signs with the agent's key: the SDK verifies every signature it is given.
const agentKey = privateKeyToAccount(`0x${'09'.repeat(32)}`);
const AGENT = agentKey.address;
const ASSET = '0x5fbdb2315678afecb367f032d93f642f64180aa3';
const PAY_TO = '0x2222222222222222222222222222222222222222';
const PRICE = '10000';
const PREIMAGE = 'ab'.repeat(32);

async function listen(server: Server, port = 0): Promise<string> {
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function bodyOf(req: IncomingMessage): Promise<any> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
}

/** A stand-in Airlock: the session, x402 signatures (recorded), settlement reports, and L402 payments that succeed. */
function startAirlock(asked: string[]): Server {
  return createServer((req, res) => {
    void (async () => {
      asked.push(`${req.method} ${req.url}`);
      res.setHeader('content-type', 'application/json');
      if (req.url === '/v1/session') return res.end(JSON.stringify({ agent: { address: AGENT } }));
      if (req.url === '/v1/sign/typed-data') {
        const { typedData } = await bodyOf(req);
        return res.end(JSON.stringify({ signature: await agentKey.signTypedData(typedData), paymentId: 'pay_1' }));
      }
      if (req.url === '/v1/x402/settlement') return res.end('{}');
      if (req.url === '/v1/l402/pay') {
        await bodyOf(req);
        const paymentHash = createHash('sha256').update(Buffer.from(PREIMAGE, 'hex')).digest('hex');
        return res.end(JSON.stringify({ paymentId: 'lnp_1', status: 'succeeded', paymentHash, preimage: PREIMAGE, amountMsat: '21000', maxFeeMsat: '1000', feeMsat: '10', auditSeq: 1, l402: { authorization: `L402 AGIAJEemVQUTEyNCR0exk7ek90Cg==:${PREIMAGE}` } }));
      }
      res.statusCode = 404;
      res.end(JSON.stringify({ error: { code: 'not_found', message: 'not found' } }));
    })().catch(answerFailure(res));
  });
}

describe('pay_x402 / pay_l402: what was paid is what Airlock signed or paid, said in results and errors', () => {
  let airlock: Server;
  let api: Server;
  let airlockUrl: string;
  let apiUrl: string;
  let airlockAsked: string[] = [];
  let apiSaw: { path: string; paid: boolean }[] = [];

  before(async () => {
    airlock = startAirlock(airlockAsked);
    api = createServer((req, res) => {
      const paid = Boolean(req.headers['payment-signature'] || req.headers.authorization);
      apiSaw.push({ path: req.url ?? '', paid });
      if (req.url!.startsWith('/l402/')) {
        if (!paid) {
          res.writeHead(402, { 'www-authenticate': 'L402 macaroon="AGIAJEemVQUTEyNCR0exk7ek90Cg==", invoice="lnbcrt210n1fake"' });
          return res.end();
        }
        return req.socket.destroy(); // took the credential, answers nothing
      }
      if (!paid) {
        const accepts = [{ scheme: 'exact', network: 'eip155:31337', asset: ASSET, amount: PRICE, payTo: PAY_TO, maxTimeoutSeconds: 60, extra: { name: 'USD Coin', version: '2' } }];
        res.writeHead(402, { 'PAYMENT-REQUIRED': encodePaymentRequiredHeader({ x402Version: 2, error: 'payment required', resource: { url: `${apiUrl}${req.url}`, description: 'x', mimeType: 'text/plain' }, accepts } as never) });
        return res.end('{}');
      }
      decodePaymentSignatureHeader(req.headers['payment-signature'] as string);
      if (req.url === '/hangup') return req.socket.destroy(); // took the payment, answers nothing
      res.writeHead(200, { 'content-type': 'text/plain' }); // /silent: the resource, and no PAYMENT-RESPONSE
      res.end('the paid resource');
    });
    airlockUrl = await listen(airlock);
    apiUrl = await listen(api);
  });
  after(() => {
    for (const s of [airlock, api]) {
      s.closeAllConnections();
      s.close();
    }
  });

  const withClient = <T>(url: string, fn: (call: CallTool) => Promise<T>) => withInMemoryClient({ url, token: TOKEN, rpc: new Map(), allowPrivateUrls: { kind: 'private' } }, fn);
  const signs = () => airlockAsked.filter((line) => line === 'POST /v1/sign/typed-data').length;

  test('pay_x402, a server that takes the payment and hangs up: the error says a payment was signed, with its terms, and not to retry', async () => {
    airlockAsked.length = 0;
    await withClient(airlockUrl, async (call) => {
      const r = await call('pay_x402', { url: `${apiUrl}/hangup` });
      assert.equal(r.isError, true, JSON.stringify(r));
      const error = r.structuredContent.error;
      assert.equal(error.code, 'resource_unreachable');
      assert.equal(error.paid, true);
      const { validBefore, ...terms } = error.paymentSigned;
      assert.deepEqual(terms, { payTo: PAY_TO, amount: PRICE, asset: getAddress(ASSET), network: 'eip155:31337', paymentId: 'pay_1' });
      assert.ok(Number(validBefore) > Date.now() / 1000, `validBefore ${validBefore} lies ahead`);
      assert.match(error.hints[0], /Airlock signed a payment .* Do not simply retry/);
    });
    assert.equal(signs(), 1);
  });

  test('pay_x402, a server that answers 200 without PAYMENT-RESPONSE: paid is true (what Airlock signed), the server\'s report is null', async () => {
    await withClient(airlockUrl, async (call) => {
      const r = await call('pay_x402', { url: `${apiUrl}/silent` });
      assert.ok(!r.isError, JSON.stringify(r));
      assert.equal(r.structuredContent.status, 200);
      assert.equal(r.structuredContent.body, 'the paid resource');
      assert.equal(r.structuredContent.paid, true);
      assert.equal(r.structuredContent.paymentSigned.amount, PRICE);
      assert.equal(r.structuredContent.paymentSigned.payTo, PAY_TO);
      assert.equal(r.structuredContent.payment, null);
      assert.match(r.structuredContent.notes[0], /did not report settling it/);
    });
  });

  test('pay_x402 with maxAmount, payTo, asset or network: a 402 asking more, paying someone else, in another token or on another chain is payment_not_as_expected, and Airlock is not asked to sign', async () => {
    airlockAsked.length = 0;
    apiSaw = [];
    await withClient(airlockUrl, async (call) => {
      const OTHER_TOKEN = '0x4444444444444444444444444444444444444444';
      for (const expect of [{ maxAmount: '9999' }, { payTo: '0x3333333333333333333333333333333333333333' }, { maxAmount: PRICE, payTo: '0x3333333333333333333333333333333333333333' }, { maxAmount: PRICE, asset: OTHER_TOKEN }, { maxAmount: PRICE, asset: ASSET, network: 'eip155:8453' }]) {
        const r = await call('pay_x402', { url: `${apiUrl}/silent`, ...expect });
        assert.equal(r.isError, true, JSON.stringify(r));
        assert.equal(r.structuredContent.error.code, 'payment_not_as_expected', JSON.stringify(expect));
        assert.equal(r.structuredContent.error.paid, undefined);
      }
      assert.equal(signs(), 0, 'nothing was signed');
      assert.deepEqual(apiSaw.map((s) => s.paid), [false, false, false, false, false], 'no payment reached the server');
      // As expected (the payee and token in another case, the exact price): paid.
      const ok = await call('pay_x402', { url: `${apiUrl}/silent`, maxAmount: PRICE, payTo: PAY_TO.toUpperCase().replace('0X', '0x'), asset: ASSET.toUpperCase().replace('0X', '0x'), network: 'eip155:31337' });
      assert.ok(!ok.isError, JSON.stringify(ok));
      assert.equal(ok.structuredContent.paid, true);
    });
    assert.equal(signs(), 1);
  });

  test('pay_l402, a server that takes the credential and hangs up: the error carries the Lightning payment and not to retry', async () => {
    await withClient(airlockUrl, async (call) => {
      const r = await call('pay_l402', { url: `${apiUrl}/l402/data` });
      assert.equal(r.isError, true, JSON.stringify(r));
      const error = r.structuredContent.error;
      assert.equal(error.code, 'resource_unreachable');
      assert.equal(error.paid, true);
      assert.deepEqual(error.payment, { paymentId: 'lnp_1', amountMsat: '21000', feeMsat: '10' });
      assert.match(error.hints[0], /Airlock paid 21000 msat .*lnp_1.* Do not simply retry/);
      assert.ok(!JSON.stringify(r).includes(PREIMAGE), 'no preimage in the error');
    });
  });

  test('pay_x402 request headers that carry a payment are invalid_request; nothing is fetched or signed', async () => {
    airlockAsked.length = 0;
    apiSaw = [];
    await withClient(airlockUrl, async (call) => {
      for (const name of ['X-PAYMENT', 'payment-signature', 'Payment-Response', 'x-payment-response']) {
        const r = await call('pay_x402', { url: `${apiUrl}/silent`, headers: { [name]: 'eyJ4NDAyVmVyc2lvbiI6Mn0=' } });
        assert.equal(r.isError, true, JSON.stringify(r));
        assert.equal(r.structuredContent.error.code, 'invalid_request', name);
      }
    });
    assert.deepEqual(apiSaw, []);
    assert.equal(signs(), 0);
  });

  test('malformed header names and values are invalid_request in both tools, the value not echoed; nothing is fetched', async () => {
    apiSaw = [];
    await withClient(airlockUrl, async (call) => {
      for (const tool of ['pay_x402', 'pay_l402']) {
        for (const headers of [{ 'bad name': 'x' }, { 'x-h(': 'x' }, { '': 'x' }, { 'x-h': 'secret\r\nx-injected: 1' }, { 'x-h': 'secret\u0000' }, { 'x-h': 'secret\u0100' }, { 'x-h': 'secret\u0001' }]) {
          const r = await call(tool, { url: `${apiUrl}/silent`, headers });
          assert.equal(r.isError, true, JSON.stringify(r));
          assert.equal(r.structuredContent.error.code, 'invalid_request', `${tool} ${JSON.stringify(headers)}: ${JSON.stringify(r.structuredContent)}`);
          assert.ok(!JSON.stringify(r).includes('secret'), 'the value is not echoed');
        }
      }
      // Latin-1 text and a tab are headers fetch sends.
      const ok = await call('pay_x402', { url: `${apiUrl}/silent`, headers: { 'x-note': 'caf\u00e9\tok' } });
      assert.ok(!ok.isError, JSON.stringify(ok));
    });
    assert.equal(apiSaw.filter((s) => !s.paid).length, 1, 'only the well-formed request reached the server');
  });
});

describe('pay_x402 after Airlock comes back', () => {
  test('Airlock down at the first call (airlock_unreachable), up at the second: the second pays', async () => {
    // A port nothing listens on, for now.
    const probe = createServer();
    const url = await listen(probe);
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const asked: string[] = [];
    const api = createServer((req, res) => {
      if (!req.headers['payment-signature']) {
        const accepts = [{ scheme: 'exact', network: 'eip155:31337', asset: ASSET, amount: PRICE, payTo: PAY_TO, maxTimeoutSeconds: 60, extra: { name: 'USD Coin', version: '2' } }];
        res.writeHead(402, { 'PAYMENT-REQUIRED': encodePaymentRequiredHeader({ x402Version: 2, error: 'payment required', resource: { url: `${apiUrl}${req.url}`, description: 'x', mimeType: 'text/plain' }, accepts } as never) });
        return res.end('{}');
      }
      res.end('the paid resource');
    });
    const apiUrl = await listen(api);
    const client = await inMemoryClient({ url, token: TOKEN, rpc: new Map(), allowPrivateUrls: { kind: 'private' } });
    let airlock: Server | undefined;
    try {
      const down = await client.call('pay_x402', { url: `${apiUrl}/data` });
      assert.equal(down.structuredContent?.error?.code, 'airlock_unreachable', JSON.stringify(down));
      airlock = startAirlock(asked);
      await listen(airlock, Number(new URL(url).port));
      const up = await client.call('pay_x402', { url: `${apiUrl}/data` });
      assert.ok(!up.isError, JSON.stringify(up));
      assert.equal(up.structuredContent.body, 'the paid resource');
      assert.equal(up.structuredContent.paid, true);
      assert.ok(asked.includes('POST /v1/sign/typed-data'));
    } finally {
      await client.close();
      for (const s of [api, airlock]) {
        s?.closeAllConnections();
        s?.close();
      }
    }
  });
});
