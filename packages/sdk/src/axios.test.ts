// axiosWithAirlock on a real axios instance against stand-ins on loopback: the URL Airlock is told it pays for
// is the URL the payment goes to, in every call form axios has. More axios cases (redirects, `auth`, the fetch
// adapter) are in x402.test.ts.
import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { encodePaymentRequiredHeader } from '@x402/core/http';
import { privateKeyToAccount } from 'viem/accounts';
import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import { AirlockApiError } from './http.ts';
import { axiosWithAirlock } from './axios.ts';

const agentKey = privateKeyToAccount(`0x${'09'.repeat(32)}`);
const ASSET = '0x5fbdb2315678afecb367f032d93f642f64180aa3';
const PAY_TO = '0x2222222222222222222222222222222222222222';

/** `instance.request(url, config?)`: axios takes a URL first at run time, though its types list only a config. */
const requestByUrl = (instance: AxiosInstance, url: string, config?: object) => (instance.request as (url: string, config?: object) => Promise<AxiosResponse>)(url, config);

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function bodyOf(req: IncomingMessage): Promise<any> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
}

describe('axiosWithAirlock: the resource Airlock judges', () => {
  let airlock: Server;
  let api: Server;
  let airlockUrl: string;
  let apiUrl: string;
  let signRequests: any[] = [];
  let apiSaw: { path: string; paid: boolean }[] = [];

  before(async () => {
    airlock = createServer(async (req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/v1/session') return res.end(JSON.stringify({ agent: { address: agentKey.address } }));
      if (req.url === '/v1/sign/typed-data') {
        const body = await bodyOf(req);
        signRequests.push(body);
        return res.end(JSON.stringify({ signature: await agentKey.signTypedData(body.typedData) }));
      }
      res.statusCode = 404;
      res.end('{}');
    });
    api = createServer((req, res) => {
      const paid = Boolean(req.headers['payment-signature']);
      apiSaw.push({ path: req.url ?? '', paid });
      if (paid) return res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      const accepts = [{ scheme: 'exact', network: 'eip155:31337', asset: ASSET, amount: '990000', payTo: PAY_TO, maxTimeoutSeconds: 60, extra: { name: 'USD Coin', version: '2' } }];
      res.writeHead(402, { 'PAYMENT-REQUIRED': encodePaymentRequiredHeader({ x402Version: 2, error: 'pay', resource: { url: `${apiUrl}${req.url}`, description: 'x', mimeType: 'application/json' }, accepts } as never) }).end('{}');
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
  beforeEach(() => {
    signRequests = [];
    apiSaw = [];
  });

  // Found by review: getUri ignores the string form of request(), so Airlock was told the instance's baseURL
  // (its resource rules and per-origin budgets) while the other server was paid.
  test('instance.request(url) on an instance with a baseURL: Airlock judges the URL that is paid, not the baseURL', async () => {
    const client = await axiosWithAirlock(axios.create({ baseURL: 'https://api.trusted.example/data' }), { url: airlockUrl, token: 't' });
    const res = await requestByUrl(client, `${apiUrl}/drain`);
    assert.equal(res.status, 200);
    assert.equal(signRequests.length, 1);
    assert.equal(signRequests[0].x402.resource, `${apiUrl}/drain`);
    assert.deepEqual(apiSaw, [{ path: '/drain', paid: false }, { path: '/drain', paid: true }]);

    signRequests = [];
    apiSaw = [];
    await requestByUrl(client, `${apiUrl}/with-config`, { method: 'POST', data: { q: 1 } });
    assert.equal(signRequests[0].x402.resource, `${apiUrl}/with-config`, 'request(url, config)');
  });

  test('instance.request(url) on an instance without a baseURL pays that URL as its own resource', async () => {
    const client = await axiosWithAirlock(axios.create(), { url: airlockUrl, token: 't' });
    const res = await requestByUrl(client, `${apiUrl}/plain`);
    assert.equal(res.status, 200);
    assert.equal(signRequests[0].x402.resource, `${apiUrl}/plain`);
    await client(`${apiUrl}/called`);
    assert.equal(signRequests[1].x402.resource, `${apiUrl}/called`, 'instance(url), the callable form');
  });

  test('a URL that is not absolute http(s) is refused invalid_request in every call form; nothing is sent or signed', async () => {
    const client = await axiosWithAirlock(axios.create(), { url: airlockUrl, token: 't' });
    const calls: [string, () => Promise<unknown>][] = [
      ['request(url)', () => requestByUrl(client, '/relative')],
      ['request(config)', () => client.request({ url: '/relative' })],
      ['get(url)', () => client.get('relative')],
      ['instance(url)', () => client('/relative')],
      ['another scheme', () => client.get(`ftp://user:secret@127.0.0.1/file`)],
    ];
    for (const [form, call] of calls) {
      const err = await call().then(
        () => assert.fail(`${form}: expected a refusal`),
        (e: unknown) => e,
      );
      assert.ok(err instanceof AirlockApiError, `${form}: expected AirlockApiError, got ${String(err)}`);
      assert.equal(err.code, 'invalid_request', form);
      assert.ok(!err.message.includes('secret'), `${form}: the URL is not echoed`);
    }
    assert.deepEqual(signRequests, []);
    assert.deepEqual(apiSaw, []);
  });
});
