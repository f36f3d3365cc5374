// A model's `Host` request header never reaches the wire (found by review). pay_x402 and pay_l402 connect to the
// URL's checked address; with the model's Host, another virtual host on that address answered: it was paid (the
// payment judged under the URL's resource and its payee) or handed the L402 credential bought for the URL's origin.
// On shared hosting, a CDN or a reverse proxy that is one tenant paying or reading under another tenant's name.
// The tools refuse the header (invalid_request, nothing fetched or signed); the outbound fetch drops it as well.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { encodePaymentRequiredHeader } from '@x402/core/http';
import { createOutboundFetch } from './outbound.ts';
import { withInMemoryClient } from './testing/in-memory-client.ts';
import { answerFailure, bodyOf, listen } from './testing/http-stand-in.ts';

const TOKEN = `ses_0123456789abcdef.${'A'.repeat(43)}`;
const AGENT = '0x9999999999999999999999999999999999999999';
const ASSET = '0x5fbdb2315678afecb367f032d93f642f64180aa3';
const TRUSTED_PAY_TO = '0x1111111111111111111111111111111111111111';
const EVIL_PAY_TO = '0x2222222222222222222222222222222222222222';
const PREIMAGE = 'cd'.repeat(32);

describe('a model-chosen Host header does not pick the virtual host that answers, is paid or gets a credential', () => {
  let airlock: Server;
  let shared: Server;
  let airlockUrl: string;
  let sharedUrl: string;
  const signRequests: any[] = [];
  const l402Pays: any[] = [];
  const vhostSaw: { host: string; path: string; auth?: string; paid: boolean }[] = [];

  before(async () => {
    airlock = createServer((req, res) => {
      void (async () => {
        res.setHeader('content-type', 'application/json');
        if (req.url === '/v1/session') return res.end(JSON.stringify({ agent: { address: AGENT } }));
        if (req.url === '/v1/sign/typed-data') {
          signRequests.push(await bodyOf(req));
          return res.end(JSON.stringify({ signature: `0x${'11'.repeat(65)}`, paymentId: 'pay_1' }));
        }
        if (req.url === '/v1/x402/settlement') return res.end('{}');
        if (req.url === '/v1/l402/pay') {
          l402Pays.push(await bodyOf(req));
          const paymentHash = createHash('sha256').update(Buffer.from(PREIMAGE, 'hex')).digest('hex');
          return res.end(JSON.stringify({ paymentId: 'lnp_1', status: 'succeeded', paymentHash, preimage: PREIMAGE, amountMsat: '21000', maxFeeMsat: '1000', feeMsat: '10', auditSeq: 1, l402: { authorization: `L402 AGIAJEemVQUTEyNCR0exk7ek90Cg==:${PREIMAGE}` } }));
        }
        res.statusCode = 404;
        res.end(JSON.stringify({ error: { code: 'not_found', message: 'not found' } }));
      })().catch(answerFailure(res));
    });
    // One address, two tenants routed by Host (as a shared host, CDN or reverse proxy does).
    shared = createServer((req, res) => {
      const host = String(req.headers.host).replace(/:\d+$/, '');
      const paid = Boolean(req.headers['payment-signature'] || req.headers.authorization);
      vhostSaw.push({ host, path: req.url ?? '', ...(req.headers.authorization ? { auth: req.headers.authorization } : {}), paid });
      if (req.url!.startsWith('/l402/')) {
        if (!paid) {
          res.writeHead(402, { 'www-authenticate': 'L402 macaroon="AGIAJEemVQUTEyNCR0exk7ek90Cg==", invoice="lnbcrt210n1fake"' });
          return res.end();
        }
        return res.writeHead(200, { 'content-type': 'text/plain' }).end(`${host} thanks you`);
      }
      if (!paid) {
        // The evil tenant names the trusted URL as its resource: x402_resource_mismatch compares hosts only.
        const payTo = host === 'evil.example' ? EVIL_PAY_TO : TRUSTED_PAY_TO;
        const accepts = [{ scheme: 'exact', network: 'eip155:31337', asset: ASSET, amount: '10000', payTo, maxTimeoutSeconds: 60, extra: { name: 'USD Coin', version: '2' } }];
        res.writeHead(402, { 'PAYMENT-REQUIRED': encodePaymentRequiredHeader({ x402Version: 2, error: 'payment required', resource: { url: `${sharedUrl}${req.url}`, description: 'x', mimeType: 'text/plain' }, accepts } as never) });
        return res.end('{}');
      }
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`${host} resource`);
    });
    airlockUrl = await listen(airlock);
    sharedUrl = await listen(shared);
  });
  after(() => {
    for (const s of [airlock, shared]) {
      s.closeAllConnections();
      s.close();
    }
  });

  const withClient = <T>(fn: (call: any) => Promise<T>) => withInMemoryClient({ url: airlockUrl, token: TOKEN, rpc: new Map(), allowPrivateUrls: { kind: 'private' } }, fn);

  test('pay_x402 with headers {host}: refused before anything is fetched or signed', async () => {
    signRequests.length = 0;
    vhostSaw.length = 0;
    await withClient(async (call) => {
      const r = await call('pay_x402', { url: `${sharedUrl}/data`, headers: { host: 'evil.example' } });
      assert.equal(r.isError, true, `the Host header must be refused, got ${JSON.stringify(r.structuredContent)}; Airlock signed ${JSON.stringify(signRequests.map((s) => ({ resource: s.x402?.resource, to: s.typedData?.message?.to })))}; the server saw ${JSON.stringify(vhostSaw)}`);
      assert.equal(r.structuredContent.error.code, 'invalid_request');
    });
    assert.equal(signRequests.length, 0);
    assert.equal(vhostSaw.length, 0);
  });

  test('pay_l402 with headers {host}: refused, and the credential bought for the URL\'s origin reaches no other tenant', async () => {
    l402Pays.length = 0;
    vhostSaw.length = 0;
    await withClient(async (call) => {
      const first = await call('pay_l402', { url: `${sharedUrl}/l402/weather` });
      assert.equal(first.isError, undefined, JSON.stringify(first.structuredContent));
      const r = await call('pay_l402', { url: `${sharedUrl}/l402/weather`, headers: { host: 'evil.example' } });
      const leaked = vhostSaw.filter((s) => s.host === 'evil.example' && s.auth?.includes(PREIMAGE));
      assert.deepEqual(leaked, [], `the credential (preimage) reached the other tenant: ${JSON.stringify(vhostSaw)}; result ${JSON.stringify(r.structuredContent)}`);
      assert.equal(r.isError, true);
      assert.equal(r.structuredContent.error.code, 'invalid_request');
    });
  });

  test('the outbound fetch sends the URL\'s own Host whatever headers it is given', async () => {
    vhostSaw.length = 0;
    const outbound = createOutboundFetch({ daemonUrl: airlockUrl, allow: { kind: 'private' } });
    const res = await outbound(`${sharedUrl}/data`, { headers: { host: 'evil.example', 'proxy-authorization': 'Basic x' } });
    await res.arrayBuffer();
    assert.equal(res.status, 402);
    assert.deepEqual(vhostSaw.map((s) => s.host), ['127.0.0.1']);
  });
});
