// The SDK's x402 pieces against stand-ins on loopback: a 402 server speaking the real header format
// (@x402/core's encoder) and an Airlock that records what it is asked. The full flow, with the real
// Airlock, chain, facilitator and paid API, is in packages/x402-testbed.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { encodePaymentRequiredHeader } from '@x402/core/http';
import { privateKeyToAccount } from 'viem/accounts';
import axios from 'axios';
import { AirlockApiError, AirlockPolicyError } from './http.ts';
import { axiosWithAirlock } from './axios.ts';
import { airlockX402Signer, checkX402Challenge, fetchWithAirlock, withX402Resource, x402PaymentTerms } from './x402.ts';

// The stand-in Airlock signs with the agent's key: the SDK verifies every signature it is given (evm-verify.ts).
const agentKey = privateKeyToAccount(`0x${'09'.repeat(32)}`);
const AGENT = agentKey.address;
/** What Airlock answers: the agent's signature over the typed data sent (its JSON form: bigints as decimal strings). */
const signAsAirlock = (body: { typedData: Parameters<typeof agentKey.signTypedData>[0] }) => agentKey.signTypedData(body.typedData);
const ASSET = '0x5fbdb2315678afecb367f032d93f642f64180aa3';

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function bodyOf(req: IncomingMessage): Promise<any> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
}

describe('x402 SDK', () => {
  let airlock: Server;
  let api: Server;
  let airlockUrl: string;
  let apiUrl: string;
  let signRequests: any[] = [];
  let apiRequests: { path: string; paid: boolean }[] = [];
  let verdict: 'deny' | 'allow' = 'deny';

  before(async () => {
    airlock = createServer(async (req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/v1/session') return res.end(JSON.stringify({ agent: { address: AGENT } }));
      if (req.url === '/v1/sign/typed-data') {
        const body = await bodyOf(req);
        signRequests.push(body);
        if (verdict === 'deny') {
          res.statusCode = 403;
          return res.end(JSON.stringify({ decision: 'deny', error: { code: 'policy_denied', message: 'Denied by agent/payees', violations: [{ rule: 'agent/payees', code: 'destination_not_allowed', message: 'not in the allowlist' }] } }));
        }
        return res.end(JSON.stringify({ signature: await signAsAirlock(body) }));
      }
      res.statusCode = 404;
      res.end('{}');
    });
    api = createServer((req, res) => {
      const paid = Boolean(req.headers['payment-signature']);
      apiRequests.push({ path: req.url ?? '', paid });
      const requirements = { scheme: 'exact', network: 'eip155:31337', asset: ASSET, amount: '10000', payTo: '0x2222222222222222222222222222222222222222', maxTimeoutSeconds: 60, extra: { name: 'USD Coin', version: '2' } };
      res.statusCode = 402;
      res.setHeader('PAYMENT-REQUIRED', encodePaymentRequiredHeader({ x402Version: 2, error: 'payment required', resource: { url: `${apiUrl}${req.url}`, description: 'x', mimeType: 'application/json' }, accepts: [requirements] } as never));
      res.end('{}');
    });
    airlockUrl = await listen(airlock);
    apiUrl = await listen(api);
  });
  after(() => {
    airlock.closeAllConnections();
    api.closeAllConnections();
    airlock.close();
    api.close();
  });

  test('airlockX402Signer takes its address from the session and sends the resource it is signing for', async () => {
    signRequests = [];
    verdict = 'allow';
    const signer = await airlockX402Signer({ url: airlockUrl, token: 't' });
    assert.equal(signer.address, AGENT);
    const typed = { domain: { name: 'USD Coin', version: '2', chainId: 31337, verifyingContract: ASSET }, types: { TransferWithAuthorization: [{ name: 'value', type: 'uint256' }] }, primaryType: 'TransferWithAuthorization', message: { value: 10000n } };
    await withX402Resource('https://api.example.com/data/1', () => signer.signTypedData(typed));
    await signer.signTypedData(typed);
    assert.deepEqual(signRequests[0].x402, { resource: 'https://api.example.com/data/1' });
    assert.equal(signRequests[0].typedData.message.value, '10000', 'bigints travel as decimal strings');
    assert.equal(signRequests[1].x402, undefined, 'no resource outside a payment context');
  });

  test('a refusal surfaces as AirlockPolicyError with the violations; nothing is paid and nothing is retried', async () => {
    signRequests = [];
    apiRequests = [];
    verdict = 'deny';
    const pay = fetchWithAirlock(fetch, { url: airlockUrl, token: 't' });
    const err = await pay(`${apiUrl}/data/quote?x=1`).then(
      () => assert.fail('expected a refusal'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof AirlockPolicyError, `expected AirlockPolicyError, got ${String(err)}`);
    assert.equal(err.violations[0]!.rule, 'agent/payees');
    assert.equal(signRequests.length, 1, 'Airlock was asked once');
    assert.equal(signRequests[0].x402.resource, `${apiUrl}/data/quote?x=1`, 'the resource is the URL the agent fetched');
    assert.deepEqual(apiRequests, [{ path: '/data/quote?x=1', paid: false }], 'the API saw only the unpaid request');
  });
});

// Found by review: the x402 client follows redirects and pays the 402 of wherever it lands, while Airlock is told
// the URL the agent asked for; per-origin budgets, per-resource rules and the loop guard then judge the wrong one.
describe('x402 SDK: only the requested URL\'s own 402 is paid', () => {
  const EVIL_PAYTO = '0xeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee';
  let airlock: Server;
  let evil: Server;
  let trusted: Server;
  let airlockUrl: string;
  let evilUrl: string;
  let trustedUrl: string;
  let signRequests: any[] = [];
  let evilSaw: { path: string; paid: boolean }[] = [];
  let trustedSaw: { path: string; paid: boolean }[] = [];

  const paymentRequired = (resourceUrl: string, payTo: string) =>
    encodePaymentRequiredHeader({ x402Version: 2, error: 'payment required', resource: { url: resourceUrl, description: 'x', mimeType: 'application/json' }, accepts: [{ scheme: 'exact', network: 'eip155:31337', asset: ASSET, amount: '990000', payTo, maxTimeoutSeconds: 60, extra: { name: 'USD Coin', version: '2' } }] } as never);

  before(async () => {
    airlock = createServer(async (req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/v1/session') return res.end(JSON.stringify({ agent: { address: AGENT } }));
      if (req.url === '/v1/sign/typed-data') {
        const body = await bodyOf(req);
        signRequests.push(body);
        return res.end(JSON.stringify({ signature: await signAsAirlock(body) }));
      }
      res.statusCode = 404;
      res.end('{}');
    });
    evil = createServer((req, res) => {
      const paid = Boolean(req.headers['payment-signature'] || req.headers['x-payment']);
      evilSaw.push({ path: req.url ?? '', paid });
      if (paid) return res.end('{"stolen":true}');
      res.statusCode = 402;
      res.setHeader('PAYMENT-REQUIRED', paymentRequired(`${evilUrl}${req.url}`, EVIL_PAYTO));
      res.end('{}');
    });
    trusted = createServer((req, res) => {
      const paid = Boolean(req.headers['payment-signature'] || req.headers['x-payment']);
      trustedSaw.push({ path: req.url ?? '', paid });
      if (req.url!.startsWith('/redirect')) {
        // An open redirect (or a compromised path) on the API the policy trusts.
        res.statusCode = 302;
        res.setHeader('location', `${evilUrl}/x`);
        return res.end();
      }
      if (req.url!.startsWith('/foreign-resource')) {
        // Its own 402, naming a resource (and payee) on another origin.
        res.statusCode = 402;
        res.setHeader('PAYMENT-REQUIRED', paymentRequired(`${evilUrl}/x`, EVIL_PAYTO));
        return res.end('{}');
      }
      if (req.url!.startsWith('/priced')) {
        // Its own 402, then the paid answer.
        if (paid) return res.end('{"ok":true}');
        res.statusCode = 402;
        res.setHeader('PAYMENT-REQUIRED', paymentRequired(`${trustedUrl}${req.url}`, '0x2222222222222222222222222222222222222222'));
        return res.end('{}');
      }
      if (req.url!.startsWith('/behind-proxy')) {
        // As @x402/express names it behind a TLS-terminating proxy: the scheme it sees, not the one asked.
        if (paid) return res.end('{"ok":true}');
        res.statusCode = 402;
        res.setHeader('PAYMENT-REQUIRED', paymentRequired(`https://${req.headers.host}${req.url}`, '0x2222222222222222222222222222222222222222'));
        return res.end('{}');
      }
      if (req.url!.startsWith('/pay-then-redirect')) {
        // Prices itself, then sends the paid request elsewhere: the payment must not follow.
        if (paid) {
          res.statusCode = 302;
          res.setHeader('location', `${evilUrl}/x`);
          return res.end();
        }
        res.statusCode = 402;
        res.setHeader('PAYMENT-REQUIRED', paymentRequired(`${trustedUrl}${req.url}`, '0x2222222222222222222222222222222222222222'));
        return res.end('{}');
      }
      res.statusCode = 404;
      res.end('{}');
    });
    airlockUrl = await listen(airlock);
    evilUrl = await listen(evil);
    trustedUrl = await listen(trusted);
  });
  after(() => {
    for (const s of [airlock, evil, trusted]) {
      s.closeAllConnections();
      s.close();
    }
  });
  const reset = () => {
    signRequests = [];
    evilSaw = [];
    trustedSaw = [];
  };

  test('fetchWithAirlock: a 402 met after a redirect to another server is refused (x402_payment_redirected); Airlock is not asked, no payment reaches anyone', async () => {
    reset();
    const pay = fetchWithAirlock(fetch, { url: airlockUrl, token: 't' });
    const err = await pay(`${trustedUrl}/redirect?to=evil`).then(
      () => assert.fail('expected a refusal'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof AirlockApiError, `expected AirlockApiError, got ${String(err)}`);
    assert.equal(err.code, 'x402_payment_redirected');
    assert.deepEqual(err.details, { requested: `${trustedUrl}/redirect?to=evil`, answeredBy: `${evilUrl}/x` });
    assert.deepEqual(signRequests, [], 'nothing was sent to Airlock\'s sign endpoint');
    assert.deepEqual(evilSaw, [{ path: '/x', paid: false }], 'the other server saw only the unpaid, redirected request');
    assert.deepEqual(trustedSaw, [{ path: '/redirect?to=evil', paid: false }]);
  });

  test('fetchWithAirlock: a 402 naming a resource on another origin is refused (x402_resource_mismatch); Airlock is not asked', async () => {
    reset();
    const pay = fetchWithAirlock(fetch, { url: airlockUrl, token: 't' });
    const err = await pay(`${trustedUrl}/foreign-resource`).then(
      () => assert.fail('expected a refusal'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof AirlockApiError);
    assert.equal(err.code, 'x402_resource_mismatch');
    assert.deepEqual(signRequests, []);
    assert.deepEqual(trustedSaw, [{ path: '/foreign-resource', paid: false }]);
  });

  test('fetchWithAirlock: the request carrying the payment follows no redirect; its 3xx comes back and the payment reaches only the URL Airlock judged', async () => {
    reset();
    const pay = fetchWithAirlock(fetch, { url: airlockUrl, token: 't' });
    const res = await pay(`${trustedUrl}/pay-then-redirect`);
    assert.equal(res.status, 302);
    assert.equal(res.headers.get('location'), `${evilUrl}/x`);
    assert.equal(signRequests.length, 1);
    assert.equal(signRequests[0].x402.resource, `${trustedUrl}/pay-then-redirect`);
    assert.deepEqual(trustedSaw, [{ path: '/pay-then-redirect', paid: false }, { path: '/pay-then-redirect', paid: true }]);
    assert.deepEqual(evilSaw, [], 'the payment header did not follow the redirect');
  });

  test('axiosWithAirlock: a 402 met after a redirect is refused the same way; Airlock is not asked', async () => {
    reset();
    const api = await axiosWithAirlock(axios.create(), { url: airlockUrl, token: 't' });
    const err = await api.get(`${trustedUrl}/redirect?to=evil`).then(
      () => assert.fail('expected a refusal'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof AirlockApiError, `expected AirlockApiError, got ${String(err)}`);
    assert.equal(err.code, 'x402_payment_redirected');
    assert.deepEqual(signRequests, []);
    assert.deepEqual(evilSaw, [{ path: '/x', paid: false }]);

    reset();
    const err2 = await api.get(`${trustedUrl}/foreign-resource`).then(
      () => assert.fail('expected a refusal'),
      (e: unknown) => e,
    );
    assert.equal((err2 as AirlockApiError).code, 'x402_resource_mismatch');
    assert.deepEqual(signRequests, []);

    reset();
    // axios treats the 3xx as an error (it followed no redirect); the x402 interceptor needs the 402 to be one too.
    const paid = await api.get(`${trustedUrl}/pay-then-redirect`).then(
      () => assert.fail('expected the 302 as an error'),
      (e: any) => e.response,
    );
    assert.equal(paid.status, 302);
    assert.equal(signRequests.length, 1);
    assert.deepEqual(evilSaw, [], 'the payment header did not follow the redirect');
  });

  // Found by review: with axios's `auth`, follow-redirects reports the final URL as http://user:pass@host/…, so a
  // legitimate payment was refused as redirected, with the credentials in the message and details.
  test('axiosWithAirlock with `auth`: its own 402 is paid; a refusal carries no credentials', async () => {
    reset();
    const api = await axiosWithAirlock(axios.create({ auth: { username: 'agent', password: 'hunter2secret' } }), { url: airlockUrl, token: 't' });
    const res = await api.get(`${trustedUrl}/priced`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.data, { ok: true });
    assert.equal(signRequests.length, 1);
    assert.equal(signRequests[0].x402.resource, `${trustedUrl}/priced`);
    assert.deepEqual(trustedSaw, [{ path: '/priced', paid: false }, { path: '/priced', paid: true }]);

    reset();
    const err = await api.get(`${trustedUrl}/redirect?to=evil`).then(
      () => assert.fail('expected a refusal'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof AirlockApiError, `expected AirlockApiError, got ${String(err)}`);
    assert.equal(err.code, 'x402_payment_redirected');
    assert.deepEqual(err.details, { requested: `${trustedUrl}/redirect?to=evil`, answeredBy: `${evilUrl}/x` });
    assert.ok(!err.message.includes('hunter2secret') && !err.message.includes('agent:'), err.message);
    assert.deepEqual(signRequests, []);
  });

  // Found by review: axios's fetch adapter reports no final URL, so a 402 met after a redirect was paid.
  test('axiosWithAirlock with the fetch adapter: no redirect is followed (the 3xx comes back), its own 402 is paid', async () => {
    reset();
    const api = await axiosWithAirlock(axios.create({ adapter: 'fetch' }), { url: airlockUrl, token: 't' });
    const moved = await api.get(`${trustedUrl}/redirect?to=evil`).then(
      () => assert.fail('expected the 302 as an error'),
      (e: any) => e,
    );
    assert.equal(moved.response?.status, 302, String(moved));
    assert.deepEqual(signRequests, [], 'nothing was signed');
    assert.deepEqual(evilSaw, [], 'the other server was not reached');

    reset();
    const res = await api.get(`${trustedUrl}/priced`);
    assert.equal(res.status, 200);
    assert.equal(signRequests.length, 1);
    assert.deepEqual(trustedSaw, [{ path: '/priced', paid: false }, { path: '/priced', paid: true }]);

    reset();
    const err2 = await api.get(`${trustedUrl}/foreign-resource`).then(
      () => assert.fail('expected a refusal'),
      (e: unknown) => e,
    );
    assert.equal((err2 as AirlockApiError).code, 'x402_resource_mismatch');
    assert.deepEqual(signRequests, []);
  });

  test('axiosWithAirlock: an adapter that reports no final URL and may have followed a redirect is refused (fail closed)', async () => {
    reset();
    // A custom adapter: answers the trusted server's 402 through fetch, reporting nothing about redirects.
    const adapter = async (config: any) => {
      const r = await fetch(new URL(config.url).href, { headers: Object.fromEntries(Object.entries(config.headers?.toJSON?.() ?? {}).map(([k, v]) => [k, String(v)])) });
      const data = await r.text();
      const response = { data, status: r.status, statusText: r.statusText, headers: Object.fromEntries(r.headers), config, request: {} };
      if (r.status >= 400) throw new axios.AxiosError(`status ${r.status}`, 'ERR_BAD_RESPONSE', config, {}, response as any);
      return response;
    };
    const api = await axiosWithAirlock(axios.create({ adapter }), { url: airlockUrl, token: 't' });
    const err = await api.get(`${trustedUrl}/priced`).then(
      () => assert.fail('expected a refusal'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof AirlockApiError, `expected AirlockApiError, got ${String(err)}`);
    assert.equal(err.code, 'x402_payment_redirected');
    assert.deepEqual(err.details, { requested: `${trustedUrl}/priced` });
    assert.deepEqual(signRequests, []);
  });

  // Found by review: comparing whole origins refused standard servers behind TLS-terminating proxies.
  test('a PaymentRequired naming the same host under the other web scheme is paid; another host or port is still refused', async () => {
    reset();
    const pay = fetchWithAirlock(fetch, { url: airlockUrl, token: 't' });
    const res = await pay(`${trustedUrl}/behind-proxy`);
    assert.equal(res.status, 200);
    assert.equal(signRequests.length, 1);
    assert.equal(signRequests[0].x402.resource, `${trustedUrl}/behind-proxy`);

    const pr = (url: string) => ({ x402Version: 2, resource: { url }, accepts: [] });
    // An https request whose PaymentRequired names http://same-host/… (what the server saw behind the proxy).
    for (const named of ['http://api.example.com/data', 'http://api.example.com:443/data', 'https://api.example.com/data', 'HTTP://API.example.com/other']) {
      assert.doesNotThrow(() => checkX402Challenge('https://api.example.com/data', 'https://api.example.com/data', false, pr(named)), named);
    }
    for (const named of ['http://evil.example/data', 'https://api.example.com.evil.example/data', 'https://api.example.com:8443/data', 'ftp://api.example.com/data']) {
      assert.throws(() => checkX402Challenge('https://api.example.com/data', 'https://api.example.com/data', false, pr(named)), (e: any) => e.code === 'x402_resource_mismatch', named);
    }
    // A refusal reports URLs without credentials.
    assert.throws(
      () => checkX402Challenge('https://u:hunter2secret@api.example.com/data', 'https://u:hunter2secret@other.example/data', false, undefined),
      (e: any) => e.code === 'x402_payment_redirected' && !JSON.stringify(e.details).includes('hunter2secret') && !e.message.includes('hunter2secret'),
    );
    assert.doesNotThrow(() => checkX402Challenge('https://api.example.com/data', 'https://u:hunter2secret@api.example.com/data', false, pr('https://api.example.com/data')));
  });
});

test('x402PaymentTerms: EIP-3009 and Permit2 witness transfers through the x402 proxy; a witness with another spender names no payee', () => {
  const token = '0x5fbdb2315678afecb367f032d93f642f64180aa3';
  const payee = '0x2222222222222222222222222222222222222222';
  const eip3009 = x402PaymentTerms({ chainId: 8453, verifyingContract: token }, 'TransferWithAuthorization', { from: '0x1111111111111111111111111111111111111111', to: payee, value: 10n, validAfter: 0n, validBefore: 99n, nonce: '0x00' });
  assert.deepEqual(eip3009, { payTo: payee, amount: '10', asset: token, network: 'eip155:8453', validBefore: '99' });
  const witness = (spender: string) => x402PaymentTerms({ chainId: 8453, verifyingContract: '0x000000000022d473030f116ddee9f6b43ac78ba3' }, 'PermitWitnessTransferFrom', { permitted: { token, amount: 10n }, spender, nonce: 1n, deadline: 99n, witness: { to: payee, validAfter: 0n } });
  assert.deepEqual(witness('0x402085c248EeA27D92E8b30b2C58ed07f9E20001'), { payTo: payee, amount: '10', asset: token, network: 'eip155:8453', validBefore: '99' });
  // Another spender takes the tokens whatever the witness says: no payee can be read from it.
  assert.equal(witness('0x3333333333333333333333333333333333333333'), undefined);
});
